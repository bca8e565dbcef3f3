// The database out of reach while the gateway runs (PostgreSQL behind a TCP proxy the test cuts):
// GET /healthz says so (503) so a load balancer takes the instance out of rotation, /metrics
// says so (sparkpay_database_up 0, the caught-up age goes on growing), and an API request gets
// the documented 50000, signed as every /v4/ answer is (an unsigned 500 made the SDK report a
// forged answer); a query in flight as the connection drops fails without ending the process.
// Once the database answers again, everything does.
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, PG_BASE_URL, type TestDatabase } from './databases.js';
import { api, orderBody, startTestGateway, type TestGateway } from './harness.js';

/** A TCP proxy to the PostgreSQL server that can be cut (every connection dropped, none accepted) and restored on the same port. */
async function startCuttableProxy(target: URL) {
  const sockets = new Set<Socket>();
  let port = 0;
  let server: Server | null = null;
  const listen = async () => {
    server = createServer((client) => {
      const upstream = connect(Number(target.port || 5432), target.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
    port = (server!.address() as AddressInfo).port;
  };
  await listen();
  return {
    get port() {
      return port;
    },
    async cut() {
      const s = server!;
      server = null;
      for (const sock of sockets) sock.destroy();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    restore: listen,
    async close() {
      for (const sock of sockets) sock.destroy();
      if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
    },
  };
}

describe.skipIf(!PG_BASE_URL)('the database out of reach (postgres)', () => {
  let db: TestDatabase;
  let proxy: Awaited<ReturnType<typeof startCuttableProxy>>;
  let t: TestGateway;

  beforeAll(async () => {
    db = await createTestDatabase('postgres');
    const url = new URL(db.url);
    proxy = await startCuttableProxy(new URL(db.url));
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    t = await startTestGateway({ kind: 'postgres', config: { databaseUrl: url.toString() } });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await proxy?.close();
    await db?.drop();
  });

  const create = () => api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(t.merchant, t.clock), merchant: t.merchant, clock: t.clock });
  const metric = async (name: string) => {
    const page = await (await fetch(`${t.baseUrl}/metrics`)).text();
    const line = page.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line === undefined ? undefined : Number(line.split(' ').pop());
  };

  it('answers 200 on /healthz while every pooled connection is busy with work (a probe in line behind it would call the database down)', async () => {
    expect((await create()).json.code).toBe(0);
    // Ten connections (the pool's size) busy for 3 s.
    const busy = Array.from({ length: 10 }, () => sql`select pg_sleep(3)`.execute(t.gateway.db.kysely));
    await new Promise((r) => setTimeout(r, 300));
    const health = await fetch(`${t.baseUrl}/healthz`);
    expect({ status: health.status, body: await health.json() }).toEqual({ status: 200, body: { status: 'ok' } });
    await Promise.all(busy);
  });

  it('says so on /healthz and /metrics, answers a signed 50000, and recovers', async () => {
    expect((await create()).json.code).toBe(0);
    expect(await (await fetch(`${t.baseUrl}/healthz`)).json()).toEqual({ status: 'ok' });
    expect(await metric('sparkpay_database_up')).toBe(1);

    // A query in flight as the connection drops rejects; the process goes on (an 'error' event of
    // the client in use nobody listened to used to be thrown, ending the gateway).
    const inFlight = sql`select pg_sleep(2)`.execute(t.gateway.db.kysely).then(
      () => 'answered',
      (err: Error) => err.message,
    );
    await new Promise((r) => setTimeout(r, 200));
    await proxy.cut();
    expect(await inFlight).toMatch(/Connection terminated/);
    // Past every cache of this process (applications 1 s, signing keys 5 s).
    t.clock.advance(10);
    const health = await fetch(`${t.baseUrl}/healthz`);
    expect({ status: health.status, body: await health.json() }).toEqual({ status: 503, body: { status: 'database unavailable' } });
    expect(await metric('sparkpay_database_up')).toBe(0);
    const refused = await create();
    expect({ status: refused.status, code: refused.json.code }).toEqual({ status: 500, code: 50000 });
    expect(refused.signatureValid).toBe(true);
    expect(refused.headers.get('sparkpay-serial')).toBe(t.merchant.serial);

    await proxy.restore();
    const back = Date.now() + 15_000;
    while ((await fetch(`${t.baseUrl}/healthz`)).status !== 200) {
      if (Date.now() > back) throw new Error('the gateway did not see the database again');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await create()).json.code).toBe(0);
    expect(await metric('sparkpay_database_up')).toBe(1);
  });
});
