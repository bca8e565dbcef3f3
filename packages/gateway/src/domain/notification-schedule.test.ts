import { describe, expect, it } from 'vitest';
import { afterFailure, isDeliveredAnswer, MAX_ATTEMPTS, RETRY_DELAYS_SECONDS } from './notification-schedule.js';

describe('notification schedule', () => {
  it('retries after 10 s, 1 min, 5 min, 10 min, 30 min, 1 h and 2 h: eight attempts in all', () => {
    expect(RETRY_DELAYS_SECONDS).toEqual([10, 60, 5 * 60, 10 * 60, 30 * 60, 60 * 60, 2 * 60 * 60]);
    expect(MAX_ATTEMPTS).toBe(8);
    const t = 1_000_000;
    const next = [1, 2, 3, 4, 5, 6, 7].map((n) => afterFailure(n, t));
    expect(next).toEqual(RETRY_DELAYS_SECONDS.map((s) => ({ kind: 'RETRY', nextAttemptAt: t + s * 1000 })));
  });

  it('gives up after the eighth failed attempt', () => {
    expect(afterFailure(8, 0)).toEqual({ kind: 'FAILED' });
    expect(afterFailure(9, 0)).toEqual({ kind: 'FAILED' });
  });

  it('refuses a non-positive attempt count', () => {
    expect(() => afterFailure(0, 0)).toThrow(RangeError);
    expect(() => afterFailure(1.5, 0)).toThrow(RangeError);
  });

  it('counts only HTTP 200 with the body SUCCESS (surrounding whitespace allowed) as delivered', () => {
    expect(isDeliveredAnswer(200, 'SUCCESS')).toBe(true);
    expect(isDeliveredAnswer(200, ' SUCCESS\r\n')).toBe(true);
    expect(isDeliveredAnswer(200, 'success')).toBe(false);
    expect(isDeliveredAnswer(200, 'SUCCESS!')).toBe(false);
    expect(isDeliveredAnswer(200, '')).toBe(false);
    expect(isDeliveredAnswer(200, null)).toBe(false);
    expect(isDeliveredAnswer(201, 'SUCCESS')).toBe(false);
    expect(isDeliveredAnswer(500, 'SUCCESS')).toBe(false);
    expect(isDeliveredAnswer(null, 'SUCCESS')).toBe(false);
  });
});
