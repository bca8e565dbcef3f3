// What a payer sees on the cashier page and reads from its JSON API once an order has ended or in
// edge states (a review of the payer's view): each case here was wrong once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, deploymentWithFactory, observeTransfer, orderBody, startTestGateway, type TestGateway } from './harness.js';

describe('cashier: what the payer sees', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ config: { deployment: deploymentWithFactory(['3', '4']) } });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function newOrder(overrides: Record<string, unknown> = {}) {
    const body = orderBody(t.merchant, t.clock, overrides);
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });
    expect(res.json.code, res.json.message).toBe(0);
    const url = new URL(String(res.json.data!.cashier_url));
    return { no: String(res.json.data!.payment_order_no), token: url.searchParams.get('t')!, path: `${url.pathname}${url.search}`, requestNo: String(body.request_no) };
  }
  const page = async (path: string) => (await fetch(`${t.baseUrl}${path}`)).text();
  const view = async (o: { no: string; token: string }) => (await (await fetch(`${t.baseUrl}/cashier/api/orders/${o.no}?t=${o.token}`)).json()) as Record<string, unknown>;
  const select = async (o: { no: string; token: string }, network: string, currency: string) =>
    (await (await fetch(`${t.baseUrl}/cashier/api/orders/${o.no}/select?t=${o.token}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ network, currency }) })).json()) as Record<string, string>;

  // README "Cashier page": an expired or closed order "links back to the redirect_url when the
  // order has one (a link, not a redirect)". The view handed the page redirect_url only once paid,
  // so the link never appeared: the payer of an expired order had no way back to the shop.
  it('links an expired or merchant-closed order back to its redirect_url (a link, no redirect), in the page and the JSON API', async () => {
    const back = 'https://shop.example/cart?o=7';
    const expired = await newOrder({ redirect_url: back });
    const closed = await newOrder({ redirect_url: back });
    await select(expired, '4', 'USDT');
    // Open: no link back yet (the payer is paying), nor in the JSON API.
    expect(await page(expired.path)).not.toContain('id="back-to-merchant"');
    expect((await view(expired)).redirect_url).toBeNull();
    const close = await api(t.baseUrl, { path: '/v4/pay/orders/close', body: { merchant_no: t.merchant.merchantNo, request_no: closed.requestNo }, merchant: t.merchant, clock: t.clock });
    expect(close.json.code, close.json.message).toBe(0);
    t.clock.advance(1801);
    await t.gateway.expireOrders();
    for (const [o, state] of [[expired, 'EXPIRED'], [closed, 'CLOSED']] as const) {
      const v = await view(o);
      expect(v).toMatchObject({ payer_state: state, final: true, redirect_url: back });
      for (const lang of ['en', 'zh-CN']) {
        const html = await page(`${o.path}&lang=${lang}`);
        expect(html).toContain(`<a id="back-to-merchant" class="button" href="https://shop.example/cart?o=7" rel="noreferrer">`);
        // A link only: no automatic redirect, no success view.
        expect(html).not.toContain('http-equiv="refresh"');
        expect(html).not.toContain('data-redirect');
      }
    }
  });

  // `excess` is what the page tells an overpaying payer. It was final − due whatever the state:
  // 4 USDT for an expired order paid after its deadline (PAID_LATE, no excess of anything).
  it('names an excess only for an order paid beyond its amount, not for money that came after it closed', async () => {
    const late = await newOrder();
    const address = (await select(late, '4', 'USDT')).address!;
    t.clock.advance(1801);
    await t.gateway.expireOrders();
    await observeTransfer(t, { paymentOrderNo: late.no, amount: 14_500_000n, address: address.toLowerCase() });
    expect(await view(late)).toMatchObject({ payer_state: 'EXPIRED', pay_exception: 'PAID_LATE', excess: null });
    const over = await newOrder();
    const overAddress = (await select(over, '4', 'USDT')).address!;
    await observeTransfer(t, { paymentOrderNo: over.no, amount: 12_500_000n, address: overAddress.toLowerCase() });
    expect(await view(over)).toMatchObject({ payer_state: 'PAID', pay_exception: 'OVERPAID', excess: '2' });
  });
});
