// The client against real local HTTP servers that verify the requests they receive with
// `verifyMessage` and sign their answers with `signMessage`: both directions use real RSA
// signatures over the bytes that actually crossed the socket.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { signMessage, verifyMessage } from '@sparkpay/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import {
  SparkPayApiError,
  SparkPayClient,
  SparkPayConfigError,
  SparkPayNetworkError,
  SparkPayResponseError,
  SparkPayResponseSignatureError,
  type CloseOrderRequest,
  type CreateOrderRequest,
  type SparkPayClientOptions,
} from './index.js';

const rsa = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
const merchant = rsa();
const platform = rsa();
const otherPlatform = rsa();
const pem = (k: KeyObject) => k.export({ type: k.type === 'private' ? 'pkcs8' : 'spki', format: 'pem' }).toString();

const NOW_S = 1_735_689_600;
const APP_ID = 'app_test_1';

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}
interface Reply {
  status?: number;
  body?: string;
  /** Key that signs the answer; `null` sends no signature headers at all. */
  signWith?: KeyObject | null;
  timestamp?: string;
  serial?: string;
  /** Changes the body after it was signed. */
  tamper?: (signed: string) => string;
  /** Send headers, then never finish the body. */
  stallBody?: boolean;
  location?: string;
}
type Handler = (req: Received) => Reply | 'hang';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => { s.closeAllConnections(); s.close(r); })));
});

/** The order a request is about, as a real platform's answer names it (request_no, merchant_no). */
function aboutOf(r: Received): { request_no?: string; merchant_no?: string } {
  const path = /\/v4\/(?:pro\/)?pay\/orders\/([^/]+)\/([^/?]+)$/.exec(r.url);
  if (path) return { merchant_no: decodeURIComponent(path[1]!), request_no: decodeURIComponent(path[2]!) };
  try {
    const body = JSON.parse(r.body.toString('utf8')) as { merchant_no?: string; request_no?: string };
    return { merchant_no: body.merchant_no, request_no: body.request_no };
  } catch {
    return {};
  }
}

async function startPlatform(handler: Handler): Promise<{ baseUrl: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      received.push(r);
      const reply = handler(r);
      if (reply === 'hang') return;
      const body = reply.body ?? JSON.stringify({ code: 0, message: 'success', data: { ok: true, ...aboutOf(r) } });
      const headers: Record<string, string> = { 'Content-Type': 'application/json', 'Sparkpay-Request-Id': 'req-123' };
      if (reply.signWith !== null) {
        const ts = reply.timestamp ?? String(NOW_S);
        const nonce = 'n0nce0000000000000000000000000ab';
        headers['Sparkpay-Timestamp'] = ts;
        headers['Sparkpay-Nonce'] = nonce;
        headers['Sparkpay-Signature'] = signMessage(reply.signWith ?? platform.privateKey, ts, nonce, body);
        headers['Sparkpay-Serial'] = reply.serial ?? 'pk_1';
      }
      if (reply.location) headers.Location = reply.location;
      const sent = reply.tamper ? reply.tamper(body) : body;
      res.writeHead(reply.status ?? 200, headers);
      if (reply.stallBody) res.write(sent.slice(0, 5));
      else res.end(sent);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { baseUrl: `http://127.0.0.1:${port}`, received };
}

function client(baseUrl: string, extra: Partial<SparkPayClientOptions> = {}): SparkPayClient {
  return new SparkPayClient({
    baseUrl,
    appId: APP_ID,
    merchantPrivateKey: pem(merchant.privateKey),
    platformPublicKey: pem(platform.publicKey),
    clock: () => NOW_S * 1000 + 250,
    ...extra,
  });
}

/** The request as the platform checks it: signature over the received bytes, merchant key. */
function requestSignatureValid(r: Received): boolean {
  const h = (n: string) => String(r.headers[n] ?? '');
  return verifyMessage(merchant.publicKey, h('sparkpay-timestamp'), h('sparkpay-nonce'), r.body, h('sparkpay-signature'));
}

const order: CreateOrderRequest = {
  merchant_no: 'M100001',
  request_no: 'R20250101_0001',
  merchant_order_time: NOW_S,
  total_amount: '10.50',
  merchant_order_currency: 'USDT',
  merchant_order_desc: '咖啡 ☕ — café',
  divide_detail: { seller_amount: '8.00', seller_addr: '0x' + 'ab'.repeat(20), merchant_amount: '2.50' },
};
const created = {
  payment_order_no: 'P2025000001', merchant_no: 'M100001', request_no: 'R20250101_0001', pay_status: 'PENDING',
  total_amount: '10.50', merchant_order_currency: 'USDT', expire_time: NOW_S + 1800,
  cashier_url: 'http://127.0.0.1/cashier/P2025000001?t=abc', some_future_field: 1,
};

