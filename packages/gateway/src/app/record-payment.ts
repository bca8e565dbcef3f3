// The payment port: facts about transfers to an order's deposit address arrive here (the
// chain watcher feeds it; tests feed it directly). Each transfer is stored idempotently by
// (network, tx hash, log index) and the order's totals are recomputed from all its rows in
// the same transaction as the state change.
import type { OrderFact } from '../domain/lifecycle.js';
import { applyFact, committed, transition, type Applied, type TransitionDeps, type TransitionOutcome } from './order-transitions.js';
import { optionSlack, orderSlack } from './order-view.js';
import type { StoreTx } from './ports.js';
import { UNNAMED, type OrderRecord, type PaymentRecord } from './records.js';

/**
 * A transfer to one of the order's deposit addresses as the chain shows it now. status SEEN:
 * canonical, not yet final; FINAL: enough confirmations; REVERTED: left the canonical chain.
 */
export type TransferFact = Omit<PaymentRecord, 'createdAt' | 'updatedAt'>;

export interface PaymentFacts {
  transferObserved(fact: TransferFact): Promise<TransitionOutcome>;
  /**
   * Several transfers of one order as one scan pass found them: stored together and the order
   * decided once on the resulting totals, so two transfers that complete it in the same pass
   * never show it a transient UNDERPAID (a flag that is never cleared) or two REVERTED events.
   */
  transfersObserved(facts: readonly TransferFact[]): Promise<TransitionOutcome>;
  /**
   * Every transfer a scan pass found, of any number of orders: each order's together, as
   * transfersObserved would, but a few hundred orders per transaction, loaded and written in a
   * handful of statements. One outcome per order (in the order the orders first appear); an
   * outcome's order may carry only its selected option (`onlySelectedOption`).
   */
  passObserved(facts: readonly TransferFact[], fence?: Fence): Promise<TransitionOutcome[]>;
}

/**
 * Asked first in every transaction that stores a pass's facts: false, and nothing of that
 * transaction is stored and the pass fails with LeaseLostError. The scan renews its lease there,
 * so a write that waited past the lease (a database stall) while another instance took the scan
 * over stores nothing: the other instance may have read the same balances and stored the same
 * native receipt at another head (counted twice). A renewal is a write of the cursor row: on
 * PostgreSQL the other instance's taking of the lease waits for this transaction.
 */
export type Fence = (tx: StoreTx) => Promise<boolean>;

/** A pass's fence said no: another instance holds the scan (nothing of the transaction was stored). */
export class LeaseLostError extends Error {
  constructor() {
    super('the scan lease was lost: another instance holds it');
  }
}

/** Orders applied per transaction by passObserved (their reads and writes are a few statements). */
export const PASS_ORDERS_PER_TRANSACTION = 250;

const key = (p: Pick<TransferFact, 'network' | 'txHash' | 'logIndex'>) => `${p.network}|${p.txHash}|${p.logIndex}`;

/**
 * What an order's transfers of a pass mean, given its transfers as stored: the rows to write,
 * the transfers that enter a new status (what is counted), and the fact to decide (null when the
 * order has no amount due in the pair, so nothing to decide). Selects the pair of a transfer in
 * one of the order's options when the payer skipped the cashier or paid a pair chosen before
 * the last one (paysAnotherPair; mutates `order`).
 */
