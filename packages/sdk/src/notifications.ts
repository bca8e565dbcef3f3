// Merchant side of the asynchronous notifications (PROTOCOL §13): verifies and decrypts the
// envelope the platform POSTs to `notify_url`. The cryptography is the protocol package's
// `openNotification`; this module chooses the keys, checks the unsigned head fields against the
// configuration and checks that the authentic payload carries what a receiver relies on.
//
// `head.app_id` and `head.serial` are NOT covered by the platform signature (only the payload
// is). The serial only selects which configured platform key must have signed; with a single
// platform key it is ignored. An attacker can change either field, but cannot make a payload
// verify without the platform private key.
import type { KeyObject } from 'node:crypto';
import { NotificationError, openNotification } from '@sparkpay/protocol';
import { SparkPayConfigError, SparkPayNotificationError, type NotificationFailure } from './errors.js';
import {
  platformKeyFor,
  resolveMerchantPrivateKey,
  resolvePlatformKeys,
  type KeyInput,
  type PlatformKeys,
  type PlatformPublicKeyInput,
} from './keys.js';
import type { NotificationPayload, NotifyType } from './types.js';

export interface ParseNotificationOptions {
  /** The merchant application's RSA private key: `head.aes_key` is encrypted to its public half. */
  merchantPrivateKey: KeyInput;
  /**
   * The platform's RSA public key; or a map `{ [serial]: key }` during a key rotation, in which
   * case `head.serial` must name one of the keys (otherwise `UNKNOWN_SERIAL`). With a single key
   * `head.serial` is ignored: it is not signed, so it carries no assurance of its own.
   */
  platformPublicKey: PlatformPublicKeyInput;
  /** When given, `head.app_id` must equal it (otherwise `APP_ID_MISMATCH`). */
  appId?: string;
}

/** Facts about a verified notification besides its payload. */
export interface NotificationMeta {
  /** `head.app_id` as received (unsigned; equal to the configured `appId` when one is set). */
  appId: string;
  /** `head.serial` as received (unsigned). */
  serial: string;
  /** The exact payload JSON the platform signed, e.g. for an audit log. */
  payloadJson: string;
}

export interface VerifiedNotification {
  payload: NotificationPayload;
  meta: NotificationMeta;
}

/** Keys and app id, parsed once. */
export interface NotificationVerifierConfig {
  merchantPrivateKey: KeyObject;
  platformKeys: PlatformKeys;
  appId: string | undefined;
}

const NOTIFY_TYPES: ReadonlySet<string> = new Set<NotifyType>([
  'ORDER_PAID',
  'ORDER_COMPLETED',
  'ORDER_CLOSED',
  'ORDER_EXCEPTION',
]);

/** Parses the key and app id options; throws SparkPayConfigError on anything unusable. */
export function resolveNotificationConfig(options: ParseNotificationOptions): NotificationVerifierConfig {
  if (typeof options !== 'object' || options === null) throw new SparkPayConfigError('options are required');
  const { appId } = options;
  if (appId !== undefined && (typeof appId !== 'string' || appId.trim() === '')) {
    throw new SparkPayConfigError('appId must be a non-empty string when given');
  }
  return {
    merchantPrivateKey: resolveMerchantPrivateKey(options.merchantPrivateKey),
    platformKeys: resolvePlatformKeys(options.platformPublicKey),
    appId,
  };
}

/**
 * Verifies and decrypts a notification and returns its payload.
 *
 * `rawBody` is the request body as received: the bytes or string (preferred), or the object a
 * JSON body parser produced from it (the signature covers the encrypted payload, not the
 * envelope's formatting, so a re-parsed envelope verifies just as well).
 *
 * Throws SparkPayNotificationError (see its `kind`) when the notification cannot be trusted or
 * read, and SparkPayConfigError when a key option is unusable. Keys given as strings are parsed
 * on every call; pass KeyObjects, or use createNotificationHandler, to parse them once.
 */
