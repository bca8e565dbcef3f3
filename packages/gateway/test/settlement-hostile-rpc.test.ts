// The settlement relayer facing a JSON-RPC endpoint that lies or fails (issue 5, PROTOCOL §15a,
// ADR 0008/0009). A real anvil with the test token and the forwarder factory; a real HTTP proxy
// between the gateway and anvil that passes each request through or rewrites its answer; real
// orders paid on anvil and settled by the gateway's own Settler (gateway.settle, as the worker
// runs it). fast-check generates sequences of lies about the methods the relayer uses
// (relayer.ts: eth_blockNumber, eth_getBlockByNumber, eth_getBalance, eth_getTransactionCount,
// eth_maxPriorityFeePerGas, eth_call, eth_estimateGas, eth_sendRawTransaction,
// eth_getTransactionByHash, eth_getTransactionReceipt, eth_getLogs), with or without the
// settlement transaction waiting in anvil's mempool, and blocks and time passing between them.
// After every pass the gateway's tables are compared with anvil read directly (never through the
// proxy):
// - each order is distributed at most once, and every receiver holds exactly its planned share
//   or nothing (the seller and other receivers are fresh addresses; the merchant wallet and the
//   fee address are compared by difference);
// - a settlement is SETTLED (and its order COMPLETED) only when anvil has the distribution in
//   that transaction, successful, in a canonical block with the network's confirmations counted
//   from anvil's head when the pass began (ADR 0008 "Finality"), with the payouts of the plan;
// - every transaction the relayer account put on anvil (mined or in the mempool) was recorded
//   before it was broadcast (its hash is in settlement_txs), calls the factory with no value, and
//   never bids more than the configured cap per gas;
// - a pass resolves or rejects with an Error, never anything else, and nothing is left as an
//   unhandled rejection;
// and once the endpoint is honest again a few passes (blocks and time passing) complete every
// order exactly once, leave no open settlement transaction and nothing of the relayer's in the
// mempool (the nonce queue is not wedged), and no honest pass sends a distribution of a plan that
// anvil shows distributed or has pending.
//
// The transaction rows are checked too: a FINAL row was mined as one of its own hashes,
// successfully, in a canonical block; a REVERTED row has no successful transaction on anvil; a row
// adopted from the chain names a transaction that distributed through the factory.
//
// What the design trusts (ADR 0007's amendment, applied here to the writer; not counted as a
// defect): the configured endpoint's well-formed, self-consistent answers. Money cannot go
// anywhere the plan does not say — the calldata comes from the stored plans, the chain id from
// the configuration (the relayer never asks eth_chainId), the fees are capped, and the contract
// refuses a second distribution — so what a lying endpoint can do is make the relayer waste gas
// (bounded by the cap), wait, or record something that did not happen. Lies the relayer cannot
// tell from the truth (a receipt with the other status, a successful receipt of a transaction
// not mined, a transaction or log said not to exist, a lower nonce: MISLEADING below) are
// generated too; after one, the case only asks that no money moves wrongly and that honesty
// settles every order exactly once (the relayer may have sent a distribution again, which the
// contract refuses, and its rows may say what it was told). Everything else — answers that are
// not JSON-RPC, values that are not the JSON-RPC types, a head whose block does not exist, a
// receipt of another transaction, a gas limit no node accepts, a nonce the chain cannot reach —
// must not be believed, and any lie must stop hurting once it stops.
//
// The tests titled "was defect n" pin the smallest cases this file found breaking these rules
// (seven, fixed). Their cases are back in the properties, except one of defect 2's (see
// isDefect2); SPARKPAY_TEST_UNPIN=1,2,… chooses which. SPARKPAY_TEST_COVERAGE=1 prints how often
// each kind of lie reached the relayer.
import { Writable } from 'node:stream';
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeFunctionData, keccak256, parseEventLogs, toFunctionSelector, type Address, type Hex } from 'viem';
import { forwarderFactoryAbi } from '../src/adapters/chain/evm/contract-artifacts.js';
import { forwarderPlan, orderRef } from '../src/adapters/chain/evm/forwarder-plan.js';
import { evmRelayer } from '../src/adapters/chain/evm/relayer.js';
import { devnetAccount } from '../src/adapters/devnet/devnet.js';
import { Settler } from '../src/app/settle.js';
import { createGateway, type Gateway } from '../src/cli/gateway.js';
import { distribute, planFromJson, type SettlementPlan } from '../src/domain/settlement-plan.js';
import { startSettlementWorker } from '../src/jobs/settlement-worker.js';
import { DATABASE_KINDS } from './databases.js';
import { freshAddress, startTestChain, type TestChain } from './evm-chain.js';
import { deploymentOn, mine, notifyTypes, placeOrder, rpc, type PlacedOrder } from './chain-setup.js';
import { startTestGateway, type TestGateway } from './harness.js';
import { fuzzOptions } from './fuzz.js';
import { answer, startHostileProxy, transportReply, type Exchange, type HostileProxy, type Reply, type Rewrite, type RpcCall } from './hostile-rpc.js';
import { waitUntil } from './wait.js';

const NET = '4';
const CONFIRMATIONS = 2;
/** The relayer's fee cap, wei per gas (1000 gwei). */
const CAP = 1_000_000_000_000n;
const RELAYER = devnetAccount(7);
const SETTINGS = { batchSize: 20, pollMs: 100, replaceAfterMs: 60_000, maxInFlight: 8, retryBaseMs: 1_000, leaseMs: 30_000 };
/** Seconds a "time passes" step advances the clock: past the replacement delay and the early retry delays. */
const LATER_S = 61;
/** Honest passes after the lies (blocks and time between them) within which every order must complete. */
const HONEST_ROUNDS = 6;
const FAKE_BLOCK_HASH_A = `0x${'a1'.repeat(32)}`;
const FAKE_BLOCK_HASH_B = `0x${'b2'.repeat(32)}`;
const FAKE_TX_HASH = `0x${'c3'.repeat(32)}`;
const DISTRIBUTED_SELECTOR = toFunctionSelector(forwarderFactoryAbi.find((i) => i.type === 'function' && i.name === 'distributed')!);

const hex = (n: bigint | number) => `0x${n.toString(16)}`;
const word = (n: bigint) => `0x${n.toString(16).padStart(64, '0')}`;

// ---------------------------------------------------------------------------------------------
// The hostile proxy: test/hostile-rpc.ts. The relayer sends one call per request (viem's http
// transport, no batching); the scanner's JSON-RPC batches pass through untouched.

// ---------------------------------------------------------------------------------------------
// The lies, as plain data (fast-check prints them as counterexamples).

const TRANSPORT = ['http500', 'drop', 'nonJson', 'truncated', 'emptyBody', 'rpcError', 'wrongId', 'noJsonrpc', 'slow'] as const;
type Transport = (typeof TRANSPORT)[number];

/** What each method can be made to say; `transport` lies apply to every method. */
const SEMANTIC = {
  // Broadcasting. "Unsent" answers do not reach the node; "accepted…" ones reach it and lie about it.
  eth_sendRawTransaction: ['nonceTooLowUnsent', 'alreadyKnownUnsent', 'underpricedUnsent', 'insufficientFundsUnsent', 'revertedUnsent', 'swallowed', 'acceptedThenError', 'acceptedThenDrop', 'wrongHash', 'resultNumber'],
  // Following.
  eth_getTransactionReceipt: ['null', 'otherTx', 'statusFlip', 'fabricatedSuccess', 'nonCanonical', 'blockNumberLow', 'blockNumberHigh', 'logsMissing', 'logsDuplicated', 'statusGarbage', 'blockNumberGarbage', 'logsNull', 'resultString'],
  eth_getTransactionByHash: ['null', 'fabricatedPending', 'resultString'],
  eth_blockNumber: ['ahead1', 'ahead3', 'back2', 'nonHex', 'null'],
  // eth_getBlockByNumber: "latest" (fees) or a numbered block (the canonical hash check).
  // The head is the latest block (was defect 1): behind, or not a block. A well-formed latest
  // block ahead of the chain is the endpoint's word (ADR 0007) and is not generated.
  eth_getBlockByNumber: ['latestBaseFeeAbsurd', 'latestBaseFeeNearCap', 'latestBaseFeeZero', 'latestBaseFeeMissing', 'latestBaseFeeGarbage', 'latestBack2', 'latestNumberGarbage', 'latestNull', 'numberedOtherHash', 'numberedNull', 'numberedHashGarbage'],
  eth_getLogs: ['empty', 'otherTx', 'nonArray'],
  // Preparing.
  eth_getTransactionCount: ['lower', 'higher', 'higherPendingOnly', 'decimal', 'nonHex', 'null', 'negative'],
  eth_estimateGas: ['huge', 'large', 'tiny', 'belowIntrinsic', 'zero', 'reverted', 'nonHex', 'null'],
  eth_maxPriorityFeePerGas: ['absurd', 'nearCap', 'zero', 'error', 'nonHex'],
  eth_getBalance: ['zero', 'huge', 'nonHex', 'null'],
  eth_call: ['distributedTrue', 'distributedFalse', 'balanceZero', 'balanceHuge', 'revert', 'empty'],
} as const;
type Method = keyof typeof SEMANTIC;
/** `once`: only the first call of the method in the pass is lied to (viem's fallback transport retries a failed call up to 3 times). */
type Lie = { method: Method; how: string; once?: boolean };

