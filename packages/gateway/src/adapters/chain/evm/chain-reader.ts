// Reading a network's chain over JSON-RPC for the scanner (issue 4): the head, block hashes,
// ERC-20 Transfer logs to watched addresses (or to anyone), native-coin balances (JSON-RPC batches),
// and the recipients of the value-carrying transactions of a run of blocks.
// Endpoints are tried in configured order and the reader stays on the one that answered
// (failover); a provider that refuses a log range as too large gets halves of it, down to
// single blocks, and a block it still refuses (more results than its cap) is read from the
// block's receipts (eth_getBlockReceipts, or each transaction's receipt from a provider without
// it). Every answer is checked against the JSON-RPC types and against what was asked
// (contract, event, recipient, block range, batch ids): an endpoint that answers anything else
// is broken or lying, its answer is refused whole (the next endpoint is tried, else the pass
// fails and is repeated), and nothing of it reaches the payment records. A well-formed answer is
// taken as the chain's word (ADR 0007).
import { createPublicClient, http, type PublicClient } from 'viem';
import type { Block, ChainReader, ChainTransfer, EventLog, TransferRead, ValueTransfer } from '../../../app/ports.js';
import { earlierOf, RECIPIENTS_PER_REQUEST } from '../../../app/scan-chain.js';
import { endpointLabel } from '../../../domain/endpoint-secrets.js';

/** keccak256("Transfer(address,address,uint256)"). */
export const TRANSFER_TOPIC = '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef';
/** An answer that cannot be what a node says for the request: refused whole. */
export class MalformedRpcAnswer extends Error {
  constructor(method: string, why: string) {
    super(`${method} answered ${why}`);
    this.name = 'MalformedRpcAnswer';
  }
}

const HASH = /^0x[0-9a-fA-F]{64}$/;
const WORD = HASH;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const ADDRESS_TOPIC = /^0x0{24}[0-9a-fA-F]{40}$/;
/** A JSON-RPC QUANTITY a JavaScript number holds exactly (blocks, log indexes, timestamps). */
const SMALL_QUANTITY = /^0x[0-9a-fA-F]{1,13}$/;
/** A JSON-RPC QUANTITY of up to 256 bits (balances). */
const QUANTITY = /^0x[0-9a-fA-F]{1,64}$/;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (v: unknown, pattern: RegExp): v is string => typeof v === 'string' && pattern.test(v);

/** What an eth_getLogs call asked for: every log of the answer must match it. */
interface LogFilter {
  tokens: ReadonlySet<string>;
  /** null: every recipient was asked for. */
  recipients: ReadonlySet<string> | null;
  from: number;
  to: number;
  /** The previous log's contract, block hash and block number as sent, already checked (consecutive logs share them). */
  last: { address: unknown; blockHash: unknown; blockNumber: unknown };
}

/** No value of a JSON answer equals it: the first log's fields are always checked. */
const UNSET = Symbol('unset');

