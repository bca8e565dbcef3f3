// Closes overdue orders (§10): PENDING past the deadline becomes CLOSED/EXPIRED and notifies;
// PAYING past the deadline closes once no payment is still confirming (the domain decides).
// Safe with several instances: each transition is version-guarded.
// An order with a deposit address on a network this gateway scans waits until that network's
// scan has caught up with a pass started at or after the deadline: money mined before the
// deadline but not scanned yet (a pass in progress, a lagging or unreachable endpoint) counts,
// instead of arriving after the close as PAID_LATE (ADR 0007).
import { nowSeconds, type EventLog } from './ports.js';
import { transition, type TransitionDeps } from './order-transitions.js';
import { closingFact } from './record-payment.js';

/**
 * Returns how many orders it closed. PENDING orders are drained first so they never wait behind
 * PAYING ones. `scannedNetworks`: the networks whose chains this gateway scans. An order whose
 * close fails (a row that cannot be read or written) is logged and skipped: it must not keep
 * every order listed after it from expiring, run after run.
 */
export async function expireOverdueOrders(deps: TransitionDeps, scannedNetworks: readonly string[], batchSize = 100, log?: Pick<EventLog, 'error'>): Promise<number> {
  let closed = 0;
  for (const status of ['PENDING', 'PAYING'] as const) {
    for (;;) {
      const due = await deps.store.orders.listOverdue(status, nowSeconds(deps.clock), batchSize, scannedNetworks);
      let progressed = 0;
      for (const paymentOrderNo of due) {
        try {
          // Asked again inside the close: a scan that went back since the list was read (a
          // reorganisation) may find the order's money in the blocks it reads again.
          const outcome = await transition(deps, paymentOrderNo, async (tx, order) => ((await tx.orders.awaitsScan(order.paymentOrderNo, scannedNetworks)) ? null : closingFact(tx, order, 'DEADLINE_CHECK')));
          if (outcome.ok && outcome.changed && outcome.order.state.status === 'CLOSED') progressed += 1;
        } catch (err) {
          log?.error({ err, paymentOrderNo }, 'overdue order could not be closed; the other overdue orders go on, it is tried again at the next run');
        }
      }
      closed += progressed;
      // Stop when a batch was short, or closed nothing (every order of it changed meanwhile, or its
      // scan went back, or its close failed): the next run lists them again. (A whole batch of
      // orders that fail would still hold back those after it.)
      if (due.length < batchSize || progressed === 0) break;
    }
  }
  return closed;
}
