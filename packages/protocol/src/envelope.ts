// The asynchronous notification envelope (PROTOCOL §13): the payload JSON is encrypted with a
// fresh AES-256-CBC key, that key is RSA-OAEP encrypted to the merchant, and the payload is
// signed by the platform. sealNotification is the platform side, openNotification the merchant's.
import {
  constants,
  createCipheriv,
  createDecipheriv,
  privateDecrypt,
  publicEncrypt,
  type KeyObject,
} from 'node:crypto';
import { decodeBase64, encodeBase64 } from './base64.js';
import { randomAlphanumeric, type RandomBytes } from './random-string.js';
import { signPayload, verifyPayload } from './signing.js';

export interface NotificationEnvelope {
  head: { charset: 'UTF-8'; app_id: string; aes_key: string; sign: string; serial: string };
  body: string;
}

export type NotificationErrorKind = 'MALFORMED' | 'KEY_DECRYPT' | 'BODY_DECRYPT' | 'SIGNATURE';

export class NotificationError extends Error {
  readonly kind: NotificationErrorKind;

  constructor(kind: NotificationErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NotificationError';
    this.kind = kind;
  }
}

/** The AES key is 32 ASCII characters used directly as the 256-bit key; its first 16 are the IV. */
const AES_KEY = /^[A-Za-z0-9]{32}$/;

/** A fresh notification AES key: 32 uniformly random characters from [A-Za-z0-9]. */
export function generateAesKey(randomBytes?: RandomBytes): string {
  return randomAlphanumeric(32, randomBytes);
}

// OAEP with SHA-256; node uses the same hash for MGF1, which is what §13 decided.
const OAEP = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' } as const;

function aesParams(aesKey: string): { key: Buffer; iv: Buffer } {
  const key = Buffer.from(aesKey, 'ascii');
  return { key, iv: key.subarray(0, 16) };
}

/** Builds the envelope for one notification attempt series (platform side). */
export function sealNotification(
  payloadJson: string,
  opts: { appId: string; serial: string; merchantPublicKey: KeyObject; platformPrivateKey: KeyObject; aesKey?: string },
): NotificationEnvelope {
  const aesKey = opts.aesKey ?? generateAesKey();
  if (!AES_KEY.test(aesKey)) throw new RangeError('aesKey must be 32 characters from [A-Za-z0-9]');
  const { key, iv } = aesParams(aesKey);
  // createCipheriv pads with PKCS#7 by default, which is what "PKCS#5 padding" means for AES.
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const ciphertext = Buffer.concat([cipher.update(payloadJson, 'utf8'), cipher.final()]);
  return {
    head: {
      charset: 'UTF-8',
      app_id: opts.appId,
      aes_key: encodeBase64(publicEncrypt({ key: opts.merchantPublicKey, ...OAEP }, key)),
      sign: signPayload(opts.platformPrivateKey, payloadJson),
      serial: opts.serial,
    },
    body: encodeBase64(ciphertext),
  };
}

function fail(kind: NotificationErrorKind, message: string, cause?: unknown): never {
  throw new NotificationError(kind, message, cause === undefined ? undefined : { cause });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    return fail('MALFORMED', `${what} is not valid JSON`, cause);
  }
}

function readEnvelope(envelope: unknown): NotificationEnvelope {
  if (typeof envelope === 'string') envelope = parseJson(envelope, 'notification');
  else if (envelope instanceof Uint8Array) envelope = parseJson(Buffer.from(envelope).toString('utf8'), 'notification');
  if (!isRecord(envelope) || !isRecord(envelope.head)) fail('MALFORMED', 'notification has no head object');
  const head = envelope.head;
  for (const field of ['app_id', 'aes_key', 'sign', 'serial'] as const) {
    if (typeof head[field] !== 'string') fail('MALFORMED', `notification head.${field} is not a string`);
  }
  if (typeof head.charset !== 'string' || head.charset.toUpperCase() !== 'UTF-8') {
    fail('MALFORMED', 'notification head.charset is not UTF-8');
  }
  if (typeof envelope.body !== 'string') fail('MALFORMED', 'notification body is not a string');
  return envelope as unknown as NotificationEnvelope;
}

