// Configuration: defaults < configuration file < environment (§16). One loader for the server
// and the management commands, so both find the same database.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Hex } from 'viem';
import { parseRelayerKey } from '../adapters/chain/evm/relayer.js';
import { urlHasSecrets } from '../domain/endpoint-secrets.js';
import { dirname, join, resolve } from 'node:path';
import { checkDeployment, mainnetDeployment, type Deployment, type NetworkId, NETWORK_IDS } from '../domain/catalogue.js';
import { DEFAULT_RATE_CONFIG, DEMO_RATE_CONFIG, parseRateTable, type RateConfig } from '../domain/rates.js';
import { WIDE_SCAN_FROM } from '../app/scan-chain.js';
import { NATIVE_FULL_READ_MS, NATIVE_SPARSE_FROM } from '../app/scan-native.js';

export type Mode = 'production' | 'development';

export interface Config {
  mode: Mode;
  dataDir: string;
  /**
   * The configuration file, when it holds secrets (a master key, a relayer key, a metrics token, a
   * database password) and other users of the machine may read it: its path and mode (octal), for
   * the warning at start. Never any of its content.
   */
  exposedSecrets?: { path: string; mode: string; settings: string[] };
  host: string;
  port: number;
  publicUrl: string;
  /** `postgres://…` or a SQLite file path. */
  databaseUrl: string;
  /** SPARKPAY_MASTER_KEY as given (parsed by the vault), or null. */
  masterKey: string | null;
  masterKeyFile: string;
  /** Requests per second per application; 0 disables the limit. */
  rateLimit: number;
  /** Refusals of unauthenticated /v4/ requests signed per second for one client address (refusal_rate_limit); 0: no limit. */
  refusalRateLimit: number;
  notifyAllowPrivate: boolean;
  notify: NotifySettings;
  timestampWindowSeconds: number;
  expiryIntervalMs: number;
  /** How often each network's chain is scanned when it is not behind. */
  chainPollMs: number;
  /** Watched addresses on a network above which a pass asks for every transfer of its tokens (ADR 0007). */
  chainWideScanFrom: number;
  /** Watched native-coin addresses above which a pass reads only the balances that can have changed. */
  chainNativeSparseFrom: number;
  /** How often (ms) every watched native-coin balance is read all the same. */
  chainNativeFullReadMs: number;
  logLevel: string;
  /** Serve GET /metrics (Prometheus text format); the file's `metrics: false` turns it off. */
  metrics: boolean;
  /** When set, GET /metrics answers only `Authorization: Bearer <token>` (metrics_token, SPARKPAY_METRICS_TOKEN). */
  metricsToken: string | null;
  /**
   * The operator console's sign-in token (console_token, SPARKPAY_CONSOLE_TOKEN). Production
   * serves /console only when it is set; development mode generates one into its data directory
   * (consoleTokenFile) when it is not.
   */
  consoleToken: string | null;
  consoleTokenFile: string;
  /** Proxies (addresses or CIDR ranges) whose X-Forwarded-For names the client (trust_proxy, SPARKPAY_TRUST_PROXY); empty: none. */
  trustProxy: string[];
  deployment: Deployment;
  rates: RateConfig;
  /** The settlement relayer of each network that has one (§15a); never logged. */
  relayers: Partial<Record<NetworkId, RelayerConfig>>;
  settlement: SettlementSettings;
}

export interface RelayerConfig {
  privateKey: Hex;
  /** The highest max fee per gas it pays, wei. */
  maxFeePerGas: bigint;
  /**
   * The key file it came from, when other users of the machine may read it (its mode, in octal):
   * warned about at start. Not refused: a mounted secret (Kubernetes' default mode is 0644) is
   * often readable by design inside a container where nobody else runs.
   */
  exposedFile?: { path: string; mode: string };
}

export interface SettlementSettings {
  /** Orders per settlement transaction at most. */
  batchSize: number;
  pollMs: number;
  /** A settlement transaction pending this long is replaced with higher fees. */
  replaceAfterMs: number;
  maxInFlight: number;
  retryBaseMs: number;
  /** How long a network's sender lease lasts without renewal: after a crash, another instance takes over then. */
  leaseMs: number;
}

export interface NotifySettings {
  /** One attempt: connect, send, answer (§13: 10 s). */
  timeoutMs: number;
  /** Attempts in flight at once per process. */
  concurrency: number;
  /** Attempts in flight at once to one host:port. */
  perDestination: number;
  /** How often due work written by others (instances, CLI resend, retries) is looked for. */
  pollMs: number;
  /** How long a claimed attempt is ours: the timeout plus room to build the envelope and record the outcome. */
  leaseMs: number;
}

