// SHA256withRSA (RSASSA-PKCS1-v1_5 with SHA-256), the algorithm of request/response signatures
// (PROTOCOL §2, §3) and of the notification `sign` (§13). Verification never throws: any
// malformed input is simply "not a valid signature", so callers map it to one error code.
import { constants, sign, verify, type KeyObject } from 'node:crypto';
import { decodeBase64, encodeBase64 } from './base64.js';
import { InvalidKeyError } from './keys.js';

const LF = Buffer.from('\n');

function bytes(data: string | Uint8Array): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * `timestamp\nnonce\nbody\n` as bytes. The body goes in exactly as received on the wire:
 * re-serialising parsed JSON would change whitespace or key order and break the signature.
 */
export function stringToSign(timestamp: string, nonce: string, body: string | Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${timestamp}\n${nonce}\n`, 'utf8'), bytes(body), LF]);
}

/** Signs the request/response string-to-sign; Base64 with padding. */
export function signMessage(privateKey: KeyObject, timestamp: string, nonce: string, body: string | Uint8Array): string {
  return signPayload(privateKey, stringToSign(timestamp, nonce, body));
}

/** True only for a valid signature of the string-to-sign; false on anything malformed. */
export function verifyMessage(
  publicKey: KeyObject,
  timestamp: string,
  nonce: string,
  body: string | Uint8Array,
  signatureBase64: string,
): boolean {
  return verifyPayload(publicKey, stringToSign(timestamp, nonce, body), signatureBase64);
}

/** Plain SHA256withRSA over `data` (UTF-8 when a string); Base64 with padding. */
export function signPayload(privateKey: KeyObject, data: string | Uint8Array): string {
  // node would sign with whatever the key is (ECDSA, PSS…); the protocol knows only PKCS#1 v1.5.
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'rsa') {
    throw new InvalidKeyError('signing needs an RSA private key');
  }
  return encodeBase64(sign('sha256', bytes(data), { key: privateKey, padding: constants.RSA_PKCS1_PADDING }));
}

/** True only for a valid SHA256withRSA signature of `data`; never throws. */
export function verifyPayload(publicKey: KeyObject, data: string | Uint8Array, signatureBase64: string): boolean {
  if (typeof signatureBase64 !== 'string') return false;
  if (publicKey.type === 'secret' || publicKey.asymmetricKeyType !== 'rsa') return false;
  const signature = decodeBase64(signatureBase64);
  // A PKCS#1 v1.5 signature is exactly as long as the modulus; anything else is malformed.
  const modulusBytes = Math.ceil((publicKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
  if (!signature || signature.length !== modulusBytes) return false;
  try {
    return verify('sha256', bytes(data), { key: publicKey, padding: constants.RSA_PKCS1_PADDING }, signature);
  } catch {
    return false;
  }
}