function decryptKey(aesKeyBase64: string, merchantPrivateKey: KeyObject): string {
  const encrypted = decodeBase64(aesKeyBase64);
  if (!encrypted) return fail('KEY_DECRYPT', 'head.aes_key is not valid Base64');
  let plain: Buffer;
  try {
    plain = privateDecrypt({ key: merchantPrivateKey, ...OAEP }, encrypted);
  } catch (cause) {
    return fail('KEY_DECRYPT', 'head.aes_key does not decrypt with the merchant private key', cause);
  }
  const aesKey = plain.toString('latin1');
  if (!AES_KEY.test(aesKey)) fail('KEY_DECRYPT', 'decrypted AES key is not 32 characters from [A-Za-z0-9]');
  return aesKey;
}

/**
 * The body decrypted once, without the library's padding check: the PKCS#7 padding is checked
 * here, over the whole last block whatever its bytes, so a body whose padding fails costs what
 * one whose padding holds costs (the oracle openNotification guards against). `ok` false: not
 * Base64, not whole blocks, or bad padding; `plain` is then the bytes as decrypted.
 */
function decryptBody(bodyBase64: string, aesKey: string): { plain: Buffer; ok: boolean; why: string } {
  const ciphertext = decodeBase64(bodyBase64);
  if (!ciphertext) return { plain: Buffer.alloc(0), ok: false, why: 'body is not valid Base64' };
  const whole = ciphertext.length > 0 && ciphertext.length % 16 === 0;
  const { key, iv } = aesParams(aesKey);
  const decipher = createDecipheriv('aes-256-cbc', key, iv).setAutoPadding(false);
  const raw = Buffer.concat([decipher.update(ciphertext.subarray(0, ciphertext.length - (ciphertext.length % 16))), decipher.final()]);
  // Branch-free over the last block: the pad length n (1..16), and every one of the last n bytes equal to n.
  const n = raw.length >= 16 ? raw[raw.length - 1]! : 0;
  let bad = ((n - 1) >>> 31) | ((16 - n) >>> 31);
  for (let i = 1; i <= 16 && raw.length >= 16; i += 1) {
    const inPad = ((i - n - 1) >>> 31) & 1; // 1 when i <= n
    bad |= inPad & (raw[raw.length - i]! !== n ? 1 : 0);
  }
  const ok = whole && raw.length >= 16 && bad === 0;
  return { plain: ok ? raw.subarray(0, raw.length - n) : raw, ok, why: whole ? 'body does not decrypt with the AES key (padding)' : 'body is not whole AES blocks' };
}

/**
 * Opens a notification (merchant side): shape, AES key, body, then the platform signature over
 * the decrypted bytes, and only then JSON parsing, so nothing unauthenticated is ever parsed.
 *
 * The signature is over the plaintext (§13), so the CBC padding is checked before anything is
 * authenticated: a receiver that let a sender tell a padding failure from a signature failure
 * (by its answer or its timing) would decrypt a captured body for anyone, one byte per few
 * hundred requests. So every step runs whatever failed before it (a random key when the AES key
 * does not decrypt; the body is decrypted once and its padding checked without branching on it),
 * the signature is always checked, and only then is the first failure reported. The kinds stay apart for the receiver's
 * own log; what it answers must not tell them apart (the SDK's handler answers `FAIL` to all).
 */
export function openNotification(
  envelope: unknown,
  opts: { merchantPrivateKey: KeyObject; platformPublicKey: KeyObject },
): { payloadJson: string; payload: unknown; appId: string; serial: string } {
  const { head, body } = readEnvelope(envelope);
  let failure: unknown = null;
  let aesKey: string;
  try {
    aesKey = decryptKey(head.aes_key, opts.merchantPrivateKey);
  } catch (err) {
    failure = err;
    aesKey = randomAlphanumeric(32);
  }
  const { plain, ok, why } = decryptBody(body, aesKey);
  if (!ok) failure ??= new NotificationError('BODY_DECRYPT', why);
  const signed = verifyPayload(opts.platformPublicKey, plain, head.sign);
  if (failure !== null) throw failure;
  if (!signed) fail('SIGNATURE', 'head.sign is not a valid platform signature of the payload');
  let payloadJson: string;
  try {
    payloadJson = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(plain);
  } catch (cause) {
    return fail('MALFORMED', 'payload is not valid UTF-8', cause);
  }
  const payload = parseJson(payloadJson, 'payload');
  return { payloadJson, payload, appId: head.app_id, serial: head.serial };
}
