// SIGTERM while the database has gone silent (its host powered off or cut off by a failover: no
// answer and no reset, so a query in flight waits for the ~15 minutes TCP takes to give up, and a
// new connection for minutes too). The workers' passes under way wait on it, and so did the
// shutdown: the process kept running after "shutting down", past any container runtime's grace
// period, without a word. It exits (1) after a deadline now, saying why.
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHUTDOWN_DEADLINE_MS } from '../src/cli/shutdown.js';
import { createTestDatabase, PG_BASE_URL, type TestDatabase } from './databases.js';
import { assertGatewayBuilt, freePort, isAlive, startGatewayProcess, stopProcess, waitHealthy, type GatewayProcess } from './processes.js';

/** A TCP proxy to PostgreSQL that can go silent: connections stay open, nothing passes either way. */
async function startSilenceableProxy(target: URL) {
  let silent = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.on('data', (d: Buffer) => void (silent || upstream.write(d)));
    upstream.on('data', (d: Buffer) => void (silent || client.write(d)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    silence: () => void (silent = true),
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe.skipIf(!PG_BASE_URL)('SIGTERM with the database silent (postgres)', () => {
  let db: TestDatabase;
  let proxy: Awaited<ReturnType<typeof startSilenceableProxy>>;
  let gw: GatewayProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'sparkpay-silent-db-'));

  beforeAll(async () => {
    assertGatewayBuilt();
    db = await createTestDatabase('postgres');
    proxy = await startSilenceableProxy(new URL(db.url));
  }, 60_000);
  afterAll(async () => {
    if (gw) await stopProcess(gw, 'SIGKILL');
    await proxy?.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('exits 1 within the shutdown deadline, saying what did not finish', async () => {
    const url = new URL(db.url);
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    gw = startGatewayProcess({ name: 'silent-db', port: await freePort(), env: { SPARKPAY_DATA_DIR: dir, SPARKPAY_DATABASE_URL: url.toString(), SPARKPAY_MASTER_KEY: '22'.repeat(32) } });
    await waitHealthy(gw, 30_000);
    proxy.silence();
    // The notification worker polls every second: its next pass waits on the silent database.
    await sleep(2_500);
    const exited = new Promise<number | null>((resolve) => gw!.proc.once('exit', (code) => resolve(code)));
    const started = performance.now();
    gw.proc.kill('SIGTERM');
    const code = await Promise.race([exited, sleep(SHUTDOWN_DEADLINE_MS + 8_000).then(() => 'still running' as const)]);
    // Was: 'still running' (for as long as the connections stay silent).
    expect(code, gw.output.join('')).toBe(1);
    expect(performance.now() - started).toBeGreaterThanOrEqual(SHUTDOWN_DEADLINE_MS - 1_000);
    expect(isAlive(gw)).toBe(false);
    expect(gw.output.join('')).toContain('shutdown did not finish within');
  }, 60_000);
});
