// The chain scan facing a JSON-RPC endpoint that lies or answers garbage (issue 4, PROTOCOL §10,
// ADR 0007). A real anvil with the test token and forwarder factory; a real HTTP proxy between
// the gateway's reader and anvil that passes each request through or rewrites its answer; real
// orders with deposit addresses and real transfers. fast-check generates hostile answers; after
// every scan pass the gateway's tables are compared with anvil read directly (never through the
// proxy): bad input must not crash the scan, must never be recorded as money, must not move the
// cursor over blocks whose logs were not read, and once the endpoint is honest again one or two
// passes must bring the order to exactly what a never-lied-to gateway shows.
//
// What the design trusts (and this file therefore does not count as a defect): the configured
// endpoint's well-formed, self-consistent answers. A syntactically valid Transfer log that matches
// the request, a head that is lower than the truth, a valid but different block hash: these are
// facts to the scanner (ADR 0007: logs go to the payment port as they are; a block hash that is
// not the stored one is a reorganisation). The "trusted by design" test checks only that such a
// fact is handled exactly. Everything else is garbage the scanner can tell from the truth: answers
// that are not JSON-RPC, values that are not the JSON-RPC types (QUANTITY, DATA of a fixed size),
// logs that do not match the filter asked for, a batch answer whose ids do not match the calls,
// and a head whose block the same endpoint says does not exist.
//
// The tests titled "was defect N" pin the smallest answers this file found breaking these rules,
// titled by what the gateway used to do; the reader now refuses such answers whole
// (MalformedRpcAnswer) and reads the head as the latest block. A pass that fails is fine: it
// rejects with an Error (the watcher loop logs it and goes on) and must leave nothing behind.
import { Writable } from 'node:stream';
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Address } from 'viem';
import { evmChainReader, TRANSFER_TOPIC } from '../src/adapters/chain/evm/chain-reader.js';
import { NATIVE_COIN } from '../src/adapters/chain/evm/forwarder-plan.js';
import type { ChainTransfer } from '../src/app/ports.js';
import type { ScanDeps } from '../src/app/scan-chain.js';
import { startChainWatcher } from '../src/jobs/chain-watcher.js';
import { deploymentOn, mine, notifyTypes, placeOrder, queryOrder, rpc, type PlacedOrder } from './chain-setup.js';
import { startTestChain, type TestChain } from './evm-chain.js';
import { startTestGateway, type TestGateway } from './harness.js';
import { fuzzOptions } from './fuzz.js';
import { answer, startHostileProxy, transportReply, type Exchange, type HostileProxy, type Rewrite } from './hostile-rpc.js';
import { waitUntil } from './wait.js';

const CONFIRMATIONS = 3;
const TOKEN_NET = '4';
const NATIVE_NET = '2';
/** keccak256("Approval(address,address,uint256)"): same shape as Transfer, another event. */
const APPROVAL_TOPIC = '0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925';
const OTHER_CONTRACT = '0x000000000000000000000000000000000000dead';
const UNWATCHED = '0x1111111111111111111111111111111111111111';
const FAKE_HASH = `0x${'ab'.repeat(32)}`;
const MAX_UINT256 = (1n << 256n) - 1n;

// ---------------------------------------------------------------------------------------------
// The hostile proxy: composed in front of the existing rpc-proxy (which forwards to anvil and
// keeps its call statistics and its fault switch); this one rewrites answers per request.


// ---------------------------------------------------------------------------------------------
// Hostile answers, as plain data (fast-check prints them as counterexamples).

/** Answers that are not a usable JSON-RPC answer at all, whatever the method. */
const TRANSPORT = ['http500', 'drop', 'nonJson', 'truncated', 'emptyBody', 'rpcError', 'rpcErrorRange', 'wrongId', 'noJsonrpc', 'slow'] as const;
type Transport = (typeof TRANSPORT)[number];

interface RpcLogJson {
  address: string;
  topics: string[];
  data: string;
  blockNumber: string;
  blockHash: string;
  transactionHash: string;
  logIndex: string;
  removed?: boolean;
  [k: string]: unknown;
}

/** A log field replaced by a value that is not what a node returns for the filter asked. */
const LOG_FIELD_LIES = {
  data: ['0x', '', '0x01', 'long64', 'oddHex', 'nonHex', 'decimal', 'noPrefix', 'over256', 'negative', 'number', 'null'],
  topics: ['two', 'four', 'string', 'null', 'empty'],
  topic0: ['approval', 'zero'],
  topic2: ['dirtyPadding', 'unpadded', 'nonHex', 'unwatched', 'upper'],
  address: ['otherContract', 'nonHex', 'missing', 'upper'],
  blockNumber: ['missing', 'nonHex', 'decimal', 'huge', 'aheadOfRange', 'beforeRange', 'negative', 'number', 'fraction'],
  logIndex: ['missing', 'nonHex', 'huge', 'negative', 'number', 'fraction'],
  transactionHash: ['missing', 'short', 'nonHex', 'long', 'number', 'upper'],
  blockHash: ['missing', 'short', 'nonHex', 'number'],
  removed: ['true'],
} as const;
type LogField = keyof typeof LOG_FIELD_LIES;

type LogsLie =
  | { kind: 'transport'; transport: Transport }
  | { kind: 'result'; result: 'null' | 'object' | 'string' | 'number' | 'arrayOfNull' | 'arrayOfStrings' | 'nested' }
  | { kind: 'reorder'; how: 'duplicate' | 'reverse' | 'duplicateReversed' }
  /**
   * One log with a bad field: in place of the real transfer ('replace'), as a copy of it with the
   * same identity next to it ('twin'), or as a fabricated transfer (another tx hash) next to it
   * ('extra'). An encoding variant that is valid JSON-RPC (upper-case hex) is no lie: it is only
   * used in place of or next to the real log, never to fabricate one (a well-formed fabricated
   * log is trusted by design, see the top of the file).
   */
  | { kind: 'field'; field: LogField; lie: string; mode: LogMode };
type LogMode = 'replace' | 'twin' | 'extra';
/** Valid JSON-RPC spellings of the real value: not lies. */
const HARMLESS = new Set(['topic2:upper', 'address:upper', 'transactionHash:upper']);

const pad = (address: string) => `0x${address.slice(2).toLowerCase().padStart(64, '0')}`;
const hex = (n: bigint | number) => `0x${n.toString(16)}`;

function lieValue(field: LogField, lie: string, log: RpcLogJson, asked: { from: number; to: number }): unknown {
  const word = log.data.slice(2);
  switch (`${field}:${lie}`) {
    case 'data:long64':
      return `0x${word}${word}`;
    case 'data:oddHex':
      return `0x${word.slice(1)}`;
    case 'data:nonHex':
      return `0x${'zz'.repeat(32)}`;
    case 'data:decimal':
      return BigInt(log.data).toString(10);
    case 'data:noPrefix':
      return word;
    case 'data:over256':
      return `0x1${'0'.repeat(64)}`;
    case 'data:negative':
      return `-${log.data}`;
    case 'data:number':
      return Number(BigInt(log.data));
    case 'data:null':
      return null;
    case 'topics:two':
      return log.topics.slice(0, 2);
    case 'topics:four':
      return [...log.topics, pad(UNWATCHED)];
    case 'topics:string':
      return log.topics.join(',');
    case 'topics:null':
      return null;
    case 'topics:empty':
      return [];
    case 'topic0:approval':
      return [APPROVAL_TOPIC, ...log.topics.slice(1)];
    case 'topic0:zero':
      return [`0x${'0'.repeat(64)}`, ...log.topics.slice(1)];
    case 'topic2:dirtyPadding':
      return [log.topics[0], log.topics[1], `0x${'ff'.repeat(12)}${log.topics[2]!.slice(26)}`];
    case 'topic2:unpadded':
      return [log.topics[0], log.topics[1], `0x${log.topics[2]!.slice(26)}`];
    case 'topic2:nonHex':
      return [log.topics[0], log.topics[1], `0x${'zz'.repeat(12)}${log.topics[2]!.slice(26)}`];
    case 'topic2:unwatched':
      return [log.topics[0], log.topics[1], pad(UNWATCHED)];
    case 'topic2:upper':
      return [log.topics[0], log.topics[1], `0x${log.topics[2]!.slice(2).toUpperCase()}`];
    case 'address:otherContract':
      return OTHER_CONTRACT;
    case 'address:nonHex':
      return `0x${'zz'.repeat(20)}`;
    case 'address:upper':
      return `0x${log.address.slice(2).toUpperCase()}`;
    case 'blockNumber:nonHex':
    case 'logIndex:nonHex':
      return '0xzz';
    case 'blockNumber:decimal':
      return String(Number(log.blockNumber));
    case 'blockNumber:huge':
    case 'logIndex:huge':
      return `0x${'f'.repeat(20)}`;
    case 'blockNumber:aheadOfRange':
      return hex(asked.to + 5);
    case 'blockNumber:beforeRange':
      return hex(Math.max(0, asked.from - 1));
    case 'blockNumber:negative':
    case 'logIndex:negative':
      return '-0x1';
    case 'blockNumber:number':
      return Number(log.blockNumber);
    case 'logIndex:number':
      return Number(log.logIndex);
    case 'blockNumber:fraction':
    case 'logIndex:fraction':
      return '0x1.8';
    case 'transactionHash:short':
    case 'blockHash:short':
      return '0x1234';
    case 'transactionHash:nonHex':
    case 'blockHash:nonHex':
      return `0x${'zz'.repeat(32)}`;
    case 'transactionHash:long':
      return `${log.transactionHash}00`;
    case 'transactionHash:number':
    case 'blockHash:number':
      return 12345;
    case 'transactionHash:upper':
      return `0x${log.transactionHash.slice(2).toUpperCase()}`;
    case 'removed:true':
      return true;
    default:
      if (lie === 'missing') return undefined;
      if (field === 'data') return lie; // '0x', '', '0x01'
      throw new Error(`no lie ${field}:${lie}`);
  }
}

