// How `sparkpay notify …` shows notifications and their attempts to people: one line per
// notification and per attempt (the JSON views, shared with the console, are in app/operator-views).
import { escapedText } from './output.js';
import { attemptsInWords, notificationView } from '../app/operator-views.js';
import type { NotificationAttemptRecord, NotificationRecord } from '../app/records.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function notificationLines(h: { notification: NotificationRecord; attempts: NotificationAttemptRecord[] }): string[] {
  const n = notificationView(h.notification);
  const state = n.status === 'PENDING' ? (n.in_flight ? 'PENDING (attempt in flight)' : `PENDING, next attempt ${n.next_attempt_at}`) : n.status;
  const head = `${n.notify_id}  ${n.notify_type}  sequence ${n.sequence}  ${state}  (attempts: ${attemptsInWords(h.notification, h.attempts)})`;
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
