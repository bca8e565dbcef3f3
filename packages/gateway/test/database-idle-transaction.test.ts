// A transaction never waits on anything but the database (ARCHITECTURE: never call out inside a
// transaction), so one whose connection sits idle is held by a process that stopped: paused,
// frozen with its VM, or cut off without a reset. Its row locks held every other instance's
// workers that touch those rows (a claim, a scan pass, a settlement) until TCP gave up, hours
// later with the server's default keepalive, or never for a paused process, whose kernel still
// answers the probes. PostgreSQL ends such a session after a minute now, which frees its locks.
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../src/adapters/db/database.js';
import { createTestDatabase, PG_BASE_URL, type TestDatabase } from './databases.js';

describe.skipIf(!PG_BASE_URL)('the PostgreSQL sessions of the gateway', () => {
  let database: TestDatabase;
  let db: Db;
  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    db = await openDatabase({ url: database.url });
  });
  afterAll(async () => {
    await db?.close();
    await database?.drop();
  });

  it('end a transaction left idle for a minute (its locks are not held for ever by a process that stopped)', async () => {
    const { rows } = await sql<{ idle_in_transaction_session_timeout: string }>`show idle_in_transaction_session_timeout`.execute(db.kysely);
    expect(rows[0]?.idle_in_transaction_session_timeout).toBe('1min');
  });
});