/** A transaction hash anvil does not have. */
const fabricatedTx = (txHash: string) => `0x${'ee'.repeat(4)}${txHash.slice(10)}`;

function lyingLog(log: RpcLogJson, field: LogField, lie: string, asked: { from: number; to: number }, mode: LogMode = 'replace'): Record<string, unknown> {
  const out: Record<string, unknown> = { ...log, topics: [...log.topics], ...(mode === 'extra' ? { transactionHash: fabricatedTx(log.transactionHash) } : {}) };
  const value = lieValue(field, lie, log, asked);
  const key = field === 'topic0' || field === 'topic2' ? 'topics' : field;
  if (value === undefined) delete out[key];
  else out[key] = value;
  return out;
}



const isMethod = (x: Exchange, method: string) => !x.batch && x.calls[0]?.method === method;

interface LogsTarget {
  /** The real transfer's log as anvil's eth_getLogs shows it. */
  real: RpcLogJson;
}

/** The eth_getLogs rewrite of a LogsLie; other methods pass through. */
function logsRewrite(lie: LogsLie, target: LogsTarget): Rewrite {
  return async (x) => {
    if (!isMethod(x, 'eth_getLogs')) return null;
    const call = x.calls[0]!;
    if (lie.kind === 'transport') return transportReply(lie.transport, x);
    if (lie.kind === 'result') {
      const result = { null: null, object: {}, string: '0x', number: 7, arrayOfNull: [null], arrayOfStrings: ['0xdeadbeef'], nested: [[target.real]] }[lie.result];
      return { body: answer(call, result) };
    }
    const honest = JSON.parse((await x.forward()).text) as { result?: RpcLogJson[] };
    if (!Array.isArray(honest.result)) return null;
    const logs: unknown[] = honest.result;
    if (lie.kind === 'reorder') {
      const both = { duplicate: [...logs, ...logs], reverse: [...logs].reverse(), duplicateReversed: [...logs, ...[...logs].reverse()] }[lie.how];
      return { body: answer(call, both) };
    }
    const filter = (call.params?.[0] ?? {}) as { fromBlock: string; toBlock: string; topics?: unknown[] };
    const recipients = (filter.topics?.[2] ?? []) as string[];
    // Only the request that asked about the real transfer's recipient gets the lie.
    if (!recipients.includes(target.real.topics[2]!)) return null;
    const asked = { from: Number(filter.fromBlock), to: Number(filter.toBlock) };
    const bad = lyingLog(target.real, lie.field, lie.lie, asked, lie.mode);
    const same = (l: unknown) => (l as RpcLogJson).transactionHash === target.real.transactionHash && (l as RpcLogJson).logIndex === target.real.logIndex;
    const has = logs.some(same);
    if (lie.mode === 'replace') {
      if (!has) return null; // the range asked does not hold the transfer: nothing to replace
      return { body: answer(call, logs.map((l) => (same(l) ? bad : l))) };
    }
    return { body: answer(call, lie.mode === 'twin' && !has ? logs : [...logs, bad]) };
  };
}

const arbLogsLie: fc.Arbitrary<LogsLie> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...TRANSPORT).map((transport) => ({ kind: 'transport' as const, transport })) },
  { weight: 1, arbitrary: fc.constantFrom('null', 'object', 'string', 'number', 'arrayOfNull', 'arrayOfStrings', 'nested').map((result) => ({ kind: 'result' as const, result })) },
  { weight: 1, arbitrary: fc.constantFrom('duplicate', 'reverse', 'duplicateReversed').map((how) => ({ kind: 'reorder' as const, how })) },
  {
    weight: 8,
    arbitrary: fc
      .constantFrom(...(Object.keys(LOG_FIELD_LIES) as LogField[]))
      .chain((field) => fc.record({ kind: fc.constant('field' as const), field: fc.constant(field), lie: fc.constantFrom(...LOG_FIELD_LIES[field]), mode: fc.constantFrom<LogMode>('replace', 'twin', 'extra') }))
      .filter((l) => !(l.mode === 'extra' && HARMLESS.has(`${l.field}:${l.lie}`))),
  },
);

// Head lies (eth_blockNumber): backwards, ahead, or not a QUANTITY.
type HeadLie = { kind: 'transport'; transport: Transport } | { kind: 'back'; blocks: number } | { kind: 'ahead'; blocks: number } | { kind: 'value'; value: 'maxSafe' | 'huge' | 'decimal' | 'nonHex' | 'empty0x' | 'null' | 'number' | 'negative' | 'object' };

/** Lies of eth_blockNumber, which the gateway no longer reads (defect 6, fixed: the head is the latest block, read whole). */
function blockNumberRewrite(lie: HeadLie): Rewrite {
  return async (x) => {
    if (!isMethod(x, 'eth_blockNumber')) return null;
    if (lie.kind === 'transport') return transportReply(lie.transport, x);
    const call = x.calls[0]!;
    const real = Number(JSON.parse((await x.forward()).text).result);
    if (lie.kind === 'back') return { body: answer(call, hex(Math.max(0, real - lie.blocks))) };
    if (lie.kind === 'ahead') return { body: answer(call, hex(real + lie.blocks)) };
    const value = { maxSafe: hex(Number.MAX_SAFE_INTEGER), huge: `0x${'f'.repeat(20)}`, decimal: String(real), nonHex: '0xzz', empty0x: '0x', null: null, number: real, negative: '-0x1', object: {} }[lie.value];
    return { body: answer(call, value) };
  };
}

/**
 * Lies of the head as the gateway reads it: eth_getBlockByNumber("latest"), whose number is
 * rewritten (or the whole answer replaced). A well-formed latest block AHEAD of the chain is not
 * generated: it is the endpoint's word and is believed (ADR 0007), like a made-up log.
 */
function headRewrite(lie: HeadLie): Rewrite {
  return async (x) => {
    if (!isMethod(x, 'eth_getBlockByNumber') || x.calls[0]!.params?.[0] !== 'latest') return null;
    if (lie.kind === 'transport') return transportReply(lie.transport, x);
    const call = x.calls[0]!;
    const block = (JSON.parse((await x.forward()).text) as { result: Record<string, unknown> }).result;
    const real = Number(block.number);
    if (lie.kind === 'back') return { body: answer(call, { ...block, number: hex(Math.max(0, real - lie.blocks)) }) };
    if (lie.kind === 'ahead') return { body: answer(call, { ...block, number: hex(real + lie.blocks) }) };
    const value = { maxSafe: hex(Number.MAX_SAFE_INTEGER), huge: `0x${'f'.repeat(20)}`, decimal: String(real), nonHex: '0xzz', empty0x: '0x', null: null, number: real, negative: '-0x1', object: {} }[lie.value];
    return { body: answer(call, { ...block, number: value }) };
  };
}

