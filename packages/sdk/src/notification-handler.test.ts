// createNotificationHandler behind real servers on 127.0.0.1: node:http, Express (with and without
// body parsers) and Fastify (its JSON parser, and a raw buffer parser). The client is node:http,
// so the tests see exactly the status, headers and body the platform's delivery worker would.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sealNotification } from '@sparkpay/protocol';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  SparkPayConfigError,
  SparkPayNotificationError,
  createNotificationHandler,
  type NotificationHandler,
  type NotificationHandlerOptions,
  type NotificationMeta,
  type NotificationPayload,
  type NotificationRejection,
} from './index.js';

let merchant: { publicKey: KeyObject; privateKey: KeyObject };
let platform: { publicKey: KeyObject; privateKey: KeyObject };
let forger: { publicKey: KeyObject; privateKey: KeyObject };
beforeAll(() => {
  const rsa = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
  merchant = rsa();
  platform = rsa();
  forger = rsa();
});

const payload = {
  payment_order_no: 'P20250101000000000001',
  order_time: 1_735_689_600,
  pay_time: 1_735_689_700,
  completed_time: 0,
  closed_time: 0,
  pay_status: 'PAID',
  total_amount: '10.50',
  merchant_order_currency: 'USDT',
  merchant_customer_no: 'M100000000001',
  request_no: 'order_1001',
  merchant_order_time: 1_735_689_500,
  merchant_order_desc: '一杯咖啡',
  notify_id: 'N20250101000001',
  notify_type: 'ORDER_PAID',
  notify_time: 1_735_689_710,
  sequence: 2,
};

const notification = (signer: KeyObject = platform.privateKey): string =>
  JSON.stringify(
    sealNotification(JSON.stringify(payload), {
      appId: 'app_1',
      serial: 'pk_1',
      merchantPublicKey: merchant.publicKey,
      platformPrivateKey: signer,
    }),
  );

interface Answer {
  status: number;
  body: string;
  headers: IncomingHttpHeaders;
}

