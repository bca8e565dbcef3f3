// Applying a lifecycle decision: the new state and the effects it causes (outbox rows) are
// written in one transaction, guarded by the order's version so concurrent writers retry
// instead of overwriting each other.
import { decide, type OrderFact } from '../domain/lifecycle.js';
import { urlDestination } from '../domain/url.js';
import type { Clock, Ids, Metrics, OutboxSignal, Store, StoreTx } from './ports.js';
import { nowSeconds } from './ports.js';
import { orderQueryData, type TokenDecimals } from './order-view.js';
import type { OrderRecord } from './records.js';

export interface TransitionDeps {
  store: Store;
  clock: Clock;
  ids: Ids;
  /** Told when a committed transition wrote notifications (the delivery worker wakes up). */
  outbox?: OutboxSignal;
  /** Told of each committed status change (and, by the payment port, of transfers). */
  metrics?: Metrics;
  /** Told when a committed transition made an order's settlement due on `network` (the settlement worker wakes up). */
  settlementDue?: (network: string) => void;
  /** The configured tokens' decimals, for a notification's transfers in a token the order has no option for. */
  tokens?: TokenDecimals;
}

export type TransitionOutcome =
  | { ok: true; order: OrderRecord; changed: boolean }
  | { ok: false; reason: 'NOT_FOUND' | 'ALREADY_CLOSED' | 'NOT_CLOSABLE' | 'INVALID_TRANSITION'; message: string; order?: OrderRecord };

const MAX_ATTEMPTS = 5;

/**
 * Loads the order, asks the domain what `fact` means for it, and stores the result.
 * `prepare` may adjust the order inside the same transaction first (e.g. record a payment and
 * return the fact computed from the new totals, or null when there is nothing to decide).
 */
export async function transition(
  deps: TransitionDeps,
  paymentOrderNo: string,
  fact: OrderFact | ((tx: StoreTx, order: OrderRecord) => Promise<OrderFact | null>),
  opts: { wroteRows?: () => boolean } = {},
): Promise<TransitionOutcome> {
  for (let attempt = 1; ; attempt += 1) {
    const applied = await deps.store.transaction(async (tx): Promise<Applied | 'RETRY'> => {
      const order = await tx.orders.get(paymentOrderNo);
      if (!order) return unchanged({ ok: false, reason: 'NOT_FOUND', message: 'payment order does not exist' });
      const f = typeof fact === 'function' ? await fact(tx, order) : fact;
      // Asked once `fact` has run: whether it wrote rows of the order (see applyFact).
      return applyFact(deps, tx, order, f, opts.wroteRows?.() === true);
    });
    if (applied !== 'RETRY') {
      committed(deps, applied);
      return applied.outcome;
    }
    if (attempt >= MAX_ATTEMPTS) throw new Error(`order ${paymentOrderNo} kept changing under us; gave up after ${attempt} attempts`);
  }
}

/** What applying a fact inside a transaction did; `committed` acts on it once the transaction has committed. */
export interface Applied {
  outcome: TransitionOutcome;
  statusChanged: boolean;
  /** The network whose settlement worker is to wake up, if the order's settlement became due. */
  settleOn: string | null;
}

export const unchanged = (outcome: TransitionOutcome): Applied => ({ outcome, statusChanged: false, settleOn: null });

/**
 * Decides `f` (null: nothing to decide) for `order` as loaded in `tx` and writes the new state
 * and its effects there. 'RETRY': the order changed since it was loaded (nothing written for it).
 * `wroteRows`: the caller wrote new rows of the order in `tx` (transfers, or transfers in a new
 * status; rewriting what is stored is no news to anyone). The order row is then
 * written too, with a new version, even when nothing is decided: a writer that read the order
 * before those rows committed (an expiry on PostgreSQL reading its payments to see whether money
 * sits elsewhere) finds the version moved and decides again with them (ADR 0001), instead of
 * deciding from payments without them. What `order` carries then is stored (a pair the money
 * selected, with its totals).
 */