const arbHeadLie: fc.Arbitrary<HeadLie> = fc.oneof(
  fc.constantFrom(...TRANSPORT).map((transport) => ({ kind: 'transport' as const, transport })),
  fc.integer({ min: 1, max: 40 }).map((blocks) => ({ kind: 'back' as const, blocks })),
  fc.constantFrom('maxSafe', 'huge', 'decimal', 'nonHex', 'empty0x', 'null', 'number', 'negative', 'object').map((value) => ({ kind: 'value' as const, value })),
);

// Block lies (eth_getBlockByNumber): not a block, or a hash that changes (a flapping reorg).
type BlockLie =
  | { kind: 'transport'; transport: Transport }
  | { kind: 'malformed'; block: 'null' | 'emptyObject' | 'hashNull' | 'hashNumber' | 'hashNonHex' | 'hashShort' | 'string' | 'array' }
  /** Well-formed hashes that are not the canonical one: a reorganisation as far as anyone can tell (by design). */
  | { kind: 'reorg'; how: 'flapping' | 'stableOther' | 'logBlockHash' };

function blockRewrite(lie: BlockLie, target: LogsTarget): Rewrite {
  let flips = 0;
  return async (x) => {
    if (lie.kind === 'reorg' && lie.how === 'logBlockHash') {
      // The log names another block hash than the block at its height has.
      if (!isMethod(x, 'eth_getLogs')) return null;
      const honest = JSON.parse((await x.forward()).text) as { result?: RpcLogJson[] };
      if (!Array.isArray(honest.result)) return null;
      return { body: answer(x.calls[0]!, honest.result.map((l) => (l.transactionHash === target.real.transactionHash ? { ...l, blockHash: FAKE_HASH } : l))) };
    }
    if (!isMethod(x, 'eth_getBlockByNumber')) return null;
    if (lie.kind === 'transport') return transportReply(lie.transport, x);
    const call = x.calls[0]!;
    const honest = JSON.parse((await x.forward()).text) as { result: Record<string, unknown> | null };
    if (lie.kind === 'reorg') {
      flips += 1;
      const hash = lie.how === 'flapping' ? `0x${flips.toString(16).padStart(8, '0')}${'cd'.repeat(28)}` : FAKE_HASH;
      return { body: answer(call, honest.result ? { ...honest.result, hash } : null) };
    }
    const block = honest.result ?? {};
    const value = { null: null, emptyObject: {}, hashNull: { ...block, hash: null }, hashNumber: { ...block, hash: 123 }, hashNonHex: { ...block, hash: `0x${'zz'.repeat(32)}` }, hashShort: { ...block, hash: '0x12' }, string: '0x1', array: [] }[lie.block];
    return { body: answer(call, value) };
  };
}

const arbBlockLie: fc.Arbitrary<BlockLie> = fc.oneof(
  fc.constantFrom(...TRANSPORT).map((transport) => ({ kind: 'transport' as const, transport })),
  fc.constantFrom('null', 'emptyObject', 'hashNull', 'hashNumber', 'hashNonHex', 'hashShort', 'string', 'array').map((block) => ({ kind: 'malformed' as const, block })),
  fc.constantFrom('flapping', 'stableOther', 'logBlockHash').map((how) => ({ kind: 'reorg' as const, how })),
);

// Balance lies (eth_getBalance, sent as JSON-RPC batches): a batch answer out of order, short,
// padded, with an error inside, or values that are not QUANTITYs.
type BalanceLie = { kind: 'transport'; transport: Transport } | { kind: 'batch'; how: 'reverse' | 'rotate' | 'duplicateFirst' | 'dropLast' | 'errorEntry' | 'notArray' | 'decimal' | 'nonHex' | 'nullResults' | 'empty' };

function balanceRewrite(lie: BalanceLie): Rewrite {
  return async (x) => {
    if (!x.calls.some((c) => c.method === 'eth_getBalance')) return null;
    if (lie.kind === 'transport') return transportReply(lie.transport, x);
    const honest = JSON.parse((await x.forward()).text) as unknown;
    const items = (Array.isArray(honest) ? honest : [honest]) as { id: unknown; result?: string }[];
    let out: unknown;
    switch (lie.how) {
      case 'reverse':
        out = [...items].reverse();
        break;
      case 'rotate':
        out = [...items.slice(1), ...items.slice(0, 1)];
        break;
      case 'duplicateFirst':
        out = [items[0], ...items];
        break;
      case 'dropLast':
        out = items.slice(0, -1);
        break;
      case 'errorEntry':
        out = items.map((it, i) => (i === 0 ? { jsonrpc: '2.0', id: it.id, error: { code: -32000, message: 'header not found' } } : it));
        break;
      case 'notArray':
        out = items[0];
        break;
      case 'decimal':
        out = items.map((it) => ({ ...it, result: BigInt(it.result ?? '0x0').toString(10) }));
        break;
      case 'nonHex':
        out = items.map((it) => ({ ...it, result: '0xzz' }));
        break;
      case 'nullResults':
        out = items.map((it) => ({ ...it, result: null }));
        break;
      case 'empty':
        out = [];
        break;
    }
    return { body: JSON.stringify(out) };
  };
}

const arbBalanceLie: fc.Arbitrary<BalanceLie> = fc.oneof(
  fc.constantFrom(...TRANSPORT).map((transport) => ({ kind: 'transport' as const, transport })),
  fc.constantFrom('reverse', 'rotate', 'duplicateFirst', 'dropLast', 'errorEntry', 'notArray', 'decimal', 'nonHex', 'nullResults', 'empty').map((how) => ({ kind: 'batch' as const, how })),
);

// ---------------------------------------------------------------------------------------------

