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
// Two passes per scan, network 4's (pair A: its deposit address, and the native coin) then
// network 2's (pair B: the address the cashier hands out when the payer switches to it; token
// only). Each pass decides an order only if it observes it: one of the order's rows of that
// network is new or changed status (SEEN, FINAL, REVERTED) in the pass, or its transfer was read
// again (the pass re-read its block after a reorganisation; `reread`, from the blocks the
// gateway says the pass read). Then one decision per order and pass, on the totals of the
// order's pair (PROTOCOL §10, the rules at the top of domain/lifecycle.ts):
// - only the rows of the order's current pair count (seen, final, the status, the flags);
// - money in the other pair (a non-REVERTED row observed in that pass) makes it the order's
//   pair when the order is PENDING or CLOSED and nothing counts on the current pair: the money
//   shows which pair the payer paid with (on a CLOSED order it is late money, PAID_LATE);
// - otherwise (PAYING, PAID: something counts) it counts for nothing and raises nothing on an
//   open order; on an ended order any non-REVERTED row in the other pair is PAID_LATE
//   ("elsewhere", a standing condition notified when the flag changes; REVERTED of the order's
//   own pair in the same decision wins);
// - a row that left the chain is REVERTED whatever its pair; it raises REVERTED only if it
//   counted (it was on the order's pair when the pass began).

export type Status = 'PENDING' | 'PAYING' | 'PAID' | 'COMPLETED' | 'CLOSED';
export type Exception = 'UNDERPAID' | 'OVERPAID' | 'PAID_LATE' | 'REVERTED';
export type RowStatus = 'SEEN' | 'FINAL' | 'REVERTED';
/** 'A': network 4's pair (chosen at creation); 'B': network 2's (the cashier's switch). */
export type Pair = 'A' | 'B';

export interface ModelRow {
  /** The pair whose address the transfer paid. */
  pair: Pair;
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
  /** Network 4's deposit address (pair A, handed out at creation), lower case. */
  address: string;
  /** Network 2's deposit address (pair B), lower case, once a switch to it was accepted (stable). */
  addressB: string | null;
  decimals: number;
  due: bigint;
  /**
   * Base units below the currency's precision (native coins: 18 decimals, precision 8): money
   * within it of the amount due is that amount (lifecycle `slack`).
   */
  slack: bigint;
  /** The fee of each pair's option, base units: an order that expires with so little that the fee's pro-rata share of it is nothing is not settled on its own. */
  fees: Record<Pair, bigint>;
  expireTime: number;
  /** The order's pair now (the cashier's last choice, or the pair the money showed). */
  pair: Pair;
  status: Status;
  exception: Exception | null;
  closeReason: 'MERCHANT_CLOSED' | 'EXPIRED' | null;
  closedTime: number;
  payTime: number;
  /** A settlement of the order's pair is scheduled (it was PAID, or expired with money): its pair no longer changes. */
  settling: boolean;
  /** Totals of the last decision (the counted pair's). */
  seen: bigint;
  final: bigint;
  sequence: number;
  /**
   * The cashier switched to a pair whose address holds money the totals do not count yet, and no
   * pass has decided the order since (defect 4).
   */
  uncounted: boolean;
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
  /**
   * Defect 3: when money in the other pair makes it the order's pair, a transfer of that pair
   * that left the chain in the same pass (it never counted: it was money elsewhere) is taken for
   * a counted payment lost: REVERTED is raised and notified.
   */
  uncountedLossOnSwitch: boolean;
  /**
   * Defect 4: a cashier switch to a pair whose address already holds money leaves that money
   * uncounted (the totals stay the last decision's) until a pass observes one of the order's
   * transfers of that pair: a final transfer never is, so the order stays PENDING with the money
   * on its own pair (and expires).
   */
  selectLeavesMoneyUncounted: boolean;
  /**
   * Defect 5: an ended order observed in a pass only through its own pair's transfers (one
   * becomes FINAL, say) is not flagged PAID_LATE for the money in its other pair: the pass loads
   * only the order's selected option then, so the other pair's rows match no option.
   */
  elsewhereOnlyWithOtherPairFacts: boolean;
}

