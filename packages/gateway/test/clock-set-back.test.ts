// The server's clock set back (an NTP step, an operator's mistake): what the gateway keeps for a
// while — rate-limit buckets, the merchants and applications it read a second ago, which platform
// key signs — must not be kept, or held against anyone, for as long as the step (an API review:
// an hour of 40011, an INACTIVE merchant served for an hour, a retired key signing for an hour).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenBucket } from '../src/adapters/http/rate-limit.js';
import { addPlatformKey, retirePlatformKey, type AdminDeps } from '../src/app/merchant-admin.js';
import { ACTIVE_KEY_TTL_MS } from '../src/app/platform-keys.js';
import { api, ManualClock, orderBody, startTestGateway, type TestGateway } from './harness.js';

const HOUR_MS = 3_600_000;

describe('a rate-limit bucket after the clock was set back', () => {
  it('neither refills nor falls into debt: the next request within the rate passes', () => {
    const limit = tokenBucket(10, 10);
    const t0 = 1_000_000_000;
    for (let i = 0; i < 10; i += 1) expect(limit.take('app', t0)).toBe(true);
    expect(limit.take('app', t0)).toBe(false);
    // An hour back: nothing refilled, nothing owed (it was 36,000 tokens below zero, an hour of refusals).
    expect(limit.take('app', t0 - HOUR_MS)).toBe(false);
    expect(limit.take('app', t0 - HOUR_MS + 100)).toBe(true);
    expect(limit.take('app', t0 - HOUR_MS + 200)).toBe(true);
  });
});

describe('the gateway after its clock was set back an hour', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ kind: 'sqlite' });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
  });

  const create = () => api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(t.merchant, t.clock), merchant: t.merchant, clock: t.clock });

  it('sees a merchant made INACTIVE by another process within a second, as before the step', async () => {
    const m = await t.addMerchant();
    const createFor = () => api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(m, t.clock), merchant: m, clock: t.clock });
    expect((await createFor()).json.code).toBe(0);
    t.clock.ms -= HOUR_MS;
    // Another process (the CLI) deactivates it: a write this gateway's cache does not see.
    await t.gateway.store.merchants.update(m.merchantNo, { status: 'INACTIVE' }, t.clock.nowMs());
    t.clock.advance(1.5);
    expect((await createFor()).json.code).toBe(41002);
  });

  it('signs with a key activated by the CLI (its clock right) within the signing cache\'s time, not the retired one', async () => {
    const m = await t.addMerchant();
    const ask = () => api(t.baseUrl, { path: `/v4/pay/orders/${m.merchantNo}/no-such-order`, merchant: m, clock: t.clock });
    expect((await ask()).headers.get('sparkpay-serial')).toBe(m.serial);
    // The CLI's clock is right; the gateway's goes back an hour.
    const cli = new ManualClock(t.clock.ms);
    t.clock.ms -= HOUR_MS;
    const deps: AdminDeps = { store: t.gateway.store, clock: cli, ids: t.gateway.ids, platformKeys: t.gateway.platformKeys };
    const added = await addPlatformKey(deps, m.appId, true);
    if (!added.ok) throw new Error(added.message);
    cli.advance(ACTIVE_KEY_TTL_MS / 1000 + 5);
    const retired = await retirePlatformKey(deps, m.appId, m.serial);
    expect(retired, retired.ok ? '' : retired.message).toMatchObject({ ok: true });
    // A minute later on the gateway's clock: before, it signed with the retired key for the hour.
    t.clock.advance(60);
    expect((await ask()).headers.get('sparkpay-serial')).toBe(added.value.key.serial);
  });

  it('does not refuse an application (40011) for as long as the step', async () => {
    expect((await create()).json.code).toBe(0);
    t.clock.ms -= HOUR_MS;
    t.clock.advance(1);
    expect((await create()).json.code).toBe(0);
  });
});
