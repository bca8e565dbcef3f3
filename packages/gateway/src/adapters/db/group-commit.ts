// Group commit for SQLite. Every commit appends each page it touched to the WAL, and on a
// virtual disk those writes are what stalls the event loop (p99 latency). Transactions that
// arrive in the same turn of the event loop run one after another inside ONE SQLite
// transaction, each in its own savepoint: a unit that throws rolls back to its savepoint and
// rejects alone; the others commit together, and none resolves before the commit. Under low
// load a batch holds one unit and this is an ordinary transaction. PostgreSQL, with a
// connection per transaction, does not need it.
import type { ControlledTransaction, Kysely, Transaction } from 'kysely';
import type { Database } from './schema.js';

const MAX_BATCH = 64;

interface Unit {
  fn: (trx: Transaction<Database>) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export class GroupCommit {
  private queue: Unit[] = [];
  private running = false;

  constructor(private readonly kysely: Kysely<Database>) {}

  run<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.running) {
        this.running = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      await this.commitBatch(this.queue.splice(0, MAX_BATCH));
    }
    this.running = false;
  }

  private async commitBatch(batch: Unit[]): Promise<void> {
    if (batch.length === 1) return this.commitAlone(batch[0]!);
    const outcomes: { ok: boolean; value: unknown }[] = [];
    let trx: ControlledTransaction<Database> | null = null;
    try {
      trx = await this.kysely.startTransaction().execute();
      for (const [i, unit] of batch.entries()) {
        const name: string = `unit${i}`;
        const sp = await trx.savepoint(name).execute();
        try {
          const value = await unit.fn(sp);
          await sp.releaseSavepoint(name).execute();
          outcomes.push({ ok: true, value });
        } catch (err) {
          await sp.rollbackToSavepoint(name).execute();
          await sp.releaseSavepoint(name).execute();
          outcomes.push({ ok: false, value: err });
        }
      }
      await trx.commit().execute();
    } catch (err) {
      // The batch itself failed (BEGIN, a savepoint or COMMIT): nothing of it is stored.
      if (trx) await trx.rollback().execute().catch(() => undefined);
      for (const unit of batch) unit.reject(err);
      return;
    }
    batch.forEach((unit, i) => {
      const o = outcomes[i]!;
      if (o.ok) unit.resolve(o.value);
      else unit.reject(o.value);
    });
  }

  /** A batch of one is an ordinary transaction: no savepoint to set and release. */
  private async commitAlone(unit: Unit): Promise<void> {
    let trx: ControlledTransaction<Database>;
    try {
      trx = await this.kysely.startTransaction().execute();
    } catch (err) {
      unit.reject(err);
      return;
    }
    let value: unknown;
    try {
      value = await unit.fn(trx);
      await trx.commit().execute();
    } catch (err) {
      await trx.rollback().execute().catch(() => undefined);
      unit.reject(err);
      return;
    }
    unit.resolve(value);
  }
}