export class ConfigError extends Error {}

interface FileConfig {
  host?: string;
  port?: number;
  public_url?: string;
  database_url?: string;
  master_key?: string;
  rate_limit?: number;
  refusal_rate_limit?: number;
  notify_allow_private?: boolean;
  notify?: { timeout_ms?: number; concurrency?: number; per_destination?: number; poll_ms?: number };
  timestamp_window_seconds?: number;
  log_level?: string;
  chain_poll_ms?: number;
  chain_wide_scan_from?: number;
  chain_native_sparse_from?: number;
  chain_native_full_read_ms?: number;
  metrics?: boolean;
  rates?: Record<string, string>;
  metrics_token?: string;
  console_token?: string;
  trust_proxy?: string;
  settlement?: { batch_size?: number; poll_ms?: number; replace_after_ms?: number; max_in_flight?: number; retry_base_ms?: number; lease_ms?: number };
  /** Per network enum: fee overrides, or `false` to leave the network out of this deployment. */
  networks?: Record<string, false | NetworkFileConfig>;
}

/** One network in the configuration file; everything optional, defaults from the mainnet catalogue. */
interface NetworkFileConfig {
  fee_rate?: string;
  min_fee_usd?: string;
  chain_id?: number;
  rpc_urls?: string[];
  confirmations?: number;
  factory?: string;
  forwarder?: string;
  fee_address?: string;
  /** The settlement relayer's private key (0x + 64 hex), or a file holding it (mode 0600). */
  relayer_key?: string;
  relayer_key_file?: string;
  /** Highest max fee per gas the relayer pays, in gwei (decimal). Default 1000. */
  max_fee_gwei?: string;
  /** Per currency code: the token contract and decimals on this chain (testnets, the devnet). */
  /** false: the currency is not offered on this network (a testnet without that token, an operator who does not take it). */
  currencies?: Record<string, { contract?: string; decimals?: number } | false>;
}

export function loadConfig(mode: Mode, env: NodeJS.ProcessEnv = process.env): Config {
  checkEnvNames(env);
  const dataDir = resolve(envText(env, 'SPARKPAY_DATA_DIR') ?? './.sparkpay');
  const configPath = envText(env, 'SPARKPAY_CONFIG');
  const file = readConfigFile(configPath ?? join(dataDir, 'config.json'), configPath !== undefined);
  checkFileTypes(file);
  const host = envText(env, 'SPARKPAY_HOST') ?? file.host ?? '127.0.0.1';
  const port = intSetting('SPARKPAY_PORT', env.SPARKPAY_PORT, file.port, 8080, 0, 65535);
  const rates = { ...(mode === 'development' ? DEMO_RATE_CONFIG : DEFAULT_RATE_CONFIG), ...(file.rates ?? {}) };
  const parsedRates = parseRateTable(rates);
  if (!parsedRates.ok) throw new ConfigError(`rates: ${parsedRates.errors.join('; ')}`);
  const chainPollMs = intSetting('chain_poll_ms', undefined, file.chain_poll_ms, mode === 'development' ? 500 : 1000, 50, 600_000);
  return {
    mode,
    dataDir,
    host,
    port,
    publicUrl: publicUrlSetting(textSetting(env, 'SPARKPAY_PUBLIC_URL', 'public_url', file.public_url), defaultPublicUrl(host, port)),
    databaseUrl: databaseUrlSetting(textSetting(env, 'SPARKPAY_DATABASE_URL', 'database_url', file.database_url), join(dataDir, 'sparkpay.db')),
    masterKey: envText(env, 'SPARKPAY_MASTER_KEY') ?? file.master_key ?? null,
    masterKeyFile: join(dataDir, 'master.key'),
    rateLimit: intSetting('SPARKPAY_RATE_LIMIT', env.SPARKPAY_RATE_LIMIT, file.rate_limit, 1000, 0, 1_000_000),
    refusalRateLimit: intSetting('refusal_rate_limit', undefined, file.refusal_rate_limit, REFUSAL_RATE_LIMIT, 0, 1_000_000),
    // The variable, when set (0 or 1), wins over the file, as every variable does: 0 turns the
    // address policy back on where the file had turned it off.
    notifyAllowPrivate: mode === 'development' || (flagSetting(env, 'SPARKPAY_NOTIFY_ALLOW_PRIVATE') ?? file.notify_allow_private === true),
    notify: notifySettings(file.notify ?? {}),
    timestampWindowSeconds: intSetting('SPARKPAY_TIMESTAMP_WINDOW', env.SPARKPAY_TIMESTAMP_WINDOW, file.timestamp_window_seconds, 300, 1, 86_400),
    expiryIntervalMs: 1000,
    chainPollMs,
    chainWideScanFrom: intSetting('chain_wide_scan_from', undefined, file.chain_wide_scan_from, WIDE_SCAN_FROM, 0, 1_000_000_000),
    chainNativeSparseFrom: intSetting('chain_native_sparse_from', undefined, file.chain_native_sparse_from, NATIVE_SPARSE_FROM, 0, 1_000_000_000),
    chainNativeFullReadMs: intSetting('chain_native_full_read_ms', undefined, file.chain_native_full_read_ms, NATIVE_FULL_READ_MS, 1_000, 3_600_000),
    logLevel: logLevelSetting(textSetting(env, 'SPARKPAY_LOG_LEVEL', 'log_level', file.log_level), 'info'),
    metrics: booleanSetting('metrics', file.metrics, true),
    metricsToken: tokenSetting(textSetting(env, 'SPARKPAY_METRICS_TOKEN', 'metrics_token', file.metrics_token)),
    consoleToken: tokenSetting(textSetting(env, 'SPARKPAY_CONSOLE_TOKEN', 'console_token', file.console_token)),
    consoleTokenFile: join(dataDir, 'console.token'),
    trustProxy: trustProxySetting(textSetting(env, 'SPARKPAY_TRUST_PROXY', 'trust_proxy', file.trust_proxy)),
    deployment: deploymentFrom(file.networks, env),
    rates,
    relayers: relayersFrom(file.networks, env),
    ...exposedSecretsOf(configPath ?? join(dataDir, 'config.json'), file),
    settlement: settlementSettings(file.settlement ?? {}, mode, chainPollMs),
  };
}