export function parseNotification(
  rawBody: string | Uint8Array | object,
  options: ParseNotificationOptions,
): NotificationPayload {
  return verifyNotification(rawBody, resolveNotificationConfig(options)).payload;
}

/** parseNotification with parsed keys, also returning the head fields and the signed JSON. */
export function verifyNotification(rawBody: unknown, config: NotificationVerifierConfig): VerifiedNotification {
  const envelope = toEnvelopeValue(rawBody);
  const head = readHead(envelope);
  if (config.appId !== undefined && head.appId !== config.appId) {
    fail('APP_ID_MISMATCH', `head.app_id ${quote(head.appId)} is not the configured appId ${quote(config.appId)}`);
  }
  const platformPublicKey = platformKeyFor(config.platformKeys, head.serial);
  if (platformPublicKey === null) {
    fail('UNKNOWN_SERIAL', `head.serial ${quote(head.serial)} names none of the configured platform keys`);
  }
  let opened: ReturnType<typeof openNotification>;
  try {
    opened = openNotification(envelope, { merchantPrivateKey: config.merchantPrivateKey, platformPublicKey });
  } catch (cause) {
    if (cause instanceof NotificationError) throw new SparkPayNotificationError(cause.kind, cause.message, { cause });
    throw cause;
  }
  return {
    payload: checkPayload(opened.payload),
    meta: { appId: opened.appId, serial: opened.serial, payloadJson: opened.payloadJson },
  };
}

function fail(kind: NotificationFailure, message: string): never {
  throw new SparkPayNotificationError(kind, message);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Head values are attacker-controlled: JSON-quoted (no line breaks in logs) and truncated. */
function quote(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
}

function toEnvelopeValue(raw: unknown): unknown {
  if (typeof raw !== 'string' && !(raw instanceof Uint8Array)) return raw;
  let text: string;
  try {
    text = typeof raw === 'string' ? raw : new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    return fail('MALFORMED', 'notification is not valid UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch {
    return fail('MALFORMED', 'notification is not valid JSON');
  }
}

/** The head fields needed before decryption; openNotification checks the rest of the shape. */
function readHead(envelope: unknown): { appId: string; serial: string } {
  if (!isRecord(envelope) || !isRecord(envelope.head)) return fail('MALFORMED', 'notification has no head object');
  const { app_id: appId, serial } = envelope.head;
  if (typeof appId !== 'string') return fail('MALFORMED', 'notification head.app_id is not a string');
  if (typeof serial !== 'string') return fail('MALFORMED', 'notification head.serial is not a string');
  return { appId, serial };
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isId = (v: unknown): v is string => typeof v === 'string' && v !== '';

/**
 * The fields a receiver keys its processing on. Everything else is passed through as the
 * platform signed it: new optional fields may appear at any time.
 */
function checkPayload(payload: unknown): NotificationPayload {
  if (!isRecord(payload)) return fail('BAD_PAYLOAD', 'payload is not a JSON object');
  if (!isId(payload.notify_id)) fail('BAD_PAYLOAD', 'payload.notify_id is not a non-empty string');
  if (typeof payload.notify_type !== 'string' || !NOTIFY_TYPES.has(payload.notify_type)) {
    fail('BAD_PAYLOAD', 'payload.notify_type is not one of ORDER_PAID, ORDER_COMPLETED, ORDER_CLOSED, ORDER_EXCEPTION');
  }
  if (!isCount(payload.sequence)) fail('BAD_PAYLOAD', 'payload.sequence is not a non-negative integer');
  if (!isCount(payload.notify_time)) fail('BAD_PAYLOAD', 'payload.notify_time is not a non-negative integer');
  if (!isId(payload.payment_order_no)) fail('BAD_PAYLOAD', 'payload.payment_order_no is not a non-empty string');
  return payload as unknown as NotificationPayload;
}