/** One request with node:http; `chunked` sends the body without a Content-Length. */
function send(url: string, init: { method?: string; body?: string; chunked?: boolean } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = init.body === undefined ? {} : { 'Content-Type': 'application/json' };
    if (init.body !== undefined && !init.chunked) headers['Content-Length'] = String(Buffer.byteLength(init.body));
    const req = request(url, { method: init.method ?? 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (init.body !== undefined && init.chunked) {
      // Two writes, so the body really crosses the socket in several chunks.
      const half = Math.floor(init.body.length / 2);
      req.write(init.body.slice(0, half));
      req.end(init.body.slice(half));
    } else req.end(init.body);
  });
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

async function listenNode(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`;
}

type Start = (handler: NotificationHandler) => Promise<string>;

const servers: Array<[string, Start]> = [
  ['node:http', (h) => listenNode(createServer((req, res) => void h.node(req, res)))],
  ['Express without a body parser', (h) => listenNode(createServer(express().all('/notify', h.express)))],
  ['Express after express.raw()', (h) => listenNode(createServer(express().use(express.raw({ type: '*/*' })).all('/notify', h.express)))],
  ['Express after express.text()', (h) => listenNode(createServer(express().use(express.text({ type: '*/*' })).all('/notify', h.express)))],
  ['Express after express.json()', (h) => listenNode(createServer(express().use(express.json()).all('/notify', h.express)))],
  ['Fastify with its JSON parser', (h) => listenFastify(h, false)],
  ['Fastify with a buffer parser', (h) => listenFastify(h, true)],
];

async function listenFastify(handler: NotificationHandler, rawBuffer: boolean): Promise<string> {
  const app = Fastify();
  if (rawBuffer) {
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  }
  app.route({ method: ['GET', 'POST'], url: '/notify', handler: handler.fastify });
  await app.listen({ port: 0, host: '127.0.0.1' });
  closers.push(() => app.close());
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/notify`;
}

interface Recorder {
  calls: Array<{ payload: NotificationPayload; meta: NotificationMeta }>;
  errors: Array<{ error: unknown; rejection: NotificationRejection }>;
}

function makeHandler(
  onNotification: NotificationHandlerOptions['onNotification'],
  over: Partial<NotificationHandlerOptions> = {},
): { handler: NotificationHandler } & Recorder {
  const calls: Recorder['calls'] = [];
  const errors: Recorder['errors'] = [];
  const handler = createNotificationHandler({
    merchantPrivateKey: merchant.privateKey,
    platformPublicKey: platform.publicKey,
    appId: 'app_1',
    onNotification: (p, m) => {
      calls.push({ payload: p, meta: m });
      return onNotification(p, m);
    },
    onError: (error, rejection) => void errors.push({ error, rejection }),
    ...over,
  });
  return { handler, calls, errors };
}

describe.each(servers)('createNotificationHandler behind %s', (_name, start) => {
  it('answers 200 SUCCESS only after onNotification has resolved', async () => {
    const entered = deferred();
    const release = deferred();
    const events: string[] = [];
    const { handler, calls } = makeHandler(async () => {
      entered.resolve();
      await release.promise;
      events.push('callback finished');
    });
    const url = await start(handler);
    const answer = send(url, { body: notification() }).then((a) => (events.push('answer arrived'), a));
    const answeredFirst = answer.then((a) => Promise.reject(new Error(`answered ${a.status} ${a.body} before the callback ran`)));
    answeredFirst.catch(() => undefined); // only a failure while racing below matters
    await Promise.race([entered.promise, answeredFirst]);
    // The callback is blocked: a handler that answered early would have answered by now.
    await new Promise((r) => setTimeout(r, 50));
    expect(events).toEqual([]);
    release.resolve();
    const { status, body, headers } = await answer;
    expect([status, body]).toEqual([200, 'SUCCESS']);
    expect(headers['content-type']).toMatch(/^text\/plain/);
    expect(events).toEqual(['callback finished', 'answer arrived']);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.payload).toEqual(payload);
    expect(calls[0]?.meta).toEqual({ appId: 'app_1', serial: 'pk_1', payloadJson: JSON.stringify(payload) });
  });

  it('answers 500 (not SUCCESS) when onNotification throws or rejects, and SUCCESS on the retry', async () => {
    let attempt = 0;
    const { handler, calls, errors } = makeHandler(async () => {
      attempt += 1;
      if (attempt === 1) throw new Error('database down');
      if (attempt === 2) await Promise.reject(new Error('still down'));
    });
    const url = await start(handler);
    const body = notification();
    for (const message of ['database down', 'still down']) {
      const answer = await send(url, { body });
      expect(answer.status).toBe(500);
      expect(answer.body).not.toContain('SUCCESS');
      expect(answer.body).not.toContain(message);
      expect(errors.at(-1)).toEqual({ error: new Error(message), rejection: { status: 500 } });
    }
    expect(await send(url, { body })).toMatchObject({ status: 200, body: 'SUCCESS' });
    expect(calls).toHaveLength(3);
  });

  it('answers a body whose padding fails exactly as one whose signature fails (no padding oracle), telling only onError which', async () => {
    const { handler, calls, errors } = makeHandler(() => undefined);
    const url = await start(handler);
    const sealed = JSON.parse(notification()) as { head: Record<string, string>; body: string };
    const cipher = Buffer.from(sealed.body, 'base64');
    // The last block's plaintext is known (the payload, PKCS#7-padded).
    const json = Buffer.from(JSON.stringify(payload));
    const pad = 16 - (json.length % 16);
    const plain = Buffer.concat([json, Buffer.alloc(pad, pad)]);
    // An attacker's block in front of the last one, chosen so that the last block decrypts to
    // zeros: a padding length of 0, which always fails (a random block failed only 255 times in
    // 256, and the test with it).
    const previous = cipher.subarray(-32, -16);
    const lastPlain = plain.subarray(-16);
    const badPadding = Buffer.concat([Buffer.from(previous.map((b, i) => b ^ lastPlain[i]!)), cipher.subarray(-16)]);
    // Flipping bytes of the block before the last turns its end into a valid padding of 0x02
    // 0x02, one the sealer did not write, so the padding holds and the signature fails.
    const goodPadding = Buffer.from(cipher);
    for (const i of [14, 15]) goodPadding[goodPadding.length - 32 + i]! ^= plain[plain.length - 16 + i]! ^ 0x02;
    const signatureFails = await send(url, { body: JSON.stringify({ ...sealed, body: goodPadding.toString('base64') }) });
    expect([signatureFails.status, signatureFails.body]).toEqual([400, 'FAIL']);
    expect((errors.at(-1)!.error as SparkPayNotificationError).kind).toBe('SIGNATURE');
    const answer = await send(url, { body: JSON.stringify({ ...sealed, body: badPadding.toString('base64') }) });
    expect([answer.status, answer.body]).toEqual([400, 'FAIL']);
    expect((errors.at(-1)!.error as SparkPayNotificationError).kind).toBe('BODY_DECRYPT');
    expect(new Set(errors.map((e) => (e.error as SparkPayNotificationError).kind))).toEqual(new Set(['BODY_DECRYPT', 'SIGNATURE']));
    expect(calls).toHaveLength(0);
  });

  it('answers 400 to a forged notification without calling onNotification', async () => {
    const { handler, calls, errors } = makeHandler(() => undefined);
    const url = await start(handler);
    const answer = await send(url, { body: notification(forger.privateKey) });
    expect([answer.status, answer.body]).toEqual([400, 'FAIL']);
    const garbage = await send(url, { body: '{"head":{},"body":"x"}' });
    expect([garbage.status, garbage.body]).toEqual([400, 'FAIL']);
    expect(calls).toHaveLength(0);
    expect(errors.map((e) => [(e.error as SparkPayNotificationError).kind, e.rejection.status])).toEqual([
      ['SIGNATURE', 400],
      ['MALFORMED', 400],
    ]);
  });

  it('answers 413 to a body over maxBodyBytes without calling onNotification', async () => {
    const body = notification();
    const { handler, calls, errors } = makeHandler(() => undefined, { maxBodyBytes: body.length + 10 });
    const url = await start(handler);
    // Authentic, and valid JSON once padded: only the size is wrong.
    const answer = await send(url, { body: body + ' '.repeat(11) });
    expect(answer.status).toBe(413);
    expect(answer.body).not.toContain('SUCCESS');
    expect(calls).toHaveLength(0);
    expect(errors.map((e) => e.rejection.status)).toEqual([413]);
    expect(await send(url, { body: body + ' '.repeat(10) })).toMatchObject({ status: 200, body: 'SUCCESS' });
  });

  it('answers 405 to GET', async () => {
    const { handler, calls } = makeHandler(() => undefined);
    const answer = await send(await start(handler), { method: 'GET' });
    expect(answer.status).toBe(405);
    expect(answer.headers.allow).toBe('POST');
    expect(answer.body).not.toContain('SUCCESS');
    expect(calls).toHaveLength(0);
  });
});

