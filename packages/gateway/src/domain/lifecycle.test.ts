import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ORDER_FACT_KINDS,
  PAY_EXCEPTIONS,
  PAY_STATUSES,
  WATCH_AFTER_CLOSE_SECONDS,
  decide,
  isTerminal,
  type CloseReason,
  type Decision,
  type Effect,
  type NotifyType,
  type OrderFact,
  type OrderState,
  type PayException,
  type PayStatus,
  type RefusalReason,
} from './lifecycle.js';

// ---- fixtures -------------------------------------------------------------------------------

const EXPIRE = 10_000;
const BEFORE = 9_000;
const AT = EXPIRE;
const AFTER = 12_000;

const r = (seen: bigint, final: bigint) => ({ seen, final });

function state(over: Partial<OrderState>): OrderState {
  return {
    status: 'PENDING',
    exception: null,
    closeReason: null,
    expireTime: EXPIRE,
    payTime: 0,
    completedTime: 0,
    closedTime: 0,
    due: 100n,
    received: r(0n, 0n),
    ...over,
  };
}

const pendingUnselected = state({ due: null });
const pending = state({});
const paying = state({ status: 'PAYING', received: r(60n, 0n) });
const payingFinalShort = state({ status: 'PAYING', received: r(60n, 60n) });
const paid = state({ status: 'PAID', payTime: 8_000, received: r(100n, 100n) });
const completed = state({ ...paid, status: 'COMPLETED', completedTime: 8_500 });
const closedExpired = state({ status: 'CLOSED', closeReason: 'EXPIRED', closedTime: EXPIRE });
const closedByMerchant = state({
  status: 'CLOSED',
  closeReason: 'MERCHANT_CLOSED',
  closedTime: 5_000,
  due: null,
});

const CLOSE: OrderFact = { kind: 'MERCHANT_CLOSE' };
const DEADLINE: OrderFact = { kind: 'DEADLINE_CHECK' };
/** The same, with money at the address of another of the order's pairs. */
const CLOSE_ELSEWHERE: OrderFact = { kind: 'MERCHANT_CLOSE', elsewhere: true };
const DEADLINE_ELSEWHERE: OrderFact = { kind: 'DEADLINE_CHECK', elsewhere: true };
const SETTLED: OrderFact = { kind: 'SETTLEMENT_FINAL' };
/**
 * Payment totals observed; `lost`: a counted transfer left the chain in this observation;
 * `elsewhere`: new money arrived in another of the order's pairs.
 */
const obs = (due: bigint, seen: bigint, final: bigint, allFinal = seen === final, lost = false, elsewhere = false): OrderFact => ({
  kind: 'PAYMENTS_OBSERVED',
  due,
  seen,
  final,
  allFinal,
  ...(lost ? { lost } : {}),
  ...(elsewhere ? { elsewhere } : {}),
});

const N = (t: NotifyType): Effect => ({ kind: 'NOTIFY', notifyType: t });
const PAID_N = N('ORDER_PAID');
const EXC_N = N('ORDER_EXCEPTION');
const CLOSED_N = N('ORDER_CLOSED');
const COMPLETED_N = N('ORDER_COMPLETED');
const SETTLE: Effect = { kind: 'SCHEDULE_SETTLEMENT' };
const WATCH = (closedAt: number): Effect => ({ kind: 'WATCH_UNTIL', until: closedAt + 86_400 });

// ---- the table ------------------------------------------------------------------------------

type Expected =
  | { refused: RefusalReason }
  | { same: true }
  | {
      status: PayStatus;
      exception: PayException | null;
      closeReason: CloseReason | null;
      /** [payTime, completedTime, closedTime] */
      times: [number, number, number];
      effects: Effect[];
    };

interface Row {
  name: string;
  from: OrderState;
  fact: OrderFact;
  now: number;
  expect: Expected;
}

const SAME: Expected = { same: true };
const refused = (reason: RefusalReason): Expected => ({ refused: reason });
const to = (
  status: PayStatus,
  exception: PayException | null,
  closeReason: CloseReason | null,
  times: [number, number, number],
  effects: Effect[],
): Expected => ({ status, exception, closeReason, times, effects });

