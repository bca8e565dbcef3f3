// One pass of a network's chain scan (PROTOCOL §10, issue 4): new ERC-20 transfers to watched
// deposit addresses since the cursor, then the transfers not final yet, whose confirmations
// grow and whose blocks are checked to still be canonical. Every transfer goes to the payment
// port, keyed by (network, tx hash, log index), so a rescan or a transfer that reappears in
// another block after a reorganisation is counted once. The cursor moves only after the facts
// are stored: a crash mid-scan repeats work, it never skips it. The facts of a pass are applied
// per order, each order's together (two transfers completing an order in one pass are one
// decision, not a transient UNDERPAID), many orders per transaction. Native-coin receipts have
// no logs: they are found by balance reads at the head (scan-native.ts).
import type { NetworkDeployment } from '../domain/catalogue.js';
import { groupBy, groupByOrder, LeaseLostError, type PaymentFacts, type TransferFact } from './record-payment.js';
import type { Block, ChainCursor, ChainReader, ChainTransfer, Clock, EventLog, Store, StoreTx, TransferRead } from './ports.js';
import type { DepositAddressRecord, PaymentRecord } from './records.js';
import { nowSeconds } from './ports.js';
import { isNativeReceipt, type NativeMemory, scanNative } from './scan-native.js';

export interface ScanDeps {
  store: Store;
  clock: Clock;
  payments: PaymentFacts;
  reader: ChainReader;
  network: NetworkDeployment;
  log: EventLog;
  /** Identifies this instance in the network's scan lease. */
  owner: string;
  leaseMs: number;
  /** Most blocks read per pass (the reader splits further if the provider insists). */
  maxBlocks: number;
  /** Watched addresses read (and asked about) at a time; default WATCH_PAGE_SIZE. */
  watchPageSize?: number;
  /** Recipients asked about per tokenTransfers call (its transfers are stored while the next call runs); default RECIPIENTS_PER_REQUEST. */
  recipientsPerRequest?: number;
  /** Watched addresses above which a pass reads every transfer of the tokens; default WIDE_SCAN_FROM. */
  wideScanFrom?: number;
  /** Watched native-coin addresses above which a pass reads only the balances that can have changed; default NATIVE_SPARSE_FROM. */
  nativeSparseFrom?: number;
  /** How often (ms) every watched native-coin balance is read all the same; default NATIVE_FULL_READ_MS. */
  nativeFullReadMs?: number;
  /** Kept between passes by the scan itself (created on the first pass): the same deps object must be passed every pass. */
  nativeMemory?: NativeMemory;
}

/** Told at a pass whether this instance took the network's scan lease, before the pass reads anything (a pass that then fails still held it). */
export type LeaseListener = (held: boolean) => void;

/**
 * Recipients per eth_getLogs request (providers limit the size of a topic OR-list): the EVM
 * reader splits its calls by this, and the scan asks this many at a time, so one call is one request.
 */
export const RECIPIENTS_PER_REQUEST = 200;

/** Watched addresses per page of a scan: 25 eth_getLogs requests of the reader's 200 recipients. */
export const WATCH_PAGE_SIZE = 5_000;

/**
 * More watched addresses than this (five requests' worth), and a pass reads every Transfer log of
 * the network's tokens in its blocks and looks their recipients up in the database: one request
 * (split only if the provider refuses the size) whatever the number of open orders, where asking
 * by recipient costs one request per 200 watched addresses on every pass. Only the first page of
 * watched addresses is listed then, so it takes effect below WATCH_PAGE_SIZE (a threshold of that
 * or more turns the wide pass off). A wide read that fails (say, more transfers in one block than
 * the provider answers) makes that pass ask by recipient.
 */
export const WIDE_SCAN_FROM = 1_000;

/** Most blocks a wide pass reads: it holds every transfer of the tokens in them at once. */
export const WIDE_MAX_BLOCKS = 100;

