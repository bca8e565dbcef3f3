// Opens the one Kysely code path on SQLite (embedded default) or PostgreSQL.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';
import { migrateToLatest } from './migrations.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Db {
  readonly kysely: Kysely<Database>;
  readonly dialect: Dialect;
  /** Where the data lives, without credentials (for logs and `--json` output). */
  readonly description: string;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** `postgres://…` selects PostgreSQL; anything else is a SQLite file path (or `:memory:`). */
  url: string;
  migrate?: boolean;
  poolSize?: number;
}

const INT8_OID = 20;

export async function openDatabase(options: OpenOptions): Promise<Db> {
  const db = isPostgresUrl(options.url) ? openPostgres(options.url, options.poolSize ?? 10) : openSqlite(options.url);
  if (options.migrate !== false) {
    try {
      await migrateToLatest(db.kysely as Kysely<unknown>);
    } catch (err) {
      await db.close();
      throw err;
    }
  }
  return db;
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

function openSqlite(path: string): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const sqlite = new SqliteDatabase(path);
  // WAL lets the CLI read and write while the server runs; NORMAL sync is durable
  // across process crashes (the WAL is fsynced at checkpoints).
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  const kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  return { kysely, dialect: 'sqlite', description: `sqlite:${path}`, close: () => kysely.destroy() };
}

function openPostgres(url: string, max: number): Db {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    // int8 columns hold Unix times and counters, all far below 2^53.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const safe = new URL(url);
  safe.password = '';
  return { kysely, dialect: 'postgres', description: `postgres:${safe.host}${safe.pathname}`, close: () => kysely.destroy() };
}

/** True when an insert failed on a primary key or unique constraint, on either database. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  return e.code === '23505' || e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
