// The console's lists (OperatorReads), one Kysely code path for SQLite and PostgreSQL. Each is
// a bounded page read by an index in the order shown: the orders by primary key (payment_order_no
// begins with the creation time), a merchant's and a status's by orders_merchant_recent and
// orders_status_recent; failed notifications by notifications_due (each one's last attempt by the
// log's primary key); merchants by primary key; an order by its request_no by orders_request_no.
import type { Kysely } from 'kysely';
import { FAILED_ERROR_CHARS, type OperatorReads, type OrderSummary } from '../../app/ports.js';
import type { AttemptErrorKind, Edition } from '../../app/records.js';
import type { PayStatus } from '../../domain/lifecycle-types.js';
import { rowToCursor } from './chain-cursor-store.js';
import type { Database } from './schema.js';

export function operatorReads(db: Kysely<Database>): OperatorReads {
  return {
    async recentOrders(filter, limit) {
      let q = db
        .selectFrom('orders')
        .select([
          'payment_order_no',
          'merchant_no',
          'request_no',
          'edition',
          'pay_status',
          'pay_exception',
          'close_reason',
          'pricing_amount_wire',
          'pricing_currency',
          'selected_network',
          'selected_currency',
          'created_at',
          'expire_time',
        ])
        .orderBy('payment_order_no', 'desc')
        .limit(limit);
      if (filter.merchantNo !== undefined) q = q.where('merchant_no', '=', filter.merchantNo);
      if (filter.status !== undefined) q = q.where('pay_status', '=', filter.status);
      if (filter.before !== undefined) q = q.where('payment_order_no', '<', filter.before);
      const rows = await q.execute();
      return rows.map(
        (r): OrderSummary => ({
          paymentOrderNo: r.payment_order_no,
          merchantNo: r.merchant_no,
          requestNo: r.request_no,
          edition: r.edition as Edition,
          payStatus: r.pay_status as PayStatus,
          payException: r.pay_exception,
          closeReason: r.close_reason,
          pricingAmountWire: r.pricing_amount_wire,
          pricingCurrency: r.pricing_currency,
          selectedNetwork: r.selected_network,
          selectedCurrency: r.selected_currency,
          createdAt: Number(r.created_at),
          expireTime: Number(r.expire_time),
        }),
      );
    },
    async merchantNos(after, limit) {
      let q = db.selectFrom('merchants').select('merchant_no').orderBy('merchant_no').limit(limit);
      if (after !== null) q = q.where('merchant_no', '>', after);
      return (await q.execute()).map((r) => r.merchant_no);
    },
    async failedNotifications(limit) {
      const rows = await db
        .selectFrom('notifications as n')
        // Its last attempt (the notification's attempt_no is the number of the last one in the
        // log), found by the log's primary key: one row per notification listed.
        .leftJoin('notification_attempts as a', (j) => j.onRef('a.notify_id', '=', 'n.notify_id').onRef('a.attempt_no', '=', 'n.attempt_no'))
        .select((eb) => [
          'n.notify_id',
          'n.payment_order_no',
          'n.notify_type',
          'n.sequence',
          'n.attempt_no',
          'n.destination',
          'n.created_at',
          'n.next_attempt_at',
          'a.error_kind',
          'a.http_status',
          // Its head only (one character more tells whether there is more).
          eb.fn<string | null>('substr', ['a.error', eb.val(1), eb.val(FAILED_ERROR_CHARS + 1)]).as('error'),
        ])
        .where('n.status', '=', 'FAILED')
        // A FAILED notification's next_attempt_at is when it was given up: notifications_due
        // (status, next_attempt_at) holds them in that order (by created_at, every failed one
        // was read and sorted for the newest 50).
        .orderBy('n.next_attempt_at', 'desc')
        .orderBy('n.notify_id', 'desc')
        .limit(limit)
        .execute();
      return rows.map((r) => ({
        notifyId: r.notify_id,
        paymentOrderNo: r.payment_order_no,
        notifyType: r.notify_type,
        sequence: Number(r.sequence),
        attempts: Number(r.attempt_no),
        destination: r.destination,
        createdAt: Number(r.created_at),
        failedAt: Number(r.next_attempt_at),
        lastErrorKind: r.error_kind as AttemptErrorKind | null,
        lastHttpStatus: r.http_status === null ? null : Number(r.http_status),
        lastError: r.error !== null && r.error.length > FAILED_ERROR_CHARS ? `${r.error.slice(0, FAILED_ERROR_CHARS)}…` : r.error,
      }));
    },
    async orderNoByRequest(merchantNo, requestNoKey) {
      // By the unique index (merchant_no, request_no_key), as the API's query finds an order.
      const r = await db.selectFrom('orders').select('payment_order_no').where('merchant_no', '=', merchantNo).where('request_no_key', '=', requestNoKey).executeTakeFirst();
      return r?.payment_order_no ?? null;
    },
    async chainCursors() {
      return (await db.selectFrom('chain_cursors').selectAll().orderBy('network').execute()).map(rowToCursor);
    },
  };
}
