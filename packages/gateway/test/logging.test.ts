// Structured logs: one line per request with its request id, never keys or full signatures;
// an unexpected failure answers 50000 with a generic message and logs the detail under the
// same request id that the client received.
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASE_KINDS } from './databases.js';
import { CONSOLE_TOKEN, consoleClient } from './console-client.js';
import { api, ManualClock, orderBody, startTestGateway, TEST_MASTER_KEY, type TestGateway } from './harness.js';

describe('request logging', () => {
  let t: TestGateway;
  const lines: string[] = [];
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    t = await startTestGateway({ logger: pino({ level: 'trace' }, sink) });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('logs each request once with its request id and never a key or a full signature', async () => {
    const body = orderBody(t.merchant, t.clock, { notify_url: 'https://shop.example/notify' });
    const ok = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });
    expect(ok.json.code).toBe(0);
    const bad = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock, signBody: '{}' });
    expect(bad.json.code).toBe(40000);
    const unknown = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock, headers: { 'sparkpay-app-id': '999' } });
    expect(unknown.json.code).toBe(40002);

    const all = lines.join('\n');
    const requestLines = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request');
    for (const res of [ok, bad, unknown]) {
      const id = res.headers.get('sparkpay-request-id');
      expect(requestLines.filter((l) => l.reqId === id)).toHaveLength(1);
      // Neither the response signature nor the request's is anywhere in the log.
      const sig = res.headers.get('sparkpay-signature') as string;
      expect(all).not.toContain(sig.slice(0, 24));
    }
    expect(requestLines.find((l) => l.reqId === bad.headers.get('sparkpay-request-id'))).toMatchObject({ status: 401, code: 40000, path: '/v4/pay/cashier' });
    const privatePem = t.merchant.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const keyBody = privatePem.split('\n')[5] as string;
    expect(all).not.toContain(keyBody);
    expect(all).not.toContain(TEST_MASTER_KEY);
    expect(all).not.toMatch(/BEGIN (RSA )?PRIVATE KEY/);
    expect(all).not.toContain(String(ok.json.data?.cashier_url).split('?t=')[1]);
  });

  it('answers an internal failure with 50000 and logs the detail under the same request id', async () => {
    await t.gateway.db.kysely.schema.dropTable('order_options').execute();
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(t.merchant, t.clock), merchant: t.merchant, clock: t.clock });
    expect(res.status).toBe(500);
    expect(res.json).toEqual({ code: 50000, message: 'Internal system error; retry with the same parameters' });
    expect(res.signatureValid).toBe(true);
    const id = res.headers.get('sparkpay-request-id');
    const errorLine = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.reqId === id && l.level === 50);
    expect(errorLine?.msg).toBe('unexpected error');
    expect(JSON.stringify(errorLine)).toMatch(/order_options/);
  });
});

describe('RPC endpoint credentials', () => {
  it('never reach the log: the reader names an endpoint by its host, and what a library quotes of a URL is scrubbed', async () => {
    const { createLogger } = await import('../src/cli/gateway.js');
    const { evmChainReader } = await import('../src/adapters/chain/evm/chain-reader.js');
    const { mainnetDeployment } = await import('../src/domain/catalogue.js');
    // Nothing listens on port 9: every call fails, with the URL in the error.
    const urls = ['http://apiuser:s3cretpassword@127.0.0.1:9/v3/SECRETAPIKEY0123456789', 'http://127.0.0.1:9/rpc?apikey=OTHERSECRET0123'];
    const base = mainnetDeployment();
    const deployment = { networks: base.networks.map((n) => (n.id === '4' ? { ...n, chain: { ...n.chain, rpcUrls: urls } } : n)) };
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const logger = createLogger({ logLevel: 'info', deployment }, sink);
    const reader = evmChainReader(urls, { log: logger, timeoutMs: 2_000 });
    const failure = await reader.head().catch((err: unknown) => err as Error);
    expect(failure).toBeInstanceOf(Error);
    logger.error({ err: failure, urls }, 'worker tick failed');
    await new Promise((r) => setImmediate(r));
    const all = lines.join('\n');
    expect(lines.length).toBeGreaterThanOrEqual(3);
    for (const secret of ['s3cretpassword', 'apiuser', 'SECRETAPIKEY0123456789', 'OTHERSECRET0123']) expect(all).not.toContain(secret);
    expect(all).toContain('http://127.0.0.1:9/…');
  });
});