describe('requests', () => {
  it('signs a POST over the exact body bytes and sends every required header', async () => {
    const p = await startPlatform(() => ({ body: JSON.stringify({ code: 0, message: 'success', data: created }) }));
    const data = await client(p.baseUrl, { nonce: () => 'fixedNonce_123' }).createOrder(order);

    expect(data.cashier_url).toBe(created.cashier_url);
    expect(data.total_amount).toBe('10.50');
    const [r] = p.received;
    expect(r?.method).toBe('POST');
    expect(r?.url).toBe('/v4/pay/cashier');
    expect(r?.headers['content-type']).toBe('application/json');
    expect(r?.headers['user-agent']).toBe('sparkpay-sdk-node/0.1.0');
    expect(r?.headers['sparkpay-app-id']).toBe(APP_ID);
    expect(r?.headers['sparkpay-timestamp']).toBe(String(NOW_S));
    expect(r?.headers['sparkpay-nonce']).toBe('fixedNonce_123');
    expect(r && requestSignatureValid(r)).toBe(true);
    // Non-ASCII text is signed as UTF-8, and amounts travel as strings.
    const sent = JSON.parse(r?.body.toString('utf8') ?? '') as CreateOrderRequest;
    expect(sent).toEqual(order);
    expect(r?.body.toString('utf8')).toContain('"total_amount":"10.50"');
  });

  it('signs a GET over the empty body and sends no Content-Type', async () => {
    const p = await startPlatform(() => ({}));
    await client(p.baseUrl).getOrder('M100001', 'R1');
    const [r] = p.received;
    expect(r?.method).toBe('GET');
    expect(r?.body.length).toBe(0);
    expect(r?.headers['content-type']).toBeUndefined();
    // The platform's check: `timestamp\nnonce\n\n`, i.e. the empty body.
    const h = (n: string) => String(r?.headers[n]);
    expect(verifyMessage(merchant.publicKey, h('sparkpay-timestamp'), h('sparkpay-nonce'), '', h('sparkpay-signature'))).toBe(true);
  });

  it('routes every method to its documented path', async () => {
    const p = await startPlatform(() => ({}));
    const c = client(p.baseUrl + '/gateway/');
    await c.createProOrder({ merchant_no: 'M1', request_no: 'R2', merchant_order_time: NOW_S, pricing_currency: 'USD', pricing_amount: '5.00' });
    await c.getProOrder('M1', 'R2');
    await c.closeOrder({ merchant_no: 'M1', request_no: 'R2' });
    expect(p.received.map((r) => `${r.method} ${r.url}`)).toEqual([
      'POST /gateway/v4/pro/pay/cashier',
      'GET /gateway/v4/pro/pay/orders/M1/R2',
      'POST /gateway/v4/pay/orders/close',
    ]);
    expect(p.received.every(requestSignatureValid)).toBe(true);
    expect(JSON.parse(p.received[2]?.body.toString() ?? '')).toEqual({ merchant_no: 'M1', request_no: 'R2' });
  });

  it('percent-encodes path segments so identifiers cannot change the route', async () => {
    const p = await startPlatform(() => ({}));
    await client(p.baseUrl).getOrder('M 1/2', 'a#b?c%d');
    expect(p.received[0]?.url).toBe('/v4/pay/orders/M%201%2F2/a%23b%3Fc%25d');
    expect(p.received).toHaveLength(1);
  });

  it('rejects (never throws synchronously) with SparkPayConfigError for arguments it cannot send, and sends nothing', async () => {
    const p = await startPlatform(() => ({}));
    const c = client(p.baseUrl);
    const calls: [string, () => Promise<unknown>, RegExp][] = [
      ['..', () => c.getOrder('M1', '..'), /requestNo must be a non-empty string/],
      ['empty merchant', () => c.getOrder('', 'R1'), /merchantNo must be a non-empty string/],
      ['pro, not a string', () => c.getProOrder('M1', 7 as unknown as string), /requestNo must be/],
      ['bigint amount', () => c.createOrder({ ...order, total_amount: 10n } as unknown as CreateOrderRequest), /cannot be sent as JSON: .*BigInt.*decimal strings/],
      ['no body', () => c.closeOrder(undefined as unknown as CloseOrderRequest), /request body is missing/],
    ];
    for (const [what, call, message] of calls) {
      let promise: Promise<unknown> | undefined;
      expect(() => (promise = call()), what).not.toThrow();
      await expect(promise, what).rejects.toThrow(SparkPayConfigError);
      await expect(promise, what).rejects.toThrow(message);
    }
    expect(p.received).toEqual([]);
  });

  it('uses a fresh nonce per request and the configured User-Agent', async () => {
    const p = await startPlatform(() => ({}));
    const c = client(p.baseUrl, { userAgent: 'shop/2.0' });
    await c.getOrder('M1', 'R1');
    await c.getOrder('M1', 'R1');
    const [a, b] = p.received;
    expect(a?.headers['sparkpay-nonce']).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(a?.headers['sparkpay-nonce']).not.toBe(b?.headers['sparkpay-nonce']);
    expect(a?.headers['user-agent']).toBe('shop/2.0');
  });
});