function observe(
  order: OrderRecord,
  stored: readonly PaymentRecord[],
  facts: readonly TransferFact[],
  nowMs: number,
  settling: boolean,
  before: readonly PaymentRecord[] = stored,
  distributed: bigint | null = null,
) {
  const entered: TransferFact[] = [];
  // The pair that counted when the pass began: a reorg is a loss of its money, whatever pair the
  // pass's money selects.
  const wasNetwork = order.selectedNetwork;
  const wasCurrency = order.selectedCurrency;
  // The order's transfers as stored, then as they will be after this upsert: the totals are
  // computed from that, without reading them back.
  const rows = new Map(stored.map((p) => [key(p), p]));
  const writes = new Map<string, PaymentRecord>();
  for (const fact of facts) {
    const option = optionOf(order, fact);
    // Not once a settlement of the order's pair is scheduled (it was PAID, then a reorganisation
    // took the payment back): the settlement pays out from that pair's address, and a switch left
    // the money of the pair it was paid in undistributed, the order COMPLETED or PAID for good.
    if (option && fact.status !== 'REVERTED' && !settling && paysAnotherPair(order, option, rows)) {
      order.selectedNetwork = option.network;
      order.selectedCurrency = option.currency;
      order.state = { ...order.state, due: option.amountBase };
    }
    const k = key(fact);
    const before = rows.get(k);
    if (before?.status !== fact.status) entered.push(fact);
    const write = record(fact, fact, nowMs, nowMs);
    // The upsert keeps what identifies a stored transfer (amount, address, currency, created_at)
    // and moves its block, confirmations and status.
    rows.set(k, before ? record(before, fact, before.createdAt, nowMs) : write);
    writes.set(k, write);
  }
  // The money shows the pair the payer paid with (as paysAnotherPair does when it arrives): when
  // the order's pair holds nothing (its money left the chain), or less than it is due while
  // another pair holds that pair's whole amount, the other pair becomes the order's. So a reorg
  // that drops the pair's payment for a block or two hands the order back when it is mined
  // again. Not once a settlement of the pair is scheduled (the order was PAID, or expired with
  // money): it settles from that pair's address, and money elsewhere stays for the merchant
  // (PAID_LATE once the order ended).
  const takeover = order.selectedNetwork && !settling ? takeoverOf(order, rows) : undefined;
  if (takeover) {
    order.selectedNetwork = takeover.network;
    order.selectedCurrency = takeover.currency;
    order.state = { ...order.state, due: takeover.amountBase };
  }
  // The pair changed (money selected it, or took the order over): the totals the lifecycle
  // compares the new ones with are that pair's as they stood, in its own token and decimals, not
  // the old pair's (18-decimal BSC USDT against 6-decimal Polygon USDT read as money lost). Only
  // what still counts now: the pair's earlier money was not the order's, so none of it leaving
  // the chain is a loss of counted money (`lost` says that, from the old pair).
  const switched = order.selectedNetwork !== wasNetwork || order.selectedCurrency !== wasCurrency;
  if (switched) {
    let seen = 0n;
    let final = 0n;
    for (const p of before) {
      const now = rows.get(key(p));
      if (!inSelectedPair(order, p) || p.status === 'REVERTED' || !now || now.status === 'REVERTED') continue;
      seen += p.amount;
      if (p.status === 'FINAL' && now.status === 'FINAL') final += p.amount;
    }
    order.state = { ...order.state, received: { seen, final } };
  }
  // A transfer in a pair the order does not offer is recorded but counts for nothing.
  let fact: OrderFact | null = null;
  if (order.state.due !== null) {
    const counted = [...rows.values()].filter((p) => inSelectedPair(order, p) && p.status !== 'REVERTED');
    fact = {
      kind: 'PAYMENTS_OBSERVED',
      due: order.state.due,
      seen: counted.reduce((s, p) => s + p.amount, 0n),
      final: counted.filter((p) => p.status === 'FINAL').reduce((s, p) => s + p.amount, 0n),
      allFinal: counted.every((p) => p.status === 'FINAL'),
      // A transfer that counted (in the pair of the pass's start) and left the chain in this pass,
      // even when new money keeps the totals up.
      // `before`: the rows as the pass's first attempt found them (a retry after a concurrent
      // change finds them already written).
      lost: before.some((p) => p.network === wasNetwork && p.currency === wasCurrency && p.status !== 'REVERTED' && rows.get(key(p))?.status === 'REVERTED'),
      // Money the totals do not count, in another pair the order offered: the lifecycle flags it
      // on an ended order (PAID_LATE). A standing condition, from every row, not only this pass's:
      // a decision that could not take it when it arrived (the order still open, a retry after a
      // concurrent change, a reorg reported first) takes it at the order's next observation.
      elsewhere: moneyElsewhere(order, rows.values()),
      // What the settlement of a COMPLETED order distributed: money final beyond it sits at the address.
      ...(distributed !== null ? { distributed } : {}),
      // Decided (and stored) even when the new pair's totals equal what it held before.
      ...(switched ? { switched } : {}),
      // Below the currency's precision, money short of (or beyond) the amount due is that amount.
      ...slackFact(order, order.state.due),
    };
  }
  return { writes: [...writes.values()], entered, fact };
}

type PairOf = Pick<PaymentRecord, 'network' | 'currency'>;
const inSelectedPair = (order: OrderRecord, p: PairOf) => p.network === order.selectedNetwork && p.currency === order.selectedCurrency;
/** The option of `p`'s pair among those the order carries (undefined: not offered, or not loaded). */
const optionOf = (order: OrderRecord, p: PairOf) => order.options.find((o) => o.network === p.network && o.currency === p.currency);

/** The fact's `slack` for the order's pair (absent when none, or when it would not be below the amount due). */
function slackFact(order: OrderRecord, due: bigint): { slack?: bigint } {
  const slack = orderSlack(order);
  return slack > 0n && slack < due ? { slack } : {};
}