const rows: Row[] = [
  // MERCHANT_CLOSE (§12): PENDING only, never notifies.
  { name: 'closes a pending order without notifying', from: pending, fact: CLOSE, now: BEFORE,
    expect: to('CLOSED', null, 'MERCHANT_CLOSED', [0, 0, BEFORE], [WATCH(BEFORE)]) },
  { name: 'closes a pending order with no option selected', from: pendingUnselected, fact: CLOSE, now: BEFORE,
    expect: to('CLOSED', null, 'MERCHANT_CLOSED', [0, 0, BEFORE], [WATCH(BEFORE)]) },
  { name: 'closes an overdue pending order the expiry worker has not reached, as the merchant asked',
    from: pending, fact: CLOSE, now: AFTER,
    expect: to('CLOSED', null, 'MERCHANT_CLOSED', [0, 0, AFTER], [WATCH(AFTER)]) },
  { name: 'keeps a REVERTED flag when the merchant closes a pending order',
    from: state({ exception: 'REVERTED' }), fact: CLOSE, now: BEFORE,
    expect: to('CLOSED', 'REVERTED', 'MERCHANT_CLOSED', [0, 0, BEFORE], [WATCH(BEFORE)]) },
  { name: 'closes a pending order with money at another pair\'s address as PAID_LATE, notifying that exception only',
    from: pending, fact: CLOSE_ELSEWHERE, now: BEFORE,
    expect: to('CLOSED', 'PAID_LATE', 'MERCHANT_CLOSED', [0, 0, BEFORE], [EXC_N, WATCH(BEFORE)]) },
  { name: 'replaces REVERTED by PAID_LATE when the merchant closes with money elsewhere',
    from: state({ exception: 'REVERTED' }), fact: CLOSE_ELSEWHERE, now: BEFORE,
    expect: to('CLOSED', 'PAID_LATE', 'MERCHANT_CLOSED', [0, 0, BEFORE], [EXC_N, WATCH(BEFORE)]) },
  { name: 'refuses to close a paying order (43006)', from: paying, fact: CLOSE, now: BEFORE, expect: refused('NOT_CLOSABLE') },
  { name: 'refuses to close a paying order with money elsewhere too (43006)', from: paying, fact: CLOSE_ELSEWHERE, now: BEFORE, expect: refused('NOT_CLOSABLE') },
  { name: 'refuses to close a paid order (43006)', from: paid, fact: CLOSE, now: BEFORE, expect: refused('NOT_CLOSABLE') },
  { name: 'refuses to close a completed order (43006)', from: completed, fact: CLOSE, now: BEFORE, expect: refused('NOT_CLOSABLE') },
  { name: 'refuses to close an expired order again (43007)', from: closedExpired, fact: CLOSE, now: AFTER, expect: refused('ALREADY_CLOSED') },
  { name: 'refuses a second merchant close (43007)', from: closedByMerchant, fact: CLOSE, now: BEFORE, expect: refused('ALREADY_CLOSED') },

  // DEADLINE_CHECK
  { name: 'leaves a pending order alone before the deadline', from: pending, fact: DEADLINE, now: EXPIRE - 1, expect: SAME },
  { name: 'expires a pending order exactly at the deadline and notifies', from: pending, fact: DEADLINE, now: AT,
    expect: to('CLOSED', null, 'EXPIRED', [0, 0, AT], [CLOSED_N, WATCH(AT)]) },
  { name: 'expires an unselected pending order after the deadline', from: pendingUnselected, fact: DEADLINE, now: AFTER,
    expect: to('CLOSED', null, 'EXPIRED', [0, 0, AFTER], [CLOSED_N, WATCH(AFTER)]) },
  { name: 'expires a pending order emptied by a reorg without adding UNDERPAID',
    from: state({ exception: 'REVERTED' }), fact: DEADLINE, now: AFTER,
    expect: to('CLOSED', 'REVERTED', 'EXPIRED', [0, 0, AFTER], [CLOSED_N, WATCH(AFTER)]) },
  { name: 'leaves a paying order alone before the deadline', from: payingFinalShort, fact: DEADLINE, now: BEFORE, expect: SAME },
  { name: 'waits past the deadline while paid money is still confirming', from: paying, fact: DEADLINE, now: AFTER, expect: SAME },
  { name: 'expires a short paying order once nothing is pending, flagging UNDERPAID',
    from: payingFinalShort, fact: DEADLINE, now: AFTER,
    expect: to('CLOSED', 'UNDERPAID', 'EXPIRED', [0, 0, AFTER], [CLOSED_N, EXC_N, SETTLE, WATCH(AFTER)]) },
  { name: 'expires an already UNDERPAID order with only the close notification, settling what arrived',
    from: { ...payingFinalShort, exception: 'UNDERPAID' }, fact: DEADLINE, now: AT,
    expect: to('CLOSED', 'UNDERPAID', 'EXPIRED', [0, 0, AT], [CLOSED_N, SETTLE, WATCH(AT)]) },
  { name: 'replaces REVERTED by UNDERPAID when a short paying order expires',
    from: { ...payingFinalShort, exception: 'REVERTED' }, fact: DEADLINE, now: AFTER,
    expect: to('CLOSED', 'UNDERPAID', 'EXPIRED', [0, 0, AFTER], [CLOSED_N, EXC_N, SETTLE, WATCH(AFTER)]) },
  { name: 'expires a pending order with money at another pair\'s address as PAID_LATE',
    from: pending, fact: DEADLINE_ELSEWHERE, now: AFTER,
    expect: to('CLOSED', 'PAID_LATE', 'EXPIRED', [0, 0, AFTER], [CLOSED_N, EXC_N, WATCH(AFTER)]) },
  { name: 'leaves a pending order with money elsewhere alone before the deadline', from: pending, fact: DEADLINE_ELSEWHERE, now: EXPIRE - 1, expect: SAME },
  { name: 'expires a short paying order with money elsewhere as PAID_LATE over UNDERPAID, still settling what arrived',
    from: payingFinalShort, fact: DEADLINE_ELSEWHERE, now: AFTER,
    expect: to('CLOSED', 'PAID_LATE', 'EXPIRED', [0, 0, AFTER], [CLOSED_N, EXC_N, SETTLE, WATCH(AFTER)]) },
  { name: 'replaces UNDERPAID by PAID_LATE when a short order with money elsewhere expires',
    from: { ...payingFinalShort, exception: 'UNDERPAID' }, fact: DEADLINE_ELSEWHERE, now: AT,
    expect: to('CLOSED', 'PAID_LATE', 'EXPIRED', [0, 0, AT], [CLOSED_N, EXC_N, SETTLE, WATCH(AT)]) },
  { name: 'waits past the deadline while money is still confirming, money elsewhere or not', from: paying, fact: DEADLINE_ELSEWHERE, now: AFTER, expect: SAME },
  { name: 'never expires a paid order, money elsewhere or not', from: paid, fact: DEADLINE_ELSEWHERE, now: AFTER, expect: SAME },
  { name: 'never expires a paid order', from: paid, fact: DEADLINE, now: AFTER, expect: SAME },
  { name: 'never expires a completed order', from: completed, fact: DEADLINE, now: AFTER, expect: SAME },
  { name: 'does nothing to an expired order', from: closedExpired, fact: DEADLINE, now: AFTER, expect: SAME },
  { name: 'does nothing to a merchant-closed order', from: closedByMerchant, fact: DEADLINE, now: AFTER, expect: SAME },

  // PAYMENTS_OBSERVED on PENDING
  { name: 'ignores identical totals on a pending order', from: pending, fact: obs(100n, 0n, 0n), now: BEFORE, expect: SAME },
  { name: 'records a selection (due) without payments, staying pending', from: pendingUnselected, fact: obs(100n, 0n, 0n), now: BEFORE,
    expect: to('PENDING', null, null, [0, 0, 0], []) },
  { name: 'moves to PAYING silently when a transfer is seen but not final', from: pending, fact: obs(100n, 60n, 0n), now: BEFORE,
    expect: to('PAYING', null, null, [0, 0, 0], []) },
  { name: 'moves to PAYING silently when the full amount is seen but not final', from: pending, fact: obs(100n, 100n, 0n), now: BEFORE,
    expect: to('PAYING', null, null, [0, 0, 0], []) },
  { name: 'becomes PAID on an exact final payment, notifies and schedules settlement', from: pending, fact: obs(100n, 100n, 100n), now: BEFORE,
    expect: to('PAID', null, null, [BEFORE, 0, 0], [PAID_N, SETTLE]) },
  { name: 'becomes PAID with OVERPAID: paid, then exception, then settlement', from: pending, fact: obs(100n, 150n, 150n), now: BEFORE,
    expect: to('PAID', 'OVERPAID', null, [BEFORE, 0, 0], [PAID_N, EXC_N, SETTLE]) },
  { name: 'becomes PAID without OVERPAID while the excess is unconfirmed', from: pending, fact: obs(100n, 150n, 100n, false), now: BEFORE,
    expect: to('PAID', null, null, [BEFORE, 0, 0], [PAID_N, SETTLE]) },
  { name: 'flags UNDERPAID on a short payment once all of it is final', from: pending, fact: obs(100n, 60n, 60n), now: BEFORE,
    expect: to('PAYING', 'UNDERPAID', null, [0, 0, 0], [EXC_N]) },
  { name: 'does not flag UNDERPAID while part of a short payment is confirming', from: pending, fact: obs(100n, 90n, 60n, false), now: BEFORE,
    expect: to('PAYING', null, null, [0, 0, 0], []) },
  { name: 'accepts a payment on an overdue order the expiry worker has not closed yet', from: pending, fact: obs(100n, 100n, 100n), now: AFTER,
    expect: to('PAID', null, null, [AFTER, 0, 0], [PAID_N, SETTLE]) },
  { name: 'takes due from the fact over the state', from: state({ due: 200n }), fact: obs(100n, 100n, 100n), now: BEFORE,
    expect: to('PAID', null, null, [BEFORE, 0, 0], [PAID_N, SETTLE]) },
  { name: 'becomes PAID on an unselected order when the fact brings due', from: pendingUnselected, fact: obs(100n, 100n, 100n), now: BEFORE,
    expect: to('PAID', null, null, [BEFORE, 0, 0], [PAID_N, SETTLE]) },

  // PAYMENTS_OBSERVED on PAYING
  { name: 'ignores identical totals on a paying order', from: paying, fact: obs(100n, 60n, 0n, false), now: BEFORE, expect: SAME },
  { name: 'ignores identical totals even when allFinal flips', from: payingFinalShort, fact: obs(100n, 60n, 60n, false), now: BEFORE, expect: SAME },
  { name: 'ignores money in another pair on an open order (the pair chosen counts)', from: paying, fact: obs(100n, 60n, 0n, false, false, true), now: BEFORE, expect: SAME },
  { name: 'records more unconfirmed money silently', from: paying, fact: obs(100n, 90n, 0n), now: BEFORE,
    expect: to('PAYING', null, null, [0, 0, 0], []) },
  { name: 'flags UNDERPAID when the short payment becomes final', from: paying, fact: obs(100n, 60n, 60n), now: BEFORE,
    expect: to('PAYING', 'UNDERPAID', null, [0, 0, 0], [EXC_N]) },
  { name: 'does not notify UNDERPAID twice', from: { ...payingFinalShort, exception: 'UNDERPAID' }, fact: obs(100n, 80n, 80n), now: BEFORE,
    expect: to('PAYING', 'UNDERPAID', null, [0, 0, 0], []) },
  { name: 'becomes PAID when the payment confirms in full', from: paying, fact: obs(100n, 100n, 100n), now: BEFORE,
    expect: to('PAID', null, null, [BEFORE, 0, 0], [PAID_N, SETTLE]) },
  { name: 'becomes PAID after UNDERPAID, keeping the flag (flags are never cleared)',
    from: { ...payingFinalShort, exception: 'UNDERPAID' }, fact: obs(100n, 100n, 100n), now: BEFORE,
    expect: to('PAID', 'UNDERPAID', null, [BEFORE, 0, 0], [PAID_N, SETTLE]) },
  { name: 'becomes PAID with OVERPAID from PAYING', from: paying, fact: obs(100n, 130n, 130n), now: BEFORE,
    expect: to('PAID', 'OVERPAID', null, [BEFORE, 0, 0], [PAID_N, EXC_N, SETTLE]) },
  { name: 'becomes PAID after the deadline when the confirming money lands', from: paying, fact: obs(100n, 100n, 100n), now: AFTER,
    expect: to('PAID', null, null, [AFTER, 0, 0], [PAID_N, SETTLE]) },
  { name: 'flags UNDERPAID after the deadline but leaves closing to DEADLINE_CHECK', from: paying, fact: obs(100n, 60n, 60n), now: AFTER,
    expect: to('PAYING', 'UNDERPAID', null, [0, 0, 0], [EXC_N]) },
  { name: 'goes back to PENDING with REVERTED when a reorg removes every transfer', from: paying, fact: obs(100n, 0n, 0n), now: BEFORE,
    expect: to('PENDING', 'REVERTED', null, [0, 0, 0], [EXC_N]) },
  { name: 'stays PAYING with REVERTED when a reorg removes some transfers', from: payingFinalShort, fact: obs(100n, 30n, 30n), now: BEFORE,
    expect: to('PAYING', 'REVERTED', null, [0, 0, 0], [EXC_N]) },
  { name: 'prefers REVERTED over UNDERPAID in the same observation', from: state({ status: 'PAYING', received: r(90n, 0n) }),
    fact: obs(100n, 60n, 60n), now: BEFORE,
    expect: to('PAYING', 'REVERTED', null, [0, 0, 0], [EXC_N]) },
  { name: 'raises REVERTED when a counted payment left the chain though new money keeps the totals up', from: paying,
    fact: obs(100n, 80n, 0n, false, true), now: BEFORE,
    expect: to('PAYING', 'REVERTED', null, [0, 0, 0], [EXC_N]) },
  { name: 'raises REVERTED when a counted payment left the chain and the same amount came again', from: paying,
    fact: obs(100n, 60n, 0n, false, true), now: BEFORE,
    expect: to('PAYING', 'REVERTED', null, [0, 0, 0], [EXC_N]) },
  { name: 'notifies a second such reorg, though the totals and the flag read the same as before', from: { ...paying, exception: 'REVERTED' },
    fact: obs(100n, 60n, 0n, false, true), now: BEFORE,
    expect: to('PAYING', 'REVERTED', null, [0, 0, 0], [EXC_N]) },
  { name: 'records late money on a closed order whose counted payment left the chain as REVERTED', from: { ...closedExpired, received: r(60n, 60n) },
    fact: obs(100n, 70n, 70n, true, true), now: AFTER,
    expect: to('CLOSED', 'REVERTED', 'EXPIRED', [0, 0, EXPIRE], [EXC_N]) },
  { name: 'becomes PAID with REVERTED when a reorg and a full payment meet', from: state({ status: 'PAYING', received: r(120n, 0n) }),
    fact: obs(100n, 100n, 100n), now: BEFORE,
    expect: to('PAID', 'REVERTED', null, [BEFORE, 0, 0], [PAID_N, EXC_N, SETTLE]) },

  // PAYMENTS_OBSERVED on PAID
  { name: 'ignores identical totals on a paid order', from: paid, fact: obs(100n, 100n, 100n), now: BEFORE, expect: SAME },
  { name: 'records extra unconfirmed money on a paid order silently', from: paid, fact: obs(100n, 150n, 100n), now: BEFORE,
    expect: to('PAID', null, null, [8_000, 0, 0], []) },
  { name: 'flags OVERPAID once extra money is final, without a second ORDER_PAID', from: paid, fact: obs(100n, 150n, 150n), now: BEFORE,
    expect: to('PAID', 'OVERPAID', null, [8_000, 0, 0], [EXC_N]) },
  { name: 'does not notify OVERPAID twice', from: { ...paid, exception: 'OVERPAID', received: r(150n, 150n) }, fact: obs(100n, 170n, 170n), now: BEFORE,
    expect: to('PAID', 'OVERPAID', null, [8_000, 0, 0], []) },
  { name: 'goes back to PAYING with REVERTED and resets payTime when a reorg leaves it short', from: paid, fact: obs(100n, 60n, 60n), now: BEFORE,
    expect: to('PAYING', 'REVERTED', null, [0, 0, 0], [EXC_N]) },
  { name: 'goes back to PAYING with REVERTED when the payment loses its confirmations', from: paid, fact: obs(100n, 100n, 0n), now: BEFORE,
    expect: to('PAYING', 'REVERTED', null, [0, 0, 0], [EXC_N]) },
  { name: 'goes back to PENDING with REVERTED when a reorg removes everything', from: paid, fact: obs(100n, 0n, 0n), now: BEFORE,
    expect: to('PENDING', 'REVERTED', null, [0, 0, 0], [EXC_N]) },
  { name: 'stays PAID with REVERTED when a reorg removes only the excess', from: { ...paid, exception: 'OVERPAID', received: r(150n, 150n) },
    fact: obs(100n, 100n, 100n), now: BEFORE,
    expect: to('PAID', 'REVERTED', null, [8_000, 0, 0], [EXC_N]) },
  { name: 'notifies every reorg even when the flag already is REVERTED', from: { ...paid, exception: 'REVERTED' }, fact: obs(100n, 40n, 40n), now: BEFORE,
    expect: to('PAYING', 'REVERTED', null, [0, 0, 0], [EXC_N]) },
  { name: 'never un-pays an order because a fact brings a larger due', from: paid, fact: obs(200n, 100n, 100n), now: BEFORE,
    expect: to('PAID', null, null, [8_000, 0, 0], []) },

  // PAYMENTS_OBSERVED on COMPLETED
  { name: 'ignores identical totals on a completed order', from: completed, fact: obs(100n, 100n, 100n), now: AFTER, expect: SAME },
  { name: 'records a reorg after completion as REVERTED, status stays', from: completed, fact: obs(100n, 50n, 50n), now: AFTER,
    expect: to('COMPLETED', 'REVERTED', null, [8_000, 8_500, 0], [EXC_N]) },
  { name: 'records money after completion as PAID_LATE', from: completed, fact: obs(100n, 130n, 100n), now: AFTER,
    expect: to('COMPLETED', 'PAID_LATE', null, [8_000, 8_500, 0], [EXC_N]) },
  { name: 'does not notify PAID_LATE twice after completion', from: { ...completed, exception: 'PAID_LATE', received: r(130n, 100n) },
    fact: obs(100n, 160n, 130n), now: AFTER,
    expect: to('COMPLETED', 'PAID_LATE', null, [8_000, 8_500, 0], []) },
  { name: 'records money in another of its pairs after completion as PAID_LATE, though the totals do not move', from: completed,
    fact: obs(100n, 100n, 100n, true, false, true), now: AFTER,
    expect: to('COMPLETED', 'PAID_LATE', null, [8_000, 8_500, 0], [EXC_N]) },
  { name: 'does not notify PAID_LATE twice for money in another pair', from: { ...completed, exception: 'PAID_LATE' },
    fact: obs(100n, 100n, 100n, true, false, true), now: AFTER, expect: SAME },
  { name: 'flags money seen before completion, distributed with it and final after it as OVERPAID', from: { ...completed, received: r(150n, 100n) },
    fact: { ...obs(100n, 150n, 150n), distributed: 150n } as OrderFact, now: AFTER,
    expect: to('COMPLETED', 'OVERPAID', null, [8_000, 8_500, 0], [EXC_N]) },
  { name: 'flags money seen before completion but not distributed, final after it, as PAID_LATE', from: { ...completed, received: r(150n, 100n) },
    fact: { ...obs(100n, 150n, 150n), distributed: 100n } as OrderFact, now: AFTER,
    expect: to('COMPLETED', 'PAID_LATE', null, [8_000, 8_500, 0], [EXC_N]) },
  { name: 'takes money confirming after completion for PAID_LATE when what was distributed is unknown', from: { ...completed, received: r(150n, 100n) },
    fact: obs(100n, 150n, 150n), now: AFTER,
    expect: to('COMPLETED', 'PAID_LATE', null, [8_000, 8_500, 0], [EXC_N]) },
  { name: 'does not notify OVERPAID twice after completion', from: { ...completed, exception: 'OVERPAID', received: r(150n, 120n) },
    fact: { ...obs(100n, 150n, 150n), distributed: 150n } as OrderFact, now: AFTER,
    expect: to('COMPLETED', 'OVERPAID', null, [8_000, 8_500, 0], []) },
  { name: 'decides a switch to another pair whose totals equal what the order held: PAID on its final money', from: state({ status: 'PAYING', received: r(100n, 100n) }),
    fact: { ...obs(100n, 100n, 100n), switched: true } as OrderFact, now: AFTER,
    expect: to('PAID', null, null, [AFTER, 0, 0], [PAID_N, SETTLE]) },
  { name: 'keeps PAID_LATE, silently, when money confirms after completion within what was distributed (late money came too)', from: { ...completed, exception: 'PAID_LATE', received: r(180n, 100n) },
    fact: { ...obs(100n, 180n, 150n), distributed: 150n } as OrderFact, now: AFTER,
    expect: to('COMPLETED', 'PAID_LATE', null, [8_000, 8_500, 0], []) },
  { name: 'does not flag money that confirms again after completion within the amount due', from: { ...completed, received: r(100n, 80n) },
    fact: obs(100n, 100n, 100n), now: AFTER,
    expect: to('COMPLETED', null, null, [8_000, 8_500, 0], []) },
  { name: 'records late money confirming after completion silently (PAID_LATE when it arrived)', from: { ...completed, exception: 'PAID_LATE', received: r(150n, 100n) },
    fact: obs(100n, 150n, 150n), now: AFTER,
    expect: to('COMPLETED', 'PAID_LATE', null, [8_000, 8_500, 0], []) },

  // PAYMENTS_OBSERVED on CLOSED
  { name: 'ignores identical totals on a closed order', from: closedExpired, fact: obs(100n, 0n, 0n), now: AFTER, expect: SAME },
  { name: 'records money after expiry as PAID_LATE, staying closed', from: closedExpired, fact: obs(100n, 100n, 0n), now: AFTER,
    expect: to('CLOSED', 'PAID_LATE', 'EXPIRED', [0, 0, EXPIRE], [EXC_N]) },
  { name: 'never pays a closed order, even when late money covers the due amount',
    from: { ...closedExpired, exception: 'UNDERPAID', received: r(60n, 60n) }, fact: obs(100n, 100n, 100n), now: AFTER,
    expect: to('CLOSED', 'PAID_LATE', 'EXPIRED', [0, 0, EXPIRE], [EXC_N]) },
  { name: 'records late money confirming silently', from: { ...closedExpired, exception: 'PAID_LATE', received: r(100n, 0n) },
    fact: obs(100n, 100n, 100n), now: AFTER,
    expect: to('CLOSED', 'PAID_LATE', 'EXPIRED', [0, 0, EXPIRE], []) },
  { name: 'does not notify PAID_LATE twice', from: { ...closedExpired, exception: 'PAID_LATE', received: r(100n, 100n) },
    fact: obs(100n, 150n, 100n), now: AFTER,
    expect: to('CLOSED', 'PAID_LATE', 'EXPIRED', [0, 0, EXPIRE], []) },
  { name: 'records a reorg of late money as REVERTED, staying closed', from: { ...closedExpired, exception: 'PAID_LATE', received: r(100n, 100n) },
    fact: obs(100n, 0n, 0n), now: AFTER,
    expect: to('CLOSED', 'REVERTED', 'EXPIRED', [0, 0, EXPIRE], [EXC_N]) },
  { name: 'records money in another of its pairs after an underpaid expiry as PAID_LATE', from: { ...closedExpired, exception: 'UNDERPAID', received: r(60n, 60n) },
    fact: obs(100n, 60n, 60n, true, false, true), now: AFTER,
    expect: to('CLOSED', 'PAID_LATE', 'EXPIRED', [0, 0, EXPIRE], [EXC_N]) },
  { name: 'prefers REVERTED over money in another pair on a closed order', from: { ...closedExpired, received: r(60n, 60n) },
    fact: obs(100n, 0n, 0n, true, false, true), now: AFTER,
    expect: to('CLOSED', 'REVERTED', 'EXPIRED', [0, 0, EXPIRE], [EXC_N]) },
  { name: 'records money after a merchant close as PAID_LATE', from: closedByMerchant, fact: obs(100n, 100n, 100n), now: BEFORE,
    expect: to('CLOSED', 'PAID_LATE', 'MERCHANT_CLOSED', [0, 0, 5_000], [EXC_N]) },

  // SETTLEMENT_FINAL (§15a)
  { name: 'refuses to complete a pending order', from: pending, fact: SETTLED, now: BEFORE, expect: refused('INVALID_TRANSITION') },
  { name: 'refuses to complete a paying order (e.g. reorged after the settlement was sent)', from: paying, fact: SETTLED, now: BEFORE,
    expect: refused('INVALID_TRANSITION') },
  { name: 'completes a paid order, notifies, and watches its address 24 h more', from: paid, fact: SETTLED, now: BEFORE,
    expect: to('COMPLETED', null, null, [8_000, BEFORE, 0], [COMPLETED_N, WATCH(BEFORE)]) },
  { name: 'completes an overpaid order keeping its flag', from: { ...paid, exception: 'OVERPAID', received: r(150n, 150n) }, fact: SETTLED, now: AFTER,
    expect: to('COMPLETED', 'OVERPAID', null, [8_000, AFTER, 0], [COMPLETED_N, WATCH(AFTER)]) },
  { name: 'completes a paid order with money at another pair\'s address as PAID_LATE, notified after the completion',
    from: { ...paid, exception: 'OVERPAID', received: r(150n, 150n) }, fact: { kind: 'SETTLEMENT_FINAL', elsewhere: true }, now: AFTER,
    expect: to('COMPLETED', 'PAID_LATE', null, [8_000, AFTER, 0], [COMPLETED_N, EXC_N, WATCH(AFTER)]) },
  { name: 'does not notify PAID_LATE again when the paid order already had it', from: { ...paid, exception: 'PAID_LATE' },
    fact: { kind: 'SETTLEMENT_FINAL', elsewhere: true }, now: AFTER,
    expect: to('COMPLETED', 'PAID_LATE', null, [8_000, AFTER, 0], [COMPLETED_N, WATCH(AFTER)]) },
  { name: 'treats a repeated settlement as a no-op', from: completed, fact: SETTLED, now: AFTER, expect: SAME },
  { name: 'leaves a closed order closed when what arrived short of the due amount was settled',
    from: { ...closedExpired, exception: 'UNDERPAID', received: r(60n, 60n) }, fact: SETTLED, now: AFTER, expect: SAME },
];

