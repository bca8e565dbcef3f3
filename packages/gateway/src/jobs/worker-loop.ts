// A thin loop around a use case: run, wait, run again; errors are logged and the loop goes
// on. The work itself lives in rows (deadlines, due times), so a restart loses nothing.
import type { Logger } from 'pino';

export interface WorkerLoop {
  stop(): Promise<void>;
}

export function startLoop(name: string, intervalMs: number, logger: Logger, tick: () => Promise<unknown>): WorkerLoop {
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> = Promise.resolve();
  const run = async () => {
    try {
      await tick();
    } catch (err) {
      logger.error({ err, worker: name }, 'worker tick failed');
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = run().finally(schedule);
    }, intervalMs);
    timer.unref();
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
