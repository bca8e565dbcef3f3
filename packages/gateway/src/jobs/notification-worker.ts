// Drives notification delivery: a poll for what other processes wrote (other instances, the
// CLI's resend) and for retries coming due, plus immediate wake-ups when this process commits
// notifications or an attempt frees capacity. Passes never overlap; a wake-up during a pass
// runs one more pass.
import type { Logger } from 'pino';
import type { NotificationDelivery } from '../app/deliver-notifications.js';
import type { OutboxSignal } from '../app/ports.js';

export interface NotificationWorker extends OutboxSignal {
  stop(): Promise<void>;
}

export function startNotificationWorker(delivery: NotificationDelivery, logger: Logger, pollMs: number): NotificationWorker {
  let stopped = false;
  let again = false;
  let pass: Promise<void> | null = null;

  const run = async () => {
    do {
      again = false;
      try {
        const started = await delivery.deliverDue();
        // A full batch may have left more due work behind.
        if (started > 0) again = true;
      } catch (err) {
        logger.error({ err, worker: 'notifications' }, 'notification pass failed');
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
  delivery.onSettled = kick;
  const timer = setInterval(kick, pollMs);
  timer.unref();
  kick();
  return {
    notify: kick,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await pass;
      await delivery.stop();
    },
  };
}
