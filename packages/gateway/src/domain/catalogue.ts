// Networks and currencies (PROTOCOL §5) and what a running deployment carries (§5 last
// paragraph, §6). The mainnet table is data; a deployment maps the same network enums to a
// concrete chain (mainnet, a testnet or the local devnet) with its own contracts.

import { isValidEvmAddress } from './address.js';
import { ratFromDecimal } from './money.js';

/** The network enum as it appears on the wire (string form). */
export type NetworkId = '2' | '3' | '4' | '5';

export const NETWORK_IDS: readonly NetworkId[] = ['2', '3', '4', '5'];

export interface NetworkInfo {
  readonly id: NetworkId;
  readonly name: string;
  /** Code of the chain's native coin; null for IRISnet, whose IRIS is listed as a token. */
  readonly nativeCoin: string | null;
  readonly mainnetChainId: number;
}

export const NETWORKS: Readonly<Record<NetworkId, NetworkInfo>> = {
  '2': { id: '2', name: 'Ethereum', nativeCoin: 'ETH', mainnetChainId: 1 },
  '3': { id: '3', name: 'BNB Smart Chain', nativeCoin: 'BNB', mainnetChainId: 56 },
  '4': { id: '4', name: 'Polygon', nativeCoin: 'POL', mainnetChainId: 137 },
  '5': { id: '5', name: 'IRISnet', nativeCoin: null, mainnetChainId: 6688 },
};

/**
 * A currency as carried on one network. `decimals`: the token's base unit is 10^-decimals (what
 * moves on chain). `precision`: the most fraction digits an order amount may have in it (§5
 * "order precision"); always <= decimals.
 */
export interface CurrencySpec {
  readonly code: string;
  /** Token contract address; null for the chain's native coin. */
  readonly contract: string | null;
  readonly decimals: number;
  readonly precision: number;
}

/** §5 mainnet currency table, per network, in the table's order. */
export const MAINNET_CURRENCIES: Readonly<Record<NetworkId, readonly CurrencySpec[]>> = {
  '2': [
    { code: 'ETH', contract: null, decimals: 18, precision: 8 },
    { code: 'USDT', contract: '0xdac17f958d2ee523a2206206994597c13d831ec7', decimals: 6, precision: 6 },
    { code: 'USDC', contract: '0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48', decimals: 6, precision: 6 },
    { code: 'HSK', contract: '0xe7c6bf469e97eeb0bfb74c8dbff5bd47d4c1c98a', decimals: 18, precision: 8 },
  ],
  '3': [
    { code: 'BNB', contract: null, decimals: 18, precision: 8 },
    { code: 'USDT', contract: '0x55d398326f99059ff775485246999027b3197955', decimals: 18, precision: 6 },
    { code: 'USDC', contract: '0x8ac76a51cc950d9822d68b83fe1ad97b32cd580d', decimals: 18, precision: 6 },
  ],
  '4': [
    { code: 'POL', contract: null, decimals: 18, precision: 8 },
    { code: 'USDT', contract: '0xc2132d05d31c914a87c6611c10748aeb04b58e8f', decimals: 6, precision: 6 },
    { code: 'USDC', contract: '0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359', decimals: 6, precision: 6 },
  ],
  '5': [{ code: 'IRIS', contract: '0x1D1530e3A3719BE0BEe1abba5016Cf2e236f3277', decimals: 18, precision: 6 }],
};

/** Fiat pricing currencies (Pro edition only); amounts in cents. */
export type FiatCode = 'USD' | 'HKD';

export const FIAT_CURRENCIES: Readonly<Record<FiatCode, { readonly code: FiatCode; readonly precision: number }>> = {
  USD: { code: 'USD', precision: 2 },
  HKD: { code: 'HKD', precision: 2 },
};

export function isFiatCode(code: string): code is FiatCode {
  return code === 'USD' || code === 'HKD';
}

/** Blocks on top of a payment's block before it counts as final (issue 4 defaults). */
export const DEFAULT_CONFIRMATIONS: Readonly<Record<NetworkId, number>> = {
  '2': 12,
  '3': 15,
  '4': 64,
  '5': 10,
};

/** How the gateway reaches one network's chain and where its contracts live. */
export interface ChainSettings {
  /** JSON-RPC endpoints, tried in order (failover); empty: payments on this network are not watched. */
  readonly rpcUrls: readonly string[];
  readonly confirmations: number;
  /** The operator's forwarder factory (§15), and the forwarder implementation its forwarders run once. */
  readonly factory: string | null;
  readonly forwarder: string | null;
  /** Where the platform service fee is paid (a receiver of every settlement plan on this network). */
  readonly feeAddress: string | null;
}

/** One network as a running gateway carries it. */
export interface NetworkDeployment {
  readonly id: NetworkId;
  readonly chainId: number;
  readonly chain: ChainSettings;
  readonly currencies: readonly CurrencySpec[];
  /** Service fee rate as a decimal fraction of the amount ("0.005" = 0.5 %), 0 <= rate < 1. */
  readonly feeRate: string;
  /** Minimum service fee in USD, a decimal string ("1.00"); converted at the currency's rate. */
  readonly minFeeUsd: string;
}

/** What a running gateway carries: its networks, in ascending enum order by convention. */
export interface Deployment {
  readonly networks: readonly NetworkDeployment[];
}

