// The console's lists are pages of 50 read by an index in the order shown: never every order of a
// merchant or of a status (or every failed notification) sorted to show the newest 50. Checked
// on the plans the databases make for the queries the console sends, on empty tables (SQLite
// without ANALYZE, as the gateway runs it; PostgreSQL with sorting priced out, so that an index
// in the right order is taken whenever there is one).
import { CompiledQuery, type KyselyPlugin, type RootOperationNode } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../src/adapters/db/database.js';
import { operatorReads } from '../src/adapters/db/operator-reads.js';
import type { OperatorReads } from '../src/app/ports.js';
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from './databases.js';

describe.each(DATABASE_KINDS)("the console's lists on %s", (kind) => {
  let tdb: TestDatabase;
  let db: Db;
  let reads: OperatorReads;
  let sent: RootOperationNode[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase(kind);
    db = await openDatabase({ url: tdb.url });
    // Keeps the query each read sends, to ask the database how it would run it.
    const keep: KyselyPlugin = {
      transformQuery: ({ node }) => {
        sent.push(node);
        return node;
      },
      transformResult: async ({ result }) => result,
    };
    reads = operatorReads(db.kysely.withPlugin(keep));
  });
  afterAll(async () => {
    await db?.close();
    await tdb?.drop();
  });

  /** The plan of the one query `read` sends, one line per step. */
  async function planOf(read: () => Promise<unknown>): Promise<string> {
    sent = [];
    await read();
    expect(sent).toHaveLength(1);
    const compiled = db.kysely.getExecutor().compileQuery(sent[0]!, { queryId: 'plan' });
    return db.kysely.connection().execute(async (conn) => {
      if (kind === 'sqlite') {
        const r = await conn.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${compiled.sql}`, [...compiled.parameters]));
        return r.rows.map((row) => row.detail).join('\n');
      }
      await conn.executeQuery(CompiledQuery.raw('set enable_sort = off'));
      try {
        const r = await conn.executeQuery<{ 'QUERY PLAN': string }>(CompiledQuery.raw(`explain ${compiled.sql}`, [...compiled.parameters]));
        return r.rows.map((row) => row['QUERY PLAN']).join('\n');
      } finally {
        await conn.executeQuery(CompiledQuery.raw('reset enable_sort'));
      }
    });
  }

  /** Whether the plan sorts the rows it found (a sort of the ties within an index's order is bounded work, and allowed). */
  const sorts = (plan: string) => (kind === 'sqlite' ? /TEMP B-TREE FOR ORDER BY/.test(plan) : /(^|->\s+)Sort\b/m.test(plan));
  /** Whether the plan finds the rows by `column` in an index (not by reading others and dropping them). */
  const seeks = (plan: string, column: string) => (kind === 'sqlite' ? new RegExp(`\\(${column}=\\?`).test(plan) : new RegExp(`Index Cond: .*${column} =`).test(plan));

  it('pages the newest orders by the primary key', async () => {
    const plan = await planOf(() => reads.recentOrders({ before: 'P20261125120000' }, 51));
    expect(sorts(plan), plan).toBe(false);
  });

  it("pages a merchant's orders by an index of its orders in order", async () => {
    for (const before of [undefined, 'P20261125120000']) {
      const plan = await planOf(() => reads.recentOrders({ merchantNo: 'M000000000001', ...(before ? { before } : {}) }, 51));
      expect(sorts(plan), plan).toBe(false);
      expect(seeks(plan, 'merchant_no'), plan).toBe(true);
    }
  });

  it('pages the orders of a status by an index of them in order', async () => {
    for (const before of [undefined, 'P20261125120000']) {
      const plan = await planOf(() => reads.recentOrders({ status: 'CLOSED', ...(before ? { before } : {}) }, 51));
      expect(sorts(plan), plan).toBe(false);
      expect(seeks(plan, 'pay_status'), plan).toBe(true);
    }
    const both = await planOf(() => reads.recentOrders({ merchantNo: 'M000000000001', status: 'CLOSED' }, 51));
    expect(sorts(both), both).toBe(false);
  });

  it('lists the newest failed notifications by the index of notifications by status, each with its last attempt by primary key', async () => {
    const plan = await planOf(() => reads.failedNotifications(50));
    expect(sorts(plan), plan).toBe(false);
    expect(seeks(plan, 'status'), plan).toBe(true);
    // One attempt per notification listed, found by its primary key (notify_id, attempt_no): never the attempt log read whole.
    expect(plan, plan).toMatch(kind === 'sqlite' ? /SEARCH .*notification_attempts.* \(notify_id=\? AND attempt_no=\?\)/ : /Index Scan using notification_attempts_pk[^\n]*\n\s*Index Cond: .*notify_id = .*attempt_no = /);
  });

  it("finds a merchant's order by its request_no by the unique index of request numbers", async () => {
    const plan = await planOf(() => reads.orderNoByRequest('M000000000001', 'shop_order_1'));
    expect(seeks(plan, 'merchant_no'), plan).toBe(true);
    // PostgreSQL prices the unique index and orders_merchant_recent alike on empty tables; with
    // statistics, equality on both of the unique index's columns is one row (the API's query by
    // request_no, findByRequest, is the same).
    if (kind === 'sqlite') expect(plan, plan).toMatch(/\(merchant_no=\? AND request_no_key=\?\)/);
  });
});
