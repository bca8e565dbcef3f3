// What `start` and `dev` do on SIGTERM / SIGINT: close the gateway (workers finish the pass under
// way and hand their leases over, the server answers what is in flight, the database closes),
// then exit — 0 when everything closed, 1 when something failed, saying what.
import type { Logger } from 'pino';

/**
 * How long a shutdown may take before the process exits anyway. A pass waiting on a database or
 * an RPC endpoint that went silent (a failover without a reset: no answer, no error, for the
 * ~15 minutes TCP takes to give up) would otherwise hold the stop for as long, past any container
 * runtime's grace period (Kubernetes: 30 s). The leases not handed over then run out as after a
 * kill.
 */
export const SHUTDOWN_DEADLINE_MS = 20_000;

export interface ShutdownOptions {
  deadlineMs?: number;
  exit?: (code: number) => void;
}

export function shutdown(signal: string, close: () => Promise<void>, logger: Logger, options: ShutdownOptions = {}): Promise<void> {
  const deadlineMs = options.deadlineMs ?? SHUTDOWN_DEADLINE_MS;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  logger.info({ signal }, 'shutting down');
  let timer: NodeJS.Timeout | undefined;
  const overdue = new Promise<'overdue'>((resolve) => {
    timer = setTimeout(() => resolve('overdue'), deadlineMs);
    timer.unref();
  });
  return Promise.race([close().then(() => 'closed' as const), overdue]).then(
    (how) => {
      clearTimeout(timer);
      if (how === 'closed') return exit(0);
      logger.error(
        { signal, deadlineMs },
        `shutdown did not finish within ${deadlineMs / 1000} s (a pass waits on a database or an RPC endpoint that does not answer): exiting; the leases not handed over are taken over by another instance once they run out`,
      );
      logger.flush();
      exit(1);
    },
    (err: unknown) => {
      clearTimeout(timer);
      logger.error({ err, signal }, 'shutdown failed');
      logger.flush();
      exit(1);
    },
  );
}