export interface ScanResult {
  /** false when another instance holds this network's lease. */
  leased: boolean;
  head: number | null;
  scanned: { from: number; to: number } | null;
  transfers: number;
  reverted: number;
  /**
   * The pass reached the head with nothing left unread: the earlier of its start and the head
   * block's time is then recorded on the cursor (the expiry worker closes an order only once that
   * is past its deadline).
   */
  caughtUp: boolean;
  /** When caught up: until when (ms) the pass covered the chain, as recorded on the cursor. */
  caughtUpAt?: number;
}

const statusFor = (confirmations: number, required: number) => (confirmations >= required ? 'FINAL' : 'SEEN');

/** Thrown inside a pass that finds its lease taken by another instance before it writes. */

export async function scanChainOnce(deps: ScanDeps, onLease?: LeaseListener): Promise<ScanResult> {
  try {
    return await scanPass(deps, onLease);
  } catch (err) {
    if (!(err instanceof LeaseLostError)) throw err;
    deps.log.warn({ network: deps.network.id }, 'another instance took the scan lease during a pass (it outlived its lease); nothing more of it is written');
    return { leased: false, head: null, scanned: null, transfers: 0, reverted: 0, caughtUp: false };
  }
}

async function scanPass(deps: ScanDeps, onLease: LeaseListener | undefined): Promise<ScanResult> {
  const { network, store, reader } = deps;
  const now = deps.clock.nowMs();
  const cursor = await store.chainCursors.lease(network.id, deps.owner, now, now + deps.leaseMs);
  onLease?.(cursor !== null);
  if (!cursor) return { leased: false, head: null, scanned: null, transfers: 0, reverted: 0, caughtUp: false };
  // The lease is renewed before every write of the pass, only if it never ran out: a pass that
  // outlived it (slow reads, a stalled process) may have let another instance scan meanwhile,
  // and must not write what it read before over what the other one found since (one scanner per
  // network at a time, ADR 0007). It stops; the next pass starts afresh.
  const renew = (q: Pick<StoreTx, 'chainCursors'>) => {
    const at = deps.clock.nowMs();
    return q.chainCursors.renew(network.id, deps.owner, at, at + deps.leaseMs);
  };
  const keepLease = async () => {
    if (!(await renew(store))) throw new LeaseLostError();
  };
  // Each order's facts of the pass together, a few hundred orders per transaction, each of which
  // renews the lease inside it first (its fence, record-payment.ts). A failure fails the pass: the
  // cursor does not move and the next pass applies the facts again (idempotent).
  const record = async (list: readonly TransferFact[]) => {
    if (list.length > 0) await deps.payments.passObserved(list, renew);
  };
  const latest = await reader.head();
  const head = latest.number;
  // What a pass that reaches this head has seen: everything mined before it started, but no
  // later than the head block's own time. A node that stopped importing blocks (no peers) still
  // answers, with an old head: the scan is then caught up to that block's time only.
  const coversUntil = Math.min(now, latest.timestamp * 1000);
  const unfinal = await store.payments.listUnfinal(network.id);
  const checked = await recheckUnfinal(deps, cursor, latest, unfinal.filter((u) => !isNativeReceipt(u)), cursor.nextBlock ?? (await firstBlock(deps, head)));
  const { from } = checked;
  let reverted = checked.reverted;
  // Every fact of the pass, applied per order at the end (one decision per order and pass).
  const facts: TransferFact[] = checked.facts;

  // The reverts are stored with the pass's other facts, and a REVERTED row is not re-checked: the
  // cursor goes back first, so that a pass that ends early (an endpoint that lags, a failure)
  // leaves the next one to read those blocks again. Until a pass reaches the head again the
  // network is not caught up (the expiry waits: the money may be in the blocks to read again).
  // So also when only the block the cursor last covered was replaced: the new blocks may hold a
  // payment made before a deadline the old fork's blocks had passed (the cursor stayed, still
  // caught up past it, and the expiry closed an order paid on time).
  const rewound = cursor.nextBlock !== null && from < cursor.nextBlock;
  if (rewound) {
    await keepLease();
    await store.chainCursors.rewind(network.id, deps.owner, from);
  }

  const nowSec = nowSeconds(deps.clock);
  // Addresses are watched as the chain still to read was: a pass behind (after an outage, or
  // catching up) reads blocks mined while an address's watch after closure (24 h) still ran,
  // though it has ended by the clock, and a payment in them would otherwise never be read.
  const watchedAt = await watchTime(deps, rewound ? null : cursor.caughtUpAt, latest, from, nowSec);
  const native = await scanNative(deps, latest, { nowMs: now, watchedAt, coversUntil }, unfinal.filter(isNativeReceipt), (f) => facts.push(f));
  reverted += native.reverted;
  let transfers = native.transfers;
  // The facts found so far (re-checks, native receipts) wait for their order's new transfers, so
  // that each order's facts of the pass are decided together; the rest are applied at the end.
  const held = groupByOrder(facts);
  if (from > head) {
    await record(facts);
    native.commit();
    await store.payments.refreshConfirmations(network.id, head, deps.clock.nowMs());
    // Caught up only at the head itself: an endpoint behind the cursor (failed over to) has not
    // seen the blocks since, and other nodes may have more.
    let caughtUp = false;
    if (native.complete && from === head + 1) {
      await keepLease();
      caughtUp = await store.chainCursors.caughtUp(network.id, deps.owner, native.coversUntil);
    }
    return { leased: true, head, scanned: null, transfers, reverted, caughtUp, ...(caughtUp ? { caughtUpAt: native.coversUntil } : {}) };
  }
  const read = await readTokenTransfers(deps, { from, head, watchedAt }, held, record);
  transfers += read.transfers;
  const { to, covers } = read;
  await record([...held.values()].flat());
  // The native receipts of the pass are stored: what it read is remembered (not before, or a pass
  // failing in between would leave them unread by the next sparse pass).
  native.commit();
  await store.payments.refreshConfirmations(network.id, head, deps.clock.nowMs());
  // Nothing asked (no token, no watched address): the range is covered, no hash to check later.
  const through: Block | { number: number; hash: null } = covers ?? { number: to, hash: null };
  if (through.number < from) {
    deps.log.warn({ network: network.id, from, to, through: through.number }, 'the endpoint that answered the logs has not reached the blocks asked for; the next pass asks again');
    return { leased: true, head, scanned: null, transfers, reverted, caughtUp: false };
  }
  if (through.number < to) deps.log.info({ network: network.id, to, through: through.number }, 'the endpoint that answered the logs lags the head; scanned as far as it went');
  let caughtUp = native.complete && through.number >= head;
  await keepLease();
  if (!(await store.chainCursors.advance(network.id, deps.owner, through.number + 1, through.hash, caughtUp ? native.coversUntil : null))) {
    deps.log.warn({ network: network.id }, 'lost the scan lease during a pass; the next holder rescans');
    caughtUp = false;
  }
  return { leased: true, head, scanned: { from, to: through.number }, transfers, reverted, caughtUp, ...(caughtUp ? { caughtUpAt: native.coversUntil } : {}) };
}

