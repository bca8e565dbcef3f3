// Configuration: defaults < configuration file < environment (§16). One loader for the server
// and the management commands, so both find the same database.
import { existsSync, readFileSync } from 'node:fs';
import type { Hex } from 'viem';
import { parseRelayerKey } from '../adapters/chain/evm/relayer.js';
import { join, resolve } from 'node:path';
import { checkDeployment, mainnetDeployment, type Deployment, type NetworkId, NETWORK_IDS } from '../domain/catalogue.js';
import { DEFAULT_RATE_CONFIG, DEMO_RATE_CONFIG, parseRateTable, type RateConfig } from '../domain/rates.js';

export type Mode = 'production' | 'development';

export interface Config {
  mode: Mode;
  dataDir: string;
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
  notifyAllowPrivate: boolean;
  notify: NotifySettings;
  timestampWindowSeconds: number;
  expiryIntervalMs: number;
  /** How often each network's chain is scanned when it is not behind. */
  chainPollMs: number;
  logLevel: string;
  /** Serve GET /metrics (Prometheus text format); the file's `metrics: false` turns it off. */
  metrics: boolean;
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
  notify_allow_private?: boolean;
  notify?: { timeout_ms?: number; concurrency?: number; per_destination?: number; poll_ms?: number };
  timestamp_window_seconds?: number;
  log_level?: string;
  chain_poll_ms?: number;
  metrics?: boolean;
  rates?: Record<string, string>;
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
  currencies?: Record<string, { contract?: string; decimals?: number }>;
}

export function loadConfig(mode: Mode, env: NodeJS.ProcessEnv = process.env): Config {
  const dataDir = resolve(env.SPARKPAY_DATA_DIR ?? './.sparkpay');
  const file = readConfigFile(env.SPARKPAY_CONFIG ?? join(dataDir, 'config.json'), env.SPARKPAY_CONFIG !== undefined);
  const host = env.SPARKPAY_HOST ?? file.host ?? '127.0.0.1';
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
    publicUrl: (env.SPARKPAY_PUBLIC_URL ?? file.public_url ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`).replace(/\/+$/, ''),
    databaseUrl: env.SPARKPAY_DATABASE_URL ?? file.database_url ?? join(dataDir, 'sparkpay.db'),
    masterKey: env.SPARKPAY_MASTER_KEY ?? file.master_key ?? null,
    masterKeyFile: join(dataDir, 'master.key'),
    rateLimit: intSetting('SPARKPAY_RATE_LIMIT', env.SPARKPAY_RATE_LIMIT, file.rate_limit, 1000, 0, 1_000_000),
    notifyAllowPrivate: mode === 'development' || env.SPARKPAY_NOTIFY_ALLOW_PRIVATE === '1' || file.notify_allow_private === true,
    notify: notifySettings(file.notify ?? {}),
    timestampWindowSeconds: intSetting('SPARKPAY_TIMESTAMP_WINDOW', env.SPARKPAY_TIMESTAMP_WINDOW, file.timestamp_window_seconds, 300, 1, 86_400),
    expiryIntervalMs: 1000,
    chainPollMs,
    logLevel: env.SPARKPAY_LOG_LEVEL ?? file.log_level ?? 'info',
    metrics: booleanSetting('metrics', file.metrics, true),
    deployment: deploymentFrom(file.networks, env),
    rates,
    relayers: relayersFrom(file.networks, env),
    settlement: settlementSettings(file.settlement ?? {}, mode, chainPollMs),
  };
}

function readConfigFile(path: string, required: boolean): FileConfig {
  if (!existsSync(path)) {
    if (required) throw new ConfigError(`configuration file ${path} does not exist`);
    return {};
  }
  try {
    const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as FileConfig;
  } catch (err) {
    throw new ConfigError(`configuration file ${path} is not valid: ${(err as Error).message}`);
  }
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
        const envUrls = env[`SPARKPAY_RPC_URLS_${n.id}`];
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
          currencies: n.currencies.map((c) => {
            const co = o.currencies?.[c.code];
            if (co?.contract !== undefined && c.contract === null) throw new ConfigError(`networks.${n.id}.currencies: ${c.code} is the native coin and has no contract`);
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
    const file = env[`SPARKPAY_RELAYER_KEY_FILE_${id}`] ?? o?.relayer_key_file;
    let text = env[`SPARKPAY_RELAYER_KEY_${id}`] ?? o?.relayer_key;
    if (text === undefined && file !== undefined) {
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new ConfigError(`networks.${id}.relayer_key_file: cannot read ${file}: ${(err as Error).message}`);
      }
    }
    if (text === undefined) continue;
    const privateKey = parseRelayerKey(text);
    // The key itself is never echoed.
    if (!privateKey) throw new ConfigError(`networks.${id}: the relayer key is not 0x followed by 64 hex digits`);
    relayers[id] = { privateKey, maxFeePerGas: gweiSetting(`networks.${id}.max_fee_gwei`, o?.max_fee_gwei, 1_000_000_000_000n) };
  }
  return relayers;
}
