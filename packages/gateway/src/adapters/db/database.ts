// Opens the one Kysely code path on SQLite (embedded default) or PostgreSQL.
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import SqliteDatabase from 'better-sqlite3';
import { CompiledQuery, Kysely, sql, PostgresDialect, SqliteAdapter, SqliteDialect, SqliteDriver, type DatabaseConnection, type DialectAdapter, type Driver, type SqliteDialectConfig } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';
import { migrateToLatest } from './migrations.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Db {
  readonly kysely: Kysely<Database>;
  readonly dialect: Dialect;
  /** Where the data lives, without credentials (for logs and `--json` output). */
  readonly description: string;
  /** Whether the database answers now (GET /healthz): within 2 s, without waiting for a busy pool. */
  answers(): Promise<boolean>;
  close(): Promise<void>;
}

/** How long `answers` waits for `select 1`. */
const ANSWER_TIMEOUT_MS = 2_000;

/** Whether `select 1` answers within ANSWER_TIMEOUT_MS. */
async function selectOne(kysely: Kysely<Database>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ANSWER_TIMEOUT_MS)));
  try {
    return await Promise.race([sql`select 1`.execute(kysely).then(() => true, () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface OpenOptions {
  /** `postgres://…` selects PostgreSQL; anything else is a SQLite file path (or `:memory:`). */
  url: string;
  migrate?: boolean;
  poolSize?: number;
  /**
   * SQLite: checkpoint the WAL from a worker thread instead of on the request path (a checkpoint
   * fsyncs the database file and would stall the event loop for milliseconds). For servers.
   */
  backgroundCheckpoints?: boolean;
}

const INT8_OID = 20;

export async function openDatabase(options: OpenOptions): Promise<Db> {
  const db = isPostgresUrl(options.url)
    ? openPostgres(options.url, options.poolSize ?? 10)
    : openSqlite(options.url, options.backgroundCheckpoints === true);
  if (options.migrate !== false) {
    try {
      // Named by its description (never the password) when it cannot be reached at all.
      await migrateToLatest(db.kysely as Kysely<unknown>, `the database ${db.description}`);
    } catch (err) {
      await db.close().catch(() => undefined);
      throw err;
    }
  }
  return db;
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

function openSqlite(path: string, backgroundCheckpoints: boolean): Db {
  if (path !== ':memory:') {
    // The data directory and a new database are the owner's only (0700, 0600: SQLite gives its
    // -wal and -shm files the database's mode): the database holds the sealed platform keys,
    // the merchants and their orders. An existing file keeps the mode its operator gave it.
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    try {
      closeSync(openSync(path, 'wx', 0o600));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const sqlite = new SqliteDatabase(path);
  sqlite.pragma('busy_timeout = 5000');
  // WAL lets the CLI read and write while the server runs; NORMAL sync is durable
  // across process crashes (the WAL is fsynced at checkpoints).
  toWal(sqlite);
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  // 32 MiB of page cache (default 2 MiB): the random-key indexes (request_no, nonces) stay in
  // memory, which measured ~25 % more order creations per second in the benchmark.
  sqlite.pragma('cache_size = -32768');
  const checkpointer = backgroundCheckpoints && path !== ':memory:' ? startCheckpointer(path) : null;
  // With the worker, automatic checkpoints only remain as a safety net for a large WAL.
  if (checkpointer) sqlite.pragma('wal_autocheckpoint = 20000');
  const kysely = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: cachingStatements(sqlite) }) });
  return {
    kysely,
    dialect: 'sqlite',
    description: `sqlite:${path}`,
    answers: () => selectOne(kysely),
    close: async () => {
      await kysely.destroy();
      await checkpointer?.stop();
    },
  };
}

/** How long a start waits for another process's switch of a new file to WAL (ms). */
const WAL_SWITCH_WAIT_MS = 5_000;

/**
 * Puts the file in WAL mode. Switching a new file takes its lock without the busy handler: another
 * process opening the same new file at that moment (two gateways, or one and the CLI) was refused
 * at once (SQLITE_BUSY). It is asked again, a few milliseconds apart, for a few seconds.
 */
function toWal(sqlite: SqliteDatabase.Database): void {
  const until = Date.now() + WAL_SWITCH_WAIT_MS;
  for (;;) {
    try {
      sqlite.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'SQLITE_BUSY' || Date.now() >= until) throw err;
      // A start, once: the thread may wait.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}

/**
 * Transactions begin IMMEDIATE: they take the write lock at BEGIN, waiting (busy_timeout) while
 * another process holds it. Kysely's plain BEGIN is deferred: a transaction that reads first and
 * then writes while another process (the CLI, a second server) holds the write lock fails at once
 * with SQLITE_BUSY (or SQLITE_BUSY_SNAPSHOT if that process committed meanwhile) - SQLite does not
 * call the busy handler when upgrading a read transaction, as waiting could deadlock.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

/**
 * SQLite's DDL is transactional, but Kysely's SQLite adapter says it is not, so its Migrator ran
 * each statement of a migration on its own: a process killed (or a statement failing) half-way
 * through an upgrade left a migration half-applied and unrecorded, and every later start failed
 * re-running it ("table … already exists"). Saying it is makes the Migrator run all pending
 * migrations with their records in one transaction, as on PostgreSQL: an upgrade is applied whole
 * or not at all. The transaction begins IMMEDIATE (the driver below), so a second process starting
 * at the same moment waits for the first one's upgrade instead of running the same migrations.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  private readonly driverConfig: SqliteDialectConfig;
  constructor(config: SqliteDialectConfig) {
    super(config);
    this.driverConfig = config;
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.driverConfig);
  }
  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

const MAX_CACHED_STATEMENTS = 500;

/**
 * Kysely prepares every query anew; preparing costs more than running our small statements.
 * The same SQL text reuses its prepared statement (the connection runs one query at a time).
 */
function cachingStatements(sqlite: SqliteDatabase.Database): SqliteDialectDatabase {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(sql: string) {
      let stmt = cache.get(sql);
      if (!stmt) {
        if (cache.size >= MAX_CACHED_STATEMENTS) cache.clear();
        stmt = sqlite.prepare(sql);
        cache.set(sql, stmt);
      }
      return stmt;
    },
  };
}

type SqliteDialectDatabase = ConstructorParameters<typeof SqliteDialect>[0]['database'] & object;

const CHECKPOINT_WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 5000');
const timer = setInterval(() => {
  try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {}
}, workerData.intervalMs);
parentPort.on('message', () => { clearInterval(timer); db.close(); parentPort.close(); });
`;

/**
 * Frequent small checkpoints: rare large ones stalled the request path for hundreds of ms (every
 * 500 ms: p99 at 80 % load 97–827 ms on the benchmark's virtual disk; every 50 ms: 37–62 ms). A
 * checkpoint with nothing new in the WAL does nothing.
 */
function startCheckpointer(path: string, intervalMs = 50): { stop(): Promise<void> } {
  const worker = new Worker(CHECKPOINT_WORKER, {
    eval: true,
    workerData: { module: createRequire(import.meta.url).resolve('better-sqlite3'), path, intervalMs },
  });
  worker.unref();
  let exited = false;
  worker.once('exit', () => (exited = true));
  // A failed checkpointer is not fatal: SQLite's own automatic checkpoint still bounds the WAL.
  worker.on('error', () => undefined);
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        if (exited) return resolve();
        // Whoever awaits the stop keeps the process alive until the worker has closed its
        // connection (an unref'd worker would let a top-level `await close()` end the process).
        worker.ref();
        const timer = setTimeout(() => void worker.terminate(), 2000);
        worker.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        worker.postMessage('stop');
      }),
  };
}

/** How long a PostgreSQL session may sit idle inside a transaction before the server ends it (ms). */
const IDLE_IN_TRANSACTION_MS = 60_000;

function openPostgres(url: string, max: number): Db {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    // A database host that went silent (no answer, no reset) must not hold a connection attempt
    // for the kernel's SYN timeout, nor an open connection until TCP gives up unprobed.
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // A transaction waits on nothing but the database (nothing is called out inside one), so
    // one idle this long belongs to a process that stopped (paused, frozen, cut off without a
    // reset): the server ends it and frees its row locks, which otherwise held every other
    // instance's workers on those rows until TCP gave up (never, for a paused process).
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
    // pg_stat_activity names the process (several instances share the database), unless the URL does.
    ...(hasUrlParam(url, 'application_name') ? {} : { application_name: `sparkpay ${hostname()}/${process.pid}`.slice(0, 63) }),
    // int8 columns hold Unix times and counters, all far below 2^53.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // A client losing its connection must not crash the process: an idle one is reported to the
  // pool ('error', replaced), one in use to itself as well as to its query, which rejects (an
  // 'error' event nobody listens to would be thrown: a database restart with a query in flight
  // used to end the gateway). The pool then opens new connections.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  // When a connection last came back from a query without an error (a database at work).
  let lastGoodRelease = -Infinity;
  pool.on('release', (err: Error | undefined) => {
    if (!err) lastGoodRelease = performance.now();
  });
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const safe = new URL(url);
  safe.password = '';
  return {
    kysely,
    dialect: 'postgres',
    description: `postgres:${safe.host}${safe.pathname}`,
    // Every connection busy is a database at work, as long as they keep coming back healthy: a
    // probe would wait in line behind the load and call a busy database down.
    answers: async () => (pool.idleCount === 0 && pool.totalCount >= max ? performance.now() - lastGoodRelease < 10_000 : selectOne(kysely)),
    close: () => kysely.destroy(),
  };
}

/** True when an insert failed on a primary key or unique constraint, on either database. */
/**
 * Whether a unique violation is on the orders' primary key (payment_order_no) rather than on
 * another unique constraint (the merchant's request_no): PostgreSQL names the constraint, SQLite
 * the columns.
 */
export function isOrderNumberViolation(err: unknown): boolean {
  if (!isUniqueViolation(err)) return false;
  const e = err as { constraint?: unknown; message?: unknown };
  return e.constraint === 'orders_pkey' || (typeof e.message === 'string' && /\borders\.payment_order_no\b/.test(e.message));
}

export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  return e.code === '23505' || e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

function hasUrlParam(url: string, name: string): boolean {
  try {
    return new URL(url).searchParams.has(name);
  } catch {
    return false;
  }
}
