// One signed exchange with the platform: serialise the body once, sign those exact bytes, send
// them, read the raw response bytes, verify the platform's signature over them, and only then
// parse the envelope. Nothing from the response (not even the error message) is believed before
// the signature checks out.
import type { KeyObject } from 'node:crypto';
import { signMessage, verifyMessage } from '@sparkpay/protocol';
import {
  SparkPayApiError,
  SparkPayConfigError,
  SparkPayNetworkError,
  SparkPayResponseError,
  SparkPayResponseSignatureError,
  type RequestContext,
} from './errors.js';
import { platformKeyFor, type PlatformKeys } from './keys.js';

export interface TransportConfig {
  /** Base URL without a trailing slash; may carry a path prefix. */
  baseUrl: string;
  appId: string;
  merchantPrivateKey: KeyObject;
  platformKeys: PlatformKeys;
  timeoutMs: number;
  maxClockSkewSeconds: number;
  fetch: typeof globalThis.fetch;
  /** Milliseconds since the epoch. */
  clock: () => number;
  nonce: () => string;
  userAgent: string;
}

/** Per-call options. */
export interface RequestOptions {
  /** Overrides the client's `timeoutMs` for this call. */
  timeoutMs?: number;
  /** Aborts the call; it then fails with a `SparkPayNetworkError` (`timedOut: false`). */
  signal?: AbortSignal;
}