describe('createNotificationHandler reading the body itself', () => {
  for (const [name, start] of servers.slice(0, 2)) {
    it(`enforces maxBodyBytes on a chunked body without Content-Length (${name})`, async () => {
      const body = notification();
      const { handler, calls } = makeHandler(() => undefined, { maxBodyBytes: body.length - 1 });
      const url = await start(handler);
      expect((await send(url, { body, chunked: true })).status).toBe(413);
      expect(calls).toHaveLength(0);
    });

    it(`accepts a chunked body of exactly maxBodyBytes (${name})`, async () => {
      const body = notification();
      const { handler, calls } = makeHandler(() => undefined, { maxBodyBytes: body.length });
      const url = await start(handler);
      expect(await send(url, { body, chunked: true })).toMatchObject({ status: 200, body: 'SUCCESS' });
      expect(calls).toHaveLength(1);
    });
  }

  it('defaults maxBodyBytes to 64 KiB', async () => {
    const body = notification();
    const { handler } = makeHandler(() => undefined);
    const url = await start64(handler);
    expect(await send(url, { body: body.padEnd(64 * 1024, ' ') })).toMatchObject({ status: 200, body: 'SUCCESS' });
    expect((await send(url, { body: body.padEnd(64 * 1024 + 1, ' '), chunked: true })).status).toBe(413);
  });
});

const start64: Start = (h) => listenNode(createServer((req, res) => void h.node(req, res)));

describe('createNotificationHandler configuration', () => {
  const base = (): NotificationHandlerOptions => ({
    merchantPrivateKey: merchant.privateKey,
    platformPublicKey: platform.publicKey,
    onNotification: () => undefined,
  });

  it('throws SparkPayConfigError at construction for unusable options', () => {
    const bad: Array<Partial<NotificationHandlerOptions>> = [
      { merchantPrivateKey: 'not a key' },
      { merchantPrivateKey: platform.publicKey },
      { platformPublicKey: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' },
      { platformPublicKey: {} },
      { appId: '' },
      { onNotification: undefined as unknown as NotificationHandlerOptions['onNotification'] },
      { maxBodyBytes: 0 },
      { maxBodyBytes: 1.5 },
    ];
    for (const over of bad) expect(() => createNotificationHandler({ ...base(), ...over })).toThrow(SparkPayConfigError);
  });

  it('refuses a notification for another app id with 400 APP_ID_MISMATCH', async () => {
    const { handler, calls } = makeHandler(() => undefined, { appId: 'app_2' });
    const answer = await send(await start64(handler), { body: notification() });
    expect([answer.status, answer.body]).toEqual([400, 'FAIL']);
    expect(calls).toHaveLength(0);
  });
});
