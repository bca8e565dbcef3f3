// What operators do with notifications (PROTOCOL §13, §16): look at an order's notifications
// with every attempt, and resend one (a new attempt series with the same notify_id).
import type { Clock, OutboxSignal, Store } from './ports.js';
import type { NotificationAttemptRecord, NotificationRecord } from './records.js';

export interface NotificationHistory {
  notification: NotificationRecord;
  attempts: NotificationAttemptRecord[];
}

/** The order's notifications by sequence, each with its attempt log; null for an unknown order. */
export async function listOrderNotifications(store: Store, paymentOrderNo: string): Promise<NotificationHistory[] | null> {
  // Whether the order exists: one indexed read, not the order with its options.
  if ((await store.orders.version(paymentOrderNo)) === null) return null;
  return notificationHistories(store, paymentOrderNo);
}

/** The notifications of an order known to exist, by sequence, each with its attempt log. */
export async function notificationHistories(store: Store, paymentOrderNo: string): Promise<NotificationHistory[]> {
  const notifications = await store.notifications.listByOrder(paymentOrderNo);
  return Promise.all(notifications.map(async (notification) => ({ notification, attempts: await store.notifications.listAttempts(notification.notifyId) })));
}

export type ResendOutcome = { ok: true; notification: NotificationRecord } | { ok: false; reason: 'NOT_FOUND'; message: string };

/**
 * Starts a new series of up to eight attempts, due now. An attempt of the old series still in
 * flight finishes and is logged, but no longer decides the notification's status.
 */
export async function resendNotification(deps: { store: Store; clock: Clock; outbox?: OutboxSignal }, notifyId: string): Promise<ResendOutcome> {
  const notification = await deps.store.transaction(async (tx) => {
    if (!(await tx.notifications.resend(notifyId, deps.clock.nowMs()))) return null;
    return tx.notifications.get(notifyId);
  });
  if (!notification) return { ok: false, reason: 'NOT_FOUND', message: `notification ${notifyId} does not exist` };
  deps.outbox?.notify();
  return { ok: true, notification };
}
