// The development devnet of `sparkpay dev` (PROTOCOL §16, issue 4 item 7): one anvil per network
// enum 2–5, each carrying the §5 currencies of its network as test tokens (same codes, same
// decimals: USDT has 6 on "Ethereum" and "Polygon", 18 on "BNB Smart Chain"; IRIS is a token on
// "IRISnet") and the forwarder factory, with a few of anvil's default accounts holding
// 1,000,000 of every token. The gateway's deployment for development is built from it.
//
// Accounts (anvil's default mnemonic, publicly known keys — never use them on a real chain):
//   #0 deploys the contracts and mints (the relayer), #1 is the demo merchant's external wallet,
//   #2 receives the platform fee, #3–#5 are the funded payers listed by `sparkpay devnet info`.
// Every anvil account also holds anvil's 10 000 native coins.
//
// Chains start empty on every run and are set up with automine (one block per transaction, at
// once: one to two seconds for all four, in parallel), then switched to one block per second. The
// deployer's nonces are the same every time, so the contract addresses are too.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pbkdf2Sync } from 'node:crypto';
import { toHex, type Address, type Hex } from 'viem';
import { createNonceManager, HDKey, hdKeyToAccount, type HDAccount } from 'viem/accounts';
import { jsonRpc } from 'viem/nonce';
import { MAINNET_CURRENCIES, NETWORK_IDS, NETWORKS, type Deployment, type NetworkId } from '../../domain/catalogue.js';
import { evmClients, type EvmClients } from '../chain/evm/clients.js';
import { deployForwarderFactory } from '../chain/evm/forwarder-factory.js';
import { ANVIL_DEFAULT_MNEMONIC, startAnvil, type AnvilNode, type AnvilOptions } from './anvil.js';
import { deployTestToken, mintTestToken } from './test-tokens.js';

/**
 * Local chain ids: 3133700 + the network enum (anvil's 31337 with the enum appended), so a
 * wallet never confuses them with a mainnet (1, 56, 137, 6688) or with a bare anvil (31337).
 */
export const DEVNET_CHAIN_IDS: Readonly<Record<NetworkId, number>> = { '2': 3133702, '3': 3133703, '4': 3133704, '5': 3133705 };

export const DEVNET_DEPLOYER_INDEX = 0;
export const DEVNET_MERCHANT_WALLET_INDEX = 1;
export const DEVNET_FEE_INDEX = 2;
export const DEVNET_FUNDED_INDEXES: readonly number[] = [3, 4, 5];
/** Blocks on top of a payment's block before it is final: 2 s with 1 s blocks. */
export const DEVNET_CONFIRMATIONS = 2;
export const DEVNET_BLOCK_TIME = 1;
/** Whole tokens minted to every funded account, of every token. */
export const DEVNET_TOKEN_SUPPLY = 1_000_000n;

export interface DevnetAccount {
  readonly address: Address;
  /** A key of anvil's well-known development mnemonic. */
  readonly privateKey: Hex;
}

export interface DevnetChain {
  readonly network: NetworkId;
  readonly chainId: number;
  readonly rpcUrl: string;
  /** Token contracts by currency code (the native coin has none). */
  readonly tokens: Readonly<Record<string, Address>>;
  readonly factory: Address;
  readonly forwarder: Address;
  readonly node: AnvilNode;
}

export interface Devnet {
  readonly chains: readonly DevnetChain[];
  readonly feeAddress: Address;
  readonly merchantWallet: Address;
  readonly fundedAccounts: readonly DevnetAccount[];
  /** Seconds between blocks on every chain. */
  readonly blockTime: number;
  /** Stops every anvil of the devnet and waits for them to exit. Idempotent. */
  stop(): Promise<void>;
}

export interface DevnetOptions {
  /** Interface the anvils listen on (default 127.0.0.1; 0.0.0.0 lets wallets on other machines in). */
  readonly host?: string;
  /** Seconds between blocks once set up (default 1). */
  readonly blockTime?: number;
  /** Passed to every startAnvil (tests: the binary, the port picker). */
  readonly anvil?: Omit<AnvilOptions, 'chainId' | 'blockTime' | 'host' | 'mnemonic'>;
}

