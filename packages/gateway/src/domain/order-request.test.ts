import { describe, expect, it } from 'vitest';
import { ADDR, proBody, standardBody } from './order-fixtures.suite.js';
import type { Edition, ParseOrderResult } from './order-request.js';
import { parseCreateOrderRequest } from './order-request.js';

function parse(body: unknown, edition: Edition = 'standard'): ParseOrderResult {
  return parseCreateOrderRequest(body, edition);
}

function refusal(body: unknown, edition: Edition = 'standard'): { code: number; message: string } | null {
  const r = parse(body, edition);
  return r.ok ? null : { code: r.code, message: r.message };
}

function without(body: Record<string, unknown>, key: string): Record<string, unknown> {
  const copy = { ...body };
  delete copy[key];
  return copy;
}

describe('parseCreateOrderRequest', () => {
  it('types a standard body and ignores unknown fields', () => {
    const r = parse(standardBody({ something_new: { a: 1 }, merchant_order_timeout: 1_750_000_600, receive_network: '2,4' }));
    expect(r).toEqual({
      ok: true,
      request: {
        edition: 'standard',
        merchantNo: 'M1001',
        requestNo: 'REQ_0001',
        merchantOrderTime: 1_749_999_990,
        merchantOrderTimeout: 1_750_000_600,
        totalAmount: '10.50',
        merchantOrderCurrency: 'USDT',
        merchantOrderDesc: null,
        goodsInfo: null,
        merchantOrderNo: null,
        merchantApplicationUserId: null,
        notifyUrl: null,
        redirectUrl: null,
        businessInfo: null,
        extension: null,
        receiveNetwork: ['2', '4'],
        split: null,
      },
    });
  });

  it.each(['merchant_no', 'request_no', 'merchant_order_time', 'total_amount', 'merchant_order_currency'])(
    'answers 40003 naming a missing, null or empty %s (standard)',
    (field) => {
      for (const body of [without(standardBody(), field), standardBody({ [field]: null }), standardBody({ [field]: '' })]) {
        expect(refusal(body)).toEqual({ code: 40003, message: `missing required parameter: ${field}` });
      }
    },
  );

  it.each(['merchant_no', 'request_no', 'merchant_order_time', 'pricing_currency', 'pricing_amount'])('answers 40003 for a missing %s (pro)', (field) => {
    expect(refusal(without(proBody(), field), 'pro')?.code).toBe(40003);
  });

  it('does not require the other edition\'s fields', () => {
    expect(parse(proBody(), 'pro').ok).toBe(true);
    expect(refusal(proBody(), 'standard')?.code).toBe(40003);
  });

  it('checks presence of every field before any type (40003 before 40009)', () => {
    expect(refusal(without(standardBody({ merchant_no: 5 }), 'merchant_order_currency'))?.code).toBe(40003);
  });

  it.each([[null], [[]], ['{}'], [42], [undefined]])('refuses a body that is not a JSON object (%j) with 40009', (body) => {
    expect(refusal(body)?.code).toBe(40009);
  });

  it.each([
    ['total_amount', 10.5, 'parameter total_amount must be a string'],
    ['total_amount', 10, 'parameter total_amount must be a string'],
    ['merchant_no', 1001, 'parameter merchant_no must be a string'],
    ['merchant_order_time', '1750000000', 'parameter merchant_order_time must be a non-negative integer'],
    ['merchant_order_time', 1.5, 'parameter merchant_order_time must be a non-negative integer'],
    ['merchant_order_time', -1, 'parameter merchant_order_time must be a non-negative integer'],
    ['merchant_order_time', 2 ** 53, 'parameter merchant_order_time must be a non-negative integer'],
    ['merchant_order_timeout', true, 'parameter merchant_order_timeout must be a non-negative integer'],
    ['notify_url', ['x'], 'parameter notify_url must be a string'],
    ['divide_detail', 'x', 'parameter divide_detail must be an object'],
    ['divide_detail', [], 'parameter divide_detail must be an object'],
  ])('refuses %s = %j with 40009', (field, value, message) => {
    expect(refusal(standardBody({ [field]: value }))).toEqual({ code: 40009, message });
  });

  it.each([
    ['merchant_order_desc', 256],
    ['goods_info', 1024],
    ['merchant_order_no', 64],
    ['merchant_application_user_id', 64],
    ['business_info', 1024],
    ['extension', 1024],
  ])('limits %s to %i characters (40009 beyond), counting code points', (field, limit) => {
    expect(parse(standardBody({ [field]: '😀'.repeat(limit) })).ok).toBe(true);
    expect(refusal(standardBody({ [field]: 'x'.repeat(limit + 1) }))).toEqual({ code: 40009, message: `parameter ${field} must be at most ${limit} characters` });
  });

  it('leaves request_no and URL lengths to their own rules (41023, 41001, 41000)', () => {
    expect(parse(standardBody({ request_no: 'x'.repeat(65), notify_url: `https://a.example/${'x'.repeat(600)}` })).ok).toBe(true);
  });

  it('treats null or "" optional fields as not sent', () => {
    const r = parse(standardBody({ notify_url: '', merchant_order_timeout: null, receive_network: '', divide_detail: null }));
    expect(r.ok && r.request).toMatchObject({ notifyUrl: null, merchantOrderTimeout: null, receiveNetwork: null, split: null });
  });

  it('reads receive_network as a digit list or a number', () => {
    const rn = (v: unknown) => {
      const r = parse(standardBody({ receive_network: v }));
      return r.ok ? r.request.receiveNetwork : r.code;
    };
    expect(rn('2,4')).toEqual(['2', '4']);
    expect(rn(3)).toEqual(['3']);
    expect(rn('9')).toEqual(['9']); // unknown enum: 41027 later, not a syntax fault
    for (const bad of ['2, 4', '2,', ',2', 'two', '2;4', -2, 2.5, ['2'], true]) expect(rn(bad)).toBe(40009);
  });

  it('reads divide_detail with other_details optional', () => {
    const r = parse(standardBody({ divide_detail: { seller_amount: '8', seller_addr: ADDR.seller, merchant_amount: '2.5' } }));
    expect(r.ok && r.request.split).toEqual({
      form: 'divide_detail',
      detail: { sellerAmount: '8', sellerAddr: ADDR.seller, merchantAmount: '2.5', otherDetails: [] },
    });
    const withOthers = parse(standardBody({ divide_detail: { other_details: [{ receiver_addr: ADDR.other1, amount: '0.5', note: 'ignored' }] } }));
    expect(withOthers.ok && withOthers.request.split).toEqual({
      form: 'divide_detail',
      detail: { sellerAmount: null, sellerAddr: null, merchantAmount: null, otherDetails: [{ receiverAddr: ADDR.other1, amount: '0.5' }] },
    });
  });

  it.each([
    [{ seller_amount: 8 }, 'parameter divide_detail.seller_amount must be a string'],
    [{ other_details: {} }, 'parameter divide_detail.other_details must be an array'],
    [{ other_details: ['x'] }, 'parameter divide_detail.other_details[0] must be an object'],
    [{ other_details: [{ receiver_addr: ADDR.other1 }] }, 'parameter divide_detail.other_details[0].amount must be a string'],
    [{ other_details: [{ receiver_addr: ADDR.other1, amount: 0.5 }] }, 'parameter divide_detail.other_details[0].amount must be a string'],
  ])('refuses a malformed divide_detail %j with 40009', (dd, message) => {
    expect(refusal(standardBody({ divide_detail: dd }))).toEqual({ code: 40009, message });
  });

  it('reads split_details with enums as numbers or digit strings', () => {
    const r = parse(standardBody({ split_details: [{ split_type: '2', split_purpose: 1, receiver: ADDR.seller, amount: '8' }] }));
    expect(r.ok && r.request.split).toEqual({ form: 'split_details', entries: [{ splitType: 2, splitPurpose: 1, receiver: ADDR.seller, amount: '8' }] });
    // an unknown type or purpose is 41005/41006 later, not a shape fault
    expect(parse(standardBody({ split_details: [{ split_type: 7, split_purpose: 9, receiver: 'x', amount: '1' }] })).ok).toBe(true);
  });

  it.each([
    [{ split_details: {} }],
    [{ split_details: [null] }],
    [{ split_details: [{ split_type: 'merchant', split_purpose: 1, receiver: 'x', amount: '1' }] }],
    [{ split_details: [{ split_type: 1, split_purpose: 2, amount: '1' }] }],
    [{ split_details: [{ split_type: 1, split_purpose: 2, receiver: 'M1', amount: 1 }] }],
    [{ divide_detail: {}, split_details: [] }],
  ])('refuses %j with 40009', (patch) => {
    expect(refusal(standardBody(patch))?.code).toBe(40009);
  });

  it('reads available_payment_currency_networks (pro)', () => {
    const r = parse(proBody({ available_payment_currency_networks: [{ currency: 'USDT', networks: ['2', 4] }, { currency: 'ETH' }, { currency: 'IRIS', networks: [] }] }), 'pro');
    expect(r.ok && r.request.edition === 'pro' && r.request.availablePaymentCurrencyNetworks).toEqual([
      { currency: 'USDT', networks: ['2', '4'] },
      { currency: 'ETH', networks: null },
      { currency: 'IRIS', networks: null },
    ]);
    const empty = parse(proBody({ available_payment_currency_networks: [] }), 'pro');
    expect(empty.ok && empty.request.edition === 'pro' && empty.request.availablePaymentCurrencyNetworks).toBeNull();
  });

  it.each([
    ['USDT'],
    [{ currency: 'USDT' }],
    [['USDT']],
    [[{ networks: ['2'] }]],
    [[{ currency: 1 }]],
    [[{ currency: 'USDT', networks: '2' }]],
    [[{ currency: 'USDT', networks: ['two'] }]],
    [[{ currency: 'USDT', networks: [2.5] }]],
  ])('refuses available_payment_currency_networks %j with 40009', (v) => {
    expect(refusal(proBody({ available_payment_currency_networks: v }), 'pro')?.code).toBe(40009);
  });
});
