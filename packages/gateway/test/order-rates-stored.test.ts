// PROTOCOL §14: "Rates used for an order are stored with it." A Pro order priced in HKD is
// converted with two rates, HKD's and the payment currency's; both must be in the order's record
// (the payment currency's is locked in each option, the pricing currency's in the order), so the
// amounts asked can be accounted for after the configured rates change.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASE_KINDS } from './databases.js';
import { api, proOrderBody, startTestGateway, type TestGateway } from './harness.js';

describe.each(DATABASE_KINDS)('rates stored with an order on %s', (kind) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ kind });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('keeps the pricing currency rate (HKD) beside each option payment currency rate', async () => {
    const body = proOrderBody(t.merchant, t.clock, { pricing_currency: 'HKD', pricing_amount: '100.00' });
    const res = await api(t.baseUrl, { path: '/v4/pro/pay/cashier', body, merchant: t.merchant, clock: t.clock });
    expect(res.json.code).toBe(0);
    const order = await t.gateway.store.orders.get(String(res.json.data!.payment_order_no));
    expect(order?.pricingUsdRate).toBe('0.1282');
    const usdt = order?.options.find((o) => o.network === '2' && o.currency === 'USDT');
    expect(usdt).toMatchObject({ usdRate: '1', amount: 12_820_000n });
    expect(order?.options.find((o) => o.currency === 'ETH')?.usdRate).toBe('3000');
  });

  it('keeps 1 for a USD price', async () => {
    const res = await api(t.baseUrl, { path: '/v4/pro/pay/cashier', body: proOrderBody(t.merchant, t.clock), merchant: t.merchant, clock: t.clock });
    expect(res.json.code).toBe(0);
    expect((await t.gateway.store.orders.get(String(res.json.data!.payment_order_no)))?.pricingUsdRate).toBe('1');
  });
});
