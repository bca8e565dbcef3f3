// Reading a network's chain over JSON-RPC for the scanner (issue 4): the head, block hashes,
// ERC-20 Transfer logs to watched addresses, and native-coin balances (JSON-RPC batches).
// Endpoints are tried in configured order and the reader stays on the one that answered
// (failover); a provider that refuses a log range as too large gets halves of it, down to
// single blocks.
import { createPublicClient, http, type PublicClient } from 'viem';
import type { ChainReader, ChainTransfer, EventLog } from '../../../app/ports.js';
import { RECIPIENTS_PER_REQUEST } from '../../../app/scan-chain.js';

/** keccak256("Transfer(address,address,uint256)"). */
export const TRANSFER_TOPIC = '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef';
/** eth_getBalance calls per JSON-RPC batch (one HTTP request), and batches in flight at once. */
const BALANCES_PER_BATCH = 100;
const BALANCE_BATCHES_IN_FLIGHT = 4;

interface RpcLog {
  transactionHash: string;
  logIndex: string;
  blockNumber: string;
  blockHash: string;
  address: string;
  topics: string[];
  data: string;
  removed?: boolean;
}

export interface ChainReaderOptions {
  timeoutMs?: number;
  log?: EventLog;
}

/** The provider said the range or result is too large (wordings of geth, Erigon, Alchemy, Infura, QuickNode…). */
function isRangeRefusal(err: unknown): boolean {
  const text = `${(err as { details?: unknown })?.details ?? ''} ${(err as Error)?.message ?? ''}`;
  return /range|too many|too large|limit exceeded|more than \d+ results|query returned more than|response size/i.test(text);
}

const padTopic = (address: string) => `0x${address.slice(2).toLowerCase().padStart(64, '0')}`;

export function evmChainReader(rpcUrls: readonly string[], options: ChainReaderOptions = {}): ChainReader {
  if (rpcUrls.length === 0) throw new Error('a chain reader needs at least one RPC URL');
  const clients: PublicClient[] = rpcUrls.map((url) => createPublicClient({ transport: http(url, { timeout: options.timeoutMs ?? 10_000, retryCount: 0 }), cacheTime: 0 }));
  // Balance reads go out as JSON-RPC batches: the calls of one chunk, issued in the same tick,
  // travel in one HTTP request. Separate clients, so no other call is ever batched.
  const batchClients: PublicClient[] = rpcUrls.map((url) =>
    createPublicClient({ transport: http(url, { timeout: options.timeoutMs ?? 10_000, retryCount: 0, batch: { batchSize: BALANCES_PER_BATCH, wait: 0 } }), cacheTime: 0 }),
  );
  let current = 0;

  /** Runs `fn` on the current endpoint, then on each other one in turn; the last error if all fail. */
  async function withFailover<T>(what: string, fn: (client: PublicClient) => Promise<T>, passThrough?: (err: unknown) => boolean, pool: readonly PublicClient[] = clients): Promise<T> {
    let lastError: unknown;
    for (let i = 0; i < pool.length; i += 1) {
      const index = (current + i) % pool.length;
      try {
        const value = await fn(pool[index]!);
        if (index !== current) options.log?.warn({ from: rpcUrls[current], to: rpcUrls[index] }, 'switched RPC endpoint');
        current = index;
        return value;
      } catch (err) {
        if (passThrough?.(err)) throw err;
        lastError = err;
        options.log?.warn({ url: rpcUrls[index], what, err: (err as Error).message }, 'RPC endpoint failed');
      }
    }
    throw lastError;
  }

  async function logs(tokens: readonly string[], recipients: readonly string[], from: number, to: number): Promise<RpcLog[]> {
    try {
      return await withFailover(
        'eth_getLogs',
        (c) =>
          c.request({
            method: 'eth_getLogs',
            params: [{ fromBlock: `0x${from.toString(16)}`, toBlock: `0x${to.toString(16)}`, address: tokens as `0x${string}`[], topics: [TRANSFER_TOPIC, null, recipients.map(padTopic)] as never }],
          }) as Promise<RpcLog[]>,
        isRangeRefusal,
      );
    } catch (err) {
      if (!isRangeRefusal(err) || from >= to) throw err;
      const mid = from + Math.floor((to - from) / 2);
      return [...(await logs(tokens, recipients, from, mid)), ...(await logs(tokens, recipients, mid + 1, to))];
    }
  }

  /** The canonical block at `number` (header only), or null beyond the head. */
  const block = (number: number) =>
    withFailover('eth_getBlockByNumber', (c) => c.request({ method: 'eth_getBlockByNumber', params: [`0x${number.toString(16)}`, false] }) as Promise<{ hash: string; timestamp: string } | null>);

  return {
    headNumber: () => withFailover('eth_blockNumber', async (c) => Number(await c.getBlockNumber({ cacheTime: 0 }))),
    blockHash: async (number) => (await block(number))?.hash.toLowerCase() ?? null,
    blockTimestamp: async (number) => {
      const b = await block(number);
      return b ? Number(b.timestamp) : null;
    },
    async tokenTransfers(tokens, recipients, fromBlock, toBlock) {
      const out: ChainTransfer[] = [];
      for (let i = 0; i < recipients.length; i += RECIPIENTS_PER_REQUEST) {
        for (const l of await logs(tokens, recipients.slice(i, i + RECIPIENTS_PER_REQUEST), fromBlock, toBlock)) {
          // A log of a block being replaced: the next scan sees the canonical one.
          if (l.removed || l.topics.length < 3 || !l.topics[2]) continue;
          out.push({
            txHash: l.transactionHash.toLowerCase(),
            logIndex: Number(l.logIndex),
            blockNumber: Number(l.blockNumber),
            blockHash: l.blockHash.toLowerCase(),
            token: l.address.toLowerCase(),
            to: `0x${l.topics[2].slice(26)}`.toLowerCase(),
            amount: l.data === '0x' ? 0n : BigInt(l.data),
          });
        }
      }
      return out.sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex);
    },
    async balances(addresses, blockNumber) {
      const out: bigint[] = new Array<bigint>(addresses.length);
      const chunks: number[] = [];
      for (let i = 0; i < addresses.length; i += BALANCES_PER_BATCH) chunks.push(i);
      const blockTag = BigInt(blockNumber);
      const worker = async () => {
        for (let start = chunks.shift(); start !== undefined; start = chunks.shift()) {
          const slice = addresses.slice(start, start + BALANCES_PER_BATCH);
          // The whole chunk is retried on the next endpoint: a batch fails or succeeds as one.
          const values = await withFailover(
            'eth_getBalance',
            (c) => Promise.all(slice.map((address) => c.getBalance({ address: address as `0x${string}`, blockNumber: blockTag }))),
            undefined,
            batchClients,
          );
          values.forEach((v, j) => (out[start + j] = v));
        }
      };
      await Promise.all(Array.from({ length: Math.min(BALANCE_BATCHES_IN_FLIGHT, chunks.length) }, worker));
      return out;
    },
  };
}
