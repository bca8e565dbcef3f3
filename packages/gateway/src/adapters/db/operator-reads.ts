// The console's lists (OperatorReads), one Kysely code path for SQLite and PostgreSQL. Each is
// a bounded page read by an index in the order shown: the orders by primary key (payment_order_no
// begins with the creation time), a merchant's and a status's by orders_merchant_recent and
// orders_status_recent; failed notifications by notifications_due; merchants by primary key.
import type { Kysely } from 'kysely';
import type { OperatorReads, OrderSummary } from '../../app/ports.js';
import type { Edition } from '../../app/records.js';
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
        .selectFrom('notifications')
        .select(['notify_id', 'payment_order_no', 'notify_type', 'sequence', 'attempt_no', 'destination', 'created_at', 'next_attempt_at'])
        .where('status', '=', 'FAILED')
        // A FAILED notification's next_attempt_at is when it was given up: notifications_due
        // (status, next_attempt_at) holds them in that order (by created_at, every failed one
        // was read and sorted for the newest 50).
        .orderBy('next_attempt_at', 'desc')
        .orderBy('notify_id', 'desc')
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
      }));
    },
    async chainCursors() {
      return (await db.selectFrom('chain_cursors').selectAll().orderBy('network').execute()).map(rowToCursor);
    },
  };
}