function snapshot(s: OrderState): OrderState {
  return { ...s, received: { ...s.received } };
}

describe('decide: the lifecycle table', () => {
  it.each(rows.map((row) => [`${row.from.status} × ${row.fact.kind}: ${row.name}`, row] as const))('%s', (_title, row) => {
    const before = snapshot(row.from);
    const d = decide(row.from, row.fact, row.now);
    expect(row.from).toEqual(before);
    const exp = row.expect;
    if ('refused' in exp) {
      expect(d.ok).toBe(false);
      if (!d.ok) {
        expect(d.reason).toBe(exp.refused);
        expect(d.message).not.toBe('');
      }
      return;
    }
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    if ('same' in exp) {
      expect(d).toEqual({ ok: true, next: before, effects: [], changed: false });
      return;
    }
    const f = row.fact;
    const money =
      f.kind === 'PAYMENTS_OBSERVED'
        ? { due: f.due, received: { seen: f.seen, final: f.final } }
        : { due: row.from.due, received: row.from.received };
    expect(d.next).toEqual({
      status: exp.status,
      exception: exp.exception,
      closeReason: exp.closeReason,
      expireTime: row.from.expireTime,
      payTime: exp.times[0],
      completedTime: exp.times[1],
      closedTime: exp.times[2],
      ...money,
    });
    expect(d.effects).toEqual(exp.effects);
    expect(d.changed).toBe(true);
  });

  it('has rows for every pay status × fact kind', () => {
    const missing = PAY_STATUSES.flatMap((s) =>
      ORDER_FACT_KINDS.filter((k) => !rows.some((row) => row.from.status === s && row.fact.kind === k)).map(
        (k) => `${s} × ${k}`,
      ),
    );
    expect(missing).toEqual([]);
  });

  it('lists every status and exception once, in lifecycle order', () => {
    expect(PAY_STATUSES).toEqual(['PENDING', 'PAYING', 'PAID', 'COMPLETED', 'CLOSED']);
    expect(PAY_EXCEPTIONS).toEqual(['UNDERPAID', 'OVERPAID', 'PAID_LATE', 'REVERTED']);
    expect(ORDER_FACT_KINDS).toEqual(['MERCHANT_CLOSE', 'DEADLINE_CHECK', 'PAYMENTS_OBSERVED', 'SETTLEMENT_FINAL']);
  });

  it('treats only COMPLETED and CLOSED as terminal', () => {
    expect(PAY_STATUSES.filter(isTerminal)).toEqual(['COMPLETED', 'CLOSED']);
  });

  it('watches deposit addresses for 24 hours after closure', () => {
    expect(WATCH_AFTER_CLOSE_SECONDS).toBe(86_400);
  });

  it.each([
    ['a non-positive due', obs(0n, 0n, 0n)],
    ['a negative total', obs(100n, -1n, -1n)],
    ['final above seen', obs(100n, 10n, 20n)],
  ])('throws on %s (a caller bug, not a business outcome)', (_what, fact) => {
    expect(() => decide(pending, fact, BEFORE)).toThrow(RangeError);
  });

  it('returns a fresh next state, never the input object', () => {
    const d = decide(paid, DEADLINE, BEFORE);
    expect(d.ok && d.next !== paid && d.next.received !== paid.received).toBe(true);
  });
});

