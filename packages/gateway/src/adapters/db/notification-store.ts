// The notification outbox and its attempt log (PROTOCOL §13), identical on SQLite and
// PostgreSQL. Leases are compare-and-set updates on the row (ADR 0001: no row locks), so one
// sender at a time holds a notification, also across instances.
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { NotifyType } from '../../domain/lifecycle.js';
import type { DueNotification, NotificationRepo } from '../../app/ports.js';
import type { CompiledCache } from './compiled-cache.js';
import type { AttemptErrorKind, AttemptOutcome, NotificationAttemptRecord, NotificationRecord, NotificationStatus } from '../../app/records.js';
import type { Database, NotificationAttemptsTable, NotificationsTable } from './schema.js';

type Q = Kysely<Database> | Transaction<Database>;

const nullableNumber = (v: number | string | null): number | null => (v === null ? null : Number(v));

function rowToNotification(r: Selectable<NotificationsTable>): NotificationRecord {
  return {
    notifyId: r.notify_id,
    paymentOrderNo: r.payment_order_no,
    notifyType: r.notify_type as NotifyType,
    sequence: Number(r.sequence),
    payload: r.payload,
    status: r.status as NotificationStatus,
    attempts: Number(r.attempts),
    nextAttemptAt: Number(r.next_attempt_at),
    createdAt: Number(r.created_at),
    series: Number(r.series),
    attemptNo: Number(r.attempt_no),
    notifyTime: nullableNumber(r.notify_time),
    leaseOwner: r.lease_owner,
    deliveredAt: nullableNumber(r.delivered_at),
    destination: r.destination,
  };
}

function rowToAttempt(r: Selectable<NotificationAttemptsTable>): NotificationAttemptRecord {
  return {
    notifyId: r.notify_id,
    attemptNo: Number(r.attempt_no),
    series: Number(r.series),
    sender: r.sender,
    startedAt: Number(r.started_at),
    finishedAt: nullableNumber(r.finished_at),
    outcome: r.outcome as AttemptOutcome,
    httpStatus: nullableNumber(r.http_status),
    latencyMs: nullableNumber(r.latency_ms),
    responseHead: r.response_head,
    errorKind: r.error_kind as AttemptErrorKind | null,
    error: r.error,
  };
}

const affected = (r: { numUpdatedRows: bigint }) => r.numUpdatedRows > 0n;

/** Due notifications with what a sender needs from the order (URL, application). */
function dueQuery(q: Q) {
  return q
    .selectFrom('notifications as n')
    .innerJoin('orders as o', 'o.payment_order_no', 'n.payment_order_no')
    .select(['n.notify_id', 'n.series', 'n.attempt_no', 'n.lease_owner', 'n.destination', 'o.notify_url', 'o.app_id'])
    .where('n.status', '=', 'PENDING');
}

function rowToDue(r: { notify_id: string; series: number; attempt_no: number; lease_owner: string | null; destination: string; notify_url: string | null; app_id: string }): DueNotification {
  return {
    notifyId: r.notify_id,
    series: Number(r.series),
    attemptNo: Number(r.attempt_no),
    leaseOwner: r.lease_owner,
    // Rows are only written for orders with a notify_url; '' reaches the sender as an invalid URL.
    notifyUrl: r.notify_url ?? '',
    appId: r.app_id,
    destination: r.destination,
  };
}