/**
 * The pass's token transfers to watched addresses from `from`, as far as one pass reads (`to`),
 * stored as each answer arrives (`record`), each order's with its facts of the pass held so far
 * (taken out of `held`). `covers`: how far every answer went, the lowest last block of them with
 * its hash (null when nothing was asked: no token, no watched address).
 */
async function readTokenTransfers(
  deps: ScanDeps,
  at: { from: number; head: number; watchedAt: number },
  held: Map<string, TransferFact[]>,
  record: (list: readonly TransferFact[]) => Promise<void>,
): Promise<{ transfers: number; to: number; covers: Block | null }> {
  const { network, store, reader } = deps;
  const { from, head, watchedAt } = at;
  let transfers = 0;
  const tokens = network.currencies.flatMap((c) => (c.contract ? [c.contract.toLowerCase()] : []));
  const perRequest = deps.recipientsPerRequest ?? RECIPIENTS_PER_REQUEST;
  const pageSize = deps.watchPageSize ?? WATCH_PAGE_SIZE;
  // The watched addresses a page at a time (by address): with 100,000 open orders the scan holds
  // one page, not all of them. Native options' addresses are included: a token sent there is
  // recorded (and not counted).
  let page = tokens.length > 0 ? await store.depositAddresses.listWatched(network.id, watchedAt, { after: null, limit: pageSize }) : [];
  // Many watched addresses: one request for every Transfer of the tokens in fewer blocks, and
  // the recipients looked up, instead of one request per 200 watched addresses whatever was paid.
  const wide = page.length > (deps.wideScanFrom ?? WIDE_SCAN_FROM);
  const to = Math.min(head, from + (wide ? Math.min(deps.maxBlocks, WIDE_MAX_BLOCKS) : deps.maxBlocks) - 1);
  // How far every answer went: the lowest last block of them, with its hash. An endpoint that
  // had not reached `to` (a lagging node behind a load balancer) holds the cursor back to its block.
  let covers: Block | null = null;
  /** Stores one answer's transfers to watched addresses, with the pass's earlier facts of their orders. */
  const storeRead = async (read: TransferRead, depositsAt: ReadonlyMap<string, DepositAddressRecord[]>) => {
    covers = earlierOf(covers, read.through);
    const fresh: TransferFact[] = [];
    for (const t of read.transfers) {
      const fact = factFor(t, depositsAt.get(t.to) ?? [], network, head);
      if (!fact) continue;
      fresh.push(fact);
      transfers += 1;
    }
    const earlier: TransferFact[] = [];
    for (const no of new Set(fresh.map((f) => f.paymentOrderNo))) {
      const list = held.get(no);
      if (!list) continue;
      earlier.push(...list);
      held.delete(no);
    }
    await record([...earlier, ...fresh]);
  };
  let byRecipient = !wide;
  if (wide) {
    let read: TransferRead | null = null;
    try {
      read = await reader.tokenTransfers(tokens, null, from, to);
    } catch (err) {
      // More transfers in one block than the provider answers, an answer too large to arrive in
      // time, or one it cannot give: this pass asks by recipient, which reads only ours.
      deps.log.warn({ network: network.id, from, to, err: (err as Error).message }, "reading every transfer of the tokens failed; this pass asks for the watched addresses' transfers");
      byRecipient = true;
    }
    if (read) {
      const recipients = [...new Set(read.transfers.map((t) => t.to))];
      await storeRead(read, byAddress(await store.depositAddresses.watchedAmong(network.id, watchedAt, recipients)));
    }
  }
  while (byRecipient && page.length > 0) {
    const depositsAt = byAddress(page);
    // One request's recipients at a time; the next request is in flight while the transfers of
    // this one are stored (the node works while the database does). The first request is a
    // quarter of the others: storing starts sooner.
    const recipients = [...depositsAt.keys()];
    const slices: [number, number][] = [];
    for (let i = 0, size = Math.max(1, Math.floor(perRequest / 4)); i < recipients.length; i += size, size = perRequest) slices.push([i, i + size]);
    const ask = (k: number) => {
      const asked = reader.tokenTransfers(tokens, recipients.slice(...slices[k]!), from, to);
      asked.catch(() => undefined); // awaited below; a failure must not count as unhandled meanwhile
      return asked;
    };
    let next: Promise<TransferRead> | null = ask(0);
    for (let k = 0; next; k += 1) {
      const read: TransferRead = await next;
      next = k + 1 < slices.length ? ask(k + 1) : null;
      await storeRead(read, depositsAt);
    }
    if (page.length < pageSize) break;
    page = await store.depositAddresses.listWatched(network.id, watchedAt, { after: page[page.length - 1]!.address, limit: pageSize });
  }
  return { transfers, to, covers };
}

