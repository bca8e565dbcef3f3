// Merchants and applications are read on every API request (the AppID's key and status, the
// merchant's status and wallets) and change rarely. The server keeps what it read for a short
// time instead of asking the database each time: a change made through this process's store
// takes effect at once (its keys are forgotten when written and again when the transaction
// settles); a change made by another process (the CLI, another instance) within `ttlMs`.
import type { ApplicationRecord, Clock, MerchantRecord, Store, StoreTx } from '../../app/ports.js';

export interface DirectoryCacheOptions {
  /** How long a read is used (default 1 s): the most a change by another process waits to be seen. */
  ttlMs?: number;
  /** Entries kept per kind before the cache starts over (bounds memory against floods of unknown ids). */
  maxEntries?: number;
}

interface Entry<T> {
  value: Promise<T | null>;
  until: number;
}

/** Reads through to `load`, keeping each key's answer (also "none") for `ttlMs`; concurrent reads of one key share one load. */
class ReadThrough<T> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly load: (key: string) => Promise<T | null>,
  ) {}

  get(key: string): Promise<T | null> {
    const now = this.clock.nowMs();
    const hit = this.entries.get(key);
    // Not beyond its time to live from now: after the clock was set back, an entry would be kept
    // for as long as the step (a merchant made INACTIVE served as ACTIVE for an hour).
    if (hit && hit.until > now && hit.until - now <= this.ttlMs) return hit.value;
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    const entry: Entry<T> = { value: this.load(key), until: now + this.ttlMs };
    this.entries.set(key, entry);
    // A failed read is not kept.
    entry.value.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return entry.value;
  }

  /** The next read of `key` goes to the database (a read already under way is not kept either). */
  forget(key: string): void {
    this.entries.delete(key);
  }
}

export function withDirectoryCache(store: Store, clock: Clock, options: DirectoryCacheOptions = {}): Store {
  const ttlMs = options.ttlMs ?? 1_000;
  const max = options.maxEntries ?? 10_000;
  const merchants = new ReadThrough<MerchantRecord>(clock, ttlMs, max, (k) => store.merchants.get(k));
  const applications = new ReadThrough<ApplicationRecord>(clock, ttlMs, max, (k) => store.applications.get(k));

  /** The repos of `r` with their merchant and application writes forgetting what they change (also into `touched`). */
  const forgetting = (r: StoreTx, touched?: { merchants: Set<string>; applications: Set<string> }): StoreTx => {
    const merchant = (no: string) => {
      merchants.forget(no);
      touched?.merchants.add(no);
    };
    const application = (id: string) => {
      applications.forget(id);
      touched?.applications.add(id);
    };
    /** Forgets before and after the write: a read in between may have seen the old row. */
    const around = async <R>(forget: () => void, write: () => Promise<R>): Promise<R> => {
      forget();
      try {
        return await write();
      } finally {
        forget();
      }
    };
    return {
      ...r,
      merchants: {
        ...r.merchants,
        insert: (m) => around(() => merchant(m.merchantNo), () => r.merchants.insert(m)),
        update: (no, patch, nowMs) => around(() => merchant(no), () => r.merchants.update(no, patch, nowMs)),
      },
      applications: {
        ...r.applications,
        insert: (a) => around(() => application(a.appId), () => r.applications.insert(a)),
        setMerchantKey: (id, pem, nowMs) => around(() => application(id), () => r.applications.setMerchantKey(id, pem, nowMs)),
        setStatus: (id, status, nowMs) => around(() => application(id), () => r.applications.setStatus(id, status, nowMs)),
      },
    };
  };

  const base = forgetting(store);
  return {
    ...base,
    merchants: { ...base.merchants, get: (no) => merchants.get(no) },
    applications: { ...base.applications, get: (id) => applications.get(id) },
    async transaction(fn) {
      const touched = { merchants: new Set<string>(), applications: new Set<string>() };
      try {
        return await store.transaction((tx) => fn(forgetting(tx, touched)));
      } finally {
        // A read between the write and the commit saw the old row: forget it once more.
        for (const no of touched.merchants) merchants.forget(no);
        for (const id of touched.applications) applications.forget(id);
      }
    },
  };
}