describe('response verification', () => {
  const expectSignatureError = async (reply: Reply, reason: string, extra?: Partial<SparkPayClientOptions>) => {
    const p = await startPlatform(() => reply);
    const err: unknown = await client(p.baseUrl, extra).getOrder('M1', 'R1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SparkPayResponseSignatureError);
    expect(err).toMatchObject({ reason, requestId: 'req-123', method: 'GET', path: '/v4/pay/orders/M1/R1' });
    return err as SparkPayResponseSignatureError;
  };

  it('refuses a response signed with another key', async () => {
    await expectSignatureError({ signWith: otherPlatform.privateKey }, 'BAD_SIGNATURE');
  });

  it('refuses an authentic answer about another order than the one asked about (a replay within the window), request_no compared case-insensitively', async () => {
    const answerFor = (data: Record<string, unknown>) => () => ({ body: JSON.stringify({ code: 0, message: 'success', data }) });
    const other = await startPlatform(answerFor({ request_no: 'R1', merchant_customer_no: 'M1', pay_status: 'PAID' }));
    const err: unknown = await client(other.baseUrl).getOrder('M1', 'R2').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SparkPayResponseError);
    expect((err as Error).message).toMatch(/about another order \(request_no "R1".*asked "R2"/);
    const merchant = await startPlatform(answerFor({ request_no: 'R2', merchant_no: 'M9', pay_status: 'CLOSED' }));
    await expect(client(merchant.baseUrl).closeOrder({ merchant_no: 'M1', request_no: 'R2' })).rejects.toBeInstanceOf(SparkPayResponseError);
    const none = await startPlatform(answerFor({ pay_status: 'PAID' }));
    await expect(client(none.baseUrl).getOrder('M1', 'R2')).rejects.toBeInstanceOf(SparkPayResponseError);
    const same = await startPlatform(answerFor({ request_no: 'r2', merchant_customer_no: 'M1', pay_status: 'PAID' }));
    await expect(client(same.baseUrl).getOrder('M1', 'R2')).resolves.toMatchObject({ pay_status: 'PAID' });
  });

  it('refuses a timeout Node cannot keep (above 2^31 - 1 ms it would fire at once), in the options and per call', async () => {
    expect(() => client('http://127.0.0.1:1', { timeoutMs: 3_000_000_000 })).toThrow(SparkPayConfigError);
    const p = await startPlatform(() => ({}));
    for (const timeoutMs of [Infinity, 3e9, 0, -1, Number.NaN]) {
      await expect(client(p.baseUrl).getOrder('M1', 'R1', { timeoutMs })).rejects.toBeInstanceOf(SparkPayConfigError);
    }
    expect(p.received).toHaveLength(0);
    await expect(client(p.baseUrl, { timeoutMs: 2_147_483_647 }).getOrder('M1', 'R1')).resolves.toMatchObject({ ok: true });
  });

  it('refuses a tampered body', async () => {
    const body = JSON.stringify({ code: 0, message: 'success', data: { pay_status: 'PENDING' } });
    await expectSignatureError({ body, tamper: (b) => b.replace('PENDING', 'PAID\u0020\u0020') }, 'BAD_SIGNATURE');
  });

  it('refuses a response without signature headers, such as a proxy error page', async () => {
    const err = await expectSignatureError({ status: 502, body: '<html>Bad Gateway</html>', signWith: null }, 'MISSING_HEADERS');
    expect(err.httpStatus).toBe(502);
    expect(err.message).toContain('HTTP 502');
  });

  it('does not follow a redirect to where the signed request was not addressed', async () => {
    const elsewhere = await startPlatform(() => ({}));
    const err = await expectSignatureError({ status: 307, signWith: null, location: `${elsewhere.baseUrl}/v4/pay/orders/M1/R1` }, 'MISSING_HEADERS');
    expect(err.message).toContain(`redirect to ${elsewhere.baseUrl}`);
    expect(elsewhere.received).toHaveLength(0);
  });

  it('does not trust an error envelope until its signature verifies', async () => {
    const body = JSON.stringify({ code: 40000, message: 'forged' });
    await expectSignatureError({ status: 401, body, signWith: otherPlatform.privateKey }, 'BAD_SIGNATURE');
  });

  it('refuses a signed timestamp outside the window, which is configurable', async () => {
    const stale = String(NOW_S - 301);
    await expectSignatureError({ timestamp: stale }, 'TIMESTAMP_OUT_OF_WINDOW');
    await expectSignatureError({ timestamp: String(NOW_S + 400) }, 'TIMESTAMP_OUT_OF_WINDOW', { maxClockSkewSeconds: 399 });
    const p = await startPlatform(() => ({ timestamp: stale }));
    await expect(client(p.baseUrl, { maxClockSkewSeconds: 600 }).getOrder('M1', 'R1')).resolves.toEqual({ ok: true, merchant_no: 'M1', request_no: 'R1' });
  });

  it('picks the platform key by Sparkpay-Serial when given a map (key rotation)', async () => {
    const keys = { pk_old: pem(platform.publicKey), pk_new: otherPlatform.publicKey };
    const p = await startPlatform((r) => (r.url.endsWith('/new') ? { signWith: otherPlatform.privateKey, serial: 'pk_new' } : { serial: 'pk_old' }));
    const c = client(p.baseUrl, { platformPublicKey: keys });
    await expect(c.getOrder('M1', 'old')).resolves.toEqual({ ok: true, merchant_no: 'M1', request_no: 'old' });
    await expect(c.getOrder('M1', 'new')).resolves.toEqual({ ok: true, merchant_no: 'M1', request_no: 'new' });
    await expectSignatureError({ serial: 'pk_gone' }, 'UNKNOWN_SERIAL', { platformPublicKey: keys });
    // A key known under one serial does not vouch for a response naming another.
    await expectSignatureError({ serial: 'pk_new' }, 'BAD_SIGNATURE', { platformPublicKey: keys });
  });
});

describe('envelopes and failures', () => {
  it('turns a signed error envelope into SparkPayApiError with code, HTTP status and request id', async () => {
    const body = JSON.stringify({ code: 41013, message: 'Total amount of merchant order does not comply with rules' });
    const p = await startPlatform(() => ({ status: 400, body }));
    const err: unknown = await client(p.baseUrl).createOrder({ ...order, total_amount: '0' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SparkPayApiError);
    expect(err).toMatchObject({
      code: 41013, httpStatus: 400, requestId: 'req-123',
      message: 'Total amount of merchant order does not comply with rules',
    });
  });

  it('reports a signed body that is not an envelope as SparkPayResponseError', async () => {
    for (const body of ['not json', '[]', '{"code":"0","data":{}}', '{"code":0,"message":"success"}']) {
      const p = await startPlatform(() => ({ body }));
      await expect(client(p.baseUrl).getOrder('M1', 'R1')).rejects.toBeInstanceOf(SparkPayResponseError);
    }
  });

  it('times out a server that never answers, and one that stalls mid-body', async () => {
    for (const handler of [(): 'hang' => 'hang', (): Reply => ({ stallBody: true })]) {
      const p = await startPlatform(handler);
      const started = Date.now();
      const err: unknown = await client(p.baseUrl, { timeoutMs: 200 }).getOrder('M1', 'R1').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SparkPayNetworkError);
      expect(err).toMatchObject({ timedOut: true });
      expect(Date.now() - started).toBeLessThan(5_000);
    }
  });

  it('reports a refused connection and a caller abort as SparkPayNetworkError', async () => {
    const p = await startPlatform(() => 'hang');
    const aborter = new AbortController();
    const pending = client(p.baseUrl).getOrder('M1', 'R1', { signal: aborter.signal });
    setTimeout(() => aborter.abort(), 50);
    await expect(pending).rejects.toMatchObject({ name: 'SparkPayNetworkError', timedOut: false });
    const port = new URL(p.baseUrl).port;
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => { s.closeAllConnections(); s.close(r); })));
    const err: unknown = await client(`http://127.0.0.1:${port}`).getOrder('M1', 'R1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SparkPayNetworkError);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
  });
});
