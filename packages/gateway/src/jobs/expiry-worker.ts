// Closes overdue orders and forgets nonces whose window has passed.
import type { Logger } from 'pino';
import { expireOverdueOrders } from '../app/expire-orders.js';
import type { TransitionDeps } from '../app/order-transitions.js';
import { startLoop, type WorkerLoop } from './worker-loop.js';

export function startExpiryWorker(deps: TransitionDeps, scannedNetworks: readonly string[], logger: Logger, intervalMs: number): WorkerLoop {
  return startLoop('expiry', intervalMs, logger, async () => {
    const closed = await expireOverdueOrders(deps, scannedNetworks, undefined, logger);
    if (closed > 0) logger.info({ closed }, 'expired overdue orders');
    await deps.store.nonces.prune(deps.clock.nowMs());
  });
}
