// Native-coin receipts (ETH, BNB, POL) at the deposit addresses of native options (issue 4). A
// plain value transfer leaves no log, so the scanner reads the balances of those addresses at
// the head, in batches, and compares each with what is already credited to it: the sum of its
// native payment rows that are not REVERTED.
//
// - An increase beyond the credited sum is one payment row of the difference, keyed by the
//   synthetic tx hash `balance:<address>:<head>` and log index 0, in the head block (the
//   block where it was first seen: confirmations count from there, never from earlier). The
//   key depends only on what the chain shows, and the credited sum includes the row as soon as
//   it is stored, so a rescan, a crash before the cursor moves or a second pass at the same
//   head adds nothing: each receipt is counted once.
// - A row becomes FINAL when it has the network's confirmations and the balance at the block
//   that has exactly that many (head - confirmations + 1) still covers it together with every
//   credited row before it. Until then it stays SEEN with its confirmations updated.
// - A balance lower than the credited sum means unconfirmed money left the canonical chain (a
//   reorganisation): SEEN rows are REVERTED, newest first, until the rest is covered. If the
//   payment is mined again, the balance rises again and a new row counts it once.
//
// - The transaction is named beside the key (`chainTxHash`, shown as the payment's `tx_hash`)
//   when exactly one transaction of the blocks since the last complete pass sent value to the
//   address, and exactly the receipt's amount: the sparse pass has read those blocks' value
//   transactions; a full pass reads them when a receipt needs them (at most
//   NATIVE_SPARSE_MAX_BLOCKS blocks, not in the first pass of a process, which has no earlier
//   head). Otherwise the key stays the only name (newcomer walkthrough: the payer was shown
//   "transaction balance:0x…:345", which no wallet or explorer knows).
//
// Limits, by design of balance reads:
// - Several receipts between two passes are one row of their sum (named by its key). Internal
//   transfers (a contract sending value to the address) are detected as well, which plain
//   transaction scanning would miss; they have no transaction of their own to name.
// - Money that leaves the address is modelled only as settlements: what a final (SETTLED)
//   settlement paid out from the address is taken off the credited sum, so a receipt after the
//   distribution (money sent to an order that expired underpaid and was settled) is seen in full.
//   FINAL rows are never reverted by a lower balance, and no row is while a settlement of the
//   address is in flight (SENT): the lower balance may be its distribution.
// - Native coin sent to a token option's address, and ERC-20 tokens credited without a
//   Transfer log, are not seen. Tokens sent to a native option's address are seen by the log
//   scan and recorded unmatched.
//
// Many native options watched (more than `nativeSparseFrom`, default NATIVE_SPARSE_FROM): reading
// every balance on every pass costs one eth_getBalance per address and pass, and a hosted provider
// bills each. A pass then reads the balances only of the addresses that can have changed: those
// with unfinal rows (reorganisations, finality) and the recipients of the value-carrying
// transactions of the blocks since the last pass (valueTransfers, parent hashes checked). Every
// watched balance is still read at least every `nativeFullReadMs` (default NATIVE_FULL_READ_MS),
// and whenever the blocks since cannot be read as one chain (a reorganisation, an endpoint
// behind, more than NATIVE_SPARSE_MAX_BLOCKS): value sent by a contract (an internal transfer)
// has no transaction and is found by those full reads. Until one has covered a moment, the scan
// is not caught up to it for the expiry worker: an order is never closed as unpaid while money
// sent on time may be unread.
import { UNNAMED, type DepositAddressRecord, type PaymentRecord } from './records.js';
import type { TransferFact } from './record-payment.js';
import type { Block, ValueTransfer } from './ports.js';
import type { ScanDeps } from './scan-chain.js';

export const NATIVE_TX_PREFIX = 'balance:';

/** More watched native-coin addresses than this, and a pass reads only the balances that can have changed (two batches' worth). */
export const NATIVE_SPARSE_FROM = 200;
/** Every watched native-coin balance is read at least this often (ms), whatever the mode. */
export const NATIVE_FULL_READ_MS = 30_000;
/** More new blocks than this since the last pass, and a pass reads every balance instead of their transactions. */
export const NATIVE_SPARSE_MAX_BLOCKS = 50;

/**
 * What this instance's earlier passes read of a network's native receipts (kept in ScanDeps
 * between passes). It changes only once a pass's facts are stored (`commit`): a pass that fails
 * after reading the balances leaves it as it was, and the next pass reads them again.
 */
