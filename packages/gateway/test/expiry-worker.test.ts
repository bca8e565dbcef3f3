// The expiry worker of a running gateway closes an overdue order by itself, on the injected
// clock, and writes its ORDER_CLOSED notification; it also forgets the request nonces whose
// timestamp window has passed (the table would otherwise grow by every request ever made).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASE_KINDS } from './databases.js';
import { api, orderBody, startTestGateway, type TestGateway } from './harness.js';

describe.each(DATABASE_KINDS)('expiry worker (%s)', (kind) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ kind, workers: true, config: { expiryIntervalMs: 20 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('closes a PENDING order once the clock passes its deadline', async () => {
    const body = orderBody(t.merchant, t.clock, { merchant_order_timeout: t.clock.seconds() + 60, notify_url: 'https://shop.example/n' });
    const created = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });
    expect(created.json.code).toBe(0);
    const query = () => api(t.baseUrl, { path: `/v4/pay/orders/${t.merchant.merchantNo}/${String(body.request_no)}`, merchant: t.merchant, clock: t.clock });

    await new Promise((r) => setTimeout(r, 200));
    expect((await query()).json.data?.pay_status).toBe('PENDING');

    t.clock.advance(61);
    let data: Record<string, unknown> | undefined;
    for (let i = 0; i < 100 && data?.pay_status !== 'CLOSED'; i += 1) {
      await new Promise((r) => setTimeout(r, 20));
      data = (await query()).json.data;
    }
    expect(data).toMatchObject({ pay_status: 'CLOSED', close_reason: 'EXPIRED', closed_time: t.clock.seconds() });
    const notes = await t.gateway.store.notifications.listByOrder(String(created.json.data?.payment_order_no));
    expect(notes.map((n) => n.notifyType)).toEqual(['ORDER_CLOSED']);
  });

  it('forgets a nonce once its timestamp window has passed, not before', async () => {
    const nonces = async () => (await t.gateway.db.kysely.selectFrom('nonces').select('nonce').where('nonce', 'like', 'n-sweep-%').execute()).map((r) => r.nonce);
    const query = (nonce: string) => api(t.baseUrl, { path: `/v4/pay/orders/${t.merchant.merchantNo}/none`, merchant: t.merchant, clock: t.clock, nonce });
    await query('n-sweep-1');
    // A request may carry a timestamp up to the window ahead of the server's clock: kept that long.
    const window = t.gateway.config.timestampWindowSeconds;
    t.clock.advance(window);
    await new Promise((r) => setTimeout(r, 200));
    expect(await nonces()).toEqual(['n-sweep-1']);
    expect((await query('n-sweep-1')).json.code).toBe(40000);
    t.clock.advance(2);
    let left = await nonces();
    for (let i = 0; i < 100 && left.length > 0; i += 1) {
      await new Promise((r) => setTimeout(r, 20));
      left = await nonces();
    }
    expect(left).toEqual([]);
  });
});