/** One log of an eth_getLogs answer as a transfer, or a MalformedRpcAnswer naming what is wrong with it. */
function transferOf(l: unknown, asked: LogFilter, method = 'eth_getLogs'): ChainTransfer {
  const bad = (why: string) => new MalformedRpcAnswer(method, `a log ${why}`);
  if (!isRecord(l)) throw bad('that is not an object');
  // eth_getLogs answers from the canonical chain; `removed` belongs to filter changes.
  if (l.removed === true) throw bad('marked removed');
  const { last } = asked;
  if (l.address !== last.address) {
    if (!text(l.address, ADDRESS) || !asked.tokens.has(l.address.toLowerCase())) throw bad(`of a contract that was not asked for (${String(l.address).slice(0, 80)})`);
    last.address = l.address;
  }
  const topics = l.topics;
  if (!Array.isArray(topics) || topics.length !== 3) throw bad('whose topics are not those of an ERC-20 Transfer');
  if (typeof topics[0] !== 'string' || topics[0].toLowerCase() !== TRANSFER_TOPIC) throw bad('of another event than Transfer');
  if (!text(topics[1], ADDRESS_TOPIC) || !text(topics[2], ADDRESS_TOPIC)) throw bad('whose sender or recipient topic is not an address');
  const to = `0x${topics[2].slice(26)}`.toLowerCase();
  if (asked.recipients !== null && !asked.recipients.has(to)) throw bad(`to a recipient that was not asked for (${to})`);
  if (!text(l.data, WORD)) throw bad('whose data is not one 32-byte amount');
  if (!text(l.transactionHash, HASH)) throw bad('whose transaction hash is not 32 bytes of hex');
  if (l.blockHash !== last.blockHash) {
    if (!text(l.blockHash, HASH)) throw bad('whose block hash is not 32 bytes of hex');
    last.blockHash = l.blockHash;
  }
  if (l.blockNumber !== last.blockNumber) {
    if (!text(l.blockNumber, SMALL_QUANTITY)) throw bad('whose block number is not a quantity');
    const n = Number(l.blockNumber);
    if (n < asked.from || n > asked.to) throw bad(`of block ${n}, outside the blocks ${asked.from}-${asked.to} that were asked for`);
    last.blockNumber = l.blockNumber;
  }
  if (!text(l.logIndex, SMALL_QUANTITY)) throw bad('whose log index is not a quantity');
  const logIndex = Number(l.logIndex);
  if (logIndex > 0xffff_ffff) throw bad(`with the log index ${logIndex}`);
  return {
    txHash: l.transactionHash.toLowerCase(),
    logIndex,
    blockNumber: Number(l.blockNumber as string),
    blockHash: (l.blockHash as string).toLowerCase(),
    token: (l.address as string).toLowerCase(),
    to,
    amount: BigInt(l.data),
  };
}

/** A block header as far as the reader uses it, or a MalformedRpcAnswer. */
function headerOf(b: unknown, number: number | null): { number: number; hash: string; timestamp: number } | null {
  if (b === null) return null;
  const bad = (why: string) => new MalformedRpcAnswer('eth_getBlockByNumber', why);
  if (!isRecord(b)) throw bad('something that is not a block');
  if (!text(b.hash, HASH) || !text(b.number, SMALL_QUANTITY) || !text(b.timestamp, SMALL_QUANTITY)) throw bad('a block whose hash, number or timestamp is malformed');
  if (number !== null && Number(b.number) !== number) throw bad(`block ${Number(b.number)} when block ${number} was asked for`);
  return { number: Number(b.number), hash: b.hash.toLowerCase(), timestamp: Number(b.timestamp) };
}

/**
 * A block with its transactions, as far as valueTransfers uses it: its header, its parent's
 * hash, and the transactions that carry value; or a MalformedRpcAnswer.
 */
function valueBlockOf(b: unknown, number: number): { hash: string; parentHash: string; transfers: ValueTransfer[] } | null {
  const header = headerOf(b, number);
  if (!header) return null;
  const bad = (why: string) => new MalformedRpcAnswer('eth_getBlockByNumber', `block ${number} ${why}`);
  const { parentHash, transactions } = b as Record<string, unknown>;
  if (!text(parentHash, HASH)) throw bad('with a malformed parent hash');
  if (!Array.isArray(transactions)) throw bad('without its list of transactions');
  const transfers: ValueTransfer[] = [];
  for (const tx of transactions) {
    if (!isRecord(tx)) throw bad('with a transaction that is not an object (asked with its transactions)');
    if (!text(tx.value, QUANTITY)) throw bad('with a transaction whose value is not a quantity');
    // A contract creation has no recipient; a deposit address never has code before its settlement.
    if (tx.to === null || tx.to === undefined) continue;
    if (!text(tx.to, ADDRESS)) throw bad('with a transaction whose recipient is not an address');
    const value = BigInt(tx.value);
    if (value === 0n) continue;
    if (!text(tx.hash, HASH)) throw bad('with a transaction whose hash is malformed');
    transfers.push({ hash: tx.hash.toLowerCase(), to: tx.to.toLowerCase(), value, block: number });
  }
  return { hash: header.hash, parentHash: parentHash.toLowerCase(), transfers };
}