describe('start-up warnings', () => {
  it('warns about a relayer key file or a configuration file holding secrets that other users can read, naming the file and mode and nothing of the key', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const privateKey = `0x${'5e'.repeat(32)}` as const;
    const t = await startTestGateway({
      logger: pino({ level: 'warn' }, sink),
      config: {
        relayers: { '4': { privateKey, maxFeePerGas: 10n ** 12n, exposedFile: { path: '/etc/sparkpay/relayer-4.key', mode: '0644' } }, '3': { privateKey, maxFeePerGas: 10n ** 12n } },
        exposedSecrets: { path: '/etc/sparkpay/config.json', mode: '0644', settings: ['networks.2.relayer_key'] },
      },
    });
    await t.close();
    const warned = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => String(l.msg).startsWith('the relayer key file can be read by other users'));
    expect(warned).toEqual([expect.objectContaining({ level: 40, network: '4', file: '/etc/sparkpay/relayer-4.key', mode: '0644' })]);
    const config = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => String(l.msg).startsWith('the configuration file holds secrets (networks.2.relayer_key) and other users of this machine can read it'));
    expect(config).toEqual([expect.objectContaining({ level: 40, file: '/etc/sparkpay/config.json', mode: '0644' })]);
    expect(lines.join('\n')).not.toContain('5e5e5e5e');
  });
});

describe.each(DATABASE_KINDS.filter((k) => k === 'postgres'))('the clock check at start on %s', (kind) => {
  it("warns when the process's clock is off the database server's, and only then", async () => {
    const warnings = async (clock: ManualClock) => {
      const lines: string[] = [];
      const sink = new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(...chunk.toString().split('\n').filter(Boolean));
          done();
        },
      });
      const t = await startTestGateway({ kind, clock, logger: pino({ level: 'warn' }, sink) });
      await t.close();
      return lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => String(l.msg).startsWith("this process's clock differs from the database server's"));
    };
    const off = await warnings(new ManualClock(Date.now() - 60_000));
    expect(off).toHaveLength(1);
    expect(Number(off[0]!.skewMs)).toBeGreaterThan(55_000);
    // A clock that keeps time (the start takes a while on a busy machine).
    class LiveClock extends ManualClock {
      override nowMs() {
        return Date.now();
      }
    }
    expect(await warnings(new LiveClock())).toEqual([]);
  });
});

describe('the operator console', () => {
  it('logs sign-ins and pages by client and path, never the console token, the session cookie or its anti-forgery value', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const t = await startTestGateway({ logger: pino({ level: 'trace' }, sink), config: { consoleToken: CONSOLE_TOKEN } });
    try {
      const c = consoleClient(t.baseUrl);
      // A wrong token one character off, the right one, a page, a form, a failing page, sign-out.
      expect((await c.signIn(`${CONSOLE_TOKEN.slice(0, -1)}X`)).status).toBe(401);
      expect((await c.signIn()).status).toBe(303);
      const csrf = await c.csrf();
      expect((await c.post('/console/notifications/N000/resend', { csrf })).status).toBe(404);
      await t.gateway.db.kysely.schema.dropTable('chain_cursors').execute();
      expect((await c.get('/console')).status).toBe(500);
      expect((await c.post('/console/logout', { csrf })).status).toBe(303);

      const all = lines.join('\n');
      expect(all).toContain('console sign-in refused');
      expect(all).toContain('"path":"/console/login"');
      expect(all).not.toContain(CONSOLE_TOKEN.slice(0, -1));
      expect(all).not.toContain(c.cookie!.split('=')[1]!.split('.')[1]);
      expect(all).not.toContain(csrf);
    } finally {
      await t.close();
    }
  });
});
