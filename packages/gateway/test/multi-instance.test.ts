// Two real gateway processes (`sparkpay start`) on one PostgreSQL database, set up with the real
// CLI: nonce memory and request_no idempotency are shared by the instances (PROTOCOL §2, §7),
// and either instance serves what the other created. Runs only with SPARKPAY_TEST_DATABASE_URL;
// needs the built package (`npx tsc -b packages/gateway`).
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateNonce, parsePublicKey, signMessage, verifyMessage } from '@sparkpay/protocol';
import { createTestDatabase, PG_BASE_URL, type TestDatabase } from './databases.js';
import { assertGatewayBuilt, childEnv, freePort, GATEWAY_MAIN, ROOT, startGatewayProcess, stopProcess, waitHealthy, type GatewayProcess } from './processes.js';

const WALLET = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
const WALLET_3 = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC';
const PUBLIC_URL = 'https://pay.example.test'; // both instances sit behind one address
const execFileP = promisify(execFile);

/** A gateway process with a data dir of its own: the instances share only the database. */
interface Instance extends GatewayProcess {
  dataDir: string;
}

interface Reply {
  status: number;
  json: { code: number; message: string; data?: Record<string, unknown> };
  serial: string | null;
  /** The body's signature verified with the platform public key `app create` printed. */
  verified: boolean;
}

interface SignedRequest {
  method: 'GET' | 'POST';
  path: string;
  body: string;
  headers: Record<string, string>;
}

function startInstance(name: string, port: number, common: Record<string, string>): Instance {
  const dataDir = mkdtempSync(join(tmpdir(), `sparkpay-${name}-`));
  return { ...startGatewayProcess({ name, port, env: { ...common, SPARKPAY_DATA_DIR: dataDir } }), dataDir };
}

async function stopInstance(inst: Instance): Promise<void> {
  await stopProcess(inst, 'SIGTERM');
  rmSync(inst.dataDir, { recursive: true, force: true });
}