// eth_blockNumber is not among them: the relayer no longer reads it (its head is the latest block).
const FOLLOW_METHODS: Method[] = ['eth_getTransactionReceipt', 'eth_getTransactionByHash', 'eth_getBlockByNumber', 'eth_getLogs'];
// eth_chainId is not among them: the relayer never asks it (it signs for the configured chain id,
// so a node of another chain can only refuse its transactions).
const SEND_METHODS: Method[] = ['eth_sendRawTransaction', 'eth_getTransactionCount', 'eth_estimateGas', 'eth_maxPriorityFeePerGas', 'eth_getBalance', 'eth_call', 'eth_getBlockByNumber'];

/** What the lies may refer to in the current case. */
interface LieContext {
  /** A real, successful transaction that is not a settlement (the payment of the case's order). */
  otherTx: string;
  usdt: Address;
  factory: Address;
  /** Anvil directly. */
  anvil(method: string, params?: unknown[]): Promise<unknown>;
}

const rpcError = (call: RpcCall, code: number, message: string, data?: string) => JSON.stringify({ jsonrpc: '2.0', id: call.id, error: { code, message, ...(data === undefined ? {} : { data }) } });


const honestResult = async <T>(x: Exchange): Promise<T> => (JSON.parse((await x.forward()).text) as { result: T }).result;

type ReceiptJson = Record<string, unknown> & { status: string; blockNumber: string; blockHash: string; logs: unknown[]; transactionHash: string };

async function semanticReply(lie: Lie, x: Exchange, ctx: LieContext): Promise<Reply> {
  const { call } = x;
  const params = call.params ?? [];
  const ok = (result: unknown): Reply => ({ body: answer(call, result) });
  switch (lie.method) {
    case 'eth_sendRawTransaction': {
      const raw = String(params[0]);
      switch (lie.how) {
        case 'nonceTooLowUnsent':
          return { body: rpcError(call, -32000, 'nonce too low') };
        case 'alreadyKnownUnsent':
          return { body: rpcError(call, -32000, 'already known') };
        case 'underpricedUnsent':
          return { body: rpcError(call, -32000, 'replacement transaction underpriced') };
        case 'insufficientFundsUnsent':
          return { body: rpcError(call, -32000, 'insufficient funds for gas * price + value') };
        case 'revertedUnsent':
          return { body: rpcError(call, 3, 'execution reverted', '0x') };
        case 'swallowed':
          return ok(keccak256(raw as Hex));
        case 'acceptedThenError':
          await x.forward();
          return { body: rpcError(call, -32000, 'transaction rejected') };
        case 'acceptedThenDrop':
          await x.forward();
          return 'drop';
        case 'wrongHash':
          await x.forward();
          return ok(FAKE_TX_HASH);
        case 'resultNumber':
          await x.forward();
          return ok(12345);
      }
      break;
    }
    case 'eth_getTransactionReceipt': {
      const r = await honestResult<ReceiptJson | null>(x);
      const other = async () => (await ctx.anvil('eth_getTransactionReceipt', [ctx.otherTx])) as ReceiptJson;
      switch (lie.how) {
        case 'null':
          return r ? ok(null) : null;
        case 'otherTx':
          return ok(await other());
        case 'statusFlip':
          return r ? ok({ ...r, status: r.status === '0x1' ? '0x0' : '0x1' }) : null;
        case 'fabricatedSuccess': {
          if (r) return r.status === '0x1' ? null : ok({ ...r, status: '0x1' });
          // Not mined: a successful receipt in anvil's latest block, which does not hold it.
          const latest = (await ctx.anvil('eth_getBlockByNumber', ['latest', false])) as { number: string; hash: string };
          return ok({ ...(await other()), transactionHash: params[0], status: '0x1', logs: [], blockNumber: latest.number, blockHash: latest.hash, from: RELAYER.address.toLowerCase(), to: ctx.factory.toLowerCase() });
        }
        case 'nonCanonical':
          return r ? ok({ ...r, blockHash: FAKE_BLOCK_HASH_A }) : null;
        case 'blockNumberLow':
          return r ? ok({ ...r, blockNumber: hex(Math.max(0, Number(r.blockNumber) - 1)) }) : null;
        case 'blockNumberHigh':
          return r ? ok({ ...r, blockNumber: hex(Number(r.blockNumber) + 3) }) : null;
        case 'logsMissing':
          return r && r.logs.length > 0 ? ok({ ...r, logs: [] }) : null;
        case 'logsDuplicated':
          return r && r.logs.length > 0 ? ok({ ...r, logs: [...r.logs, ...r.logs] }) : null;
        case 'statusGarbage':
          return r ? ok({ ...r, status: 'yes' }) : null;
        case 'blockNumberGarbage':
          return r ? ok({ ...r, blockNumber: '0xzz' }) : null;
        case 'logsNull':
          return r ? ok({ ...r, logs: null }) : null;
        case 'resultString':
          return ok('0x1234');
      }
      break;
    }
    case 'eth_getTransactionByHash': {
      const tx = await honestResult<Record<string, unknown> | null>(x);
      switch (lie.how) {
        case 'null':
          return tx ? ok(null) : null;
        case 'fabricatedPending':
          if (tx) return null;
          return ok({ hash: params[0], nonce: '0x0', blockHash: null, blockNumber: null, transactionIndex: null, from: RELAYER.address.toLowerCase(), to: ctx.factory.toLowerCase(), value: '0x0', gas: '0x5208', maxFeePerGas: '0x1', maxPriorityFeePerGas: '0x1', input: '0x', type: '0x2', chainId: '0x7a69', v: '0x0', r: '0x1', s: '0x1', yParity: '0x0', accessList: [] });
        case 'resultString':
          return ok('0x');
      }
      break;
    }
    case 'eth_blockNumber': {
      const real = Number(await honestResult<string>(x));
      const value = { ahead1: hex(real + 1), ahead3: hex(real + 3), back2: hex(Math.max(0, real - 2)), nonHex: '0xzz', null: null }[lie.how as 'ahead1'];
      return ok(value);
    }
    case 'eth_getBlockByNumber': {
      const latest = params[0] === 'latest';
      if (lie.how.startsWith('latest') !== latest) return null;
      const block = await honestResult<Record<string, unknown> | null>(x);
      if (!block) return null;
      switch (lie.how) {
        case 'latestBack2':
          return ok({ ...block, number: hex(Math.max(0, Number(block.number) - 2)) });
        case 'latestNumberGarbage':
          return ok({ ...block, number: '0xzz' });
        case 'latestNull':
          return ok(null);
        case 'latestBaseFeeAbsurd':
          return ok({ ...block, baseFeePerGas: hex(10n ** 15n) });
        case 'latestBaseFeeNearCap':
          return ok({ ...block, baseFeePerGas: hex(CAP / 2n - 1_000_000_000n) });
        case 'latestBaseFeeZero':
          return ok({ ...block, baseFeePerGas: '0x0' });
        case 'latestBaseFeeMissing': {
          const { baseFeePerGas: _dropped, ...rest } = block;
          return ok(rest);
        }
        case 'latestBaseFeeGarbage':
          return ok({ ...block, baseFeePerGas: '0xzz' });
        case 'numberedOtherHash':
          return ok({ ...block, hash: FAKE_BLOCK_HASH_B });
        case 'numberedNull':
          return ok(null);
        case 'numberedHashGarbage':
          return ok({ ...block, hash: '0x12' });
      }
      break;
    }
    case 'eth_getLogs': {
      const logs = await honestResult<Record<string, unknown>[]>(x);
      switch (lie.how) {
        case 'empty':
          return logs.length > 0 ? ok([]) : null;
        case 'otherTx':
          return logs.length > 0 ? ok(logs.map((l) => ({ ...l, transactionHash: ctx.otherTx }))) : null;
        case 'nonArray':
          return ok({});
      }
      break;
    }
    case 'eth_getTransactionCount': {
      const pendingTag = params[1] === 'pending';
      if (lie.how === 'higherPendingOnly' && !pendingTag) return null;
      const real = Number(await honestResult<string>(x));
      const value = { lower: hex(Math.max(0, real - 2)), higher: hex(real + 3), higherPendingOnly: hex(real + 3), decimal: String(real), nonHex: '0xzz', null: null, negative: '-0x1' }[lie.how as 'lower'];
      return ok(value);
    }
    case 'eth_estimateGas': {
      switch (lie.how) {
        case 'reverted':
          return { body: rpcError(call, 3, 'execution reverted', '0x') };
        case 'nonHex':
          return ok('0xzz');
        case 'null':
          return ok(null);
      }
      // Above the block gas limit (30M) once the relayer adds its margin; one it can pay; one
      // the transaction runs out of; below the intrinsic gas of any transaction; zero.
      return ok(hex({ huge: 60_000_000, large: 15_000_000, tiny: 30_000, belowIntrinsic: 1, zero: 0 }[lie.how as 'huge']));
    }
    case 'eth_maxPriorityFeePerGas':
      switch (lie.how) {
        case 'error':
          return { body: rpcError(call, -32601, 'the method eth_maxPriorityFeePerGas does not exist') };
        case 'nonHex':
          return ok('0xzz');
      }
      return ok(hex({ absurd: 10n ** 18n, nearCap: (CAP * 6n) / 10n, zero: 0n }[lie.how as 'absurd']));
    case 'eth_getBalance':
      return ok({ zero: '0x0', huge: hex(10n ** 30n), nonHex: '0xzz', null: null }[lie.how as 'zero']);
    case 'eth_call': {
      const { to, data } = (params[0] ?? {}) as { to?: string; data?: string };
      const toFactory = to?.toLowerCase() === ctx.factory.toLowerCase() && data?.startsWith(DISTRIBUTED_SELECTOR);
      const toToken = to?.toLowerCase() === ctx.usdt.toLowerCase();
      switch (lie.how) {
        case 'distributedTrue':
          return toFactory ? ok(word(1n)) : null;
        case 'distributedFalse':
          return toFactory ? ok(word(0n)) : null;
        case 'balanceZero':
          return toToken ? ok(word(0n)) : null;
        case 'balanceHuge':
          return toToken ? ok(word(10n ** 30n)) : null;
        case 'revert':
          return { body: rpcError(call, 3, 'execution reverted', '0x') };
        case 'empty':
          return ok('0x');
      }
      break;
    }
  }
  throw new Error(`no lie ${lie.method}:${lie.how}`);
}

