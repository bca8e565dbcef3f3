// A store whose every transaction first renews a lease inside it (a fence): a worker whose pass
// outlived its lease (a stalled RPC provider, a paused process) while another instance took the
// work over stores nothing more, since what it read before is older than what the other one may
// have written since. The renewal is a write of the lease row, so on PostgreSQL another
// instance's taking of the lease waits for the fenced transaction, and the other way round.
import type { Store, StoreTx } from './ports.js';

/** A fenced transaction found its lease gone: nothing of it was stored. */
export class LeaseGoneError extends Error {
  constructor(readonly lease: string) {
    super(`the ${lease} lease was lost: another instance holds it`);
  }
}

/**
 * `store`, with each `transaction` renewing `name` for `owner` (until `leaseMs` from `now()`)
 * first, and failing with LeaseGoneError when it cannot. Writes made outside a transaction are
 * not fenced: a fenced worker makes every write in one.
 */
export function fencedStore(store: Store, name: string, owner: string, leaseMs: number, now: () => number): Store {
  const transaction = <T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> =>
    store.transaction(async (tx) => {
      const at = now();
      if (!(await tx.leases.renew(name, owner, at, at + leaseMs))) throw new LeaseGoneError(name);
      return fn(tx);
    });
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'transaction') return transaction;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
