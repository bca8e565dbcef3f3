// PAYMENTS_OBSERVED: the order's status and exception recomputed from the payment totals.
// The rules and the reasons for them are stated at the top of lifecycle.ts.
import { copyState, decided, notify, unchanged } from './lifecycle-state.js';
import type { Decision, Effect, OrderFact, OrderState, PayException } from './lifecycle-types.js';

export type PaymentsObserved = Extract<OrderFact, { kind: 'PAYMENTS_OBSERVED' }>;

/** Rank along the forward path; only the reorg rule may produce a lower one. */
const OPEN_RANK = { PENDING: 0, PAYING: 1, PAID: 2 } as const;
type OpenStatus = keyof typeof OPEN_RANK;

/**
 * Totals that no payments table can produce are a bug in the caller, not a business outcome,
 * hence an exception rather than a refusal.
 */
function assertTotals(f: PaymentsObserved): void {
  if (f.due <= 0n) throw new RangeError(`due must be positive, got ${f.due}`);
  if (f.slack !== undefined && (f.slack < 0n || f.slack >= f.due)) throw new RangeError(`slack must be in [0, due), got ${f.slack}`);
  if (f.final < 0n || f.seen < f.final) {
    throw new RangeError(`need 0 <= final <= seen, got final=${f.final} seen=${f.seen}`);
  }
}

export function observePayments(order: OrderState, f: PaymentsObserved, now: number): Decision {
  assertTotals(f);
  const prev = order.received;
  const ended = order.status === 'COMPLETED' || order.status === 'CLOSED';
  // The same totals change nothing, unless the slack makes paid what was decided short without it
  // (an order left PAYING before the slack existed).
  const paidBySlack = order.status === 'PAYING' && f.final < f.due && f.final + (f.slack ?? 0n) >= f.due;
  if (f.lost !== true && f.switched !== true && !(ended && f.elsewhere === true) && !paidBySlack && f.seen === prev.seen && f.final === prev.final && f.due === order.due) return unchanged(order);
  // A counted transfer that left the canonical chain (said by the caller, or shown by either
  // total going down: a transfer lost its confirmations) is the only thing allowed to move a
  // status backwards. New money in the same observation may hide it from the totals.
  const reverted = f.lost === true || f.seen < prev.seen || f.final < prev.final;
  const s = order.status;
  switch (s) {
    case 'PENDING':
    case 'PAYING':
    case 'PAID':
      return observeOpen(order, s, f, reverted, now);
    case 'COMPLETED':
    case 'CLOSED':
      return observeEnded(order, f, reverted);
    default: {
      const _never: never = s;
      throw new TypeError(`unknown pay status: ${String(_never)}`);
    }
  }
}

/** The status the totals alone call for. */
function statusFromTotals(f: PaymentsObserved): OpenStatus {
  if (f.final + (f.slack ?? 0n) >= f.due) return 'PAID';
  return f.seen > 0n ? 'PAYING' : 'PENDING';
}

function observeOpen(
  order: OrderState,
  from: OpenStatus,
  f: PaymentsObserved,
  reverted: boolean,
  now: number,
): Decision {
  const target = statusFromTotals(f);
  // Without a reorg the status only moves forward: a larger `due` in the fact (a caller-side
  // oddity) must not un-pay an order.
  const status: OpenStatus = reverted || OPEN_RANK[target] >= OPEN_RANK[from] ? target : from;

  // One flag per decision; a reorg outranks the rest because it is the event the merchant must
  // hear about (the status in the same notification shows the rest).
  let raised: PayException | null = null;
  if (reverted) raised = 'REVERTED';
  else if (status === 'PAID' && f.final > f.due + (f.slack ?? 0n)) raised = 'OVERPAID';
  else if (status === 'PAYING' && f.allFinal && f.final > 0n && f.final < f.due) raised = 'UNDERPAID';
  // A standing condition notifies when the flag changes; every reorg is a new event.
  const notifyException = raised !== null && (raised === 'REVERTED' || raised !== order.exception);

  const becamePaid = status === 'PAID' && from !== 'PAID';
  const next: OrderState = {
    ...copyState(order),
    status,
    exception: raised ?? order.exception,
    // payTime is non-zero iff PAID (or later); leaving PAID on a reorg resets it.
    payTime: status !== 'PAID' ? 0 : becamePaid ? now : order.payTime,
    due: f.due,
    received: { seen: f.seen, final: f.final },
  };

  // Status event first, then the exception, then the work it triggers.
  const effects: Effect[] = [];
  if (becamePaid) effects.push(notify('ORDER_PAID'));
  if (notifyException) effects.push(notify('ORDER_EXCEPTION'));
  if (becamePaid) effects.push({ kind: 'SCHEDULE_SETTLEMENT' });
  return decided(order, next, effects);
}

/** COMPLETED and CLOSED keep their status; money moving is recorded as an exception. */
function observeEnded(order: OrderState, f: PaymentsObserved, reverted: boolean): Decision {
  let raised: PayException | null = null;
  if (reverted) raised = 'REVERTED';
  else if (f.seen > order.received.seen || f.elsewhere === true) raised = 'PAID_LATE';
  // Money beyond the amount due, seen before the order completed and final only now: OVERPAID
  // when the settlement distributed it (it went to the merchant), else PAID_LATE (it sits at the
  // one-shot forwarder's address, ADR 0009, for the merchant to resolve). Once money came after
  // the completion (PAID_LATE), any of it confirming is that same standing condition: the totals
  // cannot tell which money confirmed, and PAID_LATE must not turn into OVERPAID and back.
  // (Within the slack of the amount due, money the settlement did not distribute still counts:
  // it sits at the forwarder.)
  else if (order.status === 'COMPLETED' && f.final > order.received.final && (f.final > f.due + (f.slack ?? 0n) || (f.distributed !== undefined && f.final > f.distributed))) {
    raised = order.exception !== 'PAID_LATE' && f.distributed !== undefined && f.final <= f.distributed ? 'OVERPAID' : 'PAID_LATE';
  }
  const notifyException = raised !== null && (raised === 'REVERTED' || raised !== order.exception);

  const next: OrderState = {
    ...copyState(order),
    exception: raised ?? order.exception,
    due: f.due,
    received: { seen: f.seen, final: f.final },
  };
  return decided(order, next, notifyException ? [notify('ORDER_EXCEPTION')] : []);
}
