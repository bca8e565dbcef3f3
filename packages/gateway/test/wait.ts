// Waiting in real time in tests: for what another task, worker or process does on its own
// schedule, so a test cannot await it directly.

/** A probe's answer: anything falsy means "not yet". */
export type Probe<T> = () => Promise<T | null | undefined | false> | T | null | undefined | false;

/**
 * Polls `probe` until it returns something truthy, and returns that. Fails after `timeoutMs`
 * naming `what`, and the state `describeState` gives (the usual reason the condition never held).
 * A probe that throws ends the wait at once: it knows the condition can no longer hold.
 */
export async function waitUntil<T>(what: string, probe: Probe<T>, timeoutMs = 10_000, describeState?: () => string): Promise<T> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (performance.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${describeState ? `: ${describeState()}` : ''}`);
    await pause(15);
  }
}

/** Lets real time pass: for what would happen late if it happened at all (a duplicate send, bytes in flight). */
export const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