/** exposedSecrets of the configuration file at `path` as read (`file`), or nothing. */
function exposedSecretsOf(path: string, file: FileConfig): Pick<Config, 'exposedSecrets'> {
  const settings: string[] = [];
  if (file.master_key !== undefined) settings.push('master_key');
  if (file.metrics_token !== undefined) settings.push('metrics_token');
  if (file.console_token !== undefined) settings.push('console_token');
  if (typeof file.database_url === 'string' && /^postgres(ql)?:\/\/[^/@]*:[^/@]*@/i.test(file.database_url)) settings.push('database_url');
  for (const [id, n] of Object.entries(isPlainObject(file.networks) ? file.networks : {})) {
    if (!isPlainObject(n)) continue;
    if (n.relayer_key !== undefined) settings.push(`networks.${id}.relayer_key`);
    // An endpoint URL with credentials in it (a provider's API key in the path, a password).
    if (Array.isArray(n.rpc_urls) && n.rpc_urls.some((u) => typeof u === 'string' && urlHasSecrets(u))) settings.push(`networks.${id}.rpc_urls`);
  }
  if (settings.length === 0 || !existsSync(path)) return {};
  const mode = statSync(path).mode & 0o777;
  return (mode & 0o077) !== 0 ? { exposedSecrets: { path, mode: `0${mode.toString(8).padStart(3, '0')}`, settings } } : {};
}

function readConfigFile(path: string, required: boolean): FileConfig {
  if (!existsSync(path)) {
    if (required) throw new ConfigError(`configuration file ${path} does not exist`);
    return {};
  }
  let source = '';
  try {
    source = readFileSync(path, 'utf8');
    const parsed: unknown = JSON.parse(source);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as FileConfig;
  } catch (err) {
    throw new ConfigError(`configuration file ${path} is not valid: ${parseFailure(err as Error, source)}`);
  }
}

/**
 * Why a configuration file is not JSON, without any of its text: V8's messages quote the file
 * around the fault (`..."yer_key": abab"...`, or its first characters) and the offending
 * character, which may be part of a relayer key, the master key or a metrics token. Only where
 * the fault is (line and column, when V8 gives a position) is said.
 */
export function parseFailure(err: Error, source = ''): string {
  if (!(err instanceof SyntaxError)) return err.message;
  if (err.message === 'Unexpected end of JSON input') return 'not valid JSON (it ends before its value does)';
  const at = / at position (\d+)(?: \(line \d+ column \d+\))?$/.exec(err.message);
  if (!at) return 'not valid JSON';
  const before = source.slice(0, Number(at[1]));
  return `not valid JSON (line ${before.split('\n').length}, column ${before.length - before.lastIndexOf('\n')})`;
}

/**
 * A text setting from the environment: undefined when unset. Set but empty (an unset shell
 * variable expanded into it, say) is refused rather than taken as a value: an empty
 * SPARKPAY_HOST would listen on every interface, an empty SPARKPAY_DATA_DIR is the working
 * directory, an empty SPARKPAY_DATABASE_URL a throw-away database.
 */
