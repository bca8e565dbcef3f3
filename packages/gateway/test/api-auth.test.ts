// The shared signature/authentication cases of §2/§3, run against every v4 route over HTTP:
// missing headers, unknown or disabled AppIDs, the timestamp window, nonce format and replay,
// signatures over anything but the exact request, the AppID/merchant relation, the order in
// which these checks win, and the per-application rate limit on the injected clock.
import { generateKeyPairSync } from 'node:crypto';
import { generateNonce, signMessage } from '@sparkpay/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASE_KINDS } from './databases.js';
import {
  api,
  apiRaw,
  defaultPlatformKey,
  expectError,
  orderBody,
  proOrderBody,
  responseSignedBy,
  startTestGateway,
  type ApiResponse,
  type Merchant,
  type SignedRequest,
  type TestGateway,
} from './harness.js';

/** A key no application has registered; generated once for the file. */
const STRANGER_KEY = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const UNKNOWN_APP_ID = '999999999999999999';
const UNKNOWN_MERCHANT_NO = 'M999999999999';

/** Orders each merchant owns before the tests run: the query routes read them, never change them. */
interface Fixtures {
  standard: Map<string, string>;
  pro: Map<string, string>;
}

interface Route {
  name: string;
  /**
   * A valid request signed by `signer` about `owner`'s order (`owner` = signer unless a case
   * says otherwise; 'unknown' names a merchant that does not exist). Close gets a fresh order.
   */
  build(t: TestGateway, f: Fixtures, signer: Merchant, owner: Merchant | 'unknown'): Promise<Pick<SignedRequest, 'path' | 'body'>>;
}

async function createStandard(t: TestGateway, m: Merchant): Promise<string> {
  const body = orderBody(m, t.clock);
  const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: m, clock: t.clock });
  if (res.json.code !== 0) throw new Error(`fixture order refused: ${res.text}`);
  return String(body.request_no);
}

async function createPro(t: TestGateway, m: Merchant): Promise<string> {
  const body = proOrderBody(m, t.clock);
  const res = await api(t.baseUrl, { path: '/v4/pro/pay/cashier', body, merchant: m, clock: t.clock });
  if (res.json.code !== 0) throw new Error(`fixture order refused: ${res.text}`);
  return String(body.request_no);
}

const merchantNoOf = (owner: Merchant | 'unknown') => (owner === 'unknown' ? UNKNOWN_MERCHANT_NO : owner.merchantNo);

const ROUTES: Route[] = [
  {
    name: 'POST /v4/pay/cashier',
    build: async (t, _f, signer, owner) => ({ path: '/v4/pay/cashier', body: orderBody(signer, t.clock, { merchant_no: merchantNoOf(owner) }) }),
  },
  {
    name: 'POST /v4/pro/pay/cashier',
    build: async (t, _f, signer, owner) => ({ path: '/v4/pro/pay/cashier', body: proOrderBody(signer, t.clock, { merchant_no: merchantNoOf(owner) }) }),
  },
  {
    name: 'GET /v4/pay/orders/{merchant_no}/{request_no}',
    build: async (_t, f, _signer, owner) => ({
      path: `/v4/pay/orders/${merchantNoOf(owner)}/${owner === 'unknown' ? 'req_none' : f.standard.get(owner.merchantNo)}`,
    }),
  },
  {
    name: 'GET /v4/pro/pay/orders/{merchant_no}/{request_no}',
    build: async (_t, f, _signer, owner) => ({
      path: `/v4/pro/pay/orders/${merchantNoOf(owner)}/${owner === 'unknown' ? 'req_none' : f.pro.get(owner.merchantNo)}`,
    }),
  },
  {
    name: 'POST /v4/pay/orders/close',
    build: async (t, _f, _signer, owner) => ({
      path: '/v4/pay/orders/close',
      body: { merchant_no: merchantNoOf(owner), request_no: owner === 'unknown' ? 'req_none' : await createStandard(t, owner) },
    }),
  },
];

interface Ctx {
  t: TestGateway;
  f: Fixtures;
  route: Route;
  /** A merchant whose only application is disabled. */
  disabled: Merchant;
}