/**
 * The token transfers not final yet, checked against the chain: a block that is no longer
 * canonical reverts its transfers, and the scan goes back to that block so that a transfer mined
 * again elsewhere is found (`from`, lowered from the cursor's next block). Also the block the
 * cursor last covered: if the chain has another block there now (a reorganisation, or logs read
 * from another fork), transfers may have come into blocks already scanned, and the scan goes back
 * the confirmations required. The facts: each transfer whose status changes (REVERTED included).
 */
async function recheckUnfinal(deps: ScanDeps, cursor: ChainCursor, latest: Block, tokenUnfinal: readonly PaymentRecord[], next: number): Promise<{ facts: TransferFact[]; reverted: number; from: number }> {
  const { network, reader } = deps;
  const head = latest.number;
  const required = network.chain.confirmations;
  let from = next;
  let reverted = 0;
  const facts: TransferFact[] = [];
  // Each block's hash is read once per pass, a few at a time: a burst of transfers in a few
  // blocks must not cost one request per transfer on every pass until they are final.
  // The block the cursor last covered is read with them.
  const covered = cursor.nextBlock !== null && cursor.scannedHash !== null && cursor.nextBlock - 1 <= head ? cursor.nextBlock - 1 : null;
  // The head's own hash came with it: a caught-up pass (the cursor last covered the head) asks nothing more.
  const hashes = await blockHashes(reader, [...new Set([...tokenUnfinal.map((p) => p.blockNumber), ...(covered === null ? [] : [covered])].filter((n) => n <= head))], latest);
  const coveredNow = covered === null ? null : (hashes.get(covered) ?? null);
  if (covered !== null && coveredNow !== null && coveredNow.toLowerCase() !== cursor.scannedHash!.toLowerCase()) {
    from = Math.max(0, covered + 1 - required);
    deps.log.warn({ network: network.id, block: covered, was: cursor.scannedHash, now: coveredNow, from }, 'the last block scanned is no longer on the chain: rescanning');
  }
  for (const p of tokenUnfinal) {
    // A block beyond the head is no evidence of a reorg: an endpoint that lags (say, the one
    // failed over to) has not reached it yet. It is checked once the chain gets there.
    if (p.blockNumber > head) continue;
    const hash = hashes.get(p.blockNumber) ?? null;
    // No block at or below the head read: an endpoint behind the one that gave the head (a
    // load balancer's lagging node) answered. No evidence either way: checked again next pass.
    if (hash === null) continue;
    const fact: TransferFact = { ...p };
    if (hash.toLowerCase() !== p.blockHash.toLowerCase()) {
      fact.status = 'REVERTED';
      fact.confirmations = 0;
      reverted += 1;
      // The transaction may be mined again anywhere after the fork, which can lie below its old
      // block (a shorter chain): back the confirmations required, the deepest reorganisation a
      // payment not yet final can see.
      from = Math.min(from, Math.max(0, p.blockNumber + 1 - required));
      deps.log.warn({ network: network.id, txHash: p.txHash, block: p.blockNumber }, 'a counted transfer left the canonical chain');
    } else {
      fact.confirmations = head - p.blockNumber + 1;
      fact.status = statusFor(fact.confirmations, required);
      // Only a new status goes through the payment port; growing confirmations are one UPDATE below.
      if (fact.status === p.status) continue;
    }
    facts.push(fact);
  }
  return { facts, reverted, from };
}

