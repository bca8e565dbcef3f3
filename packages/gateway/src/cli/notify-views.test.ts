import { describe, expect, it } from 'vitest';
import type { NotificationAttemptRecord, NotificationRecord } from '../app/records.js';
import { notificationLines } from './notify-views.js';

const notification: NotificationRecord = {
  notifyId: 'N1',
  paymentOrderNo: 'P1',
  notifyType: 'ORDER_PAID',
  sequence: 1,
  payload: '{}',
  status: 'PENDING',
  attempts: 1,
  nextAttemptAt: 0,
  createdAt: 0,
  series: 1,
  attemptNo: 1,
  notifyTime: 0,
  leaseOwner: null,
  deliveredAt: null,
  destination: 'shop.example',
};

const attempt = (responseHead: string): NotificationAttemptRecord => ({
  notifyId: 'N1',
  attemptNo: 1,
  series: 1,
  sender: 's',
  startedAt: 0,
  finishedAt: 0,
  outcome: 'FAILED',
  httpStatus: 200,
  latencyMs: 3,
  responseHead,
  errorKind: 'BAD_ANSWER',
  error: 'HTTP 200 without the body SUCCESS',
});

describe('notify list lines', () => {
  it("escape what a receiver's answer holds that would act on the operator's terminal or reorder the line (C1 controls, DEL, bidi)", () => {
    // U+009B is CSI for terminals that take C1 controls; U+202E reverses what follows ("SUCCESS" on screen).
    const [, line] = notificationLines({ notification, attempts: [attempt('\u009b2J\u007f\u202eSSECCUS\u2028x')] });
    expect(line).toContain('"\\u009b2J\\u007f\\u202eSSECCUS\\u2028x"');
    expect(line).not.toMatch(/[\u007f-\u009f\u202a-\u202e\u2028]/u);
  });
});
