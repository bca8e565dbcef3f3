// Key rotation (PROTOCOL §3, §4): a platform key is rotated with an overlap — a NEXT key is
// listed for merchants to install beside the one they have (keyed by serial) but signs nothing
// until the operator activates it; the key before it retires only once it no longer signs. A
// merchant's own public key is replaced at once. Through the gateway's HTTP API on both databases.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateRsaKeyPair, parsePrivateKey, parsePublicKey } from '@sparkpay/protocol';
import { activatePlatformKey, addPlatformKey, liveKeys, retirePlatformKey, setMerchantKey, type AdminDeps } from '../src/app/merchant-admin.js';
import { ACTIVE_KEY_TTL_MS } from '../src/app/platform-keys.js';
import { DATABASE_KINDS } from './databases.js';
import { api, responseSignedBy, startTestGateway, type Merchant, type TestGateway } from './harness.js';

describe.each(DATABASE_KINDS)('key rotation (%s)', (kind) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ kind });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
  });

  const deps = (): AdminDeps => ({ store: t.gateway.store, clock: t.clock, ids: t.gateway.ids, platformKeys: t.gateway.platformKeys });
  /** A signed query of an order that does not exist: 43005, signed with the application's platform key. */
  const ask = (m: Merchant, signWith = m.privateKey) => api(t.baseUrl, { path: `/v4/pay/orders/${m.merchantNo}/no-such-order`, merchant: m, clock: t.clock, signWith });
  const live = async (appId: string) => (await liveKeys(deps(), appId))!.map((k) => [k.key.serial, k.key.status, k.signing]);
  /** Past every instance's cache of which key signs. */
  const pastSigningCache = () => t.clock.advance(ACTIVE_KEY_TTL_MS / 1000 + 1);

  it('lists a NEXT key without signing with it, switches to it once activated, and retires the old key only once it no longer signs', async () => {
    const m = await t.addMerchant();
    const before = await ask(m);
    expect(before.json.code).toBe(43005);
    expect(before.headers.get('sparkpay-serial')).toBe(m.serial);
    expect(before.signatureValid).toBe(true);

    const added = await addPlatformKey(deps(), m.appId, false);
    if (!added.ok) throw new Error(added.message);
    const next = added.value.key;
    expect(next).toMatchObject({ appId: m.appId, status: 'NEXT' });
    expect(added.value.signing).toBe(false);
    expect(await live(m.appId)).toEqual([
      [m.serial, 'ACTIVE', true],
      [next.serial, 'NEXT', false],
    ]);
    pastSigningCache();
    expect((await ask(m)).headers.get('sparkpay-serial')).toBe(m.serial);

    // Refusals: the signing key cannot retire; a serial of nobody or of another application, or
    // a key that is not NEXT, cannot be activated.
    expect(await retirePlatformKey(deps(), m.appId, m.serial)).toMatchObject({ ok: false, message: expect.stringMatching(/signs this application's answers/) });
    expect(await activatePlatformKey(deps(), m.appId, 'NO-SUCH-SERIAL')).toMatchObject({ ok: false, message: expect.stringMatching(/has no platform key/) });
    expect(await activatePlatformKey(deps(), t.merchant.appId, next.serial)).toMatchObject({ ok: false, message: expect.stringMatching(/has no platform key/) });
    expect(await activatePlatformKey(deps(), m.appId, m.serial)).toMatchObject({ ok: false, message: expect.stringMatching(/only a NEXT key/) });
    expect(await activatePlatformKey(deps(), '999999999999999999', next.serial)).toMatchObject({ ok: false, message: expect.stringMatching(/does not exist/) });

    expect(await activatePlatformKey(deps(), m.appId, next.serial)).toMatchObject({ ok: true, value: { signing: true, key: { serial: next.serial, status: 'ACTIVE', activatedAt: t.clock.nowMs() } } });
    expect(await live(m.appId)).toEqual([
      [m.serial, 'ACTIVE', false],
      [next.serial, 'ACTIVE', true],
    ]);
    // Instances may still sign with the old key until their cache of the signing key runs out:
    // it cannot retire before that (it would still sign after "retired").
    const early = await ask(m);
    expect(early.headers.get('sparkpay-serial')).toBe(m.serial);
    expect(await retirePlatformKey(deps(), m.appId, m.serial)).toMatchObject({ ok: false, message: expect.stringMatching(/instances may still sign with .*retire it in 5 s/) });
    pastSigningCache();
    const after = await ask(m);
    expect(after.json.code).toBe(43005);
    expect(after.headers.get('sparkpay-serial')).toBe(next.serial);
    expect(responseSignedBy(parsePublicKey(next.publicKeyPem), after)).toBe(true);
    expect(after.signatureValid).toBe(false);
    // The other applications keep their keys.
    expect((await ask(t.merchant)).headers.get('sparkpay-serial')).toBe(t.merchant.serial);

    expect(await retirePlatformKey(deps(), m.appId, m.serial)).toMatchObject({ ok: true, value: { serial: m.serial, status: 'RETIRED' } });
    expect(await live(m.appId)).toEqual([[next.serial, 'ACTIVE', true]]);
    expect(await retirePlatformKey(deps(), m.appId, m.serial)).toMatchObject({ ok: false, message: expect.stringMatching(/already retired/) });
    expect(await retirePlatformKey(deps(), m.appId, next.serial)).toMatchObject({ ok: false });
  });

  it('signs at once with a key added with activate (a leaked key), withdraws a NEXT key, and will not activate a key older than the signing one', async () => {
    const m = await t.addMerchant();
    const withdrawn = await addPlatformKey(deps(), m.appId, false);
    if (!withdrawn.ok) throw new Error(withdrawn.message);
    t.clock.advance(1);
    const urgent = await addPlatformKey(deps(), m.appId, true);
    if (!urgent.ok) throw new Error(urgent.message);
    expect(urgent.value).toMatchObject({ signing: true, key: { status: 'ACTIVE' } });
    pastSigningCache();
    expect((await ask(m)).headers.get('sparkpay-serial')).toBe(urgent.value.key.serial);
    // The NEXT key made before it would not sign if activated: refused, and it can be withdrawn.
    expect(await activatePlatformKey(deps(), m.appId, withdrawn.value.key.serial)).toMatchObject({ ok: false, message: expect.stringMatching(/older than the key that signs now/) });
    expect(await retirePlatformKey(deps(), m.appId, withdrawn.value.key.serial)).toMatchObject({ ok: true });
    expect(await live(m.appId)).toEqual([
      [m.serial, 'ACTIVE', false],
      [urgent.value.key.serial, 'ACTIVE', true],
    ]);
    expect(await addPlatformKey(deps(), '999999999999999999', false)).toMatchObject({ ok: false, message: expect.stringMatching(/does not exist/) });
  });

  it('replaces the merchant public key: requests signed with the old key are refused (40000) within a second, with the new key they pass', async () => {
    const m = await t.addMerchant();
    const fresh = generateRsaKeyPair();
    expect(await setMerchantKey(deps(), m.appId, 'not a key')).toMatchObject({ ok: false, message: expect.stringMatching(/not an RSA-2048/) });
    // PEM without its header lines is accepted, as at upload (§4).
    const bare = fresh.publicKeyPem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
    const set = await setMerchantKey(deps(), m.appId, bare);
    expect(set).toMatchObject({ ok: true, value: { appId: m.appId, merchantNo: m.merchantNo, merchantPublicKeyPem: fresh.publicKeyPem } });
    expect(await setMerchantKey(deps(), '999999999999999999', fresh.publicKeyPem)).toMatchObject({ ok: false, message: expect.stringMatching(/does not exist/) });
    t.clock.advance(2);
    const old = await ask(m);
    expect(old.json.code).toBe(40000);
    expect(old.signatureValid).toBe(true);
    const renewed = await ask(m, parsePrivateKey(fresh.privateKeyPem));
    expect(renewed.json.code).toBe(43005);
    expect(renewed.signatureValid).toBe(true);
    // Another application of the gateway is untouched.
    expect((await ask(t.merchant)).json.code).toBe(43005);
  });
});

// While the database does not answer, a 50000 is still signed (the merchant's SDK then reads it
// instead of taking it for a forgery): with the key that signed for the application within the
// last minute, else the default key, and never one retired meanwhile (found by review).
describe('signing while the database does not answer (sqlite)', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ kind: 'sqlite' });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
  });

  async function whileDown<T>(fn: () => Promise<T>): Promise<T> {
    const store = (t.gateway.platformKeys as unknown as { store: import('../src/app/ports.js').Store }).store;
    const real = store.platformKeys.activeFor;
    store.platformKeys.activeFor = () => Promise.reject(new Error('Connection terminated unexpectedly'));
    try {
      return await fn();
    } finally {
      store.platformKeys.activeFor = real;
    }
  }

  it('signs with the key of a moment ago, and never with one retired since its last use', async () => {
    const deps: AdminDeps = { store: t.gateway.store, clock: t.clock, ids: t.gateway.ids, platformKeys: t.gateway.platformKeys };
    const m = await t.addMerchant();
    const defaultSerial = (await t.gateway.platformKeys.signingKeyFor(null)).serial;
    expect((await t.gateway.platformKeys.signingKeyFor(m.appId)).serial).toBe(m.serial);
    // Down 30 s after the entry ran out: the key of a moment ago signs.
    t.clock.advance(ACTIVE_KEY_TTL_MS / 1000 + 30);
    expect((await whileDown(() => t.gateway.platformKeys.signingKeyFor(m.appId))).serial).toBe(m.serial);
    // The key leaked: a new one is activated, the old one retired; an hour later the database drops.
    const added = await addPlatformKey(deps, m.appId, true);
    if (!added.ok) throw new Error(added.message);
    t.clock.advance(ACTIVE_KEY_TTL_MS / 1000 + 1);
    expect(await retirePlatformKey(deps, m.appId, m.serial)).toMatchObject({ ok: true });
    t.clock.advance(3600);
    const key = await whileDown(() => t.gateway.platformKeys.signingKeyFor(m.appId));
    expect(key.serial).not.toBe(m.serial);
    expect(key.serial).toBe(defaultSerial);
  });
});
