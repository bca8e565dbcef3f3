// Vocabulary of the order lifecycle (PROTOCOL §10, §13). The decision rules live in
// lifecycle.ts (entry point, re-exports everything here) and lifecycle-payments.ts.

/** `pay_status` on the wire. COMPLETED and CLOSED are terminal (see isTerminal). */
export type PayStatus = 'PENDING' | 'PAYING' | 'PAID' | 'COMPLETED' | 'CLOSED';

/** `pay_exception` on the wire: orthogonal to the status, only the latest one is kept. */
export type PayException = 'UNDERPAID' | 'OVERPAID' | 'PAID_LATE' | 'REVERTED';

/** `close_reason` on the wire; set iff status is CLOSED. */
export type CloseReason = 'MERCHANT_CLOSED' | 'EXPIRED';

/** `notify_type` of an outbox row (§13). */
export type NotifyType = 'ORDER_PAID' | 'ORDER_COMPLETED' | 'ORDER_CLOSED' | 'ORDER_EXCEPTION';

// The lists are built from Record<Union, true> so that adding a member to a union without
// listing it here is a compile error (and the coverage test then fails for the missing rows).
const STATUS_SET: Record<PayStatus, true> = {
  PENDING: true,
  PAYING: true,
  PAID: true,
  COMPLETED: true,
  CLOSED: true,
};
const EXCEPTION_SET: Record<PayException, true> = {
  UNDERPAID: true,
  OVERPAID: true,
  PAID_LATE: true,
  REVERTED: true,
};

/** In lifecycle order; CLOSED last (it can follow PENDING or PAYING). */
export const PAY_STATUSES: readonly PayStatus[] = Object.freeze(Object.keys(STATUS_SET) as PayStatus[]);
export const PAY_EXCEPTIONS: readonly PayException[] = Object.freeze(
  Object.keys(EXCEPTION_SET) as PayException[],
);

/** The lifecycle part of an order. All times are Unix seconds; 0 means "not reached". */
export interface OrderState {
  status: PayStatus;
  /** Latest exception flag; null is "absent on the wire". Never cleared, only replaced. */
  exception: PayException | null;
  closeReason: CloseReason | null;
  /** Payment deadline. */
  expireTime: number;
  /** Non-zero iff status is PAID or COMPLETED. */
  payTime: number;
  completedTime: number;
  closedTime: number;
  /** Amount due in base units of the selected payment option; null while none is selected. */
  due: bigint | null;
  /** Totals decide last accounted for, base units of the selected option. final <= seen. */
  received: { seen: bigint; final: bigint };
}

/** Things that happened, fed by use cases. */
export type OrderFact =
  /** The merchant asks to close. `elsewhere`: money is at the address of another of the order's pairs (counted nowhere). Absent is false. */
  | { kind: 'MERCHANT_CLOSE'; elsewhere?: boolean }
  /** The expiry worker asks "is it overdue now?". `elsewhere` as for MERCHANT_CLOSE. */
  | { kind: 'DEADLINE_CHECK'; elsewhere?: boolean }
  /**
   * Totals recomputed from the order's payments rows after any change (new transfer, new
   * confirmations, reorg). `seen` counts every canonical transfer, `final` only those with enough
   * confirmations (final <= seen); allFinal = no unconfirmed transfer remains. `due` wins over
   * state.due because the payment option may have been selected after creation.
   * They are the totals of the order's transfers in its pair. `lost`: a transfer counted before left the
   * canonical chain in this observation (a reorg the totals may not show: new money can make up
   * for it); `elsewhere`: money is in another of the order's pairs, which the totals do not count
   * (the payer paid an address of a pair the order did not end with). Absent is false.
   * `distributed`: on a COMPLETED order, what its settlement distributed from the pair's address
   * (money final beyond it sits there; absent: unknown, taken as nothing beyond the amount due).
   * `switched`: the totals are of another pair than the order's last decision (the money selected
   * it): decided afresh even when they equal the stored ones.
   * `slack`: base units below the currency's precision (absent: 0): money within it of the amount
   * due is the amount due, neither short (a payer's wallet rounding 10.5 USDT of 18 decimals to
   * 10.499999999999 would otherwise be asked for 0.000000000001 USDT it cannot send) nor over.
   */
  | { kind: 'PAYMENTS_OBSERVED'; due: bigint; seen: bigint; final: bigint; allFinal: boolean; lost?: boolean; elsewhere?: boolean; distributed?: bigint; switched?: boolean; slack?: bigint }
  /**
   * The settlement transaction became final on chain. `elsewhere`: money is at the address of
   * another of the order's pairs, which this settlement does not pay out. Absent is false.
   */
  | { kind: 'SETTLEMENT_FINAL'; elsewhere?: boolean };

export type OrderFactKind = OrderFact['kind'];

const FACT_KIND_SET: Record<OrderFactKind, true> = {
  MERCHANT_CLOSE: true,
  DEADLINE_CHECK: true,
  PAYMENTS_OBSERVED: true,
  SETTLEMENT_FINAL: true,
};

export const ORDER_FACT_KINDS: readonly OrderFactKind[] = Object.freeze(
  Object.keys(FACT_KIND_SET) as OrderFactKind[],
);

export type Effect =
  /** The use case writes an outbox row in the same transaction as the new state. */
  | { kind: 'NOTIFY'; notifyType: NotifyType }
  /** The order became PAID: the settlement job picks it up. */
  | { kind: 'SCHEDULE_SETTLEMENT' }
  /** Keep watching the deposit addresses until this Unix second (24 h after closure). */
  | { kind: 'WATCH_UNTIL'; until: number };

export type RefusalReason = 'ALREADY_CLOSED' | 'NOT_CLOSABLE' | 'INVALID_TRANSITION';

export type Decision =
  | { ok: true; next: OrderState; effects: Effect[]; changed: boolean }
  | { ok: false; reason: RefusalReason; message: string };
