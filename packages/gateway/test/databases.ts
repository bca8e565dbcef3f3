// The databases every store and API test runs on: a fresh SQLite file always, and a fresh
// PostgreSQL database when SPARKPAY_TEST_DATABASE_URL is set (CI sets it).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface TestDatabase {
  kind: 'sqlite' | 'postgres';
  url: string;
  drop(): Promise<void>;
}

export type DatabaseKind = TestDatabase['kind'];

export const PG_BASE_URL = process.env.SPARKPAY_TEST_DATABASE_URL;

/** The kinds to run on in this test run. */
export const DATABASE_KINDS: DatabaseKind[] = PG_BASE_URL ? ['sqlite', 'postgres'] : ['sqlite'];

export async function createTestDatabase(kind: DatabaseKind): Promise<TestDatabase> {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'sparkpay-db-'));
    return { kind, url: join(dir, 'sparkpay.db'), drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  if (!PG_BASE_URL) throw new Error('SPARKPAY_TEST_DATABASE_URL is not set');
  const name = `sparkpay_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_BASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(PG_BASE_URL);
  url.pathname = `/${name}`;
  return {
    kind,
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: PG_BASE_URL });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
