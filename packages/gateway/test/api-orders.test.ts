// The three order operations end to end over HTTP, signed both ways, on every database.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASE_KINDS } from './databases.js';
import { api, orderBody, startTestGateway, type TestGateway } from './harness.js';

describe.each(DATABASE_KINDS)('orders API on %s', (kind) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ kind });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('creates a standard order and answers with a signed envelope', async () => {
    const body = orderBody(t.merchant, t.clock, { merchant_order_no: 'shop-1' });
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });
    expect(res.json.message).toBe('success');
    expect(res.status).toBe(200);
    expect(res.json.code).toBe(0);
    expect(res.signatureValid).toBe(true);
    expect(res.headers.get('sparkpay-serial')).toBe(t.merchant.serial);
    expect(res.headers.get('sparkpay-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    // The answer carries the cashier link with its token: not to be cached anywhere.
    expect(res.headers.get('cache-control')).toBe('no-store');
    const data = res.json.data!;
    expect(data.payment_order_no).toMatch(/^P\d{24}$/);
    expect(data).toMatchObject({
      merchant_no: t.merchant.merchantNo,
      request_no: body.request_no,
      merchant_order_no: 'shop-1',
      pay_status: 'PENDING',
      total_amount: '10.50',
      merchant_order_currency: 'USDT',
      expire_time: t.clock.seconds() + 1800,
    });
    expect(String(data.cashier_url)).toMatch(new RegExp(`/cashier/${String(data.payment_order_no)}\\?t=[A-Za-z0-9]{32}$`));
  });

  it('queries and closes an order', async () => {
    const body = orderBody(t.merchant, t.clock);
    const created = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });
    expect(created.json.code).toBe(0);
    const path = `/v4/pay/orders/${t.merchant.merchantNo}/${String(body.request_no)}`;
    const q = await api(t.baseUrl, { path, merchant: t.merchant, clock: t.clock });
    expect(q.status).toBe(200);
    expect(q.signatureValid).toBe(true);
    expect(q.json.data).toMatchObject({
      payment_order_no: created.json.data!.payment_order_no,
      pay_status: 'PENDING',
      total_amount: '10.50',
      merchant_order_currency: 'USDT',
      merchant_customer_no: t.merchant.merchantNo,
      real_pay_amount: '0',
      pay_time: 0,
      closed_time: 0,
      payments: [],
      settlements: [],
      sequence: 0,
    });
    expect(q.json.data!.pay_exception).toBeUndefined();

    t.clock.advance(10);
    const close = await api(t.baseUrl, { path: '/v4/pay/orders/close', body: { request_no: body.request_no, merchant_no: t.merchant.merchantNo }, merchant: t.merchant, clock: t.clock });
    expect(close.status).toBe(200);
    expect(close.json.data).toEqual({
      request_no: body.request_no,
      merchant_no: t.merchant.merchantNo,
      merchant_order_no: '',
      pay_status: 'CLOSED',
      closed_time: t.clock.seconds(),
    });
    const again = await api(t.baseUrl, { path: '/v4/pay/orders/close', body: { request_no: body.request_no, merchant_no: t.merchant.merchantNo }, merchant: t.merchant, clock: t.clock });
    expect(again.status).toBe(409);
    expect(again.json.code).toBe(43007);
    expect(again.signatureValid).toBe(true);
    const q2 = await api(t.baseUrl, { path, merchant: t.merchant, clock: t.clock });
    expect(q2.json.data).toMatchObject({ pay_status: 'CLOSED', close_reason: 'MERCHANT_CLOSED', closed_time: t.clock.seconds(), sequence: 1 });
  });

  it('answers 43005 for an unknown order', async () => {
    const res = await api(t.baseUrl, { path: `/v4/pay/orders/${t.merchant.merchantNo}/nope`, merchant: t.merchant, clock: t.clock });
    expect(res.status).toBe(404);
    expect(res.json.code).toBe(43005);
    expect(res.signatureValid).toBe(true);
  });
});
