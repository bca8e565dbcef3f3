// The order lifecycle (PROTOCOL §10, §12, §13, §15a): decide(order, fact, now) -> next state and
// the effects the use case stores with it in one transaction. Pure: `now` is passed in.
//
// Rules the protocol states:
// - PENDING -> PAYING -> PAID -> COMPLETED; PENDING/PAYING -> CLOSED. CLOSED is never left and
//   COMPLETED never moves. The only backward moves are the reorg ones: PAYING/PAID ->
//   PENDING/PAYING, recorded as REVERTED and notified.
// - Notifying events: PAID, COMPLETED, expiry, each new exception. A merchant close does not
//   notify (an exception it raises does, below). Merchant close: PENDING only; CLOSED -> ALREADY_CLOSED (43007); PAYING, PAID,
//   COMPLETED -> NOT_CLOSABLE (43006).
// - An order that ends while money sits at the address of another of its pairs (`elsewhere`, see
//   below) is PAID_LATE from then on, whether it completes (SETTLEMENT_FINAL), expires
//   (DEADLINE_CHECK; over UNDERPAID) or is closed by the merchant (MERCHANT_CLOSE, which then
//   notifies that exception, not the close).
//
// Decisions for what the protocol leaves silent:
// - The deadline acts only through DEADLINE_CHECK. A payment observed after expireTime but
//   before the expiry worker closed the order counts normally (§10 defines PAID_LATE as money
//   after CLOSED), and so does a merchant close in that window (MERCHANT_CLOSED, no notify).
// - DEADLINE_CHECK on a PAYING order whose last totals still have unconfirmed money
//   (seen > final) waits: money already on its way is not cut off. Once nothing is pending a
//   short order closes as EXPIRED with UNDERPAID. PAYMENTS_OBSERVED never closes an order, even
//   past the deadline; the next DEADLINE_CHECK does.
// - closedTime is `now` (when the order was actually closed), not expireTime; WATCH_UNTIL is
//   closedTime + 24 h for both close reasons. COMPLETED orders get completedTime + 24 h too:
//   money sent after the settlement (a payer paying twice) is recorded as PAID_LATE and
//   notified, not left unseen at the address.
// - Any decrease of `seen` or `final` is a reorg (REVERTED), including a transfer merely losing
//   confirmations and including decreases that leave the order PAID (it then stays PAID).
//   The status is then recomputed from the totals: final >= due -> PAID, seen > 0 -> PAYING,
//   else PENDING. Without a decrease the status only moves forward (a larger `due` in a fact
//   never un-pays an order).
// - Exception flags are never cleared, only replaced by a newer one (an UNDERPAID order that
//   is then paid in full is PAID with UNDERPAID still set). One flag per decision, by priority
//   REVERTED > OVERPAID > UNDERPAID (and REVERTED > PAID_LATE on ended orders, PAID_LATE >
//   UNDERPAID as an order expires).
// - UNDERPAID, OVERPAID and PAID_LATE describe a standing condition: they notify when the flag
//   changes. Every REVERTED notifies, even if the flag already was REVERTED: each reorg is a new
//   event, and a PAID -> PAYING move has no notification of its own.
// - Money after COMPLETED (seen grows) is PAID_LATE, as after CLOSED: the forwarder has already
//   distributed, so the merchant must resolve it by hand. Money seen before the completion
//   (beyond the amount due, still confirming as the settlement completed) that becomes final
//   after it is OVERPAID when the settlement distributed it, else PAID_LATE (notified then:
//   while PAID it was not final, so not flagged). A reorg after COMPLETED or CLOSED is
//   REVERTED with a notification; the status stays. Money in another of the order's pairs
//   (`elsewhere`: at an address handed out for a pair the order did not end with) makes an ended
//   order PAID_LATE too, although the totals, which count the order's pair only, do not move; it
//   is a standing condition (notified when the flag changes). On an open order it is recorded and
//   counts for nothing (the payer chose the pair that counts).
// - Re-reaching PAID after a reorg sets payTime again and emits ORDER_PAID and
//   SCHEDULE_SETTLEMENT again (the settlement job must be idempotent per order anyway, §15a).
// - More money while PAID records the totals (and OVERPAID once final > due) but emits no second
//   ORDER_PAID or SCHEDULE_SETTLEMENT.
// - SETTLEMENT_FINAL on PAID -> COMPLETED (PAID_LATE and ORDER_EXCEPTION too when money sits at
//   the address of another of its pairs, `elsewhere`: the settlement does not pay it out); on
//   COMPLETED it is an idempotent no-op; on CLOSED too
//   (an order that expired underpaid is settled pro rata and stays CLOSED); on PENDING or PAYING
//   it is INVALID_TRANSITION (e.g. a reorg took the order back to PAYING after the settlement
//   was sent: the use case must surface it, the lifecycle cannot guess).
// - An order that expires underpaid (final money short of the due amount) also gets
//   SCHEDULE_SETTLEMENT: what arrived is at its forwarder and is distributed pro rata (§15a).
// - Effects order: status notification, then ORDER_EXCEPTION, then SCHEDULE_SETTLEMENT /
//   WATCH_UNTIL. So OVERPAID is [ORDER_PAID, ORDER_EXCEPTION, SCHEDULE_SETTLEMENT] and an
//   underpaid expiry [ORDER_CLOSED, ORDER_EXCEPTION, SCHEDULE_SETTLEMENT, WATCH_UNTIL].
// - Impossible totals (due <= 0, final < 0, final > seen) throw RangeError: they are a bug in the
//   caller, not a business outcome.
// - `next` is always a fresh object and `changed` is computed by comparing it with the input.
import { observePayments } from './lifecycle-payments.js';
import {
  WATCH_AFTER_CLOSE_SECONDS,
  copyState,
  decided,
  notify,
  refuse,
  unchanged,
} from './lifecycle-state.js';
import type { Decision, Effect, OrderFact, OrderState } from './lifecycle-types.js';

