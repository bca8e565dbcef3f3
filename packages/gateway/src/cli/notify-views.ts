// How `sparkpay notify …` shows notifications and their attempts: snake_case JSON with ISO
// times (notify_time stays Unix seconds, as on the wire), or one line per notification and
// per attempt for people.
import { escapedText } from './output.js';
import type { NotificationAttemptRecord, NotificationRecord } from '../app/records.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function notificationView(n: NotificationRecord) {
  return {
    notify_id: n.notifyId,
    payment_order_no: n.paymentOrderNo,
    notify_type: n.notifyType,
    sequence: n.sequence,
    status: n.status,
    series: n.series,
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

export function notificationLines(h: { notification: NotificationRecord; attempts: NotificationAttemptRecord[] }): string[] {
  const n = notificationView(h.notification);
  const state = n.status === 'PENDING' ? (n.in_flight ? 'PENDING (attempt in flight)' : `PENDING, next attempt ${n.next_attempt_at}`) : n.status;
  const head = `${n.notify_id}  ${n.notify_type}  sequence ${n.sequence}  ${state}  (${n.attempts_total} attempt(s), series ${n.series})`;
  return [
    head,
    ...h.attempts.map((a) => {
      const answer = a.httpStatus !== null ? `HTTP ${a.httpStatus}` : '';
      const detail = [answer, a.errorKind ?? '', a.latencyMs !== null ? `${a.latencyMs} ms` : '', a.responseHead ? escapedText(JSON.stringify(a.responseHead.slice(0, 60))) : '']
        .filter(Boolean)
        .join(', ');
      return `  #${a.attemptNo} ${iso(a.startedAt)} ${a.outcome}${detail ? ` (${detail})` : ''}`;
    }),
  ];
}
