// Defects found by the review of the operator side (merchants, applications, keys, the master
// key, the CLI): each test failed on the code before its fix.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatAmount, generateRsaKeyPair } from '@sparkpay/protocol';
import { loadConfig } from '../src/cli/config.js';
import { createGateway, openKeyVault } from '../src/cli/gateway.js';
import { inProcess, type Env } from './cli-run.js';
import { createTestDatabase } from './databases.js';
import { api, ManualClock, orderBody, startTestGateway, TEST_MASTER_KEY, type TestGateway } from './harness.js';

/** C0 and C1 controls (the line break ending a line aside), line separators and the bidi formatting characters. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

describe('sparkpay command line: operator review', () => {
  let t: TestGateway;
  let root: string;
  let env: Env;
  beforeAll(async () => {
    t = await startTestGateway();
    root = mkdtempSync(join(tmpdir(), 'sparkpay-cli-review-'));
    env = { SPARKPAY_DATA_DIR: join(root, 'data'), SPARKPAY_DATABASE_URL: t.db.url, SPARKPAY_MASTER_KEY: TEST_MASTER_KEY };
  });
  afterAll(async () => {
    await t?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  // The merchant's texts (description, goods, business info, extension) may hold any character:
  // `order show` printed them raw to the operator's terminal. An escape sequence cleared the
  // screen, set the window title (or, on many terminals, wrote the clipboard), a line break
  // forged a line ("pay_status COMPLETED") and a bidi override reversed what followed.
  it('order show (human form) prints no control or bidi character a merchant put into its order, and forges no line', async () => {
    const hostile = 'Shoes\u001b[2J\u001b]0;owned\u0007\npay_status                     COMPLETED\r\u202egnp.exe\u009b31m';
    const created = await api(t.baseUrl, {
      path: '/v4/pay/cashier',
      body: orderBody(t.merchant, t.clock, { merchant_order_desc: hostile, goods_info: hostile, business_info: hostile, extension: hostile }),
      merchant: t.merchant,
      clock: t.clock,
    });
    expect(created.json.code).toBe(0);
    const paymentOrderNo = String(created.json.data!.payment_order_no);
    const r = await inProcess(['order', 'show', paymentOrderNo], env, root);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.slice(0, -1).split('\n');
    for (const line of lines) expect(line, JSON.stringify(line)).not.toMatch(CONTROL);
    // One line per field: the merchant's text cannot add a pay_status line of its own.
    expect(lines.filter((l) => l.startsWith('pay_status '))).toHaveLength(1);
    expect(lines.find((l) => l.startsWith('merchant_order_desc '))).toContain('Shoes\\u001b[2J');
    // What each pair was priced at: its amount and fee in base units and the USD rate stored
    // with the order (§14), seen nowhere else (a review of the money arithmetic).
    const stored = (await t.gateway.store.orders.get(paymentOrderNo))!;
    for (const o of stored.options) {
      expect(lines).toContain(`${'option'.padEnd(30)} ${o.network} ${o.currency.padEnd(5)} ${o.amountBase} base units (${o.decimals} decimals), fee ${o.fee}, USD rate ${o.usdRate ?? 'none'}`);
    }
    // --json keeps the text as it is (JSON escapes it).
    const json = await inProcess(['order', 'show', paymentOrderNo, '--json'], env, root);
    expect((JSON.parse(json.stdout) as Record<string, unknown>).merchant_order_desc).toBe(hostile);
    expect((JSON.parse(json.stdout) as { options: unknown[] }).options).toEqual(
      stored.options.map((o) => ({ network: o.network, currency: o.currency, amount: formatAmount(o.amountBase, o.decimals), fee: formatAmount(o.fee, o.decimals), amount_base: o.amountBase.toString(), fee_base: o.fee.toString(), decimals: o.decimals, usd_rate: o.usdRate })),
    );
  });

  // `--public-key` takes a file. Given the key's text instead (`--public-key="$(cat key.pem)"`),
  // the refusal was "cannot read -----BEGIN PRIVATE KEY-----\u000aMIIEv… … -----END PRIVATE
  // KEY-----": the key echoed on stderr (300 characters of it, the end of a private key among
  // them) and a reason that does not say what was wrong.
  it.each([
    ['app', 'create', '--merchant', 'M1'],
    ['app', 'set-key', 'APP1'],
  ])('%s %s with the key text instead of a file says so, and echoes none of it', async (...argv) => {
    const pair = generateRsaKeyPair();
    for (const [pem, kind] of [
      [pair.privateKeyPem, 'private'],
      [pair.publicKeyPem, 'public'],
    ] as const) {
      const r = await inProcess([...argv, `--public-key=${pem}`], env, root);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/--public-key takes the path of a PEM file/);
      if (kind === 'private') expect(r.stderr).toMatch(/private key/);
      for (const line of pem.split('\n').filter((l) => l && !l.startsWith('-----'))) expect(r.stderr).not.toContain(line.slice(0, 24));
    }
  });
});

describe('the master key file', () => {
  // README: a configuration file or relayer key file other users can read is warned of at start;
  // the master key file (`start` without SPARKPAY_MASTER_KEY reads it, `dev` makes it 0600),
  // which opens every platform private key, was read at any mode without a word.
  it('start warns when the master key file in the data directory can be read by other users', async () => {
    const db = await createTestDatabase('sqlite');
    const dataDir = mkdtempSync(join(tmpdir(), 'sparkpay-mk-'));
    const keyFile = join(dataDir, 'master.key');
    writeFileSync(keyFile, `${'cd'.repeat(32)}\n`);
    chmodSync(keyFile, 0o644);
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const start = async () => {
      const config = { ...loadConfig('production', { SPARKPAY_DATA_DIR: dataDir }), host: '127.0.0.1', port: 0, databaseUrl: db.url };
      const gateway = await createGateway({ config, clock: new ManualClock(), logger: pino({ level: 'info' }, sink), workers: false });
      await gateway.close();
    };
    try {
      await start();
      const warned = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.level === 40 && l.file === keyFile && l.mode === '0644');
      expect(warned()).toHaveLength(1);
      expect(lines.join('\n')).not.toContain('cd'.repeat(32));
      lines.length = 0;
      chmodSync(keyFile, 0o600);
      await start();
      expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.file === keyFile && l.mode !== undefined)).toEqual([]);
    } finally {
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('the development master key file', () => {
  // `sparkpay dev` without SPARKPAY_MASTER_KEY reads (or makes) master.key in the data directory.
  // A malformed one (empty after a full disk, edited by hand) was refused as "SPARKPAY_MASTER_KEY
  // must be 32 bytes…": a variable the operator never set, and no word of the file (`start` names it).
  it('a malformed master.key in development is refused naming the file, not SPARKPAY_MASTER_KEY', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sparkpay-devmk-'));
    try {
      for (const text of ['', 'oops\n', `${'ab'.repeat(31)}\n`]) {
        writeFileSync(join(dataDir, 'master.key'), text);
        const config = loadConfig('development', { SPARKPAY_DATA_DIR: dataDir });
        expect(() => openKeyVault(config)).toThrow(new RegExp(`^the master key file ${join(dataDir, 'master.key')} must be 32 bytes`));
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