/** §6 defaults: 0.5 %; minimum 1.00 USD on Ethereum, 0.10 USD elsewhere. */
export const DEFAULT_FEE_RATE = '0.005';
export const DEFAULT_MIN_FEE_USD: Readonly<Record<NetworkId, string>> = {
  '2': '1.00',
  '3': '0.10',
  '4': '0.10',
  '5': '0.10',
};

/** The §5 mainnet catalogue with the §6 default fees. */
export function mainnetDeployment(): Deployment {
  return {
    networks: NETWORK_IDS.map((id) => ({
      id,
      chainId: NETWORKS[id].mainnetChainId,
      chain: { rpcUrls: [], confirmations: DEFAULT_CONFIRMATIONS[id], factory: null, forwarder: null, feeAddress: null },
      currencies: MAINNET_CURRENCIES[id].map((c) => ({ ...c })),
      feeRate: DEFAULT_FEE_RATE,
      minFeeUsd: DEFAULT_MIN_FEE_USD[id],
    })),
  };
}

/**
 * The network enum from a wire value: the string "2".."5" or the integer 2..5. Anything else
 * (other numbers, "02", " 2", 2.5) is null; callers decide whether that is 40009 or 41027.
 */
export function parseNetworkId(v: unknown): NetworkId | null {
  const s = typeof v === 'number' && Number.isInteger(v) ? String(v) : v;
  return s === '2' || s === '3' || s === '4' || s === '5' ? s : null;
}

export function findNetwork(deployment: Deployment, id: NetworkId): NetworkDeployment | null {
  return deployment.networks.find((n) => n.id === id) ?? null;
}

export function currencyOn(network: NetworkDeployment, code: string): CurrencySpec | null {
  return network.currencies.find((c) => c.code === code) ?? null;
}

/** Networks of the deployment carrying `code`, in deployment order. */
export function networksCarrying(deployment: Deployment, code: string): NetworkDeployment[] {
  return deployment.networks.filter((n) => currencyOn(n, code) !== null);
}

/**
 * Configuration problems of a deployment (empty when sound), for the loader to report at start:
 * unknown or repeated networks, currencies repeated on a network, precision > decimals, fee
 * settings that are not decimals or a rate >= 1.
 */
export function checkDeployment(deployment: Deployment): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const n of deployment.networks) {
    const where = `network ${String(n.id)}`;
    if (parseNetworkId(n.id) === null) problems.push(`${where}: unknown network enum`);
    if (seen.has(n.id)) problems.push(`${where}: listed twice`);
    seen.add(n.id);
    if (!Number.isSafeInteger(n.chainId) || n.chainId <= 0) problems.push(`${where}: invalid chain id`);
    const rate = ratFromDecimal(n.feeRate);
    if (!rate || rate.num >= rate.den) problems.push(`${where}: fee rate must be a decimal in [0, 1)`);
    // The fee address is a receiver of every settlement plan, with a positive amount: a minimum of
    // 0 would let a fee rate of 0 (or a tiny amount) make a plan that cannot be settled.
    const minFee = ratFromDecimal(n.minFeeUsd);
    if (!minFee || minFee.num <= 0n) problems.push(`${where}: minimum fee must be a positive decimal (USD)`);
    problems.push(...checkChain(where, n.chain));
    const codes = new Set<string>();
    for (const c of n.currencies) {
      if (codes.has(c.code)) problems.push(`${where}: currency ${c.code} listed twice`);
      codes.add(c.code);
      const okScale = (v: number) => Number.isSafeInteger(v) && v >= 0 && v <= 36;
      if (!okScale(c.decimals) || !okScale(c.precision) || c.precision > c.decimals) {
        problems.push(`${where}: currency ${c.code} needs 0 <= precision <= decimals <= 36`);
      }
      if (isFiatCode(c.code)) problems.push(`${where}: ${c.code} is a fiat code`);
      if (c.contract !== null && !isValidEvmAddress(c.contract)) problems.push(`${where}: currency ${c.code} contract is not an EVM address`);
    }
  }
  return problems;
}

const RPC_URL = /^(https?|wss?):\/\/[^\s/?#]+(?:[/?#]\S*)?$/i;

function checkChain(where: string, chain: ChainSettings): string[] {
  const problems: string[] = [];
  for (const url of chain.rpcUrls) {
    if (typeof url !== 'string' || !RPC_URL.test(url)) problems.push(`${where}: RPC URL ${JSON.stringify(url)} is not an http(s):// or ws(s):// URL`);
  }
  if (!Number.isSafeInteger(chain.confirmations) || chain.confirmations < 1 || chain.confirmations > 10_000) {
    problems.push(`${where}: confirmations must be a whole number from 1 to 10000`);
  }
  for (const [name, address] of [['factory', chain.factory], ['forwarder', chain.forwarder], ['fee_address', chain.feeAddress]] as const) {
    if (address !== null && !isValidEvmAddress(address)) problems.push(`${where}: ${name} is not an EVM address`);
  }
  if ((chain.factory === null) !== (chain.forwarder === null)) problems.push(`${where}: factory and forwarder are set together`);
  // A fee address may come first (the production steps set it before the factory is deployed).
  if (chain.factory !== null && chain.feeAddress === null) problems.push(`${where}: a network with a factory needs a fee_address (the platform fee's receiver)`);
  return problems;
}