export function notificationRepo(q: Q, cache: CompiledCache): NotificationRepo {
  return {
    async insert(n) {
      await q
        .insertInto('notifications')
        .values({
          notify_id: n.notifyId,
          payment_order_no: n.paymentOrderNo,
          notify_type: n.notifyType,
          sequence: n.sequence,
          payload: n.payload,
          status: n.status,
          attempts: n.attempts,
          next_attempt_at: n.nextAttemptAt,
          created_at: n.createdAt,
          series: n.series,
          attempt_no: n.attemptNo,
          notify_time: n.notifyTime,
          lease_owner: n.leaseOwner,
          delivered_at: n.deliveredAt,
          destination: n.destination,
        })
        .execute();
    },
    async get(notifyId) {
      const r = await q.selectFrom('notifications').selectAll().where('notify_id', '=', notifyId).executeTakeFirst();
      return r ? rowToNotification(r) : null;
    },
    async listByOrder(paymentOrderNo) {
      const rows = await q
        .selectFrom('notifications')
        .selectAll()
        .where('payment_order_no', '=', paymentOrderNo)
        .orderBy('sequence')
        .orderBy('created_at')
        .orderBy('notify_id')
        .execute();
      return rows.map(rowToNotification);
    },
    async listDue(nowMs, limit, skipDestinations, skipApps = []) {
      const skip = [...skipDestinations];
      const apps = [...skipApps];
      const rows = await cache.run(q, `notifications.listDue:${skip.length}:${apps.length}`, ['PENDING', nowMs, ...skip, ...apps, limit], () => {
        let query = dueQuery(q).where('n.next_attempt_at', '<=', nowMs);
        if (skip.length > 0) query = query.where('n.destination', 'not in', skip);
        if (apps.length > 0) query = query.where('o.app_id', 'not in', apps);
        return query.orderBy('n.next_attempt_at').limit(limit);
      });
      return rows.rows.map(rowToDue);
    },
    async listDueAt(destination, nowMs, limit, skipApps = []) {
      const apps = [...skipApps];
      const rows = await cache.run(q, `notifications.listDueAt:${apps.length}`, ['PENDING', destination, nowMs, ...apps, limit], () => {
        let query = dueQuery(q).where('n.destination', '=', destination).where('n.next_attempt_at', '<=', nowMs);
        if (apps.length > 0) query = query.where('o.app_id', 'not in', apps);
        return query.orderBy('n.next_attempt_at').limit(limit);
      });
      return rows.rows.map(rowToDue);
    },
    async claim(n, owner, nowMs, leaseUntil) {
      const notifyTime = Math.floor(nowMs / 1000);
      const r = await cache.run(q, 'notifications.claim', [owner, n.attemptNo + 1, leaseUntil, notifyTime, n.notifyId, 'PENDING', n.series, n.attemptNo, nowMs], () =>
        q
          .updateTable('notifications')
          .set((eb) => ({
            lease_owner: owner,
            attempt_no: n.attemptNo + 1,
            next_attempt_at: leaseUntil,
            notify_time: eb.fn.coalesce('notify_time', eb.val(notifyTime)),
          }))
          .where('notify_id', '=', n.notifyId)
          .where('status', '=', 'PENDING')
          .where('series', '=', n.series)
          .where('attempt_no', '=', n.attemptNo)
          .where('next_attempt_at', '<=', nowMs)
          .returningAll(),
      );
      const row = r.rows[0];
      return row ? rowToNotification(row) : null;
    },
    async settle(notifyId, guard, next) {
      const params = [next.status, next.attempts, next.nextAttemptAt, next.deliveredAt, null, notifyId, guard.owner, guard.series, guard.attemptNo];
      const r = await cache.run(q, 'notifications.settle', params, () =>
        q
          .updateTable('notifications')
          .set({ status: next.status, attempts: next.attempts, next_attempt_at: next.nextAttemptAt, delivered_at: next.deliveredAt, lease_owner: null })
          .where('notify_id', '=', notifyId)
          .where('lease_owner', '=', guard.owner)
          .where('series', '=', guard.series)
          .where('attempt_no', '=', guard.attemptNo),
      );
      return (r.numAffectedRows ?? 0n) > 0n;
    },
    async deliveredLate(notifyId, series, deliveredAt) {
      const r = await q
        .updateTable('notifications')
        // The attempt that delivered it counts (the row ended DELIVERED after 0 attempts).
        .set((eb) => ({ status: 'DELIVERED', attempts: eb('attempts', '+', 1), delivered_at: deliveredAt, next_attempt_at: deliveredAt, lease_owner: null }))
        .where('notify_id', '=', notifyId)
        .where('series', '=', series)
        .where('status', '=', 'PENDING')
        .executeTakeFirst();
      return (r.numUpdatedRows ?? 0n) > 0n;
    },
    async resend(notifyId, nowMs) {
      const r = await q
        .updateTable('notifications')
        .set((eb) => ({
          series: eb('series', '+', 1),
          status: 'PENDING',
          attempts: 0,
          next_attempt_at: nowMs,
          delivered_at: null,
          lease_owner: null,
        }))
        .where('notify_id', '=', notifyId)
        .executeTakeFirst();
      return affected(r);
    },
    async insertAttempt(a) {
      const row = {
        notify_id: a.notifyId,
        attempt_no: a.attemptNo,
        series: a.series,
        sender: a.sender,
        started_at: a.startedAt,
        finished_at: a.finishedAt,
        outcome: a.outcome,
        http_status: a.httpStatus,
        latency_ms: a.latencyMs,
        response_head: a.responseHead,
        error_kind: a.errorKind,
        error: a.error,
      };
      await cache.run(q, 'notification_attempts.insert', Object.values(row), () => q.insertInto('notification_attempts').values(row));
    },
    async finishAttempt(notifyId, attemptNo, result) {
      const set = {
        outcome: result.outcome,
        finished_at: result.finishedAt,
        http_status: result.httpStatus,
        latency_ms: result.latencyMs,
        response_head: result.responseHead,
        error_kind: result.errorKind,
        error: result.error,
      };
      const over = async (was: 'IN_FLIGHT' | 'INTERRUPTED') => {
        const r = await cache.run(q, `notification_attempts.finish:${was}`, [...Object.values(set), notifyId, attemptNo, was], () =>
          q.updateTable('notification_attempts').set(set).where('notify_id', '=', notifyId).where('attempt_no', '=', attemptNo).where('outcome', '=', was),
        );
        return (r.numAffectedRows ?? 0n) > 0n ? was : null;
      };
      // A real outcome also replaces INTERRUPTED: a sender that outlived its lease still
      // reports what the receiver said (asked second: the usual attempt is IN_FLIGHT).
      return (await over('IN_FLIGHT')) ?? (result.outcome === 'INTERRUPTED' ? null : await over('INTERRUPTED'));
    },
    async backlog(nowMs) {
      const r = await q
        .selectFrom('notifications')
        .select((eb) => [
          eb.fn.countAll<number | string>().filterWhere('status', '=', 'PENDING').as('pending'),
          eb.fn.countAll<number | string>().filterWhere((w) => w.and([w('status', '=', 'PENDING'), w('next_attempt_at', '<=', nowMs)])).as('due'),
          eb.fn.min<number | string | null>('next_attempt_at').filterWhere((w) => w.and([w('status', '=', 'PENDING'), w('next_attempt_at', '<=', nowMs)])).as('oldest_due_at'),
          eb.fn.countAll<number | string>().filterWhere('status', '=', 'FAILED').as('failed'),
        ])
        .where('status', 'in', ['PENDING', 'FAILED'])
        .executeTakeFirst();
      return {
        pending: Number(r?.pending ?? 0),
        due: Number(r?.due ?? 0),
        oldestDueAt: r?.oldest_due_at == null ? null : Number(r.oldest_due_at),
        failed: Number(r?.failed ?? 0),
      };
    },
    async listAttempts(notifyId) {
      const rows = await q.selectFrom('notification_attempts').selectAll().where('notify_id', '=', notifyId).orderBy('attempt_no').execute();
      return rows.map(rowToAttempt);
    },
  };
}
