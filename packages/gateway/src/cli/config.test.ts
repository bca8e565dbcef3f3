import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, loadOrCreateConsoleToken } from './config.js';

function dataDir(config?: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'sparkpay-config-'));
  if (config !== undefined) writeFileSync(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return dir;
}

describe('loadConfig', () => {
  it('uses the documented defaults', () => {
    const dir = dataDir();
    const c = loadConfig('production', { SPARKPAY_DATA_DIR: dir });
    expect(c).toMatchObject({ host: '127.0.0.1', port: 8080, publicUrl: 'http://127.0.0.1:8080', rateLimit: 1000, refusalRateLimit: 20, timestampWindowSeconds: 300, notifyAllowPrivate: false, masterKey: null });
    expect(c.databaseUrl).toBe(join(dir, 'sparkpay.db'));
    expect(c.deployment.networks.map((n) => [n.id, n.feeRate, n.minFeeUsd])).toEqual([
      ['2', '0.005', '1.00'],
      ['3', '0.005', '0.10'],
      ['4', '0.005', '0.10'],
      ['5', '0.005', '0.10'],
    ]);
    expect(c.rates).toMatchObject({ USDT: '1', USDC: '1', HKD: '0.1282' });
    expect(c.rates.ETH).toBeUndefined();
    // §13: a notify attempt with no answer within 10 s is a failure.
    expect(c.notify.timeoutMs).toBe(10_000);
  });

  it('refuses a misspelled or unknown setting in the file, naming the one meant', () => {
    const refused = (config: unknown) => () => loadConfig('production', { SPARKPAY_DATA_DIR: dataDir(config) });
    expect(refused({ databse_url: 'postgres://db.example/sparkpay' })).toThrow('databse_url is not a setting of the configuration file (did you mean database_url?)');
    expect(refused({ 'rate-limit': 5 })).toThrow('(did you mean rate_limit?)');
    expect(refused({ settlement: { batchsize: 5 } })).toThrow('settlement.batchsize is not a setting of the configuration file (did you mean settlement.batch_size?)');
    expect(refused({ networks: { '4': { rpc_url: 'https://x.example' } } })).toThrow('networks.4.rpc_url is not a setting of the configuration file (did you mean networks.4.rpc_urls?)');
    expect(refused({ networks: { '4': { currencies: { USDT: { address: '0x' } } } } })).toThrow('networks.4.currencies.USDT.address is not a setting');
    expect(refused({ colour: 'blue' })).toThrow(/^colour is not a setting of the configuration file$/);
  });

  it('refuses empty text settings in the file, as from the environment', () => {
    for (const key of ['host', 'database_url', 'public_url']) {
      expect(() => loadConfig('production', { SPARKPAY_DATA_DIR: dataDir({ [key]: ' ' }) })).toThrow(`${key} is empty in the configuration file`);
    }
  });

  it('refuses a database setting that is neither a postgres:// URL nor a file path, without echoing it', () => {
    for (const value of ['host=db.internal user=sparkpay password=S3cretPw dbname=sparkpay', 'postgres:/u:S3cretPw@h/db', 'postgresql:u:S3cretPw@h/db']) {
      let message = '';
      try {
        loadConfig('production', { SPARKPAY_DATA_DIR: dataDir(), SPARKPAY_DATABASE_URL: value });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toBe('SPARKPAY_DATABASE_URL must be a postgres://user:password@host:port/database URL or a SQLite file path');
    }
    expect(loadConfig('production', { SPARKPAY_DATA_DIR: dataDir(), SPARKPAY_DATABASE_URL: '/var/lib/sparkpay/db.sqlite' }).databaseUrl).toBe('/var/lib/sparkpay/db.sqlite');
  });

  it('takes the relayer key from the environment over the file, whichever form each uses, and refuses both forms in one place', () => {
    const k1 = `0x${'11'.repeat(32)}`;
    const k2 = `0x${'22'.repeat(32)}`;
    const keyFile = join(dataDir(), 'relayer.key');
    writeFileSync(keyFile, k2, { mode: 0o600 });
    const c = loadConfig('production', { SPARKPAY_DATA_DIR: dataDir({ networks: { '4': { relayer_key: k1 } } }), SPARKPAY_RELAYER_KEY_FILE_4: keyFile });
    expect(c.relayers['4']?.privateKey).toBe(k2);
    expect(() => loadConfig('production', { SPARKPAY_DATA_DIR: dataDir({ networks: { '4': { relayer_key: k1, relayer_key_file: keyFile } } }) })).toThrow('networks.4: relayer_key and relayer_key_file are both set; keep one');
    expect(() => loadConfig('production', { SPARKPAY_DATA_DIR: dataDir(), SPARKPAY_RELAYER_KEY_4: k1, SPARKPAY_RELAYER_KEY_FILE_4: keyFile })).toThrow('SPARKPAY_RELAYER_KEY_4 and SPARKPAY_RELAYER_KEY_FILE_4 are both set; keep one');
  });

  it('refuses an empty SPARKPAY_RPC_URLS_<enum> and a SPARKPAY_NOTIFY_ALLOW_PRIVATE other than 0 or 1', () => {
    for (const urls of ['', ' , ']) expect(() => loadConfig('production', { SPARKPAY_DATA_DIR: dataDir(), SPARKPAY_RPC_URLS_4: urls })).toThrow(/SPARKPAY_RPC_URLS_4/);
    for (const value of ['true', 'yes', 'on']) expect(() => loadConfig('production', { SPARKPAY_DATA_DIR: dataDir(), SPARKPAY_NOTIFY_ALLOW_PRIVATE: value })).toThrow('SPARKPAY_NOTIFY_ALLOW_PRIVATE must be 1 (on) or 0 (off)');
    expect(loadConfig('production', { SPARKPAY_DATA_DIR: dataDir(), SPARKPAY_NOTIFY_ALLOW_PRIVATE: '1' }).notifyAllowPrivate).toBe(true);
    expect(loadConfig('production', { SPARKPAY_DATA_DIR: dataDir(), SPARKPAY_NOTIFY_ALLOW_PRIVATE: '0' }).notifyAllowPrivate).toBe(false);
  });

  it('lets SPARKPAY_NOTIFY_ALLOW_PRIVATE=0 win over the file\'s notify_allow_private: true, as every variable wins over the file', () => {
    const dir = dataDir({ notify_allow_private: true });
    expect(loadConfig('production', { SPARKPAY_DATA_DIR: dir }).notifyAllowPrivate).toBe(true);
    expect(loadConfig('production', { SPARKPAY_DATA_DIR: dir, SPARKPAY_NOTIFY_ALLOW_PRIVATE: '0' }).notifyAllowPrivate).toBe(false);
    expect(loadConfig('production', { SPARKPAY_DATA_DIR: dataDir({ notify_allow_private: false }), SPARKPAY_NOTIFY_ALLOW_PRIVATE: '1' }).notifyAllowPrivate).toBe(true);
  });

  it('refuses a SPARKPAY_ variable a slip away from one it reads, naming that one, and leaves others alone', () => {
    for (const [name, meant] of <[string, string][]>[
      ['SPARKPAY_DATABSE_URL', 'SPARKPAY_DATABASE_URL'],
      ['SPARKPAY_RPC_URL_4', 'SPARKPAY_RPC_URLS_4'],
      ['SPARKPAY_RELAYERKEY_4', 'SPARKPAY_RELAYER_KEY_4'],
      ['SPARKPAY_PORTS', 'SPARKPAY_PORT'],
      ['SPARKPAY_MASTERKEY', 'SPARKPAY_MASTER_KEY'],
    ]) {
      expect(() => loadConfig('production', { SPARKPAY_DATA_DIR: dataDir(), [name]: 'x' })).toThrow(`${name} is not a variable sparkpay reads (did you mean ${meant}?)`);
    }
    expect(() => loadConfig('production', { SPARKPAY_DATA_DIR: dataDir(), SPARKPAY_RPC_URLS_9: 'http://x.example' })).toThrow(/SPARKPAY_RPC_URLS_9 is not a variable sparkpay reads/);
    // A merchant application's own variables (the examples'), and the test runs': not the gateway's.
    const env = { SPARKPAY_DATA_DIR: dataDir(), SPARKPAY_APP_ID: '1', SPARKPAY_BASE_URL: 'http://x', SPARKPAY_MERCHANT_NO: 'M1', SPARKPAY_TEST_DATABASE_URL: 'x', SPARKPAY_FUZZ_SEED: '1' };
    expect(loadConfig('production', env).port).toBe(8080);
  });

  it('serves /metrics unless the file says metrics: false', () => {
    expect(loadConfig('production', { SPARKPAY_DATA_DIR: dataDir() }).metrics).toBe(true);
    expect(loadConfig('production', { SPARKPAY_DATA_DIR: dataDir({ metrics: false }) }).metrics).toBe(false);
    expect(() => loadConfig('production', { SPARKPAY_DATA_DIR: dataDir({ metrics: 'no' }) })).toThrow(/metrics must be true or false/);
  });

  it('takes the console token from the environment over the file, refuses a short one, and leaves the console off without one', () => {
    expect(loadConfig('production', { SPARKPAY_DATA_DIR: dataDir() }).consoleToken).toBeNull();
    const dir = dataDir({ console_token: 'from-the-file-0123456789' });
    expect(loadConfig('production', { SPARKPAY_DATA_DIR: dir }).consoleToken).toBe('from-the-file-0123456789');
    expect(loadConfig('production', { SPARKPAY_DATA_DIR: dir, SPARKPAY_CONSOLE_TOKEN: 'from-the-env-0123456789' }).consoleToken).toBe('from-the-env-0123456789');
    expect(() => loadConfig('production', { SPARKPAY_DATA_DIR: dataDir(), SPARKPAY_CONSOLE_TOKEN: 'short' })).toThrow(/SPARKPAY_CONSOLE_TOKEN must be 16-256 printable ASCII/);
    const exposed = dataDir({ console_token: 'from-the-file-0123456789' });
    chmodSync(join(exposed, 'config.json'), 0o644);
    expect(loadConfig('production', { SPARKPAY_DATA_DIR: exposed }).exposedSecrets?.settings).toEqual(['console_token']);
  });

  it("makes development mode's console token once, owner-only, and reads it back; a damaged file is refused by name", () => {
    const dir = dataDir();
    const file = join(dir, 'sub', 'console.token');
    const token = loadOrCreateConsoleToken(file);
    expect(token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toBe(`${token}\n`);
    expect(loadOrCreateConsoleToken(file)).toBe(token);
    writeFileSync(file, 'short\n');
    expect(() => loadOrCreateConsoleToken(file)).toThrow(ConfigError);
    expect(() => loadOrCreateConsoleToken(file)).toThrow(/the console token file .* must be 16-256/);
  });

  it('ships demo rates for every currency and allows private notify targets in development', () => {
    const c = loadConfig('development', { SPARKPAY_DATA_DIR: dataDir() });
    expect(Object.keys(c.rates)).toEqual(expect.arrayContaining(['USDT', 'USDC', 'ETH', 'BNB', 'POL', 'HSK', 'IRIS']));
    expect(c.notifyAllowPrivate).toBe(true);
  });

  it('lets the environment win over the file', () => {
    const dir = dataDir({ port: 9000, host: '0.0.0.0', rate_limit: 5, refusal_rate_limit: 0, networks: { '2': { fee_rate: '0.004' }, '5': false } });
    const c = loadConfig('production', { SPARKPAY_DATA_DIR: dir, SPARKPAY_PORT: '9100', SPARKPAY_PUBLIC_URL: 'https://pay.example/' });
    expect(c.port).toBe(9100);
    expect(c.host).toBe('0.0.0.0');
    expect(c.rateLimit).toBe(5);
    expect(c.refusalRateLimit).toBe(0);
    expect(c.publicUrl).toBe('https://pay.example');
    expect(c.deployment.networks.map((n) => `${n.id}:${n.feeRate}`)).toEqual(['2:0.004', '3:0.005', '4:0.005']);
  });

  it.each([
    [{ SPARKPAY_PORT: 'eighty' }, undefined, /SPARKPAY_PORT must be a whole number/],
    [{ SPARKPAY_PORT: '70000' }, undefined, /between 0 and 65535/],
    [{ SPARKPAY_RATE_LIMIT: '-1' }, undefined, /SPARKPAY_RATE_LIMIT/],
    [{}, '{not json', /not valid/],
    [{}, '[1, 2]', /not a JSON object/],
    [{}, { rates: { ETH: '-3' } }, /rate for ETH/],
    [{}, { networks: { '9': {} } }, /unknown network enum "9"/],
    [{}, { networks: { '2': { fee_rate: '1.5' } } }, /fee rate/],
    [{}, { networks: { '2': { rpc_urls: ['ftp://node.example'] } } }, /RPC URL "ftp:\/\/node.example"/],
    [{}, { networks: { '2': { rpc_urls: 'http://node.example' } } }, /rpc_urls must be a list/],
    [{}, { networks: { '3': { confirmations: 0 } } }, /confirmations must be a whole number/],
    [{}, { networks: { '4': { factory: '0x1234' } } }, /factory is not an EVM address/],
    [{}, { networks: { '4': { factory: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8' } } }, /factory and forwarder are set together/],
    [{}, { networks: { '4': { factory: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', forwarder: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8' } } }, /a network with a factory needs a fee_address/],
    [{}, { networks: { '2': { currencies: { DOGE: { decimals: 8 } } } } }, /DOGE is not a currency of 2/],
    [{}, { networks: { '2': { currencies: { ETH: { contract: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8' } } } } }, /ETH is the native coin/],
    [{}, { networks: { '2': { currencies: { USDT: { contract: 'nope' } } } } }, /USDT contract is not an EVM address/],
    [{}, { networks: { '2': { currencies: { USDT: { decimals: 4 } } } } }, /precision <= decimals/],
  ])('refuses bad settings with a clear reason (%j %j)', (env, file, reason) => {
    const dir = dataDir(file);
    expect(() => loadConfig('production', { SPARKPAY_DATA_DIR: dir, ...env })).toThrow(ConfigError);
    expect(() => loadConfig('production', { SPARKPAY_DATA_DIR: dir, ...env })).toThrow(reason);
  });

  it('maps each network to its chain: mainnet ids and confirmation defaults, no RPC endpoints until configured', () => {
    const c = loadConfig('production', { SPARKPAY_DATA_DIR: dataDir() });
    expect(c.deployment.networks.map((n) => [n.id, n.chainId, n.chain.confirmations, n.chain.rpcUrls, n.chain.factory])).toEqual([
      ['2', 1, 12, [], null],
      ['3', 56, 15, [], null],
      ['4', 137, 64, [], null],
      ['5', 6688, 10, [], null],
    ]);
  });

  it('takes a testnet or devnet chain from the file: chain id, RPC URLs, confirmations, contracts, token contracts and decimals', () => {
    const factory = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
    const forwarder = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512';
    const token = '0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0';
    const feeAddress = '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65';
    const dir = dataDir({
      networks: {
        '3': { chain_id: 31337, rpc_urls: ['http://127.0.0.1:8545', 'ws://127.0.0.1:8546'], confirmations: 2, factory, forwarder, fee_address: feeAddress, currencies: { USDT: { contract: token, decimals: 18 } } },
      },
    });
    const c = loadConfig('production', { SPARKPAY_DATA_DIR: dir, SPARKPAY_RPC_URLS_4: 'https://a.example/rpc, https://b.example/rpc' });
    const bsc = c.deployment.networks.find((n) => n.id === '3')!;
    expect(bsc.chainId).toBe(31337);
    expect(bsc.chain).toEqual({ rpcUrls: ['http://127.0.0.1:8545', 'ws://127.0.0.1:8546'], confirmations: 2, factory, forwarder, feeAddress });
    expect(bsc.currencies.find((x) => x.code === 'USDT')).toEqual({ code: 'USDT', contract: token, decimals: 18, precision: 6 });
    expect(bsc.currencies.find((x) => x.code === 'BNB')).toEqual({ code: 'BNB', contract: null, decimals: 18, precision: 8 });
    // The environment's endpoints win over the file's.
    expect(c.deployment.networks.find((n) => n.id === '4')!.chain.rpcUrls).toEqual(['https://a.example/rpc', 'https://b.example/rpc']);
  });

  it('leaves a currency off a network when the file says false: it is not offered there, and the other networks keep it', () => {
    const dir = dataDir({ networks: { '4': { currencies: { USDC: false, POL: false } }, '2': { currencies: { USDT: { decimals: 6 } } } } });
    const c = loadConfig('production', { SPARKPAY_DATA_DIR: dir });
    const codes = (id: string) => c.deployment.networks.find((n) => n.id === id)!.currencies.map((x) => x.code);
    expect(codes('4')).toEqual(['USDT']);
    expect(codes('2')).toContain('USDC');
    expect(() => loadConfig('production', { SPARKPAY_DATA_DIR: dataDir({ networks: { '4': { currencies: { DOGE: false } } } }) })).toThrow(/DOGE is not a currency of 4/);
    expect(() => loadConfig('production', { SPARKPAY_DATA_DIR: dataDir({ networks: { '4': { currencies: { USDC: true } } } }) })).toThrow(/networks\.4\.currencies\.USDC/);
  });

  it('requires the file named by SPARKPAY_CONFIG to exist', () => {
    expect(() => loadConfig('production', { SPARKPAY_DATA_DIR: dataDir(), SPARKPAY_CONFIG: '/nonexistent/sparkpay.json' })).toThrow(/does not exist/);
  });

  it('reads each network’s relayer key from the environment, a key file or the file, with its fee cap, and never echoes a bad key', () => {
    const key = `0x${'ab'.repeat(32)}`;
    const other = `0x${'cd'.repeat(32)}`;
    const dir = dataDir();
    const keyFile = join(dir, 'relayer-4.key');
    writeFileSync(keyFile, `${'ef'.repeat(32)}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ networks: { '2': { relayer_key: key, max_fee_gwei: '150.5' }, '4': { relayer_key_file: keyFile }, '5': false } }));
    const c = loadConfig('production', { SPARKPAY_DATA_DIR: dir, SPARKPAY_RELAYER_KEY_3: other });
    expect(c.relayers).toEqual({
      '2': { privateKey: key, maxFeePerGas: 150_500_000_000n },
      '3': { privateKey: other, maxFeePerGas: 1_000_000_000_000n },
      '4': { privateKey: `0x${'ef'.repeat(32)}`, maxFeePerGas: 1_000_000_000_000n },
    });
    expect(loadConfig('production', { SPARKPAY_DATA_DIR: dataDir() }).relayers).toEqual({});
    const secretish = `0x${'12'.repeat(31)}`;
    let message = '';
    try {
      loadConfig('production', { SPARKPAY_DATA_DIR: dataDir(), SPARKPAY_RELAYER_KEY_2: secretish });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    expect(message).toMatch(/SPARKPAY_RELAYER_KEY_2: the relayer key is not 0x followed by 64 hex digits/);
    expect(message).not.toContain(secretish.slice(2));
    expect(() => loadConfig('production', { SPARKPAY_DATA_DIR: dataDir({ networks: { '2': { relayer_key: key, max_fee_gwei: 'lots' } } }) })).toThrow(/max_fee_gwei/);
    expect(() => loadConfig('production', { SPARKPAY_DATA_DIR: dataDir({ networks: { '2': { relayer_key_file: '/nonexistent/key' } } }) })).toThrow(/cannot read/);
  });

  it('names the place a refused relayer key came from: the variable, the key file or the setting', () => {
    const refusal = (env: NodeJS.ProcessEnv, config?: unknown): string => {
      try {
        loadConfig('production', { SPARKPAY_DATA_DIR: dataDir(config), ...env });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    const short = `0x${'12'.repeat(31)}`;
    const dir = dataDir();
    const badFile = join(dir, 'relayer.key');
    writeFileSync(badFile, short, { mode: 0o600 });
    // From the environment: the variable is named, not a setting of a file the operator does not have.
    expect(refusal({ SPARKPAY_RELAYER_KEY_4: short })).toMatch(/^SPARKPAY_RELAYER_KEY_4: the relayer key is not 0x followed by 64 hex digits/);
    expect(refusal({ SPARKPAY_RELAYER_KEY_4: `0x${'0'.repeat(64)}` })).toMatch(/^SPARKPAY_RELAYER_KEY_4: the relayer key is not a valid secp256k1 private key/);
    expect(refusal({ SPARKPAY_RELAYER_KEY_FILE_4: '/nonexistent/key' })).toMatch(/^SPARKPAY_RELAYER_KEY_FILE_4: cannot read \/nonexistent\/key/);
    expect(refusal({ SPARKPAY_RELAYER_KEY_FILE_4: badFile })).toMatch(new RegExp(`^SPARKPAY_RELAYER_KEY_FILE_4 \\(${badFile}\\): the relayer key is not 0x followed by 64 hex digits`));
    // Set but empty is refused as such (README: an empty variable is never taken as a value).
    expect(refusal({ SPARKPAY_RELAYER_KEY_4: '' })).toBe('SPARKPAY_RELAYER_KEY_4 is set but empty; unset it or give it a value');
    expect(refusal({ SPARKPAY_RELAYER_KEY_FILE_4: '' })).toBe('SPARKPAY_RELAYER_KEY_FILE_4 is set but empty; unset it or give it a value');
    // From the configuration file: its setting.
    expect(refusal({}, { networks: { '4': { relayer_key: short } } })).toMatch(/^networks\.4\.relayer_key: the relayer key is not 0x/);
    expect(refusal({}, { networks: { '4': { relayer_key_file: badFile } } })).toMatch(new RegExp(`^networks\\.4\\.relayer_key_file \\(${badFile}\\): the relayer key is not 0x`));
    expect(refusal({}, { networks: { '4': { relayer_key_file: '/nonexistent/key' } } })).toMatch(/^networks\.4\.relayer_key_file: cannot read \/nonexistent\/key/);
  });

  it('says where a configuration file is not JSON without quoting any of it (a key may sit next to the fault)', () => {
    const key = 'ab'.repeat(32);
    const refusal = (text: string) => {
      try {
        loadConfig('production', { SPARKPAY_DATA_DIR: dataDir(text) });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    for (const text of [`{"networks": {"4": {"relayer_key": ${key}}}}`, `{"master_key": "${key}" "${key}"}`, `{"metrics_token": "${key}`, `{\n  "master_key": "${key}",\n}`, key, `{"k":${key}}`, `{"k":${key}, "networks": {}}`]) {
      const message = refusal(text);
      expect(message).toMatch(/configuration file .*config\.json is not valid: not valid JSON( \(line \d+, column \d+\))?$/);
      expect(message).not.toMatch(/abab|'a'|"/);
    }
    expect(refusal(`{\n  "master_key": "${key}",\n}`)).toMatch(/\(line 3, column 1\)$/);
    expect(refusal(`{"networks": {"4": {"rpc_urls": [`)).toMatch(/not valid JSON \(it ends before its value does\)$/);
  });

  it('notes a configuration file holding secrets that other users can read (for the warning at start), naming the settings only', () => {
    const dir = dataDir({ master_key: 'ab'.repeat(32), database_url: 'postgres://shop:pw@db.example/pay', networks: { '4': { relayer_key: `0x${'ef'.repeat(32)}` }, '2': { rpc_urls: ['https://mainnet.infura.io/v3/0123456789abcdef0123'] } } });
    const file = join(dir, 'config.json');
    chmodSync(file, 0o644);
    const config = loadConfig('production', { SPARKPAY_DATA_DIR: dir });
    expect(config.exposedSecrets).toEqual({ path: file, mode: '0644', settings: ['master_key', 'database_url', 'networks.2.rpc_urls', 'networks.4.relayer_key'] });
    chmodSync(file, 0o600);
    expect(loadConfig('production', { SPARKPAY_DATA_DIR: dir }).exposedSecrets).toBeUndefined();
    // Nothing secret in it: nothing to say, whatever its mode.
    const plain = dataDir({ port: 8081, database_url: 'postgres://db.example/pay', networks: { '4': { rpc_urls: ['http://127.0.0.1:8545', 'https://polygon.example/rpc'] } } });
    chmodSync(join(plain, 'config.json'), 0o644);
    expect(loadConfig('production', { SPARKPAY_DATA_DIR: plain }).exposedSecrets).toBeUndefined();
  });

  it('notes a relayer key file that other users can read (for the warning at start), and only then', () => {
    const dir = dataDir();
    const keyFile = join(dir, 'relayer.key');
    writeFileSync(keyFile, `0x${'ef'.repeat(32)}\n`, { mode: 0o600 });
    const relayer = () => loadConfig('production', { SPARKPAY_DATA_DIR: dir, SPARKPAY_RELAYER_KEY_FILE_4: keyFile }).relayers['4'];
    expect(relayer()).toEqual({ privateKey: `0x${'ef'.repeat(32)}`, maxFeePerGas: 1_000_000_000_000n });
    chmodSync(keyFile, 0o644);
    expect(relayer()?.exposedFile).toEqual({ path: keyFile, mode: '0644' });
    chmodSync(keyFile, 0o640);
    expect(relayer()?.exposedFile).toEqual({ path: keyFile, mode: '0640' });
    chmodSync(keyFile, 0o400);
    expect(relayer()?.exposedFile).toBeUndefined();
  });

  it('has settlement defaults (batches of 20) and takes the file’s settings', () => {
    expect(loadConfig('production', { SPARKPAY_DATA_DIR: dataDir() }).settlement).toEqual({ batchSize: 20, pollMs: 1000, replaceAfterMs: 180_000, maxInFlight: 8, retryBaseMs: 30_000, leaseMs: 30_000 });
    expect(loadConfig('development', { SPARKPAY_DATA_DIR: dataDir() }).settlement).toMatchObject({ pollMs: 500, replaceAfterMs: 15_000 });
    expect(loadConfig('production', { SPARKPAY_DATA_DIR: dataDir({ settlement: { batch_size: 5, poll_ms: 250 } }) }).settlement).toMatchObject({ batchSize: 5, pollMs: 250 });
    expect(() => loadConfig('production', { SPARKPAY_DATA_DIR: dataDir({ settlement: { batch_size: 0 } }) })).toThrow(/settlement.batch_size/);
  });
});