// anvil's accounts, derived from one seed: viem's mnemonicToAccount runs the BIP-39 key
// stretching (2048 rounds of PBKDF2 in JavaScript, ~150 ms) for every account; node:crypto does
// it once natively. The same keys as devAccount(i) (test-tokens.ts).
let root: HDKey | null = null;
const accounts = new Map<number, HDAccount>();

function account(index: number): HDAccount {
  root ??= HDKey.fromMasterSeed(pbkdf2Sync(ANVIL_DEFAULT_MNEMONIC.normalize('NFKD'), 'mnemonic', 2048, 64, 'sha512'));
  let a = accounts.get(index);
  if (!a) accounts.set(index, (a = hdKeyToAccount(root, { addressIndex: index })));
  return a;
}

/**
 * The deployer of one chain's set-up, which sends several transactions at once: with a nonce
 * manager of its own (a shared one would remember the nonces of an earlier devnet's chain with
 * the same chain id, and a fresh chain starts again from 0).
 */
function deployerAccount(): HDAccount {
  account(DEVNET_DEPLOYER_INDEX);
  return hdKeyToAccount(root as HDKey, { addressIndex: DEVNET_DEPLOYER_INDEX, nonceManager: createNonceManager({ source: jsonRpc() }) });
}

export function devnetAccount(index: number): DevnetAccount {
  const a = account(index);
  const key = a.getHdKey().privateKey;
  if (!key) throw new Error(`no private key for development account ${index}`);
  return { address: a.address, privateKey: toHex(key) };
}