/** Money (a transfer still on the chain) at the address of one of the order's pairs other than its own. */
export function moneyElsewhere(order: OrderRecord, rows: Iterable<PaymentRecord>): boolean {
  for (const p of rows) if (p.status !== 'REVERTED' && !inSelectedPair(order, p) && optionOf(order, p)) return true;
  return false;
}

/**
 * A close of an order (by the merchant, or by its deadline) with whether money sits at the address
 * of another of its pairs: an order that ends so is PAID_LATE (lifecycle.ts). An order that cannot
 * close reads nothing more.
 */
export async function closingFact(tx: StoreTx, order: OrderRecord, kind: 'MERCHANT_CLOSE' | 'DEADLINE_CHECK'): Promise<OrderFact> {
  if (order.state.status !== 'PENDING' && order.state.status !== 'PAYING') return { kind };
  // Final money within the slack of the amount due is the amount due: the order is paid, not
  // expired short (one left PAYING before the slack existed: no new transfer decides it again).
  const s = order.state;
  if (kind === 'DEADLINE_CHECK' && s.status === 'PAYING' && s.due !== null && s.received.seen === s.received.final) {
    const slack = slackFact(order, s.due);
    if (slack.slack !== undefined && s.received.final + slack.slack >= s.due) {
      return { kind: 'PAYMENTS_OBSERVED', due: s.due, seen: s.received.seen, final: s.received.final, allFinal: true, ...slack };
    }
  }
  return { kind, elsewhere: await elsewhereOf(tx, order) };
}

/** moneyElsewhere over the order's stored transfers, read in `tx`. */
export async function elsewhereOf(tx: StoreTx, order: OrderRecord): Promise<boolean> {
  return moneyElsewhere(order, await tx.payments.listByOrder(order.paymentOrderNo));
}

/**
 * The pair whose money should be the order's instead of its selected pair's, if any: none on a
 * COMPLETED order or while the selected pair holds its whole amount; else the first other pair
 * (by when its money was recorded) holding its whole amount, or, when the selected pair holds
 * nothing at all, the first other pair holding any money.
 */
function takeoverOf(order: OrderRecord, rows: ReadonlyMap<string, PaymentRecord>): OrderRecord['options'][number] | undefined {
  if (order.state.status === 'COMPLETED') return undefined;
  let own = 0n;
  const others = new Map<OrderRecord['options'][number], { seen: bigint; first: number }>();
  for (const p of rows.values()) {
    if (p.status === 'REVERTED') continue;
    if (inSelectedPair(order, p)) {
      own += p.amount;
      continue;
    }
    const option = optionOf(order, p);
    if (!option) continue;
    const sum = others.get(option) ?? { seen: 0n, first: p.createdAt };
    others.set(option, { seen: sum.seen + p.amount, first: Math.min(sum.first, p.createdAt) });
  }
  if (others.size === 0) return undefined;
  if (order.state.due !== null && own + orderSlack(order) >= order.state.due) return undefined;
  const byFirst = [...others].sort((a, b) => a[1].first - b[1].first);
  const covering = byFirst.find(([option, sum]) => sum.seen + optionSlack(option) >= option.amountBase);
  if (covering) return covering[0];
  return own === 0n ? byFirst[0]![0] : undefined;
}

/**
 * Whether money in `option`'s pair makes it the order's pair: the payer skipped the cashier (no
 * pair chosen), or chose `option`'s pair, switched to another one (allowed while PENDING) and
 * paid the address handed out first anyway. Then the money counts, as long as nothing counts
 * on the pair chosen last: the money shows which pair the payer paid with. On a CLOSED order
 * the same holds for money sent after closure: it counts as PAID_LATE (and `order settle` pays
 * it out from that pair's address) instead of sitting unseen at an address the order left.
 */
function paysAnotherPair(order: OrderRecord, option: PairOf, rows: ReadonlyMap<string, PaymentRecord>): boolean {
  if (!order.selectedNetwork) return true;
  if (inSelectedPair(order, option)) return false;
  if (!OTHER_PAIR_STATUSES.has(order.state.status)) return false;
  for (const p of rows.values()) if (inSelectedPair(order, p) && p.status !== 'REVERTED') return false;
  return true;
}

/** Statuses in which money in a pair chosen earlier can become the order's pair (paysAnotherPair). */
const OTHER_PAIR_STATUSES: ReadonlySet<OrderRecord['state']['status']> = new Set(['PENDING', 'CLOSED']);

