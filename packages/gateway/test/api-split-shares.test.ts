// A Pro split share worth less than one base unit of a payment token (PROTOCOL §8, §9), over the
// signed API: the receiver would be paid nothing in that token, so the pair is left out of the
// order, and an order with no pair left is refused with 41014 (a split amount against the rules).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASE_KINDS } from './databases.js';
import { api, expectError, OTHER, proOrderBody, SELLER, startTestGateway, type TestGateway } from './harness.js';

describe.each(DATABASE_KINDS)('split shares below a base unit on %s', (kind) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ kind });
  });
  afterAll(async () => {
    await t?.close();
  });

  // 0.000001 IRIS at 0.01 USD is 0.01 base unit of a 6-decimal USDT (Ethereum, Polygon), and
  // 10^10 base units of BSC's 18-decimal USDT.
  const body = (overrides: Record<string, unknown> = {}) =>
    proOrderBody(t.merchant, t.clock, {
      pricing_currency: 'IRIS',
      pricing_amount: '2000',
      divide_detail: { seller_amount: '1000', seller_addr: SELLER, merchant_amount: '999.999999', other_details: [{ receiver_addr: OTHER, amount: '0.000001' }] },
      ...overrides,
    });

  it('offers only the pairs where every receiver gets at least one base unit', async () => {
    const res = await api(t.baseUrl, { path: '/v4/pro/pay/cashier', body: body({ available_payment_currency_networks: [{ currency: 'USDT' }] }), merchant: t.merchant, clock: t.clock });
    expect(res.json.code).toBe(0);
    const url = new URL(String(res.json.data!.cashier_url));
    const page = await fetch(`${t.baseUrl}/cashier/api/orders/${String(res.json.data!.payment_order_no)}?t=${url.searchParams.get('t')!}`);
    const summary = (await page.json()) as { options: { network: string; currency: string }[] };
    expect(summary.options.map((o) => `${o.network}:${o.currency}`)).toEqual(['3:USDT']);
    const order = await t.gateway.store.orders.get(String(res.json.data!.payment_order_no));
    expect(order?.options.map((o) => o.split?.others)).toEqual([[{ address: OTHER, amount: 10n ** 10n }]]);
  });

  it('refuses with 41014 when no pair can pay every receiver', async () => {
    const res = await api(t.baseUrl, {
      path: '/v4/pro/pay/cashier',
      body: body({ available_payment_currency_networks: [{ currency: 'USDT', networks: ['2', '4'] }, { currency: 'USDC', networks: ['2', '4'] }] }),
      merchant: t.merchant,
      clock: t.clock,
    });
    expectError(res, 41014);
    expect(res.json.message).toMatch(/less than one base unit of USDT on network 2/);
  });
});
