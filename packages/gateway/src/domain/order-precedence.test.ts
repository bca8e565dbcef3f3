// Pins PROTOCOL §7 "which error wins": for every adjacent pair of rules in the order, a request
// with both faults answers the earlier code. Each fault alone answers its own code, so the pair
// test really has two faults.

import { describe, expect, it } from 'vitest';
import { ADDR, addressN, baseSplit, codeOf, merchant, NOW, run, scenario } from './order-fixtures.suite.js';
import type { Scenario } from './order-fixtures.suite.js';

type Fault = (s: Scenario) => void;

function split(s: Scenario, patch: Record<string, unknown>): void {
  const current = (s.body['divide_detail'] as Record<string, unknown> | undefined) ?? baseSplit();
  const next: Record<string, unknown> = { ...current, ...patch };
  for (const [k, v] of Object.entries(patch)) if (v === undefined) delete next[k];
  s.body['divide_detail'] = next;
}

function setMerchant(s: Scenario, patch: Parameters<typeof merchant>[0]): void {
  s.merchant = s.merchant === null ? null : { ...s.merchant, ...patch };
}

/** The pinned order, first to last (split part: §9 order; 41026 is our divide_detail rule). */
const ORDER = [
  40003, 40009, 40008, 40007, 41002, 41039, 41023, 41009, 41013, 41018, 41021, 41012, 41001, 41000, 41027, 41031, 41035,
  41015, 41026, 41014, 41019, 41008, 41032, 41029, 41033, 41034, 43011, 41028, 41007,
] as const;

const twentyOthers = Array.from({ length: 20 }, (_, i) => ({ receiver_addr: addressN(i), amount: '0.01' }));

/** One fault per rule, touching as few fields as possible. */
const FAULTS: Record<(typeof ORDER)[number], Fault> = {
  40003: (s) => delete s.body['merchant_order_currency'],
  40009: (s) => (s.body['merchant_order_time'] = 'yesterday'),
  40008: (s) => (s.merchant = null),
  40007: (s) => (s.appMerchantNo = 'M9999'),
  41002: (s) => setMerchant(s, { status: 'INACTIVE' }),
  41039: (s) => setMerchant(s, { onlinePayment: false }),
  41023: (s) => (s.body['request_no'] = 'bad-request-no'),
  41009: (s) => (s.body['merchant_order_currency'] = 'DOGE'),
  41013: (s) => (s.body['total_amount'] = '1e3'),
  41018: (s) => (s.body['total_amount'] = '10.1234567'),
  41021: (s) => Object.assign(s.body, { merchant_order_time: NOW + 100, merchant_order_timeout: NOW + 50 }),
  41012: (s) => (s.body['merchant_order_timeout'] = NOW - 5),
  41001: (s) => (s.body['notify_url'] = 'ftp://example.com/notify'),
  41000: (s) => (s.body['redirect_url'] = 'example.com/done'),
  41027: (s) => (s.body['receive_network'] = '9'),
  41031: (s) => (s.body['receive_network'] = '5'),
  41035: (s) => setMerchant(s, { wallets: {} }),
  41015: (s) => split(s, { seller_addr: undefined }),
  41026: (s) => split(s, { merchant_amount: undefined }),
  41014: (s) => split(s, { other_details: [{ receiver_addr: ADDR.other1, amount: '0' }] }),
  41019: (s) => split(s, { seller_amount: '8.0000001' }),
  41032: (s) => split(s, { seller_addr: '0x1234' }),
  41029: (s) => split(s, { merchant_amount: '2.00', other_details: [{ receiver_addr: ADDR.other1, amount: '0.25' }, { receiver_addr: ADDR.other1, amount: '0.25' }] }),
  41033: (s) => split(s, { merchant_amount: '2.00', other_details: [{ receiver_addr: ADDR.seller.toLowerCase(), amount: '0.50' }] }),
  41034: (s) => {
    setMerchant(s, { caAddresses: { '3': ADDR.seller.toUpperCase().replace('0X', '0x') } });
    split(s, {});
  },
  43011: (s) => split(s, { merchant_amount: '2.30', other_details: twentyOthers }),
  41008: (s) => split(s, { seller_amount: '8.000001' }),
  41028: (s) => (s.body['total_amount'] = '0.10'),
  41007: (s) => split(s, { seller_amount: '10.40', merchant_amount: '0.10' }),
};

/** Pairs whose two faults live in the same field: one value carrying both. */
const SAME_FIELD: Partial<Record<string, Fault>> = {
  // 31 integer digits (41013) and 7 decimals (41018) in one amount.
  '41013>41018': (s) => (s.body['total_amount'] = `${'1'.repeat(31)}.1234567`),
  // timeout before the order time (41021) and in the past (41012).
  '41021>41012': (s) => (s.body['merchant_order_timeout'] = NOW - 20),
  // 5 does not carry USDT (41031), 9 is unknown (41027): every network is checked for 41027 first.
  '41027>41031': (s) => (s.body['receive_network'] = '5,9'),
  // a repeated entry (41029) and the seller's address again (41033).
  '41029>41033': (s) =>
    split(s, {
      merchant_amount: '1.50',
      other_details: [
        { receiver_addr: ADDR.seller.toLowerCase(), amount: '0.50' },
        { receiver_addr: ADDR.other1, amount: '0.25' },
        { receiver_addr: ADDR.other1.toLowerCase(), amount: '0.250' },
      ],
    }),
  // 21 receivers (43011) in a split that adds up to an order total at the minimum fee (41028):
  // the sum (41008) is checked before both, so the split must match the new total.
  '43011>41028': (s) => {
    s.body['total_amount'] = '0.10';
    split(s, { seller_amount: '0.03', merchant_amount: '0.05', other_details: twentyOthers.map((o) => ({ ...o, amount: '0.001' })) });
  },
  // an amount at the minimum fee everywhere (41028) whose merchant share is below the fee (41007).
  '41028>41007': (s) => {
    s.body['total_amount'] = '0.10';
    split(s, { seller_amount: '0.05', merchant_amount: '0.05' });
  },
};