export interface NativeMemory {
  /** The last pass that read every watched native balance: when (clock ms), the moment its scan covered (ms), how many addresses. */
  full: { atMs: number; coversUntil: number; watched: number } | null;
  /** The head whose balances the last complete pass read: the next sparse pass reads the transactions after it. */
  through: Block | null;
  /** No sparse pass before this (clock ms): the blocks' transactions could not be read lately. */
  sparseAfterMs: number;
  /** Named receipts (by key) final by balance whose transaction's check failed, with how many passes it has failed in. */
  suspects?: Map<string, number>;
}

/** Passes in a row a named receipt's transaction must fail its check in before its name is withdrawn (one flaky answer is not enough). */
export const NAME_CHECK_TRIES = 3;
/** Named receipts' transactions checked at once (each two requests): a pass that finalises many does not outlast its lease. */
const NAME_CHECKS_AT_ONCE = 8;

/**
 * The native part of a pass at `latest`: every watched native address, or (many watched) those
 * the blocks since the last pass sent value to (see the top of this file). `coversUntil` is what
 * the pass may count as caught up to: the pass's own moment, or that of the last full read.
 */
export async function scanNative(
  deps: ScanDeps,
  latest: Block,
  when: { nowMs: number; watchedAt: number; coversUntil: number },
  unfinal: readonly PaymentRecord[],
  record: (fact: TransferFact) => void,
): Promise<{ transfers: number; reverted: number; complete: boolean; coversUntil: number; commit: () => void }> {
  const memory = (deps.nativeMemory ??= { full: null, through: null, sparseAfterMs: 0 });
  const read = await sparseWatched(deps, memory, latest, when);
  const sparse = read?.watched ?? null;
  const watched = sparse ?? (await deps.store.depositAddresses.listWatched(deps.network.id, when.watchedAt, null, true));
  // The transactions that sent value since the last complete pass, to name a new receipt's
  // transaction: the sparse pass has read them; otherwise read when a receipt needs them.
  const since = memory.through;
  let sent: Promise<ValueTransfer[] | null> | undefined = read ? Promise.resolve(read.transfers) : undefined;
  const sentSince = () =>
    (sent ??=
      since === null || latest.number <= since.number || latest.number - since.number > NATIVE_SPARSE_MAX_BLOCKS
        ? Promise.resolve(null)
        : deps.reader.valueTransfers(since, latest).catch((err: unknown) => {
            deps.log.info({ network: deps.network.id, after: since.number, head: latest.number, err: (err as Error).message }, 'could not read the transactions of the new blocks: a new native-coin receipt keeps its balance key');
            return null;
          }));
  const result = await scanNativeReceipts(deps, latest.number, watched, unfinal, record, sentSince);
  const coversUntil = sparse === null || memory.full === null ? when.coversUntil : Math.min(when.coversUntil, memory.full.coversUntil);
  const commit = () => {
    if (!result.complete) return;
    // Never back: a pass at a lower head (an endpoint failed over to that lags) would put blocks
    // whose receipts are counted already back into the next pass's window.
    if (memory.through === null || latest.number >= memory.through.number) memory.through = { number: latest.number, hash: latest.hash.toLowerCase() };
    if (sparse === null) memory.full = { atMs: when.nowMs, coversUntil: when.coversUntil, watched: new Set(watched.map((d) => d.address)).size };
  };
  return { ...result, coversUntil, commit };
}

/**
 * The watched native options a sparse pass reads: those among the recipients of the blocks since
 * the last pass. null: this pass reads them all (few watched, a full read due, or the blocks since
 * unreadable as one chain from the last one read).
 */
