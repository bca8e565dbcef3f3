// The HTTP edge against requests shaped unlike an SDK's: absolute-form request targets, requests
// Node's HTTP layer would answer by itself (no Host, an unknown expectation), and AppIDs far
// longer than any. Each gets the documented answer: signed under /v4/, with a request id.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cashierAssets } from '../src/adapters/http/cashier-page/assets.js';
import { apiRaw, defaultPlatformKey, deploymentWithFactory, expectError, orderBody, prepare, responseSignedBy, startTestGateway, type TestGateway } from './harness.js';
import { rawAnswerParts, rawExchange } from './raw-http.js';

describe('the HTTP edge, unusual request shapes', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ config: { deployment: deploymentWithFactory(['4']) } });
  });
  afterAll(async () => {
    await t?.close();
  });

  const exchange = (raw: string) => rawExchange(t.baseUrl, raw);
  const signedByDefault = async (answer: string) => {
    const { headers, text } = rawAnswerParts(answer);
    const platform = await defaultPlatformKey(t);
    return headers.get('sparkpay-serial') === platform.serial && responseSignedBy(platform.publicKey, { headers, text });
  };

  describe('absolute-form request targets (RFC 9112 §3.2.2: a server must accept them)', () => {
    const origin = () => `http://${new URL(t.baseUrl).host}`;

    it('an order created with an absolute-form target succeeds, signed', async () => {
      const body = JSON.stringify(orderBody(t.merchant, t.clock));
      const p = prepare({ path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });
      const head = Object.entries(p.headers).map(([k, v]) => `${k}: ${v}`).join('\r\n');
      const answer = await exchange(`POST ${origin()}/v4/pay/cashier HTTP/1.1\r\nHost: x\r\n${head}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      const { statusLine, headers, text } = rawAnswerParts(answer);
      expect(statusLine).toBe('HTTP/1.1 200 OK');
      expect(JSON.parse(text)).toMatchObject({ code: 0 });
      expect(responseSignedBy(t.merchant.platformPublicKey, { headers, text })).toBe(true);
    });

    it.each([
      ['an unknown endpoint under /v4/', (o: string) => `GET ${o}/v4/nope HTTP/1.1\r\nHost: x\r\nUser-Agent: u\r\nConnection: close\r\n\r\n`, 400],
      ['a body over 64 KiB under /v4/', (o: string) => `POST ${o}/v4/pay/cashier HTTP/1.1\r\nHost: x\r\nUser-Agent: u\r\nContent-Type: application/json\r\nContent-Length: 70000\r\nConnection: close\r\n\r\n${'x'.repeat(70_000)}`, 413],
      ['a broken %-escape under /v4/', (o: string) => `GET ${o}/v4/pay/orders/%zz/b HTTP/1.1\r\nHost: x\r\nUser-Agent: u\r\nConnection: close\r\n\r\n`, 400],
    ])('%s: the signed 40009 envelope, as in origin form (it was unsigned plain JSON)', async (_what, raw, status) => {
      const answer = await exchange(raw(origin()));
      const { statusLine, text } = rawAnswerParts(answer);
      expect(statusLine.split(' ')[1]).toBe(String(status));
      expect(JSON.parse(text)).toMatchObject({ code: 40009 });
      expect(await signedByDefault(answer)).toBe(true);
    });

    it('a request Node\'s parser refuses, with an absolute-form target under /v4/: signed as in origin form', async () => {
      const answer = await exchange(`GET ${origin()}/v4/pay/orders/x/y HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n`);
      expect(JSON.parse(rawAnswerParts(answer).text)).toMatchObject({ code: 40009 });
      expect(await signedByDefault(answer)).toBe(true);
    });

    it('the cashier assets and the cashier API\'s 404 are served as in origin form', async () => {
      const asset = rawAnswerParts(await exchange(`GET ${origin()}${cashierAssets().script.path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
      expect(asset.statusLine).toBe('HTTP/1.1 200 OK');
      expect(asset.headers.get('content-type')).toMatch(/^text\/javascript/);
      const api = rawAnswerParts(await exchange(`GET ${origin()}/cashier/api/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
      expect(api.statusLine).toBe('HTTP/1.1 404 Not Found');
      expect(JSON.parse(api.text)).toEqual({ error: 'NOT_FOUND', message: 'no such payment order' });
    });
  });

  describe('requests Node answered by itself', () => {
    it('an HTTP/1.1 request under /v4/ without Host: 400 with the signed 40009 envelope and a request id (it was an empty unsigned 400)', async () => {
      const answer = await exchange('GET /v4/pay/orders/a/b HTTP/1.1\r\nUser-Agent: u\r\n\r\n');
      const { statusLine, headers, text } = rawAnswerParts(answer);
      expect(statusLine).toBe('HTTP/1.1 400 Bad Request');
      expect(JSON.parse(text)).toMatchObject({ code: 40009 });
      expect(headers.get('sparkpay-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      expect(headers.get('connection')).toBe('close');
      expect(await signedByDefault(answer)).toBe(true);
      // Outside /v4/: plain JSON, unsigned. HTTP/1.0 needs no Host.
      const outside = rawAnswerParts(await exchange('GET /healthz HTTP/1.1\r\n\r\n'));
      expect(outside.statusLine).toBe('HTTP/1.1 400 Bad Request');
      expect(JSON.parse(outside.text)).toEqual({ code: 400, message: 'a HTTP/1.1 request must carry a Host header' });
      expect(outside.headers.get('sparkpay-signature')).toBeNull();
      expect(rawAnswerParts(await exchange('GET /healthz HTTP/1.0\r\n\r\n')).statusLine).toBe('HTTP/1.1 200 OK');
    });

    it('an unknown expectation under /v4/ is answered by the route, signed (it was an empty unsigned 417)', async () => {
      const answer = await exchange('GET /v4/pay/orders/a/b HTTP/1.1\r\nHost: x\r\nUser-Agent: u\r\nExpect: something-else\r\nConnection: close\r\n\r\n');
      const { statusLine, text } = rawAnswerParts(answer);
      expect(statusLine).toBe('HTTP/1.1 400 Bad Request');
      expect(JSON.parse(text)).toMatchObject({ code: 40003 });
      expect(await signedByDefault(answer)).toBe(true);
    });
  });

  describe('AppIDs far longer than any', () => {
    it('are unknown (40002, default key) without a directory read: 10,000 of 16 KB each were kept in memory (160 MB), and looked up past the refusal budget', async () => {
      const read = vi.spyOn(t.gateway.store.applications, 'get');
      try {
        const res = await apiRaw(t.baseUrl, { path: `/v4/pay/orders/${t.merchant.merchantNo}/x`, merchant: t.merchant, clock: t.clock, headers: { 'sparkpay-app-id': `${t.merchant.appId}${'0'.repeat(10_000)}` } });
        expectError(res, 40002, 401, { signed: false });
        expect(res.headers.get('sparkpay-serial')).toBe((await defaultPlatformKey(t)).serial);
        expect(read.mock.calls.filter(([id]) => id.length > 64)).toEqual([]);
        // A real AppID is still read and served.
        const ok = await apiRaw(t.baseUrl, { path: `/v4/pay/orders/${t.merchant.merchantNo}/x`, merchant: t.merchant, clock: t.clock });
        expectError(ok, 43005, 404);
      } finally {
        read.mockRestore();
      }
    });
  });
});
