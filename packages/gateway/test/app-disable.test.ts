// `sparkpay app disable` / `app enable` against a running gateway (PROTOCOL §2: a disabled
// application is refused with 40002, signed with its own platform key, §3). The commands run as
// the operator runs them, on the gateway's database from outside its store: the server keeps an
// application it read for a second (ADR 0010), so that second is the documented bound.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inProcess, type Env } from './cli-run.js';
import { DATABASE_KINDS } from './databases.js';
import { api, expectError, orderBody, startTestGateway, TEST_MASTER_KEY, type Merchant, type TestGateway } from './harness.js';

describe.each(DATABASE_KINDS)('disabling an application on a running gateway (%s)', (kind) => {
  let t: TestGateway;
  let root: string;
  let env: Env;
  beforeAll(async () => {
    t = await startTestGateway({ kind });
    root = mkdtempSync(join(tmpdir(), 'sparkpay-app-disable-'));
    env = { SPARKPAY_DATA_DIR: join(root, 'data'), SPARKPAY_DATABASE_URL: t.db.url, SPARKPAY_MASTER_KEY: TEST_MASTER_KEY };
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const sparkpay = (...args: string[]) => inProcess(args, env, root);
  const createOrder = (m: Merchant) => api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(m, t.clock), merchant: m, clock: t.clock });
  /** Past the server's cache of applications (1 s). */
  const pastApplicationCache = () => t.clock.advance(1.001);

  it('refuses a disabled application\'s requests with 40002 (signed with its key) within a second, and serves them again once enabled', async () => {
    const m = await t.addMerchant();
    const before = await createOrder(m);
    expect(before.json.code).toBe(0);

    const disabled = await sparkpay('app', 'disable', m.appId, '--json');
    expect(disabled.code, disabled.stderr).toBe(0);
    expect(JSON.parse(disabled.stdout)).toEqual({ app_id: m.appId, merchant_no: m.merchantNo, status: 'DISABLED', changed: true });
    // The server read the application just now: it may serve it until that read is a second old…
    expect((await createOrder(m)).json.code).toBe(0);
    pastApplicationCache();
    // …and not after.
    const refused = await createOrder(m);
    expectError(refused, 40002, 401);
    expect(refused.json.message).toContain('disabled');
    expect(refused.headers.get('sparkpay-serial')).toBe(m.serial);
    // Other applications are served as before, and so is the payer of an order made before.
    expect((await createOrder(t.merchant)).json.code).toBe(0);
    const cashier = new URL(String(before.json.data!.cashier_url));
    const view = await fetch(`${t.baseUrl}/cashier/api/orders/${String(before.json.data!.payment_order_no)}?t=${encodeURIComponent(cashier.searchParams.get('t')!)}`);
    expect(view.status).toBe(200);

    const enabled = await sparkpay('app', 'enable', m.appId);
    expect(enabled.code, enabled.stderr).toBe(0);
    expect(enabled.stdout).toBe(`application ${m.appId} enabled: its requests are served from now on (within 1 s on every instance)\n`);
    pastApplicationCache();
    const served = await createOrder(m);
    expect(served.json.code, served.json.message).toBe(0);
    expect(served.signatureValid).toBe(true);
  });
});
