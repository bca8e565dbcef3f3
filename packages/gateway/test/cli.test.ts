// The `sparkpay` command as an operator uses it, against a real SQLite database in a temporary
// data directory: `dev` and `start` as the built executable in child processes, the management
// commands through runCli in this process (the code main.ts runs; cli-fuzz.test.ts checks the
// executable answers alike).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePrivateKey, parsePublicKey } from '@sparkpay/protocol';
import { SparkPayApiError, SparkPayClient } from '@sparkpay/sdk';
import { erc20Abi, type Address, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { confirmed, evmClients } from '../src/adapters/chain/evm/clients.js';
import { MAINNET_CURRENCIES, NETWORK_IDS, type NetworkId } from '../src/domain/catalogue.js';
import { systemClock } from '../src/app/ports.js';
import { paymentFacts } from '../src/app/record-payment.js';
import { randomIds } from '../src/adapters/crypto/random-ids.js';
import { loadConfig } from '../src/cli/config.js';
import { openCore } from '../src/cli/gateway.js';
import { inProcess } from './cli-run.js';
import { createTestDatabase, PG_BASE_URL } from './databases.js';
import { openReceived, startReceiver } from './notify-receiver.js';

const run = promisify(execFile);
const MAIN = resolve(import.meta.dirname, '../dist/cli/main.js');
const WALLET = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `sparkpay <args>` with `env`'s variables: in this process through runCli (what main.ts runs,
 * without a node start-up per command), except `start`, which keeps running: the built executable.
 * cli-fuzz.test.ts checks that the executable and runCli answer alike.
 */