/**
 * The moment (Unix seconds) addresses are watched as of in this pass: the chain the last complete
 * pass covered (blocks after it were mined no earlier), or, unknown (never caught up, or since a
 * rewind), the first block to read; never later than now.
 */
async function watchTime(deps: ScanDeps, caughtUpAt: number | null, latest: Block & { timestamp: number }, from: number, nowSec: number): Promise<number> {
  if (caughtUpAt !== null) return Math.min(nowSec, Math.floor(caughtUpAt / 1000));
  const first = Math.min(from, latest.number);
  const at = first === latest.number ? latest.timestamp : await deps.reader.blockTimestamp(first);
  return Math.min(nowSec, at ?? latest.timestamp);
}

/** Deposit addresses by address (an address may serve several options of one order's plan). */
const byAddress = (deposits: readonly DepositAddressRecord[]) => groupBy(deposits, (d) => d.address);

/**
 * The lower of two answers' last blocks. Two answers about the same block that disagree on its
 * hash came from different forks (endpoints failed over between): neither can be trusted.
 */
export function earlierOf(a: Block | null, b: Block | null): Block | null {
  if (a === null) return b;
  if (b === null || a.number < b.number) return a;
  if (b.number === a.number && b.hash !== a.hash) throw new Error(`RPC endpoints disagree on block ${a.number}: ${a.hash} and ${b.hash}`);
  return b;
}