/** Blocks (with their transactions, which can be large) per JSON-RPC batch of valueTransfers. */
const VALUE_BLOCKS_PER_BATCH = 10;

/** eth_getTransactionReceipt calls per JSON-RPC batch, for a provider without eth_getBlockReceipts. */
const RECEIPTS_PER_BATCH = 100;

/** eth_getBalance calls per JSON-RPC batch (one HTTP request), and batches in flight at once. */
const BALANCES_PER_BATCH = 100;
const BALANCE_BATCHES_IN_FLIGHT = 4;

export interface ChainReaderOptions {
  timeoutMs?: number;
  log?: EventLog;
  /**
   * The network's configured chain id: an endpoint is asked its `eth_chainId` before it is first
   * used (and again after it failed), and one serving another chain is not used (its failure is
   * an error naming both ids). Without it, endpoints are taken as they are (tests of the reader).
   */
  chainId?: number;
}

/** An endpoint serving another chain than the network's: never read from (its blocks and logs are another chain's). */
export class WrongChain extends Error {
  constructor(readonly endpoint: number, readonly served: number, readonly configured: number) {
    super(`RPC endpoint ${endpoint} serves chain id ${served}, not the configured chain_id ${configured}: it is not read from`);
    this.name = 'WrongChain';
  }
}

/** The provider said the range or result is too large (wordings of geth, Erigon, Alchemy, Infura, QuickNode…). */
function isRangeRefusal(err: unknown): boolean {
  if (err instanceof MalformedRpcAnswer || err instanceof WrongChain) return false;
  const text = `${(err as { details?: unknown })?.details ?? ''} ${(err as Error)?.message ?? ''}`;
  return /range|too many|too large|limit exceeded|more than \d+ results|query returned more than|response size/i.test(text);
}

const errorText = (e: unknown) => (isRecord(e) && typeof e.message === 'string' ? e.message : JSON.stringify(e) ?? String(e)).slice(0, 300);

const padTopic = (address: string) => `0x${address.slice(2).toLowerCase().padStart(64, '0')}`;