/** How many answers each kind of lie rewrote (printed with SPARKPAY_TEST_COVERAGE=1). */
const lieHits = new Map<string, number>();

/** The rewrite of a phase's lies: each lies about its own method, other calls pass through. */
function rewriteOf(lies: readonly Lie[], ctx: LieContext): Rewrite {
  const told = new Set<Lie>();
  return async (x) => {
    for (const lie of lies) {
      if (x.call.method !== lie.method) continue;
      if (lie.once && told.has(lie)) return null;
      told.add(lie);
      const transport = (TRANSPORT as readonly string[]).includes(lie.how);
      const reply = transport ? await transportReply(lie.how as Transport, x) : await semanticReply(lie, x, ctx);
      const key = `${lie.method}:${transport ? 'transport' : lie.how}`;
      if (reply !== null) lieHits.set(key, (lieHits.get(key) ?? 0) + 1);
      return reply;
    }
    return null;
  };
}

const arbTransportLie = (methods: readonly Method[]): fc.Arbitrary<Lie> => fc.record({ method: fc.constantFrom(...methods), how: fc.constantFrom<string>(...TRANSPORT), once: fc.boolean() });
const arbSemanticLie = (methods: readonly Method[], keep: (l: Lie) => boolean): fc.Arbitrary<Lie> =>
  fc
    .constantFrom(...methods)
    .chain((method) => fc.record({ method: fc.constant(method), how: fc.constantFrom<string>(...SEMANTIC[method].filter((how) => keep({ method, how }))) }));

// ---------------------------------------------------------------------------------------------
// Lies whose consequences are pinned as defects below and left out of the properties, and lies
// trusted by design.

/** Was defect 1: the head is eth_blockNumber, never checked to name a block (a settlement completes early). */
const isDefect1 = (l: Lie) => l.method === 'eth_blockNumber' && l.how.startsWith('ahead');
/**
 * Was defect 2: a nonce above the chain's was used and never given up (the queue wedged for good).
 * Fixed for a pending count above the chain's. Still left out: a LATEST count above the chain's
 * (a consistent lie): the transaction signed behind the gap is given back and its orders sent
 * again at the true nonce, but the one behind the gap stays queued at the node, and the strict
 * check of the honest passes sees a distribution sent while one is pending. If the gap is ever
 * filled it is mined as a Skipped no-op (gas, nobody paid twice). Noted in the closing note.
 */
const isDefect2 = (l: Lie) => l.method === 'eth_getTransactionCount' && l.how === 'higher';
/** Was defect 3: a gas limit the node refuses is kept for every rebroadcast and replacement (wedged for good). */
const isDefect3 = (l: Lie) => l.method === 'eth_estimateGas' && ['huge', 'belowIntrinsic', 'zero'].includes(l.how);
/** Was defect 4: a receipt whose status is neither 0x0 nor 0x1 is taken for a revert. */
const isDefect4 = (l: Lie) => l.method === 'eth_getTransactionReceipt' && l.how === 'statusGarbage';
/** Was defect 5: a receipt of another transaction is taken for the one asked about. */
const isDefect5 = (l: Lie) => l.method === 'eth_getTransactionReceipt' && l.how === 'otherTx';
/** Was defect 6: a Distribution log naming another transaction makes the relayer adopt that transaction. */
const isDefect6 = (l: Lie) => l.method === 'eth_getLogs' && l.how === 'otherTx';
/**
 * Fixed: their cases are in the properties (defect 2's latest-count case is still left out,
 * above). SPARKPAY_TEST_UNPIN=… (a list of the numbers) puts only those back.
 */
const unpin = (process.env.SPARKPAY_TEST_UNPIN ?? '1,3,4,5,6,7').split(',');
/**
 * Well-formed, self-consistent lies the relayer cannot tell from the truth (trusted by design, see
 * the top of the file): after one of them the relayer may send a distribution again (the contract
 * refuses it: gas is wasted, nobody is paid twice) and its transaction rows may record what the
 * endpoint said (REVERTED for a transaction that succeeded, FINAL for one not mined).
 */
const MISLEADING = new Set([
  'eth_getTransactionReceipt:null',
  'eth_getTransactionReceipt:statusFlip',
  'eth_getTransactionReceipt:fabricatedSuccess',
  'eth_getTransactionReceipt:logsMissing',
  'eth_getTransactionByHash:null',
  'eth_getTransactionByHash:fabricatedPending',
  'eth_getTransactionCount:lower',
  'eth_getLogs:empty',
  'eth_call:distributedFalse',
]);
const misleading = (l: Lie) => MISLEADING.has(`${l.method}:${l.how}`);
/** Answers to eth_sendRawTransaction after the node took the transaction, saying it did not. */
const TOOK_BUT_FAILED = new Set(['acceptedThenError', 'acceptedThenDrop', 'truncated', 'wrongId', 'noJsonrpc']);
/**
 * Was defect 7: a replacement the node took while the answer said otherwise is forgotten. A case
 * where time passes (the replacement delay) before such an answer can meet it.
 */
const mayForgetReplacement = (c: Case) => c.phases.some((p, i) => i > 0 && c.phases.slice(0, i).some((q) => q.later) && p.lies.some((l) => l.method === 'eth_sendRawTransaction' && TOOK_BUT_FAILED.has(l.how)));
const PINNED: [string, (l: Lie) => boolean][] = [
  ['1', isDefect1],
  ['2', isDefect2],
  ['3', isDefect3],
  ['4', isDefect4],
  ['5', isDefect5],
  ['6', isDefect6],
];
const pinned = (l: Lie) => PINNED.some(([n, is]) => !unpin.includes(n) && is(l));

interface Phase {
  /** Lies of this pass, about different methods. */
  lies: Lie[];
  /** Blocks anvil mines after the pass. */
  mine: number;
  /** Time passes after the pass (past the replacement delay). */
  later: boolean;
}

