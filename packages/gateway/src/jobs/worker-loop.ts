// A thin loop around a use case: run, wait, run again; errors are logged and the loop goes
// on. The work itself lives in rows (deadlines, due times), so a restart loses nothing.
import type { Logger } from 'pino';

export interface WorkerLoop {
  stop(): Promise<void>;
}

export interface WakeableLoop extends WorkerLoop {
  /** Runs the tick now rather than at the end of the wait (once more after the current one, if running). */
  wake(): void;
}

/**
 * `tick` is given `stopping()`: a tick that runs several passes (a scan catching up, settlement
 * batch after batch) checks it between them, so a stop waits for the pass under way only and the
 * lease is handed over at once, not after the rest of the tick (minutes of catching up).
 */
export function startLoop(name: string, intervalMs: number, logger: Logger, tick: (stopping: () => boolean) => Promise<unknown>): WakeableLoop {
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let again = false;
  const failures = failureLog(logger, name, 'worker tick');
  const run = async () => {
    try {
      await tick(() => stopped);
      failures.succeeded();
    } catch (err) {
      // Stopping: what the tick used may be going away with it (Ctrl-C in `sparkpay dev` stops
      // the local chains at the same moment), so its failure is no error.
      if (stopped) logger.info({ worker: name, err: { message: err instanceof Error ? err.message : String(err) } }, 'worker tick cut short by the stop');
      else failures.failed(err);
    }
  };
  const start = () => {
    timer = null;
    running = run().finally(() => {
      running = null;
      if (again) {
        again = false;
        if (!stopped) start();
      } else schedule();
    });
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(start, intervalMs);
    timer.unref();
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
    wake() {
      if (stopped) return;
      if (running) {
        again = true;
        return;
      }
      if (timer) clearTimeout(timer);
      start();
    },
  };
}

/**
 * How a loop's failures are logged: the first of a kind (a new message) as an error with its
 * stack; repeats of the same message as warnings without it, at the 2nd, 4th, 8th… in a row (a
 * database or an RPC endpoint down fails every tick the same way: one stack is enough, and a
 * line a second per worker buried the rest of an outage's log); the first success after failures
 * says how many there were.
 */
export function failureLog(logger: Logger, worker: string, what: string) {
  let last: string | null = null;
  let count = 0;
  let same = 0;
  return {
    failed(err: unknown): void {
      const message = err instanceof Error ? err.message : String(err);
      count += 1;
      same = message === last ? same + 1 : 1;
      if (same === 1) logger.error({ err, worker }, `${what} failed`);
      else if ((same & (same - 1)) === 0) logger.warn({ err: { message }, worker, repeats: same }, `${what} failed`);
      last = message;
    },
    succeeded(): void {
      if (count > 0) logger.info({ worker, failures: count }, `${what} succeeded again`);
      last = null;
      count = 0;
      same = 0;
    },
  };
}