export function evmChainReader(rpcUrls: readonly string[], options: ChainReaderOptions = {}): ChainReader {
  if (rpcUrls.length === 0) throw new Error('a chain reader needs at least one RPC URL');
  const timeoutMs = options.timeoutMs ?? 10_000;
  const clients: PublicClient[] = rpcUrls.map((url) => createPublicClient({ transport: http(url, { timeout: timeoutMs, retryCount: 0 }), cacheTime: 0 }));
  let current = 0;
  /** Endpoints whose chain id was found to be the configured one since they last failed. */
  const onChain = new Array<boolean>(clients.length).fill(options.chainId === undefined);
  /** The other chain id each endpoint was last logged serving. */
  const wrongLogged = new Array<number | undefined>(clients.length);
  /**
   * Each endpoint's failures in a row. Logged at the 1st, 2nd, 4th, 8th… (an endpoint down for an
   * hour fails every pass, a second apart: a warning each buried the rest of the outage's log),
   * and its recovery once with the count.
   */
  const failuresInRow = new Array<number>(clients.length).fill(0);

  /** Runs `fn` on the current endpoint, then on each other one in turn; the last error if all fail. */
  async function withFailover<T>(what: string, fn: (client: PublicClient, url: string) => Promise<T>, passThrough?: (err: unknown) => boolean): Promise<T> {
    let lastError: unknown;
    for (let i = 0; i < clients.length; i += 1) {
      const index = (current + i) % clients.length;
      try {
        if (!onChain[index]) {
          // A URL copied from another network's configuration, or a provider that moved it: its
          // head, logs and balances would move the scan's cursor along another chain.
          const served = await clients[index]!.getChainId();
          if (served !== options.chainId) throw new WrongChain(index + 1, served, options.chainId!);
          onChain[index] = true;
          // A later spell on another chain, even the same one again, is logged anew.
          wrongLogged[index] = undefined;
        }
        const value = await fn(clients[index]!, rpcUrls[index]!);
        if (failuresInRow[index]! > 0) {
          options.log?.info({ url: endpointLabel(rpcUrls[index]!), endpoint: index + 1, endpoints: rpcUrls.length, failures: failuresInRow[index] }, 'RPC endpoint answers again');
          failuresInRow[index] = 0;
        }
        if (index !== current) options.log?.warn({ from: endpointLabel(rpcUrls[current]!), to: endpointLabel(rpcUrls[index]!), endpoint: index + 1, endpoints: rpcUrls.length }, 'switched RPC endpoint');
        current = index;
        return value;
      } catch (err) {
        if (passThrough?.(err)) throw err;
        lastError = err;
        // Asked its chain id again before its next use: what answers at that URL may have changed.
        if (options.chainId !== undefined) onChain[index] = false;
        const log = { url: endpointLabel(rpcUrls[index]!), endpoint: index + 1, endpoints: rpcUrls.length, what, err: (err as Error).message };
        if (!(err instanceof WrongChain)) {
          const n = (failuresInRow[index] = failuresInRow[index]! + 1);
          if ((n & (n - 1)) === 0) options.log?.warn(n === 1 ? log : { ...log, repeats: n }, 'RPC endpoint failed');
        }
        else if (wrongLogged[index] !== err.served) {
          // Once per chain it serves, not on every pass.
          wrongLogged[index] = err.served;
          options.log?.error(log, "RPC endpoint serves another chain than the network's: not read from (networks.<enum>.rpc_urls)");
        }
      }
    }
    throw lastError;
  }

  /**
   * One JSON-RPC batch (one HTTP request: behind a load balancer, one node answers all of it).
   * The results in call order; the answer's ids must be exactly the calls', each once. An error
   * inside the batch throws with the provider's message (a range refusal is recognised by it).
   */
  async function batch(url: string, what: string, calls: readonly { method: string; params: unknown[] }[]): Promise<unknown[]> {
    const body = JSON.stringify(calls.map((c, id) => ({ jsonrpc: '2.0', id, method: c.method, params: c.params })));
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
    const answer: unknown = await res.json();
    const bad = (why: string) => new MalformedRpcAnswer(what, why);
    // A provider may answer a whole batch it refuses with one error object.
    if (isRecord(answer) && answer.error !== undefined) throw new Error(`${what}: ${errorText(answer.error)}`);
    if (!Array.isArray(answer) || answer.length !== calls.length) throw bad(`a batch that is not one answer per call (${calls.length})`);
    const out = new Array<unknown>(calls.length);
    const seen = new Array<boolean>(calls.length).fill(false);
    for (const item of answer) {
      const id: unknown = isRecord(item) ? item.id : undefined;
      if (!isRecord(item) || typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= calls.length || seen[id]) {
        throw bad('a batch whose ids are not those of the calls, each once');
      }
      seen[id] = true;
      if (item.error !== undefined) throw new Error(`${calls[id]!.method}: ${errorText(item.error)}`);
      if (!('result' in item)) throw bad(`an answer to ${calls[id]!.method} with neither result nor error`);
      out[id] = item.result;
    }
    return out;
  }

  /**
   * Transfer logs in [from, to] from one endpoint, read in one batch with the block at `to` and
   * the endpoint's latest block, so that the answer says how far the chain it came from went: a
   * node behind a load balancer that has not reached `to` yet answers fewer logs, not wrong ones,
   * and the scan must not pass blocks it did not see (ADR 0007). The block reads go first: a node
   * that had block `to` when it read them had it for the logs.
   */
  async function logsOnce(url: string, asked: LogFilter, tokens: readonly string[], recipients: readonly string[] | null): Promise<{ transfers: ChainTransfer[]; through: Block }> {
    const { from, to } = asked;
    // Three topics at least, as by recipient: a Transfer whose parties are not indexed (not an
    // ERC-20 transfer the scan can read) is left out by the node, not refused here.
    const topics = [TRANSFER_TOPIC, null, recipients === null ? null : recipients.map(padTopic)];
    const [atTo, latest, list] = await batch(url, 'eth_getLogs', [
      { method: 'eth_getBlockByNumber', params: [`0x${to.toString(16)}`, false] },
      { method: 'eth_getBlockByNumber', params: ['latest', false] },
      { method: 'eth_getLogs', params: [{ fromBlock: `0x${from.toString(16)}`, toBlock: `0x${to.toString(16)}`, address: tokens, topics }] },
    ]);
    let end = headerOf(atTo, to);
    if (!end) {
      end = headerOf(latest, null);
      if (!end) throw new MalformedRpcAnswer('eth_getBlockByNumber', 'no latest block');
      if (end.number >= to) throw new MalformedRpcAnswer('eth_getBlockByNumber', `no block ${to} but a latest block ${end.number}`);
    }
    if (!Array.isArray(list)) throw new MalformedRpcAnswer('eth_getLogs', 'something that is not a list of logs');
    const transfers: ChainTransfer[] = [];
    for (const l of list) {
      const t = transferOf(l, asked);
      if (t.blockNumber > end.number) continue; // a block that arrived during the batch: the next pass reads it
      if (t.blockNumber === end.number && t.blockHash !== end.hash) throw new MalformedRpcAnswer('eth_getLogs', `a log of block ${t.blockNumber} with the hash ${t.blockHash}, which that block does not have`);
      transfers.push(t);
    }
    return { transfers, through: { number: end.number, hash: end.hash } };
  }

  async function logs(tokens: readonly string[], recipients: readonly string[] | null, from: number, to: number): Promise<{ transfers: ChainTransfer[]; through: Block }> {
    const asked: LogFilter = {
      tokens: new Set(tokens.map((t) => t.toLowerCase())),
      recipients: recipients === null ? null : new Set(recipients.map((r) => r.toLowerCase())),
      from,
      to,
      last: { address: UNSET, blockHash: UNSET, blockNumber: UNSET },
    };
    try {
      return await withFailover('eth_getLogs', (_c, url) => logsOnce(url, asked, tokens, recipients), isRangeRefusal);
    } catch (err) {
      if (!isRangeRefusal(err)) throw err;
      if (from < to) {
        const mid = from + Math.floor((to - from) / 2);
        const first = await logs(tokens, recipients, from, mid);
        if (first.through.number < mid) return first; // the endpoint has not reached the second half
        const second = await logs(tokens, recipients, mid + 1, to);
        return { transfers: [...first.transfers, ...second.transfers], through: second.through.number > mid ? second.through : first.through };
      }
      // One block, and still more results than the provider answers (its cap is below the block's
      // transfers to these addresses: dust sent to them in bulk, say): the block's receipts, one
      // request whatever the number of recipients, so that no cap stops the scan at a block.
      // Every transfer of the tokens (no recipient list) is not read this way: the scan then asks
      // by recipient (scanPass).
      if (recipients === null) throw err;
      options.log?.warn({ block: from, recipients: recipients.length, err: (err as Error).message }, "the provider refuses one block's transfers to the watched addresses as too many; reading the block's receipts");
      return withFailover('eth_getBlockReceipts', (_c, url) => receiptsOnce(url, asked, from));
    }
  }

  /**
   * The transfers asked for (`asked`: one block) out of the block's receipts, read in one batch
   * with the block and the endpoint's latest block as logsOnce does. A provider that does not
   * serve eth_getBlockReceipts (an error other than a malformed answer) is asked for the block's
   * transactions and their receipts one by one instead (txReceiptsOnce).
   */
  async function receiptsOnce(url: string, asked: LogFilter, number: number): Promise<{ transfers: ChainTransfer[]; through: Block }> {
    const tag = `0x${number.toString(16)}`;
    let answer: unknown[];
    try {
      answer = await batch(url, 'eth_getBlockReceipts', [
        { method: 'eth_getBlockByNumber', params: [tag, false] },
        { method: 'eth_getBlockByNumber', params: ['latest', false] },
        { method: 'eth_getBlockReceipts', params: [tag] },
      ]);
    } catch (err) {
      if (err instanceof MalformedRpcAnswer) throw err;
      options.log?.warn({ url: endpointLabel(url), block: number, err: (err as Error).message }, "the endpoint does not answer eth_getBlockReceipts; reading the block's receipts one transaction at a time");
      return txReceiptsOnce(url, asked, number);
    }
    const [atBlock, latest, receipts] = answer;
    const block = headerOf(atBlock, number);
    if (!block) return beyondHead(latest, number);
    if (!Array.isArray(receipts)) throw new MalformedRpcAnswer('eth_getBlockReceipts', `something that is not the list of block ${number}'s receipts`);
    const transfers: ChainTransfer[] = [];
    for (const r of receipts) transfers.push(...askedTransfersOf(r, asked, block, 'eth_getBlockReceipts'));
    return { transfers, through: { number: block.number, hash: block.hash } };
  }

  /**
   * receiptsOnce for a provider without eth_getBlockReceipts: the block with its transaction
   * hashes and the latest block in one batch, then the receipts in batches of RECEIPTS_PER_BATCH
   * eth_getTransactionReceipt calls, each checked to be of that block (a reorganisation between
   * the batches fails the pass, which is repeated).
   */
  async function txReceiptsOnce(url: string, asked: LogFilter, number: number): Promise<{ transfers: ChainTransfer[]; through: Block }> {
    const [atBlock, latest] = await batch(url, 'eth_getBlockByNumber', [
      { method: 'eth_getBlockByNumber', params: [`0x${number.toString(16)}`, false] },
      { method: 'eth_getBlockByNumber', params: ['latest', false] },
    ]);
    const block = headerOf(atBlock, number);
    if (!block) return beyondHead(latest, number);
    const hashes = (atBlock as Record<string, unknown>).transactions;
    if (!Array.isArray(hashes) || !hashes.every((h) => text(h, HASH))) throw new MalformedRpcAnswer('eth_getBlockByNumber', `block ${number} without the list of its transaction hashes`);
    const transfers: ChainTransfer[] = [];
    for (let i = 0; i < hashes.length; i += RECEIPTS_PER_BATCH) {
      const some = (hashes as string[]).slice(i, i + RECEIPTS_PER_BATCH);
      const receipts = await batch(url, 'eth_getTransactionReceipt', some.map((h) => ({ method: 'eth_getTransactionReceipt', params: [h] })));
      receipts.forEach((r, j) => {
        if (r === null) throw new Error(`the receipt of ${some[j]} in block ${number} is gone (a reorganisation)`);
        if (isRecord(r) && typeof r.blockHash === 'string' && r.blockHash.toLowerCase() !== block.hash) throw new Error(`the receipt of ${some[j]} is of block ${String(r.blockHash)}, no longer ${number} ${block.hash} (a reorganisation)`);
        if (!isRecord(r) || typeof r.transactionHash !== 'string' || r.transactionHash.toLowerCase() !== some[j]!.toLowerCase()) throw new MalformedRpcAnswer('eth_getTransactionReceipt', `a receipt of another transaction than ${some[j]}`);
        transfers.push(...askedTransfersOf(r, asked, block, 'eth_getTransactionReceipt'));
      });
    }
    return { transfers, through: { number: block.number, hash: block.hash } };
  }

  /** No block `number` at the endpoint: its latest block must then be below it, and the scan goes no further. */
  function beyondHead(latest: unknown, number: number): { transfers: ChainTransfer[]; through: Block } {
    const head = headerOf(latest, null);
    if (!head) throw new MalformedRpcAnswer('eth_getBlockByNumber', 'no latest block');
    if (head.number >= number) throw new MalformedRpcAnswer('eth_getBlockByNumber', `no block ${number} but a latest block ${head.number}`);
    return { transfers: [], through: { number: head.number, hash: head.hash } };
  }

  /** The transfers asked for among one receipt's logs; the others are skipped unread, the asked ones checked as an eth_getLogs answer's are. */
  function askedTransfersOf(r: unknown, asked: LogFilter, block: { number: number; hash: string }, method: string): ChainTransfer[] {
    const bad = (why: string) => new MalformedRpcAnswer(method, why);
    if (!isRecord(r) || !Array.isArray(r.logs)) throw bad('a receipt without its list of logs');
    if (typeof r.blockHash !== 'string' || r.blockHash.toLowerCase() !== block.hash) throw bad(`a receipt of another block than ${block.number} ${block.hash}`);
    const out: ChainTransfer[] = [];
    for (const l of r.logs) {
      if (!isRecord(l)) throw bad('a log that is not an object');
      const topics = l.topics;
      const asks = typeof l.address === 'string' && asked.tokens.has(l.address.toLowerCase()) && Array.isArray(topics) && topics.length === 3 && typeof topics[0] === 'string' && topics[0].toLowerCase() === TRANSFER_TOPIC && typeof topics[2] === 'string' && asked.recipients?.has(`0x${topics[2].slice(26)}`.toLowerCase()) === true;
      if (!asks) continue;
      const t = transferOf(l, asked, method);
      if (t.blockHash !== block.hash) throw bad(`a log of block ${block.number} with the hash ${t.blockHash}, which that block does not have`);
      out.push(t);
    }
    return out;
  }

  /** The canonical block at `number` (header only), or null beyond the head. */
  const block = (number: number) =>
    withFailover('eth_getBlockByNumber', async (c) => headerOf(await c.request({ method: 'eth_getBlockByNumber', params: [`0x${number.toString(16)}`, false] }), number));

  /** One JSON-RPC batch of eth_getBalance calls. */
  async function balanceBatch(url: string, addresses: readonly string[], blockTag: string): Promise<bigint[]> {
    const answer = await batch(url, 'eth_getBalance', addresses.map((address) => ({ method: 'eth_getBalance', params: [address, blockTag] })));
    return answer.map((v) => {
      if (!text(v, QUANTITY)) throw new MalformedRpcAnswer('eth_getBalance', 'a balance that is not a quantity');
      return BigInt(v);
    });
  }

  return {
    // The head is the number of the block the endpoint calls latest, read with that block: a
    // head that names no block (a lagging or lying endpoint) never moves the scan past the chain.
    head: () =>
      withFailover('eth_getBlockByNumber', async (c) => {
        const latest = headerOf(await c.request({ method: 'eth_getBlockByNumber', params: ['latest', false] }), null);
        if (!latest) throw new MalformedRpcAnswer('eth_getBlockByNumber', 'no latest block');
        return { number: latest.number, hash: latest.hash, timestamp: latest.timestamp };
      }),
    blockHash: async (number) => (await block(number))?.hash ?? null,
    transactionBlock: (hash) =>
      withFailover('eth_getTransactionReceipt', async (c) => {
        const r = await c.request({ method: 'eth_getTransactionReceipt', params: [hash as `0x${string}`] });
        if (r === null) return null;
        const bad = (why: string) => new MalformedRpcAnswer('eth_getTransactionReceipt', why);
        if (!isRecord(r)) throw bad('something that is not a receipt');
        if (typeof r.transactionHash !== 'string' || r.transactionHash.toLowerCase() !== hash.toLowerCase()) throw bad(`a receipt of another transaction than ${hash}`);
        if (!text(r.blockHash, HASH) || !text(r.blockNumber, SMALL_QUANTITY)) throw bad('a receipt whose block is malformed');
        if (r.status !== '0x1' && r.status !== '0x0') throw bad('a receipt whose status is neither 0x1 nor 0x0');
        return { block: { number: Number(r.blockNumber), hash: r.blockHash.toLowerCase() }, success: r.status === '0x1' };
      }),
    blockTimestamp: async (number) => (await block(number))?.timestamp ?? null,
    async tokenTransfers(tokens, recipients, fromBlock, toBlock) {
      if (recipients === null) return logs(tokens, null, fromBlock, toBlock);
      const out: ChainTransfer[] = [];
      let through: TransferRead['through'] = null;
      for (let i = 0; i < recipients.length; i += RECIPIENTS_PER_REQUEST) {
        const read = await logs(tokens, recipients.slice(i, i + RECIPIENTS_PER_REQUEST), fromBlock, toBlock);
        out.push(...read.transfers);
        through = earlierOf(through, read.through);
      }
      out.sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex);
      return { transfers: out, through };
    },
    async balances(addresses, blockNumber) {
      const out: bigint[] = new Array<bigint>(addresses.length);
      const chunks: number[] = [];
      for (let i = 0; i < addresses.length; i += BALANCES_PER_BATCH) chunks.push(i);
      const blockTag = `0x${blockNumber.toString(16)}`;
      const worker = async () => {
        for (let start = chunks.shift(); start !== undefined; start = chunks.shift()) {
          const slice = addresses.slice(start, start + BALANCES_PER_BATCH);
          // The whole chunk is retried on the next endpoint: a batch fails or succeeds as one.
          const values = await withFailover('eth_getBalance', (_c, url) => balanceBatch(url, slice, blockTag));
          values.forEach((v, j) => (out[start + j] = v));
        }
      };
      await Promise.all(Array.from({ length: Math.min(BALANCE_BATCHES_IN_FLIGHT, chunks.length) }, worker));
      return out;
    },
    async valueTransfers(after, to) {
      const transfers: ValueTransfer[] = [];
      let parent = after;
      for (let first = after.number + 1; first <= to.number; first += VALUE_BLOCKS_PER_BATCH) {
        const numbers = Array.from({ length: Math.min(VALUE_BLOCKS_PER_BATCH, to.number - first + 1) }, (_, i) => first + i);
        // One batch from one endpoint, and each block's parent checked against the block before
        // it (the last of the previous batch, or `after`): the blocks read are one chain.
        const blocks = await withFailover('eth_getBlockByNumber', async (_c, url) => {
          const answer = await batch(url, 'eth_getBlockByNumber', numbers.map((n) => ({ method: 'eth_getBlockByNumber', params: [`0x${n.toString(16)}`, true] })));
          return answer.map((b, i) => valueBlockOf(b, numbers[i]!));
        });
        for (const [i, b] of blocks.entries()) {
          const number = numbers[i]!;
          if (!b) throw new Error(`block ${number} is beyond the endpoint's head`);
          if (b.parentHash !== parent.hash.toLowerCase()) throw new Error(`block ${number} does not follow block ${parent.number} ${parent.hash} (a reorganisation)`);
          transfers.push(...b.transfers);
          parent = { number, hash: b.hash };
        }
      }
      // The blocks read end at the head the caller has (an endpoint failed over to may be on another fork).
      if (parent.number !== to.number || parent.hash !== to.hash.toLowerCase()) throw new Error(`the blocks read end at block ${parent.number} ${parent.hash}, not at ${to.number} ${to.hash}`);
      return transfers;
    },
  };
}
