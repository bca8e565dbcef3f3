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

export function startLoop(name: string, intervalMs: number, logger: Logger, tick: () => Promise<unknown>): WakeableLoop {
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let again = false;
  const run = async () => {
    try {
      await tick();
    } catch (err) {
      logger.error({ err, worker: name }, 'worker tick failed');
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