function envText(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  if (value === undefined) return undefined;
  if (value.trim() === '') throw new ConfigError(`${name} is set but empty; unset it or give it a value`);
  return value;
}

/** An on/off variable: `1` on, `0` off, unset undefined (the file or the default decides); anything else ("true", "yes") is refused rather than read as off. */
function flagSetting(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const value = envText(env, name);
  if (value === undefined) return undefined;
  if (value.trim() === '0') return false;
  if (value.trim() === '1') return true;
  throw new ConfigError(`${name} must be 1 (on) or 0 (off), got ${JSON.stringify(value.slice(0, 20))}`);
}

/**
 * Default refusal_rate_limit: signed refusals of unauthenticated /v4/ requests per second for one
 * client address (bursts of five times as many). A merchant whose key, clock or AppID is wrong
 * sees why well within it; a flood beyond it is answered without an RSA signature each.
 */
export const REFUSAL_RATE_LIMIT = 20;

/** A text setting and where it came from (to name it in a refusal): the environment, else the file. */
interface TextSetting {
  name: string;
  value: string | undefined;
}

/** Comma-separated IP addresses or CIDR ranges (v4 or v6) of the reverse proxies in front of the gateway. */
function trustProxySetting(setting: TextSetting): string[] {
  if (setting.value === undefined || setting.value.trim() === '') return [];
  const entries = setting.value.split(',').map((e) => e.trim());
  for (const e of entries) {
    const [ip, bits, extra] = e.split('/');
    const family = isIP(ip ?? '');
    // A /0 range would trust every client to name itself (and Fastify refuses it).
    const prefixOk = bits === undefined || (/^[0-9]{1,3}$/.test(bits) && Number(bits) >= 1 && Number(bits) <= (family === 6 ? 128 : 32));
    if (family === 0 || !prefixOk || extra !== undefined) throw new ConfigError(`${setting.name} must be IP addresses or CIDR ranges separated by commas (e.g. 127.0.0.1,10.0.0.0/8), got ${JSON.stringify(e)}`);
  }
  return entries;
}

/** A bearer token for GET /metrics: 16-256 printable ASCII characters without spaces (what an Authorization header carries). */
/**
 * Development mode's console token when none is configured: read from the data directory, or
 * made there (owner-only) on the first run, so the operator signs in with what the file says.
 */
