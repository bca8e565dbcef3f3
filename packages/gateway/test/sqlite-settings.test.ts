// The SQLite file the gateway opens: WAL, and the page size of a database it creates (an existing
// database keeps its own).
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, SQLITE_PAGE_SIZE } from '../src/adapters/db/database.js';
import { createTestDatabase, type TestDatabase } from './databases.js';

const pragma = (path: string, name: string) => {
  const raw = new Database(path, { readonly: true });
  try {
    return raw.pragma(name, { simple: true });
  } finally {
    raw.close();
  }
};

describe('SQLite settings', () => {
  let tdb: TestDatabase | null = null;
  afterEach(async () => {
    await tdb?.drop();
    tdb = null;
  });

  it('creates a new database in WAL mode with 16 KiB pages', async () => {
    tdb = await createTestDatabase('sqlite');
    const db = await openDatabase({ url: tdb.url });
    await db.close();
    expect(SQLITE_PAGE_SIZE).toBe(16_384);
    expect(pragma(tdb.url, 'page_size')).toBe(SQLITE_PAGE_SIZE);
    expect(pragma(tdb.url, 'journal_mode')).toBe('wal');
  });

  it('keeps the page size of a database created before, and its data', async () => {
    tdb = await createTestDatabase('sqlite');
    const old = new Database(tdb.url);
    old.pragma('page_size = 4096');
    old.pragma('journal_mode = WAL');
    old.exec('create table kept (v text)');
    old.prepare('insert into kept values (?)').run('still here');
    old.close();
    const db = await openDatabase({ url: tdb.url });
    await db.close();
    expect(pragma(tdb.url, 'page_size')).toBe(4096);
    const raw = new Database(tdb.url, { readonly: true });
    expect(raw.prepare('select v from kept').pluck().get()).toBe('still here');
    raw.close();
  });
});