interface RawResponse {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

const EMPTY = new Uint8Array(0);

/** The largest answer read (an order's answer is a few KiB): a hostile or broken server cannot fill the merchant's memory. */
export const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

const SIGNATURE_HEADERS = ['Sparkpay-Timestamp', 'Sparkpay-Nonce', 'Sparkpay-Signature'] as const;

class ResponseTooLarge extends Error {
  constructor(
    readonly status: number,
    readonly requestId: string | undefined,
  ) {
    super(`the answer is larger than ${MAX_RESPONSE_BYTES} bytes`);
  }
}

/** The body, at most `max` bytes; more is a ResponseTooLarge (and the rest is never read). */
async function readCapped(res: Response, max: number): Promise<Uint8Array> {
  const tooLarge = () => new ResponseTooLarge(res.status, res.headers.get('Sparkpay-Request-Id') ?? undefined);
  if (Number(res.headers.get('content-length') ?? 0) > max) {
    await res.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (!res.body) return EMPTY;
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  return chunks.length === 1 ? chunks[0]! : new Uint8Array(Buffer.concat(chunks));
}

/** A request body's bytes; a body JSON cannot carry (a bigint, a cycle, none at all) is the caller's mistake, and nothing is sent. */
function serialised(payload: unknown): Buffer {
  let text: string | undefined;
  try {
    text = JSON.stringify(payload) as string | undefined;
  } catch (cause) {
    throw new SparkPayConfigError(`the request body cannot be sent as JSON: ${(cause as Error).message} (amounts are decimal strings, e.g. "10.50")`, { cause });
  }
  if (text === undefined) throw new SparkPayConfigError('the request body is missing');
  return Buffer.from(text, 'utf8');
}

export async function signedRequest<T>(
  config: TransportConfig,
  method: 'GET' | 'POST',
  path: string,
  payload: unknown,
  options: RequestOptions = {},
  about?: About,
): Promise<T> {
  const ctx: RequestContext = { method, path };
  if (options.timeoutMs !== undefined) checkTimeout(options.timeoutMs, 'options.timeoutMs');
  // Serialised exactly once: these bytes are both signed and sent.
  const body = method === 'POST' ? serialised(payload) : EMPTY;
  const timestamp = String(Math.floor(config.clock() / 1000));
  const nonce = config.nonce();
  const headers: Record<string, string> = {
    'User-Agent': config.userAgent,
    'Sparkpay-App-Id': config.appId,
    'Sparkpay-Timestamp': timestamp,
    'Sparkpay-Nonce': nonce,
    'Sparkpay-Signature': signMessage(config.merchantPrivateKey, timestamp, nonce, body),
  };
  if (method === 'POST') headers['Content-Type'] = 'application/json';

  const res = await send(config, ctx, { method, headers, body: method === 'POST' ? body : undefined }, options);
  verifyResponse(config, ctx, res);
  const data = readEnvelope<T>(ctx, res);
  if (about) checkAbout(ctx, res, data as Record<string, unknown>, about);
  return data;
}

/** Longest timer Node keeps (2^31 - 1 ms): a longer one fires after 1 ms. */
export const MAX_TIMEOUT_MS = 2_147_483_647;

export function checkTimeout(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > MAX_TIMEOUT_MS) {
    throw new SparkPayConfigError(`${name} must be a number of milliseconds above 0 and at most ${MAX_TIMEOUT_MS}`);
  }
  return value;
}

/** The order a request is about: its answer must be about the same one. */
export interface About {
  merchantNo: string;
  requestNo: string;
}

/**
 * The response signature covers the answer, not the request (§3): an authentic answer to
 * another request (replayed within the window by anyone on the path) must not pass for this
 * one's. Every successful answer of these endpoints names the order's request_no and merchant.
 */
function checkAbout(ctx: RequestContext, res: RawResponse, data: Record<string, unknown>, about: About): void {
  const merchant = data.merchant_no ?? data.merchant_customer_no;
  const sameRequest = typeof data.request_no === 'string' && data.request_no.toLowerCase() === about.requestNo.toLowerCase();
  if (sameRequest && merchant === about.merchantNo) return;
  throw new SparkPayResponseError(
    `response to ${ctx.method} ${ctx.path} is authentic but about another order (request_no ${JSON.stringify(data.request_no)}, merchant ${JSON.stringify(merchant)}; asked ${JSON.stringify(about.requestNo)} of ${JSON.stringify(about.merchantNo)}): replayed or misrouted, not used`,
    { ...ctx, httpStatus: res.status, requestId: header(res, 'Sparkpay-Request-Id') },
  );
}

async function send(
  config: TransportConfig,
  ctx: RequestContext,
  init: { method: string; headers: Record<string, string>; body: Uint8Array | undefined },
  options: RequestOptions,
): Promise<RawResponse> {
  const timeoutMs = options.timeoutMs ?? config.timeoutMs;
  const controller = new AbortController();
  let timedOut = false;
  // One timer for the whole exchange, body included: a server that sends headers and then
  // stalls must not hang the merchant's checkout.
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  const onAbort = (): void => controller.abort();
  if (options.signal?.aborted) controller.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    // Redirects are not followed: a signed request must not be replayed elsewhere, and a 3xx
    // then fails verification with its status in the message, which points at the cause.
    const res = await config.fetch(config.baseUrl + ctx.path, {
      method: init.method,
      headers: init.headers,
      body: init.body,
      redirect: 'manual',
      signal: controller.signal,
    });
    // An answer without the signature headers is refused as it is (verifyResponse says which are
    // missing) without reading its body, which could be anything and of any length.
    if (SIGNATURE_HEADERS.some((h) => !res.headers.get(h))) {
      await res.body?.cancel().catch(() => undefined);
      return { status: res.status, headers: res.headers, body: EMPTY };
    }
    return { status: res.status, headers: res.headers, body: await readCapped(res, MAX_RESPONSE_BYTES) };
  } catch (cause) {
    if (cause instanceof ResponseTooLarge) {
      throw new SparkPayResponseError(`response to ${ctx.method} ${ctx.path} (HTTP ${cause.status}) is not a SparkPay envelope: ${cause.message}`, { ...ctx, httpStatus: cause.status, requestId: cause.requestId });
    }
    const what = timedOut
      ? `timed out after ${timeoutMs} ms`
      : controller.signal.aborted
        ? 'was aborted'
        : `failed: ${cause instanceof Error ? describeCause(cause) : String(cause)}`;
    throw new SparkPayNetworkError(`${ctx.method} ${ctx.path} ${what}`, { ...ctx, timedOut }, { cause });
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/** undici reports "fetch failed" and hides the useful part (ECONNREFUSED…) in `cause`. */
function describeCause(err: Error): string {
  const inner = err.cause;
  return inner instanceof Error ? `${err.message} (${inner.message})` : err.message;
}

function header(res: RawResponse, name: string): string | undefined {
  const value = res.headers.get(name);
  return value === null || value === '' ? undefined : value;
}

function verifyResponse(config: TransportConfig, ctx: RequestContext, res: RawResponse): void {
  const requestId = header(res, 'Sparkpay-Request-Id');
  const serial = header(res, 'Sparkpay-Serial');
  function fail(reason: SparkPayResponseSignatureError['reason'], why: string): never {
    throw new SparkPayResponseSignatureError(
      `response to ${ctx.method} ${ctx.path} (HTTP ${res.status}) is not authentic: ${why}`,
      { ...ctx, reason, httpStatus: res.status, requestId, serial },
    );
  }

  const timestamp = header(res, 'Sparkpay-Timestamp');
  const nonce = header(res, 'Sparkpay-Nonce');
  const signature = header(res, 'Sparkpay-Signature');
  if (timestamp === undefined || nonce === undefined || signature === undefined) {
    const missing = [
      timestamp === undefined && 'Sparkpay-Timestamp',
      nonce === undefined && 'Sparkpay-Nonce',
      signature === undefined && 'Sparkpay-Signature',
    ].filter(Boolean);
    const location = res.status >= 300 && res.status < 400 ? header(res, 'Location') : undefined;
    const hint = location ? `redirect to ${location} not followed; point baseUrl there` : 'is a proxy answering instead of the platform?';
    fail('MISSING_HEADERS', `missing ${missing.join(', ')} (${hint})`);
  }

  const key = platformKeyFor(config.platformKeys, serial);
  if (key === null) {
    fail('UNKNOWN_SERIAL', serial === undefined ? 'no Sparkpay-Serial header' : `no platform key configured for serial "${serial}"`);
  }
  if (!verifyMessage(key, timestamp, nonce, res.body, signature)) {
    // Most often a wrong appId: the platform answers an unknown or disabled AppID (40002) signed
    // with its default key, which this client does not hold.
    fail('BAD_SIGNATURE', `signature does not verify with the platform public key${serial === undefined ? '' : ` (the answer names key serial "${serial}")`}: check that appId is this application's and platformPublicKey its current key`);
  }

  // Checked after the signature, so this error means "authentic but stale or skewed".
  const now = Math.floor(config.clock() / 1000);
  if (!/^\d{1,15}$/.test(timestamp)) fail('TIMESTAMP_OUT_OF_WINDOW', `malformed Sparkpay-Timestamp "${timestamp}"`);
  const skew = Number(timestamp) - now;
  if (Math.abs(skew) > config.maxClockSkewSeconds) {
    fail(
      'TIMESTAMP_OUT_OF_WINDOW',
      `signed ${Math.abs(skew)} s ${skew < 0 ? 'ago' : 'ahead of the local clock'} (allowed ${config.maxClockSkewSeconds} s; check this machine's clock)`,
    );
  }
}

function readEnvelope<T>(ctx: RequestContext, res: RawResponse): T {
  const requestId = header(res, 'Sparkpay-Request-Id');
  const malformed = (why: string, cause?: unknown): never => {
    throw new SparkPayResponseError(
      `response to ${ctx.method} ${ctx.path} (HTTP ${res.status}) is not a SparkPay envelope: ${why}`,
      { ...ctx, httpStatus: res.status, requestId },
      { cause },
    );
  };

  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(res.body));
  } catch (cause) {
    return malformed('body is not UTF-8 JSON', cause);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return malformed('not a JSON object');
  const envelope = parsed as Record<string, unknown>;
  const { code, message, data } = envelope;
  if (typeof code !== 'number' || !Number.isInteger(code)) return malformed('"code" is not an integer');
  if (code !== 0) {
    const text = typeof message === 'string' ? message : '';
    throw new SparkPayApiError({ ...ctx, code, message: text, httpStatus: res.status, requestId });
  }
  if (res.status < 200 || res.status > 299) return malformed(`code 0 with HTTP status ${res.status}`);
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return malformed('"data" is not an object');
  return data as T;
}
