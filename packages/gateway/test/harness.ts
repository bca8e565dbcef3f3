// A real gateway for tests: in-process, on a real database, on a real port, with an injected
// clock. Requests are signed with real keys over the exact bytes sent.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { expect } from 'vitest';
import { generateNonce, parsePublicKey, signMessage, verifyMessage } from '@sparkpay/protocol';
import { createApplication, createMerchant, type AdminDeps } from '../src/app/merchant-admin.js';
import type { Clock, Ids } from '../src/app/ports.js';
import type { TransferFact } from '../src/app/record-payment.js';
import { loadConfig, type Config } from '../src/cli/config.js';
import { createGateway, type Gateway } from '../src/cli/gateway.js';
import { mainnetDeployment, NETWORK_IDS, type NetworkId } from '../src/domain/catalogue.js';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './databases.js';

export const WALLET = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';

/** Where the tests' deployments say the forwarder factory, its forwarder and the fee address are (no chain needed to compute deposit addresses). */
export const TEST_FACTORY = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
export const TEST_FORWARDER = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512';
export const TEST_FEE_ADDRESS = '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65';

/** The mainnet deployment with the test factory on `networks` (so a payer can select them on the cashier), other chain settings as given. */
export function deploymentWithFactory(networks: readonly NetworkId[], chain: { confirmations?: number } = {}) {
  return {
    networks: mainnetDeployment().networks.map((n) => (networks.includes(n.id) ? { ...n, chain: { ...n.chain, ...chain, factory: TEST_FACTORY, forwarder: TEST_FORWARDER, feeAddress: TEST_FEE_ADDRESS } } : n)),
  };
}
export const SELLER = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC';
// EIP-55 spelling (the mixed-case form used before had a wrong checksum, so splits naming it were 41032).
export const OTHER = '0x90f79Bf6EB2c4f870365E51cEF8ba6b2A2Aa3e6f';
export const TEST_MASTER_KEY = '00'.repeat(32);

export class ManualClock implements Clock {
  constructor(public ms: number = Date.UTC(2026, 10, 25, 12, 0, 0)) {}
  nowMs() {
    return this.ms;
  }
  advance(seconds: number) {
    this.ms += seconds * 1000;
  }
  seconds() {
    return Math.floor(this.ms / 1000);
  }
}

export interface Merchant {
  merchantNo: string;
  appId: string;
  privateKey: KeyObject;
  publicKeyPem: string;
  platformPublicKey: KeyObject;
  platformPublicKeyPem: string;
  serial: string;
}

export interface TestMerchantOptions {
  name?: string;
  /** Default: WALLET on every network. */
  wallets?: Partial<Record<NetworkId, string>>;
}

/**
 * A merchant with one application and a fresh RSA key pair, made with the operator use cases
 * (as `sparkpay merchant create` and `app create` do) on whatever store `deps` holds: an
 * in-process gateway, or a test's own connection to a child gateway's database.
 */
export async function createTestMerchant(deps: AdminDeps, opts: TestMerchantOptions = {}): Promise<Merchant> {
  const wallets = opts.wallets ?? (Object.fromEntries(NETWORK_IDS.map((n) => [n, WALLET])) as Record<NetworkId, string>);
  const m = await createMerchant(deps, { name: opts.name ?? 'Test Merchant', wallets });
  if (!m.ok) throw new Error(m.message);
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicKeyPem = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const app = await createApplication(deps, { merchantNo: m.value.merchantNo, merchantPublicKey: publicKeyPem });
  if (!app.ok) throw new Error(app.message);
  return {
    merchantNo: m.value.merchantNo,
    appId: app.value.application.appId,
    privateKey: pair.privateKey,
    publicKeyPem,
    platformPublicKey: parsePublicKey(app.value.platformKey.publicKeyPem),
    platformPublicKeyPem: app.value.platformKey.publicKeyPem,
    serial: app.value.platformKey.serial,
  };
}

export interface TestGateway {
  gateway: Gateway;
  baseUrl: string;
  clock: ManualClock;
  db: TestDatabase;
  merchant: Merchant;
  /** Another merchant with its own application, for cross-merchant cases. */
  otherMerchant: Merchant;
  addMerchant(opts?: TestMerchantOptions): Promise<Merchant>;
  close(): Promise<void>;
}

export interface StartOptions {
  kind?: DatabaseKind;
  config?: Partial<Config>;
  clock?: ManualClock;
  logger?: Logger;
  /** Run the background workers (default off: tests drive the use cases directly). */
  workers?: boolean;
  /** Identifiers drawn (default: the gateway's random ones). */
  ids?: Ids;
}

