// Property-based fuzzing of the running gateway over real HTTP (PROTOCOL §1-§12, §15). Where
// api-bad-input.test.ts pins one hand-picked input per rule, this file throws generated ones at
// every endpoint and checks the rules that must hold for *any* input:
//   - never HTTP 500 / code 50000 for a client's request, and no error logged by the server;
//   - the code is in the published error table and is one PROTOCOL gives that endpoint, with
//     the HTTP status §3 maps it to; where the input pins the code (§1 size and encoding, §2
//     authentication in its documented order, §7 40003 before 40009), exactly that code;
//   - every /v4/ answer is the §3 envelope signed by the calling application's platform key
//     (the default key when the AppID is unknown), with its serial and a request id;
//   - a refused request stores no order/option row; an accepted one stores exactly one order
//     whose query (§11) gives back the amounts and texts sent;
//   - the cashier JSON API (§15) answers only the token holder, in its {error, message} shape.
// Every property has a fixed seed (SPARKPAY_FUZZ_SEED moves them all; SPARKPAY_FUZZ_SCALE
// multiplies the runs for a longer search). fast-check prints the seed, the path and the
// shrunk counterexample of a failure; the "defects it found" at the end pin the defects
// found so far, one test each.
import { constants, createPublicKey, verify as rsaVerify, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateNonce, signMessage } from '@sparkpay/protocol';
import { DATABASE_KINDS } from './databases.js';
import { check, runs } from './fuzz.js';
import { readAnswer } from './raw-http.js';
import {
  api,
  defaultPlatformKey,
  deploymentWithFactory,
  orderBody,
  orderRowCounts,
  OTHER,
  proOrderBody,
  responseSignedBy,
  SELLER,
  startTestGateway,
  type Merchant,
  type TestGateway,
} from './harness.js';

// ---------------------------------------------------------------------------------------------
// Run control

/** A property test's own time limit (fast-check shrinks a failure with more requests). */
const PROPERTY_TIMEOUT = 180_000;

// ---------------------------------------------------------------------------------------------
// The contract's tables

/** The published error table (shared/seeds), read as the protocol package's own test reads it. */
function publishedCodes(): Set<number> {
  const name = 'sparkpay-error-codes.txt';
  const tried = [process.env.SPARKPAY_ERROR_SEED, fileURLToPath(new URL(`../../../../shared/seeds/${name}`, import.meta.url))];
  for (let d = dirname(fileURLToPath(import.meta.url)); dirname(d) !== d; d = dirname(d)) tried.push(join(d, 'shared', 'seeds', name));
  const found = tried.find((p): p is string => !!p && existsSync(p));
  if (!found) throw new Error(`published error table ${name} not found`);
  const codes = new Set<number>();
  for (const line of readFileSync(found, 'utf8').split(/\r?\n/)) {
    const m = /^\s*(\d{5})\s*number/.exec(line);
    if (m) codes.add(Number(m[1]));
  }
  if (codes.size < 50) throw new Error(`only ${codes.size} codes read from ${found}`);
  return codes;
}
const PUBLISHED = publishedCodes();

/** §3: the HTTP status of a code (40009 is 413 for a body over 64 KiB, §1). */
function protocolStatus(code: number, oversized: boolean): number {
  switch (code) {
    case 0:
      return 200;
    case 40000:
    case 40002:
      return 401;
    case 43005:
      return 404;
    case 43006:
    case 43007:
      return 409;
    case 40011:
      return 429;
    case 50000:
      return 500;
    case 40009:
      return oversized ? 413 : 400;
    default:
      return 400;
  }
}

const BODY_LIMIT = 64 * 1024;
/** §2 and §1: what any request can be refused with before its body means anything. */
const TRANSPORT_AND_AUTH = [40000, 40002, 40003, 40009, 40011];
/** §7 (with §9 split codes) for the standard endpoint; §8 adds its own three. */
const CREATE_CODES = [
  ...TRANSPORT_AND_AUTH,
  40007, 40008, 41000, 41001, 41002, 41005, 41006, 41007, 41008, 41009, 41012, 41013, 41014, 41015, 41016, 41017, 41018, 41019, 41021,
  41023, 41025, 41026, 41027, 41028, 41029, 41031, 41032, 41033, 41034, 41035, 41039, 43011,
];
type Endpoint = 'create' | 'pro' | 'query' | 'close' | 'unknown';
const ENDPOINT_CODES: Record<Endpoint, ReadonlySet<number>> = {
  create: new Set(CREATE_CODES),
  pro: new Set([...CREATE_CODES, 41036, 41037, 41038]),
  query: new Set([...TRANSPORT_AND_AUTH, 40007, 40008, 43005]),
  close: new Set([...TRANSPORT_AND_AUTH, 40007, 40008, 43005, 43006, 43007]),
  // No endpoint: nothing but a documented code.
  unknown: PUBLISHED,
};

/** §7/§8 required fields; absent = missing, null or "" (40003). */
const REQUIRED: Record<'create' | 'pro' | 'close', readonly string[]> = {
  create: ['merchant_no', 'request_no', 'merchant_order_time', 'total_amount', 'merchant_order_currency'],
  pro: ['merchant_no', 'request_no', 'merchant_order_time', 'pricing_currency', 'pricing_amount'],
  close: ['request_no', 'merchant_no'],
};
/** §7 wire types of the top-level fields (receive_network: a string or a number, §5). */
const SHARED_STRING_FIELDS = [
  'merchant_no', 'request_no', 'merchant_order_desc', 'goods_info', 'merchant_order_no', 'merchant_application_user_id', 'notify_url', 'redirect_url',
  'business_info', 'extension',
];
/** The other edition's amount fields are unknown fields, ignored (§7). */
const STRING_FIELDS: Record<'create' | 'pro' | 'close', readonly string[]> = {
  create: [...SHARED_STRING_FIELDS, 'total_amount', 'merchant_order_currency'],
  pro: [...SHARED_STRING_FIELDS, 'pricing_currency', 'pricing_amount'],
  close: REQUIRED.close,
};
const INTEGER_FIELDS = ['merchant_order_time', 'merchant_order_timeout'];
/** Texts the query (§11) gives back as sent ('' when not sent). */
const ECHOED_TEXTS = ['merchant_order_no', 'merchant_application_user_id', 'merchant_order_desc', 'goods_info', 'business_info', 'extension'];

// ---------------------------------------------------------------------------------------------
// JSON bodies as trees: ordered entries, so keys may repeat and literals may be written as is

/** A JSON literal written verbatim (1e309, -0, 123456789012345678901234567890, deep nesting). */
class Raw {
  constructor(readonly text: string) {}
  toString() {
    return `Raw(${this.text.length > 40 ? `${this.text.slice(0, 40)}…` : this.text})`;
  }
}
/** A JSON object as its entries in order; a key may appear twice. */
class Obj {
  constructor(public entries: [string, Node][]) {}
  toString() {
    return render(this, 'compact');
  }
}
type Node = Raw | Obj | Node[] | string | number | boolean | null;

function toNode(v: unknown): Node {
  if (Array.isArray(v)) return v.map(toNode);
  if (v !== null && typeof v === 'object') return new Obj(Object.entries(v).map(([k, x]) => [k, toNode(x)]));
  return v as Node;
}

type Format = 'compact' | 'pretty' | 'crlf' | 'spaced';
function render(n: Node, format: Format, depth = 0): string {
  if (n instanceof Raw) return n.text;
  const nl = format === 'compact' ? '' : format === 'crlf' ? '\r\n' : '\n';
  const pad = (d: number) => (format === 'pretty' ? '  '.repeat(d) : format === 'crlf' ? '\t'.repeat(d) : format === 'spaced' ? ' ' : '');
  const colon = format === 'compact' ? ':' : ': ';
  if (n instanceof Obj) {
    if (n.entries.length === 0) return '{}';
    return `{${nl}${n.entries.map(([k, v]) => `${pad(depth + 1)}${JSON.stringify(k)}${colon}${render(v, format, depth + 1)}`).join(`,${nl}`)}${nl}${pad(depth)}}`;
  }
  if (Array.isArray(n)) {
    if (n.length === 0) return '[]';
    return `[${nl}${n.map((v) => `${pad(depth + 1)}${render(v, format, depth + 1)}`).join(`,${nl}`)}${nl}${pad(depth)}]`;
  }
  return JSON.stringify(n) ?? 'null';
}

type Step = { in: Obj; index: number } | { in: Node[]; index: number };

/** Every entry of every object and every array element, depth first. */
function slots(n: Node, out: Step[] = []): Step[] {
  if (n instanceof Obj) {
    n.entries.forEach(([, v], index) => {
      out.push({ in: n, index });
      slots(v, out);
    });
  } else if (Array.isArray(n)) {
    n.forEach((v, index) => {
      out.push({ in: n, index });
      slots(v, out);
    });
  }
  return out;
}

function objects(n: Node, out: Obj[] = []): Obj[] {
  if (n instanceof Obj) {
    out.push(n);
    for (const [, v] of n.entries) objects(v, out);
  } else if (Array.isArray(n)) for (const v of n) objects(v, out);
  return out;
}

type TreeMutation =
  | { op: 'set'; at: number; value: Node }
  | { op: 'retext'; at: number; value: string }
  | { op: 'delete'; at: number }
  | { op: 'add'; at: number; key: string; value: Node }
  | { op: 'duplicate'; at: number; value: Node; fuzzFirst: boolean };

function applyMutation(root: Obj, m: TreeMutation): void {
  if (m.op === 'add') {
    const all = objects(root);
    all[m.at % all.length]!.entries.push([m.key, m.value]);
    return;
  }
  const all = slots(root);
  if (m.op === 'retext') {
    // Same JSON type, other text: gets past the type checks to the rules and the database.
    const texts = all.filter((s) => (s.in instanceof Obj ? s.in.entries[s.index]![1] : s.in[s.index]) !== null && typeof (s.in instanceof Obj ? s.in.entries[s.index]![1] : s.in[s.index]) === 'string');
    if (texts.length === 0) return;
    const s = texts[m.at % texts.length]!;
    if (s.in instanceof Obj) s.in.entries[s.index]![1] = m.value;
    else s.in[s.index] = m.value;
    return;
  }
  if (m.op === 'duplicate') {
    const keyed = all.filter((s): s is { in: Obj; index: number } => s.in instanceof Obj);
    if (keyed.length === 0) return;
    const s = keyed[m.at % keyed.length]!;
    const key = s.in.entries[s.index]![0];
    // JSON.parse keeps the last of repeated keys: fuzzFirst keeps the original value in force.
    s.in.entries.splice(m.fuzzFirst ? s.index : s.index + 1, 0, [key, m.value]);
    return;
  }
  if (all.length === 0) return;
  const s = all[m.at % all.length]!;
  if (s.in instanceof Obj) {
    if (m.op === 'delete') s.in.entries.splice(s.index, 1);
    else s.in.entries[s.index]![1] = m.value;
  } else if (m.op === 'delete') s.in.splice(s.index, 1);
  else s.in[s.index] = m.value;
}

