// The reference model of the chain-model fuzz suite (chain-model-fuzz.test.ts): what the gateway
// should show for an order, derived from the canonical chain as the test reads it from the node
// (Transfer logs, balances; never through the gateway's code) and from the lifecycle rules of
// PROTOCOL §10/§12/§13 with the decisions domain/lifecycle.ts documents for what the protocol
// leaves open. Pure: the suite reads the chain and feeds it in; nothing here imports src/.
//
// What a scan pass at head h should make of the chain (the model's view of the payments rows):
// - token: every canonical Transfer log to the deposit address is a row keyed (tx hash, log index)
//   in its block, FINAL once it has the network's confirmations (h - block + 1 >= required), else
//   SEEN; a row whose transfer left the canonical chain is REVERTED (confirmations 0) until it is
//   mined again. A FINAL row is never re-checked (finality), so the suite never reorganises more
//   blocks than the confirmations required.
// - native coin: the balance-read rules stated at the top of app/scan-native.ts (a receipt is the
//   increase of the balance over what is credited, as one row in the head block; newest SEEN rows
//   are reverted while the balance is below the credited sum; a row is FINAL once deep enough and
//   covered by the balance at the final depth).
// Then one decision per order and pass on the totals of the order's pair.

export type Status = 'PENDING' | 'PAYING' | 'PAID' | 'COMPLETED' | 'CLOSED';
export type Exception = 'UNDERPAID' | 'OVERPAID' | 'PAID_LATE' | 'REVERTED';
export type RowStatus = 'SEEN' | 'FINAL' | 'REVERTED';

export interface ModelRow {
  txHash: string;
  logIndex: number;
  block: number;
  amount: bigint;
  status: RowStatus;
  confirmations: number;
}

/** The notifications one decision writes (they share its sequence). */
export interface ModelNote {
  sequence: number;
  types: string[];
  status: Status;
  exception: Exception | null;
}

/** A canonical Transfer log to a deposit address. */
export interface CanonicalTransfer {
  txHash: string;
  logIndex: number;
  block: number;
  amount: bigint;
}

export interface ModelOrder {
  paymentOrderNo: string;
  requestNo: string;
  cashierToken: string;
  native: boolean;
  /** The deposit address paid (network 4's pair), lower case. */
  address: string;
  decimals: number;
  due: bigint;
  expireTime: number;
  /** 'A': network 4's pair (the one paid); 'B': network 2's, chosen last on the cashier and never paid. */
  pair: 'A' | 'B';
  status: Status;
  exception: Exception | null;
  closeReason: 'MERCHANT_CLOSED' | 'EXPIRED' | null;
  closedTime: number;
  payTime: number;
  /** Totals of the last decision (the counted pair's). */
  seen: bigint;
  final: bigint;
  sequence: number;
  rows: Map<string, ModelRow>;
  notes: ModelNote[];
  /** Every status the order had, after each step (for the "never backwards" property). */
  history: { status: Status; exception: Exception | null; step: string }[];
}

/** Rules where the model knowingly follows the code instead of the spec (each names its "was defect" test). */
export interface KnownDeviations {
  /**
   * Defect 1: a pass in which a counted payment vanished (REVERTED row) but the order's total did
   * not fall (another payment arrived, or the same amount was mined again elsewhere in the same
   * pass) raises no REVERTED flag and notifies nothing.
   */
  revertHiddenByNewMoney: boolean;
  /**
   * Defect 2: money sent to the address of a pair the payer chose first and then switched away
   * from is not counted, and not flagged PAID_LATE, when it arrives after the order was CLOSED.
   */
  lateMoneyOnEarlierPair: boolean;
}

export const rowKey = (txHash: string, logIndex: number) => `${txHash.toLowerCase()}|${logIndex}`;
export const nativeKey = (address: string, block: number) => `balance:${address.toLowerCase()}:${block}`;

export class ModelAssumptionError extends Error {}