/** Clocks of the gateway and the chain may disagree a little: a first scan looks this much further back. */
export const FIRST_SCAN_MARGIN_SECONDS = 600;

/**
 * Where the first scan of a network starts: the oldest block whose transfers could still be
 * unconfirmed, or, when deposit addresses are already watched (handed out while the network's
 * node could not be reached, say), the last block before the oldest of them was handed out, so
 * that nothing paid to it meanwhile is missed. Found by bisecting block timestamps (about
 * log2(head) reads, once per network).
 */
async function firstBlock(deps: ScanDeps, head: number): Promise<number> {
  const recent = Math.max(0, head - deps.network.chain.confirmations);
  const oldest = await deps.store.depositAddresses.oldestWatched(deps.network.id, nowSeconds(deps.clock));
  if (oldest === null) return recent;
  const since = Math.floor(oldest / 1000) - FIRST_SCAN_MARGIN_SECONDS;
  const at = async (n: number) => (await deps.reader.blockTimestamp(n)) ?? Number.POSITIVE_INFINITY;
  if ((await at(recent)) <= since) return recent;
  if ((await at(0)) > since) return 0;
  // at(lo) <= since < at(hi)
  let lo = 0;
  let hi = recent;
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if ((await at(mid)) <= since) lo = mid;
    else hi = mid;
  }
  deps.log.info({ network: deps.network.id, from: lo, head }, 'first scan of the network: from the block before its oldest watched deposit address was handed out');
  return lo;
}

const HASH_READS_IN_FLIGHT = 8;

async function blockHashes(reader: ChainReader, numbers: readonly number[], known: Block): Promise<Map<number, string | null>> {
  const out = new Map<number, string | null>([[known.number, known.hash]]);
  const unknown = numbers.filter((n) => n !== known.number);
  for (let i = 0; i < unknown.length; i += HASH_READS_IN_FLIGHT) {
    const slice = unknown.slice(i, i + HASH_READS_IN_FLIGHT);
    const read = await Promise.all(slice.map((n) => reader.blockHash(n)));
    slice.forEach((n, j) => out.set(n, read[j] ?? null));
  }
  return out;
}

/**
 * The payment fact of a transfer to a deposit address. A token the address was not chosen for
 * is still recorded (with the token contract as its currency), so the merchant can see it, but
 * it matches no payment option and counts for nothing.
 */
function factFor(t: ChainTransfer, deposits: DepositAddressRecord[], network: NetworkDeployment, head: number): TransferFact | null {
  const first = deposits[0];
  if (!first) return null;
  const matched = deposits.find((d) => d.token !== null && d.token.toLowerCase() === t.token);
  const confirmations = head - t.blockNumber + 1;
  return {
    paymentOrderNo: (matched ?? first).paymentOrderNo,
    network: network.id,
    currency: matched ? matched.currency : t.token,
    txHash: t.txHash,
    logIndex: t.logIndex,
    blockNumber: t.blockNumber,
    blockHash: t.blockHash,
    address: t.to,
    amount: t.amount,
    confirmations,
    status: statusFor(confirmations, network.chain.confirmations),
  };
}
