// Group commit on SQLite: concurrent transactions share one commit, yet each one succeeds or
// fails alone, exactly as if it had run by itself.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../src/adapters/db/database.js';
import { createStore } from '../src/adapters/db/store.js';
import type { Store } from '../src/app/ports.js';
import { createTestDatabase, type TestDatabase } from './databases.js';

describe('SQLite group commit', () => {
  let tdb: TestDatabase;
  let db: Db;
  let store: Store;
  beforeAll(async () => {
    tdb = await createTestDatabase('sqlite');
    db = await openDatabase({ url: tdb.url });
    store = createStore(db);
  });
  afterAll(async () => {
    await db.close();
    await tdb.drop();
  });

  const nonces = async () => (await db.kysely.selectFrom('nonces').select('nonce').orderBy('nonce').execute()).map((r) => r.nonce);

  it('commits the units that succeed and rolls back only the one that throws', async () => {
    const results = await Promise.allSettled(
      ['a', 'b', 'c', 'd'].map((n) =>
        store.transaction(async (tx) => {
          await tx.nonces.remember('app', `${n}1`, 10_000, 0);
          await tx.nonces.remember('app', `${n}2`, 10_000, 0);
          if (n === 'b') throw new Error('unit b fails after writing');
          return n;
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason.message).toBe('unit b fails after writing');
    expect(await nonces()).toEqual(['a1', 'a2', 'c1', 'c2', 'd1', 'd2']);
  });

  it('lets a later unit of the batch see what an earlier one wrote, as serial execution would', async () => {
    const [first, second] = await Promise.all([
      store.transaction((tx) => tx.nonces.remember('app', 'shared', 10_000, 0)),
      store.transaction((tx) => tx.nonces.remember('app', 'shared', 10_000, 0)),
    ]);
    expect([first, second]).toEqual([true, false]);
  });

  it('resolves a transaction only once its writes are committed', async () => {
    await store.transaction((tx) => tx.nonces.remember('app', 'durable', 10_000, 0));
    // A second connection sees the row: it was committed, not just written in a batch.
    const other = await openDatabase({ url: tdb.url, migrate: false });
    try {
      const row = await other.kysely.selectFrom('nonces').selectAll().where('nonce', '=', 'durable').executeTakeFirst();
      expect(row?.app_id).toBe('app');
    } finally {
      await other.close();
    }
  });
});