export async function applyFact(deps: TransitionDeps, tx: StoreTx, order: OrderRecord, f: OrderFact | null, wroteRows = false): Promise<Applied | 'RETRY'> {
  const keep = async (outcome: TransitionOutcome): Promise<Applied | 'RETRY'> => {
    if (!wroteRows) return unchanged(outcome);
    const touched: OrderRecord = { ...order, version: order.version + 1, updatedAt: deps.clock.nowMs() };
    if (!(await tx.orders.saveState(touched, order.version))) return 'RETRY';
    return unchanged({ ...outcome, order: touched });
  };
  if (!f) return keep({ ok: true, order, changed: false });
  const now = nowSeconds(deps.clock);
  const decision = decide(order.state, f, now);
  if (!decision.ok) return keep({ ok: false, reason: decision.reason, message: decision.message, order });
  if (!decision.changed) return keep({ ok: true, order, changed: false });
  const next: OrderRecord = {
    ...order,
    state: decision.next,
    sequence: order.sequence + 1,
    version: order.version + 1,
    updatedAt: deps.clock.nowMs(),
  };
  for (const effect of decision.effects) {
    if (effect.kind === 'WATCH_UNTIL') next.watchUntil = Math.max(next.watchUntil, effect.until);
  }
  if (!(await tx.orders.saveState(next, order.version))) return 'RETRY';
  const statusChanged = next.state.status !== order.state.status;
  // An order that expired with dust (so little that the fee address's pro-rata share of it is
  // nothing: one base unit, say) is not paid out on its own: the relayer would pay a whole
  // distribution's gas and the fee, which is there to cover it, nothing (settlement walkthrough).
  // The money stays at the address, for `order settle` if the operator wants it moved.
  const settles = decision.effects.some((e) => e.kind === 'SCHEDULE_SETTLEMENT') && !(next.state.status === 'CLOSED' && feeShareNothing(next));
  const settleOn = settles ? await scheduleSettlement(tx, next, deps.clock.nowMs()) : null;
  // Closed with nothing of its own to settle (expired empty or with dust, or closed by the
  // merchant): a settlement scheduled while it was PAID, before a reorganisation took the
  // payment back, is forgotten unless a transaction carries it already. Left due, it would pay
  // out on its own money that arrives later, which after the close waits for `order settle`.
  if (!settles && next.state.status === 'CLOSED' && order.state.status !== 'CLOSED') await tx.settlements.dropDue(next.paymentOrderNo);
  const notifies = decision.effects.filter((e) => e.kind === 'NOTIFY');
  if (notifies.length > 0 && next.notifyUrl) {
    const payments = await tx.payments.listByOrder(next.paymentOrderNo);
    // The snapshot lists every payment option: read them if the order was loaded with one only.
    const shown = next.onlySelectedOption ? { ...next, options: (await tx.orders.get(next.paymentOrderNo))?.options ?? next.options } : next;
    const snapshot = orderQueryData(shown, payments, await tx.settlements.view(next.paymentOrderNo), { tokens: deps.tokens });
    for (const effect of notifies) {
      const notifyId = deps.ids.notifyId();
      await tx.notifications.insert({
        notifyId,
        paymentOrderNo: next.paymentOrderNo,
        notifyType: effect.notifyType,
        sequence: next.sequence,
        // notify_time is stamped by the delivery worker at the first attempt.
        payload: JSON.stringify({ ...snapshot, notify_id: notifyId, notify_type: effect.notifyType }),
        status: 'PENDING',
        attempts: 0,
        nextAttemptAt: deps.clock.nowMs(),
        createdAt: deps.clock.nowMs(),
        series: 1,
        attemptNo: 0,
        notifyTime: null,
        leaseOwner: null,
        deliveredAt: null,
        destination: urlDestination(next.notifyUrl),
      });
    }
  }
  return { outcome: { ok: true, order: next, changed: true }, statusChanged, settleOn };
}

/** After the commit: wakes the delivery and settlement workers and counts the change. */
export function committed(deps: TransitionDeps, applied: Applied): void {
  const { outcome } = applied;
  if (outcome.ok && outcome.changed && outcome.order.notifyUrl) deps.outbox?.notify();
  if (outcome.ok && applied.statusChanged) deps.metrics?.transition(outcome.order.state.status);
  if (outcome.ok && applied.settleOn) deps.settlementDue?.(applied.settleOn);
}

/**
 * Whether the fee address's pro-rata share of what arrived for good in the order's pair rounds
 * down to nothing (fee × received / amount due < 1 base unit, the contract's rule for a shortfall).
 */
function feeShareNothing(order: OrderRecord): boolean {
  const option = order.options.find((o) => o.network === order.selectedNetwork && o.currency === order.selectedCurrency);
  return option !== undefined && option.fee * order.state.received.final < option.amountBase;
}

/**
 * The order's settlement becomes due (§15a): its deposit address (the forwarder) for the pair
 * the payer chose. Once per order: a reorg that makes it PAID again finds the row there.
 */
async function scheduleSettlement(tx: StoreTx, order: OrderRecord, nowMs: number): Promise<string | null> {
  // Payments are found at deposit addresses, so a paid order has one; facts fed by hand (tests,
  // tools) for an order without one have no forwarder to settle from.
  if (!order.selectedNetwork || !order.selectedCurrency) return null;
  const deposit = await tx.depositAddresses.get(order.paymentOrderNo, order.selectedNetwork, order.selectedCurrency);
  if (!deposit) return null;
  const inserted = await tx.settlements.insertDue({ paymentOrderNo: order.paymentOrderNo, network: order.selectedNetwork, currency: order.selectedCurrency, address: deposit.address }, nowMs);
  return inserted ? order.selectedNetwork : null;
}