export async function startTestGateway(opts: StartOptions = {}): Promise<TestGateway> {
  const db = await createTestDatabase(opts.kind ?? 'sqlite');
  const dataDir = mkdtempSync(join(tmpdir(), 'sparkpay-data-'));
  const clock = opts.clock ?? new ManualClock();
  const base = loadConfig('production', { SPARKPAY_DATA_DIR: dataDir, SPARKPAY_MASTER_KEY: TEST_MASTER_KEY });
  // No budget of refusals: the tests send thousands of deliberately refused requests from one
  // address, on a clock that does not move (the budget has tests of its own).
  const config: Config = { ...base, host: '127.0.0.1', port: 0, databaseUrl: db.url, refusalRateLimit: 0, rates: { ...base.rates, ETH: '3000', BNB: '600', POL: '0.5', IRIS: '0.01', HSK: '0.5' }, ...opts.config };
  const gateway = await createGateway({ config, clock, ...(opts.ids ? { ids: opts.ids } : {}), logger: opts.logger ?? pino({ level: process.env.SPARKPAY_TEST_LOG ?? 'silent' }), workers: opts.workers ?? false });
  const address = await gateway.listen();
  const addMerchant = (o: TestMerchantOptions = {}) => createTestMerchant(gateway, o);
  const merchant = await addMerchant();
  const otherMerchant = await addMerchant();
  return {
    gateway,
    baseUrl: address,
    clock,
    db,
    merchant,
    otherMerchant,
    addMerchant,
    async close() {
      await gateway.close();
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface SignedRequest {
  method?: 'GET' | 'POST';
  path: string;
  /** An object is serialised; a string or Buffer is sent as is. */
  body?: unknown;
  merchant: Merchant;
  clock: ManualClock;
  /** Header overrides; `null` removes the header. */
  headers?: Record<string, string | null>;
  timestamp?: string;
  nonce?: string;
  /** Sign with this key instead of the merchant's. */
  signWith?: KeyObject;
  /** Sign these bytes instead of the body sent. */
  signBody?: string;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  json: { code: number; message: string; data?: Record<string, unknown> } & Record<string, unknown>;
  /** The response signature verified with the merchant's platform public key. */
  signatureValid: boolean;
}

export async function api(baseUrl: string, req: SignedRequest): Promise<ApiResponse> {
  const { method, headers, body } = prepare(req);
  const res = await fetch(`${baseUrl}${req.path}`, { method, headers, body: method === 'GET' ? undefined : body });
  return finish(req.merchant.platformPublicKey, res.status, res.headers, await res.text());
}

/**
 * Like `api`, over node:http instead of fetch: fetch always adds a `User-Agent` (and a
 * text/plain Content-Type to string bodies), so a request without them needs this path.
 */
export async function apiRaw(baseUrl: string, req: SignedRequest): Promise<ApiResponse> {
  const { method, headers, body } = prepare(req);
  const payload = method === 'GET' ? undefined : Buffer.from(body);
  if (payload) headers['content-length'] = String(payload.length);
  const url = new URL(`${baseUrl}${req.path}`);
  const { status, headers: resHeaders, text } = await new Promise<{ status: number; headers: Headers; text: string }>((resolve, reject) => {
    const r = httpRequest(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
        resolve({ status: res.statusCode ?? 0, headers: h, text: Buffer.concat(chunks).toString('utf8') });
      });
    });
    r.on('error', reject);
    r.end(payload);
  });
  return finish(req.merchant.platformPublicKey, status, resHeaders, text);
}

/** The method, signed headers and body bytes of `req` (for tests that write requests themselves). */
export function prepare(req: SignedRequest): { method: 'GET' | 'POST'; headers: Record<string, string>; body: string | Buffer } {
  const method = req.method ?? (req.body === undefined ? 'GET' : 'POST');
  const body = req.body === undefined ? '' : typeof req.body === 'string' || Buffer.isBuffer(req.body) ? req.body : JSON.stringify(req.body);
  const timestamp = req.timestamp ?? String(req.clock.seconds());
  const nonce = req.nonce ?? generateNonce();
  const signature = signMessage(req.signWith ?? req.merchant.privateKey, timestamp, nonce, req.signBody ?? body);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'sparkpay-test/1.0',
    'sparkpay-app-id': req.merchant.appId,
    'sparkpay-timestamp': timestamp,
    'sparkpay-nonce': nonce,
    'sparkpay-signature': signature,
  };
  for (const [k, v] of Object.entries(req.headers ?? {})) {
    if (v === null) delete headers[k.toLowerCase()];
    else headers[k.toLowerCase()] = v;
  }
  if (method === 'GET') delete headers['content-type'];
  return { method, headers, body };
}

