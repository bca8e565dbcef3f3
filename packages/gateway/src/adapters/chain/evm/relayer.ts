// The operator's relayer on one EVM network (PROTOCOL §15a, issue 5): reads what a settlement
// needs and signs settlement transactions locally (EIP-1559), so the hash is known and recorded
// before the transaction is broadcast. Endpoints fail over as viem's fallback decides (a revert or
// a rejection is an answer, anything else from the endpoint a failure), and the relayer stays on
// the endpoint that answered.
// The private key never leaves the account object and is never logged.
import {
  BaseError,
  createPublicClient,
  erc20Abi,
  getAddress,
  http,
  HttpRequestError,
  keccak256,
  parseEventLogs,
  RpcError,
  shouldThrow,
  TimeoutError,
  type Address,
  type Hex,
  type PublicClient,
  type TransactionReceipt,
} from 'viem';
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts';
import type { EventLog, FeeQuote, SettlementChain, SettlementReceipt } from '../../../app/ports.js';
import { endpointLabel } from '../../../domain/endpoint-secrets.js';
import { forwarderFactoryAbi } from './contract-artifacts.js';
import { abiPlan, distributeCalldata, settlementAbi } from './forwarder-factory.js';
import { forwarderPlan, NATIVE_COIN, orderRef } from './forwarder-plan.js';

export interface RelayerOptions {
  rpcUrls: readonly string[];
  chainId: number;
  factory: string;
  privateKey: Hex;
  timeoutMs?: number;
  /** Where endpoint failures and switches are said. */
  log?: EventLog;
}

/** Blocks per eth_getLogs request when looking for a distribution (providers cap ranges). */
const LOG_RANGE = 2_000;

/** Whether a viem error is the contract reverting (as opposed to the node failing to answer). */
function isRevert(err: unknown): boolean {
  if (!(err instanceof BaseError)) return false;
  const named = err.walk((e) => ['ContractFunctionRevertedError', 'ExecutionRevertedError'].includes((e as Error).name));
  return named !== null || /execution reverted|revert/i.test(`${err.details ?? ''} ${err.shortMessage}`);
}

/**
 * Whether an error is the endpoint failing (to answer, or with an error of its own), as viem's
 * fallback transport decides it: a revert or a rejection is the chain's answer, the same on every
 * endpoint; anything else that came from the transport is tried on the next one. An error raised
 * after a good answer (a receipt not found, a result that does not decode) is no endpoint failure.
 */
function endpointFailed(err: unknown): boolean {
  if (!(err instanceof BaseError)) return false;
  const coded = err.walk((e) => e instanceof RpcError) as RpcError | null;
  if (coded) return !shouldThrow(coded);
  return err.walk((e) => e instanceof HttpRequestError || e instanceof TimeoutError) !== null;
}

/** Fallback when a node does not answer eth_maxPriorityFeePerGas (1 gwei). */
const DEFAULT_PRIORITY_FEE = 1_000_000_000n;

/** A node's answer to a transaction it already has, or one already mined: not a failure. */
function alreadyKnown(message: string): boolean {
  return /already known|known transaction|already imported|already exists|transaction already in/i.test(message);
}

/** The shortest useful reason of a viem error (the revert's name when the ABI knows it). */
function reason(err: unknown): string {
  if (err instanceof BaseError) {
    const named = err.walk((e) => typeof (e as { data?: { errorName?: string } }).data?.errorName === 'string') as { data?: { errorName?: string; args?: unknown[] } } | null;
    if (named?.data?.errorName) return `${named.data.errorName}(${(named.data.args ?? []).map(String).join(', ')})`;
    return err.shortMessage;
  }
  return err instanceof Error ? err.message : String(err);
}

