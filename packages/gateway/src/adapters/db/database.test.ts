import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { openDatabase } from './database.js';
import { MIGRATIONS } from './migrations.js';

describe('openDatabase', () => {
  it('names a database it cannot reach by its description, never its password, and says it could not be used', async () => {
    // Nothing listens on port 1.
    const err = await openDatabase({ url: 'postgres://shop:s3cretpw@127.0.0.1:1/payments' }).then(
      () => new Error('opened'),
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/^cannot use the database postgres:127\.0\.0\.1:1\/payments: connect ECONNREFUSED/);
    expect(err.message).not.toContain('s3cretpw');
    expect(err.message).not.toContain('migration');
  });

  // A database host gone silent (it takes the connection and never answers): the attempt held
  // the start, and every worker waiting for a connection, until TCP gave up (a review of operations).
  it('gives up on a PostgreSQL server that takes the connection and never answers, after 10 s', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const { port } = silent.address() as AddressInfo;
    const started = Date.now();
    try {
      const err = await openDatabase({ url: `postgres://shop@127.0.0.1:${port}/payments` }).then(
        () => new Error('opened'),
        (e: unknown) => e as Error,
      );
      expect(err.message).toMatch(new RegExp(`^cannot use the database postgres:127\\.0\\.0\\.1:${port}/payments: .*timeout`, 'i'));
      expect(Date.now() - started).toBeGreaterThanOrEqual(9_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  }, 30_000);

  it('lets processes starting at the same moment on a new SQLite file upgrade it once: the others wait and find it done', async () => {
    // The built module, in separate processes (as two gateways, or a gateway and the CLI, are).
    const built = pathToFileURL(resolve(import.meta.dirname, '../../../dist/adapters/db/database.js')).href;
    // Each process loads the module, then waits for the same moment to open the file.
    const script = `const { openDatabase } = await import(${JSON.stringify(built)});
await new Promise((r) => setTimeout(r, Number(process.argv[2]) - Date.now()));
const db = await openDatabase({ url: process.argv[1] });
const rows = await db.kysely.selectFrom('kysely_migration').select('name').execute();
await db.close();
console.log(rows.length);`;
    const dir = mkdtempSync(join(tmpdir(), 'sparkpay-migrate-'));
    try {
      for (let round = 0; round < 3; round++) {
        const file = join(dir, `gateway-${round}.db`);
        const at = String(Date.now() + 1_500);
        const runs = await Promise.allSettled([1, 2, 3].map(() => promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, file, at])));
        // Before, one of three often failed: "database migration 0001_init failed: table "merchants" already exists".
        expect(runs.map((r) => (r.status === 'fulfilled' ? r.value.stdout.trim() : String(r.reason)))).toEqual(Array(3).fill(String(Object.keys(MIGRATIONS).length)));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
