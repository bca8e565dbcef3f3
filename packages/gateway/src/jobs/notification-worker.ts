// Drives notification delivery: a poll for what other processes wrote (other instances, the
// CLI's resend) and for retries coming due, plus immediate passes when this process commits
// notifications or an attempt frees a slot. Passes never overlap; a kick during a pass runs
// one more pass.
import type { Logger } from 'pino';
import type { NotificationDelivery } from '../app/deliver-notifications.js';
import type { OutboxSignal } from '../app/ports.js';
import { failureLog } from './worker-loop.js';

export interface NotificationWorker extends OutboxSignal {
  stop(): Promise<void>;
}

export function startNotificationWorker(delivery: NotificationDelivery, logger: Logger, pollMs: number): NotificationWorker {
  let stopped = false;
  let again = false;
  let pass: Promise<void> | null = null;

  const failures = failureLog(logger, 'notifications', 'notification pass');
  const run = async () => {
    do {
      again = false;
      try {
        await delivery.deliverDue();
        failures.succeeded();
      } catch (err) {
        failures.failed(err);
      }
    } while (again && !stopped);
  };
  const kick = () => {
    if (stopped) return;
    if (pass) {
      again = true;
      return;
    }
    pass = run().finally(() => {
      pass = null;
    });
  };
  // A freed slot refills from its destination's backlog; polls and wake-ups look at everything.
  const scan = () => {
    delivery.wantScan();
    kick();
  };
  delivery.onSettled = kick;
  const timer = setInterval(scan, pollMs);
  timer.unref();
  scan();
  return {
    notify: scan,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await pass;
      await delivery.stop();
    },
  };
}