interface Case {
  orders: 1 | 2;
  withOther: boolean;
  /** Anvil does not mine on its own while the lies last: transactions wait in the mempool. */
  mempool: boolean;
  /** An honest pass sends the settlement before the lies (they then meet an open transaction). */
  sentFirst: boolean;
  /** Blocks anvil mines after that pass (its transaction then has confirmations). */
  mineFirst: number;
  phases: Phase[];
}

const arbPhase = (lie: fc.Arbitrary<Lie>, maxLies: number): fc.Arbitrary<Phase> =>
  fc.record({
    lies: fc.uniqueArray(lie, { minLength: 1, maxLength: maxLies, selector: (l) => l.method }),
    mine: fc.constantFrom(0, 0, 1, 2, 3),
    later: fc.boolean(),
  });
const arbCase = (lie: fc.Arbitrary<Lie>, opts: { maxPhases?: number; maxLies?: number; sentFirst?: boolean } = {}): fc.Arbitrary<Case> =>
  fc
    .record({
      orders: fc.constantFrom<1 | 2>(1, 2),
      withOther: fc.boolean(),
      mempool: fc.boolean(),
      sentFirst: opts.sentFirst === undefined ? fc.boolean() : fc.constant(opts.sentFirst),
      mineFirst: opts.sentFirst === false ? fc.constant(0) : fc.constantFrom(0, 1, 2),
      phases: fc.array(arbPhase(lie, opts.maxLies ?? 2), { minLength: 1, maxLength: opts.maxPhases ?? 3 }),
    })
    // Left out unless defect 7 is unpinned (fixed; it is by default).
    .filter((c) => unpin.includes('7') || !mayForgetReplacement(c));

// ---------------------------------------------------------------------------------------------