function finish(platformPublicKey: KeyObject, status: number, headers: Headers, text: string): ApiResponse {
  let json: ApiResponse['json'];
  try {
    json = JSON.parse(text);
  } catch {
    json = { code: -1, message: `not JSON: ${text.slice(0, 200)}` };
  }
  return { status, headers, text, json, signatureValid: responseSignedBy(platformPublicKey, { headers, text }) };
}

/** Whether a response's Sparkpay-Signature verifies with `publicKey` over its exact body. */
export function responseSignedBy(publicKey: KeyObject, res: Pick<ApiResponse, 'headers' | 'text'>): boolean {
  const rt = res.headers.get('sparkpay-timestamp');
  const rn = res.headers.get('sparkpay-nonce');
  const rs = res.headers.get('sparkpay-signature');
  return !!rt && !!rn && !!rs && verifyMessage(publicKey, rt, rn, res.text, rs);
}

/** The platform default key (signs answers to unknown AppIDs), as stored. */
export async function defaultPlatformKey(t: TestGateway): Promise<{ publicKey: KeyObject; serial: string }> {
  const record = await t.gateway.store.platformKeys.activeFor(null);
  if (!record) throw new Error('the gateway has no default platform key');
  return { publicKey: parsePublicKey(record.publicKeyPem), serial: record.serial };
}

/** Rows in the order tables, to prove a refused request stored nothing. */
export async function orderRowCounts(t: TestGateway): Promise<{ orders: number; options: number }> {
  const k = t.gateway.db.kysely;
  const [o, p] = await Promise.all([
    k.selectFrom('orders').select((eb) => eb.fn.countAll<string | number>().as('n')).executeTakeFirstOrThrow(),
    k.selectFrom('order_options').select((eb) => eb.fn.countAll<string | number>().as('n')).executeTakeFirstOrThrow(),
  ]);
  return { orders: Number(o.n), options: Number(p.n) };
}

/**
 * The §3 error envelope: the code, the HTTP status, a request id, no `data`, and a signature
 * by the calling application's platform key (`signed: false` when the caller checks another
 * key, e.g. the default key for an unknown AppID).
 */
export function expectError(res: ApiResponse, code: number, status = 400, opts: { signed?: boolean } = {}): void {
  expect({ status: res.status, code: res.json.code, message: res.json.message }).toMatchObject({ status, code, message: expect.any(String) });
  expect(res.json.message.length).toBeGreaterThan(0);
  expect(res.json).not.toHaveProperty('data');
  expect(res.headers.get('sparkpay-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  if (opts.signed !== false) expect(res.signatureValid).toBe(true);
}

/** A valid Pro order body (10.00 USD); override any field. */
export function proOrderBody(merchant: Merchant, clock: ManualClock, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    merchant_no: merchant.merchantNo,
    request_no: `pro_${Math.random().toString(36).slice(2, 12)}`,
    merchant_order_time: clock.seconds(),
    pricing_currency: 'USD',
    pricing_amount: '10.00',
    merchant_order_desc: 'Test pro order',
    ...overrides,
  };
}

/** A valid standard order body; override any field. */
export function orderBody(merchant: Merchant, clock: ManualClock, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    merchant_no: merchant.merchantNo,
    request_no: `req_${Math.random().toString(36).slice(2, 12)}`,
    merchant_order_time: clock.seconds(),
    total_amount: '10.50',
    merchant_order_currency: 'USDT',
    merchant_order_desc: 'Test order',
    ...overrides,
  };
}

let txCounter = 0;

/**
 * Feeds one transfer to the payment port (as the chain watcher will). Defaults: a final
 * USDT transfer on Polygon with a fresh tx hash; pass `txHash` again to update the same one.
 */
export async function observeTransfer(
  t: TestGateway,
  fact: Pick<TransferFact, 'paymentOrderNo' | 'amount'> & Partial<TransferFact>,
): Promise<TransferFact> {
  txCounter += 1;
  const full: TransferFact = {
    network: '4',
    currency: 'USDT',
    txHash: `0x${txCounter.toString(16).padStart(64, '0')}`,
    logIndex: 0,
    blockNumber: 1000 + txCounter,
    blockHash: `0x${(txCounter + 0x10000).toString(16).padStart(64, '0')}`,
    address: WALLET,
    confirmations: 64,
    status: 'FINAL',
    ...fact,
  };
  const outcome = await t.gateway.payments.transferObserved(full);
  if (!outcome.ok) throw new Error(`transfer refused: ${outcome.reason}`);
  return full;
}