async function sparseWatched(deps: ScanDeps, memory: NativeMemory, latest: Block, when: { nowMs: number; watchedAt: number }): Promise<{ watched: DepositAddressRecord[]; transfers: ValueTransfer[] } | null> {
  const { full, through } = memory;
  if (full === null || through === null || full.watched <= (deps.nativeSparseFrom ?? NATIVE_SPARSE_FROM)) return null;
  const period = deps.nativeFullReadMs ?? NATIVE_FULL_READ_MS;
  // A clock set back reads everything too: the period would otherwise not end until it caught up.
  if (when.nowMs - full.atMs >= period || when.nowMs < full.atMs || when.nowMs < memory.sparseAfterMs) return null;
  const head = latest.number;
  if (head < through.number || head - through.number > NATIVE_SPARSE_MAX_BLOCKS) return null;
  if (head === through.number) return latest.hash.toLowerCase() === through.hash ? { watched: [], transfers: [] } : null;
  let transfers: ValueTransfer[];
  try {
    transfers = await deps.reader.valueTransfers(through, latest);
  } catch (err) {
    // Every pass of the period reads every balance then, as with few addresses: a provider that
    // cannot answer whole blocks is not asked for them (and this logged) twice a second.
    memory.sparseAfterMs = when.nowMs + period;
    deps.log.warn({ network: deps.network.id, after: through.number, head, err: (err as Error).message }, 'could not read the transactions of the new blocks as one chain: every watched native-coin balance is read for a while');
    return null;
  }
  const recipients = [...new Set(transfers.map((t) => t.to))];
  if (recipients.length === 0) return { watched: [], transfers };
  return { watched: (await deps.store.depositAddresses.watchedAmong(deps.network.id, when.watchedAt, recipients)).filter((d) => d.token === null), transfers };
}

/** Whether a payment row is a native-coin receipt found by balance reads (not a log). */
export const isNativeReceipt = (p: Pick<PaymentRecord, 'txHash'>): boolean => p.txHash.startsWith(NATIVE_TX_PREFIX);

export const nativeReceiptKey = (address: string, block: number): string => `${NATIVE_TX_PREFIX}${address.toLowerCase()}:${block}`;

const byBlock = (a: PaymentRecord, b: PaymentRecord) => a.blockNumber - b.blockNumber || (a.txHash < b.txHash ? -1 : a.txHash > b.txHash ? 1 : 0);
const withoutTimes = ({ createdAt: _c, updatedAt: _u, ...fact }: PaymentRecord): TransferFact => fact;
const sum = (rows: readonly PaymentRecord[]) => rows.reduce((s, p) => s + p.amount, 0n);

/**
 * One native pass at `head`: new receipts at watched native addresses, then the unfinal ones
 * (also of addresses no longer watched) reverted, confirmed or left waiting. The facts go to
 * `record`; the caller stores them with the pass's other facts. `complete` is false when new
 * receipts could not be read this pass (the pass has then not caught up with the head).
 */
