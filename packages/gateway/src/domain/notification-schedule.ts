// Notification delivery rules (PROTOCOL §13): what counts as delivered, and when a failed
// attempt is tried again. Pure: the caller supplies the time and stores the result.

/** Seconds to wait after the 1st, 2nd, … 7th failed attempt of a series. */
export const RETRY_DELAYS_SECONDS: readonly number[] = [10, 60, 300, 600, 1800, 3600, 7200];

/** Attempts in one series: the first plus one per retry delay. */
export const MAX_ATTEMPTS = RETRY_DELAYS_SECONDS.length + 1;

/** The receiver's answer that means "delivered": HTTP 200 whose body, trimmed, is SUCCESS. */
export function isDeliveredAnswer(httpStatus: number | null, body: string | null): boolean {
  return httpStatus === 200 && body !== null && body.trim() === 'SUCCESS';
}

export type AfterFailure = { kind: 'RETRY'; nextAttemptAt: number } | { kind: 'FAILED' };

/**
 * After the `failedAttempts`-th failed attempt of a series (1-based), finished at `nowMs`:
 * the time of the next attempt, or FAILED once the series' attempts are used up.
 */
export function afterFailure(failedAttempts: number, nowMs: number): AfterFailure {
  if (!Number.isInteger(failedAttempts) || failedAttempts < 1) throw new RangeError(`failedAttempts must be a positive integer, got ${failedAttempts}`);
  const delay = RETRY_DELAYS_SECONDS[failedAttempts - 1];
  if (delay === undefined) return { kind: 'FAILED' };
  return { kind: 'RETRY', nextAttemptAt: nowMs + delay * 1000 };
}