/** `id`'s transfer (order, network, currency, tx, address, amount) where `at` says it is now. Written out: spreading costs more. */
function record(id: TransferFact, at: TransferFact, createdAt: number, updatedAt: number): PaymentRecord {
  return {
    paymentOrderNo: id.paymentOrderNo,
    network: id.network,
    currency: id.currency,
    txHash: id.txHash,
    logIndex: id.logIndex,
    blockNumber: at.blockNumber,
    blockHash: at.blockHash,
    address: id.address,
    amount: id.amount,
    confirmations: at.confirmations,
    status: at.status,
    // A native receipt's transaction, once named, stays named, unless the name is withdrawn.
    chainTxHash: at.chainTxHash === UNNAMED ? UNNAMED : (id.chainTxHash ?? at.chainTxHash ?? null),
    createdAt,
    updatedAt,
  };
}

/** Items by `keyOf`, each key's in their given order. */
export function groupBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const list = out.get(key);
    if (list) list.push(item);
    else out.set(key, [item]);
  }
  return out;
}

/** Items by order number, each order's in their given order. */
export const groupByOrder = <T extends { paymentOrderNo: string }>(items: readonly T[]): Map<string, T[]> => groupBy(items, (item) => item.paymentOrderNo);

/**
 * Of `nos`, the orders with a settlement scheduled (their pair no longer gives way to money in
 * another pair: takeoverOf). Read only for orders with money outside their pair: a few.
 */
async function withSettlement(tx: StoreTx, nos: readonly string[]): Promise<Set<string>> {
  const out = new Set<string>();
  for (const no of nos) if (await tx.settlements.get(no)) out.add(no);
  return out;
}

/** What the settlement of a COMPLETED order distributed (null for any other order, or none recorded). */
async function distributedOf(tx: StoreTx, order: OrderRecord): Promise<bigint | null> {
  if (order.state.status !== 'COMPLETED') return null;
  return (await tx.settlements.get(order.paymentOrderNo))?.distributed ?? null;
}