export const rowKey = (txHash: string, logIndex: number) => `${txHash.toLowerCase()}|${logIndex}`;
export const nativeKey = (address: string, block: number) => `balance:${address.toLowerCase()}:${block}`;

export class ModelAssumptionError extends Error {}

/** What the rows' statuses were before a pass (observe compares with them). */
export function rowStatuses(o: ModelOrder): Map<string, RowStatus> {
  return new Map([...o.rows].map(([key, r]) => [key, r.status]));
}

/**
 * The rows of `pair` a token order should have after a pass at `head` that saw `canonical` (the
 * logs to that pair's address up to head); the other pair's rows are another network's pass.
 */
export function applyTokenView(o: ModelOrder, pair: Pair, canonical: readonly CanonicalTransfer[], head: number, required: number): { reverted: number } {
  const live = new Set<string>();
  for (const t of canonical) {
    const key = rowKey(t.txHash, t.logIndex);
    live.add(key);
    const prev = o.rows.get(key);
    if (prev && prev.pair !== pair) throw new ModelAssumptionError(`transfer ${key} paid both addresses`);
    if (prev?.status === 'FINAL') {
      if (prev.block !== t.block) throw new ModelAssumptionError(`final transfer ${key} moved from block ${prev.block} to ${t.block}`);
      continue;
    }
    const confirmations = head - t.block + 1;
    o.rows.set(key, { pair, txHash: t.txHash.toLowerCase(), logIndex: t.logIndex, block: t.block, amount: t.amount, status: confirmations >= required ? 'FINAL' : 'SEEN', confirmations });
  }
  let reverted = 0;
  for (const [key, row] of o.rows) {
    if (row.pair !== pair || live.has(key) || row.status === 'REVERTED') continue;
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
    const row: ModelRow = { pair: 'A', txHash: key, logIndex: 0, block: head, amount: balanceAtHead - credited, status: required <= 1 ? 'FINAL' : 'SEEN', confirmations: 1 };
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
 * One pass's decision for `o` (the pass of `pass`'s network) after its rows were updated.
 * `before`: the rows' statuses before the pass (rowStatuses); `reread`: rows of `pass` whose
 * transfer the pass read again with no new status. Returns what happened, for the suite's
 * coverage counters.
 */
export function observe(o: ModelOrder, pass: Pair, before: ReadonlyMap<string, RowStatus>, reread: ReadonlySet<string>, now: number, known: KnownDeviations): string[] {
  const events: string[] = [];
  const rows = [...o.rows];
  const live = (r: ModelRow) => r.status !== 'REVERTED';
  const wasLive = (key: string) => before.has(key) && before.get(key) !== 'REVERTED';
  // The pass observes the order only through its rows of that network (the gateway decides an
  // order in a pass only when it has a fact of it there).
  const facts = rows.filter(([key, r]) => r.pair === pass && (before.get(key) !== r.status || reread.has(key)));
  // Without defect 4 the money a switch found at the address is counted by the next pass.
  const recount = o.uncounted && pass === o.pair && !known.selectLeavesMoneyUncounted;
  if (facts.length === 0 && !recount) return events;
  o.uncounted = false;
  // What counted (live on the order's pair when the pass began) and left the chain in this pass.
  const lostOn = (pair: Pair) => rows.some(([key, r]) => r.pair === pair && wasLive(key) && !live(r));
  let lost = lostOn(o.pair);
  // Defect 5: the other pair's rows are seen as money elsewhere only in a pass of the other pair.
  const sees = pass !== o.pair || !known.elsewhereOnlyWithOtherPairFacts;
  for (const [key, r] of rows) if (r.pair === 'B' && wasLive(key) && !live(r)) events.push(`B row reverted (${r.pair === o.pair ? 'counted' : 'not counted'})`);
  const was = { pair: o.pair, status: o.status, exception: o.exception, payTime: o.payTime, seen: o.seen, final: o.final };
  if (pass !== o.pair && facts.some(([, r]) => live(r))) {
    // Money in the other pair: it shows which pair the payer paid with, unless something counts
    // on the order's pair (or the order is PAYING/PAID: the payer chose the pair that counts).
    const counting = rows.some(([, r]) => r.pair === o.pair && live(r));
    const what = `money on pair ${pass}`;
    if (counting || (o.status !== 'PENDING' && o.status !== 'CLOSED')) events.push(`${what} counts for nothing (${o.status}${counting ? '' : ', nothing counting'})`);
    else if (o.status === 'CLOSED' && known.lateMoneyOnEarlierPair) events.push('KNOWN defect 2: late money on the earlier pair is not counted');
    else {
      o.pair = pass;
      events.push(`${what} selects it (${o.status})`);
      if (lostOn(pass)) {
        // A transfer of that pair left the chain in this pass: it never counted.
        if (known.uncountedLossOnSwitch) lost = true;
        events.push(known.uncountedLossOnSwitch ? 'KNOWN defect 3: an uncounted transfer lost on a switch is REVERTED' : 'an uncounted transfer lost on a switch');
      }
    }
  }
  // The money shows the pair: when the order's pair holds nothing (its money left the chain), or
  // less than the amount due while the other pair holds all of it, the other pair becomes the
  // order's (so a reorg that drops the pair's payment for a block hands the order back once it is
  // mined again). Not on a COMPLETED order, nor once a settlement of the pair is scheduled.
  const other: Pair = o.pair === 'A' ? 'B' : 'A';
  const held = (pair: Pair) => rows.filter(([, r]) => r.pair === pair && live(r)).reduce((sum, [, r]) => sum + r.amount, 0n);
  const own = held(o.pair);
  const theirs = held(other);
  if (o.status !== 'COMPLETED' && !o.settling && theirs > 0n && own + o.slack < o.due && (own === 0n || theirs + o.slack >= o.due)) {
    o.pair = other;
    events.push(`money on pair ${other} selects it over ${was.pair}'s ${own === 0n ? 'none' : 'short amount'} (${o.status})`);
  }
  const counted = rows.map(([, r]) => r).filter((r) => r.pair === o.pair && live(r));
  const seen = counted.reduce((s, r) => s + r.amount, 0n);
  const final = counted.filter((r) => r.status === 'FINAL').reduce((s, r) => s + r.amount, 0n);
  const allFinal = counted.every((r) => r.status === 'FINAL');
  // Money at the address of a pair the order does not have now (counted nowhere).
  const ended = o.status === 'CLOSED' || o.status === 'COMPLETED';
  const moneyElsewhere = rows.some(([, r]) => r.pair !== o.pair && live(r));
  const elsewhere = moneyElsewhere && sees;
  const totalFell = seen < o.seen || final < o.final;
  // §10: REVERTED = a counted payment disappeared in a reorganisation.
  const reorged = totalFell || (lost && !known.revertHiddenByNewMoney);
  if (lost && !totalFell) events.push(known.revertHiddenByNewMoney ? 'KNOWN defect 1: vanished payment hidden by new money' : 'vanished payment with new money');
  if (ended && moneyElsewhere && !sees && !reorged && seen <= o.seen && o.exception !== 'PAID_LATE') events.push('KNOWN defect 5: money elsewhere unseen in a pass of the own pair');
  if (seen === o.seen && final === o.final && !reorged && !(ended && elsewhere)) {
    if (o.pair !== was.pair) throw new ModelAssumptionError(`order ${o.paymentOrderNo}: the pair changed in a decision that changes nothing`);
    return events;
  }
  const before0 = o.exception;
  let raised: Exception | null = null;
  const types: string[] = [];
  if (o.status === 'CLOSED' || o.status === 'COMPLETED') {
    if (reorged) raised = 'REVERTED';
    else if (seen > o.seen || elsewhere) raised = 'PAID_LATE';
    if (elsewhere) events.push(reorged ? 'elsewhere on an ended order: REVERTED wins' : seen > o.seen ? 'elsewhere on an ended order with late money' : `elsewhere on an ended order: PAID_LATE${before0 === 'PAID_LATE' ? ' again' : ''}`);
  } else {
    const target = final + o.slack >= o.due ? 'PAID' : seen > 0n ? 'PAYING' : 'PENDING';
    const status = reorged || RANK[target] >= RANK[o.status] ? target : o.status;
    if (reorged) raised = 'REVERTED';
    else if (status === 'PAID' && final > o.due + o.slack) raised = 'OVERPAID';
    else if (status === 'PAYING' && allFinal && final > 0n && final < o.due) raised = 'UNDERPAID';
    if (status === 'PAID' && o.status !== 'PAID') {
      types.push('ORDER_PAID');
      o.payTime = now;
      o.settling = true;
    }
    if (status !== 'PAID') o.payTime = 0;
    if (RANK[status] < RANK[o.status]) events.push(`${o.status}->${status} on a reorg`);
    o.status = status;
  }
  // A standing condition notifies when the flag changes; every reorg is a new event.
  if (raised !== null && (raised === 'REVERTED' || raised !== before0)) types.push('ORDER_EXCEPTION');
  if (raised !== null) {
    o.exception = raised;
    events.push(raised);
  }
  o.seen = seen;
  o.final = final;
  // A decision that changes nothing and notifies nothing is not recorded (no sequence).
  const same = o.status === was.status && o.exception === was.exception && o.payTime === was.payTime && seen === was.seen && final === was.final;
  if (same && types.length === 0) {
    if (o.pair !== was.pair) throw new ModelAssumptionError(`order ${o.paymentOrderNo}: the pair changed in a decision that changes nothing`);
    return events;
  }
  record(o, types);
  return events;
}

/** POST /v4/pay/orders/close (§12): the code the gateway must answer. */
export function merchantClose(o: ModelOrder, now: number): number {
  if (o.status === 'CLOSED') return 43007;
  if (o.status !== 'PENDING') return 43006;
  const late = moneyElsewhere(o) && o.exception !== 'PAID_LATE';
  if (moneyElsewhere(o)) o.exception = 'PAID_LATE';
  o.status = 'CLOSED';
  o.closeReason = 'MERCHANT_CLOSED';
  o.closedTime = now;
  record(o, late ? ['ORDER_EXCEPTION'] : []);
  return 0;
}

/** Money at the address of the pair the order does not have now (counted nowhere): an order that ends so is PAID_LATE. */
function moneyElsewhere(o: ModelOrder): boolean {
  return [...o.rows.values()].some((r) => r.pair !== o.pair && r.status !== 'REVERTED');
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
  // What arrived is settled pro rata: a settlement is scheduled, unless the fee's share of it is nothing (dust).
  if (underpaid && o.fees[o.pair] * o.final >= o.due) o.settling = true;
  // Money at the other pair's address: PAID_LATE, over UNDERPAID.
  const flag = moneyElsewhere(o) ? 'PAID_LATE' : underpaid ? 'UNDERPAID' : null;
  if (flag !== null && o.exception !== flag) types.push('ORDER_EXCEPTION');
  o.status = 'CLOSED';
  o.closeReason = 'EXPIRED';
  o.closedTime = now;
  if (flag !== null) o.exception = flag;
  record(o, types);
}

/** The cashier's select of the other pair (§15): whether the gateway must accept it. */
export function selectOtherPair(o: ModelOrder, now: number): boolean {
  if (o.status !== 'PENDING' || now >= o.expireTime) return false;
  // Nothing is decided here (no sequence): the totals stay those of the last decision until a pass.
  o.pair = o.pair === 'A' ? 'B' : 'A';
  // PENDING: nothing counted, so any money at the new pair's address is money not counted yet.
  o.uncounted = [...o.rows.values()].some((r) => r.pair === o.pair && r.status !== 'REVERTED');
  return true;
}
