// One line when this instance takes over or loses a network's lease (the chain scan, settlement),
// not one per pass: with several instances, the log says which one runs what, and when it changed.
import type { EventLog } from './ports.js';

export function leadershipLog(log: Pick<EventLog, 'info'>, network: string, what: string): (held: boolean) => void {
  let last: boolean | null = null;
  return (held) => {
    if (held === last) return;
    last = held;
    if (held) log.info({ network }, `this instance runs the network's ${what} (it holds the lease)`);
    else log.info({ network }, `another instance runs the network's ${what} (it holds the lease)`);
  };
}