/** Sends the route's valid request with the given changes (signer and owner default to the main merchant). */
async function send(
  c: Ctx,
  change: Partial<Omit<SignedRequest, 'path' | 'body'>> & { raw?: boolean; owner?: Merchant | 'unknown' } = {},
): Promise<ApiResponse> {
  const { raw, owner, ...rest } = change;
  const signer = rest.merchant ?? c.t.merchant;
  const built = await c.route.build(c.t, c.f, signer, owner ?? signer);
  const req: SignedRequest = { ...built, merchant: signer, clock: c.t.clock, ...rest };
  return raw ? apiRaw(c.t.baseUrl, req) : api(c.t.baseUrl, req);
}

/** The exact body the route sends, for cases that sign by hand. */
async function prepared(c: Ctx): Promise<{ path: string; body: string | undefined }> {
  const built = await c.route.build(c.t, c.f, c.t.merchant, c.t.merchant);
  return { path: built.path, body: built.body === undefined ? undefined : JSON.stringify(built.body) };
}

function expectAccepted(res: ApiResponse): void {
  expect({ status: res.status, code: res.json.code, message: res.json.message }).toEqual({ status: 200, code: 0, message: 'success' });
  expect(res.signatureValid).toBe(true);
  expect(res.json.data).toBeTypeOf('object');
}

/** An answer signed with the platform default key, as for an unknown AppID (§3). */
async function expectSignedByDefaultKey(c: Ctx, res: ApiResponse): Promise<void> {
  const def = await defaultPlatformKey(c.t);
  expect(res.signatureValid).toBe(false);
  expect(responseSignedBy(def.publicKey, res)).toBe(true);
  expect(res.headers.get('sparkpay-serial')).toBe(def.serial);
  expect(res.headers.get('sparkpay-serial')).not.toBe(c.t.merchant.serial);
  expect(res.headers.get('sparkpay-nonce')).toMatch(/^[A-Za-z0-9]{32}$/);
  expect(res.headers.get('sparkpay-timestamp')).toBe(String(c.t.clock.seconds()));
}

const AUTH_HEADERS = ['Sparkpay-App-Id', 'Sparkpay-Timestamp', 'Sparkpay-Nonce', 'Sparkpay-Signature'] as const;

