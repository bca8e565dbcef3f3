// Small building blocks shared by the lifecycle rules (lifecycle.ts, lifecycle-payments.ts).
import type { Decision, Effect, NotifyType, OrderState, PayStatus, RefusalReason } from './lifecycle-types.js';

/** Deposit addresses stay watched this long after closure (PROTOCOL §10: 24 h). */
export const WATCH_AFTER_CLOSE_SECONDS = 86_400;

/**
 * COMPLETED and CLOSED admit no further status change (exception flags and received totals
 * may still be recorded on them). PAID is not terminal: settlement, or a reorg, moves it.
 */
export function isTerminal(s: PayStatus): boolean {
  switch (s) {
    case 'PENDING':
    case 'PAYING':
    case 'PAID':
      return false;
    case 'COMPLETED':
    case 'CLOSED':
      return true;
    default: {
      const _never: never = s;
      throw new TypeError(`unknown pay status: ${String(_never)}`);
    }
  }
}

/** A fresh copy, so no caller can reach the input through the decision. */
export function copyState(o: OrderState): OrderState {
  return { ...o, received: { seen: o.received.seen, final: o.received.final } };
}

export function sameState(a: OrderState, b: OrderState): boolean {
  return (
    a.status === b.status &&
    a.exception === b.exception &&
    a.closeReason === b.closeReason &&
    a.expireTime === b.expireTime &&
    a.payTime === b.payTime &&
    a.completedTime === b.completedTime &&
    a.closedTime === b.closedTime &&
    a.due === b.due &&
    a.received.seen === b.received.seen &&
    a.received.final === b.received.final
  );
}

export function unchanged(o: OrderState): Decision {
  return { ok: true, next: copyState(o), effects: [], changed: false };
}

/** `changed` is derived, never asserted by the rule, so it cannot drift from `next`. */
export function decided(before: OrderState, next: OrderState, effects: Effect[]): Decision {
  // A decision with effects is an event even when the state reads the same (a second reorg of an
  // order already flagged REVERTED, with the same totals): the order's sequence moves and its
  // notification is written.
  return { ok: true, next, effects, changed: effects.length > 0 || !sameState(before, next) };
}

export function refuse(reason: RefusalReason, message: string): Decision {
  return { ok: false, reason, message };
}

export function notify(notifyType: NotifyType): Effect {
  return { kind: 'NOTIFY', notifyType };
}
