// What the operator sees of an order and its notifications (PROTOCOL §13, §16): the same
// snake_case views for `sparkpay order show` / `notify list` and for the console.
import { formatAmount } from '@sparkpay/protocol';
import type { Deployment } from '../domain/catalogue.js';
import { deploymentDecimals, orderQueryData } from './order-view.js';
import type { Store } from './ports.js';
import type { NotificationAttemptRecord, NotificationRecord } from './records.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export interface SettlementStateView {
  status: string;
  attempts: number;
  last_error: string | null;
  next_attempt_time: number | null;
  tx_hash: string | null;
}

export interface OptionReport {
  network: string;
  currency: string;
  /** The amount due and the platform fee as decimals of the token (what a person reads)… */
  amount: string;
  fee: string;
  /** …and in its base units (what the chain and the settlement count). */
  amount_base: string;
  fee_base: string;
  decimals: number;
  usd_rate: string | null;
}

export interface SettlementLine {
  role: string;
  receiver_addr: string;
  amount: string;
  currency: string;
  status: string;
  tx_hash: string | null;
}

export type OrderReport = Record<string, unknown> & {
  payment_order_no: string;
  merchant_no: string;
  app_id: string;
  pay_status: string;
  options: OptionReport[];
  settlements: SettlementLine[];
  settlement_state: SettlementStateView | null;
};

/**
 * Everything about one order: the query view with every transfer (the API and notifications
 * list at most MAX_LISTED_PAYMENTS), who made it, what each pair was priced at (§6, §14: amount,
 * platform fee and USD rate, in the token's base units, seen nowhere else) and where its
 * settlement stands, also before a transaction carries it. null for an unknown order.
 * `allPayments: false`: the transfers the API lists (a page must not grow with a flood of dust
 * sent to the order's address; payments_count still counts every one).
 */
export async function orderReport(store: Store, deployment: Deployment, paymentOrderNo: string, opts: { allPayments?: boolean } = {}): Promise<OrderReport | null> {
  const order = await store.orders.get(paymentOrderNo);
  if (!order) return null;
  const settlement = await store.settlements.view(paymentOrderNo);
  const data = orderQueryData(order, await store.payments.listByOrder(paymentOrderNo), settlement, {
    allPayments: opts.allPayments ?? true,
    tokens: deploymentDecimals(deployment),
  });
  const st = settlement?.settlement;
  const settlementState = st
    ? { status: st.status, attempts: st.attempts, last_error: st.lastError, next_attempt_time: st.status === 'DUE' && st.attempts > 0 ? Math.ceil(st.nextAttemptAt / 1000) : null, tx_hash: st.txHash }
    : null;
  const options = order.options.map((o) => ({
    network: o.network,
    currency: o.currency,
    amount: formatAmount(o.amountBase, o.decimals),
    fee: formatAmount(o.fee, o.decimals),
    amount_base: o.amountBase.toString(),
    fee_base: o.fee.toString(),
    decimals: o.decimals,
    usd_rate: o.usdRate,
  }));
  return {
    ...data,
    payment_order_no: order.paymentOrderNo,
    pay_status: order.state.status,
    settlements: data.settlements as SettlementLine[],
    merchant_no: order.merchantNo,
    app_id: order.appId,
    edition: order.edition,
    expire_time: order.state.expireTime,
    pricing_usd_rate: order.pricingUsdRate,
    // Where its notifications go and its payer returns (the query does not answer them): after a
    // receiver's 404 the operator tells the merchant which URL.
    notify_url: order.notifyUrl ?? null,
    redirect_url: order.redirectUrl ?? null,
    options,
    settlement_state: settlementState,
  };
}

export function notificationView(n: NotificationRecord) {
  return {
    notify_id: n.notifyId,
    payment_order_no: n.paymentOrderNo,
    notify_type: n.notifyType,
    sequence: n.sequence,
    status: n.status,
    series: n.series,
    // The series' counter, by which its eight attempts are used up: those that ended, but for
    // interrupted ones (attemptsInWords counts every one the log holds).
    attempts_in_series: n.attempts,
    attempts_total: n.attemptNo,
    destination: n.destination,
    notify_time: n.notifyTime,
    // While an attempt is in flight this is when its lease runs out.
    next_attempt_at: n.status === 'PENDING' ? iso(n.nextAttemptAt) : null,
    in_flight: n.status === 'PENDING' && n.leaseOwner !== null,
    delivered_at: iso(n.deliveredAt),
    created_at: iso(n.createdAt),
  };
}

/**
 * A notification's attempts in words, the same for `sparkpay notify list` and the console: every
 * one started, those in flight, and the current series' ("3 in all, 1 in flight, 1 in series 2").
 * Counted in its attempt log: the record's counter of the series (`attempts`, which decides when
 * the series is used up) leaves out an attempt in flight or interrupted, and an attempt in flight
 * after a resend read "3 in all, 0 in series 2".
 */
export function attemptsInWords(n: NotificationRecord, attempts: readonly NotificationAttemptRecord[]): string {
  const inFlight = attempts.filter((a) => a.outcome === 'IN_FLIGHT').length;
  const inSeries = attempts.filter((a) => a.series === n.series).length;
  return `${n.attemptNo} in all${inFlight > 0 ? `, ${inFlight} in flight` : ''}, ${inSeries} in series ${n.series}`;
}

export function attemptView(a: NotificationAttemptRecord) {
  return {
    attempt_no: a.attemptNo,
    series: a.series,
    sender: a.sender,
    started_at: iso(a.startedAt),
    finished_at: iso(a.finishedAt),
    outcome: a.outcome,
    http_status: a.httpStatus,
    latency_ms: a.latencyMs,
    response_head: a.responseHead,
    error_kind: a.errorKind,
    error: a.error,
  };
}