export function paymentFacts(deps: TransitionDeps): PaymentFacts {
  const counted = (entered: readonly TransferFact[]) => {
    if (!deps.metrics || entered.length === 0) return;
    // One call per (network, status): a pass may count thousands (no key string per transfer).
    const counts = new Map<string, Map<TransferFact['status'], number>>();
    for (const { network, status } of entered) {
      let byStatus = counts.get(network);
      if (!byStatus) counts.set(network, (byStatus = new Map()));
      byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
    }
    for (const [network, byStatus] of counts) for (const [status, n] of byStatus) deps.metrics.paymentObserved(network, status, n);
  };

  /**
   * transfersObserved; `before`: the order's rows before an earlier attempt of the same pass wrote
   * them (that attempt committed new rows when `wroteBefore`).
   */
  const observeOrder = async (facts: readonly TransferFact[], before?: readonly PaymentRecord[], wroteBefore = false, fence?: Fence): Promise<TransitionOutcome> => {
    const first = facts[0];
    if (!first) throw new RangeError('transfersObserved needs at least one transfer');
    if (facts.some((f) => f.paymentOrderNo !== first.paymentOrderNo)) throw new RangeError('transfersObserved takes the transfers of one order');
    // Accumulated over attempts: an attempt that found the order changed ('RETRY') has committed
    // its rows, so the next attempt sees them stored and would not count them again.
    const entered: TransferFact[] = [];
    const outcome = await transition(deps, first.paymentOrderNo, async (tx, order): Promise<OrderFact | null> => {
      if (fence && !(await fence(tx))) throw new LeaseLostError();
      const stored = await tx.payments.listByOrder(order.paymentOrderNo);
      before ??= stored;
      const outside = order.selectedNetwork !== null && [...stored, ...facts].some((p) => !inSelectedPair(order, p));
      const settling = outside && (await withSettlement(tx, [order.paymentOrderNo])).size > 0;
      const seen = observe(order, stored, facts, deps.clock.nowMs(), settling, before, await distributedOf(tx, order));
      entered.push(...seen.entered);
      await tx.payments.upsertMany(seen.writes);
      return seen.fact;
      // New rows written by any attempt (one that met 'RETRY' committed its rows without the
      // order): the order row is written with them, decided or not (applyFact).
    }, { wroteRows: () => wroteBefore || entered.length > 0 });
    // Stored unless the order does not exist (a refused decision still commits the rows).
    if (outcome.ok || outcome.reason !== 'NOT_FOUND') counted(entered);
    return outcome;
  };

  const passObserved = async (facts: readonly TransferFact[], fence?: Fence): Promise<TransitionOutcome[]> => {
    const byOrder = groupByOrder(facts);
    const nos = [...byOrder.keys()];
    const outcomes = new Map<string, TransitionOutcome>();
    const failures: unknown[] = [];
    /** The one-order path for `no` (its own transaction, its own retries); a failure is kept for the end. */
    const alone = async (no: string, before?: readonly PaymentRecord[], wroteBefore = false) => {
      try {
        outcomes.set(no, await observeOrder(byOrder.get(no)!, before, wroteBefore, fence));
      } catch (err) {
        if (err instanceof LeaseLostError) throw err;
        failures.push(err);
      }
    };
    for (let i = 0; i < nos.length; i += PASS_ORDERS_PER_TRANSACTION) {
      const chunk = nos.slice(i, i + PASS_ORDERS_PER_TRANSACTION);
      let done: { no: string; applied: Applied | 'RETRY'; entered: TransferFact[]; before: readonly PaymentRecord[] }[];
      try {
        done = await deps.store.transaction(async (tx) => {
          if (fence && !(await fence(tx))) throw new LeaseLostError();
          const out: { no: string; applied: Applied | 'RETRY'; entered: TransferFact[]; before: readonly PaymentRecord[] }[] = [];
          // Orders are written in one order by every writer (by number): two transactions on
          // PostgreSQL never wait on each other's rows in a cycle.
          // An order with a selected pair needs no other option here (a notification reads them all).
          let orders = (await tx.orders.getMany(chunk, { onlySelectedOption: true })).sort((a, b) => (a.paymentOrderNo < b.paymentOrderNo ? -1 : a.paymentOrderNo > b.paymentOrderNo ? 1 : 0));
          const stored = groupByOrder(await tx.payments.listByOrders(orders.map((o) => o.paymentOrderNo)));
          // Money in another pair than the one chosen, new or stored, may make it the order's pair
          // or be money elsewhere on an ended order: those few orders are read again with all
          // their options.
          const outside = (o: OrderRecord) => (p: PairOf) => !optionOf(o, p);
          const otherPair = orders.filter((o) => byOrder.get(o.paymentOrderNo)!.some(outside(o)) || (stored.get(o.paymentOrderNo) ?? []).some(outside(o)));
          if (otherPair.length > 0) {
            const whole = new Map((await tx.orders.getMany(otherPair.map((o) => o.paymentOrderNo))).map((o) => [o.paymentOrderNo, o]));
            orders = orders.map((o) => whole.get(o.paymentOrderNo) ?? o);
          }
          const nowMs = deps.clock.nowMs();
          // An order loaded with its selected option only has nothing outside it: the settlements
          // matter only for those read again with all their options (and a pair selected).
          const settling = await withSettlement(tx, otherPair.filter((o) => o.selectedNetwork !== null).map((o) => o.paymentOrderNo));
          const seen = [];
          for (const order of orders) {
            const was = stored.get(order.paymentOrderNo) ?? [];
            seen.push({ order, ...observe(order, was, byOrder.get(order.paymentOrderNo)!, nowMs, settling.has(order.paymentOrderNo), was, await distributedOf(tx, order)) });
          }
          await tx.payments.upsertMany(seen.flatMap((s) => s.writes));
          for (const s of seen) out.push({ no: s.order.paymentOrderNo, applied: await applyFact(deps, tx, s.order, s.fact, s.entered.length > 0), entered: s.entered, before: stored.get(s.order.paymentOrderNo) ?? [] });
          return out;
        });
      } catch (err) {
        if (err instanceof LeaseLostError) throw err;
        // The chunk as a whole failed (nothing of it stored): each order alone, so that one order
        // that cannot be applied holds up only itself.
        for (const no of chunk) await alone(no);
        continue;
      }
      for (const no of chunk) outcomes.set(no, { ok: false, reason: 'NOT_FOUND', message: 'payment order does not exist' });
      // What committed is acted on first; then the orders changed meanwhile are decided again.
      counted(done.flatMap((d) => d.entered));
      for (const d of done) {
        if (d.applied === 'RETRY') continue;
        committed(deps, d.applied);
        outcomes.set(d.no, d.applied.outcome);
      }
      // Changed by someone else since it was read (PostgreSQL): its transfers are stored; the
      // one-order path decides it again from them, retrying as it does.
      for (const d of done) if (d.applied === 'RETRY') await alone(d.no, d.before, d.entered.length > 0);
    }
    if (failures.length > 0) throw failures[0];
    return nos.map((no) => outcomes.get(no)!);
  };

  const transfersObserved = (facts: readonly TransferFact[]) => observeOrder(facts);
  return { transferObserved: (fact) => transfersObserved([fact]), transfersObserved, passObserved };
}
