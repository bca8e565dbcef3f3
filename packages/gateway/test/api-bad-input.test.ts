// Bad input over HTTP: every refusal answers its documented code in a signed envelope, never a
// 500, and stores nothing (the orders and order_options tables are counted around each request).
// Also the happy paths next to them (the compatibility split form, the Pro edition), request_no
// idempotency including concurrent duplicates, and closing orders that cannot be closed.
import { connect } from 'node:net';
import { REQUEST_TIMEOUT_MS } from '../src/adapters/http/server.js';
import { updateMerchant } from '../src/app/merchant-admin.js';
import { transition } from '../src/app/order-transitions.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASE_KINDS } from './databases.js';
import {
  api,
  apiRaw,
  defaultPlatformKey,
  expectError,
  observeTransfer,
  orderBody,
  orderRowCounts,
  OTHER,
  proOrderBody,
  responseSignedBy,
  SELLER,
  startTestGateway,
  WALLET,
  type ApiResponse,
  type Merchant,
  type TestGateway,
} from './harness.js';
import { rawAnswerParts, rawExchange as rawExchangeWith } from './raw-http.js';

type Json = Record<string, unknown>;

/** A split of the default 10.50 total: 8.00 + 2.00 + 0.50. */
const SPLIT = { seller_amount: '8.00', seller_addr: SELLER, merchant_amount: '2.00', other_details: [{ receiver_addr: OTHER, amount: '0.50' }] };

/** The compatibility form of a split of 10.50, for merchant `merchantNo`. */
const compat = (merchantNo: string) => [
  { split_type: 2, split_purpose: 1, receiver: SELLER, amount: '8.00' },
  { split_type: 1, split_purpose: 2, receiver: merchantNo, amount: '2.00' },
  { split_type: 1, split_purpose: 3, receiver: merchantNo, amount: '0.50' },
];

/** SELLER with one letter's case flipped: still hex, mixed case, wrong EIP-55 checksum. */
const BAD_CHECKSUM = `0x3c44${SELLER.slice(6)}`;

/** A copy of `body` with the value at `path` replaced (`undefined` deletes it). */
function withPath(body: Json, path: readonly (string | number)[], value: unknown): Json {
  const copy = structuredClone(body);
  let node: Record<string | number, unknown> = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy;
}

type Kind = 'string' | 'integer' | 'object' | 'array' | 'enum' | 'network-list';

/** Values of the wrong JSON type for each kind of field (§7-§9 types on the wire). */
const WRONG: Record<Kind, [string, unknown][]> = {
  string: [['a number', 42], ['an object', { a: 1 }], ['an array', ['x']], ['a boolean', true]],
  integer: [['a string', '1764072000'], ['a fraction', 1.5], ['a negative number', -1], ['an object', {}], ['an array', [1]], ['a boolean', false]],
  object: [['a string', 'x'], ['a number', 1], ['an array', []], ['a boolean', true]],
  array: [['a string', 'x'], ['a number', 1], ['an object', {}], ['a boolean', true]],
  // Enums are a string of digits or an integer (§5); anything else is the wrong type.
  enum: [['a word', 'two'], ['a fraction', 2.5], ['an object', {}], ['an array', ['2']], ['a boolean', true]],
  'network-list': [['an object', {}], ['an array', ['2']], ['a boolean', true], ['a fraction', 2.5], ['a list with semicolons', '2;4']],
};

interface FieldCase {
  edition: 'standard' | 'pro';
  path: (string | number)[];
  kind: Kind;
  required?: boolean;
  /** The valid base body needs this part to reach the field. */
  base?: 'divide_detail' | 'split_details' | 'available';
}

const FIELDS: FieldCase[] = [
  // §7
  { edition: 'standard', path: ['merchant_no'], kind: 'string', required: true },
  { edition: 'standard', path: ['request_no'], kind: 'string', required: true },
  { edition: 'standard', path: ['merchant_order_time'], kind: 'integer', required: true },
  { edition: 'standard', path: ['total_amount'], kind: 'string', required: true },
  { edition: 'standard', path: ['merchant_order_currency'], kind: 'string', required: true },
  { edition: 'standard', path: ['merchant_order_timeout'], kind: 'integer' },
  { edition: 'standard', path: ['merchant_order_desc'], kind: 'string' },
  { edition: 'standard', path: ['goods_info'], kind: 'string' },
  { edition: 'standard', path: ['merchant_order_no'], kind: 'string' },
  { edition: 'standard', path: ['merchant_application_user_id'], kind: 'string' },
  { edition: 'standard', path: ['notify_url'], kind: 'string' },
  { edition: 'standard', path: ['redirect_url'], kind: 'string' },
  { edition: 'standard', path: ['business_info'], kind: 'string' },
  { edition: 'standard', path: ['divide_detail'], kind: 'object' },
  { edition: 'standard', path: ['extension'], kind: 'string' },
  { edition: 'standard', path: ['receive_network'], kind: 'network-list' },
  // §8 (and the shared fields once more on the Pro endpoint)
  { edition: 'pro', path: ['merchant_no'], kind: 'string', required: true },
  { edition: 'pro', path: ['request_no'], kind: 'string', required: true },
  { edition: 'pro', path: ['merchant_order_time'], kind: 'integer', required: true },
  { edition: 'pro', path: ['pricing_currency'], kind: 'string', required: true },
  { edition: 'pro', path: ['pricing_amount'], kind: 'string', required: true },
  { edition: 'pro', path: ['merchant_order_timeout'], kind: 'integer' },
  { edition: 'pro', path: ['notify_url'], kind: 'string' },
  { edition: 'pro', path: ['available_payment_currency_networks'], kind: 'array' },
  { edition: 'pro', path: ['available_payment_currency_networks', 0], kind: 'object', base: 'available' },
  { edition: 'pro', path: ['available_payment_currency_networks', 0, 'currency'], kind: 'string', base: 'available' },
  { edition: 'pro', path: ['available_payment_currency_networks', 0, 'networks'], kind: 'array', base: 'available' },
  { edition: 'pro', path: ['available_payment_currency_networks', 0, 'networks', 0], kind: 'enum', base: 'available' },
  // §9
  { edition: 'standard', path: ['divide_detail', 'seller_amount'], kind: 'string', base: 'divide_detail' },
  { edition: 'standard', path: ['divide_detail', 'seller_addr'], kind: 'string', base: 'divide_detail' },
  { edition: 'standard', path: ['divide_detail', 'merchant_amount'], kind: 'string', base: 'divide_detail' },
  { edition: 'standard', path: ['divide_detail', 'other_details'], kind: 'array', base: 'divide_detail' },
  { edition: 'standard', path: ['divide_detail', 'other_details', 0], kind: 'object', base: 'divide_detail' },
  { edition: 'standard', path: ['divide_detail', 'other_details', 0, 'receiver_addr'], kind: 'string', base: 'divide_detail' },
  { edition: 'standard', path: ['divide_detail', 'other_details', 0, 'amount'], kind: 'string', base: 'divide_detail' },
  { edition: 'standard', path: ['split_details'], kind: 'array', base: 'split_details' },
  { edition: 'standard', path: ['split_details', 0], kind: 'object', base: 'split_details' },
  { edition: 'standard', path: ['split_details', 0, 'split_type'], kind: 'enum', base: 'split_details' },
  { edition: 'standard', path: ['split_details', 0, 'split_purpose'], kind: 'enum', base: 'split_details' },
  { edition: 'standard', path: ['split_details', 0, 'receiver'], kind: 'string', base: 'split_details' },
  { edition: 'standard', path: ['split_details', 0, 'amount'], kind: 'string', base: 'split_details' },
];