describe.each(DATABASE_KINDS)('signature and authentication on %s', (kind) => {
  let t: TestGateway;
  const f: Fixtures = { standard: new Map(), pro: new Map() };
  let disabled: Merchant;

  beforeAll(async () => {
    t = await startTestGateway({ kind });
    for (const m of [t.merchant, t.otherMerchant]) {
      f.standard.set(m.merchantNo, await createStandard(t, m));
      f.pro.set(m.merchantNo, await createPro(t, m));
    }
    disabled = await t.addMerchant();
    await t.gateway.db.kysely.updateTable('applications').set({ status: 'DISABLED' }).where('app_id', '=', disabled.appId).execute();
  });
  afterAll(async () => {
    await t?.close();
  });

  describe.each(ROUTES)('$name', (route) => {
    const ctx = (): Ctx => ({ t, f, route, disabled });

    it('accepts the valid signed request', async () => {
      expectAccepted(await send(ctx()));
    });

    describe.each(AUTH_HEADERS)('header %s', (name) => {
      // Without an AppID header there is no application to sign as: the default key signs.
      const check = async (c: Ctx, res: ApiResponse) => {
        expectError(res, 40003, 400, { signed: name !== 'Sparkpay-App-Id' });
        expect(res.json.message).toContain(name);
        if (name === 'Sparkpay-App-Id') await expectSignedByDefaultKey(c, res);
      };
      it('missing: 40003', async () => {
        const c = ctx();
        await check(c, await send(c, { headers: { [name]: null } }));
      });
      it('empty: 40003', async () => {
        const c = ctx();
        await check(c, await send(c, { headers: { [name]: '' } }));
      });
    });

    it('missing User-Agent: 40003', async () => {
      const res = await send(ctx(), { raw: true, headers: { 'user-agent': null } });
      expectError(res, 40003);
      expect(res.json.message).toContain('User-Agent');
    });

    it('empty User-Agent: 40003', async () => {
      expectError(await send(ctx(), { headers: { 'user-agent': '' } }), 40003);
    });

    it('unknown AppID: 40002, HTTP 401, signed with the platform default key', async () => {
      const c = ctx();
      const res = await send(c, { headers: { 'sparkpay-app-id': UNKNOWN_APP_ID } });
      expectError(res, 40002, 401, { signed: false });
      await expectSignedByDefaultKey(c, res);
      expect(Object.keys(res.json).sort()).toEqual(['code', 'message']);
    });

    it('disabled application: 40002, HTTP 401, signed with that application\'s platform key (its merchant holds it; §3 keeps the default key for unknown AppIDs)', async () => {
      const c = ctx();
      const res = await send(c, { merchant: c.disabled, owner: t.merchant });
      expectError(res, 40002, 401);
      expect(res.json.message).toContain('disabled');
      expect(res.headers.get('sparkpay-serial')).toBe(c.disabled.serial);
    });

    it.each(['abc', '1.7e9', '-1', '12a', '0x10'])('non-numeric timestamp %j: 40009', async (ts) => {
      const res = await send(ctx(), { timestamp: ts });
      expectError(res, 40009);
      expect(res.json.message).toContain('Sparkpay-Timestamp');
    });

    it.each([-300, 300, 0])('timestamp %i s from server time, 0.999 s into the server\'s second: inside the window', async (offset) => {
      const at = t.clock.ms;
      t.clock.ms = Math.floor(at / 1000) * 1000 + 999;
      try {
        const res = await send(ctx(), { timestamp: String(t.clock.seconds() + offset) });
        expect(res.json.code, res.json.message).toBe(0);
      } finally {
        t.clock.ms = at;
      }
    });

    it.each([-301, 301, -3600, 86_400])('timestamp %i s from server time: 40000, outside the window', async (offset) => {
      const res = await send(ctx(), { timestamp: String(t.clock.seconds() + offset) });
      expectError(res, 40000, 401);
      expect(res.json.message).toMatch(/window/i);
    });

    it.each([
      ['milliseconds', (s: number) => String(s * 1000)],
      ['30 digits', () => '9'.repeat(30)],
    ])('a digits-only timestamp far off (%s): 40000, outside the window (not malformed)', async (_label, ts) => {
      const res = await send(ctx(), { timestamp: ts(t.clock.seconds()) });
      expectError(res, 40000, 401);
      expect(res.json.message).toMatch(/window/i);
    });

    it.each([-300, -299, 299, 300])('timestamp %i s from server time: accepted', async (offset) => {
      expectAccepted(await send(ctx(), { timestamp: String(t.clock.seconds() + offset) }));
    });

    it.each([['65 characters', 'n'.repeat(65)], ['a space', 'a b'], ['non-ASCII', 'é'], ['a dot', 'abc.def'], ['a slash', 'a/b']])(
      'nonce with %s: 40009',
      async (_what, nonce) => {
        const res = await send(ctx(), { nonce });
        expectError(res, 40009);
        expect(res.json.message).toContain('Sparkpay-Nonce');
      },
    );

    it('nonce of 64 characters from [A-Za-z0-9_-]: accepted', async () => {
      expectAccepted(await send(ctx(), { nonce: `${generateNonce()}_-${generateNonce().slice(0, 30)}` }));
    });

    it('replayed nonce: 40000, the message says replay; the same nonce for another app is fine', async () => {
      const c = ctx();
      const nonce = generateNonce();
      expectAccepted(await send(c, { nonce }));
      const replay = await send(c, { nonce });
      expectError(replay, 40000, 401);
      expect(replay.json.message).toMatch(/replay/i);
      expectAccepted(await send(c, { nonce, merchant: t.otherMerchant }));
    });

    it('signature over a different body: 40000', async () => {
      const res = await send(ctx(), { signBody: '{"merchant_no":"M1"}' });
      expectError(res, 40000, 401);
      expect(res.json.message).toMatch(/signature/i);
    });

    it('signature over another timestamp than sent: 40000', async () => {
      const c = ctx();
      const p = await prepared(c);
      const ts = t.clock.seconds();
      const nonce = generateNonce();
      const signature = signMessage(t.merchant.privateKey, String(ts - 1), nonce, p.body ?? '');
      expectError(
        await api(t.baseUrl, { path: p.path, body: p.body, merchant: t.merchant, clock: t.clock, timestamp: String(ts), nonce, headers: { 'sparkpay-signature': signature } }),
        40000,
        401,
      );
    });

    it('signature over another nonce than sent: 40000', async () => {
      const c = ctx();
      const p = await prepared(c);
      const ts = String(t.clock.seconds());
      const signature = signMessage(t.merchant.privateKey, ts, generateNonce(), p.body ?? '');
      expectError(
        await api(t.baseUrl, { path: p.path, body: p.body, merchant: t.merchant, clock: t.clock, timestamp: ts, headers: { 'sparkpay-signature': signature } }),
        40000,
        401,
      );
    });

    it("signature by another merchant's key: 40000", async () => {
      expectError(await send(ctx(), { signWith: t.otherMerchant.privateKey }), 40000, 401);
    });

    it('signature by an unregistered key: 40000', async () => {
      expectError(await send(ctx(), { signWith: STRANGER_KEY }), 40000, 401);
    });

    it.each([
      ['not Base64', '!!!not-base64!!!'],
      ['too short', 'AAAA'],
      ['URL-safe alphabet', 'ab-_'.repeat(86)],
      ['with a space', 'QUJD REVG'],
      ['a length of 4n+1', 'A'.repeat(341)],
    ])('garbage signature (%s): 40000', async (_what, signature) => {
      expectError(await send(ctx(), { headers: { 'sparkpay-signature': signature } }), 40000, 401);
    });

    it('valid signature with one bit flipped: 40000', async () => {
      const c = ctx();
      const p = await prepared(c);
      const ts = String(t.clock.seconds());
      const nonce = generateNonce();
      const sig = Buffer.from(signMessage(t.merchant.privateKey, ts, nonce, p.body ?? ''), 'base64');
      sig[100] = (sig[100] ?? 0) ^ 1;
      expectError(
        await api(t.baseUrl, { path: p.path, body: p.body, merchant: t.merchant, clock: t.clock, timestamp: ts, nonce, headers: { 'sparkpay-signature': sig.toString('base64') } }),
        40000,
        401,
      );
    });

    it('valid signature without its Base64 padding: accepted (§2)', async () => {
      const c = ctx();
      const p = await prepared(c);
      const ts = String(t.clock.seconds());
      const nonce = generateNonce();
      const padded = signMessage(t.merchant.privateKey, ts, nonce, p.body ?? '');
      // 256 signature bytes end in a group of one byte: "==" padding.
      expect(padded.endsWith('==')).toBe(true);
      const res = await api(t.baseUrl, {
        path: p.path,
        body: p.body,
        merchant: t.merchant,
        clock: t.clock,
        timestamp: ts,
        nonce,
        headers: { 'sparkpay-signature': padded.replace(/=+$/, '') },
      });
      expectAccepted(res);
    });

    it("AppID of another merchant (merchant_no of A, signed by B's application): 40007", async () => {
      const res = await send(ctx(), { merchant: t.otherMerchant, owner: t.merchant });
      expectError(res, 40007);
    });

    it('unknown merchant_no: 40008', async () => {
      expectError(await send(ctx(), { owner: 'unknown' }), 40008);
    });

    describe('which check wins (§2 order)', () => {
      it('missing header + unknown AppID: 40003', async () => {
        const res = await send(ctx(), { headers: { 'sparkpay-app-id': UNKNOWN_APP_ID, 'sparkpay-nonce': null } });
        expectError(res, 40003, 400, { signed: false });
      });

      it('missing User-Agent + unknown AppID: 40003', async () => {
        const res = await send(ctx(), { raw: true, headers: { 'sparkpay-app-id': UNKNOWN_APP_ID, 'user-agent': null } });
        expectError(res, 40003, 400, { signed: false });
      });

      it('unknown AppID + timestamp outside the window: 40002', async () => {
        const res = await send(ctx(), { headers: { 'sparkpay-app-id': UNKNOWN_APP_ID }, timestamp: String(t.clock.seconds() - 3600) });
        expectError(res, 40002, 401, { signed: false });
      });

      it('unknown AppID + non-numeric timestamp: 40002', async () => {
        const res = await send(ctx(), { headers: { 'sparkpay-app-id': UNKNOWN_APP_ID }, timestamp: 'yesterday' });
        expectError(res, 40002, 401, { signed: false });
      });

      it('unknown AppID + bad signature: 40002', async () => {
        const res = await send(ctx(), { headers: { 'sparkpay-app-id': UNKNOWN_APP_ID, 'sparkpay-signature': 'AAAA' } });
        expectError(res, 40002, 401, { signed: false });
      });

      it('timestamp outside the window + bad signature: 40000 with the window message', async () => {
        const res = await send(ctx(), { timestamp: String(t.clock.seconds() + 301), signWith: STRANGER_KEY });
        expectError(res, 40000, 401);
        expect(res.json.message).toMatch(/window/i);
      });

      it('non-numeric timestamp + bad signature: 40009', async () => {
        expectError(await send(ctx(), { timestamp: 'now', signWith: STRANGER_KEY }), 40009);
      });

      it('bad signature + replayed nonce: the signature message; the refused request does not use up the nonce', async () => {
        const c = ctx();
        const nonce = generateNonce();
        expectAccepted(await send(c, { nonce }));
        const res = await send(c, { nonce, signWith: STRANGER_KEY });
        expectError(res, 40000, 401);
        expect(res.json.message).toMatch(/signature/i);
        expect(res.json.message).not.toMatch(/replay/i);

        const fresh = generateNonce();
        expectError(await send(c, { nonce: fresh, signWith: STRANGER_KEY }), 40000, 401);
        expectAccepted(await send(c, { nonce: fresh }));
      });

      it('bad signature + unknown merchant_no: 40000', async () => {
        expectError(await send(ctx(), { owner: 'unknown', signWith: STRANGER_KEY }), 40000, 401);
      });

      it("replayed nonce + AppID of another merchant: 40000", async () => {
        const c = ctx();
        const nonce = generateNonce();
        expectAccepted(await send(c, { nonce, merchant: t.otherMerchant }));
        const res = await send(c, { nonce, merchant: t.otherMerchant, owner: t.merchant });
        expectError(res, 40000, 401);
        expect(res.json.message).toMatch(/replay/i);
      });
    });
  });

  describe('nonce memory', () => {
    const path = () => `/v4/pay/orders/${t.merchant.merchantNo}/${f.standard.get(t.merchant.merchantNo)}`;

    it('a nonce may be used again once its window has passed', async () => {
      const nonce = generateNonce();
      expectAccepted(await api(t.baseUrl, { path: path(), merchant: t.merchant, clock: t.clock, nonce }));
      t.clock.advance(601);
      expectAccepted(await api(t.baseUrl, { path: path(), merchant: t.merchant, clock: t.clock, nonce }));
    });

    it('the same nonce sent concurrently is accepted once', async () => {
      const nonce = generateNonce();
      const answers = await Promise.all(Array.from({ length: 8 }, () => api(t.baseUrl, { path: path(), merchant: t.merchant, clock: t.clock, nonce })));
      expect(answers.filter((r) => r.json.code === 0)).toHaveLength(1);
      for (const r of answers.filter((a) => a.json.code !== 0)) {
        expectError(r, 40000, 401);
        expect(r.json.message).toMatch(/replay/i);
      }
    });

    it('a nonce sent with a future timestamp is remembered for as long as that timestamp is valid', async () => {
      const nonce = generateNonce();
      const ts = String(t.clock.seconds() + 299);
      expectAccepted(await api(t.baseUrl, { path: path(), merchant: t.merchant, clock: t.clock, nonce, timestamp: ts }));
      t.clock.advance(400);
      // The very same request is still inside the window (101 s old): a replay.
      const replay = await api(t.baseUrl, { path: path(), merchant: t.merchant, clock: t.clock, nonce, timestamp: ts });
      expectError(replay, 40000, 401);
      expect(replay.json.message).toMatch(/replay/i);
    });
  });

  describe('exact bytes', () => {
    it('verifies the body as sent: pretty-printed JSON with odd key order is accepted', async () => {
      const body = orderBody(t.merchant, t.clock);
      const text = `{\n  "total_amount" : "10.50",\n\t"merchant_no":"${t.merchant.merchantNo}", "request_no": "${String(body.request_no)}",
        "merchant_order_time": ${t.clock.seconds()}, "merchant_order_currency": "USDT" }\n`;
      expectAccepted(await api(t.baseUrl, { path: '/v4/pay/cashier', body: text, merchant: t.merchant, clock: t.clock }));
    });

    it('a signature over the re-serialised body does not verify', async () => {
      const body = orderBody(t.merchant, t.clock);
      const text = JSON.stringify(body, null, 2);
      const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body: text, signBody: JSON.stringify(body), merchant: t.merchant, clock: t.clock });
      expectError(res, 40000, 401);
    });

    it('every answer is signed with a fresh nonce and the server time', async () => {
      const q = () => api(t.baseUrl, { path: `/v4/pay/orders/${t.merchant.merchantNo}/none`, merchant: t.merchant, clock: t.clock });
      const [a, b] = [await q(), await q()];
      expect(a.signatureValid && b.signatureValid).toBe(true);
      expect(a.headers.get('sparkpay-nonce')).toMatch(/^[A-Za-z0-9]{32}$/);
      expect(a.headers.get('sparkpay-nonce')).not.toBe(b.headers.get('sparkpay-nonce'));
      expect(a.headers.get('sparkpay-timestamp')).toBe(String(t.clock.seconds()));
      expect(a.headers.get('sparkpay-serial')).toBe(t.merchant.serial);
    });
  });
});