/** The rows a token order should have after a pass at `head` that saw `canonical` (the logs to its address up to head). */
export function applyTokenView(o: ModelOrder, canonical: readonly CanonicalTransfer[], head: number, required: number): { reverted: number } {
  const live = new Set<string>();
  for (const t of canonical) {
    const key = rowKey(t.txHash, t.logIndex);
    live.add(key);
    const prev = o.rows.get(key);
    if (prev?.status === 'FINAL') {
      if (prev.block !== t.block) throw new ModelAssumptionError(`final transfer ${key} moved from block ${prev.block} to ${t.block}`);
      continue;
    }
    const confirmations = head - t.block + 1;
    o.rows.set(key, { txHash: t.txHash.toLowerCase(), logIndex: t.logIndex, block: t.block, amount: t.amount, status: confirmations >= required ? 'FINAL' : 'SEEN', confirmations });
  }
  let reverted = 0;
  for (const [key, row] of o.rows) {
    if (live.has(key) || row.status === 'REVERTED') continue;
    if (row.status === 'FINAL') throw new ModelAssumptionError(`final transfer ${key} left the chain (a reorg deeper than the confirmations)`);
    o.rows.set(key, { ...row, status: 'REVERTED', confirmations: 0 });
    reverted += 1;
  }
  return { reverted };
}

/** The rows a native-coin order should have after a pass at `head`, given the balance of its address at head and at the final depth. */
export function applyNativeView(o: ModelOrder, head: number, required: number, balanceAtHead: bigint, balanceAtFinal: bigint): { reverted: number } {
  const byBlock = (a: ModelRow, b: ModelRow) => a.block - b.block || (a.txHash < b.txHash ? -1 : a.txHash > b.txHash ? 1 : 0);
  const rows = [...o.rows.values()].filter((r) => r.status !== 'REVERTED').sort(byBlock);
  let credited = rows.reduce((s, r) => s + r.amount, 0n);
  let reverted = 0;
  for (let j = rows.length - 1; j >= 0 && credited > balanceAtHead; j -= 1) {
    const r = rows[j]!;
    if (r.status !== 'SEEN') continue;
    o.rows.set(rowKey(r.txHash, 0), { ...r, status: 'REVERTED', confirmations: 0 });
    rows.splice(j, 1);
    credited -= r.amount;
    reverted += 1;
  }
  if (credited > balanceAtHead) throw new ModelAssumptionError(`final native receipts of ${o.address} exceed its balance`);
  const key = nativeKey(o.address, head);
  if (balanceAtHead > credited && !o.rows.has(rowKey(key, 0))) {
    const row: ModelRow = { txHash: key, logIndex: 0, block: head, amount: balanceAtHead - credited, status: required <= 1 ? 'FINAL' : 'SEEN', confirmations: 1 };
    o.rows.set(rowKey(key, 0), row);
    rows.push(row);
  }
  const finalBlock = head - required + 1;
  let before = 0n;
  for (const r of rows) {
    before += r.amount;
    if (r.status !== 'SEEN') continue;
    const covered = r.block <= finalBlock && balanceAtFinal >= before;
    o.rows.set(rowKey(r.txHash, 0), { ...r, status: covered ? 'FINAL' : 'SEEN', confirmations: Math.max(0, head - r.block + 1) });
  }
  return { reverted };
}

const RANK = { PENDING: 0, PAYING: 1, PAID: 2 } as const;

/** A decision that changed the order: its sequence moves (§13), with the notifications it writes. */
function record(o: ModelOrder, types: string[]): void {
  o.sequence += 1;
  if (types.length > 0) o.notes.push({ sequence: o.sequence, types, status: o.status, exception: o.exception });
}

/**
 * One scan pass's decision for `o` after its rows were updated. `vanished`: counted rows that
 * became REVERTED in this pass. Returns what happened, for the suite's coverage counters.
 */