/** Starts and sets up the four chains in parallel; on any failure every anvil started is stopped. */
export async function startDevnet(options: DevnetOptions = {}): Promise<Devnet> {
  const started = await Promise.allSettled(
    NETWORK_IDS.map((network) => startAnvil({ ...options.anvil, chainId: DEVNET_CHAIN_IDS[network], host: options.host ?? '127.0.0.1' })),
  );
  const nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const fundedAccounts = DEVNET_FUNDED_INDEXES.map(devnetAccount);
    const blockTime = options.blockTime ?? DEVNET_BLOCK_TIME;
    const chains = await Promise.all(NETWORK_IDS.map((network, i) => setUpChain(network, nodes[i] as AnvilNode, fundedAccounts, blockTime)));
    return {
      chains,
      feeAddress: account(DEVNET_FEE_INDEX).address,
      merchantWallet: account(DEVNET_MERCHANT_WALLET_INDEX).address,
      fundedAccounts,
      blockTime,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function setUpChain(network: NetworkId, node: AnvilNode, funded: readonly DevnetAccount[], blockTime: number): Promise<DevnetChain> {
  const deployer = evmClients(node.rpcUrl, node.chainId, deployerAccount(), { pollingIntervalMs: 10 });
  // Under automine every transaction is mined on arrival. The contracts one after the other, so
  // the deployer's nonces, hence the addresses, are the same on every run (a wallet that added a
  // token keeps it); then the mints all at once.
  const specs = MAINNET_CURRENCIES[network].filter((c) => c.contract !== null); // not the native coin
  const tokens: Record<string, Address> = {};
  for (const c of specs) {
    tokens[c.code] = await deployTestToken(deployer, { name: `${c.code} (SparkPay devnet, ${NETWORKS[network].name})`, symbol: c.code, decimals: c.decimals });
  }
  const { factory, implementation } = await deployForwarderFactory(deployer);
  await Promise.all(specs.flatMap((c) => funded.map((a) => mintTestToken(deployer, tokens[c.code] as Address, a.address, DEVNET_TOKEN_SUPPLY * 10n ** BigInt(c.decimals)))));
  // Set up under automine (at once); from now on a block every `blockTime` seconds, like a chain.
  await rpc(deployer, 'evm_setIntervalMining', [blockTime]);
  return { network, chainId: node.chainId, rpcUrl: node.rpcUrl, tokens, factory, forwarder: implementation, node };
}

/** A JSON-RPC call viem has no typed method for (anvil's and evm_ ones), on `clients`' node. */
export async function rpc<T = unknown>(clients: EvmClients, method: string, params: unknown[]): Promise<T> {
  return (await clients.public.request({ method: method as never, params: params as never })) as T;
}

/**
 * `base` with every network the devnet carries mapped to its local chain: chain id, the anvil's
 * RPC URL, small confirmations, the factory, forwarder and fee address, the token contracts.
 * Fees and the networks left out of `base` stay as configured.
 */
export function devnetDeployment(base: Deployment, devnet: Pick<Devnet, 'chains' | 'feeAddress'>): Deployment {
  return {
    networks: base.networks.map((n) => {
      const chain = devnet.chains.find((c) => c.network === n.id);
      if (!chain) return n;
      return {
        ...n,
        chainId: chain.chainId,
        chain: { rpcUrls: [chain.rpcUrl], confirmations: DEVNET_CONFIRMATIONS, factory: chain.factory, forwarder: chain.forwarder, feeAddress: devnet.feeAddress },
        currencies: MAINNET_CURRENCIES[n.id].map((c) => ({ ...c, contract: c.contract === null ? null : (chain.tokens[c.code] ?? null) })),
      };
    }),
  };
}

/**
 * The settlement relayer of every devnet chain: the deployer (#0), which holds anvil's 10 000
 * native coins, so a newcomer's paid orders settle and complete (issue 5 item 6).
 */
export function devnetRelayers(devnet: Pick<Devnet, 'chains'>): Partial<Record<NetworkId, { privateKey: Hex; maxFeePerGas: bigint }>> {
  const key = devnetAccount(DEVNET_DEPLOYER_INDEX).privateKey;
  return Object.fromEntries(devnet.chains.map((c) => [c.network, { privateKey: key, maxFeePerGas: 1_000_000_000_000n }]));
}

/** The `sparkpay devnet info --json` object (§16), plus the owner's pid and a few helpful extras. */
export interface DevnetInfo {
  readonly networks: Record<
    string,
    {
      readonly name: string;
      readonly rpc_url: string;
      readonly chain_id: number;
      readonly native_coin: string | null;
      readonly tokens: Record<string, string>;
      readonly token_decimals: Record<string, number>;
      readonly factory: string;
      readonly forwarder: string;
      readonly fee_address: string;
      readonly confirmations: number;
      /** Seconds between blocks. */
      readonly block_time: number;
    }
  >;
  readonly funded_accounts: readonly { readonly address: string; readonly private_key: string }[];
  readonly merchant_wallet: string;
  /** The `sparkpay dev` process that owns the chains. */
  readonly pid: number;
  /** Its anvil processes: a later `sparkpay dev` stops them if the owner died without doing so (SIGKILL). */
  readonly anvil_pids?: readonly number[];
}

export function devnetInfo(devnet: Devnet, pid: number = process.pid): DevnetInfo {
  return {
    networks: Object.fromEntries(
      devnet.chains.map((c) => [
        c.network,
        {
          name: NETWORKS[c.network].name,
          rpc_url: c.rpcUrl,
          chain_id: c.chainId,
          native_coin: NETWORKS[c.network].nativeCoin,
          tokens: { ...c.tokens },
          token_decimals: Object.fromEntries(MAINNET_CURRENCIES[c.network].filter((s) => s.contract !== null).map((s) => [s.code, s.decimals])),
          factory: c.factory,
          forwarder: c.forwarder,
          fee_address: devnet.feeAddress,
          confirmations: DEVNET_CONFIRMATIONS,
          block_time: devnet.blockTime,
        },
      ]),
    ),
    funded_accounts: devnet.fundedAccounts.map((a) => ({ address: a.address, private_key: a.privateKey })),
    merchant_wallet: devnet.merchantWallet,
    pid,
    anvil_pids: devnet.chains.flatMap((c) => (c.node.process.pid === undefined ? [] : [c.node.process.pid])),
  };
}

/**
 * Stops the anvils of a `sparkpay dev` that died without stopping them (SIGKILL leaves its
 * children running, holding their ports): those listed in its devnet file, if the owner is gone
 * and the process is still an anvil (a reused pid is left alone). Removes the stale file.
 * Resolves to the pids stopped.
 */
export async function reapOrphanedAnvils(path: string): Promise<number[]> {
  if (!existsSync(path)) return [];
  let info: Partial<DevnetInfo>;
  try {
    info = JSON.parse(readFileSync(path, 'utf8')) as Partial<DevnetInfo>;
  } catch {
    return [];
  }
  if (typeof info.pid !== 'number' || processAlive(info.pid)) return [];
  const orphans = (info.anvil_pids ?? []).filter((pid) => Number.isSafeInteger(pid) && pid > 1 && processAlive(pid) && commandOf(pid) === 'anvil');
  for (const pid of orphans) process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 100 && orphans.some(processAlive); i += 1) await new Promise((r) => setTimeout(r, 20));
  removeDevnetFile(path);
  return orphans;
}

/**
 * Whether the live process `pid` may be a `sparkpay dev`: its command line names the CLI (however
 * its Node binary is called), or cannot be read (no /proc: macOS), when a live process is taken
 * for the holder rather than risking two devs on one directory.
 */
function mayBeSparkpay(pid: number): boolean {
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return true;
  }
  return /sparkpay|main\.js/.test(cmdline);
}

function commandOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}

/**
 * Writes the devnet file for `sparkpay devnet info` in other processes. Mode 0600: it holds
 * private keys (of anvil's public development mnemonic, but keys all the same). Written to a
 * temporary name and renamed, so a reader never sees half a file.
 */
export function writeDevnetFile(path: string, info: DevnetInfo): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

export function removeDevnetFile(path: string): void {
  rmSync(path, { force: true });
}

export class DevnetNotRunningError extends Error {}

/**
 * Claims `dir` for this `sparkpay dev` (the file `dev.pid`, written exclusively) before any chain
 * is started, and returns its release. A second `dev` on the same data directory used to start
 * four more chains, overwrite the first one's devnet file with its own chains (payments then went
 * to chains the first gateway never scanned) and delete it on its way out. A claim whose process
 * is gone (killed outright) is taken over.
 */
export function claimDevDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, 'dev.pid');
  const holder = (): number | null => {
    try {
      const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
      return Number.isSafeInteger(pid) && pid > 1 ? pid : null;
    } catch {
      return null;
    }
  };
  for (let tries = 0; tries < 3; tries += 1) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return () => {
        if (holder() === process.pid) rmSync(path, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const other = holder();
    if (other !== null && other !== process.pid && processAlive(other) && mayBeSparkpay(other)) {
      throw new Error(`another "sparkpay dev" (pid ${other}) is running on the data directory ${dir}: stop it first, or give this one a data directory of its own (SPARKPAY_DATA_DIR); if pid ${other} is not a sparkpay dev, remove ${path}`);
    }
    // Its process is gone: a stale claim, removed unless another start has replaced it meanwhile.
    if (holder() === other) rmSync(path, { force: true });
  }
  throw new Error(`could not claim the data directory ${dir} (${path} keeps coming back)`);
}

/** The running devnet's file; DevnetNotRunningError when there is none or its `sparkpay dev` is gone. */
export function readDevnetFile(path: string): DevnetInfo {
  if (!existsSync(path)) throw new DevnetNotRunningError(`no devnet: ${path} does not exist (start one with "sparkpay dev")`);
  let info: DevnetInfo;
  try {
    info = JSON.parse(readFileSync(path, 'utf8')) as DevnetInfo;
  } catch (err) {
    throw new DevnetNotRunningError(`${path} is not a devnet file: ${(err as Error).message}`);
  }
  if (typeof info !== 'object' || info === null || typeof info.networks !== 'object' || !Array.isArray(info.funded_accounts)) {
    throw new DevnetNotRunningError(`${path} is not a devnet file`);
  }
  if (!Number.isSafeInteger(info.pid) || !processAlive(info.pid)) {
    throw new DevnetNotRunningError(`no devnet: the "sparkpay dev" that wrote ${path} (pid ${String(info.pid)}) is not running`);
  }
  return info;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