// SPARKPAY_RATE_LIMIT=0 disables the limit (README "The API"); only used as set-up before, never asserted.
describe('rate limit 0', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ config: { rateLimit: 0 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('never answers 40011, however many requests in the same instant', async () => {
    for (let i = 0; i < 60; i += 1) expectError(await api(t.baseUrl, { path: `/v4/pay/orders/${t.merchant.merchantNo}/none`, merchant: t.merchant, clock: t.clock }), 43005, 404);
  });
});

describe.each(DATABASE_KINDS)('rate limit on %s', (kind) => {
  let t: TestGateway;
  beforeAll(async () => {
    // 5 requests/s per application, bursts of 10.
    t = await startTestGateway({ kind, config: { rateLimit: 5 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  // Each test uses a merchant of its own, so its bucket starts full whatever ran before.
  const query = (m: Merchant) => api(t.baseUrl, { path: `/v4/pay/orders/${m.merchantNo}/none`, merchant: m, clock: t.clock });
  const passes = (res: ApiResponse) => expectError(res, 43005, 404);
  const limited = (res: ApiResponse) => {
    expectError(res, 40011, 429);
    expect(res.json.message).toMatch(/limit/i);
  };

  it('answers 40011 with HTTP 429 after a burst of twice the rate, per application', async () => {
    const m = await t.addMerchant();
    for (let i = 0; i < 10; i += 1) passes(await query(m));
    limited(await query(m));
    limited(await api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(m, t.clock), merchant: m, clock: t.clock }));
    limited(await api(t.baseUrl, { path: '/v4/pro/pay/cashier', body: proOrderBody(m, t.clock), merchant: m, clock: t.clock }));
    limited(await api(t.baseUrl, { path: `/v4/pro/pay/orders/${m.merchantNo}/none`, merchant: m, clock: t.clock }));
    limited(await api(t.baseUrl, { path: '/v4/pay/orders/close', body: { merchant_no: m.merchantNo, request_no: 'none' }, merchant: m, clock: t.clock }));
    // Another application is not limited by this one's traffic.
    passes(await query(t.otherMerchant));
  });

  it('refills at the rate as the injected clock advances', async () => {
    const m = await t.addMerchant();
    for (let i = 0; i < 10; i += 1) passes(await query(m));
    limited(await query(m));
    t.clock.advance(1);
    for (let i = 0; i < 5; i += 1) passes(await query(m));
    limited(await query(m));
    t.clock.advance(60);
    for (let i = 0; i < 10; i += 1) passes(await query(m));
    limited(await query(m));
  });

  it('checks authentication and replay before the limit', async () => {
    const m = await t.addMerchant();
    const nonce = generateNonce();
    passes(await api(t.baseUrl, { path: `/v4/pay/orders/${m.merchantNo}/none`, merchant: m, clock: t.clock, nonce }));
    for (let i = 0; i < 9; i += 1) passes(await query(m));
    limited(await query(m));
    expectError(await api(t.baseUrl, { path: `/v4/pay/orders/${m.merchantNo}/none`, merchant: m, clock: t.clock, signWith: STRANGER_KEY }), 40000, 401);
    const replay = await api(t.baseUrl, { path: `/v4/pay/orders/${m.merchantNo}/none`, merchant: m, clock: t.clock, nonce });
    expectError(replay, 40000, 401);
    expect(replay.json.message).toMatch(/replay/i);
  });

  it('checks the limit before the body: a malformed body over the limit is 40011', async () => {
    const m = await t.addMerchant();
    for (let i = 0; i < 10; i += 1) passes(await query(m));
    limited(await api(t.baseUrl, { path: '/v4/pay/cashier', body: '{not json', merchant: m, clock: t.clock }));
  });
});