describe('the chain scan facing a hostile JSON-RPC endpoint (sqlite)', () => {
  let chain: TestChain;
  let usdt: Address;
  let t: TestGateway;
  /** In front of anvil for Polygon (4): token transfers (eth_getLogs). */
  let tokenProxy: HostileProxy;
  /** In front of anvil for Ethereum (2): native ETH receipts (eth_getBalance batches). */
  let nativeProxy: HostileProxy;
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    chain = await startTestChain();
    usdt = await chain.deployToken({ name: 'Tether USD (test)', symbol: 'USDT', decimals: 6 });
    tokenProxy = await startHostileProxy(chain.node.rpcUrl);
    nativeProxy = await startHostileProxy(chain.node.rpcUrl);
    const config = deploymentOn(chain, {
      [TOKEN_NET]: { rpcUrls: [tokenProxy.url], confirmations: CONFIRMATIONS, contracts: { USDT: usdt } },
      [NATIVE_NET]: { rpcUrls: [nativeProxy.url], confirmations: CONFIRMATIONS },
    });
    t = await startTestGateway({ config });
    // First scans (honest): the cursors exist from here on.
    await t.gateway.scanChain(TOKEN_NET);
    await t.gateway.scanChain(NATIVE_NET);
  }, 60_000);
  afterEach(() => {
    tokenProxy?.set(null);
    nativeProxy?.set(null);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await t?.close();
    await tokenProxy?.close();
    await nativeProxy?.close();
    await chain?.stop();
  });

  // --- the truth, read from anvil directly --------------------------------------------------

  const realHead = async () => Number(await rpc(chain, 'eth_blockNumber'));

  /** A Transfer as anvil has it, in the reader's own shape. */
  type RealTransfer = ChainTransfer;

  /** Every Transfer log of the test token on anvil. */
  async function realTransfers(): Promise<RealTransfer[]> {
    const logs = (await rpc(chain, 'eth_getLogs', [{ fromBlock: '0x0', toBlock: 'latest', address: usdt, topics: [TRANSFER_TOPIC] }])) as RpcLogJson[];
    return logs.map((l) => ({
      txHash: l.transactionHash.toLowerCase(),
      logIndex: Number(l.logIndex),
      blockNumber: Number(l.blockNumber),
      blockHash: l.blockHash.toLowerCase(),
      token: l.address.toLowerCase(),
      to: `0x${l.topics[2]!.slice(26)}`.toLowerCase(),
      amount: BigInt(l.data),
    }));
  }

  /** The log of `txHash` as anvil's eth_getLogs answers it (the template of the lies). */
  async function realLog(txHash: string): Promise<RpcLogJson> {
    const receipt = (await rpc(chain, 'eth_getTransactionReceipt', [txHash])) as { blockNumber: string };
    const logs = (await rpc(chain, 'eth_getLogs', [{ fromBlock: receipt.blockNumber, toBlock: receipt.blockNumber, address: usdt, topics: [TRANSFER_TOPIC] }])) as RpcLogJson[];
    const log = logs.find((l) => l.transactionHash === txHash);
    if (!log) throw new Error(`no log for ${txHash}`);
    return log;
  }

  // --- what the gateway stored ---------------------------------------------------------------

  const db = () => t.gateway.db.kysely;
  const cursor = async (network: string) =>
    Number((await db().selectFrom('chain_cursors').select('next_block').where('network', '=', network).executeTakeFirstOrThrow()).next_block);
  const paymentRows = async (network: string) =>
    (await db().selectFrom('payments').selectAll().where('network', '=', network).execute()).map((p) => ({
      ...p,
      amount: String(p.amount),
      block_number: Number(p.block_number),
      log_index: Number(p.log_index),
      created_at: Number(p.created_at),
      updated_at: Number(p.updated_at),
    }));
  type Row = Awaited<ReturnType<typeof paymentRows>>[number];
  const orderRow = (no: string) =>
    db().selectFrom('orders').select(['pay_status', 'pay_exception', 'seen_amount', 'final_amount']).where('payment_order_no', '=', no).executeTakeFirstOrThrow();

  /**
   * A scan pass through the gateway (as the watcher runs it). It either completes or fails with
   * an Error: never anything else, never an unhandled rejection.
   */
  async function pass(network: string): Promise<{ ok: boolean; error?: string }> {
    try {
      await t.gateway.scanChain(network);
      return { ok: true };
    } catch (err) {
      expect(err, 'a failed pass rejects with an Error').toBeInstanceOf(Error);
      return { ok: false, error: (err as Error).message.split('\n')[0] };
    }
  }

  /**
   * Honest again: one pass, the network's confirmations mined, two passes. (A native receipt
   * first seen in the first honest pass counts its confirmations from there: scan-native.ts.)
   */
  async function honestly(network: string) {
    expect((await pass(network)).ok, 'the first honest pass').toBe(true);
    await mine(chain, CONFIRMATIONS);
    for (let i = 0; i < 2; i += 1) expect((await pass(network)).ok, 'an honest pass').toBe(true);
  }

  /** A row as a real transfer would be stored: identity and place on the chain. */
  const rowKey = (r: Row) => `${r.tx_hash}|${r.log_index}`;
  const factOf = (r: Row) => ({ txHash: r.tx_hash, logIndex: r.log_index, blockNumber: r.block_number, blockHash: r.block_hash, to: r.address, amount: r.amount, currency: r.currency });
  const factOfReal = (l: RealTransfer) => ({ txHash: l.txHash, logIndex: l.logIndex, blockNumber: l.blockNumber, blockHash: l.blockHash, to: l.to, amount: l.amount.toString(), currency: 'USDT' });

  /**
   * The invariants that hold after any pass, lied to or not, for the token network:
   * - every row written or moved since `since` is a real transfer, exactly as anvil has it;
   * - the order shows no money anvil does not show (seen: on chain; final: with the confirmations);
   * - the cursor is at most the block after anvil's head, and every real transfer to a watched
   *   address below the cursor (since `fromBlock`) is stored exactly.
   */
  async function tokenInvariants(ctx: { since: number; fromBlock: number; order: PlacedOrder; tx: string; allowRevertedRows: boolean }, label: string) {
    const [head, real, rows, next] = await Promise.all([realHead(), realTransfers(), paymentRows(TOKEN_NET), cursor(TOKEN_NET)]);
    const byKey = new Map(real.map((l) => [`${l.txHash}|${l.logIndex}`, l]));
    // This case's rows: new ones, the order's, and the real transfer's (rows a failed earlier case left are its own report).
    const ours = rows.filter((r) => r.created_at >= ctx.since || r.payment_order_no === ctx.order.paymentOrderNo || r.tx_hash === ctx.tx.toLowerCase());
    for (const r of ours) {
      const l = byKey.get(rowKey(r));
      // A well-formed block hash that is not anvil's is a reorganisation to the scanner (ADR 0007):
      // stored as the endpoint said, checked again on the next pass, never FINAL on its word alone.
      const hashLie = ctx.allowRevertedRows && r.status !== 'FINAL' ? { blockHash: r.block_hash } : {};
      expect(l && { ...factOfReal(l), ...hashLie }, `${label}: a stored payment that anvil does not have: ${JSON.stringify(factOf(r))}`).toEqual(factOf(r));
      if (!ctx.allowRevertedRows) expect(r.status, `${label}: a real transfer marked REVERTED: ${JSON.stringify(factOf(r))}`).not.toBe('REVERTED');
    }
    const mine = real.filter((l) => l.to === ctx.order.address.toLowerCase());
    const o = await orderRow(ctx.order.paymentOrderNo);
    const onChain = mine.reduce((s, l) => s + l.amount, 0n);
    const confirmed = mine.filter((l) => head - l.blockNumber + 1 >= CONFIRMATIONS).reduce((s, l) => s + l.amount, 0n);
    expect(BigInt(o.seen_amount), `${label}: seen amount beyond what anvil shows`).toBeLessThanOrEqual(onChain);
    expect(BigInt(o.final_amount), `${label}: final amount beyond what anvil shows with ${CONFIRMATIONS} confirmations`).toBeLessThanOrEqual(confirmed);
    expect(next, `${label}: the cursor passed anvil's head (${head})`).toBeLessThanOrEqual(head + 1);
    const watched = new Set((await t.gateway.store.depositAddresses.listWatched(TOKEN_NET, t.clock.seconds())).map((d) => d.address));
    const stored = new Map(rows.map((r) => [rowKey(r), r]));
    for (const l of real.filter((l) => l.blockNumber >= ctx.fromBlock && l.blockNumber < next && watched.has(l.to))) {
      const r = stored.get(`${l.txHash}|${l.logIndex}`);
      const hashLie = r && ctx.allowRevertedRows && r.status !== 'FINAL' ? { blockHash: r.block_hash } : {};
      expect(r && factOf(r), `${label}: the cursor (${next}) moved over block ${l.blockNumber} without storing its transfer`).toEqual({ ...factOfReal(l), ...hashLie });
    }
  }

  /** After a failed case the cursor may be past anvil's head: put it back, so later cases start clean (the failure is already reported). */
  async function repairCursor(network: string) {
    const head = await realHead();
    if ((await cursor(network)) > head + 1) await db().updateTable('chain_cursors').set({ next_block: head + 1 }).where('network', '=', network).execute();
  }

  interface TokenCase<L> {
    lies: L[];
    /** An honest pass sees the transfer before the lies (then they meet an unfinal payment). */
    seenFirst: boolean;
  }

  /**
   * One generated case on the token network: a fresh order, a real transfer of exactly the amount
   * due, `lies` (one per pass), then honesty: a few blocks and at most three passes must leave the
   * order PAID with that transfer counted once, exactly.
   */
  async function tokenCase<L>(c: TokenCase<L>, rewriteOf: (lie: L, target: LogsTarget) => Rewrite, opts: { reorgAllowed: (lie: L) => boolean } = { reorgAllowed: () => false }) {
    await repairCursor(TOKEN_NET);
    t.clock.advance(1);
    const order = await placeOrder(t, { amount: '1.25' });
    expect((await pass(TOKEN_NET)).ok).toBe(true);
    const since = t.clock.nowMs();
    const fromBlock = (await realHead()) + 1;
    const tx = (await chain.pay(usdt, order.address, order.amountBase)).transactionHash;
    const target = { real: await realLog(tx) };
    if (c.seenFirst) {
      expect((await pass(TOKEN_NET)).ok).toBe(true);
      // A new block: the hostile passes have a range to read as well as a transfer to re-check.
      await mine(chain, 1);
    }
    const reorgAllowed = c.lies.some(opts.reorgAllowed);
    const ctx = { since, fromBlock, order, tx, allowRevertedRows: reorgAllowed };
    for (const [i, lie] of c.lies.entries()) {
      // Each later hostile pass gets a new block too (a pass that completed left nothing to read).
      if (i > 0) await mine(chain, 1);
      tokenProxy.tampered = 0;
      tokenProxy.set(rewriteOf(lie, target));
      const r = await pass(TOKEN_NET);
      tokenProxy.set(null);
      coverage.passes += 1;
      if (tokenProxy.tampered > 0) coverage.tampered += 1;
      await tokenInvariants(ctx, `after hostile pass ${i + 1} (${JSON.stringify(lie)}, ${tokenProxy.tampered} answers rewritten, ${r.ok ? 'completed' : `failed: ${r.error}`})`);
    }
    expect(unhandled, 'unhandled rejections').toEqual([]);
    await honestly(TOKEN_NET);
    await tokenInvariants(ctx, 'after honesty returned');
    const rows = (await paymentRows(TOKEN_NET)).filter((r) => r.payment_order_no === order.paymentOrderNo);
    const real = (await realTransfers()).find((l) => l.txHash === tx.toLowerCase())!;
    expect(rows.map(factOf), 'the real transfer, stored once, exactly').toEqual([factOfReal(real)]);
    expect(rows[0]!.status).toBe('FINAL');
    const o = await orderRow(order.paymentOrderNo);
    expect({ ...o, pay_exception: reorgAllowed && o.pay_exception === 'REVERTED' ? null : o.pay_exception }, 'the order as a never-lied-to gateway has it').toEqual({
      pay_status: 'PAID',
      pay_exception: null,
      seen_amount: order.amountBase.toString(),
      final_amount: order.amountBase.toString(),
    });
    const notes = await notifyTypes(t, order.paymentOrderNo);
    expect(notes.filter((n) => !(reorgAllowed && n === 'ORDER_EXCEPTION'))).toEqual(['ORDER_PAID']);
  }

  // --- native coin (ETH on network 2): balances read in JSON-RPC batches -----------------------

  const balanceAt = async (address: string, block: number) => BigInt((await rpc(chain, 'eth_getBalance', [address, hex(block)])) as string);
  const blockHashAt = async (block: number) => ((await rpc(chain, 'eth_getBlockByNumber', [hex(block), false])) as { hash: string } | null)?.hash.toLowerCase() ?? null;

  /**
   * The invariants of the native network after any pass: each receipt row of this case names a
   * real block; an address's counted receipts never exceed its balance at anvil's head, nor its
   * final ones the balance with the confirmations; the order shows no more than that.
   */
  async function nativeInvariants(ctx: { since: number; order: PlacedOrder }, label: string) {
    const head = await realHead();
    const rows = (await paymentRows(NATIVE_NET)).filter((r) => r.created_at >= ctx.since || r.payment_order_no === ctx.order.paymentOrderNo);
    for (const r of rows) {
      expect(r.tx_hash, `${label}: a native row that is not a balance receipt`).toMatch(/^balance:0x[0-9a-f]{40}:\d+$/);
      expect(r.block_number, `${label}: a native row beyond anvil's head`).toBeLessThanOrEqual(head);
      expect(await blockHashAt(r.block_number), `${label}: a native row in a block anvil does not have`).toBe(r.block_hash);
    }
    // Anvil has no reorganisation here and nothing leaves these addresses: a receipt is a step
    // of the balance (the counted receipts up to it add up to the balance at its block), and none
    // is ever reverted.
    const addresses = [...new Set(rows.map((r) => r.address))];
    for (const a of addresses) {
      const all = (await paymentRows(NATIVE_NET)).filter((r) => r.address === a).sort((x, y) => x.block_number - y.block_number);
      expect(all.filter((r) => r.status === 'REVERTED').map((r) => [r.tx_hash, r.amount]), `${label}: a receipt at ${a} reverted though anvil never reorganised`).toEqual([]);
      let credited = 0n;
      for (const r of all) {
        credited += BigInt(r.amount);
        expect(credited, `${label}: receipt ${r.tx_hash} of ${r.amount} is not what the balance of ${a} did`).toBe(await balanceAt(a, r.block_number));
      }
      const counted = rows.filter((r) => r.address === a && r.status !== 'REVERTED');
      const sum = counted.reduce((s, r) => s + BigInt(r.amount), 0n);
      const final = counted.filter((r) => r.status === 'FINAL').reduce((s, r) => s + BigInt(r.amount), 0n);
      expect(sum, `${label}: receipts counted at ${a} beyond its balance on anvil`).toBeLessThanOrEqual(await balanceAt(a, head));
      expect(final, `${label}: final receipts at ${a} beyond its balance ${CONFIRMATIONS} blocks deep`).toBeLessThanOrEqual(await balanceAt(a, Math.max(0, head - CONFIRMATIONS + 1)));
    }
    const o = await orderRow(ctx.order.paymentOrderNo);
    const address = ctx.order.address.toLowerCase();
    expect(BigInt(o.seen_amount), `${label}: seen amount beyond the balance on anvil`).toBeLessThanOrEqual(await balanceAt(address, head));
    expect(BigInt(o.final_amount), `${label}: final amount beyond the balance ${CONFIRMATIONS} blocks deep`).toBeLessThanOrEqual(await balanceAt(address, Math.max(0, head - CONFIRMATIONS + 1)));
    expect(await cursor(NATIVE_NET), `${label}: the cursor passed anvil's head`).toBeLessThanOrEqual(head + 1);
  }

  let nativeCases = 0;

  /** One generated case on the native network: a fresh ETH order paid exactly, `lies` (one per pass), then honesty. */
  async function nativeCase(c: TokenCase<BalanceLie>) {
    await repairCursor(NATIVE_NET);
    t.clock.advance(1);
    // Every case pays a different amount: a batch answer that hands one address another's balance shows.
    nativeCases += 1;
    const order = await placeOrder(t, { amount: (0.01 + nativeCases / 10_000).toFixed(4), currency: 'ETH', network: NATIVE_NET });
    expect((await pass(NATIVE_NET)).ok).toBe(true);
    const since = t.clock.nowMs();
    await chain.pay(NATIVE_COIN, order.address, order.amountBase);
    if (c.seenFirst) {
      expect((await pass(NATIVE_NET)).ok).toBe(true);
      await mine(chain, 1);
    }
    const ctx = { since, order };
    for (const [i, lie] of c.lies.entries()) {
      // Each later hostile pass gets a new block too (a pass that completed left nothing to read).
      if (i > 0) await mine(chain, 1);
      nativeProxy.tampered = 0;
      nativeProxy.set(balanceRewrite(lie));
      const r = await pass(NATIVE_NET);
      nativeProxy.set(null);
      coverage.passes += 1;
      if (nativeProxy.tampered > 0) coverage.tampered += 1;
      await nativeInvariants(ctx, `after hostile pass ${i + 1} (${JSON.stringify(lie)}, ${nativeProxy.tampered} answers rewritten, ${r.ok ? 'completed' : `failed: ${r.error}`})`);
    }
    expect(unhandled, 'unhandled rejections').toEqual([]);
    await honestly(NATIVE_NET);
    await nativeInvariants(ctx, 'after honesty returned');
    const rows = (await paymentRows(NATIVE_NET)).filter((r) => r.payment_order_no === order.paymentOrderNo);
    expect(rows.map((r) => ({ amount: r.amount, status: r.status })), `one receipt of exactly the amount paid: ${JSON.stringify(rows.map((r) => [r.tx_hash, r.amount, r.status]))}`).toEqual([{ amount: order.amountBase.toString(), status: 'FINAL' }]);
    expect(await orderRow(order.paymentOrderNo)).toEqual({ pay_status: 'PAID', pay_exception: null, seen_amount: order.amountBase.toString(), final_amount: order.amountBase.toString() });
    expect(await notifyTypes(t, order.paymentOrderNo)).toEqual(['ORDER_PAID']);
  }

  /** Hostile passes of the current property, and how many of them met a rewritten answer (the lie reached the gateway). */
  const coverage = { passes: 0, tampered: 0 };
  /** Runs a property; then checks that enough of its hostile passes were really lied to. */
  async function property<T>(arb: fc.Arbitrary<T>, run: (c: T) => Promise<void>, seed: number, numRuns: number, minShare: number) {
    coverage.passes = 0;
    coverage.tampered = 0;
    await fc.assert(fc.asyncProperty(arb, run), fuzzOptions(seed, numRuns, { endOnFailure: true }));
    expect(coverage.tampered, `hostile passes that met a rewritten answer, of ${coverage.passes}`).toBeGreaterThanOrEqual(Math.ceil(coverage.passes * minShare));
  }
  const caseOf = <L>(lie: fc.Arbitrary<L>, passes = 2) => fc.record({ lies: fc.array(lie, { minLength: 1, maxLength: passes }), seenFirst: fc.boolean() });

  // --- generated cases -------------------------------------------------------------------------

  it('eth_getLogs answers that are not a usable result (HTTP 500, dropped, not JSON, truncated, empty, JSON-RPC errors, slow, not an array, logs duplicated or out of order) fail the pass cleanly or change nothing', async () => {
    const unusable = arbLogsLie.filter((l) => l.kind !== 'field');
    await property(caseOf(unusable), (c) => tokenCase(c, logsRewrite), 0x10c1, 50, 0.9);
  }, 60_000);

  it('eth_getLogs logs with a field no node sends for the filter asked (data not one 32-byte word, topics, recipient, contract, block, index, hashes, removed) are never recorded and never let the cursor pass the real transfer', async () => {
    const malformed = arbLogsLie.filter((l) => l.kind === 'field');
    await property(caseOf(malformed), (c) => tokenCase(c, logsRewrite), 0x10c2, 80, 0.5);
  }, 60_000);

  it('the head (the latest block) going backwards or malformed never moves the cursor past the chain, never makes a payment final early, and honesty recovers exactly', async () => {
    await property(caseOf(arbHeadLie), (c) => tokenCase(c, (lie) => headRewrite(lie)), 0x4ead, 50, 0.9);
  }, 60_000);

  it('eth_getBlockByNumber answering null, garbage or a flapping hash: nothing fabricated, the cursor holds, and honesty recovers exactly (a well-formed other hash may revert meanwhile: ADR 0007)', async () => {
    await property(caseOf(arbBlockLie), (c) => tokenCase(c, blockRewrite, { reorgAllowed: (l) => l.kind === 'reorg' }), 0xb10c, 50, 0.5);
  }, 60_000);

  it('eth_getBalance batch answers out of order, short, padded, with an error inside or values that are not QUANTITYs never credit a receipt anvil does not show, never revert one, and honesty recovers exactly', async () => {
    await property(caseOf(arbBalanceLie), (c) => nativeCase(c), 0xba1a, 50, 0.9);
  }, 60_000);

  // --- the watcher loop itself ----------------------------------------------------------------

  it('the chain watcher loop logs each failed pass and goes on: garbage answers never crash it nor surface as unhandled rejections, and the payment counts once honesty returns', async () => {
    const lines: { level: number; msg: string; err?: { message?: string } }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as (typeof lines)[number]);
        done();
      },
    });
    const logger = pino({ level: 'warn' }, sink);
    await repairCursor(TOKEN_NET);
    const order = await placeOrder(t, { amount: '2.5' });
    expect((await pass(TOKEN_NET)).ok).toBe(true);
    const before = await cursor(TOKEN_NET);
    const tx = (await chain.pay(usdt, order.address, order.amountBase)).transactionHash;
    const real = await realLog(tx);
    // Every eth_getLogs answer is garbage, another kind each time.
    const garbage: LogsLie[] = [
      { kind: 'transport', transport: 'http500' },
      { kind: 'transport', transport: 'nonJson' },
      { kind: 'transport', transport: 'truncated' },
      { kind: 'transport', transport: 'emptyBody' },
      { kind: 'transport', transport: 'rpcError' },
      { kind: 'transport', transport: 'drop' },
      { kind: 'result', result: 'null' },
      { kind: 'result', result: 'object' },
      { kind: 'field', field: 'data', lie: 'nonHex', mode: 'replace' },
    ];
    let k = 0;
    tokenProxy.set((x) => (isMethod(x, 'eth_getLogs') ? logsRewrite(garbage[k++ % garbage.length]!, { real })(x) : Promise.resolve(null)));
    // The gateway's own lease runs out: the loop's scanner takes the network.
    t.clock.advance(31);
    const network = t.gateway.config.deployment.networks.find((n) => n.id === TOKEN_NET)!;
    const deps: ScanDeps = { store: t.gateway.store, clock: t.clock, payments: t.gateway.payments, reader: evmChainReader([tokenProxy.url], { log: logger, timeoutMs: 2_000 }), network, log: logger, owner: 'hostile-loop', leaseMs: 30_000, maxBlocks: 2_000 };
    const loop = startChainWatcher(deps, logger, 5);
    const failed = () => lines.filter((l) => l.msg === 'worker tick failed');
    const ours = async () => (await paymentRows(TOKEN_NET)).filter((r) => r.payment_order_no === order.paymentOrderNo);
    try {
      await waitUntil('the loop to fail a pass on each kind of garbage', () => failed().length >= 2 * garbage.length, 20_000);
      expect(await ours()).toEqual([]);
      expect(await cursor(TOKEN_NET)).toBe(before);
      tokenProxy.set(null);
      await waitUntil('the transfer to be stored', async () => (await ours()).length > 0, 10_000);
      await mine(chain, CONFIRMATIONS);
      await waitUntil('the order to be PAID', async () => (await orderRow(order.paymentOrderNo)).pay_status === 'PAID', 10_000);
    } finally {
      tokenProxy.set(null);
      await loop.stop();
      t.clock.advance(31);
    }
    expect(unhandled).toEqual([]);
    expect(failed().every((l) => typeof l.err?.message === 'string' && l.err.message.length > 0)).toBe(true);
    expect((await ours()).map(factOf)).toEqual([factOfReal((await realTransfers()).find((l) => l.txHash === tx.toLowerCase())!)]);
    expect(await orderRow(order.paymentOrderNo)).toEqual({ pay_status: 'PAID', pay_exception: null, seen_amount: '2500000', final_amount: '2500000' });
    expect(await notifyTypes(t, order.paymentOrderNo)).toEqual(['ORDER_PAID']);
  }, 60_000);

  // --- trusted by design ------------------------------------------------------------------------

  it('trusted by design (ADR 0007): a well-formed Transfer log the endpoint makes up is recorded as it says, and its amount, 2^256-1, is kept exactly to the last unit', async () => {
    await repairCursor(TOKEN_NET);
    t.clock.advance(1);
    const order = await placeOrder(t, { amount: '1' });
    expect((await pass(TOKEN_NET)).ok).toBe(true);
    await mine(chain, 1);
    const head = await realHead();
    const { hash } = (await rpc(chain, 'eth_getBlockByNumber', [hex(head), false])) as { hash: string };
    const made: RpcLogJson = {
      address: usdt.toLowerCase(),
      topics: [TRANSFER_TOPIC, pad(UNWATCHED), pad(order.address)],
      data: `0x${MAX_UINT256.toString(16)}`,
      blockNumber: hex(head),
      blockHash: hash,
      transactionHash: `0x${'5a'.repeat(32)}`,
      transactionIndex: '0x0',
      logIndex: '0x0',
      removed: false,
    };
    tokenProxy.set(async (x) => {
      if (!isMethod(x, 'eth_getLogs')) return null;
      const filter = (x.calls[0]!.params?.[0] ?? {}) as { topics?: unknown[] };
      if (!((filter.topics?.[2] ?? []) as string[]).includes(pad(order.address))) return null;
      const honest = JSON.parse((await x.forward()).text) as { result: unknown[] };
      return { body: answer(x.calls[0]!, [...honest.result, made]) };
    });
    expect((await pass(TOKEN_NET)).ok).toBe(true);
    tokenProxy.set(null);
    await honestly(TOKEN_NET);
    const rows = (await paymentRows(TOKEN_NET)).filter((r) => r.payment_order_no === order.paymentOrderNo);
    expect(rows.map((r) => [r.tx_hash, r.amount, r.status])).toEqual([[made.transactionHash, MAX_UINT256.toString(), 'FINAL']]);
    expect(await orderRow(order.paymentOrderNo)).toEqual({ pay_status: 'PAID', pay_exception: 'OVERPAID', seen_amount: MAX_UINT256.toString(), final_amount: MAX_UINT256.toString() });
    const q = await queryOrder(t, order.requestNo);
    const units = MAX_UINT256.toString();
    expect(q).toMatchObject({ real_pay_amount: `${units.slice(0, -6)}.${units.slice(-6)}`, payments: [{ amount: `${units.slice(0, -6)}.${units.slice(-6)}`, tx_hash: made.transactionHash }] });
  });

  // --- the defects this file found, one pinned case each (titled by what the gateway used to do) ---

  /** A fresh order paid 1.25 USDT on anvil; the scan cursor stands just before the transfer. */
  async function paidOrder() {
    await repairCursor(TOKEN_NET);
    t.clock.advance(1);
    const order = await placeOrder(t, { amount: '1.25' });
    expect((await pass(TOKEN_NET)).ok).toBe(true);
    const tx = (await chain.pay(usdt, order.address, order.amountBase)).transactionHash;
    return { order, tx, real: await realLog(tx) };
  }

  /** One pass through `rewrite`, then honesty; what the order and its rows came to. */
  async function afterOneLie(rewrite: (real: RpcLogJson) => Rewrite) {
    const paid = await paidOrder();
    tokenProxy.set(rewrite(paid.real));
    const lied = await pass(TOKEN_NET);
    tokenProxy.set(null);
    await honestly(TOKEN_NET);
    const rows = (await paymentRows(TOKEN_NET)).filter((r) => r.payment_order_no === paid.order.paymentOrderNo || r.tx_hash === fabricatedTx(paid.tx.toLowerCase()));
    const real = (await realTransfers()).find((l) => l.txHash === paid.tx.toLowerCase())!;
    return { ...paid, lied, rows, realFact: factOfReal(real), state: await orderRow(paid.order.paymentOrderNo), notes: await notifyTypes(t, paid.order.paymentOrderNo) };
  }

  /** What a never-lied-to gateway shows for `paidOrder()` after honesty: the transfer once, exactly, and the order PAID. */
  function expectNeverLiedTo(r: Awaited<ReturnType<typeof afterOneLie>>) {
    expect(r.rows.map((row) => ({ ...factOf(row), status: row.status }))).toEqual([{ ...r.realFact, status: 'FINAL' }]);
    expect(r.state).toEqual({ pay_status: 'PAID', pay_exception: null, seen_amount: '1250000', final_amount: '1250000' });
    expect(r.notes).toEqual(['ORDER_PAID']);
  }

  const fieldLie = (field: LogField, lie: string, mode: LogMode) => (real: RpcLogJson) => logsRewrite({ kind: 'field', field, lie, mode }, { real });

  it.each([
    ['0x01 (one byte): stored as a 0.000001 USDT payment', '0x01'],
    ['0x (empty): stored as a payment of 0', '0x'],
    ['two words: stored as 1.25 * 2^256 + 1.25 USDT', 'long64'],
  ])('was defect 1 (chain-reader.ts tokenTransfers: data is not checked to be one 32-byte word) — a real transfer whose log data is %s, under its real key, never corrected', async (_name, lie) => {
    expectNeverLiedTo(await afterOneLie(fieldLie('data', lie, 'replace')));
  });

  it.each([
    ['removed: true', 'removed', 'true'],
    ['two topics', 'topics', 'two'],
    ['a recipient topic that is not the one asked for', 'topic2', 'unwatched'],
  ])('was defect 2 (chain-reader.ts tokenTransfers skips, scan-chain.ts still advances the cursor) — a real transfer answered with %s is skipped and its block passed: never counted', async (_name, field, lie) => {
    expectNeverLiedTo(await afterOneLie(fieldLie(field as LogField, lie, 'replace')));
  });

  it.each([
    ['from a contract that was not asked for: the real 1.25 USDT is recorded as an unknown token and counted for nothing', 'address', 'otherContract', 'replace'],
    ['of an Approval event (topic0 is not Transfer), made up: counted as 1.25 USDT more', 'topic0', 'approval', 'extra'],
    ['of a block after the range asked for: stored beyond the head and left unconfirmed; once the chain gets there, taken for a reorg (REVERTED) and the real payment lost', 'blockNumber', 'aheadOfRange', 'replace'],
  ])('was defect 3 (chain-reader.ts tokenTransfers: logs are not checked against the filter asked) — a log %s', async (_name, field, lie, mode) => {
    expectNeverLiedTo(await afterOneLie(fieldLie(field as LogField, lie, mode as LogMode)));
  });

  it.each([
    ['transactionHash 0x1234', 'transactionHash', 'short'],
    ['logIndex 0xfff…f (2^80-1)', 'logIndex', 'huge'],
  ])('was defect 4 (chain-reader.ts tokenTransfers: the key fields are not checked) — the real log and a copy with %s: the same transfer counted twice (OVERPAID 2.5 of 1.25)', async (_name, field, lie) => {
    expectNeverLiedTo(await afterOneLie(fieldLie(field as LogField, lie, 'twin')));
  });

  it('was defect 5 (chain-reader.ts tokenTransfers: blockHash is not checked) — a real transfer whose log says blockHash 0x1234 is stored and counted with that block hash (the next pass\'s re-check repairs it while unfinal; a FINAL row would keep it)', async () => {
    const { order, real } = await paidOrder();
    tokenProxy.set(fieldLie('blockHash', 'short', 'replace')(real));
    await pass(TOKEN_NET);
    tokenProxy.set(null);
    const rows = (await paymentRows(TOKEN_NET)).filter((r) => r.payment_order_no === order.paymentOrderNo);
    // Refusing the answer (no row yet) or storing the real hash are both right; a row with 0x1234 is not.
    expect(rows.filter((r) => r.block_hash !== real.blockHash).map((r) => ({ blockHash: r.block_hash, status: r.status }))).toEqual([]);
    await honestly(TOKEN_NET);
  });

  /**
   * A provider whose result cap refuses every eth_getLogs (so each block is read from its
   * receipts), with `lie` rewriting the eth_getBlockReceipts answer (null: honest).
   */
  const cappedWithReceipts = (lie: ((receipts: Record<string, unknown>[], real: RpcLogJson) => unknown) | null) => (real: RpcLogJson): Rewrite => async (x) => {
    if (x.call.method === 'eth_getLogs') return { body: JSON.stringify({ jsonrpc: '2.0', id: x.call.id, error: { code: -32005, message: 'query returned more than 10000 results' } }) };
    if (x.call.method !== 'eth_getBlockReceipts' || !lie) return null;
    const honest = JSON.parse((await x.forward()).text) as { result: Record<string, unknown>[] };
    return { body: answer(x.call, lie(honest.result, real)) };
  };
  /** The receipts with the real transfer's log changed by `change`. */
  const realLogChanged = (change: (log: Record<string, unknown>) => Record<string, unknown>) => (receipts: Record<string, unknown>[], real: RpcLogJson) =>
    receipts.map((r) => ({ ...r, logs: (r.logs as Record<string, unknown>[]).map((l) => (l.transactionHash === real.transactionHash && l.logIndex === real.logIndex ? change(l) : l)) }));

  it("a block the provider's result cap refuses is read from its receipts, exactly", async () => {
    const r = await afterOneLie(cappedWithReceipts(null));
    expect(r.lied.ok).toBe(true);
    expectNeverLiedTo(r);
  });

  it.each([
    ['receipts of another block (their block hash)', (receipts: Record<string, unknown>[]) => receipts.map((r) => ({ ...r, blockHash: `0x${'11'.repeat(32)}` }))],
    ['the transfer\'s log with another block hash', realLogChanged((l) => ({ ...l, blockHash: `0x${'22'.repeat(32)}` }))],
    ['the transfer\'s log with data that is not one 32-byte word', realLogChanged((l) => ({ ...l, data: '0x01' }))],
    ['the transfer\'s log with a short transaction hash', realLogChanged((l) => ({ ...l, transactionHash: '0x1234' }))],
    ['a receipt without its logs', (receipts: Record<string, unknown>[]) => receipts.map(({ logs: _logs, ...r }) => r)],
    ['null instead of the receipts', () => null],
  ])("a block the provider's result cap refuses, whose receipts come back as %s: nothing of it is recorded, the cursor holds, and honesty recovers exactly", async (_name, lie) => {
    const r = await afterOneLie(cappedWithReceipts(lie));
    expect(r.lied.ok).toBe(false);
    expect(r.lied.error).toMatch(/eth_getBlockReceipts/);
    expectNeverLiedTo(r);
  });

  /**
   * As cappedWithReceipts, from a provider without eth_getBlockReceipts (so each transaction's
   * receipt is read), with `lie` rewriting each eth_getTransactionReceipt answer (null: honest).
   */
  const cappedWithTxReceipts = (lie: ((receipt: Record<string, unknown>, real: RpcLogJson) => unknown) | null) => (real: RpcLogJson): Rewrite => async (x) => {
    if (x.call.method === 'eth_getLogs') return { body: JSON.stringify({ jsonrpc: '2.0', id: x.call.id, error: { code: -32005, message: 'query returned more than 10000 results' } }) };
    if (x.call.method === 'eth_getBlockReceipts') return { body: JSON.stringify({ jsonrpc: '2.0', id: x.call.id, error: { code: -32601, message: 'the method eth_getBlockReceipts does not exist/is not available' } }) };
    if (x.call.method !== 'eth_getTransactionReceipt' || !lie) return null;
    const honest = JSON.parse((await x.forward()).text) as { result: Record<string, unknown> };
    return { body: answer(x.call, honest.result.transactionHash === real.transactionHash ? lie(honest.result, real) : honest.result) };
  };
  const realTxLogChanged = (change: (log: Record<string, unknown>) => Record<string, unknown>) => (receipt: Record<string, unknown>, real: RpcLogJson) =>
    ({ ...receipt, logs: (receipt.logs as Record<string, unknown>[]).map((l) => (l.logIndex === real.logIndex ? change(l) : l)) });

  it("a block the provider's result cap refuses, from a provider without eth_getBlockReceipts, is read from its transactions' receipts, exactly", async () => {
    const r = await afterOneLie(cappedWithTxReceipts(null));
    expect(r.lied.ok).toBe(true);
    expectNeverLiedTo(r);
  });

  it.each([
    ['the receipt of another transaction', (receipt: Record<string, unknown>) => ({ ...receipt, transactionHash: `0x${'33'.repeat(32)}` })],
    ['a receipt of another block', (receipt: Record<string, unknown>) => ({ ...receipt, blockHash: `0x${'11'.repeat(32)}` })],
    ['the transfer\'s log with another block hash', realTxLogChanged((l) => ({ ...l, blockHash: `0x${'22'.repeat(32)}` }))],
    ['the transfer\'s log with data that is not one 32-byte word', realTxLogChanged((l) => ({ ...l, data: '0x01' }))],
    ['a receipt without its logs', ({ logs: _logs, ...receipt }: Record<string, unknown>) => receipt],
    ['null (the transaction unknown)', () => null],
  ])("a block the provider's result cap refuses, from a provider without eth_getBlockReceipts, whose transfer's receipt comes back as %s: nothing of it is recorded, the cursor holds, and honesty recovers exactly", async (_name, lie) => {
    const r = await afterOneLie(cappedWithTxReceipts(lie));
    expect(r.lied.ok).toBe(false);
    expect(r.lied.error).toMatch(/eth_getTransactionReceipt|reorganisation/);
    expectNeverLiedTo(r);
  });

  it('was defect 6a (scan-chain.ts: the head is not checked to exist before eth_getLogs up to it and the cursor move) — eth_blockNumber one block ahead moves the cursor past the chain: the next real transfer is never found', async () => {
    const first = await paidOrder();
    tokenProxy.set(blockNumberRewrite({ kind: 'ahead', blocks: 1 }));
    await pass(TOKEN_NET);
    tokenProxy.set(null);
    const head = await realHead();
    const next = await cursor(TOKEN_NET);
    // The transfer of another order, mined in the very next block.
    const second = await placeOrder(t, { amount: '2' });
    const tx = (await chain.pay(usdt, second.address, second.amountBase)).transactionHash;
    await honestly(TOKEN_NET);
    expect(next, `the cursor after the lie, with anvil's head at ${head}`).toBeLessThanOrEqual(head + 1);
    expect(await orderRow(second.paymentOrderNo)).toMatchObject({ pay_status: 'PAID', seen_amount: '2000000' });
    expect((await paymentRows(TOKEN_NET)).filter((r) => r.tx_hash === tx.toLowerCase())).toHaveLength(1);
    expect(await orderRow(first.order.paymentOrderNo)).toMatchObject({ pay_status: 'PAID' });
  });

  it('was defect 6b (scan-chain.ts: confirmations counted from an unchecked head) — eth_blockNumber 5 blocks ahead makes a transfer with 1 real confirmation FINAL: the order PAID, ORDER_PAID sent and its settlement scheduled at once', async () => {
    const { order } = await paidOrder();
    tokenProxy.set(blockNumberRewrite({ kind: 'ahead', blocks: 5 }));
    await pass(TOKEN_NET);
    tokenProxy.set(null);
    const rows = (await paymentRows(TOKEN_NET)).filter((r) => r.payment_order_no === order.paymentOrderNo);
    const head = await realHead();
    expect(rows.filter((r) => r.status === 'FINAL').map((r) => ({ realConfirmations: head - r.block_number + 1, status: r.status }))).toEqual([]);
    const state = await orderRow(order.paymentOrderNo);
    expect({ paid: state.pay_status === 'PAID', final: state.final_amount }).toEqual({ paid: false, final: '0' });
    await honestly(TOKEN_NET);
  });

  it('was defect 7 (chain-reader.ts balances over viem batching: a batch answer is matched to the calls by position after sorting by id, ids never checked) — an answer with one id twice credits an address with another address\'s balance', async () => {
    await repairCursor(NATIVE_NET);
    t.clock.advance(1);
    // X holds 0.05 ETH, counted and final; Y is a fresh order nobody paid.
    const x = await placeOrder(t, { amount: '0.05', currency: 'ETH', network: NATIVE_NET });
    await chain.pay(NATIVE_COIN, x.address, x.amountBase);
    await honestly(NATIVE_NET);
    expect(await orderRow(x.paymentOrderNo)).toMatchObject({ pay_status: 'PAID' });
    const y = await placeOrder(t, { amount: '0.04', currency: 'ETH', network: NATIVE_NET });
    t.clock.advance(1);
    const since = t.clock.nowMs();
    // The batch answer carries Y's id twice: first with X's balance, then with Y's.
    nativeProxy.set(async (xch) => {
      if (!xch.batch || !xch.calls.some((c) => c.method === 'eth_getBalance')) return null;
      const items = JSON.parse((await xch.forward()).text) as { id: number; result: string }[];
      const idOf = (a: string) => xch.calls.find((c) => String(c.params?.[0]).toLowerCase() === a.toLowerCase())?.id;
      const [idX, idY] = [idOf(x.address), idOf(y.address)];
      if (idX === undefined || idY === undefined) return null;
      const balX = items.find((i) => i.id === idX)!.result;
      return { body: JSON.stringify(items.flatMap((i) => (i.id === idY ? [{ jsonrpc: '2.0', id: idY, result: balX }, i] : [i]))) };
    });
    const lied = await pass(NATIVE_NET);
    nativeProxy.set(null);
    const afterLie = { rows: (await paymentRows(NATIVE_NET)).filter((r) => r.created_at >= since).map((r) => [r.address, r.amount, r.status]), y: await orderRow(y.paymentOrderNo) };
    await honestly(NATIVE_NET);
    expect({ lied: lied.ok, ...afterLie }).toEqual({ lied: lied.ok, rows: [], y: { pay_status: 'PENDING', pay_exception: null, seen_amount: '0', final_amount: '0' } });
    expect(await orderRow(y.paymentOrderNo)).toEqual({ pay_status: 'PENDING', pay_exception: null, seen_amount: '0', final_amount: '0' });
    expect(await notifyTypes(t, y.paymentOrderNo)).toEqual([]);
  });
});