const WRONG_TYPE_CASES = FIELDS.flatMap((f) =>
  WRONG[f.kind].map(([what, value]) => ({ ...f, name: `${f.edition} ${f.path.join('.')} as ${what}`, value })),
);
const NULL_REQUIRED_CASES = FIELDS.filter((f) => f.required).map((f) => ({ ...f, name: `${f.edition} ${f.path.join('.')}` }));

describe.each(DATABASE_KINDS)('bad input on %s', (kind) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ kind });
  });
  afterAll(async () => {
    await t?.close();
  });

  const create = (body: unknown, m: Merchant = t.merchant) => api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: m, clock: t.clock });
  const createPro = (body: unknown, m: Merchant = t.merchant) => api(t.baseUrl, { path: '/v4/pro/pay/cashier', body, merchant: m, clock: t.clock });
  const close = (body: unknown, m: Merchant = t.merchant) => api(t.baseUrl, { path: '/v4/pay/orders/close', body, merchant: m, clock: t.clock });
  const query = (requestNo: string, m: Merchant = t.merchant, edition = '') =>
    api(t.baseUrl, { path: `/v4${edition}/pay/orders/${m.merchantNo}/${requestNo}`, merchant: m, clock: t.clock });
  const std = (overrides: Json = {}, m: Merchant = t.merchant) => orderBody(m, t.clock, overrides);
  const pro = (overrides: Json = {}, m: Merchant = t.merchant) => proOrderBody(m, t.clock, overrides);

  /** The request is refused with `code` and nothing is stored. */
  async function refused(send: () => Promise<ApiResponse>, code: number, status = 400): Promise<ApiResponse> {
    const before = await orderRowCounts(t);
    const res = await send();
    expectError(res, code, status);
    expect(await orderRowCounts(t)).toEqual(before);
    return res;
  }

  function accepted(res: ApiResponse): Json {
    expect({ status: res.status, code: res.json.code, message: res.json.message }).toEqual({ status: 200, code: 0, message: 'success' });
    expect(res.signatureValid).toBe(true);
    return res.json.data!;
  }

  const networksOf = (data: Json) =>
    (data.payment_options as { network: string; currency: string }[]).map((o) => `${o.currency}@${o.network}`).sort();

  const rawExchange = (raw: string) => rawExchangeWith(t.baseUrl, raw);

  describe('JSON and transport', () => {
    it.each([
      ['an unclosed object', '{'],
      ['a trailing comma', '{"merchant_no":"M1",}'],
      ['single quotes', "{'merchant_no':'M1'}"],
      ['an empty body', ''],
      ['a bare word', 'merchant'],
      ['two objects', '{}{}'],
    ])('malformed JSON (%s): 40009', async (_what, text) => {
      await refused(() => create(text), 40009);
      await refused(() => createPro(text), 40009);
      await refused(() => close(text), 40009);
    });

    it.each([['null'], ['[]'], ['"order"'], ['42'], ['true']])('JSON %s instead of an object: 40009', async (text) => {
      await refused(() => create(text), 40009);
      await refused(() => createPro(text), 40009);
      await refused(() => close(text), 40009);
    });

    it('a body that is not UTF-8: 40009', async () => {
      const text = JSON.stringify(std({ merchant_order_desc: 'caf\u00e9' }));
      // "café" in Latin-1: a lone 0xE9 byte is not UTF-8.
      const bytes = Buffer.from(text, 'latin1');
      await refused(() => create(bytes), 40009);
    });

    it.each([['text/plain'], ['application/x-www-form-urlencoded'], ['application/jsonp'], ['multipart/form-data; boundary=x']])(
      'Content-Type %s on POST: 40009',
      async (type) => {
        const res = await refused(() => api(t.baseUrl, { path: '/v4/pay/cashier', body: std(), merchant: t.merchant, clock: t.clock, headers: { 'content-type': type } }), 40009);
        expect(res.json.message).toMatch(/content-type/i);
        await refused(() => api(t.baseUrl, { path: '/v4/pay/orders/close', body: { merchant_no: t.merchant.merchantNo, request_no: 'x' }, merchant: t.merchant, clock: t.clock, headers: { 'content-type': type } }), 40009);
      },
    );

    it('no Content-Type on POST: 40009', async () => {
      const body = Buffer.from(JSON.stringify(std()));
      const res = await refused(() => apiRaw(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock, headers: { 'content-type': null } }), 40009);
      expect(res.json.message).toMatch(/content-type/i);
      await refused(() => apiRaw(t.baseUrl, { path: '/v4/pro/pay/cashier', body: Buffer.from(JSON.stringify(pro())), merchant: t.merchant, clock: t.clock, headers: { 'content-type': null } }), 40009);
    });

    it.each([['application/json; charset=utf-8'], ['Application/JSON'], ['application/json;charset=UTF-8']])('Content-Type %s is JSON', async (type) => {
      accepted(await api(t.baseUrl, { path: '/v4/pay/cashier', body: std(), merchant: t.merchant, clock: t.clock, headers: { 'content-type': type } }));
    });

    it('a body over 64 KiB: HTTP 413, 40009, signed', async () => {
      const body = JSON.stringify(std({ pad: 'x'.repeat(64 * 1024) }));
      expect(Buffer.byteLength(body)).toBeGreaterThan(64 * 1024);
      await refused(() => create(body), 40009, 413);
      await refused(() => close(JSON.stringify({ merchant_no: t.merchant.merchantNo, request_no: 'x', pad: 'x'.repeat(70_000) })), 40009, 413);
    });

    it('JSON nested deeper than 64 levels: 40009, not a stack overflow', async () => {
      const nested = (depth: number) => `${JSON.stringify(std()).slice(0, -1)},"x":${'['.repeat(depth)}${']'.repeat(depth)}}`;
      for (const depth of [64, 5000, 30_000]) await refused(() => create(nested(depth)), 40009);
      await refused(() => close(`{"merchant_no":"${t.merchant.merchantNo}","request_no":"x","x":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`), 40009);
      // An unknown field nested a few levels is simply ignored.
      accepted(await create(nested(10)));
    });

    it('a malformed %-escape in the path: the signed 40009 envelope', async () => {
      const res = await api(t.baseUrl, { path: `/v4/pay/orders/${t.merchant.merchantNo}/%E0%A4%A`, merchant: t.merchant, clock: t.clock });
      expectError(res, 40009);
    });

    it.each([
      ['headers over the server\'s limit, under /v4/', `GET /v4/pay/orders/x/y HTTP/1.1\r\nHost: localhost\r\nX-Pad: ${'a'.repeat(20_000)}\r\n\r\n`, 431, true],
      ['a header line without a colon, under /v4/', 'GET /v4/pay/orders/x/y HTTP/1.1\r\nHost: localhost\r\nBroken header line\r\n\r\n', 400, true],
      ['headers over the server\'s limit, on the cashier page', `GET /cashier/P1?t=x HTTP/1.1\r\nHost: localhost\r\nCookie: ${'a'.repeat(20_000)}\r\n\r\n`, 431, false],
      ['bytes that are not HTTP', 'HELLO THERE\r\n\r\n', 400, false],
    ])('%s: an answer that closes the connection and says so, and the server serves on', async (_what, raw, status, signed) => {
      const answer = await rawExchange(raw);
      const { statusLine, headers, text } = rawAnswerParts(answer);
      expect(statusLine).toBe(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}`);
      expect(answer).toMatch(/\r\nConnection: close\r\n/i);
      expect(JSON.parse(text)).toMatchObject({ code: 40009 });
      expect(headers.get('sparkpay-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      if (signed) {
        // Under /v4/ signed like every answer there (§3), with the default key: it never reached a route.
        const platform = await defaultPlatformKey(t);
        expect(headers.get('sparkpay-serial')).toBe(platform.serial);
        expect(responseSignedBy(platform.publicKey, { headers, text })).toBe(true);
      } else {
        // Elsewhere, or where the path cannot be seen, unsigned: no key spent on anyone's garbage.
        expect(headers.get('sparkpay-signature')).toBeNull();
      }
      expect((await fetch(`${t.baseUrl}/healthz`)).status).toBe(200);
    });

    it('a request whose body never finishes is cut off once the request time is up: the connection is not held for ever', async () => {
      const http = t.gateway.server.server;
      expect(http.requestTimeout).toBe(REQUEST_TIMEOUT_MS);
      // Node applies the request time only when the headers' is not longer.
      expect(http.headersTimeout).toBe(REQUEST_TIMEOUT_MS);
      // The same check, with a time a test can wait for.
      http.requestTimeout = 1_500;
      http.headersTimeout = 1_500;
      try {
        const { port, hostname } = new URL(t.baseUrl);
        const started = Date.now();
        const closed = await new Promise<number>((resolve, reject) => {
          const socket = connect(Number(port), hostname, () =>
            socket.write(`POST /v4/pay/cashier HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{`),
          );
          socket.on('data', () => undefined);
          socket.on('close', () => resolve(Date.now() - started));
          socket.on('error', reject);
          setTimeout(() => {
            socket.destroy();
            reject(new Error('the connection was still open after 10 s'));
          }, 10_000).unref();
        });
        expect(closed).toBeGreaterThanOrEqual(1_400);
        expect((await fetch(`${t.baseUrl}/healthz`)).status).toBe(200);
      } finally {
        http.requestTimeout = REQUEST_TIMEOUT_MS;
        http.headersTimeout = REQUEST_TIMEOUT_MS;
      }
    });

    it('a malformed request under /v4/ while the platform key cannot be had: the same answer within a second, unsigned, rather than none', async () => {
      const keys = t.gateway.platformKeys;
      const real = keys.signingKeyFor.bind(keys);
      keys.signingKeyFor = () => new Promise(() => undefined);
      try {
        const started = Date.now();
        const answer = await rawExchange('GET /v4/pay/orders/x/y HTTP/1.1\r\nHost: localhost\r\nBroken header line\r\n\r\n');
        expect(Date.now() - started).toBeLessThan(5_000);
        expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
        expect(answer).not.toMatch(/sparkpay-signature/i);
        expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 40009 });
      } finally {
        keys.signingKeyFor = real;
      }
    });

    it('a body of exactly 64 KiB is read (unknown fields are ignored)', async () => {
      const base = std({ pad: '' });
      const text = JSON.stringify(base);
      const body = JSON.stringify({ ...base, pad: 'x'.repeat(64 * 1024 - Buffer.byteLength(text)) });
      expect(Buffer.byteLength(body)).toBe(64 * 1024);
      accepted(await create(body));
    });
  });

  describe('wrong JSON types (§7-§9)', () => {
    const baseBody = (c: FieldCase): Json => {
      if (c.edition === 'pro') {
        return c.base === 'available' ? pro({ available_payment_currency_networks: [{ currency: 'USDT', networks: ['2', '4'] }] }) : pro();
      }
      if (c.base === 'divide_detail') return std({ divide_detail: structuredClone(SPLIT) });
      if (c.base === 'split_details') return std({ split_details: compat(t.merchant.merchantNo) });
      return std();
    };
    const send = (c: FieldCase, body: Json) => (c.edition === 'pro' ? createPro(body) : create(body));

    it.each(WRONG_TYPE_CASES)('$name: 40009', async (c) => {
      const res = await refused(() => send(c, withPath(baseBody(c), c.path, c.value)), 40009);
      expect(res.json.message).toContain(String(c.path[c.path.length - 1] === 0 ? c.path[c.path.length - 2] : c.path[c.path.length - 1]));
    });

    it.each(NULL_REQUIRED_CASES)('$name null, "" or missing: 40003', async (c) => {
      for (const value of [null, '', undefined]) {
        const res = await refused(() => send(c, withPath(baseBody(c), c.path, value)), 40003);
        expect(res.json.message).toContain(String(c.path[0]));
      }
    });

    it('the base bodies of the table are valid', async () => {
      for (const base of [undefined, 'divide_detail', 'split_details'] as const) accepted(await create(baseBody({ edition: 'standard', path: [], kind: 'string', base })));
      for (const base of [undefined, 'available'] as const) accepted(await createPro(baseBody({ edition: 'pro', path: [], kind: 'string', base })));
    });

    it('null for an optional field means not sent', async () => {
      const data = accepted(await create(std({ notify_url: null, merchant_order_timeout: null, divide_detail: null, receive_network: null, extension: null })));
      expect(data.expire_time).toBe(t.clock.seconds() + 1800);
    });

    it('a network enum may be a JSON number', async () => {
      expect(networksOf(accepted(await create(std({ receive_network: 4 }))))).toEqual(['USDT@4']);
      expect(networksOf(accepted(await createPro(pro({ available_payment_currency_networks: [{ currency: 'USDC', networks: [3, '4'] }] }))))).toEqual(['USDC@3', 'USDC@4']);
    });

    it('a missing field and a wrong type at once: 40003 wins', async () => {
      await refused(() => create(std({ total_amount: undefined, merchant_order_time: 'now' })), 40003);
    });

    it.each([
      ['merchant_order_desc', 257],
      ['goods_info', 1025],
      ['merchant_order_no', 65],
      ['merchant_application_user_id', 65],
      ['business_info', 1025],
      ['extension', 1025],
    ])('%s over %i characters: 40009', async (field, length) => {
      await refused(() => create(std({ [field]: 'x'.repeat(length) })), 40009);
      accepted(await create(std({ [field]: 'x'.repeat(length - 1) })));
    });
  });

  describe('amounts (§5)', () => {
    it.each([['-1'], ['0'], ['0.000'], ['1e3'], ['1.2.3'], [' 1'], ['1 '], ['+1'], ['1.'], ['.5'], ['1,5'], ['0x10'], ['\uff11'], ['1'.repeat(31)], ['0'.repeat(30) + '1']])(
      'total_amount %j: 41013',
      async (amount) => {
        await refused(() => create(std({ total_amount: amount })), 41013);
        await refused(() => createPro(pro({ pricing_amount: amount })), 41013);
      },
    );

    it('too many decimals: 41018 (USDT has 6, USD 2)', async () => {
      await refused(() => create(std({ total_amount: '10.1234567' })), 41018);
      await refused(() => createPro(pro({ pricing_amount: '10.001' })), 41018);
      await refused(() => createPro(pro({ pricing_currency: 'ETH', pricing_amount: '0.123456789' })), 41018);
    });

    it('trailing zeros beyond the precision are no extra precision', async () => {
      const data = accepted(await create(std({ total_amount: '10.5000000' })));
      expect(data.total_amount).toBe('10.5000000');
    });

    it('30 integer digits are accepted', async () => {
      const amount = '9'.repeat(30);
      const data = accepted(await create(std({ total_amount: amount, receive_network: '4' })));
      expect(data.payment_options).toEqual([{ network: '4', currency: 'USDT', amount }]);
    });

    it('a JSON number 10.5: 40009', async () => {
      await refused(() => create(std({ total_amount: 10.5 })), 40009);
      await refused(() => create(std({ total_amount: 10 })), 40009);
      await refused(() => createPro(pro({ pricing_amount: 10.5 })), 40009);
    });

    it('an amount not above the minimum service fee on any network: 41028; networks where it is not are dropped', async () => {
      await refused(() => create(std({ total_amount: '0.10' })), 41028);
      expect(networksOf(accepted(await create(std({ total_amount: '0.11' }))))).toEqual(['USDT@3', 'USDT@4']);
    });
  });

  describe('URLs', () => {
    const long = (n: number) => `https://merchant.example/${'a'.repeat(n - 'https://merchant.example/'.length)}`;
    const BAD = [['ftp://x'], ['http://'], ['not a url'], ['javascript:alert(1)'], ['https://exa mple.com/'], ['//merchant.example/n'], [long(513)]];

    it.each(BAD)('notify_url %s: 41001', async (url) => {
      await refused(() => create(std({ notify_url: url })), 41001);
      await refused(() => createPro(pro({ notify_url: url })), 41001);
    });

    it.each(BAD)('redirect_url %s: 41000', async (url) => {
      await refused(() => create(std({ redirect_url: url })), 41000);
      await refused(() => createPro(pro({ redirect_url: url })), 41000);
    });

    it('both bad: 41001 first', async () => {
      await refused(() => create(std({ notify_url: 'ftp://x', redirect_url: 'ftp://y' })), 41001);
    });

    it('512 characters and http or https are fine', async () => {
      expect(long(512)).toHaveLength(512);
      accepted(await create(std({ notify_url: long(512), redirect_url: 'http://127.0.0.1:8080/done?x=1#top' })));
    });
  });

  describe('split (§9)', () => {
    const split = (overrides: Json) => std({ divide_detail: { ...structuredClone(SPLIT), ...overrides } });

    it('a valid split is stored and echoed', async () => {
      const body = split({});
      accepted(await create(body));
      const q = accepted(await query(String(body.request_no)));
      expect(q.divide_detail).toEqual({ seller_amount: '8', seller_addr: SELLER, merchant_amount: '2', other_details: [{ receiver_addr: OTHER, amount: '0.5' }] });
    });

    it.each([
      ['too short', '0x1234'],
      ['non-hex', `0x${'g'.repeat(40)}`],
      ['without 0x', SELLER.slice(2)],
      ['41 hex digits', `${SELLER}0`],
      ['a bad EIP-55 checksum in mixed case', BAD_CHECKSUM],
      ['surrounding spaces', ` ${SELLER}`],
    ])('a seller address %s: 41032', async (_what, addr) => {
      await refused(() => create(split({ seller_addr: addr })), 41032);
      await refused(() => create(split({ other_details: [{ receiver_addr: addr, amount: '0.50' }] })), 41032);
    });

    it('all-lower and all-upper hex carry no checksum and are fine', async () => {
      accepted(await create(split({ seller_addr: SELLER.toLowerCase() })));
      accepted(await create(split({ seller_addr: `0x${SELLER.slice(2).toUpperCase()}` })));
    });

    it.each([['one base unit over', '8.000001'], ['one base unit under', '7.999999']])('shares %s the total: 41008', async (_what, seller) => {
      await refused(() => create(split({ seller_amount: seller })), 41008);
    });

    it('the same address twice: 41033 (case-insensitively); the same entry repeated: 41029', async () => {
      await refused(() => create(split({ seller_addr: OTHER })), 41033);
      await refused(() => create(split({ other_details: [{ receiver_addr: SELLER.toLowerCase(), amount: '0.50' }] })), 41033);
      await refused(
        () => create(split({ other_details: [{ receiver_addr: OTHER, amount: '0.20' }, { receiver_addr: OTHER, amount: '0.30' }] })),
        41033,
      );
      await refused(
        () => create(split({ other_details: [{ receiver_addr: OTHER, amount: '0.25' }, { receiver_addr: OTHER, amount: '0.25' }] })),
        41029,
      );
    });

    it('a seller without an address, or an address without an amount: 41015', async () => {
      await refused(() => create(split({ seller_addr: undefined })), 41015);
      await refused(() => create(split({ seller_amount: undefined })), 41015);
      await refused(() => create(std({ divide_detail: {} })), 41015);
    });

    it('split amounts: not positive 41014, too precise 41019', async () => {
      await refused(() => create(split({ seller_amount: '0', merchant_amount: '10.00' })), 41014);
      await refused(() => create(split({ seller_amount: '-8.00' })), 41014);
      await refused(() => create(split({ seller_amount: '7.9999999', merchant_amount: '2.0000001' })), 41019);
    });

    it('merchant_amount not above the fee on any network: 41007; networks where it is not are dropped', async () => {
      // Fees on 10.50 USDT: 1.00 (minimum) on Ethereum, 0.10 (minimum) elsewhere.
      await refused(() => create(split({ seller_amount: '10.40', merchant_amount: '0.10', other_details: [] })), 41007);
      const data = accepted(await create(split({ seller_amount: '10.39', merchant_amount: '0.11', other_details: [] })));
      expect(networksOf(data)).toEqual(['USDT@3', 'USDT@4']);
    });

    it('more than 20 receivers: 43011', async () => {
      const others = Array.from({ length: 20 }, (_, i) => ({ receiver_addr: `0x${(i + 1).toString(16).padStart(40, '0')}`, amount: '0.01' }));
      await refused(() => create(split({ seller_amount: '8.30', other_details: others })), 43011);
      accepted(await create(split({ seller_amount: '8.31', other_details: others.slice(1) })));
    });

    it("a split address that is the merchant's CA address on an order network: 41034", async () => {
      const m = await t.addMerchant();
      const ca = '0x00000000000000000000000000000000000000ca';
      expect((await updateMerchant(t.gateway, m.merchantNo, { caAddresses: { '4': ca } })).ok).toBe(true);
      await refused(() => create(std({ divide_detail: { ...SPLIT, seller_addr: ca } }, m), m), 41034);
      // Not a network of this order: fine.
      accepted(await create(std({ receive_network: '3', divide_detail: { ...SPLIT, seller_addr: ca } }, m), m));
    });

    it('both divide_detail and split_details: 40009', async () => {
      await refused(() => create(std({ divide_detail: SPLIT, split_details: compat(t.merchant.merchantNo) })), 40009);
    });
  });

  describe('compatibility split_details (§9)', () => {
    const entry = (split_type: unknown, split_purpose: unknown, receiver: string, amount: string) => ({ split_type, split_purpose, receiver, amount });
    const withEntries = (entries: unknown[]) => std({ split_details: entries });

    it('maps onto divide_detail', async () => {
      const body = withEntries(compat(t.merchant.merchantNo));
      accepted(await create(body));
      const q = accepted(await query(String(body.request_no)));
      expect(q.divide_detail).toEqual({ seller_amount: '8', seller_addr: SELLER, merchant_amount: '2.5', other_details: [] });
    });

    it('accepts split_type and split_purpose as digit strings', async () => {
      const m = t.merchant.merchantNo;
      accepted(await create(withEntries([entry('2', '1', SELLER, '8.00'), entry('1', '2', m, '2.50')])));
    });

    it('split_type not 1 or 2: 41005', async () => {
      const m = t.merchant.merchantNo;
      await refused(() => create(withEntries([entry(2, 1, SELLER, '8.00'), entry(3, 2, m, '2.50')])), 41005);
      await refused(() => create(withEntries([entry(0, 1, SELLER, '8.00'), entry(1, 2, m, '2.50')])), 41005);
    });

    it('split_purpose not 1, 2 or 3: 41006', async () => {
      const m = t.merchant.merchantNo;
      await refused(() => create(withEntries([entry(2, 1, SELLER, '8.00'), entry(1, 4, m, '2.50')])), 41006);
    });

    it('type and purpose that do not go together: 41025', async () => {
      const m = t.merchant.merchantNo;
      await refused(() => create(withEntries([entry(2, 1, SELLER, '8.00'), entry(2, 2, OTHER, '2.50')])), 41025);
      await refused(() => create(withEntries([entry(1, 1, m, '8.00'), entry(1, 2, m, '2.50')])), 41025);
    });

    it('no main recipient: 41015; several: 41016', async () => {
      const m = t.merchant.merchantNo;
      await refused(() => create(withEntries([entry(1, 2, m, '10.50')])), 41015);
      await refused(() => create(withEntries([])), 41015);
      await refused(() => create(withEntries([entry(2, 1, SELLER, '4.00'), entry(2, 1, OTHER, '4.00'), entry(1, 2, m, '2.50')])), 41016);
    });

    it('no merchant service fee entry: 41026', async () => {
      const m = t.merchant.merchantNo;
      await refused(() => create(withEntries([entry(2, 1, SELLER, '8.00'), entry(1, 3, m, '2.50')])), 41026);
    });

    it('a fee entry naming another merchant: 41017', async () => {
      const m = t.merchant.merchantNo;
      await refused(() => create(withEntries([entry(2, 1, SELLER, '8.00'), entry(1, 2, t.otherMerchant.merchantNo, '2.50')])), 41017);
      await refused(() => create(withEntries([entry(2, 1, SELLER, '8.00'), entry(1, 2, m, '2.00'), entry(1, 3, 'M1', '0.50')])), 41017);
    });

    it('per-entry rules come before the structural ones', async () => {
      const m = t.merchant.merchantNo;
      // Two main recipients (41016) and, later in the list, an unknown type (41005).
      await refused(() => create(withEntries([entry(2, 1, SELLER, '4.00'), entry(2, 1, OTHER, '4.00'), entry(1, 2, m, '2.00'), entry(9, 3, m, '0.50')])), 41005);
      // No main recipient (41015) and a purpose out of range (41006).
      await refused(() => create(withEntries([entry(1, 2, m, '10.00'), entry(1, 7, m, '0.50')])), 41006);
    });

    it('the shared split rules apply to the mapped split', async () => {
      const m = t.merchant.merchantNo;
      await refused(() => create(withEntries([entry(2, 1, BAD_CHECKSUM, '8.00'), entry(1, 2, m, '2.50')])), 41032);
      await refused(() => create(withEntries([entry(2, 1, SELLER, '8.00'), entry(1, 2, m, '2.49')])), 41008);
      await refused(() => create(withEntries([entry(2, 1, SELLER, '10.40'), entry(1, 2, m, '0.10')])), 41007);
    });
  });

  describe('request_no and idempotency', () => {
    it.each([['a hyphen', 'req-1'], ['a space', 'req 1'], ['a dot', 'req.1'], ['non-ASCII', 'réq'], ['a slash', 'a/b'], ['65 characters', 'r'.repeat(65)]])(
      'request_no with %s: 41023',
      async (_what, requestNo) => {
        await refused(() => create(std({ request_no: requestNo })), 41023);
        await refused(() => createPro(pro({ request_no: requestNo })), 41023);
      },
    );

    it('request_no of 64 characters from [A-Za-z0-9_] is fine', async () => {
      accepted(await create(std({ request_no: `Ab_9${Math.random().toString(36).slice(2, 12)}`.padEnd(64, 'z') })));
    });

    it('reused with a different body: 41023', async () => {
      const body = std();
      accepted(await create(body));
      await refused(() => create({ ...body, total_amount: '10.51' }), 41023);
      await refused(() => create({ ...body, total_amount: '10.5' }), 41023);
      await refused(() => create({ ...body, merchant_order_desc: 'changed' }), 41023);
      // The same body on the other edition's endpoint is another request.
      await refused(() => createPro({ ...body, pricing_currency: 'USD', pricing_amount: '10.50' }), 41023);
    });

    it('reused with the same body in another key order: the same order, no second row', async () => {
      const body = std({ merchant_order_no: 'shop-7', divide_detail: SPLIT });
      const first = accepted(await create(body));
      const before = await orderRowCounts(t);
      const reordered = Object.fromEntries(Object.entries(body).reverse().map(([k, v]) => [k, k === 'divide_detail' ? Object.fromEntries(Object.entries(v as Json).reverse()) : v]));
      expect(Object.keys(reordered)[0]).not.toBe(Object.keys(body)[0]);
      const again = accepted(await create(JSON.stringify(reordered, null, 2)));
      expect(again).toEqual(first);
      expect(await orderRowCounts(t)).toEqual(before);
    });

    it('a Pro repeat answers exactly what the first request answered', async () => {
      const body = pro({ available_payment_currency_networks: [{ currency: 'USDT' }, { currency: 'ETH' }, { currency: 'USDC', networks: ['4', '3'] }] });
      const first = accepted(await createPro(body));
      const before = await orderRowCounts(t);
      expect(accepted(await createPro(body))).toEqual(first);
      expect(await orderRowCounts(t)).toEqual(before);
    });

    it('a request_no no order can hold finds nothing, though its lower case is an order\'s key (the Kelvin sign lowers to k)', async () => {
      const requestNo = `abk_${Math.random().toString(36).slice(2, 10)}`;
      accepted(await create(std({ request_no: requestNo })));
      const kelvin = requestNo.replace('k', '\u212A');
      expect(kelvin.toLowerCase()).toBe(requestNo);
      await refused(() => query(encodeURIComponent(kelvin)), 43005, 404);
      await refused(() => close({ merchant_no: t.merchant.merchantNo, request_no: kelvin }), 43005, 404);
      expect(accepted(await query(requestNo))).toMatchObject({ pay_status: 'PENDING' });
    });

    it('request_no is case-insensitive: ABC then abc is the same key', async () => {
      const upper = `ABC${Math.random().toString(36).slice(2, 10).toUpperCase()}`;
      const body = std({ request_no: upper });
      const first = accepted(await create(body));
      // Another request under the same key: refused, nothing stored.
      await refused(() => create({ ...body, request_no: upper.toLowerCase() }), 41023);
      await refused(() => create(std({ request_no: upper.toLowerCase(), total_amount: '99.00' })), 41023);
      const q = accepted(await query(upper.toLowerCase()));
      expect(q).toMatchObject({ payment_order_no: first.payment_order_no, request_no: upper });
    });

    it('the same request_no for another merchant is another order', async () => {
      const requestNo = `shared_${Math.random().toString(36).slice(2, 10)}`;
      const a = accepted(await create(std({ request_no: requestNo })));
      const b = accepted(await create(std({ request_no: requestNo }, t.otherMerchant), t.otherMerchant));
      expect(a.payment_order_no).not.toBe(b.payment_order_no);
    });

    it('20 concurrent identical requests create exactly one order', async () => {
      const body = std({ divide_detail: SPLIT });
      const before = await orderRowCounts(t);
      const answers = await Promise.all(Array.from({ length: 20 }, () => create(body)));
      const numbers = new Set(answers.map((r) => accepted(r).payment_order_no));
      expect(numbers.size).toBe(1);
      const rows = await t.gateway.db.kysely.selectFrom('orders').select('payment_order_no').where('request_no_key', '=', String(body.request_no).toLowerCase()).execute();
      expect(rows).toEqual([{ payment_order_no: [...numbers][0] }]);
      const after = await orderRowCounts(t);
      expect(after.orders).toBe(before.orders + 1);
      expect(after.options).toBe(before.options + 3);
    });
  });

  describe('concurrent requests', () => {
    it('concurrent different bodies under one request_no: one order, the others 41023', async () => {
      const requestNo = `race_${Math.random().toString(36).slice(2, 10)}`;
      const before = await orderRowCounts(t);
      const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => create(std({ request_no: requestNo, total_amount: `${10 + i}.00` }))));
      const won = answers.filter((r) => r.json.code === 0);
      expect(won).toHaveLength(1);
      for (const r of answers.filter((a) => a.json.code !== 0)) expectError(r, 41023);
      expect((await orderRowCounts(t)).orders).toBe(before.orders + 1);
      expect(accepted(await query(requestNo)).total_amount).toBe(won[0]!.json.data!.total_amount);
    });

    it('concurrent closes of one order: one succeeds, the others 43007', async () => {
      const body = std();
      accepted(await create(body));
      const answers = await Promise.all(Array.from({ length: 8 }, () => close({ merchant_no: t.merchant.merchantNo, request_no: body.request_no })));
      expect(answers.filter((r) => r.json.code === 0)).toHaveLength(1);
      for (const r of answers.filter((a) => a.json.code !== 0)) expectError(r, 43007, 409);
      expect(accepted(await query(String(body.request_no)))).toMatchObject({ pay_status: 'CLOSED', sequence: 1 });
    });

    it('a close racing a payment: the order ends either CLOSED or PAYING, never both', async () => {
      const body = std();
      const created = accepted(await create(body));
      const [closed] = await Promise.all([
        close({ merchant_no: t.merchant.merchantNo, request_no: body.request_no }),
        observeTransfer(t, { paymentOrderNo: String(created.payment_order_no), amount: 1_000_000n, status: 'SEEN', confirmations: 1 }),
      ]);
      const q = accepted(await query(String(body.request_no)));
      if (closed.json.code === 0) {
        // Closed first: the transfer after it is money after closure (two changes).
        expect(q).toMatchObject({ pay_status: 'CLOSED', close_reason: 'MERCHANT_CLOSED', pay_exception: 'PAID_LATE', sequence: 2 });
      } else {
        expectError(closed, 43006, 409);
        expect(q).toMatchObject({ pay_status: 'PAYING', close_reason: null, sequence: 1 });
      }
    });
  });

  describe('currency and networks', () => {
    it.each([['XYZ'], ['USD'], ['HKD'], ['usdt'], ['USDT ']])('merchant_order_currency %j: 41009', async (currency) => {
      await refused(() => create(std({ merchant_order_currency: currency })), 41009);
    });

    it('a Pro pricing currency that does not exist: 41009', async () => {
      await refused(() => createPro(pro({ pricing_currency: 'EUR' })), 41009);
    });

    it.each([
      ['USDT', '5'],
      ['USDT', '2,5'],
      ['IRIS', '2'],
      ['ETH', '4'],
    ])('%s on network %s, which does not carry it: 41031', async (currency, network) => {
      await refused(() => create(std({ merchant_order_currency: currency, total_amount: '1000', receive_network: network })), 41031);
    });

    it.each([['9'], ['1'], ['0'], ['2,9'], [9], ['2,2']])('receive_network %j: 41027', async (network) => {
      await refused(() => create(std({ receive_network: network })), 41027);
    });

    it('a merchant without an external wallet on the requested network: 41035', async () => {
      const m = await t.addMerchant({ wallets: { '4': WALLET } });
      await refused(() => create(std({ receive_network: '2' }, m), m), 41035);
      await refused(() => create(std({ receive_network: '2,4' }, m), m), 41035);
      await refused(() => create(std({ merchant_order_currency: 'IRIS', total_amount: '1000' }, m), m), 41035);
      await refused(() => createPro(pro({ available_payment_currency_networks: [{ currency: 'USDT', networks: ['3'] }] }, m), m), 41035);
      // Without receive_network the order uses the networks it has a wallet on.
      expect(networksOf(accepted(await create(std({}, m), m)))).toEqual(['USDT@4']);
    });
  });

  describe('times', () => {
    it('timeout not after the order time: 41021', async () => {
      const now = t.clock.seconds();
      await refused(() => create(std({ merchant_order_time: now, merchant_order_timeout: now })), 41021);
      await refused(() => create(std({ merchant_order_time: now, merchant_order_timeout: now - 10 })), 41021);
      // Also in the past: 41021 is checked first.
      await refused(() => create(std({ merchant_order_time: now - 100, merchant_order_timeout: now - 200 })), 41021);
    });

    it('timeout in the past: 41012', async () => {
      const now = t.clock.seconds();
      await refused(() => create(std({ merchant_order_time: now - 100, merchant_order_timeout: now - 50 })), 41012);
      await refused(() => create(std({ merchant_order_time: now - 100, merchant_order_timeout: now })), 41012);
    });

    it('a timeout in the future is the deadline, capped at 7 days', async () => {
      const now = t.clock.seconds();
      expect(accepted(await create(std({ merchant_order_timeout: now + 1 }))).expire_time).toBe(now + 1);
      expect(accepted(await create(std({ merchant_order_timeout: now + 8 * 86_400 }))).expire_time).toBe(now + 7 * 86_400);
      expect(accepted(await create(std())).expire_time).toBe(now + 1800);
    });
  });

  describe('merchant state', () => {
    it('an inactive merchant: 41002', async () => {
      const m = await t.addMerchant();
      expect((await updateMerchant(t.gateway, m.merchantNo, { status: 'INACTIVE' })).ok).toBe(true);
      await refused(() => create(std({}, m), m), 41002);
      await refused(() => createPro(pro({}, m), m), 41002);
      // The merchant checks come before request_no.
      await refused(() => create(std({ request_no: 'bad-no' }, m), m), 41002);
    });

    it('online payment off: 41039; inactive as well: 41002', async () => {
      const m = await t.addMerchant();
      expect((await updateMerchant(t.gateway, m.merchantNo, { onlinePayment: false })).ok).toBe(true);
      await refused(() => create(std({}, m), m), 41039);
      await refused(() => createPro(pro({}, m), m), 41039);
      expect((await updateMerchant(t.gateway, m.merchantNo, { status: 'INACTIVE' })).ok).toBe(true);
      await refused(() => create(std({}, m), m), 41002);
      expect((await updateMerchant(t.gateway, m.merchantNo, { status: 'ACTIVE', onlinePayment: true })).ok).toBe(true);
      accepted(await create(std({}, m), m));
    });
  });

  describe('Pro edition (§8)', () => {
    const sorted = (data: Json) => (data.payment_options as { network: string; currency: string; amount: string }[]).map((o) => `${o.currency}@${o.network}=${o.amount}`).sort();

    it('priced in USD: every pair the merchant can receive, converted at the rates', async () => {
      const body = pro({ pricing_currency: 'USD', pricing_amount: '10.00' });
      const data = accepted(await createPro(body));
      expect(data).toMatchObject({ pay_status: 'PENDING', pricing_amount: '10.00', pricing_currency: 'USD', merchant_no: t.merchant.merchantNo });
      expect(data).not.toHaveProperty('total_amount');
      expect(sorted(data)).toEqual([
        'BNB@3=0.01666667',
        'ETH@2=0.00333334',
        'HSK@2=20',
        'IRIS@5=1000',
        'POL@4=20',
        'USDC@2=10',
        'USDC@3=10',
        'USDC@4=10',
        'USDT@2=10',
        'USDT@3=10',
        'USDT@4=10',
      ]);
      const q = accepted(await query(String(body.request_no), t.merchant, '/pro'));
      expect(q).toMatchObject({ payment_order_no: data.payment_order_no, pricing_amount: '10.00', pricing_currency: 'USD', pay_status: 'PENDING' });
      expect(q).not.toHaveProperty('total_amount');
    });

    it('priced in HKD', async () => {
      const data = accepted(await createPro(pro({ pricing_currency: 'HKD', pricing_amount: '100.00' })));
      expect(data).toMatchObject({ pricing_amount: '100.00', pricing_currency: 'HKD' });
      // 100 HKD × 0.1282 = 12.82 USD.
      expect(sorted(data)).toEqual(expect.arrayContaining(['USDT@4=12.82', 'ETH@2=0.00427334', 'BNB@3=0.02136667', 'IRIS@5=1282']));
    });

    it('priced in a crypto currency', async () => {
      const data = accepted(await createPro(pro({ pricing_currency: 'ETH', pricing_amount: '0.01' })));
      expect(data).toMatchObject({ pricing_amount: '0.01', pricing_currency: 'ETH' });
      expect(sorted(data)).toEqual(expect.arrayContaining(['ETH@2=0.01', 'USDT@4=30', 'BNB@3=0.05', 'IRIS@5=3000']));
    });

    it('a Pro split is in the pricing currency', async () => {
      const body = pro({ divide_detail: { seller_amount: '7.50', seller_addr: SELLER, merchant_amount: '2.00', other_details: [{ receiver_addr: OTHER, amount: '0.50' }] } });
      accepted(await createPro(body));
      expect(accepted(await query(String(body.request_no), t.merchant, '/pro')).divide_detail).toEqual({
        seller_amount: '7.5',
        seller_addr: SELLER,
        merchant_amount: '2',
        other_details: [{ receiver_addr: OTHER, amount: '0.5' }],
      });
      // USD has 2 decimals.
      await refused(() => createPro(pro({ divide_detail: { seller_amount: '7.995', seller_addr: SELLER, merchant_amount: '2.005' } })), 41019);
      await refused(() => createPro(pro({ divide_detail: { seller_amount: '7.99', seller_addr: SELLER, merchant_amount: '2.00' } })), 41008);
      // 0.05 USD is below the 0.10 USD minimum fee everywhere.
      await refused(() => createPro(pro({ divide_detail: { seller_amount: '9.95', seller_addr: SELLER, merchant_amount: '0.05' } })), 41007);
    });

    it('receive_network restricts the Pro pairs too', async () => {
      const data = accepted(await createPro(pro({ receive_network: '3,5' })));
      expect(networksOf(data)).toEqual(['BNB@3', 'IRIS@5', 'USDC@3', 'USDT@3']);
      await refused(() => createPro(pro({ receive_network: '3', available_payment_currency_networks: [{ currency: 'USDT', networks: ['4'] }] })), 41031);
    });

    it('available_payment_currency_networks restricts the pairs', async () => {
      const data = accepted(
        await createPro(pro({ available_payment_currency_networks: [{ currency: 'USDT', networks: ['2', '4'] }, { currency: 'ETH' }] })),
      );
      expect(networksOf(data)).toEqual(['ETH@2', 'USDT@2', 'USDT@4']);
    });

    it('a currency listed twice: 41036; a network twice in one entry: 41037; an unsupported pair: 41031', async () => {
      await refused(() => createPro(pro({ available_payment_currency_networks: [{ currency: 'USDT' }, { currency: 'USDT', networks: ['2'] }] })), 41036);
      await refused(() => createPro(pro({ available_payment_currency_networks: [{ currency: 'USDT', networks: ['2', '2'] }] })), 41037);
      await refused(() => createPro(pro({ available_payment_currency_networks: [{ currency: 'USDT', networks: ['4', 4] }] })), 41037);
      await refused(() => createPro(pro({ available_payment_currency_networks: [{ currency: 'IRIS', networks: ['2'] }] })), 41031);
      await refused(() => createPro(pro({ available_payment_currency_networks: [{ currency: 'USDT', networks: ['9'] }] })), 41027);
    });

    it('no pair above the minimum service fee: 41038', async () => {
      await refused(() => createPro(pro({ pricing_amount: '0.05' })), 41038);
      await refused(() => createPro(pro({ pricing_amount: '0.50', available_payment_currency_networks: [{ currency: 'ETH' }] })), 41038);
    });

    it('a Pro order is not found on the standard query path, nor the reverse', async () => {
      const p = pro();
      accepted(await createPro(p));
      await refused(() => query(String(p.request_no)), 43005, 404);
      const s = std();
      accepted(await create(s));
      await refused(() => query(String(s.request_no), t.merchant, '/pro'), 43005, 404);
    });
  });

  describe('close (§12)', () => {
    it('a PAYING or PAID order cannot be closed: 43006, HTTP 409, nothing changes', async () => {
      const body = std();
      const created = accepted(await create(body));
      const paymentOrderNo = String(created.payment_order_no);
      await observeTransfer(t, { paymentOrderNo, amount: 1_000_000n, status: 'SEEN', confirmations: 1 });
      expect(accepted(await query(String(body.request_no))).pay_status).toBe('PAYING');
      const res = await close({ merchant_no: t.merchant.merchantNo, request_no: body.request_no });
      expectError(res, 43006, 409);
      expect(res.json.message).toContain('PAYING');
      expect(accepted(await query(String(body.request_no)))).toMatchObject({ pay_status: 'PAYING', closed_time: 0, sequence: 1 });

      await observeTransfer(t, { paymentOrderNo, amount: 10_500_000n });
      expect(accepted(await query(String(body.request_no))).pay_status).toBe('PAID');
      expectError(await close({ merchant_no: t.merchant.merchantNo, request_no: body.request_no }), 43006, 409);
      // COMPLETED too (§12), over HTTP: the settlement is final.
      const done = await transition({ store: t.gateway.store, clock: t.clock, ids: t.gateway.ids }, paymentOrderNo, { kind: 'SETTLEMENT_FINAL' });
      expect(done).toMatchObject({ ok: true, changed: true });
      expect(accepted(await query(String(body.request_no))).pay_status).toBe('COMPLETED');
      expectError(await close({ merchant_no: t.merchant.merchantNo, request_no: body.request_no }), 43006, 409);
      expect(accepted(await query(String(body.request_no))).pay_status).toBe('COMPLETED');
    });

    it('an unknown order: 43005, HTTP 404', async () => {
      expectError(await close({ merchant_no: t.merchant.merchantNo, request_no: 'no_such_order' }), 43005, 404);
    });

    it("another merchant's order is not found under this merchant", async () => {
      const body = std({}, t.otherMerchant);
      accepted(await create(body, t.otherMerchant));
      expectError(await close({ merchant_no: t.merchant.merchantNo, request_no: body.request_no }), 43005, 404);
      expect(accepted(await query(String(body.request_no), t.otherMerchant)).pay_status).toBe('PENDING');
    });

    it('closes case-insensitively by request_no', async () => {
      const body = std({ request_no: `CLOSE${Math.random().toString(36).slice(2, 10).toUpperCase()}` });
      accepted(await create(body));
      const res = await close({ merchant_no: t.merchant.merchantNo, request_no: String(body.request_no).toLowerCase() });
      expect(accepted(res)).toMatchObject({ request_no: body.request_no, pay_status: 'CLOSED' });
    });

    it('bad close bodies: 40003 for a missing field, 40009 for a wrong type', async () => {
      const m = t.merchant.merchantNo;
      expectError(await close({ merchant_no: m }), 40003);
      expectError(await close({ request_no: 'x' }), 40003);
      expectError(await close({ merchant_no: m, request_no: '' }), 40003);
      expectError(await close({ merchant_no: m, request_no: null }), 40003);
      expectError(await close({ merchant_no: m, request_no: 42 }), 40009);
      expectError(await close({ merchant_no: m, request_no: ['x'] }), 40009);
      expectError(await close({ merchant_no: 7, request_no: 'x' }), 40009);
      expectError(await close({ merchant_no: m, request_no: 'r'.repeat(65) }), 40009);
    });
  });

  describe('which error wins (§7 pinned order), end to end', () => {
    it('fixing one fault at a time reveals the next code', async () => {
      const m = t.merchant;
      const now = t.clock.seconds();
      const faults: [number, Json][] = [
        [40003, { total_amount: undefined }],
        [40009, { merchant_order_time: 'yesterday' }],
        [40008, { merchant_no: 'M000000000001' }],
        [41023, { request_no: 'bad-request-no' }],
        [41009, { merchant_order_currency: 'XYZ' }],
        [41013, { total_amount: '-1' }],
        [41021, { merchant_order_time: now, merchant_order_timeout: now - 5 }],
        [41001, { notify_url: 'ftp://x' }],
        [41000, { redirect_url: 'ftp://y' }],
        [41027, { receive_network: '9' }],
        [41032, { divide_detail: { ...SPLIT, seller_addr: '0x12' } }],
        [41008, { divide_detail: { ...SPLIT, seller_amount: '8.01' } }],
        [41007, { divide_detail: { seller_amount: '10.45', seller_addr: SELLER, merchant_amount: '0.05' } }],
      ];
      for (let i = 0; i < faults.length; i += 1) {
        // Faults i..end at once; where two touch the same field, the earlier one's value stays.
        const body = std(Object.assign({}, ...faults.slice(i).reverse().map(([, f]) => f)) as Json, m);
        await refused(() => create(body), faults[i]![0]);
      }
    });
  });
});