export async function scanNativeReceipts(
  deps: ScanDeps,
  head: number,
  watched: readonly DepositAddressRecord[],
  unfinal: readonly PaymentRecord[],
  record: (fact: TransferFact) => void,
  sentSince: () => Promise<readonly ValueTransfer[] | null> = async () => null,
): Promise<{ transfers: number; reverted: number; complete: boolean }> {
  const { network, reader, store } = deps;
  const required = Math.max(1, network.chain.confirmations);
  const deposits = new Map<string, DepositAddressRecord>();
  for (const d of watched) if (d.token === null && !deposits.has(d.address)) deposits.set(d.address, d);
  const addresses = [...new Set([...deposits.keys(), ...unfinal.map((p) => p.address.toLowerCase())])];
  if (addresses.length === 0) return { transfers: 0, reverted: 0, complete: true };

  const rowsByAddress = new Map<string, PaymentRecord[]>();
  for (const p of await store.payments.listByAddresses(network.id, addresses)) {
    if (!isNativeReceipt(p)) continue;
    const key = p.address.toLowerCase();
    rowsByAddress.set(key, [...(rowsByAddress.get(key) ?? []), p]);
  }
  // A final settlement emptied its forwarder: what it paid out no longer sits at the address, so
  // it leaves the credited sum (a receipt after the settlement is then seen in full).
  const { distributed: paidOut, settling } = await store.settlements.outflowsFrom(network.id, addresses);
  // A settlement in flight may have moved the money already without being final: a balance below
  // what is credited there is then no reorganisation, and nothing is reverted until the settlement
  // is recorded either way (the rest goes on: a receipt above what is credited counts, a row the
  // balance covers becomes final). Otherwise money that arrived before the distribution, and went
  // out with it as the excess, would look reverted, then, once the settlement is final, like a
  // new receipt.
  // The native part of a pass is stateless (balances against stored rows): when the balances
  // cannot be read (an endpoint behind a load balancer whose node has not reached `head` yet, a
  // node that refuses or garbles them), this pass leaves native receipts as they are and the
  // token scan goes on; the next pass reads them again.
  const balances = await unlessUnreadable(deps, head, 'the native-coin balances at the head', () => reader.balances(addresses, head));
  if (balances === null) return { transfers: 0, reverted: 0, complete: false };
  // Read once, when the first receipt needs it (undefined: not read yet; null: no such block or unreadable).
  let headHash: string | null | undefined;
  let transfers = 0;
  let reverted = 0;
  // false when a receipt could not be recorded (the head block unreadable): not caught up.
  let complete = true;
  // Rows still counted after this pass, per address, for the finality check.
  const live = new Map<string, PaymentRecord[]>();
  // Keys of the receipts this pass reverts.
  const gone = new Set<string>();

  for (const [i, address] of addresses.entries()) {
    const balance = balances[i] ?? 0n;
    const rows = (rowsByAddress.get(address) ?? []).filter((p) => p.status !== 'REVERTED').sort(byBlock);
    // A row beyond the head: this endpoint lags behind the one that saw it (a failover), and its
    // balance would look like a reorg. The address waits until the chain gets there.
    if (rows.some((p) => p.blockNumber > head)) continue;
    let credited = sum(rows) - (paidOut.get(address) ?? 0n);
    // Less than credited: unconfirmed money is gone. Revert the newest SEEN rows until covered.
    for (let j = rows.length - 1; j >= 0 && credited > balance && !settling.has(address); j -= 1) {
      const p = rows[j]!;
      if (p.status !== 'SEEN') continue;
      deps.log.warn({ network: network.id, address, block: p.blockNumber, amount: p.amount.toString() }, 'a native-coin receipt left the canonical chain');
      record({ ...withoutTimes(p), status: 'REVERTED', confirmations: 0 });
      gone.add(p.txHash);
      rows.splice(j, 1);
      credited -= p.amount;
      reverted += 1;
    }
    const deposit = deposits.get(address);
    const key = nativeReceiptKey(address, head);
    // A row already under this key (reverted at this very head) waits for the next block, and
    // the pass has not seen everything: it is not caught up, and (many addresses) the next pass
    // reads every balance again rather than only those its new blocks name.
    const waits = deposit !== undefined && balance > credited && (rowsByAddress.get(address) ?? []).some((p) => p.txHash === key);
    if (waits) complete = false;
    if (deposit && balance > credited && !waits) {
      if (headHash === undefined) headHash = await unlessUnreadable(deps, head, 'the head block', () => reader.blockHash(head));
      if (headHash !== null) {
        const amount = balance - credited;
        // The transaction that sent it: when exactly one transaction since the last complete
        // pass sent value to the address, and exactly this much (not one of several summed
        // into this receipt, nor a contract's internal transfer, which has no transaction), in a
        // block after every receipt counted at the address (first seen at or after its
        // transaction's block): a transaction counted already, by another instance or before a
        // failover to a lagging endpoint, never names a new receipt.
        const counted = rows.reduce((n, p) => Math.max(n, p.blockNumber), -1);
        const to = (await sentSince())?.filter((t) => t.to === address && t.block > counted) ?? [];
        const fact: TransferFact = {
          paymentOrderNo: deposit.paymentOrderNo,
          network: network.id,
          currency: deposit.currency,
          txHash: key,
          chainTxHash: to.length === 1 && to[0]!.value === amount ? to[0]!.hash : null,
          logIndex: 0,
          blockNumber: head,
          blockHash: headHash,
          address,
          amount,
          confirmations: 1,
          status: 'SEEN',
        };
        // With one confirmation required, the head balance is the final check itself.
        if (required <= 1) fact.status = 'FINAL';
        record(fact);
        rows.push({ ...fact, createdAt: 0, updatedAt: 0 });
        transfers += 1;
      } else complete = false;
    }
    live.set(address, rows);
  }

  // Confirmations of the unfinal rows; those deep enough are checked at the final depth.
  const finalBlock = head - required + 1;
  const candidates = [...live.entries()].filter(([, rows]) => rows.some((p) => p.status === 'SEEN' && p.blockNumber <= finalBlock));
  // Unreadable at the final depth: every row stays SEEN this pass (only its confirmations move).
  const finalBalances = candidates.length > 0 && finalBlock >= 0 ? ((await unlessUnreadable(deps, head, `the native-coin balances at block ${finalBlock}`, () => reader.balances(candidates.map(([a]) => a), finalBlock))) ?? []) : [];
  const finalBalanceOf = new Map(candidates.map(([a], i) => [a, finalBalances[i] ?? 0n]));
  // Final by balance and named: the transaction it is named by must be final on the canonical
  // chain too. A reorganisation may have put another transaction (a wallet's "speed up", same
  // value) in its place, which the balance cannot tell. Checked after the loop, several at once.
  const named: { p: PaymentRecord; confirmations: number }[] = [];
  for (const [address, rows] of live) {
    let before = -(paidOut.get(address) ?? 0n);
    for (const p of rows) {
      before += p.amount;
      if (p.status !== 'SEEN') continue;
      const confirmations = Math.max(0, head - p.blockNumber + 1);
      const covered = p.blockNumber <= finalBlock && (finalBalanceOf.get(address) ?? -1n) >= before;
      const status = covered ? 'FINAL' : 'SEEN';
      if (status === 'FINAL' && p.chainTxHash) named.push({ p, confirmations });
      else if (status !== p.status || confirmations !== p.confirmations) record({ ...withoutTimes(p), confirmations, status });
    }
  }
  // A check that fails (no receipt, a failure, a block beyond the final depth or not canonical,
  // or no answer) holds the receipt SEEN for the next pass; after NAME_CHECK_TRIES passes in a
  // row it becomes final without its name (the key shows). One answer from a node that has not
  // indexed the block, or a timeout, neither withdraws a right name nor keeps a wrong one.
  const suspects = (deps.nativeMemory ??= { full: null, through: null, sparseAfterMs: 0 }).suspects ??= new Map<string, number>();
  // Only receipts still waiting keep their count: one reverted, or made final or reverted by
  // another instance's pass meanwhile, is never checked here again, and its count stayed for the
  // life of the process (`unfinal` is every stored SEEN native receipt of the network).
  const waiting = new Set(unfinal.map((p) => p.txHash));
  for (const key of suspects.keys()) if (gone.has(key) || !waiting.has(key)) suspects.delete(key);
  const verdicts = await atMost(NAME_CHECKS_AT_ONCE, named, ({ p }) => stillNames(deps, p.chainTxHash!, finalBlock));
  for (const [i, { p, confirmations }] of named.entries()) {
    if (verdicts[i]) {
      suspects.delete(p.txHash);
      record({ ...withoutTimes(p), confirmations, status: 'FINAL' });
      continue;
    }
    const failed = (suspects.get(p.txHash) ?? 0) + 1;
    if (failed < NAME_CHECK_TRIES) {
      suspects.set(p.txHash, failed);
      if (confirmations !== p.confirmations) record({ ...withoutTimes(p), confirmations });
      continue;
    }
    suspects.delete(p.txHash);
    deps.log.warn({ network: network.id, address: p.address, txHash: p.chainTxHash, key: p.txHash }, 'the transaction a native-coin receipt was named by is not final on the canonical chain: the receipt is final under its balance key');
    record({ ...withoutTimes(p), confirmations, status: 'FINAL', chainTxHash: UNNAMED });
  }
  return { transfers, reverted, complete };
}

/** Whether `txHash` succeeded in a canonical block at or before `finalBlock`; false too when the chain could not answer. */
async function stillNames(deps: ScanDeps, txHash: string, finalBlock: number): Promise<boolean> {
  try {
    const at = await deps.reader.transactionBlock(txHash);
    if (at === null || !at.success || at.block.number > finalBlock) return false;
    return (await deps.reader.blockHash(at.block.number)) === at.block.hash;
  } catch (err) {
    deps.log.info({ network: deps.network.id, txHash, err: (err as Error).message }, 'could not check the transaction a native-coin receipt is named by; checked again next pass');
    return false;
  }
}

/** `fn` over `items`, at most `limit` at a time; the results in the items' order. */
async function atMost<T, R>(limit: number, items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** `read()`, or null (logged) when the chain could not answer it: the native receipts wait for the next pass. */
async function unlessUnreadable<T>(deps: ScanDeps, head: number, what: string, read: () => Promise<T>): Promise<T | null> {
  try {
    return await read();
  } catch (err) {
    deps.log.warn({ network: deps.network.id, head, err: (err as Error).message }, `could not read ${what}: native-coin receipts wait for the next pass`);
    return null;
  }
}
