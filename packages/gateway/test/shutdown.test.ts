// Closing what was opened finishes even when nothing else keeps the process alive: a script
// whose last step is a top-level `await gateway.close()` exits 0 after it, instead of Node
// ending the process mid-close (exit code 13, "unsettled top-level await").
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { orderBody, prepare, responseSignedBy, startTestGateway, type TestGateway } from './harness.js';

const run = promisify(execFile);
const DIST = resolve(import.meta.dirname, '../dist');
const dir = mkdtempSync(join(tmpdir(), 'sparkpay-shutdown-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('shutdown', () => {
  it('a gateway created and closed without listening closes completely', async () => {
    const script = `
      import { loadConfig } from ${JSON.stringify(join(DIST, 'cli/config.js'))};
      import { createGateway } from ${JSON.stringify(join(DIST, 'cli/gateway.js'))};
      const config = loadConfig('production', { SPARKPAY_DATA_DIR: ${JSON.stringify(join(dir, 'data'))}, SPARKPAY_MASTER_KEY: '11'.repeat(32) });
      const gateway = await createGateway({ config: { ...config, logLevel: 'silent' } });
      await gateway.close();
      process.stdout.write('closed');
    `;
    const r = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 });
    expect(r.stdout).toBe('closed');
  });
});

// A request that reaches a gateway while it closes (the next request on a connection whose
// request was in flight when the close began) was answered with Fastify's own 503, unsigned: a
// merchant's SDK took it for a forgery, not for a retry. It is served as usual, and the
// connection closed after it.
describe('a request arriving while the gateway closes', () => {
  const started: TestGateway[] = [];
  afterAll(async () => {
    // Each gateway is closed by its test; closing again drops its database and data directory.
    for (const t of started) await t.close();
  });

  /** A signed order creation as raw bytes: its head and its body. */
  const rawCreation = (gw: TestGateway) => {
    const { headers, body: bytes } = prepare({ path: '/v4/pay/cashier', body: orderBody(gw.merchant, gw.clock), merchant: gw.merchant, clock: gw.clock });
    const payload = Buffer.from(bytes);
    const head = [`POST /v4/pay/cashier HTTP/1.1`, `host: 127.0.0.1`, `content-length: ${payload.length}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)].join('\r\n');
    return { head: `${head}\r\n\r\n`, payload };
  };

  /**
   * The answers on one connection to: an order creation in flight (half its body sent) when the
   * gateway's close begins (the close waits for it), then `next`, sent right behind the rest of it.
   */
  async function duringClose(next: (gw: TestGateway) => Buffer) {
    const gw = await startTestGateway({ kind: 'sqlite' });
    started.push(gw);
    const first = rawCreation(gw);
    const { port } = new URL(gw.baseUrl);
    const chunks: Buffer[] = [];
    const socket = connect(Number(port), '127.0.0.1');
    const ended = new Promise<string>((resolve, reject) => {
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      socket.on('error', reject);
    });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(first.head);
    socket.write(first.payload.subarray(0, 10));
    await sleep(300);
    const closing = gw.gateway.close();
    await sleep(300);
    socket.write(Buffer.concat([first.payload.subarray(10), next(gw)]));
    const text = await ended;
    await closing;
    return text.split(/(?=HTTP\/1\.1 )/).map((a) => {
      const headEnd = a.indexOf('\r\n\r\n');
      const lines = a.slice(0, headEnd).split('\r\n');
      const headers = new Headers(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()] as [string, string]));
      const body = a.slice(headEnd + 4);
      return { status: lines[0], connection: headers.get('connection'), signed: responseSignedBy(gw.merchant.platformPublicKey, { headers, text: body }), body: JSON.parse(body) as Record<string, unknown> };
    });
  }

  it('is answered as usual, signed, and its connection closed', async () => {
    const answers = await duringClose((gw) => {
      const second = rawCreation(gw);
      return Buffer.concat([Buffer.from(second.head), second.payload]);
    });
    expect(answers).toHaveLength(2);
    expect(answers[0]).toMatchObject({ status: 'HTTP/1.1 200 OK', signed: true, body: { code: 0 } });
    // Was: `HTTP/1.1 503 Service Unavailable`, unsigned.
    expect(answers[1]).toMatchObject({ status: 'HTTP/1.1 200 OK', connection: 'close', signed: true, body: { code: 0 } });
  });

  // A review of operations: it said "starting", which sends an operator looking at the wrong end.
  it('/healthz says the gateway is stopping', async () => {
    const answers = await duringClose(() => Buffer.from('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n'));
    expect(answers[1]).toMatchObject({ status: 'HTTP/1.1 503 Service Unavailable', connection: 'close', body: { status: 'stopping' } });
  });
});