export type {
  CloseReason,
  Decision,
  Effect,
  NotifyType,
  OrderFact,
  OrderFactKind,
  OrderState,
  PayException,
  PayStatus,
  RefusalReason,
} from './lifecycle-types.js';
export { ORDER_FACT_KINDS, PAY_EXCEPTIONS, PAY_STATUSES } from './lifecycle-types.js';
export { WATCH_AFTER_CLOSE_SECONDS, isTerminal } from './lifecycle-state.js';

export function decide(order: OrderState, fact: OrderFact, now: number): Decision {
  switch (fact.kind) {
    case 'MERCHANT_CLOSE':
      return merchantClose(order, now, fact.elsewhere === true);
    case 'DEADLINE_CHECK':
      return deadlineCheck(order, now, fact.elsewhere === true);
    case 'PAYMENTS_OBSERVED':
      return observePayments(order, fact, now);
    case 'SETTLEMENT_FINAL':
      return settlementFinal(order, fact, now);
    default: {
      const _never: never = fact;
      throw new TypeError(`unknown order fact: ${JSON.stringify(_never)}`);
    }
  }
}

function merchantClose(order: OrderState, now: number, elsewhere: boolean): Decision {
  const s = order.status;
  switch (s) {
    case 'PENDING': {
      const late = elsewhere && order.exception !== 'PAID_LATE';
      const next: OrderState = {
        ...copyState(order),
        status: 'CLOSED',
        closeReason: 'MERCHANT_CLOSED',
        closedTime: now,
        exception: elsewhere ? 'PAID_LATE' : order.exception,
      };
      // No ORDER_CLOSED: a close the merchant asked for is answered synchronously (§12, §13).
      // Money at another pair's address is an exception of its own (an ended order's PAID_LATE).
      return decided(order, next, [...(late ? [notify('ORDER_EXCEPTION')] : []), watchAfterClose(now)]);
    }
    case 'CLOSED':
      return refuse('ALREADY_CLOSED', 'the order is already closed');
    case 'PAYING':
    case 'PAID':
    case 'COMPLETED':
      return refuse('NOT_CLOSABLE', `the order is ${s}; only a PENDING order can be closed`);
    default: {
      const _never: never = s;
      throw new TypeError(`unknown pay status: ${String(_never)}`);
    }
  }
}