async function sparkpay(env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliResult> {
  if (args[0] !== 'start') return inProcess(args, env, process.cwd());
  try {
    const r = await run(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, timeout: 20_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** `--json` output is exactly one JSON object and nothing else. */
function oneJson(stdout: string): Record<string, unknown> {
  const lines = stdout.split('\n').filter((l) => l.trim() !== '');
  expect(lines).toHaveLength(1);
  const value = JSON.parse(lines[0] as string) as unknown;
  expect(value).toBeTypeOf('object');
  return value as Record<string, unknown>;
}

describe('sparkpay management commands', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(() => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build first (npx tsc -b packages/gateway)`);
    dir = mkdtempSync(join(tmpdir(), 'sparkpay-cli-'));
    env = { SPARKPAY_DATA_DIR: join(dir, 'data'), SPARKPAY_MASTER_KEY: 'ab'.repeat(32), SPARKPAY_DATABASE_URL: undefined };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('creates a merchant, configures it, registers an application and shows its keys', async () => {
    const keys = oneJson((await sparkpay(env, 'keys', 'generate', '--out', join(dir, 'keys'), '--json')).stdout);
    expect(statSync(String(keys.private_key_file)).mode & 0o777).toBe(0o600);
    expect(readFileSync(String(keys.private_key_file), 'utf8')).toContain('BEGIN PRIVATE KEY');
    expect(readFileSync(String(keys.public_key_file), 'utf8')).toContain('BEGIN PUBLIC KEY');

    const m = oneJson((await sparkpay(env, 'merchant', 'create', '--name', 'Coffee Shop', '--json')).stdout);
    expect(m.merchant_no).toMatch(/^M\d+$/);
    const merchantNo = String(m.merchant_no);

    const set = await sparkpay(env, 'merchant', 'set', merchantNo, '--wallet', `2=${WALLET}`, '--wallet', `4=${WALLET.toLowerCase()}`, '--online-payment', 'off', '--json');
    expect(set.code).toBe(0);
    expect(oneJson(set.stdout)).toMatchObject({ merchant_no: merchantNo, online_payment: false, wallets: { '2': WALLET, '4': WALLET.toLowerCase() } });

    const app = oneJson((await sparkpay(env, 'app', 'create', '--merchant', merchantNo, '--public-key', String(keys.public_key_file), '--json')).stdout);
    expect(app.app_id).toMatch(/^\d+$/);
    expect(String(app.platform_public_key)).toContain('BEGIN PUBLIC KEY');
    expect(app.serial).toBeTypeOf('string');
    // Without --json it prints what the merchant is given (README, production step 6): the
    // AppID, the merchant_no, the serial and the platform public key.
    const text = await sparkpay(env, 'app', 'create', '--merchant', merchantNo, '--public-key', String(keys.public_key_file));
    expect(text.stdout).toMatch(new RegExp(`^app_id \\d+\nmerchant_no ${merchantNo}\nserial \\S+\n-----BEGIN PUBLIC KEY-----`));
    // Management commands never invent a master key: the server could not open what it sealed.
    expect(existsSync(join(dir, 'data', 'master.key'))).toBe(false);

    const listed = oneJson((await sparkpay(env, 'app', 'keys', String(app.app_id), '--json')).stdout);
    expect(listed.keys).toEqual([expect.objectContaining({ serial: app.serial, platform_public_key: app.platform_public_key, status: 'ACTIVE', signing: true })]);

    // A platform key rotation with an overlap: added (NEXT, listed), activated, the old one retired.
    const appId = String(app.app_id);
    const added = oneJson((await sparkpay(env, 'app', 'add-key', appId, '--json')).stdout);
    expect(added).toMatchObject({ app_id: appId, status: 'NEXT', signing: false });
    expect(String(added.platform_public_key)).toContain('BEGIN PUBLIC KEY');
    const both = oneJson((await sparkpay(env, 'app', 'keys', appId, '--json')).stdout);
    expect((both.keys as { serial: string; status: string; signing: boolean }[]).map((k) => [k.serial, k.status, k.signing])).toEqual([
      [app.serial, 'ACTIVE', true],
      [added.serial, 'NEXT', false],
    ]);
    const refused = await sparkpay(env, 'app', 'retire-key', appId, String(app.serial));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^sparkpay: .*signs this application's answers/);
    const human = await sparkpay(env, 'app', 'activate-key', appId, String(added.serial));
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`serial ${String(added.serial)} ACTIVE, signing`);
    // Retired at once after that, the old key could still sign on instances that cached it.
    const tooSoon = await sparkpay(env, 'app', 'retire-key', appId, String(app.serial));
    expect(tooSoon.code).toBe(1);
    expect(tooSoon.stderr).toMatch(/^sparkpay: .*instances may still sign with .*; retire it in \d s\n$/);
    // A key that leaked: a new one signs at once; a NEXT key is withdrawn whenever.
    const spare = oneJson((await sparkpay(env, 'app', 'add-key', appId, '--json')).stdout);
    const urgent = oneJson((await sparkpay(env, 'app', 'add-key', appId, '--activate', '--json')).stdout);
    expect(urgent).toMatchObject({ status: 'ACTIVE', signing: true });
    expect(oneJson((await sparkpay(env, 'app', 'retire-key', appId, String(spare.serial), '--json')).stdout)).toEqual({ app_id: appId, serial: spare.serial, status: 'RETIRED' });
    expect((oneJson((await sparkpay(env, 'app', 'keys', appId, '--json')).stdout).keys as { serial: string; status: string; signing: boolean }[]).map((k) => [k.serial, k.status, k.signing])).toEqual([
      [app.serial, 'ACTIVE', false],
      [added.serial, 'ACTIVE', false],
      [urgent.serial, 'ACTIVE', true],
    ]);
    // The merchant's own key replaced (a second key pair, as the merchant would make it).
    const keys2 = oneJson((await sparkpay(env, 'keys', 'generate', '--out', join(dir, 'keys2'), '--json')).stdout);
    const replaced = oneJson((await sparkpay(env, 'app', 'set-key', appId, '--public-key', String(keys2.public_key_file), '--json')).stdout);
    expect(replaced).toMatchObject({ app_id: appId, merchant_no: merchantNo });
    expect(String(replaced.merchant_public_key).replace(/\s+/g, '')).toBe(readFileSync(String(keys2.public_key_file), 'utf8').replace(/\s+/g, ''));

    const second = await sparkpay(env, 'merchant', 'create', '--name', 'Second');
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/^merchant_no M\d+\n$/);
  });

  it('lists a merchant\'s applications, and disables and enables one (again: said, nothing changed)', async () => {
    const keys = oneJson((await sparkpay(env, 'keys', 'generate', '--out', join(dir, 'keys-list'), '--json')).stdout);
    const merchantNo = String(oneJson((await sparkpay(env, 'merchant', 'create', '--name', 'Two Apps', '--json')).stdout).merchant_no);
    const empty = await sparkpay(env, 'app', 'list', '--merchant', merchantNo);
    expect(empty).toMatchObject({ code: 0, stdout: `merchant ${merchantNo} has no applications\n` });
    expect(oneJson((await sparkpay(env, 'app', 'list', '--merchant', merchantNo, '--json')).stdout)).toEqual({ merchant_no: merchantNo, applications: [] });
    const create = async () => oneJson((await sparkpay(env, 'app', 'create', '--merchant', merchantNo, '--public-key', String(keys.public_key_file), '--json')).stdout);
    const first = await create();
    const second = await create();
    // The signing key is the newest ACTIVE one: after an urgent rotation, not the first.
    const urgent = oneJson((await sparkpay(env, 'app', 'add-key', String(second.app_id), '--activate', '--json')).stdout);

    const disabled = await sparkpay(env, 'app', 'disable', String(first.app_id), '--json');
    expect(disabled.code, disabled.stderr).toBe(0);
    expect(oneJson(disabled.stdout)).toEqual({ app_id: first.app_id, merchant_no: merchantNo, status: 'DISABLED', changed: true });
    const again = await sparkpay(env, 'app', 'disable', String(first.app_id));
    expect(again).toMatchObject({ code: 0, stdout: `application ${String(first.app_id)} is disabled already; nothing changed\n`, stderr: '' });
    expect(oneJson((await sparkpay(env, 'app', 'disable', String(first.app_id), '--json')).stdout)).toMatchObject({ status: 'DISABLED', changed: false });

    const listed = oneJson((await sparkpay(env, 'app', 'list', '--merchant', merchantNo, '--json')).stdout);
    const iso = expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(listed).toEqual({
      merchant_no: merchantNo,
      applications: expect.arrayContaining([
        { app_id: first.app_id, status: 'DISABLED', created_at: iso, signing_serial: first.serial },
        { app_id: second.app_id, status: 'ACTIVE', created_at: iso, signing_serial: urgent.serial },
      ]),
    });
    expect(listed.applications).toHaveLength(2);
    const human = await sparkpay(env, 'app', 'list', '--merchant', merchantNo);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`app_id ${String(first.app_id)} DISABLED (created `);
    expect(human.stdout).toContain(`signing key ${String(urgent.serial)}`);
    expect(human.stdout.trim().split('\n')).toHaveLength(2);

    const enabled = await sparkpay(env, 'app', 'enable', String(first.app_id), '--json');
    expect(oneJson(enabled.stdout)).toEqual({ app_id: first.app_id, merchant_no: merchantNo, status: 'ACTIVE', changed: true });
    expect((await sparkpay(env, 'app', 'enable', String(first.app_id))).stdout).toBe(`application ${String(first.app_id)} is enabled already; nothing changed\n`);
    expect((oneJson((await sparkpay(env, 'app', 'list', '--merchant', merchantNo, '--json')).stdout).applications as { status: string }[]).map((a) => a.status)).toEqual(['ACTIVE', 'ACTIVE']);
  });

  it.each([
    [['merchant', 'create'], /--name/],
    [['merchant', 'set', 'M1', '--status', 'SLEEPING'], /ACTIVE or INACTIVE/],
    [['merchant', 'set', 'M1', '--wallet', '9=0x70997970C51812dc3A010C7d01b50e0d17dc79C8'], /network 2, 3, 4 or 5/],
    [['merchant', 'set', 'M1', '--wallet', '2=0x70997970c51812dc3A010C7d01b50e0d17dc79C8'], /not a valid EVM address/],
    [['merchant', 'set', 'M999', '--status', 'ACTIVE'], /does not exist/],
    [['app', 'create', '--merchant', 'M1'], /--public-key/],
    [['app', 'create', '--merchant', 'M1', '--public-key', '/nonexistent.pem'], /cannot read/],
    [['app', 'keys', '999'], /application 999 does not exist/],
    [['app', 'list'], /--merchant/],
    [['app', 'list', '--merchant', 'M999'], /merchant M999 does not exist/],
    [['app', 'list', '--merchant', 'M999', '--json'], /merchant M999 does not exist/],
    [['app', 'disable'], /expected 1 argument/],
    [['app', 'disable', '999'], /application 999 does not exist/],
    [['app', 'disable', '999', '--json'], /application 999 does not exist/],
    [['app', 'enable', '999'], /application 999 does not exist/],
    [['app', 'add-key', '999'], /application 999 does not exist/],
    [['app', 'add-key'], /expected 1 argument/],
    [['app', 'activate-key', '999'], /expected 2 argument/],
    [['app', 'activate-key', '999', 'S1'], /application 999 does not exist/],
    [['app', 'retire-key', '999', 'S1'], /application 999 does not exist/],
    [['app', 'set-key', '999'], /--public-key/],
    [['app', 'set-key', '999', '--public-key', '/nonexistent.pem'], /cannot read/],
    [['order', 'show', 'P000'], /does not exist/],
    [['order', 'settle', 'P000'], /does not exist/],
    [['notify', 'list'], /--order/],
    [['notify', 'list', '--order', 'P000'], /does not exist/],
    [['notify', 'resend', 'N000'], /does not exist/],
    [['notify', 'resend'], /expected 1 argument/],
    [['frobnicate'], /unknown command/],
    [['merchant', 'create', '--name', 'x', '--bogus'], /bogus/],
  ])('refuses %j with a one-line reason and a non-zero exit', async (args, reason) => {
    const r = await sparkpay(env, ...args);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^sparkpay: /);
    expect(lines[0]).toMatch(reason);
  });

  it('backs the SQLite database up into a new owner-only file, never over an existing one; PostgreSQL is left to pg_dump', async () => {
    await sparkpay(env, 'merchant', 'create', '--name', 'Backed Up', '--json');
    const file = join(dir, 'backup.db');
    const r = await sparkpay(env, 'backup', '--to', file, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(oneJson(r.stdout)).toMatchObject({ backup: file, bytes: statSync(file).size });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const copy = new Database(file, { readonly: true });
    try {
      expect(copy.prepare("select count(*) as n from merchants where name = 'Backed Up'").get()).toEqual({ n: 1 });
      // Every table, the migrations' record included.
      const tables = (copy.prepare("select name from sqlite_master where type = 'table'").all() as { name: string }[]).map((t) => t.name);
      expect(tables).toEqual(expect.arrayContaining(['orders', 'platform_keys', 'notifications', 'kysely_migration']));
    } finally {
      copy.close();
    }
    const again = await sparkpay(env, 'backup', '--to', file);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists; nothing written/);
    const pg = await sparkpay({ ...env, SPARKPAY_DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' }, 'backup', '--to', join(dir, 'pg.db'));
    expect(pg.code).toBe(1);
    expect(pg.stderr).toMatch(/PostgreSQL; back it up with pg_dump/);
    expect(existsSync(join(dir, 'pg.db'))).toBe(false);
    expect((await sparkpay(env, 'backup')).code).toBe(2);
    // With no command at all: the usage, as before the backup command came next to it.
    const bare = await sparkpay(env);
    expect(bare.code).toBe(1);
    expect(bare.stdout).toMatch(/^usage: sparkpay <command>/);
  });

  it('accepts the merchant public key as PEM without header lines (Base64 only)', async () => {
    const m = oneJson((await sparkpay(env, 'merchant', 'create', '--name', 'Bare', '--json')).stdout);
    const keys = oneJson((await sparkpay(env, 'keys', 'generate', '--out', join(dir, 'bare'), '--json')).stdout);
    const bare = readFileSync(String(keys.public_key_file), 'utf8').split('\n').filter((l) => l && !l.startsWith('-----')).join('\r\n');
    const file = join(dir, 'bare.txt');
    writeFileSync(file, bare);
    const app = await sparkpay(env, 'app', 'create', '--merchant', String(m.merchant_no), '--public-key', file, '--json');
    expect(app.code).toBe(0);
    expect(oneJson(app.stdout).app_id).toMatch(/^\d+$/);
  });

  it('refuses a public key that is not RSA-2048', async () => {
    const m = oneJson((await sparkpay(env, 'merchant', 'create', '--name', 'Keys', '--json')).stdout);
    const weak = join(dir, 'weak.pem');
    await run('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024', '-out', join(dir, 'weak.key')]);
    await run('openssl', ['pkey', '-in', join(dir, 'weak.key'), '-pubout', '-out', weak]);
    const r = await sparkpay(env, 'app', 'create', '--merchant', String(m.merchant_no), '--public-key', weak, '--json');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/RSA-2048/);
  });

  it('app create without any master key fails with a one-line reason, and other commands still work', async () => {
    const noKey = { SPARKPAY_DATA_DIR: join(dir, 'nokey'), SPARKPAY_MASTER_KEY: undefined };
    const m = oneJson((await sparkpay(noKey, 'merchant', 'create', '--name', 'No key', '--json')).stdout);
    const keys = oneJson((await sparkpay(noKey, 'keys', 'generate', '--out', join(dir, 'nokey-keys'), '--json')).stdout);
    const r = await sparkpay(noKey, 'app', 'create', '--merchant', String(m.merchant_no), '--public-key', String(keys.public_key_file), '--json');
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/SPARKPAY_MASTER_KEY is not set/);
    expect(existsSync(join(dir, 'nokey', 'master.key'))).toBe(false);
  });

  it('a master key that does not open the keys already stored is refused: by app create before the first start, and by start', async () => {
    const dataDir = join(dir, 'twokeys');
    const a = { SPARKPAY_DATA_DIR: dataDir, SPARKPAY_MASTER_KEY: 'cd'.repeat(32) };
    const b = { SPARKPAY_DATA_DIR: dataDir, SPARKPAY_MASTER_KEY: 'ef'.repeat(32) };
    const m = oneJson((await sparkpay(a, 'merchant', 'create', '--name', 'Two keys', '--json')).stdout);
    const keys = oneJson((await sparkpay(a, 'keys', 'generate', '--out', join(dir, 'twokeys-keys'), '--json')).stdout);
    const create = (env: Record<string, string>) => sparkpay(env, 'app', 'create', '--merchant', String(m.merchant_no), '--public-key', String(keys.public_key_file), '--json');
    expect((await create(a)).code).toBe(0);
    // No default key yet (no server has started): the application's key is what is checked.
    const wrong = await create(b);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toBe('');
    expect(wrong.stderr.trim().split('\n')).toHaveLength(1);
    expect(wrong.stderr).toMatch(/SPARKPAY_MASTER_KEY/);
    // start with the wrong key stops with one line instead of serving 500s.
    const started = await sparkpay({ ...b, SPARKPAY_PORT: '0' }, 'start');
    expect(started.code).not.toBe(0);
    expect(started.stderr).toMatch(/SPARKPAY_MASTER_KEY/);
  });

  it.skipIf(!PG_BASE_URL)('start with a wrong master key on PostgreSQL exits at once, not when the idle connections time out (10 s)', async () => {
    const pgdb = await createTestDatabase('postgres');
    try {
      const env = { SPARKPAY_DATA_DIR: join(dir, 'pgkeys'), SPARKPAY_DATABASE_URL: pgdb.url };
      // A first start with one key stores the default platform key sealed with it.
      const core = await openCore(loadConfig('production', { ...env, SPARKPAY_MASTER_KEY: '12'.repeat(32) }));
      await core.platformKeys.ensureDefault();
      await core.db.close();
      const began = Date.now();
      const started = await sparkpay({ ...env, SPARKPAY_MASTER_KEY: '34'.repeat(32), SPARKPAY_PORT: '0' }, 'start');
      const took = Date.now() - began;
      expect(started.code).not.toBe(0);
      expect(started.stderr).toMatch(/SPARKPAY_MASTER_KEY/);
      // Node's start and the migrations take a second or two; the idle connections held it 10 s more.
      expect(took).toBeLessThan(8_000);
    } finally {
      await pgdb.drop();
    }
  });

  it('names the master key file when it is the one that is malformed, and prints its version', async () => {
    const dataDir = join(dir, 'badkeyfile');
    const m = oneJson((await sparkpay({ SPARKPAY_DATA_DIR: dataDir, SPARKPAY_MASTER_KEY: undefined }, 'merchant', 'create', '--name', 'File key', '--json')).stdout);
    writeFileSync(join(dataDir, 'master.key'), 'not a key\n');
    const keys = oneJson((await sparkpay({}, 'keys', 'generate', '--out', join(dir, 'badkeyfile-keys'), '--json')).stdout);
    const r = await sparkpay({ SPARKPAY_DATA_DIR: dataDir, SPARKPAY_MASTER_KEY: undefined }, 'app', 'create', '--merchant', String(m.merchant_no), '--public-key', String(keys.public_key_file));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the master key file ${join(dataDir, 'master.key')} must be 32 bytes`);
    const v = await sparkpay({}, '--version');
    expect({ code: v.code, out: v.stdout }).toEqual({ code: 0, out: `sparkpay ${(JSON.parse(readFileSync(resolve(import.meta.dirname, '../package.json'), 'utf8')) as { version: string }).version}\n` });
  });

  it('start refuses to run without a master key in production', async () => {
    const r = await sparkpay({ SPARKPAY_DATA_DIR: join(dir, 'prod'), SPARKPAY_MASTER_KEY: undefined }, 'start');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/SPARKPAY_MASTER_KEY/);
  });
});

describe('sparkpay dev', () => {
  let dir: string;
  let child: ChildProcess;
  let info: Record<string, unknown>;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sparkpay-dev-'));
    child = spawn(process.execPath, [MAIN, 'dev', '--json'], {
      cwd: dir,
      env: { ...process.env, SPARKPAY_PORT: '0', SPARKPAY_DATABASE_URL: undefined, SPARKPAY_MASTER_KEY: undefined, SPARKPAY_DATA_DIR: undefined },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    info = await new Promise((resolveInfo, reject) => {
      // 3 s on an idle machine; the suite runs other chain tests (anvil, solc) beside it on two cores.
      const timer = setTimeout(() => reject(new Error(`dev did not start: ${out}`)), 45_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) {
          clearTimeout(timer);
          resolveInfo(JSON.parse(out.split('\n')[0] as string) as Record<string, unknown>);
        }
      });
      child.once('exit', (code) => reject(new Error(`dev exited with ${code}: ${out}`)));
    });
  });
  afterAll(async () => {
    if (child.exitCode === null) {
      // A test failed before the clean stop: SIGKILL leaves dev no chance to stop its anvils, so
      // they are killed here too (else they outlive the suite on their ports).
      const { stdout } = await run('pgrep', ['-P', String(child.pid)]).catch(() => ({ stdout: '' }));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      for (const pid of stdout.split('\n').filter(Boolean).map(Number)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  /** The SDK client of the demo merchant dev printed. */
  const devClient = () =>
    new SparkPayClient({
      baseUrl: String(info.listening),
      appId: String(info.app_id),
      merchantPrivateKey: readFileSync(String(info.merchant_private_key_file), 'utf8'),
      platformPublicKey: readFileSync(String(info.platform_public_key_file), 'utf8'),
    });

  it('prints what a newcomer needs and writes the keys into ./.sparkpay', () => {
    expect(info).toMatchObject({ mode: 'development', merchant_no: 'M100000000001' });
    expect(String(info.data_dir)).toBe(join(dir, '.sparkpay'));
    for (const key of ['merchant_private_key_file', 'merchant_public_key_file', 'platform_public_key_file']) {
      expect(existsSync(String(info[key]))).toBe(true);
    }
    expect(statSync(String(info.merchant_private_key_file)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, '.sparkpay', 'master.key')).mode & 0o777).toBe(0o600);
    // The directory and the database (sealed platform keys, merchants, orders) are the owner's only.
    expect(statSync(join(dir, '.sparkpay')).mode & 0o777).toBe(0o700);
    for (const f of ['sparkpay.db', 'sparkpay.db-wal', 'sparkpay.db-shm']) expect(statSync(join(dir, '.sparkpay', f)).mode & 0o777, f).toBe(0o600);
  });

  it('serves the operator console, its sign-in token in an owner-only file of the data directory (never printed)', async () => {
    expect(info.console_url).toBe(`${String(info.api_url).replace(/\/+$/, '')}/console`);
    const file = String(info.console_token_file);
    expect(file).toBe(join(dir, '.sparkpay', 'console.token'));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const token = readFileSync(file, 'utf8').trim();
    expect(token.length).toBeGreaterThanOrEqual(32);
    expect(JSON.stringify(info)).not.toContain(token);
    const signIn = await fetch(`${String(info.listening)}/console/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token }).toString() });
    expect(signIn.status).toBe(303);
    const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
    const merchants = await (await fetch(`${String(info.listening)}/console/merchants`, { headers: { cookie } })).text();
    expect(merchants).toContain(String(info.merchant_no));
    expect(merchants).toContain(String(info.platform_key_serial));
  });

  /** `sparkpay dev` started beside the running one, in `cwd`, until it exits. */
  const secondDev = (cwd: string, env: NodeJS.ProcessEnv = {}) =>
    run(process.execPath, [MAIN, 'dev', '--json'], { cwd, env: { ...process.env, SPARKPAY_DATABASE_URL: undefined, SPARKPAY_MASTER_KEY: undefined, SPARKPAY_DATA_DIR: undefined, ...env }, timeout: 60_000 }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (err: { code?: number; stdout?: string; stderr?: string }) => ({ code: err.code ?? 1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' }),
    );

  it('a second dev on the same data directory is refused at once, before any chain starts, and the running one keeps its devnet file', async () => {
    const devnetFile = join(dir, '.sparkpay', 'devnet.json');
    const before = readFileSync(devnetFile, 'utf8');
    const started = Date.now();
    const r = await secondDev(dir, { SPARKPAY_PORT: '0' });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringContaining(`another "sparkpay dev" (pid ${child.pid}) is running on the data directory ${join(dir, '.sparkpay')}`)]);
    // No chain was started: anvils and a deployment take seconds.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(readFileSync(devnetFile, 'utf8')).toBe(before);
    expect(readFileSync(join(dir, '.sparkpay', 'dev.pid'), 'utf8').trim()).toBe(String(child.pid));
  }, 60_000);

  it('a dev on a port in use names the port and the setting, stops the chains it started, and leaves the running one alone', async () => {
    const other = mkdtempSync(join(tmpdir(), 'sparkpay-dev-'));
    try {
      const port = new URL(String(info.listening)).port;
      const r = await secondDev(other, { SPARKPAY_PORT: port });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`127.0.0.1:${port} is in use`);
      expect(r.stderr).toContain('SPARKPAY_PORT');
      expect(existsSync(join(other, '.sparkpay', 'devnet.json'))).toBe(false);
      expect(existsSync(join(other, '.sparkpay', 'dev.pid'))).toBe(false);
      expect(existsSync(join(dir, '.sparkpay', 'devnet.json'))).toBe(true);
      expect((await fetch(`${String(info.listening)}/healthz`)).status).toBe(200);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  }, 60_000);

  it('serves the signed API to the SDK with the printed identity', async () => {
    const client = devClient();
    const now = Math.floor(Date.now() / 1000);
    const merchantNo = String(info.merchant_no);
    const created = await client.createOrder({ merchant_no: merchantNo, request_no: 'dev_1', merchant_order_time: now, total_amount: '25', merchant_order_currency: 'USDC' });
    expect(created.pay_status).toBe('PENDING');
    const got = await client.getOrder(merchantNo, 'dev_1');
    expect(got.payment_order_no).toBe(created.payment_order_no);
    await client.closeOrder({ merchant_no: merchantNo, request_no: 'dev_1' });
    await expect(client.closeOrder({ merchant_no: merchantNo, request_no: 'dev_1' })).rejects.toMatchObject({ code: 43007 });
    await expect(client.getProOrder(merchantNo, 'dev_1')).rejects.toBeInstanceOf(SparkPayApiError);

    const shown = await sparkpay({ SPARKPAY_DATA_DIR: join(dir, '.sparkpay') }, 'order', 'show', created.payment_order_no, '--json');
    expect(oneJson(shown.stdout)).toMatchObject({ payment_order_no: created.payment_order_no, pay_status: 'CLOSED', close_reason: 'MERCHANT_CLOSED' });
  });

  it('delivers a notification to a local receiver; notify list shows the attempts, notify resend sends it again', async () => {
    const receiver = await startReceiver();
    const dataDir = join(dir, '.sparkpay');
    const core = await openCore(loadConfig('development', { SPARKPAY_DATA_DIR: dataDir }), systemClock, randomIds, { management: true });
    try {
      const client = devClient();
      const merchantNo = String(info.merchant_no);
      const created = await client.createOrder({
        merchant_no: merchantNo,
        request_no: 'dev_notify_1',
        merchant_order_time: Math.floor(Date.now() / 1000),
        total_amount: '10.50',
        merchant_order_currency: 'USDT',
        notify_url: receiver.url,
      });
      // The chain watcher's part, played by this process on the same database.
      const paid = await paymentFacts({ store: core.store, clock: systemClock, ids: randomIds }).transferObserved({
        paymentOrderNo: created.payment_order_no,
        network: '4',
        currency: 'USDT',
        txHash: `0x${'ab'.repeat(32)}`,
        logIndex: 0,
        blockNumber: 100,
        blockHash: `0x${'cd'.repeat(32)}`,
        address: WALLET,
        amount: 10_500_000n,
        confirmations: 64,
        status: 'FINAL',
      });
      expect(paid.ok).toBe(true);
      const keys = {
        merchantPrivateKey: parsePrivateKey(readFileSync(String(info.merchant_private_key_file), 'utf8')),
        platformPublicKey: parsePublicKey(readFileSync(String(info.platform_public_key_file), 'utf8')),
      };
      const [first] = await receiver.waitFor(1, 15_000);
      const payload = openReceived(first!, keys).payload;
      expect(payload).toMatchObject({ payment_order_no: created.payment_order_no, notify_type: 'ORDER_PAID', pay_status: 'PAID' });

      const env = { SPARKPAY_DATA_DIR: dataDir };
      const listed = async () => oneJson((await sparkpay(env, 'notify', 'list', '--order', created.payment_order_no, '--json')).stdout);
      let list = await listed();
      for (let i = 0; i < 50 && (list.notifications as { status: string }[])[0]?.status !== 'DELIVERED'; i += 1) {
        await new Promise((r) => setTimeout(r, 100));
        list = await listed();
      }
      expect(list).toMatchObject({
        payment_order_no: created.payment_order_no,
        notifications: [
          {
            notify_id: payload.notify_id,
            notify_type: 'ORDER_PAID',
            status: 'DELIVERED',
            series: 1,
            attempts_total: 1,
            notify_time: payload.notify_time,
            attempt_log: [{ attempt_no: 1, series: 1, outcome: 'DELIVERED', http_status: 200, response_head: 'SUCCESS', error_kind: null }],
          },
        ],
      });

      const resent = await sparkpay(env, 'notify', 'resend', String(payload.notify_id), '--json');
      expect(resent.code).toBe(0);
      expect(oneJson(resent.stdout)).toMatchObject({ notify_id: payload.notify_id, status: 'PENDING', series: 2 });
      const [, second] = await receiver.waitFor(2, 15_000);
      expect(openReceived(second!, keys).payloadJson).toBe(openReceived(first!, keys).payloadJson);

      const human = await sparkpay(env, 'notify', 'list', '--order', created.payment_order_no);
      expect(human.code).toBe(0);
      expect(human.stdout).toContain(String(payload.notify_id));
      expect(human.stdout).toMatch(/#1 \S+ DELIVERED \(HTTP 200/);
      expect(human.stdout).toMatch(/#2 \S+ (DELIVERED|IN_FLIGHT)/);
    } finally {
      await core.db.close();
      await receiver.close();
    }
  });

  interface DevnetInfoJson {
    networks: Record<string, { rpc_url: string; chain_id: number; tokens: Record<string, Address>; factory: Address }>;
    funded_accounts: { address: Address; private_key: Hex }[];
  }
  const devnetInfo = async (): Promise<DevnetInfoJson> => {
    const r = await sparkpay({ SPARKPAY_DATA_DIR: join(dir, '.sparkpay') }, 'devnet', 'info', '--json');
    expect(r.code).toBe(0);
    return oneJson(r.stdout) as unknown as DevnetInfoJson;
  };

  it('prints the RPC URL of a local chain for every network 2-5', () => {
    const networks = info.networks as Record<string, { rpc_url: string; chain_id: number }>;
    expect(Object.keys(networks).sort()).toEqual(['2', '3', '4', '5']);
    const chainIds = Object.values(networks).map((n) => n.chain_id);
    expect(new Set(chainIds).size).toBe(4);
    for (const n of Object.values(networks)) {
      expect(n.rpc_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      // Local chain ids, never a mainnet's (§5: 1, 56, 137, 6688).
      expect([1, 56, 137, 6688]).not.toContain(n.chain_id);
    }
    expect(statSync(join(dir, '.sparkpay', 'devnet.json')).mode & 0o777).toBe(0o600);
  });

  it('devnet info, from another process, describes every chain (§16) with the §5 tokens and decimals on it', async () => {
    const devnet = await devnetInfo();
    const printed = info.networks as Record<string, { rpc_url: string; chain_id: number }>;
    expect(Object.keys(devnet.networks).sort()).toEqual(['2', '3', '4', '5']);
    expect(devnet.funded_accounts.length).toBeGreaterThanOrEqual(3);
    for (const a of devnet.funded_accounts) expect(privateKeyToAccount(a.private_key).address).toBe(a.address);
    await Promise.all(
      NETWORK_IDS.map(async (id: NetworkId) => {
        const n = devnet.networks[id]!;
        expect(n).toMatchObject({ rpc_url: printed[id]!.rpc_url, chain_id: printed[id]!.chain_id, factory: expect.stringMatching(/^0x[0-9a-fA-F]{40}$/) });
        const chain = evmClients(n.rpc_url, n.chain_id, privateKeyToAccount(devnet.funded_accounts[0]!.private_key));
        expect(await chain.public.request({ method: 'eth_chainId' })).toBe(`0x${n.chain_id.toString(16)}`);
        expect(await chain.public.getCode({ address: n.factory })).toMatch(/^0x[0-9a-f]{10,}/);
        const tokens = MAINNET_CURRENCIES[id].filter((c) => c.contract !== null);
        expect(Object.keys(n.tokens).sort()).toEqual(tokens.map((c) => c.code).sort());
        for (const c of tokens) {
          const token = n.tokens[c.code]!;
          const read = <F extends 'decimals' | 'symbol'>(functionName: F) => chain.public.readContract({ address: token, abi: erc20Abi, functionName });
          expect([id, c.code, await read('decimals')]).toEqual([id, c.code, c.decimals]);
          expect(await read('symbol')).toBe(c.code);
          for (const a of devnet.funded_accounts) {
            const balance = await chain.public.readContract({ address: token, abi: erc20Abi, functionName: 'balanceOf', args: [a.address] });
            expect(balance).toBe(1_000_000n * 10n ** BigInt(c.decimals));
          }
        }
      }),
    );
    // The 18-decimal USDT of BNB Smart Chain next to the 6-decimal one of Ethereum.
    expect(MAINNET_CURRENCIES['3'].find((c) => c.code === 'USDT')?.decimals).toBe(18);
  });

  it('an order is paid end to end on the devnet: cashier select, a transfer from a funded account, PAID then COMPLETED (the dev relayer settles it) through the SDK', async () => {
    const devnet = await devnetInfo();
    const client = devClient();
    const merchantNo = String(info.merchant_no);
    const created = await client.createOrder({ merchant_no: merchantNo, request_no: 'dev_chain_1', merchant_order_time: Math.floor(Date.now() / 1000), total_amount: '12.34', merchant_order_currency: 'USDT' });
    const cashier = new URL(created.cashier_url);
    const res = await fetch(`${String(info.listening)}/cashier/api/orders/${created.payment_order_no}/select?t=${cashier.searchParams.get('t')}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ network: '3', currency: 'USDT' }),
    });
    expect(res.status).toBe(200);
    const selected = (await res.json()) as { address: Address; amount: string; amount_base: string };
    // BNB Smart Chain's USDT has 18 decimals.
    expect(selected).toMatchObject({ amount: '12.34', amount_base: (1234n * 10n ** 16n).toString() });

    const n = devnet.networks['3']!;
    const payer = evmClients(n.rpc_url, n.chain_id, privateKeyToAccount(devnet.funded_accounts[1]!.private_key), { pollingIntervalMs: 200 });
    const hash = await payer.wallet.writeContract({ address: n.tokens.USDT!, abi: erc20Abi, functionName: 'transfer', args: [selected.address, BigInt(selected.amount_base)] });
    await confirmed(payer, hash);
    let order = await client.getOrder(merchantNo, 'dev_chain_1');
    for (let i = 0; i < 150 && order.pay_status !== 'COMPLETED'; i += 1) {
      await new Promise((r) => setTimeout(r, 200));
      order = await client.getOrder(merchantNo, 'dev_chain_1');
    }
    expect(order).toMatchObject({ pay_status: 'COMPLETED', real_pay_amount: '12.34' });
    expect(order.pay_time).toBeGreaterThan(0);
    expect(JSON.stringify(order)).toContain(hash);
    // Paid out on the devnet: the demo merchant's wallet and the fee address, in one settlement transaction.
    const settlements = order.settlements ?? [];
    expect(settlements.map((s) => [s.role, s.status])).toEqual([
      ['MERCHANT', 'SETTLED'],
      ['FEE', 'SETTLED'],
    ]);
    expect(new Set(settlements.map((s) => s.tx_hash)).size).toBe(1);
    const merchantGot = await payer.public.readContract({ address: n.tokens.USDT!, abi: erc20Abi, functionName: 'balanceOf', args: [settlements[0]!.receiver_addr as Address] });
    // 12.34 less the 0.10 USD minimum fee (0.5 % of 12.34 is less), 18 decimals.
    expect(merchantGot).toBe(1224n * 10n ** 16n);
    // The operator sees the same in `order show`, one line per receiver.
    const shown = await sparkpay({ SPARKPAY_DATA_DIR: join(dir, '.sparkpay') }, 'order', 'show', created.payment_order_no);
    expect(shown.code).toBe(0);
    const lines = shown.stdout.split('\n').filter((l) => l.startsWith('settlement '));
    expect(lines).toEqual(settlements.map((s) => expect.stringMatching(new RegExp(`^settlement +${s.role} +${s.receiver_addr} ${s.amount.replace('.', '\\.')} USDT SETTLED ${s.tx_hash}$`))));
    // …and where the settlement stands, in one line.
    expect(shown.stdout).toMatch(new RegExp(`^settlement_state +SETTLED, transaction ${settlements[0]!.tx_hash}$`, 'm'));
  }, 45_000);

  it('devnet pay is a payer on the command line (part, then the rest, the pair chosen on the cashier API), and devnet pay --reorg takes a seen payment off the chain before it is final', async () => {
    // In this process (runCli), as the built executable would run them: the same code, no node start-up each.
    const devnetCommand = (...argv: string[]) => inProcess(['devnet', ...argv], { SPARKPAY_DATA_DIR: join(dir, '.sparkpay') }, dir);
    const client = devClient();
    const merchantNo = String(info.merchant_no);
    const now = () => Math.floor(Date.now() / 1000);
    const until = async (requestNo: string, done: (o: Awaited<ReturnType<typeof client.getOrder>>) => boolean) => {
      let order = await client.getOrder(merchantNo, requestNo);
      for (let i = 0; i < 150 && !done(order); i += 1) {
        await new Promise((r) => setTimeout(r, 200));
        order = await client.getOrder(merchantNo, requestNo);
      }
      return order;
    };
    const devnet = await devnetInfo();
    const usdt = devnet.networks['4']!;
    const payerClients = evmClients(usdt.rpc_url, usdt.chain_id, privateKeyToAccount(devnet.funded_accounts[1]!.private_key));
    const balanceOf = (address: Address) => payerClients.public.readContract({ address: usdt.tokens.USDT!, abi: erc20Abi, functionName: 'balanceOf', args: [address] });

    const order = await client.createOrder({ merchant_no: merchantNo, request_no: 'dev_pay_1', merchant_order_time: now(), total_amount: '3', merchant_order_currency: 'USDT' });
    // Started on port 0 without SPARKPAY_PUBLIC_URL: cashier_url names the port listened on.
    expect(info.api_url).toBe(info.listening);
    expect(order.cashier_url.startsWith(`${String(info.listening)}/cashier/${order.payment_order_no}?t=`)).toBe(true);
    // Several pairs and none chosen: the payer must say which.
    const unchosen = await devnetCommand('pay', order.cashier_url);
    expect(unchosen.code).toBe(2);
    expect(unchosen.stderr).toMatch(/^sparkpay: choose how to pay with --network and --currency: this order can be paid in USDT on 2, USDT on 3, USDT on 4\n$/);
    const part = await devnetCommand('pay', order.cashier_url, '--network', '4', '--currency', 'USDT', '--amount', '1', '--account', '2', '--json');
    expect(part.code).toBe(0);
    const first = oneJson(part.stdout);
    expect(first).toMatchObject({ payment_order_no: order.payment_order_no, network: '4', currency: 'USDT', amount: '1', amount_base: '1000000', from: devnet.funded_accounts[1]!.address, reorganised: false });
    const address = first.address as Address;
    expect(await balanceOf(address)).toBe(1_000_000n);
    await until('dev_pay_1', (o) => o.pay_exception === 'UNDERPAID');
    // The rest: the pair already chosen, the amount still short.
    const rest = await devnetCommand('pay', order.cashier_url, '--json');
    expect(rest.code).toBe(0);
    expect(oneJson(rest.stdout)).toMatchObject({ address, amount: '2', amount_base: '2000000', from: devnet.funded_accounts[0]!.address });
    const paid = await until('dev_pay_1', (o) => o.pay_status === 'PAID' || o.pay_status === 'COMPLETED');
    expect(paid).toMatchObject({ real_pay_amount: '3' });
    expect(paid.payments?.map((p) => [p.tx_hash, p.amount])).toEqual([
      [first.tx_hash, '1'],
      [oneJson(rest.stdout).tx_hash, '2'],
    ]);
    const nothing = await devnetCommand('pay', order.cashier_url);
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toMatch(/^sparkpay: nothing remains to pay on this order \((PAID|COMPLETED)\)\n$/);
    // Nor is there an address to send more to: the cashier hands it out only while something is to send.
    const more = await devnetCommand('pay', order.cashier_url, '--amount', '1');
    expect(more.code).toBe(1);
    expect(more.stderr).toMatch(/^sparkpay: the cashier hands out no deposit address for this order now \((PAID|COMPLETED)\): nothing more is to be sent to it\n$/);

    // Refused before anything is sent.
    for (const [argv, reason] of [
      [['devnet', 'pay', 'P123'], /expected an order's cashier_url/],
      [['devnet', 'pay', order.cashier_url, '--network', '4'], /--network and --currency go together/],
      [['devnet', 'pay', order.cashier_url, '--amount', '0.0000001'], /--amount must be a positive decimal with at most 6 decimals/],
      [['devnet', 'pay', order.cashier_url, '--amount', '1', '--account', '9'], /--account is one of the funded accounts, 1 to 3/],
      [['devnet', 'reorg', '--network', '7'], /--network is one of the devnet's networks/],
      [['devnet', 'reorg', '--network', '4', '--depth', '0'], /--depth is a whole number of blocks from 1 to 64/],
      [['devnet', 'reorg', '--network', '4', '--tx', '0x12'], /--tx is a transaction hash/],
    ] as const) {
      const r = await devnetCommand(...argv.slice(1));
      expect([argv, r.code]).toEqual([argv, 2]);
      expect(r.stderr).toMatch(reason);
    }
    const unknownTx = await devnetCommand('reorg', '--network', '4', '--tx', `0x${'1'.repeat(64)}`);
    expect(unknownTx).toMatchObject({ code: 1, stderr: expect.stringMatching(/is in no block of network 4's chain/) });

    // A native payment the gateway sees (one confirmation), then loses to a reorganisation.
    const eth = await client.createOrder({ merchant_no: merchantNo, request_no: 'dev_pay_2', merchant_order_time: now(), total_amount: '0.01', merchant_order_currency: 'ETH' });
    const lost = await devnetCommand('pay', eth.cashier_url, '--reorg', '--json');
    expect(lost.code).toBe(0);
    const sent = oneJson(lost.stdout);
    expect(sent).toMatchObject({ network: '2', currency: 'ETH', amount: '0.01', amount_base: (10n ** 16n).toString(), reorganised: true });
    const ethChain = evmClients(devnet.networks['2']!.rpc_url, devnet.networks['2']!.chain_id, privateKeyToAccount(devnet.funded_accounts[0]!.private_key));
    expect(await ethChain.public.getTransactionReceipt({ hash: sent.tx_hash as Hex }).catch(() => null)).toBeNull();
    expect(await ethChain.public.getBalance({ address: sent.address as Address })).toBe(0n);
    const reverted = await until('dev_pay_2', (o) => o.pay_exception === 'REVERTED');
    expect(reverted).toMatchObject({ pay_status: 'PENDING', pay_exception: 'REVERTED', payments: [{ status: 'REVERTED', block_number: sent.block_number }] });

    // The newest blocks replaced, their transactions mined again (--keep), then dropped.
    const kept = await devnetCommand('reorg', '--network', '4', '--depth', '2', '--keep', '--json');
    expect(kept.code).toBe(0);
    expect(oneJson(kept.stdout)).toMatchObject({ network: '4', depth: 2, kept: true });
    const dropped = await devnetCommand('reorg', '--network', '4', '--tx', String(oneJson(rest.stdout).tx_hash), '--json');
    expect(dropped.code).toBe(0);
    expect(oneJson(dropped.stdout)).toMatchObject({ network: '4', kept: false, from_block: oneJson(rest.stdout).block_number, transactions: expect.arrayContaining([oneJson(rest.stdout).tx_hash]) });
    expect(await payerClients.public.getTransactionReceipt({ hash: oneJson(rest.stdout).tx_hash as Hex }).catch(() => null)).toBeNull();
  }, 60_000);

  it('stops cleanly on SIGTERM, with every anvil it started, and devnet info then says so', async () => {
    const anvils = await anvilChildren(child.pid!);
    expect(anvils).toHaveLength(4);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stillAlive(anvils)).toEqual([]);
    expect(existsSync(join(dir, '.sparkpay', 'devnet.json'))).toBe(false);
    expect(existsSync(join(dir, '.sparkpay', 'dev.pid'))).toBe(false);
    const r = await sparkpay({ SPARKPAY_DATA_DIR: join(dir, '.sparkpay') }, 'devnet', 'info', '--json');
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^sparkpay: no devnet/);
  });
});

/** The anvil processes among the children of `pid`. */
async function anvilChildren(pid: number): Promise<number[]> {
  const { stdout } = await run('pgrep', ['-P', String(pid)]);
  return stdout
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((child) => readFileSync(`/proc/${child}/comm`, 'utf8').trim() === 'anvil');
}

/** Those of `pids` still running. */
function stillAlive(pids: readonly number[]): number[] {
  return pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
}

describe('sparkpay dev and Ctrl-C', () => {
  // Issue 4 (§16): dev stops every child process on exit, also on SIGINT — what Ctrl-C in the
  // newcomer's terminal sends. The suite above stops its dev with SIGTERM only.
  it('stops on SIGINT with exit 0, taking every anvil it started with it and removing its devnet file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sparkpay-dev-int-'));
    const child = spawn(process.execPath, [MAIN, 'dev', '--json'], {
      cwd: dir,
      env: { ...process.env, SPARKPAY_PORT: '0', SPARKPAY_DATABASE_URL: undefined, SPARKPAY_MASTER_KEY: undefined, SPARKPAY_DATA_DIR: undefined },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr!.resume();
    let anvils: number[] = [];
    try {
      await new Promise<void>((resolveUp, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`dev did not start: ${out}`)), 45_000);
        child.stdout!.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('\n')) {
            clearTimeout(timer);
            resolveUp();
          }
        });
        child.once('exit', (code) => reject(new Error(`dev exited with ${code}: ${out}`)));
      });
      anvils = await anvilChildren(child.pid!);
      expect(anvils).toHaveLength(4);
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(stillAlive(anvils)).toEqual([]);
      expect(existsSync(join(dir, '.sparkpay', 'devnet.json'))).toBe(false);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        for (const pid of anvils) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
