// The budget of refusals per client address (refusal_rate_limit): every answer under /v4/ is
// signed (§3), so a request that does not even authenticate (an unknown AppID, a bad
// signature, a malformed request) costs the gateway an RSA signature. Within a client's budget
// each refusal says why, signed afresh; beyond it the answer is 40011 (HTTP 429), still signed,
// its signature made once a second and shared by the copies of that second. Authenticated
// requests never count and are never refused by it; a replay (an old signed request sent again)
// is not one: it counts, and spends none of the application's rate.
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOO_MANY_REFUSALS } from '../src/adapters/http/server.js';
import { DATABASE_KINDS } from './databases.js';
import { api, defaultPlatformKey, expectError, orderBody, responseSignedBy, startTestGateway, type ApiResponse, type TestGateway } from './harness.js';
import { rawAnswerParts, rawExchange } from './raw-http.js';

const STRANGER_KEY = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const RATE = 2;
const BURST = RATE * 5;

describe.each(DATABASE_KINDS)('budget of refusals per client address on %s', (kind) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ kind, config: { refusalRateLimit: RATE } });
  });
  afterAll(async () => {
    await t?.close();
  });

  // A bucket refills as the injected clock moves: each test starts a minute later, with a full budget.
  const fresh = () => t.clock.advance(60);
  const unknownApp = () => api(t.baseUrl, { path: `/v4/pay/orders/${t.merchant.merchantNo}/x`, merchant: t.merchant, clock: t.clock, headers: { 'sparkpay-app-id': '999999999999999999' } });
  const badSignature = () => api(t.baseUrl, { path: `/v4/pay/orders/${t.merchant.merchantNo}/x`, merchant: t.merchant, clock: t.clock, signWith: STRANGER_KEY });
  const signatureOf = (r: ApiResponse) => ['sparkpay-timestamp', 'sparkpay-nonce', 'sparkpay-signature', 'sparkpay-serial'].map((h) => r.headers.get(h));
  const overBudget = (r: ApiResponse) => {
    expectError(r, 40011, 429, { signed: false });
    expect(r.text).toBe(JSON.stringify(TOO_MANY_REFUSALS));
    expect(r.json.message).toMatch(/too many refused requests/i);
    expect(r.headers.get('retry-after')).toBe('1');
  };

  it('refuses within the budget as always, each answer signed afresh; beyond it 40011, signed once a second, the copies sharing that signature', async () => {
    fresh();
    const platform = await defaultPlatformKey(t);
    const within: ApiResponse[] = [];
    for (let i = 0; i < BURST; i += 1) within.push(await unknownApp());
    for (const r of within) {
      expectError(r, 40002, 401, { signed: false });
      expect(responseSignedBy(platform.publicKey, r)).toBe(true);
    }
    expect(new Set(within.map((r) => r.headers.get('sparkpay-nonce'))).size).toBe(BURST);

    const a = await unknownApp();
    const b = await badSignature();
    overBudget(a);
    overBudget(b);
    // Signed with the key that would have signed the refusal: the default key for an unknown AppID,
    // the application's own for a bad signature in its name (its merchant verifies with that one).
    expect(responseSignedBy(platform.publicKey, a)).toBe(true);
    expect(a.headers.get('sparkpay-serial')).toBe(platform.serial);
    expect(b.signatureValid).toBe(true);
    expect(b.headers.get('sparkpay-serial')).toBe(t.merchant.serial);
    const c = await unknownApp();
    overBudget(c);
    expect(signatureOf(c), 'the same second: the same signature').toEqual(signatureOf(a));

    // One second refills RATE refusals; the next over-budget answer of a new second is signed anew.
    t.clock.advance(1);
    for (let i = 0; i < RATE; i += 1) expectError(await unknownApp(), 40002, 401, { signed: false });
    const d = await unknownApp();
    overBudget(d);
    expect(responseSignedBy(platform.publicKey, d)).toBe(true);
    expect(d.headers.get('sparkpay-nonce')).not.toBe(a.headers.get('sparkpay-nonce'));
    expect(d.headers.get('sparkpay-timestamp')).toBe(String(t.clock.seconds()));
  });

  it('never touches authenticated requests: they are served, and their refusals say why, with the budget spent', async () => {
    fresh();
    for (let i = 0; i < BURST + 3; i += 1) await unknownApp();
    overBudget(await unknownApp());
    const created = await api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(t.merchant, t.clock), merchant: t.merchant, clock: t.clock });
    expect(created.json.code).toBe(0);
    expect(created.signatureValid).toBe(true);
    expectError(await api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(t.merchant, t.clock, { total_amount: '1.2.3' }), merchant: t.merchant, clock: t.clock }), 41013);
    expectError(await api(t.baseUrl, { path: `/v4/pay/orders/${t.merchant.merchantNo}/none`, merchant: t.merchant, clock: t.clock }), 43005, 404);
    // And they do not refill it: the next unauthenticated one is still over.
    overBudget(await unknownApp());
  });

  it('counts replays, which spend none of the application\'s rate: beyond the budget a replay is 40011, and the merchant is still served', async () => {
    fresh();
    const body = orderBody(t.merchant, t.clock);
    const replay = () => api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock, nonce: 'n-budget-replayed' });
    expect((await replay()).json.code).toBe(0);
    for (let i = 0; i < BURST; i += 1) expectError(await replay(), 40000, 401);
    overBudget(await replay());
    const created = await api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(t.merchant, t.clock), merchant: t.merchant, clock: t.clock });
    expect(created.json.code).toBe(0);
  });

  it('counts every kind of refusal before authentication: no such endpoint, a missing header, a timestamp outside the window', async () => {
    fresh();
    const kinds = [
      () => api(t.baseUrl, { path: '/v4/pay/nowhere', merchant: t.merchant, clock: t.clock }),
      () => api(t.baseUrl, { path: `/v4/pay/orders/${t.merchant.merchantNo}/x`, merchant: t.merchant, clock: t.clock, headers: { 'sparkpay-signature': null } }),
      () => api(t.baseUrl, { path: `/v4/pay/orders/${t.merchant.merchantNo}/x`, merchant: t.merchant, clock: t.clock, timestamp: '1' }),
    ];
    const codes: number[] = [];
    for (let i = 0; i < BURST; i += 1) codes.push((await kinds[i % kinds.length]!()).json.code);
    expect(codes.every((c) => c !== 40011)).toBe(true);
    for (const k of kinds) overBudget(await k());
  });

  it('a request the HTTP parser refuses counts too: over the budget its answer (40009, as always) shares the signature of its second', async () => {
    fresh();
    for (let i = 0; i < BURST; i += 1) await unknownApp();
    const platform = await defaultPlatformKey(t);
    const raw = 'GET /v4/pay/orders/x/y HTTP/1.1\r\nHost: localhost\r\nBroken header line\r\n\r\n';
    const first = rawAnswerParts(await rawExchange(t.baseUrl, raw));
    const second = rawAnswerParts(await rawExchange(t.baseUrl, raw));
    for (const r of [first, second]) {
      expect(JSON.parse(r.text)).toMatchObject({ code: 40009 });
      expect(responseSignedBy(platform.publicKey, r)).toBe(true);
    }
    expect(second.headers.get('sparkpay-nonce')).toBe(first.headers.get('sparkpay-nonce'));
    expect(second.headers.get('sparkpay-request-id')).not.toBe(first.headers.get('sparkpay-request-id'));
  });
});

describe('budget of refusals: off (refusal_rate_limit 0)', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ config: { refusalRateLimit: 0 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('every refusal is signed afresh, however many', async () => {
    const nonces = new Set<string | null>();
    for (let i = 0; i < 60; i += 1) {
      const r = await api(t.baseUrl, { path: `/v4/pay/orders/${t.merchant.merchantNo}/x`, merchant: t.merchant, clock: t.clock, signWith: STRANGER_KEY });
      expectError(r, 40000, 401);
      nonces.add(r.headers.get('sparkpay-nonce'));
    }
    expect(nonces.size).toBe(60);
  });
});