// ---------------------------------------------------------------------------------------------
// Generators

const LITERALS = [
  '1e309', '-1e309', '-0', '0.0', '1E2', '1e-400', '9007199254740993', '123456789012345678901234567890', '4.0', '2.5', '-1', '0', '1795608000.0',
  '1e21', '0e0', '-0.0', '1.7976931348623157e308', '5e-324',
];
const STRINGS = [
  '', ' ', '\u0000', 'a\u0000b', '\ud800', 'x\udc00y', '\u202e', '\ufeff10.50', '\u{1F4B8}', 'null', 'true', '0', '-0', '10.50', '10.5000000', '0.000001',
  '1e3', '\uff11\uff10', 'USDT', 'usdt', 'USDC', 'USD', 'HKD', 'ETH', 'BNB', 'POL', 'IRIS', 'HSK', '2', '3', '4', '5', '9', '2,4', '2,,4', ',2',
  '4,3,2,5', '2, 4', SELLER, SELLER.toLowerCase(), OTHER, '0x', `0x${'0'.repeat(40)}`, '__proto__', 'constructor', 'toString', '%00', '\\', '"',
  '</script>', 'x'.repeat(64), 'x'.repeat(65), 'x'.repeat(256), 'x'.repeat(257), 'x'.repeat(1025), '9'.repeat(30), '9'.repeat(31), `1.${'0'.repeat(40)}`,
  'https://merchant.example/n', 'http://127.0.0.1/', 'javascript:alert(1)', 'http://[::1]:99999/', 'M000000000001', 'req_1', 'REQ_1',
];
const KEYS = [
  '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '', 'TOTAL_AMOUNT', 'Total_Amount', 'total_amount ', ' merchant_no',
  'merchant_no\u0000', 'split_details', 'divide_detail', 'pricing_amount', 'total_amount', 'available_payment_currency_networks', 'receive_network',
  'networks', 'currency', 'other_details', 'seller_addr', '0', '1',
];

/** `arb` in one run out of `oneIn`, null otherwise. */
const rarely = <T>(arb: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | null> =>
  fc.oneof({ weight: oneIn - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });

const decimalArb = fc
  .tuple(fc.stringMatching(/^[1-9][0-9]{0,29}$/), fc.stringMatching(/^[0-9]{0,8}$/))
  .map(([i, f]) => (f ? `${i}.${f}` : i));
const amountLikeArb = fc.stringMatching(/^[-+ ]?[0-9]{0,32}(\.[0-9]{0,12})?([eE][-+]?[0-9]{1,3})?$/);
const deepArb = fc
  .record({ depth: fc.integer({ min: 2, max: 200 }), kind: fc.constantFrom('array', 'object') })
  .map(({ depth, kind }) => new Raw(kind === 'array' ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`));
const numberArb = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true }),
  fc.constantFrom(0, 1, 2, 3, 4, 5, 9, -1, Number.MAX_SAFE_INTEGER, 2 ** 53, 1e21, 1_795_608_000, 1_795_608_000 + 3600),
);
const leafArb: fc.Arbitrary<Node> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...STRINGS) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 250, maxLength: 1100 }) },
  { weight: 2, arbitrary: decimalArb },
  { weight: 2, arbitrary: amountLikeArb },
  { weight: 2, arbitrary: fc.constantFrom(...LITERALS).map((s) => new Raw(s)) },
  { weight: 2, arbitrary: numberArb },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false) },
  { weight: 1, arbitrary: rarely(deepArb, 3).map((d) => d ?? new Raw('[[[]]]')) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }).map(toNode) },
);
/** Text as UTF-16 code units: NUL, controls, lone surrogates, any plane. */
const utf16Arb = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 20 });
const textArb: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...STRINGS),
  fc.string({ unit: 'binary', maxLength: 40 }),
  utf16Arb,
  fc.tuple(fc.string({ maxLength: 10 }), fc.constantFrom('\u0000', '\ud800', '\udfff', '\u0085', '\u2028', '\uffff', '\ufffe'), fc.string({ maxLength: 10 })).map(([a, b, c]) => a + b + c),
);
const keyArb = fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 12 }));
const { node: nodeArb } = fc.letrec<{ node: Node }>((tie) => ({
  node: fc.oneof(
    { maxDepth: 2, depthIdentifier: 'node' },
    leafArb,
    fc.array(tie('node'), { maxLength: 3 }),
    fc.array(fc.tuple(keyArb, tie('node')), { maxLength: 3 }).map((e) => new Obj(e)),
  ),
}));

const treeMutationArb: fc.Arbitrary<TreeMutation> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: nodeArb }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('retext' as const), at: fc.nat(), value: textArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('add' as const), at: fc.nat(), key: keyArb, value: nodeArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), value: nodeArb, fuzzFirst: fc.boolean() }) },
);

/** How the tree becomes bytes: layout, padding to near the 64 KiB limit, a stray non-UTF-8 byte. */
interface Encoding {
  format: Format | 'bom';
  /** Pad with an unknown field to BODY_LIMIT + delta bytes, in a 1- to 4-byte character. */
  pad: { delta: number; char: string } | null;
  /** Overwrite the byte at `at` (mod length) with `byte` (0x80-0xff: never a whole UTF-8 character). */
  badByte: { at: number; byte: number } | null;
}
const encodingArb: fc.Arbitrary<Encoding> = fc.record({
  format: fc.oneof({ weight: 20, arbitrary: fc.constantFrom<Format | 'bom'>('compact', 'compact', 'pretty', 'crlf', 'spaced') }, { weight: 1, arbitrary: fc.constant<Format | 'bom'>('bom') }),
  pad: rarely(fc.record({ delta: fc.integer({ min: -8, max: 8 }), char: fc.constantFrom('x', '\u00e9', '\u20ac', '\u{1F4B8}') }), 10),
  badByte: rarely(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0x80, max: 0xff }) }), 25),
});

function encode(root: Obj, e: Encoding): Buffer {
  const format = e.format === 'bom' ? 'compact' : e.format;
  let text = render(root, format);
  if (e.pad) {
    const bare = Buffer.byteLength(render(new Obj([...root.entries, ['zz_pad', '']]), format));
    const room = BODY_LIMIT + e.pad.delta - bare;
    const unit = Buffer.byteLength(e.pad.char);
    if (room > 0) text = render(new Obj([...root.entries, ['zz_pad', e.pad.char.repeat(Math.floor(room / unit)) + 'x'.repeat(room % unit)]]), format);
  }
  let bytes = Buffer.from(e.format === 'bom' ? `\ufeff${text}` : text, 'utf8');
  if (e.badByte) {
    bytes = Buffer.from(bytes);
    bytes[e.badByte.at % bytes.length] = e.badByte.byte;
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// The wire: node:http with headers in order (duplicates, any case), the path verbatim (no dot
// segment normalisation as fetch does), Content-Length or chunked framing.

interface Wire {
  method: string;
  path: string;
  headers: [string, string][];
  body?: Buffer;
  chunked?: boolean;
}

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

function exchange(baseUrl: string, w: Wire): Promise<Reply> {
  const url = new URL(baseUrl);
  const flat: string[] = ['Host', url.host];
  for (const [k, v] of w.headers) flat.push(k, v);
  if (w.body && !w.chunked) flat.push('Content-Length', String(w.body.length));
  if (w.body && w.chunked) flat.push('Transfer-Encoding', 'chunked');
  return new Promise((resolve, reject) => {
    const r = httpRequest(
      { host: url.hostname, port: url.port, method: w.method, path: w.path, headers: flat as unknown as OutgoingHttpHeaders },
      (res) => {
        readAnswer(res).then((a) => resolve({ ...a, headers: new Headers(Object.entries(a.headers)) }), reject);
      },
    );
    r.on('error', reject);
    if (w.body && w.chunked) {
      const half = Math.floor(w.body.length / 2);
      r.write(w.body.subarray(0, half));
      r.end(w.body.subarray(half));
    } else r.end(w.body);
  });
}

/** Node's server keeps the first of these when repeated and joins every other repeated header with ", ". */
const FIRST_WINS = new Set(['user-agent', 'content-type', 'content-length', 'host', 'authorization', 'referer', 'from']);

/** The value of `name` as the server reads it (undefined: absent). */
function effective(headers: readonly [string, string][], name: string): string | undefined {
  const values = headers.filter(([k]) => k.toLowerCase() === name).map(([, v]) => v.replace(/^[ \t]+|[ \t]+$/g, ''));
  if (values.length === 0) return undefined;
  return FIRST_WINS.has(name) ? values[0] : values.join(', ');
}

/**
 * §2 signature check written from the text of PROTOCOL, not with the gateway's code: standard
 * Base64, padding optional, RSASSA-PKCS1-v1_5 SHA-256 over `timestamp\nnonce\nbody\n`.
 */
function signatureHolds(publicKey: KeyObject, timestamp: string, nonce: string, body: Buffer, signature: string): boolean {
  const m = /^([A-Za-z0-9+/]*)(={0,2})$/.exec(signature);
  if (!m) return false;
  const [, chars = '', padding = ''] = m;
  if (chars.length % 4 === 1 || (padding && (chars.length + padding.length) % 4 !== 0)) return false;
  const raw = Buffer.from(chars, 'base64');
  if (raw.length !== 256) return false;
  const message = Buffer.concat([Buffer.from(`${timestamp}\n${nonce}\n`, 'utf8'), body, Buffer.from('\n')]);
  return rsaVerify('sha256', message, { key: publicKey, padding: constants.RSA_PKCS1_PADDING }, raw);
}

// ---------------------------------------------------------------------------------------------
// Oracles

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const absent = (v: unknown) => v === undefined || v === null || v === '';

interface Signer {
  key: KeyObject;
  serial: string;
}

interface Expectation {
  endpoint: Endpoint;
  /** Body bytes sent (over BODY_LIMIT: 413/40009, §1). */
  bodyBytes: number;
  /** Whose platform key must sign the answer (§3). */
  signer: Signer;
  /** The code the input pins, when it does. */
  code?: number | readonly number[];
}

/** Everything §1-§3 require of one /v4/ answer; a list of what is wrong with it. */
function envelopeViolations(res: Reply, e: Expectation): string[] {
  const v: string[] = [];
  const oversized = e.bodyBytes > BODY_LIMIT;
  if (res.status >= 500) v.push(`HTTP ${res.status}`);
  const j = res.json;
  if (!isRecord(j)) return [...v, `the answer is not a JSON object: ${res.text.slice(0, 200)}`];
  const code = j.code;
  if (typeof code !== 'number') return [...v, `code is not a number: ${JSON.stringify(code)}`];
  if (code === 50000) v.push('code 50000 (internal error) for a client request');
  if (typeof j.message !== 'string' || j.message.trim() === '') v.push('no message');
  if (code === 0) {
    if (!isRecord(j.data)) v.push('success without a data object');
  } else {
    if (!PUBLISHED.has(code)) v.push(`code ${code} is not in the published error table`);
    else if (!ENDPOINT_CODES[e.endpoint].has(code)) v.push(`code ${code} is not one PROTOCOL gives the ${e.endpoint} endpoint`);
    if ('data' in j) v.push('an error envelope carries data');
  }
  if (res.status !== protocolStatus(code, oversized)) v.push(`HTTP ${res.status} for code ${code}; PROTOCOL §3 maps it to ${protocolStatus(code, oversized)}`);
  if (oversized && code !== 40009) v.push(`a ${e.bodyBytes}-byte body answered ${code}, not 40009/413 (§1)`);
  if (!oversized && res.status === 413) v.push(`HTTP 413 for a ${e.bodyBytes}-byte body`);
  if (e.code !== undefined && !oversized) {
    const allowed = typeof e.code === 'number' ? [e.code] : e.code;
    if (!allowed.includes(code)) v.push(`expected code ${allowed.join(' or ')}, got ${code}`);
  }
  if (!/^[0-9a-f-]{36}$/.test(res.headers.get('sparkpay-request-id') ?? '')) v.push('no Sparkpay-Request-Id');
  if (!/^application\/json/.test(res.headers.get('content-type') ?? '')) v.push(`Content-Type ${res.headers.get('content-type')}`);
  if (!/^[A-Za-z0-9]{32}$/.test(res.headers.get('sparkpay-nonce') ?? '')) v.push('the response nonce is not 32 random characters');
  if (!responseSignedBy(e.signer.key, res)) v.push("the answer is not signed with the calling application's platform key (§3)");
  else if (res.headers.get('sparkpay-serial') !== e.signer.serial) v.push(`Sparkpay-Serial ${res.headers.get('sparkpay-serial')} is not the signing key's ${e.signer.serial}`);
  return v;
}

function codeOf(res: Reply): number | undefined {
  return isRecord(res.json) && typeof res.json.code === 'number' ? res.json.code : undefined;
}

function depthOf(v: unknown): number {
  let max = 0;
  const pending: [unknown, number][] = [[v, 1]];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [x, d] = next;
    if (x === null || typeof x !== 'object') continue;
    max = Math.max(max, d);
    for (const child of Object.values(x)) pending.push([child, d + 1]);
  }
  return max;
}

/** Whether any string of `value` (member names included) holds U+0000 or a lone surrogate. */
function hasBadText(value: unknown): boolean {
  const bad = /[\0\p{Cs}]/u;
  const pending: unknown[] = [value];
  for (let x = pending.pop(); pending.length > 0 || x !== undefined; x = pending.pop()) {
    if (typeof x === 'string' && bad.test(x)) return true;
    if (x === null || typeof x !== 'object') continue;
    for (const [k, child] of Object.entries(x)) {
      if (bad.test(k)) return true;
      pending.push(child);
    }
  }
  return false;
}

/** The code §1/§7 pin for a body sent with valid authentication, when they pin one. */
function pinnedBodyCode(endpoint: 'create' | 'pro' | 'close', bytes: Buffer): number | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes));
  } catch {
    return 40009; // not UTF-8 (§1) or malformed JSON (§7)
  }
  if (!isRecord(parsed)) return 40009;
  // JSON nested past any v4 body's shape may be refused unread, like malformed JSON (server.ts).
  if (depthOf(parsed) > 64) return undefined;
  // Our decision (server.ts): text no field may hold — U+0000, a lone surrogate — anywhere in
  // the body (member names too) is refused as the body is read, before any field is judged.
  if (hasBadText(parsed)) return 40009;
  if (REQUIRED[endpoint].some((f) => absent(parsed[f]))) return 40003; // missing field first (§7 order)
  const fields = endpoint === 'close' ? REQUIRED.close : [...STRING_FIELDS[endpoint], ...INTEGER_FIELDS, 'divide_detail'];
  for (const f of fields) {
    const value = parsed[f];
    if (absent(value)) continue;
    if (STRING_FIELDS[endpoint].includes(f) && typeof value !== 'string') return 40009;
    if (INTEGER_FIELDS.includes(f) && (typeof value !== 'number' || !Number.isInteger(value))) return 40009;
    if (f === 'divide_detail' && !isRecord(value)) return 40009;
  }
  return undefined;
}