export function evmRelayer(options: RelayerOptions): SettlementChain {
  if (options.rpcUrls.length === 0) throw new Error('a relayer needs at least one RPC URL');
  const account: PrivateKeyAccount = privateKeyToAccount(options.privateKey);
  const factory = getAddress(options.factory);
  const { rpcUrls, log } = options;
  // cacheTime 0: the head and nonces must be read fresh every pass.
  const clients: PublicClient[] = rpcUrls.map((url) => createPublicClient({ transport: http(url, { timeout: options.timeoutMs ?? 10_000, retryCount: 0 }), cacheTime: 0 }));
  let current = 0;

  /**
   * `fn` on the endpoint that answered last, then on each other one in turn; the relayer stays on
   * the one that answers. viem's fallback began with the first endpoint on every call: one that
   * accepted connections and never answered cost each call its 10 s timeout, a pass outlived its
   * lease, and the instances took the settlement from each other for as long as it hung.
   */
  async function onEndpoint<T>(what: string, fn: (client: PublicClient) => Promise<T>): Promise<T> {
    let lastError: unknown;
    for (let i = 0; i < clients.length; i += 1) {
      const index = (current + i) % clients.length;
      try {
        const value = await fn(clients[index]!);
        if (index !== current) log?.warn({ from: endpointLabel(rpcUrls[current]!), to: endpointLabel(rpcUrls[index]!), endpoint: index + 1, endpoints: clients.length }, 'settlement switched RPC endpoint');
        current = index;
        return value;
      } catch (err) {
        if (!endpointFailed(err) || clients.length === 1) throw err;
        lastError = err;
        log?.warn({ url: endpointLabel(rpcUrls[index]!), endpoint: index + 1, endpoints: clients.length, what, err: reason(err) }, 'settlement RPC endpoint failed');
      }
    }
    throw lastError;
  }
  /** The methods the settlement uses, each on the endpoint that answers (onEndpoint). */
  const client = {
    getBlock: (args: Parameters<PublicClient['getBlock']>[0]) => onEndpoint('eth_getBlockByNumber', (c) => c.getBlock(args)),
    getBalance: (args: Parameters<PublicClient['getBalance']>[0]) => onEndpoint('eth_getBalance', (c) => c.getBalance(args)),
    getTransactionCount: (args: Parameters<PublicClient['getTransactionCount']>[0]) => onEndpoint('eth_getTransactionCount', (c) => c.getTransactionCount(args)),
    getGasPrice: () => onEndpoint('eth_gasPrice', (c) => c.getGasPrice()),
    maxPriorityFeePerGas: () => onEndpoint('eth_maxPriorityFeePerGas', (c) => c.request({ method: 'eth_maxPriorityFeePerGas' })),
    estimateGas: (args: Parameters<PublicClient['estimateGas']>[0]) => onEndpoint('eth_estimateGas', (c) => c.estimateGas(args)),
    sendRawTransaction: (raw: Hex) => onEndpoint('eth_sendRawTransaction', (c) => c.request({ method: 'eth_sendRawTransaction', params: [raw] })),
    getTransaction: (args: Parameters<PublicClient['getTransaction']>[0]) => onEndpoint('eth_getTransactionByHash', (c) => c.getTransaction(args)),
    getTransactionReceipt: (args: Parameters<PublicClient['getTransactionReceipt']>[0]) => onEndpoint('eth_getTransactionReceipt', (c) => c.getTransactionReceipt(args)),
  };

  const toReceipt = (r: TransactionReceipt): SettlementReceipt => {
    // A status that is neither is no answer: the pass fails and asks again (ADR 0008: an RPC
    // failure is never taken for a revert).
    if (r.status !== 'success' && r.status !== 'reverted') throw new Error(`eth_getTransactionReceipt answered the status ${String(r.status)}`);
    const ours = r.logs.filter((l) => l.address.toLowerCase() === factory.toLowerCase());
    const distributions = parseEventLogs({ abi: forwarderFactoryAbi, logs: ours, eventName: 'Distribution' });
    const skipped = parseEventLogs({ abi: forwarderFactoryAbi, logs: ours, eventName: 'Skipped' });
    return {
      hash: r.transactionHash,
      blockNumber: Number(r.blockNumber),
      blockHash: r.blockHash,
      success: r.status === 'success',
      gasUsed: r.gasUsed,
      distributions: distributions.map((e) => ({ orderRef: e.args.orderRef.toLowerCase(), forwarder: e.args.forwarder.toLowerCase(), balance: e.args.balance })),
      skipped: skipped.map((e) => ({ orderRef: e.args.orderRef.toLowerCase(), forwarder: e.args.forwarder.toLowerCase(), reason: e.args.reason === 1 ? 'DISTRIBUTED' : 'EMPTY' })),
    };
  };

  const receipt = async (hash: string): Promise<SettlementReceipt | null> => {
    try {
      const r = await client.getTransactionReceipt({ hash: hash as Hex });
      // The receipt of another transaction is no answer about this one.
      if (typeof r.transactionHash !== 'string' || r.transactionHash.toLowerCase() !== hash.toLowerCase()) throw new Error(`eth_getTransactionReceipt for ${hash} answered the receipt of ${String(r.transactionHash)}`);
      return toReceipt(r);
    } catch (err) {
      if (err instanceof BaseError && err.walk((e) => (e as Error).name === 'TransactionReceiptNotFoundError')) return null;
      throw err;
    }
  };

  /**
   * The head is the number of the block the endpoint calls latest, read with that block: a head
   * that names no block (a lagging or lying endpoint) never counts confirmations (as the
   * chain reader does, ADR 0007).
   */
  const head = async (): Promise<number> => {
    const latest = await client.getBlock({ blockTag: 'latest' });
    if (latest.number === null || typeof latest.hash !== 'string') throw new Error('eth_getBlockByNumber("latest") answered a block without a number or hash');
    return Number(latest.number);
  };

  return {
    relayer: account.address,
    head,
    async blockHash(number) {
      const block = await client.getBlock({ blockNumber: BigInt(number) }).catch((err: unknown) => {
        if (err instanceof BaseError && err.walk((e) => (e as Error).name === 'BlockNotFoundError')) return null;
        throw err;
      });
      return block?.hash ?? null;
    },
    relayerBalance: () => client.getBalance({ address: account.address }),
    async nonces(of) {
      const address = of ? getAddress(of) : account.address;
      const [latest, pending] = await Promise.all([
        client.getTransactionCount({ address, blockTag: 'latest' }),
        client.getTransactionCount({ address, blockTag: 'pending' }),
      ]);
      return { latest, pending };
    },
    async fees(): Promise<FeeQuote> {
      const block = await client.getBlock({ blockTag: 'latest' });
      const priority = await client
        .maxPriorityFeePerGas()
        .then((hex) => BigInt(hex))
        .catch(() => DEFAULT_PRIORITY_FEE);
      // Room for the base fee to double before the transaction is priced out.
      const base = block.baseFeePerGas ?? (await client.getGasPrice());
      return { maxFeePerGas: base * 2n + priority, maxPriorityFeePerGas: priority };
    },
    async held(plan, address) {
      const owner = getAddress(address);
      if (plan.token === null) return client.getBalance({ address: owner });
      return onEndpoint('eth_call', (c) => c.readContract({ address: getAddress(plan.token!), abi: erc20Abi, functionName: 'balanceOf', args: [owner] }));
    },
    async distributed(plan) {
      return onEndpoint('eth_call', (c) => c.readContract({ address: factory, abi: forwarderFactoryAbi, functionName: 'distributed', args: [abiPlan(forwarderPlan(plan))] }));
    },
    async estimate(plans) {
      try {
        // On the latest block, never the pending one (some nodes' default, anvil's among them): a
        // distribution of the same plan waiting in the mempool (a former relayer key's, one given
        // back, anyone's copy) makes the pending estimate the factory's skip, too little gas to
        // distribute if ours is mined first (it reverted out of gas in an operator drill).
        const gas = await client.estimateGas({ account: account.address, to: factory, data: distributeCalldata(plans.map(forwarderPlan)), blockTag: 'latest' });
        return { ok: true, gas };
      } catch (err) {
        // A node that cannot be asked is not a plan that would revert: the pass fails and retries.
        if (!isRevert(err)) throw err;
        // Name the revert (AlreadyDistributed, NothingToDistribute, a receiver refusing the coin).
        try {
          await onEndpoint('eth_call', (c) =>
            c.simulateContract({
              account: account.address,
              address: factory,
              abi: settlementAbi,
              ...(plans.length === 1
                ? { functionName: 'distribute' as const, args: [abiPlan(forwarderPlan(plans[0]!))] as const }
                : { functionName: 'distributeBatch' as const, args: [plans.map((p) => abiPlan(forwarderPlan(p)))] as const }),
            }),
          );
        } catch (named) {
          return { ok: false, error: reason(named) };
        }
        return { ok: false, error: reason(err) };
      }
    },
    async sign(plans, tx) {
      const raw = await account.signTransaction({
        type: 'eip1559',
        chainId: options.chainId,
        nonce: tx.nonce,
        gas: tx.gas,
        maxFeePerGas: tx.fees.maxFeePerGas,
        maxPriorityFeePerGas: tx.fees.maxPriorityFeePerGas,
        to: factory,
        value: 0n,
        data: distributeCalldata(plans.map(forwarderPlan)),
      });
      return { hash: keccak256(raw), raw };
    },
    async broadcast(raw) {
      try {
        await client.sendRawTransaction(raw as Hex);
        return { ok: true };
      } catch (err) {
        const text = `${reason(err)} ${(err as { details?: string }).details ?? ''}`;
        if (alreadyKnown(text)) return { ok: true };
        return { ok: false, error: text.trim() };
      }
    },
    async known(hash) {
      try {
        await client.getTransaction({ hash: hash as Hex });
        return true;
      } catch (err) {
        if (err instanceof BaseError && err.walk((e) => (e as Error).name === 'TransactionNotFoundError')) return false;
        throw err;
      }
    },
    receipt,
    async findDistribution(plan, forwarder, fromBlock) {
      const event = forwarderFactoryAbi.find((i): i is Extract<(typeof forwarderFactoryAbi)[number], { type: 'event'; name: 'Distribution' }> => i.type === 'event' && i.name === 'Distribution')!;
      const to = await head();
      const ref = orderRef(plan.paymentOrderNo).toLowerCase();
      // Ranges providers accept; the forwarder is indexed, so only this plan's distribution matches.
      for (let from = Math.max(0, fromBlock); from <= to; from += LOG_RANGE) {
        const logs = await onEndpoint('eth_getLogs', (c) =>
          c.getLogs({
            address: factory,
            event,
            args: { orderRef: orderRef(plan.paymentOrderNo), forwarder: getAddress(forwarder), token: plan.token === null ? NATIVE_COIN : (getAddress(plan.token) as Address) },
            fromBlock: BigInt(from),
            toBlock: BigInt(Math.min(to, from + LOG_RANGE - 1)),
          }),
        );
        // A log names a transaction; only one whose receipt holds this plan's distribution is it.
        for (const l of logs) {
          if (!l.transactionHash || l.removed || l.address.toLowerCase() !== factory.toLowerCase()) continue;
          const found = await receipt(l.transactionHash);
          if (found?.success && found.distributions.some((d) => d.orderRef === ref && d.forwarder === forwarder.toLowerCase())) return found;
        }
      }
      return null;
    },
    orderRef: (paymentOrderNo) => orderRef(paymentOrderNo).toLowerCase(),
  };
}

/** Parses a relayer key: 0x + 64 hex (a key file may hold it with surrounding whitespace). */
export function parseRelayerKey(text: string): Hex | null {
  const key = text.trim();
  const hex = key.startsWith('0x') ? key : `0x${key}`;
  return /^0x[0-9a-fA-F]{64}$/.test(hex) ? (hex as Hex) : null;
}