// ---- properties -----------------------------------------------------------------------------

const amount = fc.integer({ min: 0, max: 20 }).map((n) => BigInt(n * 10));
/** [seen, final] with final <= seen. */
const totals = fc
  .tuple(amount, amount)
  .map(([a, b]): [bigint, bigint] => (a < b ? [b, a] : [a, b]));
const factArb: fc.Arbitrary<OrderFact> = fc.oneof(
  fc.constantFrom(CLOSE, CLOSE_ELSEWHERE),
  fc.constantFrom(DEADLINE, DEADLINE_ELSEWHERE),
  fc.constantFrom(SETTLED, { kind: 'SETTLEMENT_FINAL', elsewhere: true } as OrderFact),
  // Observations dominate, as in production; a rare different due exercises the clamp.
  ...Array.from({ length: 4 }, () =>
    fc
      .tuple(fc.constantFrom(100n, 100n, 100n, 150n), totals, fc.boolean(), fc.integer({ min: 0, max: 9 }))
      // Now and then a counted transfer left the chain (`lost`), whatever the totals show, or
      // money arrived in another pair (`elsewhere`).
      .map(([due, [seen, final], allFinal, dice]) => obs(due, seen, final, allFinal, dice === 0, dice === 1)),
  ),
);
const stepArb = fc.tuple(factArb, fc.integer({ min: 0, max: 2_500 }));
const startArb = fc.constantFrom(pendingUnselected, pending);

