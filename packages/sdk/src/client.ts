// The merchant-facing client of the SparkPay OpenAPI v4 (PROTOCOL §7, §8, §11, §12).
import { generateNonce } from '@sparkpay/protocol';
import { SparkPayConfigError } from './errors.js';
import { resolveMerchantPrivateKey, resolvePlatformKeys, type KeyInput, type PlatformPublicKeyInput } from './keys.js';
import { checkTimeout, signedRequest, type About, type RequestOptions, type TransportConfig } from './transport.js';
import type {
  CloseOrderRequest,
  CloseOrderResponse,
  CreateOrderRequest,
  CreateOrderResponse,
  CreateProOrderRequest,
  CreateProOrderResponse,
  OrderDetails,
  ProOrderDetails,
} from './types.js';
import { DEFAULT_USER_AGENT } from './version.js';

export interface SparkPayClientOptions {
  /** Where the platform's API is served, e.g. `https://pay.example.com` (a path prefix is kept). */
  baseUrl: string;
  /** The application's AppID. */
  appId: string;
  /** The merchant application's RSA private key (PKCS#8 PEM, with or without header lines). */
  merchantPrivateKey: KeyInput;
  /**
   * The payment platform's RSA public key (SPKI PEM), used to verify every response; or a map
   * `{ [serial]: key }` to accept several keys during a rotation (chosen by `Sparkpay-Serial`).
   */
  platformPublicKey: PlatformPublicKeyInput;
  /** Whole-exchange timeout in ms (default 30 000). */
  timeoutMs?: number;
  /** Largest accepted distance between a response's signed timestamp and `clock` (default 300 s). */
  maxClockSkewSeconds?: number;
  /** Replaces the global `fetch` (proxies, instrumentation, tests). */
  fetch?: typeof globalThis.fetch;
  /** Current time in milliseconds since the epoch (default `Date.now`). */
  clock?: () => number;
  /** Nonce source (default 32 random alphanumeric characters). */
  nonce?: () => string;
  /** `User-Agent` header (default `sparkpay-sdk-node/<version>`). */
  userAgent?: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_CLOCK_SKEW_SECONDS = 300;

export class SparkPayClient {
  readonly #config: TransportConfig;

  constructor(options: SparkPayClientOptions) {
    // Options may come from untyped JavaScript or environment variables: check them here so a
    // misconfiguration fails at start-up, not on a customer's checkout.
    if (typeof options !== 'object' || options === null) throw new SparkPayConfigError('options are required');
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== 'function') throw new SparkPayConfigError('no fetch implementation available');
    this.#config = {
      baseUrl: normaliseBaseUrl(options.baseUrl),
      appId: requireText(options.appId, 'appId'),
      merchantPrivateKey: resolveMerchantPrivateKey(options.merchantPrivateKey),
      platformKeys: resolvePlatformKeys(options.platformPublicKey),
      timeoutMs: options.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : checkTimeout(options.timeoutMs, 'timeoutMs'),
      maxClockSkewSeconds: positive(options.maxClockSkewSeconds, DEFAULT_MAX_CLOCK_SKEW_SECONDS, 'maxClockSkewSeconds'),
      fetch: fetchImpl,
      clock: options.clock ?? Date.now,
      nonce: options.nonce ?? (() => generateNonce()),
      userAgent: requireText(options.userAgent ?? DEFAULT_USER_AGENT, 'userAgent'),
    };
  }

  /** `POST /v4/pay/cashier`: creates a payment order; send the payer to `cashier_url`. */
  createOrder(req: CreateOrderRequest, options?: RequestOptions): Promise<CreateOrderResponse> {
    return signedRequest(this.#config, 'POST', '/v4/pay/cashier', req, options, about(req));
  }

  /** `POST /v4/pro/pay/cashier`: creates a Pro order priced in a pricing currency. */
  createProOrder(req: CreateProOrderRequest, options?: RequestOptions): Promise<CreateProOrderResponse> {
    return signedRequest(this.#config, 'POST', '/v4/pro/pay/cashier', req, options, about(req));
  }

  /** `GET /v4/pay/orders/{merchant_no}/{request_no}`: the order's current state. */
  async getOrder(merchantNo: string, requestNo: string, options?: RequestOptions): Promise<OrderDetails> {
    return signedRequest(this.#config, 'GET', orderPath('/v4/pay/orders', merchantNo, requestNo), undefined, options, { merchantNo, requestNo });
  }

  /** `GET /v4/pro/pay/orders/{merchant_no}/{request_no}`: a Pro order's current state. */
  async getProOrder(merchantNo: string, requestNo: string, options?: RequestOptions): Promise<ProOrderDetails> {
    return signedRequest(this.#config, 'GET', orderPath('/v4/pro/pay/orders', merchantNo, requestNo), undefined, options, { merchantNo, requestNo });
  }

  /** `POST /v4/pay/orders/close`: closes a `PENDING` order (43006 once paying, 43007 if closed). */
  closeOrder(req: CloseOrderRequest, options?: RequestOptions): Promise<CloseOrderResponse> {
    return signedRequest(this.#config, 'POST', '/v4/pay/orders/close', req, options, about(req));
  }
}

/** The order a request body names (checked against the answer), when it names one as text. */
function about(req: unknown): About | undefined {
  const r = req as { merchant_no?: unknown; request_no?: unknown } | null;
  return typeof r?.merchant_no === 'string' && typeof r.request_no === 'string' ? { merchantNo: r.merchant_no, requestNo: r.request_no } : undefined;
}

function requireText(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw new SparkPayConfigError(`${name} must be a non-empty string`);
  return value;
}

function positive(value: unknown, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new SparkPayConfigError(`${name} must be a positive number`);
  }
  return value;
}

function normaliseBaseUrl(value: unknown): string {
  const text = requireText(value, 'baseUrl');
  let url: URL;
  try {
    url = new URL(text);
  } catch (cause) {
    throw new SparkPayConfigError(`baseUrl is not a valid URL: ${text}`, { cause });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new SparkPayConfigError('baseUrl must be http(s)');
  if (url.search !== '' || url.hash !== '') throw new SparkPayConfigError('baseUrl must not carry a query or fragment');
  return url.href.replace(/\/+$/, '');
}

/**
 * Path segments are percent-encoded so a `/`, `?` or `#` inside an identifier cannot change the
 * route. `.` and `..` are refused: URL parsers resolve them even when percent-encoded, and the
 * request path is not covered by the signature.
 */
function orderPath(prefix: string, merchantNo: string, requestNo: string): string {
  return `${prefix}/${segment(merchantNo, 'merchantNo')}/${segment(requestNo, 'requestNo')}`;
}

function segment(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '' || value === '.' || value === '..') {
    throw new SparkPayConfigError(`${name} must be a non-empty string other than "." or ".."`);
  }
  return encodeURIComponent(value);
}