export function observe(o: ModelOrder, now: number, vanished: number, known: KnownDeviations): string[] {
  const events: string[] = [];
  const onA = [...o.rows.values()].filter((r) => r.status !== 'REVERTED');
  if (o.pair === 'B' && onA.length > 0) {
    // The payer paid the pair chosen first after switching away from it: the money shows the pair
    // (§15 "the payer can pay from any wallet"), as long as the order is open.
    if (o.status === 'PENDING') {
      o.pair = 'A';
      events.push('pair switched back by money');
    } else if (o.status === 'CLOSED' && known.lateMoneyOnEarlierPair) {
      events.push('KNOWN defect 2: late money on the earlier pair is not counted');
    } else if (o.status === 'CLOSED') {
      // §10: money after CLOSED is recorded and flagged PAID_LATE; counted on the pair it paid.
      o.pair = 'A';
      events.push('late money on the earlier pair');
    }
  }
  const counted = o.pair === 'A' ? onA : [];
  const seen = counted.reduce((s, r) => s + r.amount, 0n);
  const final = counted.filter((r) => r.status === 'FINAL').reduce((s, r) => s + r.amount, 0n);
  const allFinal = counted.every((r) => r.status === 'FINAL');
  const totalFell = seen < o.seen || final < o.final;
  // §10: REVERTED = a counted payment disappeared in a reorganisation.
  const reorged = totalFell || (vanished > 0 && o.pair === 'A' && !known.revertHiddenByNewMoney);
  if (vanished > 0 && o.pair === 'A' && !totalFell) events.push(known.revertHiddenByNewMoney ? 'KNOWN defect 1: vanished payment hidden by new money' : 'vanished payment with new money');
  if (seen === o.seen && final === o.final && !reorged) return events;
  const before = o.exception;
  let raised: Exception | null = null;
  const types: string[] = [];
  if (o.status === 'CLOSED' || o.status === 'COMPLETED') {
    if (reorged) raised = 'REVERTED';
    else if (seen > o.seen) raised = 'PAID_LATE';
  } else {
    const target = final >= o.due ? 'PAID' : seen > 0n ? 'PAYING' : 'PENDING';
    const status = reorged || RANK[target] >= RANK[o.status] ? target : o.status;
    if (reorged) raised = 'REVERTED';
    else if (status === 'PAID' && final > o.due) raised = 'OVERPAID';
    else if (status === 'PAYING' && allFinal && final > 0n && final < o.due) raised = 'UNDERPAID';
    if (status === 'PAID' && o.status !== 'PAID') {
      types.push('ORDER_PAID');
      o.payTime = now;
    }
    if (status !== 'PAID') o.payTime = 0;
    if (RANK[status] < RANK[o.status]) events.push(`${o.status}->${status} on a reorg`);
    o.status = status;
  }
  // A standing condition notifies when the flag changes; every reorg is a new event.
  if (raised !== null && (raised === 'REVERTED' || raised !== before)) types.push('ORDER_EXCEPTION');
  if (raised !== null) {
    o.exception = raised;
    events.push(raised);
  }
  o.seen = seen;
  o.final = final;
  record(o, types);
  return events;
}

/** POST /v4/pay/orders/close (§12): the code the gateway must answer. */
export function merchantClose(o: ModelOrder, now: number): number {
  if (o.status === 'CLOSED') return 43007;
  if (o.status !== 'PENDING') return 43006;
  o.status = 'CLOSED';
  o.closeReason = 'MERCHANT_CLOSED';
  o.closedTime = now;
  record(o, []);
  return 0;
}

/**
 * The expiry worker's check (§10; lifecycle.ts: a PAYING order with money still confirming
 * waits). `caughtUpMs`: when the last scan pass that reached the chain's head started (null:
 * none yet); every model order has a deposit address on a scanned network, so it closes only
 * after a pass that started at or after its deadline (money mined before it is then counted).
 */
export function deadlineCheck(o: ModelOrder, now: number, caughtUpMs: number | null): string | null {
  if (now < o.expireTime) return null;
  if ((o.status === 'PENDING' || o.status === 'PAYING') && (caughtUpMs === null || caughtUpMs < o.expireTime * 1000)) return 'expiry waits for a scan past the deadline';
  if (o.status === 'PENDING') {
    expire(o, now, false);
    return 'expired PENDING';
  }
  if (o.status !== 'PAYING') return null;
  if (o.seen > o.final) return 'expiry waits for confirming money';
  if (o.final >= o.due) return null;
  expire(o, now, o.final > 0n);
  return 'expired PAYING';
}

function expire(o: ModelOrder, now: number, underpaid: boolean): void {
  const types = ['ORDER_CLOSED'];
  if (underpaid && o.exception !== 'UNDERPAID') types.push('ORDER_EXCEPTION');
  o.status = 'CLOSED';
  o.closeReason = 'EXPIRED';
  o.closedTime = now;
  if (underpaid) o.exception = 'UNDERPAID';
  record(o, types);
}

/** The cashier's select of the other pair (§15): whether the gateway must accept it. */
export function selectOtherPair(o: ModelOrder, now: number): boolean {
  if (o.status !== 'PENDING' || now >= o.expireTime) return false;
  o.pair = o.pair === 'A' ? 'B' : 'A';
  return true;
}