function withFaults(...faults: Fault[]): Scenario {
  const s = scenario('standard');
  for (const f of faults) f(s);
  return s;
}

describe('order creation error precedence (PROTOCOL §7)', () => {
  it('the base scenario is a valid order', () => {
    expect(codeOf(run(scenario('standard')))).toBe(0);
  });

  it.each(ORDER.map((c) => [c]))('fault %i alone answers its own code', (code) => {
    expect(codeOf(run(withFaults(FAULTS[code])))).toBe(code);
  });

  const pairs = ORDER.slice(1).map((later, i) => [ORDER[i] as (typeof ORDER)[number], later] as const);
  it.each(pairs)('%i wins over %i', (earlier, later) => {
    const same = SAME_FIELD[`${earlier}>${later}`];
    // Apply the later fault first so that, for shared containers, the earlier one is on top.
    const s = same ? withFaults(same) : withFaults(FAULTS[later], FAULTS[earlier]);
    expect(codeOf(run(s))).toBe(earlier);
  });

  it('a single-field pair really carries both faults', () => {
    // Dropping the earlier fault of each single-value pair leaves the later code.
    expect(codeOf(run(withFaults((s) => (s.body['total_amount'] = '1.1234567'))))).toBe(41018);
    expect(codeOf(run(withFaults((s) => (s.body['merchant_order_timeout'] = NOW - 5))))).toBe(41012);
    expect(codeOf(run(withFaults((s) => (s.body['receive_network'] = '5,2'))))).toBe(41031);
  });

  it('the first rule wins when every fault is present at once', () => {
    const s = withFaults(...[...ORDER].reverse().map((c) => FAULTS[c]));
    expect(codeOf(run(s))).toBe(40003);
  });
});

describe('pro edition precedence', () => {
  type ProFault = (s: Scenario) => void;
  const list = (v: unknown): ProFault => (s) => (s.body['available_payment_currency_networks'] = v);
  const PRO: [number, ProFault][] = [
    [41009, (s) => (s.body['pricing_currency'] = 'EUR')],
    [41013, (s) => (s.body['pricing_amount'] = '-1')],
    [41018, (s) => (s.body['pricing_amount'] = '1.001')],
    [41036, list([{ currency: 'USDT' }, { currency: 'USDT', networks: ['2'] }])],
    [41037, list([{ currency: 'USDT', networks: ['2', 2] }])],
    [41027, list([{ currency: 'USDT', networks: ['7'] }])],
    [41031, list([{ currency: 'IRIS', networks: ['2'] }])],
    [41035, (s) => setMerchant(s, { wallets: { '2': ADDR.wallet } })],
  ];

  it.each(PRO.map(([c], i) => [c, i]))('fault %i alone answers its own code', (code, i) => {
    const s = scenario('pro');
    const fault = PRO[i]?.[1];
    if (code === 41035) s.body['available_payment_currency_networks'] = [{ currency: 'USDT', networks: ['4'] }];
    fault?.(s);
    expect(codeOf(run(s))).toBe(code);
  });

  it('41036 wins over 41037, 41037 over 41027, 41027 over 41031, 41031 over 41035', () => {
    const s = scenario('pro');
    setMerchant(s, { wallets: {} });
    list([{ currency: 'IRIS', networks: ['2'] }, { currency: 'USDC', networks: ['7'] }])(s);
    expect(codeOf(run(s))).toBe(41027);
    list([{ currency: 'IRIS', networks: ['2'] }, { currency: 'USDC', networks: ['7', '7'] }])(s);
    expect(codeOf(run(s))).toBe(41037);
    list([{ currency: 'USDC', networks: ['7', '7'] }, { currency: 'USDC' }])(s);
    expect(codeOf(run(s))).toBe(41036);
    list([{ currency: 'IRIS', networks: ['2'] }, { currency: 'USDC', networks: ['4'] }])(s);
    expect(codeOf(run(s))).toBe(41031);
  });

  it('41038 (no pair above the minimum fee) wins over 41007', () => {
    const s = scenario('pro');
    // 0.09 USD stays at or under every pair's minimum fee (0.10 USD would not: converted to BNB
    // and rounded up to 8 decimals it exceeds BSC's minimum, and the pair fails on 41007 instead).
    Object.assign(s.body, { pricing_amount: '0.09', divide_detail: baseSplit({ seller_amount: '0.05', merchant_amount: '0.04' }) });
    expect(codeOf(run(s))).toBe(41038);
  });
});