const FORWARD = new Set([
  'PENDING>PAYING',
  'PENDING>PAID',
  'PAYING>PAID',
  'PAID>COMPLETED',
  'PENDING>CLOSED',
  'PAYING>CLOSED',
]);
const REORG = new Set(['PAYING>PENDING', 'PAID>PAYING', 'PAID>PENDING']);

const has = (d: Decision, t: NotifyType) =>
  d.ok && d.effects.some((e) => e.kind === 'NOTIFY' && e.notifyType === t);

/** Checks one step of a run; returns the state the run continues from. */
function checkStep(prev: OrderState, fact: OrderFact, now: number): OrderState {
  const d = decide(prev, fact, now);
  if (!d.ok) return prev;
  const next = d.next;
  const edge = `${prev.status}>${next.status}`;
  if (prev.status !== next.status) {
    if (REORG.has(edge)) {
      expect(fact.kind).toBe('PAYMENTS_OBSERVED');
      if (fact.kind === 'PAYMENTS_OBSERVED') {
        expect(fact.lost === true || fact.seen < prev.received.seen || fact.final < prev.received.final).toBe(true);
      }
      expect(next.exception).toBe('REVERTED');
      expect(has(d, 'ORDER_EXCEPTION')).toBe(true);
    } else {
      expect(FORWARD.has(edge), edge).toBe(true);
    }
  }
  if (isTerminal(prev.status)) expect(next.status).toBe(prev.status);
  // Time and reason fields follow the status exactly.
  expect(next.payTime > 0).toBe(next.status === 'PAID' || next.status === 'COMPLETED');
  expect(next.completedTime > 0).toBe(next.status === 'COMPLETED');
  expect(next.closedTime > 0).toBe(next.status === 'CLOSED');
  expect(next.closeReason !== null).toBe(next.status === 'CLOSED');
  if (prev.status === 'PAID' && next.status !== 'PENDING' && next.status !== 'PAYING') {
    expect(next.payTime).toBe(prev.payTime);
  }
  expect(next.received.final <= next.received.seen).toBe(true);
  // Effects follow the transitions.
  const becamePaid = next.status === 'PAID' && prev.status !== 'PAID';
  expect(has(d, 'ORDER_PAID')).toBe(becamePaid);
  // Expired with final money: settled pro rata (flagged UNDERPAID, or PAID_LATE for money elsewhere).
  const closedShort = next.status === 'CLOSED' && prev.status !== 'CLOSED' && next.closeReason === 'EXPIRED' && next.received.final > 0n;
  if (closedShort) expect(next.exception).toBe(fact.kind === 'DEADLINE_CHECK' && fact.elsewhere === true ? 'PAID_LATE' : 'UNDERPAID');
  expect(d.effects.some((e) => e.kind === 'SCHEDULE_SETTLEMENT')).toBe(becamePaid || closedShort);
  expect(has(d, 'ORDER_COMPLETED')).toBe(next.status === 'COMPLETED' && prev.status !== 'COMPLETED');
  const closedNow = next.status === 'CLOSED' && prev.status !== 'CLOSED';
  expect(has(d, 'ORDER_CLOSED')).toBe(closedNow && next.closeReason === 'EXPIRED');
  const completedNow = next.status === 'COMPLETED' && prev.status !== 'COMPLETED';
  expect(d.effects.some((e) => e.kind === 'WATCH_UNTIL')).toBe(closedNow || completedNow);
  if (has(d, 'ORDER_EXCEPTION')) expect(next.exception).not.toBeNull();
  // A merchant close notifies nothing but the exception of money elsewhere.
  if (fact.kind === 'MERCHANT_CLOSE') {
    expect(d.effects.every((e) => e.kind !== 'NOTIFY' || (fact.elsewhere === true && e.notifyType === 'ORDER_EXCEPTION'))).toBe(true);
  }
  // An order that ends with money elsewhere is PAID_LATE (a reorg's REVERTED aside).
  if ((fact.kind === 'MERCHANT_CLOSE' || fact.kind === 'DEADLINE_CHECK') && fact.elsewhere === true && next.status === 'CLOSED' && prev.status !== 'CLOSED') {
    expect(next.exception).toBe('PAID_LATE');
  }
  if (!d.changed) {
    expect(d.effects).toEqual([]);
    expect(next).toEqual(prev);
  }
  return next;
}