export function loadOrCreateConsoleToken(path: string): string {
  if (existsSync(path)) return tokenSetting({ name: `the console token file ${path}`, value: readFileSync(path, 'utf8').trim() }) as string;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const token = randomBytes(24).toString('base64url');
  writeFileSync(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
  return token;
}

/** A bearer secret (metrics_token, console_token): long enough not to be guessed, sendable in a header. */
function tokenSetting(setting: TextSetting): string | null {
  if (setting.value === undefined) return null;
  if (!/^[\x21-\x7e]{16,256}$/.test(setting.value)) throw new ConfigError(`${setting.name} must be 16-256 printable ASCII characters without spaces`);
  return setting.value;
}

function textSetting(env: NodeJS.ProcessEnv, envName: string, fileName: string, fileValue: string | undefined): TextSetting {
  const fromEnv = envText(env, envName);
  return fromEnv !== undefined ? { name: envName, value: fromEnv } : { name: fileName, value: fileValue };
}

const TOP_KEYS = ['host', 'port', 'public_url', 'database_url', 'master_key', 'rate_limit', 'refusal_rate_limit', 'notify_allow_private', 'notify', 'timestamp_window_seconds', 'log_level', 'chain_poll_ms', 'chain_wide_scan_from', 'chain_native_sparse_from', 'chain_native_full_read_ms', 'metrics', 'rates', 'metrics_token', 'console_token', 'trust_proxy', 'settlement', 'networks'];
const SECTION_KEYS = {
  notify: ['timeout_ms', 'concurrency', 'per_destination', 'poll_ms'],
  settlement: ['batch_size', 'poll_ms', 'replace_after_ms', 'max_in_flight', 'retry_base_ms', 'lease_ms'],
} as const;
const NETWORK_KEYS = ['fee_rate', 'min_fee_usd', 'chain_id', 'rpc_urls', 'confirmations', 'factory', 'forwarder', 'fee_address', 'relayer_key', 'relayer_key_file', 'max_fee_gwei', 'currencies'];

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The environment variables the gateway reads. */
const ENV_NAMES = [
  'SPARKPAY_DATA_DIR',
  'SPARKPAY_CONFIG',
  'SPARKPAY_HOST',
  'SPARKPAY_PORT',
  'SPARKPAY_PUBLIC_URL',
  'SPARKPAY_DATABASE_URL',
  'SPARKPAY_MASTER_KEY',
  'SPARKPAY_RATE_LIMIT',
  'SPARKPAY_NOTIFY_ALLOW_PRIVATE',
  'SPARKPAY_TIMESTAMP_WINDOW',
  'SPARKPAY_LOG_LEVEL',
  'SPARKPAY_METRICS_TOKEN',
  'SPARKPAY_TRUST_PROXY',
  ...NETWORK_IDS.flatMap((id) => [`SPARKPAY_RPC_URLS_${id}`, `SPARKPAY_RELAYER_KEY_${id}`, `SPARKPAY_RELAYER_KEY_FILE_${id}`]),
];

/**
 * Refuses a SPARKPAY_ variable the gateway does not read but that is a slip away from one it does
 * (SPARKPAY_DATABSE_URL, SPARKPAY_RPC_URL_4, SPARKPAY_RPC_URLS_9): ignored, it would leave the
 * setting at its default (a production start on a throw-away SQLite file). Variables far from
 * every name (an application's own SPARKPAY_APP_ID, say) are none of the gateway's business.
 */
function checkEnvNames(env: NodeJS.ProcessEnv): void {
  for (const name of Object.keys(env)) {
    if (!name.startsWith('SPARKPAY_') || ENV_NAMES.includes(name) || /^SPARKPAY_(TEST|FUZZ|BENCH)_/.test(name)) continue;
    const tail = name.slice('SPARKPAY_'.length);
    let near: string | null = null;
    let best = Infinity;
    for (const known of ENV_NAMES) {
      const d = editDistance(known.slice('SPARKPAY_'.length), tail);
      if (d < best) [near, best] = [known, d];
    }
    if (near !== null && best <= (tail.length <= 6 ? 1 : 2)) throw new ConfigError(`${name} is not a variable sparkpay reads (did you mean ${near}?)`);
  }
}

/** Refuses a key of `object` that is not one of `keys`, naming the closest known one. */
function known(prefix: string, object: Record<string, unknown>, keys: readonly string[]): void {
  for (const key of Object.keys(object)) {
    if (keys.includes(key)) continue;
    const squash = (k: string) => k.toLowerCase().replace(/[^a-z0-9]/g, '');
    const near = keys.find((k) => squash(k) === squash(key) || squash(k).startsWith(squash(key)) || squash(key).startsWith(squash(k)) || editDistance(squash(k), squash(key)) <= 2);
    throw new ConfigError(`${prefix}${key} is not a setting of the configuration file${near ? ` (did you mean ${prefix}${near}?)` : ''}`);
  }
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j += 1) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** Each value of the configuration file has the JSON type its setting takes: a mistake is named, not met later as a JavaScript error. */
function checkFileTypes(file: FileConfig): void {
  const expect = (where: string, value: unknown, type: 'string' | 'number' | 'boolean' | 'object') => {
    if (value === undefined) return;
    const actual = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
    const wanted = type === 'object' ? 'a JSON object' : type === 'boolean' ? 'true or false' : `a ${type}`;
    if (actual !== type) throw new ConfigError(`${where} must be ${wanted}, got ${actual === 'object' ? 'an object' : actual === 'array' ? 'a list' : actual}`);
  };
  const top = file as Record<string, unknown>;
  // A misspelled setting is refused, not ignored: "databse_url" would run production on a local
  // SQLite file, "rpc_url" would leave a network unscanned.
  known('', top, TOP_KEYS);
  for (const section of ['notify', 'settlement'] as const) if (isPlainObject(top[section])) known(`${section}.`, top[section], SECTION_KEYS[section]);
  for (const [id, n] of Object.entries(isPlainObject(top.networks) ? top.networks : {})) {
    if (!isPlainObject(n)) continue;
    known(`networks.${id}.`, n, NETWORK_KEYS);
    for (const [code, c] of Object.entries(isPlainObject(n.currencies) ? n.currencies : {})) if (isPlainObject(c)) known(`networks.${id}.currencies.${code}.`, c, ['contract', 'decimals']);
  }
  for (const key of ['host', 'public_url', 'database_url', 'master_key', 'log_level', 'metrics_token', 'console_token', 'trust_proxy'] as const) {
    expect(key, top[key], 'string');
    // Empty is refused as from the environment: an empty host listens on every interface, an
    // empty database_url is a throw-away database.
    if (typeof top[key] === 'string' && (top[key] as string).trim() === '') throw new ConfigError(`${key} is empty in the configuration file; remove it or give it a value`);
  }
  for (const key of ['port', 'rate_limit', 'refusal_rate_limit', 'timestamp_window_seconds', 'chain_poll_ms', 'chain_wide_scan_from', 'chain_native_sparse_from', 'chain_native_full_read_ms'] as const) expect(key, top[key], 'number');
  for (const key of ['notify_allow_private', 'metrics'] as const) expect(key, top[key], 'boolean');
  for (const key of ['notify', 'settlement', 'rates', 'networks'] as const) expect(key, top[key], 'object');
  for (const [section, keys] of [['notify', ['timeout_ms', 'concurrency', 'per_destination', 'poll_ms']], ['settlement', ['batch_size', 'poll_ms', 'replace_after_ms', 'max_in_flight', 'retry_base_ms', 'lease_ms']]] as const) {
    const values = (top[section] ?? {}) as Record<string, unknown>;
    for (const key of keys) expect(`${section}.${key}`, values[key], 'number');
  }
  for (const [code, rate] of Object.entries(file.rates ?? {})) expect(`rates.${code}`, rate, 'string');
  for (const [id, n] of Object.entries(file.networks ?? {})) {
    if (n === false) continue;
    expect(`networks.${id}`, n, 'object');
    const o = n as Record<string, unknown>;
    for (const key of ['fee_rate', 'min_fee_usd', 'factory', 'forwarder', 'fee_address', 'relayer_key', 'relayer_key_file', 'max_fee_gwei'] as const) expect(`networks.${id}.${key}`, o[key], 'string');
    for (const key of ['chain_id', 'confirmations'] as const) expect(`networks.${id}.${key}`, o[key], 'number');
    expect(`networks.${id}.currencies`, o.currencies, 'object');
    if (o.rpc_urls !== undefined && (!Array.isArray(o.rpc_urls) || o.rpc_urls.some((u) => typeof u !== 'string'))) throw new ConfigError(`networks.${id}.rpc_urls must be a list of URLs`);
    for (const [code, c] of Object.entries((o.currencies ?? {}) as Record<string, unknown>)) {
      if (c === false) continue;
      expect(`networks.${id}.currencies.${code}`, c, 'object');
      expect(`networks.${id}.currencies.${code}.contract`, (c as Record<string, unknown>).contract, 'string');
      expect(`networks.${id}.currencies.${code}.decimals`, (c as Record<string, unknown>).decimals, 'number');
    }
  }
}

/** The base of cashier_url when SPARKPAY_PUBLIC_URL is not set: the address listened on. */
export const defaultPublicUrl = (host: string, port: number): string => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

/** The base of cashier_url: an absolute http(s) URL without credentials, query or fragment. */
function publicUrlSetting({ name, value }: TextSetting, fallback: string): string {
  if (value === undefined) return fallback;
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new ConfigError(`${name} must be an absolute http:// or https:// URL (the base of cashier_url)`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname || url.username || url.password || url.search || url.hash) {
    throw new ConfigError(`${name} must be an absolute http:// or https:// URL without credentials, query or fragment (the base of cashier_url)`);
  }
  return value.trim().replace(/\/+$/, '');
}

/**
 * `postgres://…` (or `postgresql://…`) for PostgreSQL, else a SQLite file path. Any other
 * `scheme://` is refused (a MySQL URL, a misspelled scheme) rather than taken as a file path.
 * The value is never echoed: it may hold a password.
 */
function databaseUrlSetting({ name, value }: TextSetting, fallback: string): string {
  if (value === undefined) return fallback;
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(value)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    // Not a file path either: libpq's "host=… password=…" form, or a URL that lost its slashes
    // ("postgres:/…", "postgres:user@…"). Taken as a path it would make a new SQLite file of
    // that name, password included, and print it.
    if (/(^|\s)[a-z_]+\s*=/i.test(value) || /^postgres(ql)?:/i.test(value)) {
      throw new ConfigError(`${name} must be a postgres://user:password@host:port/database URL or a SQLite file path`);
    }
    return value;
  }
  if (scheme !== 'postgres' && scheme !== 'postgresql') throw new ConfigError(`${name} must be a postgres:// URL or a SQLite file path, not a ${scheme}:// URL`);
  try {
    new URL(value);
  } catch {
    throw new ConfigError(`${name} is not a valid postgres:// URL (special characters in the password must be %-encoded)`);
  }
  return value;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function logLevelSetting({ name, value }: TextSetting, fallback: string): string {
  if (value === undefined) return fallback;
  if (!LOG_LEVELS.includes(value.trim())) throw new ConfigError(`${name} must be one of ${LOG_LEVELS.join(', ')}`);
  return value.trim();
}

function intSetting(name: string, envValue: string | undefined, fileValue: number | undefined, fallback: number, min: number, max: number): number {
  const raw = envValue ?? (fileValue === undefined ? undefined : String(fileValue));
  if (raw === undefined) return fallback;
  if (!/^[0-9]+$/.test(raw.trim())) throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
  const n = Number(raw.trim());
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function booleanSetting(name: string, fileValue: unknown, fallback: boolean): boolean {
  if (fileValue === undefined) return fallback;
  if (typeof fileValue !== 'boolean') throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(fileValue)}`);
  return fileValue;
}

function notifySettings(n: NonNullable<FileConfig['notify']>): NotifySettings {
  if (typeof n !== 'object' || n === null || Array.isArray(n)) throw new ConfigError('notify must be an object');
  const timeoutMs = intSetting('notify.timeout_ms', undefined, n.timeout_ms, 10_000, 100, 120_000);
  return {
    timeoutMs,
    concurrency: intSetting('notify.concurrency', undefined, n.concurrency, 64, 1, 10_000),
    perDestination: intSetting('notify.per_destination', undefined, n.per_destination, 8, 1, 1_000),
    pollMs: intSetting('notify.poll_ms', undefined, n.poll_ms, 1_000, 10, 60_000),
    leaseMs: timeoutMs + 5_000,
  };
}

/**
 * The mainnet catalogue with the file's per-network overrides, then SPARKPAY_RPC_URLS_<enum>
 * (comma-separated) from the environment, which wins for the endpoints.
 */
function deploymentFrom(overrides: FileConfig['networks'], env: NodeJS.ProcessEnv): Deployment {
  const base = mainnetDeployment();
  for (const key of Object.keys(overrides ?? {})) {
    if (!NETWORK_IDS.includes(key as NetworkId)) throw new ConfigError(`networks: unknown network enum "${key}" (expected 2-5)`);
  }
  const deployment: Deployment = {
    networks: base.networks
      .filter((n) => overrides?.[n.id] !== false)
      .map((n) => {
        const o = (overrides?.[n.id] || {}) as NetworkFileConfig;
        const envUrls = envText(env, `SPARKPAY_RPC_URLS_${n.id}`);
        if (envUrls !== undefined && envUrls.split(',').every((u) => u.trim() === '')) throw new ConfigError(`SPARKPAY_RPC_URLS_${n.id} names no endpoint; unset it or give comma-separated URLs`);
        const rpcUrls = envUrls !== undefined ? envUrls.split(',').map((u) => u.trim()).filter(Boolean) : (o.rpc_urls ?? n.chain.rpcUrls);
        if (!Array.isArray(rpcUrls)) throw new ConfigError(`networks.${n.id}.rpc_urls must be a list of URLs`);
        for (const code of Object.keys(o.currencies ?? {})) {
          if (!n.currencies.some((c) => c.code === code)) throw new ConfigError(`networks.${n.id}.currencies: ${code} is not a currency of ${n.id} (§5)`);
        }
        return {
          ...n,
          feeRate: o.fee_rate ?? n.feeRate,
          minFeeUsd: o.min_fee_usd ?? n.minFeeUsd,
          chainId: o.chain_id ?? n.chainId,
          chain: {
            rpcUrls,
            confirmations: o.confirmations ?? n.chain.confirmations,
            factory: o.factory ?? n.chain.factory,
            forwarder: o.forwarder ?? n.chain.forwarder,
            feeAddress: o.fee_address ?? n.chain.feeAddress,
          },
          currencies: n.currencies
            .filter((c) => o.currencies?.[c.code] !== false)
            .map((c) => {
              const co = o.currencies?.[c.code];
              if (co && co.contract !== undefined && c.contract === null) throw new ConfigError(`networks.${n.id}.currencies: ${c.code} is the native coin and has no contract`);
              return co ? { ...c, contract: co.contract ?? c.contract, decimals: co.decimals ?? c.decimals } : c;
            }),
        };
      }),
  };
  const problems = checkDeployment(deployment);
  if (problems.length > 0) throw new ConfigError(`networks: ${problems.join('; ')}`);
  return deployment;
}

function settlementSettings(s: NonNullable<FileConfig['settlement']>, mode: Mode, chainPollMs: number): SettlementSettings {
  if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new ConfigError('settlement must be an object');
  return {
    batchSize: intSetting('settlement.batch_size', undefined, s.batch_size, 20, 1, 100),
    pollMs: intSetting('settlement.poll_ms', undefined, s.poll_ms, chainPollMs, 50, 600_000),
    replaceAfterMs: intSetting('settlement.replace_after_ms', undefined, s.replace_after_ms, mode === 'development' ? 15_000 : 180_000, 1_000, 86_400_000),
    maxInFlight: intSetting('settlement.max_in_flight', undefined, s.max_in_flight, 8, 1, 1_000),
    retryBaseMs: intSetting('settlement.retry_base_ms', undefined, s.retry_base_ms, 30_000, 100, 3_600_000),
    leaseMs: intSetting('settlement.lease_ms', undefined, s.lease_ms, 30_000, 1_000, 3_600_000),
  };
}

/** The order of secp256k1's group: a private key is an integer in [1, n - 1]. */
const SECP256K1_ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** Whole gwei with up to 9 decimals, in wei. */
function gweiSetting(name: string, value: string | undefined, fallback: bigint): bigint {
  if (value === undefined) return fallback;
  const m = /^([0-9]{1,12})(?:\.([0-9]{1,9}))?$/.exec(String(value).trim());
  if (!m) throw new ConfigError(`${name} must be a decimal number of gwei, got "${value}"`);
  const wei = BigInt(m[1]!) * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
  if (wei === 0n) throw new ConfigError(`${name} must be above 0`);
  return wei;
}

/**
 * Relayer keys: SPARKPAY_RELAYER_KEY_<enum> or SPARKPAY_RELAYER_KEY_FILE_<enum> from the
 * environment, else the file's relayer_key / relayer_key_file. A network without one does not
 * settle (its paid orders wait, and the log says why).
 */
function relayersFrom(overrides: FileConfig['networks'], env: NodeJS.ProcessEnv): Partial<Record<NetworkId, RelayerConfig>> {
  const relayers: Partial<Record<NetworkId, RelayerConfig>> = {};
  for (const id of NETWORK_IDS) {
    const o = overrides?.[id];
    if (o === false) continue;
    if (o?.relayer_key !== undefined && o.relayer_key_file !== undefined) throw new ConfigError(`networks.${id}: relayer_key and relayer_key_file are both set; keep one`);
    if (env[`SPARKPAY_RELAYER_KEY_${id}`] !== undefined && env[`SPARKPAY_RELAYER_KEY_FILE_${id}`] !== undefined) throw new ConfigError(`SPARKPAY_RELAYER_KEY_${id} and SPARKPAY_RELAYER_KEY_FILE_${id} are both set; keep one`);
    // The environment wins over the file, whichever form each uses. A refusal names where the
    // key came from (the variable, or the file's setting), and a key file by its path.
    const fromEnv = env[`SPARKPAY_RELAYER_KEY_${id}`] !== undefined || env[`SPARKPAY_RELAYER_KEY_FILE_${id}`] !== undefined;
    const file = fromEnv ? envText(env, `SPARKPAY_RELAYER_KEY_FILE_${id}`) : o?.relayer_key_file;
    let text = fromEnv ? envText(env, `SPARKPAY_RELAYER_KEY_${id}`) : o?.relayer_key;
    const fileSource = fromEnv ? `SPARKPAY_RELAYER_KEY_FILE_${id}` : `networks.${id}.relayer_key_file`;
    let source = fromEnv ? `SPARKPAY_RELAYER_KEY_${id}` : `networks.${id}.relayer_key`;
    let exposedFile: RelayerConfig['exposedFile'];
    if (text === undefined && file !== undefined) {
      try {
        text = readFileSync(file, 'utf8');
        const mode = statSync(file).mode & 0o777;
        if ((mode & 0o077) !== 0) exposedFile = { path: file, mode: `0${mode.toString(8).padStart(3, '0')}` };
      } catch (err) {
        throw new ConfigError(`${fileSource}: cannot read ${file}: ${(err as Error).message}`);
      }
      source = `${fileSource} (${file})`;
    }
    if (text === undefined) continue;
    const privateKey = parseRelayerKey(text);
    // The key itself is never echoed.
    if (!privateKey) throw new ConfigError(`${source}: the relayer key is not 0x followed by 64 hex digits`);
    const k = BigInt(privateKey);
    if (k === 0n || k >= SECP256K1_ORDER) throw new ConfigError(`${source}: the relayer key is not a valid secp256k1 private key (it must be above 0 and below the curve order)`);
    relayers[id] = { privateKey, maxFeePerGas: gweiSetting(`networks.${id}.max_fee_gwei`, o?.max_fee_gwei, 1_000_000_000_000n), ...(exposedFile ? { exposedFile } : {}) };
  }
  return relayers;
}