describe.each(DATABASE_KINDS)('the settlement relayer facing a hostile JSON-RPC endpoint (%s)', (kind) => {
  let chain: TestChain;
  let usdt: Address;
  let proxy: HostileProxy;
  let t: TestGateway;
  let lieCtx: LieContext;
  /** Everything the gateway logs, at debug level: the relayer's key must never be in it. */
  const logged: string[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write: (chunk: Buffer, _enc, done) => (logged.push(chunk.toString()), done()) }));
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    chain = await startTestChain();
    usdt = await chain.deployToken({ name: 'Tether USD (test)', symbol: 'USDT', decimals: 6 });
    proxy = await startHostileProxy(chain.node.rpcUrl, { passBatches: true });
    t = await startTestGateway({
      kind,
      logger,
      config: {
        ...deploymentOn(chain, { [NET]: { rpcUrls: [proxy.url], confirmations: CONFIRMATIONS, contracts: { USDT: usdt } } }),
        relayers: { [NET]: { privateKey: RELAYER.privateKey, maxFeePerGas: CAP } },
        settlement: SETTINGS,
      },
    });
    await t.gateway.scanChain(NET);
    lieCtx = { otherTx: '', usdt, factory: chain.factory.factory, anvil: (method, params = []) => rpc(chain, method, params) };
  }, 60_000);
  afterEach(async () => {
    proxy?.set(null);
    if (!chain || !t) return;
    await setAutomine(true);
    // A failed case may leave its orders unsettled and the relayer wedged: the failure is
    // reported already; the next test starts clean (nothing of the relayer's in the mempool,
    // nothing open, nothing due).
    const backlog = async () => (await t.gateway.store.settlements.backlog()).reduce((n, b) => n + b.count, 0);
    if ((await backlog()) === 0) return;
    await rpc(chain, 'anvil_dropAllTransactions');
    await t.gateway.store.settlements.dropOpen([NET], t.clock.nowMs());
    for (let i = 0; i < 8 && (await backlog()) > 0; i += 1) {
      t.clock.advance(3_600);
      await t.gateway.settle(NET).catch(() => undefined);
      await mine(chain, CONFIRMATIONS);
    }
  });
  afterAll(async () => {
    if (process.env.SPARKPAY_TEST_COVERAGE) console.log([...lieHits].sort().map(([k, n]) => `${k} ${n}`).join('\n'));
    process.off('unhandledRejection', onUnhandled);
    await t?.close();
    await proxy?.close();
    await chain?.stop();
  });

  // --- the truth, read from anvil directly --------------------------------------------------

  const anvilHead = async () => Number(await rpc(chain, 'eth_blockNumber'));
  const relayerAddress = RELAYER.address.toLowerCase();

  interface AnvilDistribution {
    txHash: string;
    blockNumber: number;
    blockHash: string;
    forwarder: string;
    balance: bigint;
  }

  async function distributionsOf(paymentOrderNo: string, fromBlock: number): Promise<AnvilDistribution[]> {
    const from = Math.min(fromBlock, await anvilHead());
    const logs = await chain.relayer.public.getLogs({ address: chain.factory.factory, fromBlock: BigInt(from), toBlock: 'latest' });
    return parseEventLogs({ abi: forwarderFactoryAbi, logs, eventName: 'Distribution' })
      .filter((e) => e.args.orderRef === orderRef(paymentOrderNo))
      .map((e) => ({ txHash: e.transactionHash.toLowerCase(), blockNumber: Number(e.blockNumber), blockHash: e.blockHash.toLowerCase(), forwarder: e.args.forwarder.toLowerCase(), balance: e.args.balance }));
  }

  interface RelayerTx {
    hash: string;
    nonce: number;
    mined: boolean;
    to: string | null;
    value: bigint;
    maxFeePerGas: bigint;
    maxPriorityFeePerGas: bigint;
    /** Orders whose plans the calldata distributes. */
    orderRefs: string[];
  }

  const blocks = new Map<number, RelayerTx[]>();
  type RawTx = { hash: string; from: string; nonce: string; to: string | null; value: string; maxFeePerGas?: string; maxPriorityFeePerGas?: string; gasPrice?: string; input: string };
  const asRelayerTx = (tx: RawTx, mined: boolean): RelayerTx => {
    let orderRefs: string[] = [];
    try {
      const call = decodeFunctionData({ abi: forwarderFactoryAbi, data: tx.input as Hex });
      if (call.functionName === 'distribute') orderRefs = [call.args[0].orderRef.toLowerCase()];
      if (call.functionName === 'distributeBatch') orderRefs = call.args[0].map((p) => p.orderRef.toLowerCase());
    } catch {
      orderRefs = ['<not a settlement call>'];
    }
    return {
      hash: tx.hash.toLowerCase(),
      nonce: Number(tx.nonce),
      mined,
      to: tx.to?.toLowerCase() ?? null,
      value: BigInt(tx.value),
      maxFeePerGas: BigInt(tx.maxFeePerGas ?? tx.gasPrice ?? '0x0'),
      maxPriorityFeePerGas: BigInt(tx.maxPriorityFeePerGas ?? tx.gasPrice ?? '0x0'),
      orderRefs,
    };
  };

  /** The relayer account's transactions on anvil: mined since `fromBlock`, and in the mempool (pending or queued). */
  async function relayerTxs(fromBlock: number): Promise<RelayerTx[]> {
    const head = await anvilHead();
    const out: RelayerTx[] = [];
    for (let b = fromBlock; b <= head; b += 1) {
      let txs = blocks.get(b);
      if (!txs) {
        const block = (await rpc(chain, 'eth_getBlockByNumber', [hex(b), true])) as { transactions: RawTx[] };
        txs = block.transactions.filter((tx) => tx.from.toLowerCase() === relayerAddress).map((tx) => asRelayerTx(tx, true));
        blocks.set(b, txs);
      }
      out.push(...txs);
    }
    const pool = (await rpc(chain, 'txpool_content')) as { pending: Record<string, Record<string, RawTx>>; queued: Record<string, Record<string, RawTx>> };
    for (const part of [pool.pending, pool.queued]) {
      for (const [from, byNonce] of Object.entries(part)) if (from.toLowerCase() === relayerAddress) out.push(...Object.values(byNonce).map((tx) => asRelayerTx(tx, false)));
    }
    return out;
  }

  // --- what the gateway stored ---------------------------------------------------------------

  const db = () => t.gateway.db.kysely;
  async function recordedHashes(): Promise<Set<string>> {
    const rows = await db().selectFrom('settlement_txs').select('hashes').execute();
    return new Set(rows.flatMap((r) => (JSON.parse(r.hashes) as string[]).map((h) => h.toLowerCase())));
  }
  const openTxs = async () => (await db().selectFrom('settlement_txs').select(['id', 'nonce', 'status', 'gas_limit', 'hashes']).where('network', '=', NET).where('status', 'in', ['SIGNED', 'SENT']).execute()).map((r) => ({ ...r, nonce: r.nonce === null ? null : Number(r.nonce) }));

  // --- the cases ------------------------------------------------------------------------------

  interface CaseOrder {
    placed: PlacedOrder;
    plan: SettlementPlan;
    /** Fresh receivers (seller, other): hold exactly their share once distributed, nothing before. */
    fresh: { address: string; share: bigint }[];
    /** What the shared receivers (merchant wallet, fee address) get from this order. */
    shared: Map<string, bigint>;
  }

  /** `n` orders with a split to fresh addresses, paid exactly on anvil and PAID (the proxy honest). */
  async function paidOrders(n: number, withOther: boolean): Promise<CaseOrder[]> {
    proxy.set(null);
    t.clock.advance(1);
    const out: CaseOrder[] = [];
    const placed: PlacedOrder[] = [];
    const receivers: { seller: Address; other: Address | null }[] = [];
    for (let i = 0; i < n; i += 1) {
      const seller = freshAddress();
      const other = withOther ? freshAddress() : null;
      receivers.push({ seller, other });
      placed.push(
        await placeOrder(t, {
          amount: other ? '3.5' : '3',
          overrides: { divide_detail: { seller_amount: '2', seller_addr: seller, merchant_amount: '1', ...(other ? { other_details: [{ receiver_addr: other, amount: '0.5' }] } : {}) } },
        }),
      );
    }
    await t.gateway.scanChain(NET);
    let payment = '';
    for (const p of placed) payment = (await chain.pay(usdt, p.address, p.amountBase)).transactionHash;
    lieCtx.otherTx = payment;
    await t.gateway.scanChain(NET);
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain(NET);
    for (const [i, p] of placed.entries()) {
      expect((await t.gateway.store.orders.get(p.paymentOrderNo))!.state.status).toBe('PAID');
      const plan = planFromJson((await t.gateway.store.depositAddresses.get(p.paymentOrderNo, NET, 'USDT'))!.plan);
      const shares = distribute(plan, p.amountBase);
      const freshSet = new Set([receivers[i]!.seller, receivers[i]!.other].filter((a): a is Address => a !== null).map((a) => a.toLowerCase()));
      const fresh: CaseOrder['fresh'] = [];
      const shared = new Map<string, bigint>();
      plan.receivers.forEach((r, k) => {
        const a = r.address.toLowerCase();
        if (freshSet.has(a)) fresh.push({ address: a, share: shares[k]! });
        else shared.set(a, (shared.get(a) ?? 0n) + shares[k]!);
      });
      out.push({ placed: p, plan, fresh, shared });
    }
    return out;
  }

  interface CaseState {
    orders: CaseOrder[];
    fromBlock: number;
    /** Balances of the shared receivers when the case began. */
    sharedBefore: Map<string, bigint>;
    /** Orders already checked SETTLED (their finality was checked in the pass that settled them). */
    settled: Set<string>;
    /** The clock when the case began: its settlement transaction rows are the ones written since. */
    startedMs: number;
    /** A misleading lie was told: the transaction rows may record what the endpoint said. */
    misled: boolean;
  }

  async function startCase(orders: CaseOrder[]): Promise<CaseState> {
    const sharedAddresses = [...new Set(orders.flatMap((o) => [...o.shared.keys()]))];
    const sharedBefore = new Map<string, bigint>();
    for (const a of sharedAddresses) sharedBefore.set(a, await chain.balanceOf(usdt, a as Address));
    return { orders, fromBlock: (await anvilHead()) + 1, sharedBefore, settled: new Set(), startedMs: t.clock.nowMs(), misled: false };
  }

  let automine = true;
  async function setAutomine(on: boolean) {
    automine = on;
    await rpc(chain, 'evm_setAutomine', [on]);
  }

  /**
   * Anvil answers eth_sendRawTransaction before the automined block is in: until then its state
   * and its logs may disagree. Waits until nothing is pending (automine only).
   */
  async function anvilSettled() {
    if (!automine) return;
    await waitUntil('anvil to mine what it accepted', async () => Number(((await rpc(chain, 'txpool_status')) as { pending: string }).pending) === 0, 5_000);
  }

  /** A settlement pass through the gateway: it resolves, or rejects with an Error; nothing else. */
  async function pass(gateway: Gateway = t.gateway): Promise<{ ok: boolean; error?: string }> {
    try {
      await gateway.settle(NET);
      return { ok: true };
    } catch (err) {
      expect(err, 'a failed pass rejects with an Error').toBeInstanceOf(Error);
      return { ok: false, error: (err as Error).message.split('\n')[0] };
    } finally {
      await anvilSettled();
    }
  }

  /** Anvil before a pass: its head, the relayer's transactions, the case's orders distributed. */
  interface Before {
    head: number;
    txs: RelayerTx[];
    distributed: Set<string>;
  }
  const snapshot = async (s: CaseState): Promise<Before> => ({ head: await anvilHead(), txs: await relayerTxs(s.fromBlock), distributed: await distributedOrders(s) });

  /**
   * The invariants after any pass, lied to or not. `before`: anvil when the pass began
   * (confirmations of a settlement that became final in it are counted from its head).
   * `strict`: the pass was honest or told no misleading lie, so it must not have sent a
   * distribution of a plan anvil had distributed or pending when it began.
   */
  async function invariants(s: CaseState, before: Before, label: string, strict: boolean) {
    const headBefore = before.head;
    const shared = new Map<string, bigint>();
    for (const o of s.orders) {
      const no = o.placed.paymentOrderNo;
      const dists = await distributionsOf(no, s.fromBlock);
      expect(dists.length, `${label}: ${no} distributed ${dists.length} times on anvil`).toBeLessThanOrEqual(1);
      const d = dists[0];
      if (d) {
        expect(d.forwarder, `${label}: ${no} distributed from another forwarder`).toBe(o.placed.address.toLowerCase());
        expect(d.balance, `${label}: ${no} distributed another balance`).toBe(o.placed.amountBase);
        for (const [a, v] of o.shared) shared.set(a, (shared.get(a) ?? 0n) + v);
      }
      for (const f of o.fresh) expect(await chain.balanceOf(usdt, f.address as Address), `${label}: receiver ${f.address} of ${no}`).toBe(d ? f.share : 0n);
      expect(await chain.balanceOf(usdt, o.placed.address), `${label}: what the forwarder of ${no} holds`).toBe(d ? 0n : o.placed.amountBase);

      const st = (await t.gateway.store.settlements.get(no))!;
      const order = (await t.gateway.store.orders.get(no))!;
      expect(order.state.status === 'COMPLETED', `${label}: ${no} is ${order.state.status} with its settlement ${st.status}`).toBe(st.status === 'SETTLED');
      if (st.status === 'SETTLED') {
        expect(d, `${label}: ${no} recorded SETTLED by ${st.txHash}, but anvil has no distribution of it`).toBeDefined();
        expect(st.txHash?.toLowerCase(), `${label}: ${no} recorded SETTLED by another transaction than anvil's distribution`).toBe(d!.txHash);
        const receipt = (await rpc(chain, 'eth_getTransactionReceipt', [d!.txHash])) as { status: string; blockNumber: string; blockHash: string };
        expect(receipt.status).toBe('0x1');
        const canonical = (await rpc(chain, 'eth_getBlockByNumber', [receipt.blockNumber, false])) as { hash: string };
        expect(canonical.hash.toLowerCase()).toBe(receipt.blockHash.toLowerCase());
        if (!s.settled.has(no)) {
          const confirmations = headBefore - Number(receipt.blockNumber) + 1;
          expect(confirmations, `${label}: ${no} recorded SETTLED with ${confirmations} confirmation(s) on anvil when the pass began (${CONFIRMATIONS} needed)`).toBeGreaterThanOrEqual(CONFIRMATIONS);
          s.settled.add(no);
        }
        const view = (await t.gateway.store.settlements.view(no))!;
        const planned = distribute(o.plan, o.placed.amountBase);
        expect(view.payouts.map((p) => [p.address, p.amount]), `${label}: the payouts recorded for ${no}`).toEqual(o.plan.receivers.map((r, k) => [r.address.toLowerCase(), planned[k]!]));
        expect(st.distributed).toBe(o.placed.amountBase);
      }
    }
    for (const [a, before] of s.sharedBefore) {
      expect((await chain.balanceOf(usdt, a as Address)) - before, `${label}: what the shared receiver ${a} got`).toBe(shared.get(a) ?? 0n);
    }
    const txs = await relayerTxs(s.fromBlock);
    const recorded = await recordedHashes();
    for (const tx of txs) {
      const what = `${label}: relayer transaction ${tx.hash} (nonce ${tx.nonce}, ${tx.mined ? 'mined' : 'in the mempool'})`;
      expect(recorded.has(tx.hash), `${what} was broadcast without being recorded first`).toBe(true);
      expect({ to: tx.to, value: tx.value }, what).toEqual({ to: chain.factory.factory.toLowerCase(), value: 0n });
      expect(tx.maxFeePerGas, `${what} bids above the cap`).toBeLessThanOrEqual(CAP);
      expect(tx.maxPriorityFeePerGas, what).toBeLessThanOrEqual(tx.maxFeePerGas);
    }
    if (strict) {
      const known = new Set(before.txs.map((tx) => tx.hash));
      const busy = new Set([...before.distributed, ...before.txs.filter((tx) => !tx.mined).flatMap((tx) => tx.orderRefs)]);
      for (const tx of txs.filter((x) => !known.has(x.hash))) {
        // Replacements re-sign the same plans at the same nonce: they are not a second distribution.
        if (before.txs.some((b) => !b.mined && b.nonce === tx.nonce)) continue;
        const again = tx.orderRefs.filter((r) => busy.has(r));
        expect(again, `${label}: the pass sent ${tx.hash} distributing plans anvil already had distributed or pending`).toEqual([]);
      }
    }
    if (!s.misled) await txRowInvariants(s, label);
  }

  /**
   * What the case's settlement transaction rows say happened, against anvil: a FINAL row was mined
   * as one of its own hashes (an adopted row: the hash it adopted), successfully, in a canonical
   * block; a REVERTED row has no successful transaction on anvil.
   */
  async function txRowInvariants(s: CaseState, label: string) {
    const rows = await db().selectFrom('settlement_txs').selectAll().where('network', '=', NET).where('created_at', '>=', s.startedMs).execute();
    for (const row of rows) {
      const hashes = (JSON.parse(row.hashes) as string[]).map((h) => h.toLowerCase());
      const what = `${label}: settlement transaction row ${row.id} (nonce ${row.nonce}, ${row.status})`;
      const receipts = await Promise.all(hashes.map(async (h) => (await rpc(chain, 'eth_getTransactionReceipt', [h])) as { status: string; blockNumber: string; blockHash: string; transactionHash: string } | null));
      if (row.status === 'FINAL') {
        expect(hashes, `${what} records as mined ${row.mined_hash}, not one of its hashes`).toContain(row.mined_hash?.toLowerCase());
        const receipt = receipts[hashes.indexOf(row.mined_hash!.toLowerCase())];
        expect(receipt?.status, `${what}: anvil's receipt of ${row.mined_hash}`).toBe('0x1');
        const canonical = (await rpc(chain, 'eth_getBlockByNumber', [receipt!.blockNumber, false])) as { hash: string };
        expect(row.block_hash?.toLowerCase(), what).toBe(canonical.hash.toLowerCase());
      }
      if (row.nonce === null && row.raw_tx === null) {
        // Adopted from the chain: a transaction that distributed through the factory.
        const logs = ((await rpc(chain, 'eth_getTransactionReceipt', [row.id])) as { logs: { address: string; topics: Hex[]; data: Hex }[] } | null)?.logs ?? [];
        const ours = logs.filter((l) => l.address.toLowerCase() === chain.factory.factory.toLowerCase());
        expect(parseEventLogs({ abi: forwarderFactoryAbi, logs: ours as never, eventName: 'Distribution' }).length, `${what} adopts a transaction that distributed nothing`).toBeGreaterThan(0);
      }
      if (row.status === 'REVERTED') {
        expect(receipts.filter((r) => r?.status === '0x1').map((r) => r!.transactionHash), `${what}, but anvil has it successful`).toEqual([]);
      }
    }
  }

  /** The order references of the case's orders that anvil shows distributed. */
  async function distributedOrders(s: CaseState): Promise<Set<string>> {
    const out = new Set<string>();
    for (const o of s.orders) if ((await distributionsOf(o.placed.paymentOrderNo, s.fromBlock)).length > 0) out.add(orderRef(o.placed.paymentOrderNo).toLowerCase());
    return out;
  }

  /** Honest again: passes, blocks and time, until every order of the case is COMPLETED; then what a never-lied-to gateway shows. */
  async function honestly(s: CaseState, label: string, gateway: Gateway = t.gateway) {
    proxy.set(null);
    await setAutomine(true);
    await mine(chain, 1);
    let rounds = 0;
    for (; rounds < HONEST_ROUNDS; rounds += 1) {
      const before = await snapshot(s);
      const r = await pass(gateway);
      expect(r, `${label}: honest pass ${rounds + 1}`).toEqual({ ok: true });
      await invariants(s, before, `${label}, honest pass ${rounds + 1}`, true);
      const statuses = await Promise.all(s.orders.map(async (o) => (await t.gateway.store.orders.get(o.placed.paymentOrderNo))!.state.status));
      if (statuses.every((x) => x === 'COMPLETED') && (await openTxs()).length === 0) break;
      await mine(chain, CONFIRMATIONS);
      t.clock.advance(LATER_S);
    }
    const state = await Promise.all(
      s.orders.map(async (o) => ({ order: (await t.gateway.store.orders.get(o.placed.paymentOrderNo))!.state.status, settlement: (await t.gateway.store.settlements.get(o.placed.paymentOrderNo))!.status })),
    );
    expect({ state, open: await openTxs() }, `${label}: every order completed once honesty returned (${Math.min(rounds + 1, HONEST_ROUNDS)} honest passes, with blocks and time between them), nothing left open`).toEqual({ state: s.orders.map(() => ({ order: 'COMPLETED', settlement: 'SETTLED' })), open: [] });
    for (const o of s.orders) {
      expect(await distributionsOf(o.placed.paymentOrderNo, s.fromBlock), `${label}: one distribution of ${o.placed.paymentOrderNo}`).toHaveLength(1);
      expect(await notifyTypes(t, o.placed.paymentOrderNo)).toEqual(['ORDER_PAID', 'ORDER_COMPLETED']);
    }
    expect((await relayerTxs(s.fromBlock)).filter((tx) => !tx.mined).map((tx) => [tx.hash, tx.nonce]), `${label}: relayer transactions stuck in anvil's mempool`).toEqual([]);
    expect(unhandled, 'unhandled rejections').toEqual([]);
  }

  /** Hostile passes of the current property, and how many met a rewritten answer (the lie reached the relayer). */
  const coverage = { passes: 0, tampered: 0 };

  /** One generated case: fresh paid orders, the phases of lies, then honesty. */
  async function runCase(c: Case) {
    const orders = await paidOrders(c.orders, c.withOther);
    const s = await startCase(orders);
    if (c.mempool) await setAutomine(false);
    if (c.sentFirst) {
      const before = await snapshot(s);
      expect(await pass()).toEqual({ ok: true });
      await invariants(s, before, 'after the honest first pass', true);
      if (c.mineFirst > 0) await mine(chain, c.mineFirst);
    }
    for (const [i, phase] of c.phases.entries()) {
      proxy.tampered = 0;
      proxy.set(rewriteOf(phase.lies, lieCtx));
      const before = await snapshot(s);
      if (phase.lies.some(misleading)) s.misled = true;
      const r = await pass();
      proxy.set(null);
      coverage.passes += 1;
      if (proxy.tampered > 0) coverage.tampered += 1;
      const label = `after hostile pass ${i + 1} (${JSON.stringify(phase.lies)}, ${proxy.tampered} answers rewritten, ${r.ok ? 'completed' : `failed: ${r.error}`})`;
      await invariants(s, before, label, !s.misled);
      if (phase.mine > 0) await mine(chain, phase.mine);
      if (phase.later) t.clock.advance(LATER_S);
    }
    expect(unhandled, 'unhandled rejections').toEqual([]);
    await honestly(s, 'after honesty returned');
  }

  async function property(arb: fc.Arbitrary<Case>, seed: number, numRuns: number, minShare: number) {
    coverage.passes = 0;
    coverage.tampered = 0;
    await fc.assert(
      fc.asyncProperty(arb, (c) => runCase(c)),
      fuzzOptions(seed, numRuns, { endOnFailure: true }),
    );
    expect(coverage.tampered, `hostile passes that met a rewritten answer, of ${coverage.passes}`).toBeGreaterThanOrEqual(Math.ceil(coverage.passes * minShare));
  }

  // --- generated cases -------------------------------------------------------------------------

  it('transport failures of any method the relayer uses (HTTP 500, dropped, not JSON, truncated, empty, JSON-RPC error, wrong id, no jsonrpc, slow): nothing recorded that anvil did not do, nothing sent unrecorded, and honesty settles every order exactly once', async () => {
    // Each lie meets a call the relayer makes: the preparing methods before anything is sent, the
    // following ones once a settlement transaction is open.
    const opts = { maxPhases: 2, maxLies: 1 };
    const sending = arbCase(arbTransportLie([...SEND_METHODS, 'eth_blockNumber']), { ...opts, sentFirst: false });
    const following = arbCase(arbTransportLie(FOLLOW_METHODS), { ...opts, sentFirst: true });
    await property(fc.oneof(sending, following), 0x5e71, 8, 0.5);
  }, 60_000);

  it('lies while preparing and sending (sendRawTransaction errors and false successes, nonces, gas estimates, fees, balances, eth_call): never an overpaying or unrecorded transaction, never a second distribution, and honesty settles every order exactly once', async () => {
    // The lies meet due orders: nothing is sent before them.
    const keep = (l: Lie) => !pinned(l) && !(l.method === 'eth_getBlockByNumber' && !l.how.startsWith('latest'));
    await property(arbCase(arbSemanticLie(SEND_METHODS, keep), { sentFirst: false }), 0x5e72, 20, 0.5);
  }, 60_000);

  it('lies while following (receipts missing, of another transaction, flipped, fabricated, in a non-canonical block, with logs missing or doubled; transactions unknown; the head behind; blocks with other hashes; logs): never SETTLED unless anvil has the distribution final, and honesty settles every order exactly once', async () => {
    // The lies meet an open settlement transaction: an honest pass sends it first.
    const keep = (l: Lie) => !pinned(l) && !(l.method === 'eth_getBlockByNumber' && l.how.startsWith('latest'));
    await property(arbCase(arbSemanticLie(FOLLOW_METHODS, keep), { sentFirst: true }), 0x5e73, 20, 0.4);
  }, 60_000);

  // --- the worker loop, a restart, an adoption ----------------------------------------------------

  it('the settlement worker logs each failed pass and goes on: garbage, hanging and failing answers never crash it nor surface as unhandled rejections, and the order settles once honesty returns', async () => {
    const lines: { level: number; msg: string; err?: { message?: string } }[] = [];
    const raw: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        raw.push(chunk.toString('utf8'));
        for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as (typeof lines)[number]);
        done();
      },
    });
    const workerLog = pino({ level: 'debug' }, sink);
    const [order] = await paidOrders(1, true);
    const s = await startCase([order!]);
    // Every read of the head gets another kind of garbage, a hanging connection among them.
    const kinds: (Transport | 'hang' | 'null')[] = ['http500', 'hang', 'nonJson', 'drop', 'truncated', 'emptyBody', 'rpcError', 'null'];
    let k = 0;
    proxy.set(async (x) => {
      if (x.call.method !== 'eth_getBlockByNumber' || x.call.params?.[0] !== 'latest') return null;
      const kind = kinds[k++ % kinds.length]!;
      if (kind === 'hang') return 'hang';
      if (kind === 'null') return { body: answer(x.call, null) };
      return transportReply(kind, x);
    });
    // The gateway's own lease runs out: the worker's settler takes the network.
    t.clock.advance(SETTINGS.leaseMs / 1000 + 1);
    const network = t.gateway.config.deployment.networks.find((n) => n.id === NET)!;
    const settler = new Settler({
      store: t.gateway.store,
      clock: t.clock,
      ids: t.gateway.ids,
      chain: evmRelayer({ rpcUrls: [proxy.url], chainId: chain.node.chainId, factory: chain.factory.factory, privateKey: RELAYER.privateKey, timeoutMs: 300 }),
      network,
      log: workerLog,
      owner: 'hostile-worker',
      leaseMs: SETTINGS.leaseMs,
      settings: { ...SETTINGS, maxFeePerGas: CAP },
    });
    const loop = startSettlementWorker(NET, settler, workerLog, 20);
    const failed = () => lines.filter((l) => l.msg === 'worker tick failed');
    const state = async () => (await t.gateway.store.settlements.get(order!.placed.paymentOrderNo))!.status;
    try {
      await waitUntil('the worker to fail passes on garbage', () => failed().length >= 2, 20_000);
      expect(await state()).toBe('DUE');
      proxy.set(null);
      await waitUntil('the settlement to be sent', async () => (await state()) !== 'DUE', 10_000);
      // Recorded before it is broadcast: wait for anvil to have mined it before adding blocks.
      const txHash = (await t.gateway.store.settlements.get(order!.placed.paymentOrderNo))!.txHash!;
      await waitUntil('the settlement transaction to be mined', async () => (await rpc(chain, 'eth_getTransactionReceipt', [txHash])) !== null, 10_000);
      await mine(chain, CONFIRMATIONS);
      await waitUntil('the settlement to be final', async () => (await state()) === 'SETTLED', 10_000);
    } finally {
      proxy.set(null);
      await loop.stop();
    }
    expect(unhandled).toEqual([]);
    expect(failed().every((l) => typeof l.err?.message === 'string' && l.err.message.length > 0)).toBe(true);
    await invariants(s, { head: await anvilHead(), txs: [], distributed: new Set() }, 'after the worker settled', false);
    expect(await distributionsOf(order!.placed.paymentOrderNo, s.fromBlock)).toHaveLength(1);
    expect((await t.gateway.store.orders.get(order!.placed.paymentOrderNo))!.state.status).toBe('COMPLETED');
    const text = raw.join('').toLowerCase();
    expect(text).not.toContain(RELAYER.privateKey.slice(2).toLowerCase());
  }, 60_000);

  /** A second gateway process on the same database, as after a crash of the first (which stays silent from now on). */
  async function restartedGateway(): Promise<Gateway> {
    return createGateway({ config: t.gateway.config, clock: t.clock, logger, workers: false });
  }

  it.each<[string, Lie[], Lie[]]>([
    ['the node took the transaction, the answer was cut (recorded SIGNED only); after the restart the node says it does not know it', [{ method: 'eth_sendRawTransaction', how: 'acceptedThenDrop' }], [{ method: 'eth_getTransactionReceipt', how: 'null' }, { method: 'eth_getTransactionByHash', how: 'null' }]],
    ['the node took the transaction and answered an error; after the restart the head is not a number', [{ method: 'eth_sendRawTransaction', how: 'acceptedThenError' }], [{ method: 'eth_blockNumber', how: 'nonHex' }]],
    ['the node answered success without taking it; after the restart the nonces are lower than the truth', [{ method: 'eth_sendRawTransaction', how: 'swallowed' }], [{ method: 'eth_getTransactionCount', how: 'lower' }]],
  ])('a gateway restarted mid-lie (%s) follows what its predecessor recorded and settles exactly once', async (_name, beforeCrash, afterRestart) => {
    const orders = await paidOrders(2, false);
    const s = await startCase(orders);
    proxy.set(rewriteOf(beforeCrash, lieCtx));
    let before = await snapshot(s);
    await pass();
    proxy.set(null);
    await invariants(s, before, 'the first gateway, lied to, before its crash', false);
    // The first gateway is gone; its lease runs out and the second takes over, lied to at first.
    t.clock.advance(SETTINGS.leaseMs / 1000 + 1);
    const second = await restartedGateway();
    try {
      proxy.set(rewriteOf(afterRestart, lieCtx));
      before = await snapshot(s);
      await pass(second);
      proxy.set(null);
      await invariants(s, before, 'the restarted gateway, lied to', false);
      await honestly(s, 'the restarted gateway, honest', second);
    } finally {
      proxy.set(null);
      await second.close();
      // The first gateway is the suite's again.
      t.clock.advance(SETTINGS.leaseMs / 1000 + 1);
    }
  }, 30_000);

  it.each<[string, Lie[]]>([
    ['no log is found', [{ method: 'eth_getLogs', how: 'empty' }]],
    ['the log search answers garbage', [{ method: 'eth_getLogs', how: 'nonArray' }]],
    ['the plan is said to be undistributed', [{ method: 'eth_call', how: 'distributedFalse' }]],
  ])('a plan someone else distributed first, the relayer lied to (%s): nothing sent, only the real distribution adopted, completed once honesty returns', async (_name, lies) => {
    const [order] = await paidOrders(1, false);
    const s = await startCase([order!]);
    await chain.distribute(forwarderPlan(order!.plan));
    proxy.set(rewriteOf(lies, lieCtx));
    const before = await snapshot(s);
    await pass();
    proxy.set(null);
    await invariants(s, before, 'after the lie', true);
    await mine(chain, CONFIRMATIONS);
    await honestly(s, 'honest again');
    expect((await t.gateway.store.settlements.get(order!.placed.paymentOrderNo))!.txHash).toBe((await distributionsOf(order!.placed.paymentOrderNo, s.fromBlock))[0]!.txHash);
  });

  // --- the defects this file found, one pinned case each (they fail until src is fixed) ----------

  /** One paid order whose settlement an honest pass has sent (mined at once unless `mempool`). */
  async function sentOrder(opts: { mempool?: boolean } = {}) {
    const [order] = await paidOrders(1, false);
    const s = await startCase([order!]);
    if (opts.mempool) await setAutomine(false);
    const before = await snapshot(s);
    expect(await pass()).toEqual({ ok: true });
    await invariants(s, before, 'after the honest pass that sent it', true);
    const st = (await t.gateway.store.settlements.get(order!.placed.paymentOrderNo))!;
    expect(st.status).toBe('SENT');
    return { order: order!, s, txId: st.txId! };
  }

  /** One pass told `lies`. */
  async function liedPass(lies: Lie[]) {
    proxy.set(rewriteOf(lies, lieCtx));
    try {
      return await pass();
    } finally {
      proxy.set(null);
    }
  }

  const txRow = async (id: string) => (await t.gateway.store.settlements.getTx(id))!;

  it('was defect 1 — eth_blockNumber one block ahead of the chain makes a settlement with 1 real confirmation of the 2 required SETTLED and its order COMPLETED (relayer.ts head() believes eth_blockNumber; settle.ts counts confirmations from it)', async () => {
    const { order, s, txId } = await sentOrder();
    const mined = Number(((await rpc(chain, 'eth_getTransactionReceipt', [txId])) as { blockNumber: string }).blockNumber);
    expect((await anvilHead()) - mined + 1, 'real confirmations').toBe(1);
    await liedPass([{ method: 'eth_blockNumber', how: 'ahead1' }]);
    const no = order.placed.paymentOrderNo;
    expect({ settlement: (await t.gateway.store.settlements.get(no))!.status, order: (await t.gateway.store.orders.get(no))!.state.status, tx: (await txRow(txId)).status }).toEqual({ settlement: 'SENT', order: 'PAID', tx: 'SENT' });
    await honestly(s, 'honest again');
  });

  it('was defect 2 — one eth_getTransactionCount("pending") answer 3 above the chain puts the settlement at a nonce the chain never reaches; honest again, it is never mined, and a settlement due later queues behind it for good (settle.ts sendDue trusts the pending count; follow keeps a nonce-gapped transaction pending and replaces it at the same nonce)', async () => {
    const [first] = await paidOrders(1, false);
    // The case starts before the lied pass: its distribution is one of the case's.
    const before = await startCase([first!]);
    const nonceBefore = Number(await rpc(chain, 'eth_getTransactionCount', [RELAYER.address, 'latest']));
    await liedPass([{ method: 'eth_getTransactionCount', how: 'higherPendingOnly' }]);
    const row = (await t.gateway.store.settlements.get(first!.placed.paymentOrderNo))!;
    const sentTx = (await t.gateway.db.kysely.selectFrom('settlement_txs').select('nonce').where('id', '=', row.txId!).executeTakeFirstOrThrow()).nonce;
    // Clamped to the chain's next nonce plus our open transactions (none): the true next nonce.
    expect(Number(sentTx), 'the nonce signed').toBe(nonceBefore);
    // A settlement that becomes due after the lie, with the endpoint honest from now on.
    const [later] = await paidOrders(1, false);
    const s = await startCase([first!, later!]);
    s.fromBlock = before.fromBlock;
    // What the shared receivers held before the first order's distribution (it may have gone
    // out in the lied pass; the later order's payment moved balances since).
    if ((await distributionsOf(first!.placed.paymentOrderNo, before.fromBlock)).length > 0) {
      for (const [a, v] of first!.shared) s.sharedBefore.set(a, (s.sharedBefore.get(a) ?? 0n) - v);
    }
    await honestly(s, 'honest again');
  });

  it.each([
    ['0: the relayer signs 10 000 gas, below the 21 000 intrinsic gas of any transaction', 'zero'],
    ['60 000 000: the relayer signs 72 010 000 gas, above the block gas limit (30 000 000)', 'huge'],
  ])('was defect 3 — eth_estimateGas answering %s; the node refuses the transaction, and every rebroadcast and replacement keeps that gas limit: honest again, the settlement is never mined and the nonce queue is wedged (settle.ts sendDue uses the estimate unchecked; replace re-signs with tx.gasLimit)', async (_name, how) => {
    const [order] = await paidOrders(1, false);
    const s = await startCase([order!]);
    await liedPass([{ method: 'eth_estimateGas', how }]);
    await honestly(s, 'honest again');
  });

  it('was defect 4 — a receipt whose status is neither 0x0 nor 0x1 is taken for a revert: a settlement transaction anvil shows successful and final is recorded REVERTED and its order put back with a retry delay (relayer.ts toReceipt: success = status === "success", anything else a revert)', async () => {
    const { order, txId } = await sentOrder();
    await mine(chain, CONFIRMATIONS);
    await liedPass([{ method: 'eth_getTransactionReceipt', how: 'statusGarbage' }]);
    const st = (await t.gateway.store.settlements.get(order.placed.paymentOrderNo))!;
    // Refusing the answer (the transaction still SENT) or settling it are both right; REVERTED is not.
    expect({ tx: (await txRow(txId)).status, settlement: st.status, lastError: st.lastError }).toEqual({ tx: 'SENT', settlement: 'SENT', lastError: null });
  });

  it('was defect 5 — a receipt of another transaction is taken for the settlement transaction asked about: the settlement transaction, still pending, is recorded FINAL as mined by that other transaction (its hash, block and gas), and its order is put back as due "not distributed by it" (relayer.ts receipt() never checks transactionHash)', async () => {
    const { order, s, txId } = await sentOrder({ mempool: true });
    const before = await snapshot(s);
    await liedPass([{ method: 'eth_getTransactionReceipt', how: 'otherTx' }]);
    const row = await txRow(txId);
    const st = (await t.gateway.store.settlements.get(order.placed.paymentOrderNo))!;
    const pool = (await relayerTxs(s.fromBlock)).filter((tx) => !tx.mined).map((tx) => tx.hash);
    expect({ status: row.status, minedHash: row.minedHash, settlement: st.status, relayerTxsPending: pool }).toEqual({ status: 'SENT', minedHash: null, settlement: 'SENT', relayerTxsPending: [txId.toLowerCase()] });
    await invariants(s, before, 'after the lie', true);
  });

  it('was defect 6 — the distribution search adopts whatever transaction a Distribution log names, without checking that its receipt distributed the plan: a log naming the payment transaction makes the settlement SENT in the payer\'s transfer (relayer.ts findDistribution; settle.ts adopt)', async () => {
    const [order] = await paidOrders(1, false);
    const s = await startCase([order!]);
    await chain.distribute(forwarderPlan(order!.plan));
    const before = await snapshot(s);
    await liedPass([{ method: 'eth_getLogs', how: 'otherTx' }]);
    const st = (await t.gateway.store.settlements.get(order!.placed.paymentOrderNo))!;
    expect(st.txHash, 'the transaction the settlement is recorded in').not.toBe(lieCtx.otherTx.toLowerCase());
    await invariants(s, before, 'after the lie', true);
  });

  it('was defect 7 — a replacement the node took while answering an error is forgotten: its hash, recorded before the broadcast, is overwritten with the old record, so the relayer\'s own transaction mined on chain is in no row (settle.ts follow: replace() saves the new hash, then follow writes back its stale copy `cleared`)', async () => {
    const [order] = await paidOrders(1, false);
    const s = await startCase([order!]);
    let before = await snapshot(s);
    // Recorded, but never reaches the node; the replacement delay passes.
    await liedPass([{ method: 'eth_sendRawTransaction', how: 'swallowed' }]);
    await invariants(s, before, 'after the swallowed broadcast', true);
    t.clock.advance(LATER_S);
    // Replaced with higher fees: the node takes the replacement (and mines it) but answers an error.
    before = await snapshot(s);
    await liedPass([{ method: 'eth_sendRawTransaction', how: 'acceptedThenError' }]);
    await invariants(s, before, 'after the replacement the node took but answered an error', true);
    await honestly(s, 'honest again');
  });

  it('logged what it did, and never the relayer key', () => {
    const text = logged.join('');
    expect(text).toContain('settlement sent');
    expect(text).toContain('settlement final');
    expect(text.toLowerCase()).not.toContain(RELAYER.privateKey.slice(2).toLowerCase());
  });
});