function deadlineCheck(order: OrderState, now: number, elsewhere: boolean): Decision {
  const s = order.status;
  switch (s) {
    case 'PENDING':
      return now < order.expireTime ? unchanged(order) : expire(order, now, false, elsewhere);
    case 'PAYING': {
      const { seen, final } = order.received;
      if (now < order.expireTime) return unchanged(order);
      // Unconfirmed money is on its way: let it land; the next check closes if still short.
      if (seen > final) return unchanged(order);
      // Fully final but not PAID can only come from a state decide did not produce; leave it
      // to the next PAYMENTS_OBSERVED rather than close a paid order.
      if (order.due !== null && final >= order.due) return unchanged(order);
      return expire(order, now, final > 0n, elsewhere);
    }
    case 'PAID':
    case 'COMPLETED':
    case 'CLOSED':
      return unchanged(order);
    default: {
      const _never: never = s;
      throw new TypeError(`unknown pay status: ${String(_never)}`);
    }
  }
}

function expire(order: OrderState, now: number, underpaid: boolean, elsewhere: boolean): Decision {
  // Money at another pair's address makes the ended order PAID_LATE, over UNDERPAID: the totals
  // show the shortfall, nothing else shows money the settlement does not pay out.
  const flag = elsewhere ? 'PAID_LATE' : underpaid ? 'UNDERPAID' : null;
  const newException = flag !== null && order.exception !== flag;
  const next: OrderState = {
    ...copyState(order),
    status: 'CLOSED',
    closeReason: 'EXPIRED',
    closedTime: now,
    exception: flag ?? order.exception,
  };
  const effects: Effect[] = [notify('ORDER_CLOSED')];
  if (newException) effects.push(notify('ORDER_EXCEPTION'));
  // What did arrive is final and sits at the forwarder: it is settled pro rata (§15a).
  if (underpaid) effects.push({ kind: 'SCHEDULE_SETTLEMENT' });
  effects.push(watchAfterClose(now));
  return decided(order, next, effects);
}

function settlementFinal(order: OrderState, fact: Extract<OrderFact, { kind: 'SETTLEMENT_FINAL' }>, now: number): Decision {
  const s = order.status;
  switch (s) {
    case 'PAID': {
      // Money at another pair's address is not paid out by the settlement: late money for the
      // merchant to resolve, flagged as the order completes.
      const late = fact.elsewhere === true && order.exception !== 'PAID_LATE';
      const next: OrderState = { ...copyState(order), status: 'COMPLETED', completedTime: now, exception: late ? 'PAID_LATE' : order.exception };
      // Watched a day longer, like a closed order: a payer who pays twice is recorded (PAID_LATE).
      return decided(order, next, [notify('ORDER_COMPLETED'), ...(late ? [notify('ORDER_EXCEPTION')] : []), watchAfterClose(now)]);
    }
    // An order that expired underpaid had what arrived settled pro rata; it stays CLOSED.
    case 'COMPLETED':
    case 'CLOSED':
      return unchanged(order);
    case 'PENDING':
    case 'PAYING':
      return refuse('INVALID_TRANSITION', `a settlement cannot complete an order that is ${s}`);
    default: {
      const _never: never = s;
      throw new TypeError(`unknown pay status: ${String(_never)}`);
    }
  }
}

/** The deposit addresses of an ended order (closed or completed) are watched 24 h more. */
function watchAfterClose(closedTime: number): Effect {
  return { kind: 'WATCH_UNTIL', until: closedTime + WATCH_AFTER_CLOSE_SECONDS };
}