const fail = (violations: string[], what: string, res?: Reply) => {
  if (violations.length > 0) {
    throw new Error(`${violations.join('\n')}\nrequest: ${what.slice(0, 600)}${res ? `\nanswer: HTTP ${res.status} ${res.text.slice(0, 400)}` : ''}`);
  }
};

const encodeSegment = (s: string) => encodeURIComponent(s);

// ---------------------------------------------------------------------------------------------

describe.each(DATABASE_KINDS)('API fuzz on %s', (kind) => {
  let t: TestGateway;
  /** Error-level lines the server logged (an unexpected error, a nonce left unsettled, …). */
  const serverErrors: string[] = [];
  /** Every AppID the tests hold keys for: the merchant public key and the platform key of its answers. */
  const apps = new Map<string, { merchantKey: KeyObject; signer: Signer }>();
  let defaultSigner: Signer;
  /** Orders seen created (a repeat of a request returns one of these and stores nothing). */
  const created = new Set<string>();
  /** AppID/nonce pairs the gateway has accepted (§2 replay), to predict 40000. */
  const usedNonces = new Set<string>();

  beforeAll(async () => {
    const logger = pino(
      { level: 'error' },
      {
        write(line: string) {
          serverErrors.push(line.slice(0, 600));
        },
      },
    );
    // Rate limit off: 40011 is covered by api-auth and would only hide the body rules here.
    // The factory on BSC and Polygon lets the cashier hand out deposit addresses there.
    t = await startTestGateway({ kind, logger, config: { rateLimit: 0, deployment: deploymentWithFactory(['3', '4']) } });
    const d = await defaultPlatformKey(t);
    defaultSigner = { key: d.publicKey, serial: d.serial };
    for (const m of [t.merchant, t.otherMerchant]) {
      apps.set(m.appId, { merchantKey: createPublicKey(m.publicKeyPem), signer: { key: m.platformPublicKey, serial: m.serial } });
    }
  });
  afterAll(async () => {
    await t?.close();
  });

  const own = (): Signer => ({ key: t.merchant.platformPublicKey, serial: t.merchant.serial });
  const signerFor = (appId: string | undefined): Signer => (appId !== undefined && apps.get(appId)?.signer) || defaultSigner;

  /** Violations of the server's own log: nothing at error level while a request was handled. */
  const logViolations = (from: number) => (serverErrors.length > from ? [`the server logged an error: ${serverErrors.slice(from).join(' | ')}`] : []);

  /** A correctly signed request over node:http (raw path, any body bytes). */
  function signed(opts: { method?: string; path: string; body?: Buffer; merchant?: Merchant; headers?: [string, string][] }): Wire {
    const m = opts.merchant ?? t.merchant;
    const method = opts.method ?? (opts.body ? 'POST' : 'GET');
    const timestamp = String(t.clock.seconds());
    const nonce = generateNonce();
    const body = opts.body ?? Buffer.alloc(0);
    const headers: [string, string][] = [
      ['User-Agent', 'sparkpay-fuzz/1.0'],
      ['Sparkpay-App-Id', m.appId],
      ['Sparkpay-Timestamp', timestamp],
      ['Sparkpay-Nonce', nonce],
      ['Sparkpay-Signature', signMessage(m.privateKey, timestamp, nonce, body)],
    ];
    if (opts.body) headers.push(['Content-Type', 'application/json']);
    return { method, path: opts.path, headers: [...headers, ...(opts.headers ?? [])], body: opts.body };
  }

  async function validOrder(edition: 'standard' | 'pro' = 'standard', overrides: Record<string, unknown> = {}) {
    const body = edition === 'pro' ? proOrderBody(t.merchant, t.clock, overrides) : orderBody(t.merchant, t.clock, overrides);
    const res = await api(t.baseUrl, { path: edition === 'pro' ? '/v4/pro/pay/cashier' : '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });
    expect(res.json.code, res.text).toBe(0);
    const data = res.json.data as Record<string, unknown>;
    created.add(String(data.payment_order_no));
    return { body, data, requestNo: String(body.request_no), paymentOrderNo: String(data.payment_order_no), token: new URL(String(data.cashier_url)).searchParams.get('t')! };
  }

  const queryPath = (edition: 'standard' | 'pro', merchantNo: string, requestNo: string) =>
    `/v4${edition === 'pro' ? '/pro' : ''}/pay/orders/${encodeSegment(merchantNo)}/${encodeSegment(requestNo)}`;

  /** After an accepted creation: exactly one new order (or none for a repeat), and §11 gives back what was sent. */
  async function acceptedCreateViolations(edition: 'standard' | 'pro', bytes: Buffer, res: Reply, before: { orders: number; options: number }): Promise<string[]> {
    const v: string[] = [];
    const sent = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    const data = (res.json as { data: Record<string, unknown> }).data;
    const after = await orderRowCounts(t);
    const no = String(data.payment_order_no);
    const options = Array.isArray(data.payment_options) ? data.payment_options.length : -1;
    if (created.has(no)) {
      if (after.orders !== before.orders || after.options !== before.options) v.push('a repeated request stored rows');
    } else {
      if (after.orders !== before.orders + 1) v.push(`accepted: ${after.orders - before.orders} order rows stored, not 1`);
      if (after.options !== before.options + options) v.push(`accepted with ${options} payment options but ${after.options - before.options} option rows stored`);
      created.add(no);
    }
    const amountFields = edition === 'pro' ? ['pricing_amount', 'pricing_currency'] : ['total_amount', 'merchant_order_currency'];
    for (const f of ['merchant_no', 'request_no', ...amountFields]) if (data[f] !== sent[f]) v.push(`data.${f} ${JSON.stringify(data[f])} is not the ${JSON.stringify(sent[f])} sent`);
    const q = await exchange(t.baseUrl, signed({ path: queryPath(edition, String(sent.merchant_no), String(sent.request_no)) }));
    const qd = isRecord(q.json) && isRecord(q.json.data) ? q.json.data : null;
    if (codeOf(q) !== 0 || !qd) return [...v, `the accepted order cannot be queried back: ${q.text.slice(0, 200)}`];
    if (qd.payment_order_no !== no) v.push(`the query finds ${String(qd.payment_order_no)}, not ${no}`);
    for (const f of amountFields) if (qd[f] !== sent[f]) v.push(`queried ${f} ${JSON.stringify(qd[f])} is not the ${JSON.stringify(sent[f])} sent`);
    for (const f of ECHOED_TEXTS) {
      const expected = typeof sent[f] === 'string' ? sent[f] : '';
      if (qd[f] !== expected) v.push(`queried ${f} ${JSON.stringify(qd[f])} is not the ${JSON.stringify(expected)} sent`);
    }
    if (qd.merchant_order_time !== sent.merchant_order_time) v.push(`queried merchant_order_time ${String(qd.merchant_order_time)} is not the ${String(sent.merchant_order_time)} sent`);
    return v;
  }

  // -------------------------------------------------------------------------------------------
  // 1. Signed requests, arbitrary JSON bodies

  const fullStandard = () =>
    orderBody(t.merchant, t.clock, {
      merchant_order_timeout: t.clock.seconds() + 3600,
      goods_info: 'goods',
      merchant_order_no: 'shop_1',
      merchant_application_user_id: 'user_1',
      notify_url: 'https://merchant.example/notify',
      redirect_url: 'https://merchant.example/done',
      business_info: 'business',
      extension: 'ext',
      receive_network: '3,4',
      divide_detail: { seller_amount: '8.00', seller_addr: SELLER, merchant_amount: '2.00', other_details: [{ receiver_addr: OTHER, amount: '0.50' }] },
    });
  const compatStandard = () =>
    orderBody(t.merchant, t.clock, {
      split_details: [
        { split_type: 2, split_purpose: 1, receiver: SELLER, amount: '8.00' },
        { split_type: 1, split_purpose: 2, receiver: t.merchant.merchantNo, amount: '2.00' },
        { split_type: 1, split_purpose: 3, receiver: t.merchant.merchantNo, amount: '0.50' },
      ],
    });
  const fullPro = () =>
    proOrderBody(t.merchant, t.clock, {
      merchant_order_timeout: t.clock.seconds() + 3600,
      goods_info: 'goods',
      merchant_order_no: 'shop_2',
      merchant_application_user_id: 'user_2',
      notify_url: 'https://merchant.example/notify',
      redirect_url: 'https://merchant.example/done',
      business_info: 'business',
      extension: 'ext',
      receive_network: '2,3,4',
      available_payment_currency_networks: [{ currency: 'USDT', networks: ['2', '4'] }, { currency: 'ETH' }],
      divide_detail: { seller_amount: '7.50', seller_addr: SELLER, merchant_amount: '2.00', other_details: [{ receiver_addr: OTHER, amount: '0.50' }] },
    });
  const BASES = {
    create: [fullStandard, compatStandard, () => orderBody(t.merchant, t.clock)],
    pro: [fullPro, () => proOrderBody(t.merchant, t.clock)],
  };

  it('the base bodies the fuzzing starts from are accepted', async () => {
    for (const [endpoint, makers] of Object.entries(BASES)) {
      for (const make of makers) {
        const bytes = Buffer.from(JSON.stringify(make()));
        const before = await orderRowCounts(t);
        const res = await exchange(t.baseUrl, signed({ path: endpoint === 'pro' ? '/v4/pro/pay/cashier' : '/v4/pay/cashier', body: bytes }));
        expect(codeOf(res), res.text).toBe(0);
        fail(await acceptedCreateViolations(endpoint === 'pro' ? 'pro' : 'standard', bytes, res, before), bytes.toString());
      }
    }
  });

  const bodyCaseArb = (bases: number) =>
    fc.record({
      base: fc.nat({ max: bases - 1 }),
      mutations: fc.array(treeMutationArb, { minLength: 1, maxLength: 3 }),
      encoding: encodingArb,
    });

  it.each([
    ['create', '/v4/pay/cashier', 1, 250],
    ['pro', '/v4/pro/pay/cashier', 2, 200],
  ] as const)('1. %s: any signed JSON body gets a documented, correctly signed answer; refusals store nothing', async (endpoint, path, seed, numRuns) => {
    await check(
      fc.asyncProperty(bodyCaseArb(BASES[endpoint].length), async ({ base, mutations, encoding }) => {
        const root = toNode(BASES[endpoint][base]!()) as Obj;
        for (const m of mutations) applyMutation(root, m);
        const bytes = encode(root, encoding);
        const before = await orderRowCounts(t);
        const logs = serverErrors.length;
        // The harness's own client: a string or Buffer body is sent and signed as is.
        const res = await api(t.baseUrl, { path, body: bytes, merchant: t.merchant, clock: t.clock });
        const v = [...envelopeViolations(res, { endpoint, bodyBytes: bytes.length, signer: own(), code: pinnedBodyCode(endpoint, bytes) }), ...logViolations(logs)];
        if (codeOf(res) === 0) v.push(...(await acceptedCreateViolations(endpoint === 'pro' ? 'pro' : 'standard', bytes, res, before)));
        else if (JSON.stringify(await orderRowCounts(t)) !== JSON.stringify(before)) v.push('a refused request stored rows');
        fail(v, bytes.toString('utf8'), res);
      }),
      seed,
      numRuns,
    );
  }, PROPERTY_TIMEOUT);

  it.each([
    ['create', '/v4/pay/cashier', 8],
    ['pro', '/v4/pro/pay/cashier', 9],
  ] as const)('1. %s: any text in the text fields is stored and given back exactly, or refused (40009); never mangled', async (endpoint, path, seed) => {
    const fields = ['merchant_no', 'request_no', ...ECHOED_TEXTS];
    await check(
      fc.asyncProperty(fc.dictionary(fc.constantFrom(...fields), textArb, { minKeys: 1, maxKeys: 3 }), async (texts) => {
        const body = { ...BASES[endpoint][0]!(), ...texts };
        const bytes = Buffer.from(JSON.stringify(body));
        // Another merchant number is not this merchant's (40008); a request_no outside [A-Za-z0-9_]{1,64}, or one used before, is 41023.
        const codes = [0, 40009];
        if ('merchant_no' in texts && texts.merchant_no !== t.merchant.merchantNo) codes.splice(0, 1, 40008);
        else if ('request_no' in texts) codes.push(41023);
        const before = await orderRowCounts(t);
        const logs = serverErrors.length;
        const res = await api(t.baseUrl, { path, body: bytes, merchant: t.merchant, clock: t.clock });
        const v = [...envelopeViolations(res, { endpoint, bodyBytes: bytes.length, signer: own(), code: pinnedBodyCode(endpoint, bytes) ?? codes }), ...logViolations(logs)];
        if (codeOf(res) === 0) v.push(...(await acceptedCreateViolations(endpoint === 'pro' ? 'pro' : 'standard', bytes, res, before)));
        else if (JSON.stringify(await orderRowCounts(t)) !== JSON.stringify(before)) v.push('a refused request stored rows');
        fail(v, JSON.stringify(texts), res);
      }),
      seed,
      150,
    );
  }, PROPERTY_TIMEOUT);

  it('1. close: any signed JSON body gets a documented answer; a close changes only the order named', async () => {
    const closedOrder = await validOrder();
    await api(t.baseUrl, { path: '/v4/pay/orders/close', body: { merchant_no: t.merchant.merchantNo, request_no: closedOrder.requestNo }, merchant: t.merchant, clock: t.clock });
    const proOrder = await validOrder('pro');
    const foreign = await (async () => {
      const body = orderBody(t.otherMerchant, t.clock);
      await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.otherMerchant, clock: t.clock });
      return String(body.request_no);
    })();
    await check(
      fc.asyncProperty(
        fc.record({
          target: fc.constantFrom('fresh', 'fresh-upper', 'closed', 'pro', 'foreign', 'unknown'),
          mutations: fc.array(treeMutationArb, { maxLength: 3 }),
          encoding: encodingArb,
        }),
        async ({ target, mutations, encoding }) => {
          let requestNo = 'no_such_order';
          if (target === 'fresh' || target === 'fresh-upper') {
            requestNo = (await validOrder()).requestNo;
            if (target === 'fresh-upper') requestNo = requestNo.toUpperCase();
          } else if (target === 'closed') requestNo = closedOrder.requestNo;
          else if (target === 'pro') requestNo = proOrder.requestNo;
          else if (target === 'foreign') requestNo = foreign;
          const root = toNode({ merchant_no: t.merchant.merchantNo, request_no: requestNo }) as Obj;
          for (const m of mutations) applyMutation(root, m);
          const bytes = encode(root, encoding);
          const before = await orderRowCounts(t);
          const logs = serverErrors.length;
          const res = await api(t.baseUrl, { path: '/v4/pay/orders/close', body: bytes, merchant: t.merchant, clock: t.clock });
          const v = [...envelopeViolations(res, { endpoint: 'close', bodyBytes: bytes.length, signer: own(), code: pinnedBodyCode('close', bytes) }), ...logViolations(logs)];
          if (JSON.stringify(await orderRowCounts(t)) !== JSON.stringify(before)) v.push('a close stored or removed order rows');
          if (codeOf(res) === 0) {
            const sent = JSON.parse(bytes.toString('utf8')) as Record<string, string>;
            const data = (res.json as { data: Record<string, unknown> }).data;
            if (data.pay_status !== 'CLOSED' || data.merchant_no !== sent.merchant_no || String(data.request_no).toLowerCase() !== sent.request_no!.toLowerCase()) {
              v.push(`the close answered ${JSON.stringify(data)} for ${JSON.stringify(sent)}`);
            }
            // §12 has one close endpoint for both editions; each edition has its own query path (§11).
            let q = await exchange(t.baseUrl, signed({ path: queryPath('standard', sent.merchant_no!, sent.request_no!) }));
            if (codeOf(q) === 43005) q = await exchange(t.baseUrl, signed({ path: queryPath('pro', sent.merchant_no!, sent.request_no!) }));
            if (!isRecord(q.json) || !isRecord(q.json.data) || q.json.data.pay_status !== 'CLOSED') v.push(`the closed order queries as ${q.text.slice(0, 200)}`);
          }
          fail(v, bytes.toString('utf8'), res);
        },
      ),
      3,
      150,
    );
  }, PROPERTY_TIMEOUT);

  /** This merchant's order of `edition` under `requestNo` (case-insensitive, §7), as stored; earlier properties create orders too. */
  async function storedOrder(edition: 'standard' | 'pro', requestNo: string): Promise<string | undefined> {
    // Only [A-Za-z0-9_]{1,64} can name an order (41023); anything else is not asked of the database.
    if (!/^[A-Za-z0-9_]{1,64}$/.test(requestNo)) return undefined;
    const row = await t.gateway.db.kysely
      .selectFrom('orders')
      .select('payment_order_no')
      .where('merchant_no', '=', t.merchant.merchantNo)
      .where('request_no_key', '=', requestNo.toLowerCase())
      .where('edition', '=', edition)
      .executeTakeFirst();
    return row?.payment_order_no;
  }

  it('1. query: any path segments get a documented answer, and only the order asked for', async () => {
    const std = await validOrder();
    const pro = await validOrder('pro');
    const foreignBody = orderBody(t.otherMerchant, t.clock);
    await api(t.baseUrl, { path: '/v4/pay/cashier', body: foreignBody, merchant: t.otherMerchant, clock: t.clock });
    const foreign = String(foreignBody.request_no);
    const segmentArb = fc.oneof(
      { weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 70 }).map((s) => ({ raw: encodeSegment(s), decoded: s as string | null })) },
      { weight: 1, arbitrary: fc.constantFrom('%00', '%FF', '%E0%A4%A', '%', '%zz', '..', '.', '%2e%2e', '%2F', 'a%2Fb', '%20', '~', "'", '(', '*').map((raw) => ({ raw, decoded: null })) },
      { weight: 1, arbitrary: fc.constantFrom('x'.repeat(64), 'x'.repeat(65), 'x'.repeat(5000)).map((s) => ({ raw: s, decoded: s as string | null })) },
    );
    const known = (s: string) => ({ raw: encodeSegment(s), decoded: s as string | null });
    await check(
      fc.asyncProperty(
        fc.record({
          edition: fc.constantFrom<'standard' | 'pro'>('standard', 'pro'),
          merchant: fc.oneof(
            { weight: 4, arbitrary: fc.constant(known(t.merchant.merchantNo)) },
            { weight: 1, arbitrary: fc.constantFrom(known(t.otherMerchant.merchantNo), known('M000000000001'), known(t.merchant.merchantNo.toLowerCase())) },
            { weight: 1, arbitrary: segmentArb },
          ),
          request: fc.oneof(
            { weight: 4, arbitrary: fc.constantFrom(known(std.requestNo), known(std.requestNo.toUpperCase()), known(pro.requestNo), known(foreign)) },
            { weight: 2, arbitrary: segmentArb },
          ),
          query: fc.option(fc.string({ maxLength: 20 }).map((s) => `?${encodeURIComponent(s)}=${encodeURIComponent(s)}&t=1`), { nil: '' }),
        }),
        async ({ edition, merchant, request, query }) => {
          const path = `/v4${edition === 'pro' ? '/pro' : ''}/pay/orders/${merchant.raw}/${request.raw}${query}`;
          let code: number | undefined;
          if (merchant.decoded !== null && request.decoded !== null) {
            const m = merchant.decoded;
            const r = request.decoded.toLowerCase();
            if (m.length > 64 || request.decoded.length > 64) code = 40009;
            else if (m === t.otherMerchant.merchantNo) code = 40007;
            else if (m !== t.merchant.merchantNo) code = 40008;
            else code = (await storedOrder(edition, r)) ? 0 : 43005;
          }
          const logs = serverErrors.length;
          const res = await exchange(t.baseUrl, signed({ path }));
          const v = [...envelopeViolations(res, { endpoint: 'query', bodyBytes: 0, signer: own(), code }), ...logViolations(logs)];
          if (codeOf(res) === 0) {
            const data = (res.json as { data: Record<string, unknown> }).data;
            const expected = request.decoded === null ? undefined : await storedOrder(edition, request.decoded);
            if (data.payment_order_no !== expected) v.push(`the query answered order ${String(data.payment_order_no)}, not ${String(expected)}`);
          }
          fail(v, path, res);
        },
      ),
      4,
      200,
    );
  }, PROPERTY_TIMEOUT);

  // -------------------------------------------------------------------------------------------
  // 2. Raw mutations of a valid signed request

  const AUTH_HEADER_NAMES = ['user-agent', 'sparkpay-app-id', 'sparkpay-timestamp', 'sparkpay-nonce', 'sparkpay-signature'] as const;
  const ALL_HEADER_NAMES = [...AUTH_HEADER_NAMES, 'content-type'] as const;
  const CONTENT_TYPES = [
    'application/json', 'application/json; charset=utf-8', 'Application/JSON', 'APPLICATION/JSON;CHARSET=UTF-8', 'application/json ; charset="utf-8"',
    'application/json;', 'application/json; foo=bar; baz', 'application/json;charset=latin1', 'application/jsonx', 'application/json-seq',
    'application/x-json', 'application/problem+json', 'text/json', 'text/plain', 'application/*', '*/*', 'json', 'application/ json',
    'application /json', 'application/json, text/plain', 'text/plain; application/json', 'multipart/form-data; boundary=x',
    'application/x-www-form-urlencoded', '',
  ];
  const headerValueArb = fc.stringMatching(/^[\t\x20-\x7e]{0,40}$/);
  const tokenArb = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}$/);

  type RawMutation =
    | { op: 'remove'; name: (typeof ALL_HEADER_NAMES)[number] }
    | { op: 'duplicate'; name: (typeof ALL_HEADER_NAMES)[number]; value: string | null }
    | { op: 'blank'; name: (typeof ALL_HEADER_NAMES)[number]; value: string }
    | { op: 'rename'; name: (typeof ALL_HEADER_NAMES)[number]; upper: boolean }
    | { op: 'junk-header'; name: string; value: string }
    | { op: 'app-id'; value: 'other' | 'unknown' | 'leading-zero' | 'digit' | 'spaces' }
    | { op: 'content-type'; value: string }
    | { op: 'timestamp'; value: string; resign: boolean }
    | { op: 'nonce'; value: string; resign: boolean }
    | { op: 'signature'; kind: 'flip' | 'unpad' | 'extra-pad' | 'truncate' | 'extend' | 'urlsafe' | 'lower' | 'other-key' | 'garbage' | 'space' | 'double'; pos: number }
    | { op: 'body'; kind: 'flip' | 'insert' | 'delete' | 'truncate' | 'append'; pos: number; byte: number; resign: boolean }
    | { op: 'oversize'; extra: number; resign: boolean }
    | { op: 'chunked' }
    | { op: 'replay' };

  const rawMutationArb = (now: number): fc.Arbitrary<RawMutation> =>
    fc.oneof(
      fc.record({ op: fc.constant('remove' as const), name: fc.constantFrom(...ALL_HEADER_NAMES) }),
      fc.record({ op: fc.constant('duplicate' as const), name: fc.constantFrom(...ALL_HEADER_NAMES), value: fc.option(headerValueArb, { nil: null }) }),
      fc.record({ op: fc.constant('blank' as const), name: fc.constantFrom(...ALL_HEADER_NAMES), value: fc.constantFrom('', ' ', '\t', ' \t ') }),
      fc.record({ op: fc.constant('rename' as const), name: fc.constantFrom(...ALL_HEADER_NAMES), upper: fc.boolean() }),
      fc.record({ op: fc.constant('junk-header' as const), name: tokenArb, value: headerValueArb }),
      fc.record({ op: fc.constant('app-id' as const), value: fc.constantFrom('other' as const, 'unknown' as const, 'leading-zero' as const, 'digit' as const, 'spaces' as const) }),
      { weight: 2, arbitrary: fc.record({ op: fc.constant('content-type' as const), value: fc.constantFrom(...CONTENT_TYPES) }) },
      {
        weight: 2,
        arbitrary: fc.record({
          op: fc.constant('timestamp' as const),
          value: fc.oneof(
            fc.integer({ min: -900, max: 900 }).map((d) => String(now + d)),
            fc.constantFrom(String(now * 1000), `00${now}`, `+${now}`, `${now}.0`, `${now}s`, 'abc', '-1', '0', '99999999999999999999', '1e9', `0x${now.toString(16)}`),
          ),
          resign: fc.boolean(),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          op: fc.constant('nonce' as const),
          value: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/), fc.stringMatching(/^[\x21-\x7e]{1,70}$/), fc.constantFrom('a', '_', '-', 'x'.repeat(64), 'x'.repeat(65), 'a b', 'a.b', 'a,b')),
          resign: fc.boolean(),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          op: fc.constant('signature' as const),
          kind: fc.constantFrom('flip' as const, 'unpad' as const, 'extra-pad' as const, 'truncate' as const, 'extend' as const, 'urlsafe' as const, 'lower' as const, 'other-key' as const, 'garbage' as const, 'space' as const, 'double' as const),
          pos: fc.nat(),
        }),
      },
      {
        weight: 3,
        arbitrary: fc.record({
          op: fc.constant('body' as const),
          kind: fc.constantFrom('flip' as const, 'insert' as const, 'delete' as const, 'truncate' as const, 'append' as const),
          pos: fc.nat(),
          byte: fc.integer({ min: 0, max: 255 }),
          resign: fc.boolean(),
        }),
      },
      fc.record({ op: fc.constant('oversize' as const), extra: fc.integer({ min: 1, max: 64 }), resign: fc.boolean() }),
      fc.constant({ op: 'chunked' as const }),
      fc.constant({ op: 'replay' as const }),
    );

  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

  function mutateBody(body: Buffer, m: Extract<RawMutation, { op: 'body' }>): Buffer {
    const pos = body.length === 0 ? 0 : m.pos % body.length;
    const b = [...body];
    if (m.kind === 'flip') b[pos] = (b[pos]! ^ (m.byte || 1)) & 0xff;
    else if (m.kind === 'insert') b.splice(pos, 0, m.byte);
    else if (m.kind === 'delete') b.splice(pos, 1);
    else if (m.kind === 'truncate') b.length = pos;
    else b.push(m.byte);
    return Buffer.from(b);
  }

  /** Valid JSON still (trailing spaces), `extra` bytes over the §1 limit. */
  const grow = (body: Buffer, extra: number) => Buffer.concat([body, Buffer.alloc(Math.max(0, BODY_LIMIT + extra - body.length), 0x20)]);

  function mutateSignature(sig: string, m: Extract<RawMutation, { op: 'signature' }>, other: string): string {
    const pos = m.pos % sig.length;
    switch (m.kind) {
      case 'flip': {
        const c = sig[pos] === '=' ? 'A' : B64[(B64.indexOf(sig[pos]!) + 1 + (m.pos % 63)) % 64]!;
        return sig.slice(0, pos) + c + sig.slice(pos + 1);
      }
      case 'unpad':
        return sig.replace(/=+$/, '');
      case 'extra-pad':
        return `${sig}=`;
      case 'truncate':
        return sig.slice(0, pos);
      case 'extend':
        return `${sig}AAAA`;
      case 'urlsafe':
        return sig.replace(/\+/g, '-').replace(/\//g, '_');
      case 'lower':
        return sig.toLowerCase();
      case 'other-key':
        return other;
      case 'garbage':
        return Array.from({ length: sig.length }, (_, i) => B64[(i * 7 + m.pos) % 64]).join('').replace(/.{2}$/, '==');
      case 'space':
        return `${sig.slice(0, pos)} ${sig.slice(pos)}`;
      case 'double':
        return sig + sig;
    }
  }

  type RawBase = 'create' | 'pro' | 'close' | 'query';

  /**
   * The answer §1/§2 pin for the request as the server reads it, in the documented order, or
   * undefined when everything up to the body is right. Also whether the nonce gets used up.
   */
  function authModel(w: Wire, now: number): { code?: number | number[]; consumes: boolean; appId: string | undefined } {
    const get = (n: string) => effective(w.headers, n);
    const appId = get('sparkpay-app-id');
    const body = w.body ?? Buffer.alloc(0);
    if (body.length > BODY_LIMIT) return { code: 40009, consumes: false, appId };
    if (AUTH_HEADER_NAMES.some((n) => (get(n) ?? '').trim() === '')) return { code: 40003, consumes: false, appId };
    const app = apps.get(appId!);
    if (!app) return { code: 40002, consumes: false, appId };
    const ts = get('sparkpay-timestamp')!;
    // Non-numeric: 40009 (pinned by api-auth); a decimal string outside the window: 40000 (§2).
    if (!/^[0-9]+$/.test(ts)) return { code: 40009, consumes: false, appId };
    if (Math.abs(Number(ts) - now) > 300) return { code: 40000, consumes: false, appId };
    const nonce = get('sparkpay-nonce')!;
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(nonce)) return { code: 40009, consumes: false, appId };
    if (!signatureHolds(app.merchantKey, ts, nonce, body, get('sparkpay-signature')!)) return { code: 40000, consumes: false, appId };
    if (usedNonces.has(`${appId}\n${nonce}`)) return { code: 40000, consumes: false, appId };
    if (w.method === 'POST') {
      const type = (get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== 'application/json') return { code: 40009, consumes: true, appId };
    }
    return { consumes: true, appId };
  }

  it('2. raw mutations of a valid signed request: the documented code in the documented order, signed, nothing stored', async () => {
    const now = t.clock.seconds();
    const target = await validOrder();
    await check(
      fc.asyncProperty(
        fc.record({ base: fc.constantFrom<RawBase>('create', 'pro', 'close', 'query'), mutations: fc.array(rawMutationArb(now), { minLength: 1, maxLength: 3 }) }),
        async ({ base, mutations }) => {
          const isGet = base === 'query';
          const endpoint: Endpoint = base;
          const path = base === 'create' ? '/v4/pay/cashier' : base === 'pro' ? '/v4/pro/pay/cashier' : base === 'close' ? '/v4/pay/orders/close' : queryPath('standard', t.merchant.merchantNo, target.requestNo);
          const json = base === 'create' ? orderBody(t.merchant, t.clock) : base === 'pro' ? proOrderBody(t.merchant, t.clock) : { merchant_no: t.merchant.merchantNo, request_no: 'no_such_order' };
          let body: Buffer = isGet ? Buffer.alloc(0) : Buffer.from(JSON.stringify(json));
          let timestamp = String(now);
          let nonce = generateNonce();
          const relevant = mutations.filter((m) => !(isGet && (m.op === 'body' || m.op === 'oversize' || m.op === 'chunked' || m.op === 'content-type' || (m.op !== 'app-id' && 'name' in m && m.name === 'content-type'))));
          // Mutations marked resign happen before signing (the signature covers them), the rest after.
          for (const m of relevant) {
            if (m.op === 'body' && m.resign) body = mutateBody(body, m);
            if (m.op === 'oversize' && m.resign) body = grow(body, m.extra);
            if (m.op === 'timestamp' && m.resign) timestamp = m.value;
            if (m.op === 'nonce' && m.resign) nonce = m.value;
          }
          const signature = signMessage(t.merchant.privateKey, timestamp, nonce, body);
          let headers: [string, string][] = [
            ['User-Agent', 'sparkpay-fuzz/1.0'],
            ['Sparkpay-App-Id', t.merchant.appId],
            ['Sparkpay-Timestamp', timestamp],
            ['Sparkpay-Nonce', nonce],
            ['Sparkpay-Signature', signature],
          ];
          if (!isGet) headers.push(['Content-Type', 'application/json']);
          const set = (name: string, value: string) => {
            const i = headers.findIndex(([k]) => k.toLowerCase() === name);
            if (i >= 0) headers[i] = [headers[i]![0], value];
            else headers.push([name, value]);
          };
          const valueOf = (name: string) => headers.find(([k]) => k.toLowerCase() === name)?.[1];
          let chunked = false;
          let replay = false;
          for (const m of relevant) {
            switch (m.op) {
              case 'remove':
                headers = headers.filter(([k]) => k.toLowerCase() !== m.name);
                break;
              case 'duplicate':
                headers.push([m.name, m.value ?? valueOf(m.name) ?? 'x']);
                break;
              case 'blank':
                set(m.name, m.value);
                break;
              case 'rename':
                headers = headers.map(([k, v]) => [k.toLowerCase() === m.name ? (m.upper ? k.toUpperCase() : k.toLowerCase()) : k, v]);
                break;
              case 'junk-header':
                if (!['host', 'content-length', 'transfer-encoding', 'connection', 'expect', 'upgrade', 'te', 'trailer'].includes(m.name.toLowerCase())) headers.push([m.name, m.value]);
                break;
              case 'app-id': {
                const id = t.merchant.appId;
                const value = { other: t.otherMerchant.appId, unknown: '1'.repeat(18), 'leading-zero': `0${id}`, digit: `${id.slice(0, -1)}${id.endsWith('9') ? '0' : '9'}`, spaces: `  ${id}  ` }[m.value];
                set('sparkpay-app-id', value);
                break;
              }
              case 'content-type':
                set('content-type', m.value);
                break;
              case 'timestamp':
                if (!m.resign) set('sparkpay-timestamp', m.value);
                break;
              case 'nonce':
                if (!m.resign) set('sparkpay-nonce', m.value);
                break;
              case 'signature':
                set('sparkpay-signature', mutateSignature(valueOf('sparkpay-signature') ?? signature, m, signMessage(t.otherMerchant.privateKey, timestamp, nonce, body)));
                break;
              case 'body':
                if (!m.resign) body = mutateBody(body, m);
                break;
              case 'oversize':
                if (!m.resign) body = grow(body, m.extra);
                break;
              case 'chunked':
                chunked = true;
                break;
              case 'replay':
                replay = true;
                break;
            }
          }
          const wire: Wire = { method: isGet ? 'GET' : 'POST', path, headers, body: isGet ? undefined : body, chunked };
          const shown = `${wire.method} ${wire.path}${chunked ? ' (chunked)' : ''}\n${headers.map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n${body.toString('latin1').slice(0, 300)}`;
          for (const attempt of replay ? [1, 2] : [1]) {
            const model = authModel(wire, now);
            const pinned = model.code ?? (isGet ? undefined : pinnedBodyCode(base, body));
            const before = await orderRowCounts(t);
            const logs = serverErrors.length;
            const res = await exchange(t.baseUrl, wire);
            if (model.consumes) usedNonces.add(`${model.appId}\n${effective(headers, 'sparkpay-nonce')}`);
            const v = [...envelopeViolations(res, { endpoint, bodyBytes: body.length, signer: signerFor(model.appId), code: pinned }), ...logViolations(logs)];
            if (codeOf(res) === 0 && (base === 'create' || base === 'pro')) v.push(...(await acceptedCreateViolations(base === 'pro' ? 'pro' : 'standard', body, res, before)));
            else if (JSON.stringify(await orderRowCounts(t)) !== JSON.stringify(before)) v.push('a refused request stored rows');
            fail(v, `${attempt === 2 ? '(sent again) ' : ''}${shown}`, res);
          }
        },
      ),
      5,
      300,
    );
  }, PROPERTY_TIMEOUT);

  it('2. any method on any near-miss path under /v4/: a documented code in the signed envelope', async () => {
    const order = await validOrder();
    const m = t.merchant.merchantNo;
    const paths = [
      '/v4/pay/cashier', '/v4/pay/cashier/', '/v4/pay/cashierx', '/v4/pro/pay/cashier/x', '/v4/pay/orders/close', '/v4/pay/orders/close/', `/v4/pay/orders/${m}`,
      `/v4/pay/orders/${m}/${order.requestNo}/x`, `/v4/pay/orders/${m}/${order.requestNo}`, '/v4/', '/v4/pay', '/v4/PAY/cashier', '/v4/pro/pay/orders/close',
      '/v4/pay/orders//', '/v4/pay/../pay/cashier',
    ];
    await check(
      fc.asyncProperty(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'), fc.constantFrom(...paths), async (method, path) => {
        const body = method === 'GET' ? undefined : Buffer.from(JSON.stringify({ merchant_no: m, request_no: order.requestNo }));
        const wire = signed({ method, path, body });
        const before = await orderRowCounts(t);
        const logs = serverErrors.length;
        const res = await exchange(t.baseUrl, wire);
        const known = (method === 'POST' && path === '/v4/pay/orders/close') || (method === 'GET' && path === `/v4/pay/orders/${m}/${order.requestNo}`);
        const v = [...envelopeViolations(res, { endpoint: known ? (method === 'GET' ? 'query' : 'close') : 'unknown', bodyBytes: body?.length ?? 0, signer: own() }), ...logViolations(logs)];
        if (JSON.stringify(await orderRowCounts(t)) !== JSON.stringify(before)) v.push('rows changed');
        fail(v, `${method} ${path}`, res);
      }),
      6,
      60,
    );
  }, PROPERTY_TIMEOUT);

  // -------------------------------------------------------------------------------------------
  // 3. The cashier JSON API (§15): /cashier/api/orders/{no}?t= and …/select

  const CASHIER_ERRORS: Record<string, number> = { NOT_FOUND: 404, BAD_REQUEST: 400, NOT_SELECTABLE: 409, UNAVAILABLE: 503, RATE_LIMITED: 429 };

  async function depositRows(): Promise<number> {
    const r = await t.gateway.db.kysely.selectFrom('deposit_addresses').select((eb) => eb.fn.countAll<string | number>().as('n')).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  it('3. cashier API: any order number, token, query and body; only the token holder is answered, never a 5xx but 503 UNAVAILABLE', async () => {
    const pool = [
      await validOrder('standard', { merchant_order_timeout: t.clock.seconds() + 7 * 86_400 }),
      await validOrder('standard', { merchant_order_timeout: t.clock.seconds() + 7 * 86_400, receive_network: '2,3,4' }),
      await validOrder('pro', { merchant_order_timeout: t.clock.seconds() + 7 * 86_400 }),
    ];
    const notFoundBodies = new Set<string>();
    const addresses = new Map<string, string>();
    let rateLimited = 0;
    const pairs = pool.flatMap((o) => (o.data.payment_options as { network: string; currency: string }[]).map((p) => ({ network: p.network, currency: p.currency })));
    const networkArb = fc.oneof(
      fc.constantFrom<Node>('2', '3', '4', '5', 2, 3, 4, 5, '9', '04', ' 4', '4 ', new Raw('4.0'), new Raw('4e0'), new Raw('-0'), null, '', true, [4], new Obj([])),
      leafArb,
    );
    const currencyArb = fc.oneof(fc.constantFrom<Node>('USDT', 'USDC', 'BNB', 'POL', 'ETH', 'IRIS', 'usdt', 'USDT\u0000', 'DOGE', '', null, 1, ['USDT'], '__proto__', 'toString'), leafArb);
    const bodyArb = fc.oneof(
      { weight: 4, arbitrary: fc.record({ network: networkArb, currency: currencyArb }).map(({ network, currency }) => Buffer.from(render(new Obj([['network', network], ['currency', currency]]), 'compact'))) },
      { weight: 2, arbitrary: fc.constantFrom(...pairs).map((p) => Buffer.from(JSON.stringify(p))) },
      { weight: 1, arbitrary: nodeArb.map((n) => Buffer.from(render(n, 'compact'))) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 60 }).map((b) => Buffer.from(b)) },
      { weight: 1, arbitrary: fc.constantFrom('', '{', '{"network":', '{"network":"4","currency":"USDT"', 'null', '[]', '"x"').map((s) => Buffer.from(s)) },
    );
    const orderArb = fc.oneof(
      { weight: 5, arbitrary: fc.nat({ max: pool.length - 1 }).map((i) => ({ pool: i as number | null, raw: encodeSegment(pool[i]!.paymentOrderNo) })) },
      { weight: 1, arbitrary: fc.constantFrom('P000000', `P${'9'.repeat(23)}`, 'x'.repeat(65), 'x'.repeat(101), 'x'.repeat(3000), 'a%2Fb', '%00', '%FF', '%E0%A4%A', '%', '..', '.', '%2e%2e', 'P%20', '-', '_').map((raw) => ({ pool: null, raw })) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }).map((s) => ({ pool: null, raw: encodeSegment(s) })) },
    );
    const tokenArb: fc.Arbitrary<{ kind: string; value: string }> = fc.oneof(
      { weight: 5, arbitrary: fc.constant({ kind: 'own', value: '' }) },
      { weight: 3, arbitrary: fc.constantFrom('other', 'flip', 'prefix', 'extend', 'upper', 'none', 'empty', 'twice', 'twice-other', 'bracket', 'huge').map((kind) => ({ kind, value: '' })) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).map((value) => ({ kind: 'random', value })) },
    );
    await check(
      fc.asyncProperty(
        fc.record({
          route: fc.constantFrom('get', 'select', 'select', 'page', 'form'),
          order: orderArb,
          token: tokenArb,
          tokenOf: fc.nat({ max: pool.length - 1 }),
          extra: fc.option(fc.tuple(fc.constantFrom('lang', 'e', '__proto__', 'constructor', 't[]', 'x'), fc.string({ maxLength: 20 })).map(([k, v]) => `&${k}=${encodeURIComponent(v)}`), { nil: '' }),
          body: bodyArb,
          contentType: fc.constantFrom('application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'text/plain', 'application/x-www-form-urlencoded', ''),
          language: fc.option(fc.constantFrom('zh-CN', 'en', '*', 'zh;q=0.9,en;q=0.1', 'xx', ';;;', 'zh-Hans-CN'), { nil: undefined }),
        }),
        async ({ route, order, token: tokenChoice, tokenOf, extra, body, contentType, language }) => {
          t.clock.advance(4); // refills the per-order and per-client request budgets
          const orderNo = order.pool === null ? null : pool[order.pool]!.paymentOrderNo;
          const tok = pool[order.pool ?? tokenOf]!.token;
          const otherTok = pool[((order.pool ?? tokenOf) + 1) % pool.length]!.token;
          const single = (v: string) => `t=${encodeURIComponent(v)}`;
          const flipped = `${tok.slice(0, -1)}${tok.endsWith('A') ? 'B' : 'A'}`;
          const tokenQuery: Record<string, string> = {
            own: single(tok), other: single(otherTok), flip: single(flipped), prefix: single(tok.slice(0, -1)), extend: single(`${tok}x`), upper: single(tok.toUpperCase()),
            none: '', empty: 't=', twice: `${single(tok)}&${single(tok)}`, 'twice-other': `${single(otherTok)}&${single(tok)}`, bracket: `t[]=${tok}`, huge: single(tok.repeat(200)),
          };
          const q = tokenChoice.kind === 'random' ? single(tokenChoice.value) : tokenQuery[tokenChoice.kind]!;
          // The token opens the order only when it is exactly the order's one token.
          const opens = orderNo !== null && (q === single(tok) || (tokenChoice.kind === 'random' && tokenChoice.value === tok) || (tokenChoice.kind === 'upper' && tok.toUpperCase() === tok));
          const base = route === 'get' ? `/cashier/api/orders/${order.raw}` : route === 'select' ? `/cashier/api/orders/${order.raw}/select` : route === 'page' ? `/cashier/${order.raw}` : `/cashier/${order.raw}/select`;
          const path = `${base}?${q}${extra}`;
          const post = route === 'select' || route === 'form';
          const headers: [string, string][] = [['User-Agent', 'fuzz-wallet/1.0']];
          if (post && contentType) headers.push(['Content-Type', contentType]);
          if (language) headers.push(['Accept-Language', language]);
          const rowsBefore = await depositRows();
          const logs = serverErrors.length;
          const res = await exchange(t.baseUrl, { method: post ? 'POST' : 'GET', path, headers, body: post ? body : undefined });
          const v = logViolations(logs);
          const type = res.headers.get('content-type') ?? '';
          if (res.status >= 500 && !(route === 'select' && res.status === 503 && opens)) v.push(`HTTP ${res.status}`);
          if (res.status === 429) rateLimited += 1;
          else if (route === 'get' || route === 'select') {
            const j = res.json;
            if (!/^application\/json/.test(type) || !isRecord(j)) v.push(`not a JSON object (${type}): ${res.text.slice(0, 200)}`);
            else if (res.status === 200) {
              if (!opens) v.push('answered without the order’s token');
              if (route === 'get' && j.payment_order_no !== orderNo) v.push(`answered order ${String(j.payment_order_no)} for ${orderNo}`);
              if (route === 'select') {
                const sent = JSON.parse(body.toString('utf8')) as { network: unknown; currency: unknown };
                const network = typeof sent.network === 'number' ? String(sent.network) : sent.network;
                if (j.network !== network || j.currency !== sent.currency) v.push(`selected ${String(j.network)}/${String(j.currency)} for ${JSON.stringify(sent)}`);
                if (typeof j.address !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(j.address)) v.push(`deposit address ${String(j.address)}`);
                const key = `${orderNo}/${String(j.network)}/${String(j.currency)}`;
                if (addresses.has(key) && addresses.get(key) !== j.address) v.push(`the same pair got another address: ${addresses.get(key)} then ${String(j.address)}`);
                addresses.set(key, String(j.address));
              }
            } else {
              const expected = typeof j.error === 'string' ? CASHIER_ERRORS[j.error] : undefined;
              if (expected === undefined || expected !== res.status || typeof j.message !== 'string' || !j.message) v.push(`not the cashier error shape {error, message} with its status: HTTP ${res.status} ${res.text.slice(0, 200)}`);
              if (j.error === 'NOT_FOUND') {
                if (opens) v.push('the token holder was told the order does not exist');
                notFoundBodies.add(res.text);
                if (notFoundBodies.size > 1) v.push(`two different "not found" answers: ${[...notFoundBodies].join(' / ')}`);
              } else if (!opens) v.push(`answered ${String(j.error)} without the order’s token (must look like an unknown order)`);
            }
          } else if (route === 'page') {
            if (res.status !== (opens ? 200 : 404) || !/^text\/html/.test(type)) v.push(`page: HTTP ${res.status} ${type}`);
          } else {
            const location = res.headers.get('location') ?? '';
            if (opens ? res.status !== 303 || !location.startsWith(`/cashier/${encodeSegment(orderNo!)}?t=`) : res.status !== 404) v.push(`form: HTTP ${res.status} location ${location}`);
          }
          const rowsAfter = await depositRows();
          if (rowsAfter !== rowsBefore && !(route !== 'get' && route !== 'page' && opens && rowsAfter === rowsBefore + 1)) v.push(`deposit address rows ${rowsBefore} -> ${rowsAfter}`);
          fail(v, `${post ? 'POST' : 'GET'} ${path}\n${headers.map(([k, x]) => `${k}: ${x}`).join('\n')}\n\n${post ? body.toString('latin1').slice(0, 200) : ''}`, res);
        },
      ),
      7,
      250,
    );
    // The budgets were refilled every run: the fuzzing reached the handlers, not the limiter.
    expect(rateLimited).toBeLessThan(runs(250) / 10);
  }, PROPERTY_TIMEOUT);

  // -------------------------------------------------------------------------------------------
  // 4. The server afterwards

  it('4. after all of it the gateway still serves: create, query, close, cashier, health', async () => {
    const logs = serverErrors.length;
    const health = await fetch(`${t.baseUrl}/healthz`);
    expect(health.status).toBe(200);
    for (const edition of ['standard', 'pro'] as const) {
      const before = await orderRowCounts(t);
      const o = await validOrder(edition);
      const after = await orderRowCounts(t);
      expect(after.orders).toBe(before.orders + 1);
      const q = await exchange(t.baseUrl, signed({ path: queryPath(edition, t.merchant.merchantNo, o.requestNo) }));
      fail(envelopeViolations(q, { endpoint: 'query', bodyBytes: 0, signer: own(), code: 0 }), 'query', q);
      const data = (q.json as { data: Record<string, unknown> }).data;
      expect(data).toMatchObject({ payment_order_no: o.paymentOrderNo, pay_status: 'PENDING', request_no: o.requestNo });
      const close = await exchange(t.baseUrl, signed({ path: '/v4/pay/orders/close', body: Buffer.from(JSON.stringify({ merchant_no: t.merchant.merchantNo, request_no: o.requestNo })) }));
      fail(envelopeViolations(close, { endpoint: 'close', bodyBytes: 0, signer: own(), code: 0 }), 'close', close);
      const cashier = await fetch(`${t.baseUrl}/cashier/api/orders/${o.paymentOrderNo}?t=${o.token}`);
      expect(cashier.status).toBe(200);
      expect(((await cashier.json()) as { pay_status: string }).pay_status).toBe('CLOSED');
    }
    expect(serverErrors.slice(logs)).toEqual([]);
  });

  // -------------------------------------------------------------------------------------------
  // Minimal reproductions of what the properties found, one test per defect (PROTOCOL quoted).

  describe('defects it found (each fixed; one pinned case each)', () => {
    const post = (path: string, text: string, extra: [string, string][] = []) => signed({ path, body: Buffer.from(text), headers: extra });
    const body = (overrides: Record<string, unknown>) => JSON.stringify(orderBody(t.merchant, t.clock, overrides));

    async function expectAnswer(w: Wire, e: Omit<Expectation, 'bodyBytes'>, what: string) {
      const before = await orderRowCounts(t);
      const logs = serverErrors.length;
      const res = await exchange(t.baseUrl, w);
      const v = [...envelopeViolations(res, { ...e, bodyBytes: w.body?.length ?? 0 }), ...logViolations(logs)];
      if (codeOf(res) !== 0 && JSON.stringify(await orderRowCounts(t)) !== JSON.stringify(before)) v.push('a refused request stored rows');
      fail(v, what, res);
      return res;
    }

    // §3 "500 for 50000 (internal error)" is for the server's own faults. Our decision: a body
    // with U+0000 in any text is refused as it is read (40009; PostgreSQL's text cannot hold it).
    it('a U+0000 in merchant_no is refused with 40009, not a 500 (PostgreSQL)', async () => {
      await expectAnswer(post('/v4/pay/cashier', body({ merchant_no: '\u0000' })), { endpoint: 'create', signer: own(), code: 40009 }, 'merchant_no "\\u0000"');
      await expectAnswer(post('/v4/pay/orders/close', '{"merchant_no":"a\\u0000b","request_no":"x"}'), { endpoint: 'close', signer: own(), code: 40009 }, 'close merchant_no "a\\u0000b"');
    });

    it('a U+0000 in the query path\'s merchant_no is an unknown merchant (40008), not a 500 (PostgreSQL)', async () => {
      await expectAnswer(signed({ path: '/v4/pay/orders/a%00b/x' }), { endpoint: 'query', signer: own(), code: 40008 }, 'GET /v4/pay/orders/a%00b/x');
    });

    it('a U+0000 in the query path finds no order (43005), not a 500 (PostgreSQL)', async () => {
      await expectAnswer(signed({ path: `/v4/pay/orders/${t.merchant.merchantNo}/%00` }), { endpoint: 'query', signer: own(), code: 43005 }, 'GET …/%00');
    });

    it('a U+0000 in a free text is refused with 40009, not a 500 (PostgreSQL)', async () => {
      const text = body({ merchant_order_desc: 'a\u0000b' });
      await expectAnswer(post('/v4/pay/cashier', text), { endpoint: 'create', signer: own(), code: 40009 }, 'merchant_order_desc "a\\u0000b"');
    });

    // §1 "JSON over HTTP, UTF-8"; §7 texts are echoed back (`extension`: "opaque, echoed back").
    it('a lone surrogate escape ("\\ud800") in a text is refused with 40009, never stored as U+FFFD', async () => {
      const text = body({ merchant_order_no: '\ud800' });
      expect(text).toContain('"merchant_order_no":"\\ud800"');
      await expectAnswer(post('/v4/pay/cashier', text), { endpoint: 'create', signer: own(), code: 40009 }, text);
      // In a member name too (an unknown field is ignored, but its name is still text of the body).
      await expectAnswer(post('/v4/pay/cashier', text.replace('{', '{"x\\udc00":1,')), { endpoint: 'create', signer: own(), code: 40009 }, 'member name "x\\udc00"');
    });

    // §2 "Timestamp must be within ±300 s of server time (configurable). Outside: 40000, message
    // says the timestamp is outside the allowed window."
    it('a timestamp in milliseconds is outside the window: 40000', async () => {
      const w = signed({ path: '/v4/pay/cashier', body: Buffer.from(body({})) });
      const ts = String(t.clock.seconds() * 1000);
      w.headers = w.headers.map(([k, v]) => [k, k === 'Sparkpay-Timestamp' ? ts : k === 'Sparkpay-Signature' ? signMessage(t.merchant.privateKey, ts, effective(w.headers, 'sparkpay-nonce')!, w.body!) : v]);
      const res = await expectAnswer(w, { endpoint: 'create', signer: own(), code: 40000 }, `Sparkpay-Timestamp: ${ts}`);
      expect(String((res.json as { message: string }).message)).toMatch(/window/);
    });

    // §2 "Order of checks: headers present (40003) → AppID known (40002) → timestamp window →
    // signature → nonce replay → rate limit (40011) → body parsed and validated → business rules."
    it.each(['', 'json', 'application /json', 'application/json, text/plain'])('Content-Type %j does not jump the authentication order', async (type) => {
      const bad = post('/v4/pay/cashier', body({}));
      // Signed with another merchant's key: a bad signature (§2: 40000).
      const [ts, nonce] = [effective(bad.headers, 'sparkpay-timestamp')!, effective(bad.headers, 'sparkpay-nonce')!];
      bad.headers = bad.headers.map(([k, v]) => [k, k === 'Content-Type' ? type : k === 'Sparkpay-Signature' ? signMessage(t.otherMerchant.privateKey, ts, nonce, bad.body!) : v]);
      await expectAnswer(bad, { endpoint: 'create', signer: own(), code: 40000 }, `bad signature, Content-Type: ${type}`);
      const noAgent = post('/v4/pay/cashier', body({}));
      noAgent.headers = noAgent.headers.filter(([k]) => k !== 'User-Agent').map(([k, v]) => [k, k === 'Content-Type' ? type : v]);
      await expectAnswer(noAgent, { endpoint: 'create', signer: own(), code: 40003 }, `no User-Agent, Content-Type: ${type}`);
    });

    // §3 "Every response under /v4/ (success and error alike) carries ... Sparkpay-Signature ...
    // made with the platform private key of the calling application (the platform's default key
    // when the AppID is unknown)"; "400 for parameter/business errors ... 404 for 43005".
    it('an unknown endpoint under /v4/ is answered in the envelope signed for the calling application', async () => {
      await expectAnswer(signed({ path: '/v4/pay/cashier' }), { endpoint: 'unknown', signer: own() }, 'GET /v4/pay/cashier');
    });

    // The nonce guard's own contract (server.ts): "A handler that promised to settle the nonce did not: a bug".
    it('a replayed order creation is 40000 and logs no error', async () => {
      const w = post('/v4/pay/cashier', body({}));
      const first = await exchange(t.baseUrl, w);
      expect(codeOf(first), first.text).toBe(0);
      created.add(String((first.json as { data: { payment_order_no: string } }).data.payment_order_no));
      await expectAnswer(w, { endpoint: 'create', signer: own(), code: 40000 }, 'the same signed request again');
    });

    // A HEAD twin of the query route would spend the nonce and sign a body it never sends.
    it('HEAD on a query route is no endpoint and spends no nonce: the same signed GET then succeeds', async () => {
      const o = await validOrder();
      const get = signed({ path: `/v4/pay/orders/${t.merchant.merchantNo}/${o.requestNo}` });
      const head = await exchange(t.baseUrl, { ...get, method: 'HEAD' });
      expect(head.status).toBe(400);
      const res = await exchange(t.baseUrl, get);
      expect(codeOf(res), res.text).toBe(0);
    });

    // §15 cashier JSON API: a wrong order number looks like any unknown order ({error, message}, 404).
    it.each(['x'.repeat(101), '%FF'])('cashier API: the order number %s is an unknown order', async (segment) => {
      const o = await validOrder();
      const res = await exchange(t.baseUrl, { method: 'GET', path: `/cashier/api/orders/${segment}?t=${o.token}`, headers: [['User-Agent', 'wallet']] });
      expect({ status: res.status, json: res.json }).toEqual({ status: 404, json: { error: 'NOT_FOUND', message: 'no such payment order' } });
    });
  });

  it('logged no error while fuzzing', () => {
    expect(serverErrors).toEqual([]);
  });
});
