// Replay protection on every path of order creation: the nonce is remembered inside the
// order's transaction on success and by a write of its own on every other path, so a replay
// answers 40000 whatever else is wrong with it, and never creates or repeats an order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASE_KINDS } from './databases.js';
import { api, orderBody, orderRowCounts, startTestGateway, type TestGateway } from './harness.js';

describe.each(DATABASE_KINDS)('nonce replay on order creation (%s)', (kind) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ kind, config: { rateLimit: 3 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  const send = (body: unknown, nonce: string, merchant = t.merchant) =>
    api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant, clock: t.clock, nonce });

  it('refuses the replay of an accepted creation instead of answering it as a repeat', async () => {
    const body = orderBody(t.merchant, t.clock);
    expect((await send(body, 'n-accepted')).json.code).toBe(0);
    const replay = await send(body, 'n-accepted');
    expect(replay.json.code).toBe(40000);
    expect(replay.json.message).toMatch(/replay/);
  });

  it('refuses a replay in the last second the window still takes its timestamp (300.x s after, sent 0.5 s into its second)', async () => {
    t.clock.advance(60); // a fresh rate-limit bucket
    t.clock.ms = Math.floor(t.clock.ms / 1000) * 1000 + 500;
    const timestamp = String(t.clock.seconds());
    const body = orderBody(t.merchant, t.clock);
    const at = (offsetMs: number) => api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock, nonce: `n-edge-${offsetMs}`, timestamp });
    expect((await at(0)).json.code).toBe(0);
    // The same request again, 300.3 s later: its timestamp is still inside the window (whole seconds).
    t.clock.ms += 300_300;
    const replay = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock, nonce: 'n-edge-0', timestamp });
    expect(replay.json.code).toBe(40000);
    expect(replay.json.message).toMatch(/replay/);
    t.clock.advance(60);
  });

  it('refuses the replay of a refused creation with 40000, not its validation error', async () => {
    const before = await orderRowCounts(t);
    const body = orderBody(t.merchant, t.clock, { total_amount: '1e3' });
    expect((await send(body, 'n-refused')).json.code).toBe(41013);
    expect((await send(body, 'n-refused')).json.code).toBe(40000);
    expect((await send('{not json', 'n-malformed')).json.code).toBe(40009);
    expect((await send('{not json', 'n-malformed')).json.code).toBe(40000);
    expect(await orderRowCounts(t)).toEqual(before);
  });

  it('remembers the nonce of a repeat answered from the existing order', async () => {
    const body = orderBody(t.merchant, t.clock);
    const first = await send(body, 'n-first');
    const repeat = await send(body, 'n-repeat');
    expect(repeat.json.data?.payment_order_no).toBe(first.json.data?.payment_order_no);
    expect((await send(body, 'n-repeat')).json.code).toBe(40000);
  });

  it('answers a replay over the rate limit with 40000, and a fresh request with 40011', async () => {
    const m = await t.addMerchant();
    const bodies = Array.from({ length: 6 }, () => orderBody(m, t.clock));
    for (const [i, body] of bodies.entries()) expect((await send(body, `n-limit-${i}`, m)).json.code).toBe(0);
    expect((await send(bodies[0], 'n-limit-0', m)).json.code).toBe(40000);
    expect((await send(orderBody(m, t.clock), 'n-limit-fresh', m)).json.code).toBe(40011);
  });

  // Whoever replays a captured request (a leaked log, a proxy) must not hold the merchant at
  // 40011: each replay took one of the application's tokens (a review of the API path).
  it('spends none of the application\'s rate on replays, of a creation or of a query', async () => {
    const m = await t.addMerchant();
    const body = orderBody(m, t.clock);
    expect((await send(body, 'n-captured', m)).json.code).toBe(0);
    const query = () => api(t.baseUrl, { path: `/v4/pay/orders/${m.merchantNo}/${String(body.request_no)}`, merchant: m, clock: t.clock, nonce: 'n-captured-query' });
    expect((await query()).json.code).toBe(0);
    // The bucket holds 6 (rate 3): four tokens are left.
    for (let i = 0; i < 10; i += 1) {
      expect((await send(body, 'n-captured', m)).json.code).toBe(40000);
      expect((await query()).json.code).toBe(40000);
    }
    for (let i = 0; i < 4; i += 1) expect((await send(orderBody(m, t.clock), `n-own-${i}`, m)).json.code).toBe(0);
    expect((await send(orderBody(m, t.clock), 'n-own-over', m)).json.code).toBe(40011);
  });
});