describe('decide: money within the slack below the currency precision', () => {
  // 18-decimal USDT with a precision of 6: 10^12 - 1 base units of slack. Due 10.5 USDT.
  const DUE = 10_500_000n * 10n ** 12n;
  const SLACK = 10n ** 12n - 1n;
  const observe = (final: bigint, slack: bigint | null = SLACK) => decide(pending, { ...obs(DUE, final, final), ...(slack === null ? {} : { slack }) }, BEFORE);

  it('is the amount due: a payment short by less than one precision unit is PAID, one beyond it by as little is not OVERPAID', () => {
    for (const final of [DUE - SLACK, DUE - 1n, DUE, DUE + 1n, DUE + SLACK]) {
      const d = observe(final);
      expect(d.ok && d.next).toMatchObject({ status: 'PAID', exception: null, received: { final } });
    }
  });

  it('is short or over from one precision unit on, and without slack every base unit counts', () => {
    expect(observe(DUE - SLACK - 1n)).toMatchObject({ ok: true, next: { status: 'PAYING', exception: 'UNDERPAID' } });
    expect(observe(DUE + SLACK + 1n)).toMatchObject({ ok: true, next: { status: 'PAID', exception: 'OVERPAID' } });
    expect(observe(DUE - 1n, null)).toMatchObject({ ok: true, next: { status: 'PAYING', exception: 'UNDERPAID' } });
    expect(observe(DUE + 1n, null)).toMatchObject({ ok: true, next: { status: 'PAID', exception: 'OVERPAID' } });
  });

  it('pays an order left PAYING short by less than the slack (decided before it existed) when the same totals are observed again', () => {
    const stuck = state({ status: 'PAYING', exception: 'UNDERPAID', due: DUE, received: r(DUE - 1n, DUE - 1n) });
    const d = decide(stuck, { ...obs(DUE, DUE - 1n, DUE - 1n), slack: SLACK } as OrderFact, BEFORE);
    expect(d).toMatchObject({ ok: true, changed: true, next: { status: 'PAID' } });
    // Without the slack the same totals change nothing.
    expect(decide(stuck, obs(DUE, DUE - 1n, DUE - 1n), BEFORE)).toMatchObject({ ok: true, changed: false });
  });

  it('flags money final after completion that the settlement did not distribute, even within the slack of the amount due', () => {
    const done = state({ status: 'COMPLETED', due: DUE, payTime: 8_000, completedTime: 8_500, received: r(DUE, DUE - SLACK) });
    const d = decide(done, { ...obs(DUE, DUE, DUE), allFinal: true, slack: SLACK, distributed: DUE - SLACK } as OrderFact, BEFORE);
    expect(d).toMatchObject({ ok: true, next: { status: 'COMPLETED', exception: 'PAID_LATE' } });
  });

  it('refuses a slack that is negative or not below the amount due (a caller bug)', () => {
    expect(() => observe(DUE, -1n)).toThrow(RangeError);
    expect(() => observe(DUE, DUE)).toThrow(RangeError);
  });
});