describe.runIf(PG_BASE_URL)('two gateway processes on one PostgreSQL database', () => {
  let db: TestDatabase | undefined;
  const instances: Instance[] = [];
  let a: Instance;
  let b: Instance;
  let keyDir: string;
  let merchantNo: string;
  let appId: string;
  let serial: string;
  let merchantKey: KeyObject;
  let platformKey: KeyObject;
  let common: Record<string, string>;

  /** Runs the sparkpay CLI with the instances' database; its stdout must be exactly one JSON object. */
  async function cli(args: string[]): Promise<Record<string, unknown>> {
    const env = childEnv({ ...common, SPARKPAY_DATA_DIR: keyDir });
    let stdout: string;
    try {
      ({ stdout } = await execFileP(process.execPath, [GATEWAY_MAIN, ...args], { cwd: ROOT, env, timeout: 20_000 }));
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`sparkpay ${args.join(' ')} failed: ${e.stderr || e.message}`);
    }
    expect(stdout.endsWith('\n') && stdout.indexOf('\n') === stdout.length - 1, `one line of output, got: ${stdout}`).toBe(true);
    const value: unknown = JSON.parse(stdout);
    expect(value !== null && typeof value === 'object' && !Array.isArray(value), `a JSON object, got: ${stdout}`).toBe(true);
    return value as Record<string, unknown>;
  }

  function sign(method: 'GET' | 'POST', path: string, body: unknown = undefined): SignedRequest {
    const text = body === undefined ? '' : JSON.stringify(body);
    const timestamp = String(Math.floor(Date.now() / 1000));
    const nonce = generateNonce();
    const headers: Record<string, string> = {
      'user-agent': 'sparkpay-multi-instance-test/1.0',
      'sparkpay-app-id': appId,
      'sparkpay-timestamp': timestamp,
      'sparkpay-nonce': nonce,
      'sparkpay-signature': signMessage(merchantKey, timestamp, nonce, text),
    };
    if (method === 'POST') headers['content-type'] = 'application/json';
    return { method, path, body: text, headers };
  }

  async function send(inst: Instance, req: SignedRequest): Promise<Reply> {
    const res = await fetch(`${inst.baseUrl}${req.path}`, { method: req.method, headers: req.headers, body: req.method === 'POST' ? req.body : undefined });
    const text = await res.text();
    const rt = res.headers.get('sparkpay-timestamp');
    const rn = res.headers.get('sparkpay-nonce');
    const rs = res.headers.get('sparkpay-signature');
    return {
      status: res.status,
      json: JSON.parse(text) as Reply['json'],
      serial: res.headers.get('sparkpay-serial'),
      verified: !!rt && !!rn && !!rs && verifyMessage(platformKey, rt, rn, text, rs),
    };
  }

  const orderBody = (overrides: Record<string, unknown> = {}) => ({
    merchant_no: merchantNo,
    request_no: `mi_${randomBytes(8).toString('hex')}`,
    merchant_order_time: Math.floor(Date.now() / 1000),
    total_amount: '10.50',
    merchant_order_currency: 'USDT',
    merchant_order_desc: 'multi-instance',
    ...overrides,
  });
  const create = (inst: Instance, body: Record<string, unknown>) => send(inst, sign('POST', '/v4/pay/cashier', body));
  const query = (inst: Instance, requestNo: unknown) => send(inst, sign('GET', `/v4/pay/orders/${merchantNo}/${String(requestNo)}`));

  async function sql<T extends Record<string, unknown>>(text: string, values: unknown[]): Promise<T[]> {
    const c = new pg.Client({ connectionString: db!.url });
    await c.connect();
    try {
      return (await c.query<T>(text, values)).rows;
    } finally {
      await c.end();
    }
  }

  beforeAll(async () => {
    assertGatewayBuilt();
    db = await createTestDatabase('postgres');
    common = { SPARKPAY_DATABASE_URL: db.url, SPARKPAY_MASTER_KEY: randomBytes(32).toString('hex'), SPARKPAY_PUBLIC_URL: PUBLIC_URL };
    const [portA, portB] = [await freePort(), await freePort()];
    // Started together on an empty database: both migrate at once.
    a = startInstance('A', portA, common);
    b = startInstance('B', portB, common);
    instances.push(a, b);
    await Promise.all([waitHealthy(a, 20_000), waitHealthy(b, 20_000)]);

    keyDir = mkdtempSync(join(tmpdir(), 'sparkpay-cli-'));
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    merchantKey = pair.privateKey;
    const publicKeyFile = join(keyDir, 'merchant_public_key.pem');
    writeFileSync(publicKeyFile, pair.publicKey.export({ type: 'spki', format: 'pem' }).toString());

    const merchant = await cli(['merchant', 'create', '--name', 'Multi Instance Shop', '--json']);
    merchantNo = String(merchant.merchant_no);
    expect(merchantNo).toMatch(/^M\d+$/);
    const updated = await cli(['merchant', 'set', merchantNo, '--wallet', `2=${WALLET}`, '--wallet', `3=${WALLET_3}`, '--json']);
    expect(updated.wallets).toEqual({ '2': WALLET, '3': WALLET_3 });
    const app = await cli(['app', 'create', '--merchant', merchantNo, '--public-key', publicKeyFile, '--json']);
    appId = String(app.app_id);
    serial = String(app.serial);
    platformKey = parsePublicKey(String(app.platform_public_key));
    expect(app.merchant_no).toBe(merchantNo);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(instances.map(stopInstance));
    if (keyDir) rmSync(keyDir, { recursive: true, force: true });
    await db?.drop();
  }, 30_000);

  it('keeps one default platform key although both instances started together on an empty database', async () => {
    const rows = await sql<{ serial: string }>("SELECT serial FROM platform_keys WHERE app_id IS NULL AND status = 'ACTIVE'", []);
    expect(rows).toHaveLength(1);
  });

  it('refuses on one instance a request already accepted by the other (shared nonce memory)', async () => {
    const body = orderBody();
    const req = sign('POST', '/v4/pay/cashier', body);
    const first = await send(a, req);
    expect(first.json).toMatchObject({ code: 0, message: 'success' });
    const replay = await send(b, req);
    expect(replay.status).toBe(401);
    expect(replay.json.code).toBe(40000);
    expect(replay.json.message).toMatch(/replay/i);
    expect(replay.json.data).toBeUndefined();
    expect(replay.verified).toBe(true);
    // And back the other way, on a query this time.
    const q = sign('GET', `/v4/pay/orders/${merchantNo}/${String(body.request_no)}`);
    expect((await send(b, q)).json.code).toBe(0);
    expect((await send(a, q)).json).toMatchObject({ code: 40000, message: expect.stringMatching(/replay/i) });
    const rows = await sql('SELECT payment_order_no FROM orders WHERE merchant_no = $1 AND request_no_key = $2', [merchantNo, String(body.request_no)]);
    expect(rows).toHaveLength(1);
  });

  it('creates exactly one order for 30 concurrent identical requests spread over both instances', async () => {
    const body = orderBody();
    const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => create(i % 2 === 0 ? a : b, body)));
    for (const r of replies) {
      expect(r.json, JSON.stringify(r.json)).toMatchObject({ code: 0, message: 'success' });
      expect(r.status).toBe(200);
      expect(r.verified).toBe(true);
    }
    const data = replies.map((r) => r.json.data!);
    const paymentOrderNo = data[0]!.payment_order_no;
    expect(paymentOrderNo).toMatch(/^P\d{24}$/);
    // The same order, answered identically by both instances (same public URL, same stored record).
    for (const d of data) expect(d).toEqual(data[0]);

    const rows = await sql<{ payment_order_no: string }>('SELECT payment_order_no FROM orders WHERE merchant_no = $1 AND request_no_key = $2', [
      merchantNo,
      String(body.request_no).toLowerCase(),
    ]);
    expect(rows).toEqual([{ payment_order_no: paymentOrderNo }]);
    const options = await sql<{ network: string }>('SELECT network FROM order_options WHERE payment_order_no = $1 ORDER BY network', [paymentOrderNo]);
    expect(options.map((o) => o.network)).toEqual(['2', '3']);
    const orphans = await sql('SELECT o.payment_order_no FROM order_options o LEFT JOIN orders r USING (payment_order_no) WHERE r.payment_order_no IS NULL', []);
    expect(orphans).toEqual([]);
  });

  it('answers queries and closes of orders created through the other instance', async () => {
    const viaA = orderBody();
    const viaB = orderBody();
    const [createdA, createdB] = await Promise.all([create(a, viaA), create(b, viaB)]);
    expect(createdA.json.code).toBe(0);
    expect(createdB.json.code).toBe(0);

    const [onB, onA] = await Promise.all([query(b, viaA.request_no), query(a, viaB.request_no)]);
    expect(onB.json).toMatchObject({ code: 0, data: { payment_order_no: createdA.json.data!.payment_order_no, pay_status: 'PENDING', request_no: viaA.request_no } });
    expect(onA.json).toMatchObject({ code: 0, data: { payment_order_no: createdB.json.data!.payment_order_no, pay_status: 'PENDING', request_no: viaB.request_no } });

    const closed = await send(b, sign('POST', '/v4/pay/orders/close', { merchant_no: merchantNo, request_no: viaA.request_no }));
    expect(closed.json).toMatchObject({ code: 0, data: { pay_status: 'CLOSED' } });
    expect((await query(a, viaA.request_no)).json).toMatchObject({ code: 0, data: { pay_status: 'CLOSED', close_reason: 'MERCHANT_CLOSED' } });
    const again = await send(a, sign('POST', '/v4/pay/orders/close', { merchant_no: merchantNo, request_no: viaA.request_no }));
    expect(again.json.code).toBe(43007);
  });

  it('signs every answer of both instances with the platform key printed by `app create`', async () => {
    const body = orderBody();
    const replies = [
      await create(a, body),
      await create(b, body), // the idempotent repeat
      await query(b, body.request_no),
      await query(a, 'no_such_request'), // 43005
      await create(b, orderBody({ total_amount: '-1' })), // a business error
    ];
    expect(replies.map((r) => r.json.code)).toEqual([0, 0, 0, 43005, 41013]);
    for (const r of replies) {
      expect(r.verified, JSON.stringify(r.json)).toBe(true);
      expect(r.serial).toBe(serial);
    }
  });

  it('refuses a disabled application on both instances a second after `app disable` (40002, signed with its key), and serves it again a second after `app enable`', async () => {
    // Both instances read the application now: each keeps it for its second (ADR 0010).
    expect((await create(a, orderBody())).json.code).toBe(0);
    expect((await create(b, orderBody())).json.code).toBe(0);
    expect(await cli(['app', 'disable', appId, '--json'])).toEqual({ app_id: appId, merchant_no: merchantNo, status: 'DISABLED', changed: true });
    await sleep(1_100);
    for (const inst of [a, b]) {
      const r = await create(inst, orderBody());
      expect(r.status).toBe(401);
      expect(r.json).toMatchObject({ code: 40002, message: expect.stringMatching(/disabled/) });
      expect(r.verified).toBe(true);
      expect(r.serial).toBe(serial);
    }
    expect(await cli(['app', 'enable', appId, '--json'])).toMatchObject({ status: 'ACTIVE', changed: true });
    await sleep(1_100);
    for (const inst of [a, b]) expect((await create(inst, orderBody())).json.code).toBe(0);
  });
});