describe('decide: properties', () => {
  it('runs of facts keep every lifecycle invariant', () => {
    fc.assert(
      fc.property(startArb, fc.array(stepArb, { maxLength: 30 }), (start, steps) => {
        let s = start;
        let now = 1;
        for (const [fact, dt] of steps) {
          now += dt;
          const prev = s;
          s = checkStep(prev, fact, now);
          if (prev.status === 'CLOSED') expect(s.status).toBe('CLOSED');
        }
      }),
      { numRuns: 2_000 },
    );
  });

  const exceptionArb = fc.constantFrom<PayException | null>(null, ...PAY_EXCEPTIONS);
  const anyStateArb: fc.Arbitrary<OrderState> = fc
    .record({
      status: fc.constantFrom(...PAY_STATUSES),
      exception: exceptionArb,
      closeReason: fc.constantFrom<CloseReason | null>(null, 'MERCHANT_CLOSED', 'EXPIRED'),
      expireTime: fc.integer({ min: 0, max: 20_000 }),
      payTime: fc.integer({ min: 0, max: 20_000 }),
      completedTime: fc.integer({ min: 0, max: 20_000 }),
      closedTime: fc.integer({ min: 0, max: 20_000 }),
      due: fc.option(fc.constantFrom(50n, 100n, 150n), { nil: null }),
      received: totals.map(([seen, final]) => ({ seen, final })),
    });

  it('is deterministic and never mutates its input', () => {
    fc.assert(
      fc.property(anyStateArb, factArb, fc.integer({ min: 0, max: 30_000 }), (order, fact, now) => {
        const before = snapshot(order);
        const factBefore = { ...fact };
        Object.freeze(order.received);
        Object.freeze(order);
        Object.freeze(fact);
        const a = decide(order, fact, now);
        const b = decide(order, fact, now);
        expect(a).toEqual(b);
        expect(order).toEqual(before);
        expect(fact).toEqual(factBefore);
        // Changed: the state moved, or the decision is an event with effects of its own.
        if (a.ok) expect(a.changed).toBe(a.effects.length > 0 || JSON.stringify(a.next, big) !== JSON.stringify(before, big));
      }),
      { numRuns: 2_000 },
    );
  });
});

function big(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? `${value}n` : value;
}
