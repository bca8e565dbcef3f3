// RSA key parsing for merchant and platform keys. Merchants paste keys in many shapes (full PEM,
// the Base64 body alone, Windows line endings, escaped newlines from JSON or env files), so the
// parsers normalise first and then insist on the documented encodings: X.509 SPKI for public
// keys, PKCS#8 (or legacy PKCS#1) for private keys. Callers parse once and keep the KeyObject.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { decodeBase64 } from './base64.js';

export class InvalidKeyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidKeyError';
  }
}

interface KeyText {
  /** PEM label ("PUBLIC KEY", "RSA PRIVATE KEY", …), or null when only the Base64 body was given. */
  label: string | null;
  der: Buffer;
}

const PEM = /^-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----$/;

function readKeyText(input: string, what: string): KeyText {
  if (typeof input !== 'string') throw new InvalidKeyError(`${what} must be a string`);
  // Literal "\n" sequences appear when a PEM travelled through JSON or a one-line env variable;
  // a backslash is never valid Base64, so turning them into line breaks cannot change a key.
  const text = input.replace(/^\uFEFF/, '').replace(/\\r\\n|\\n|\\r/g, '\n').trim();
  let label: string | null = null;
  let body = text;
  if (text.startsWith('-----BEGIN')) {
    const m = PEM.exec(text);
    if (!m) throw new InvalidKeyError(`${what} is not a well-formed PEM block`);
    label = m[1] ?? null;
    body = m[2] ?? '';
  }
  const der = decodeBase64(body.replace(/\s+/g, ''));
  if (!der || der.length === 0) throw new InvalidKeyError(`${what} is not valid Base64`);
  return { label, der };
}

/** Parses an X.509 SubjectPublicKeyInfo key given as PEM or as its bare Base64 body. */
export function parsePublicKey(pemOrBase64: string): KeyObject {
  const { label, der } = readKeyText(pemOrBase64, 'public key');
  // Only SPKI: node would happily derive a public key from a private PEM, which would hide a
  // merchant uploading the wrong half of the pair.
  if (label !== null && label !== 'PUBLIC KEY') {
    throw new InvalidKeyError(`expected a "PUBLIC KEY" (X.509 SPKI) PEM, got "${label}"`);
  }
  try {
    return createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch (cause) {
    throw new InvalidKeyError('public key is not a valid X.509 SPKI key', { cause });
  }
}

/** Parses a PKCS#8 private key (or a PKCS#1 "RSA PRIVATE KEY"), as PEM or bare Base64 body. */
export function parsePrivateKey(pemOrBase64: string): KeyObject {
  const { label, der } = readKeyText(pemOrBase64, 'private key');
  let types: Array<'pkcs8' | 'pkcs1'>;
  if (label === 'PRIVATE KEY') types = ['pkcs8'];
  else if (label === 'RSA PRIVATE KEY') types = ['pkcs1'];
  else if (label === null) types = ['pkcs8', 'pkcs1'];
  else throw new InvalidKeyError(`expected a "PRIVATE KEY" (PKCS#8) PEM, got "${label}"`);
  let cause: unknown;
  for (const type of types) {
    try {
      return createPrivateKey({ key: der, format: 'der', type });
    } catch (err) {
      cause = err;
    }
  }
  throw new InvalidKeyError('private key is not a valid PKCS#8 or PKCS#1 key', { cause });
}

/** The protocol's keys are RSA-2048 only (§2); anything else is refused at upload/config time. */
export function assertRsa2048(key: KeyObject): void {
  if (key.type === 'secret') throw new InvalidKeyError('expected an RSA key, got a secret key');
  // 'rsa-pss' keys are excluded on purpose: they cannot make RSASSA-PKCS1-v1_5 signatures.
  if (key.asymmetricKeyType !== 'rsa') {
    throw new InvalidKeyError(`expected an RSA key, got ${key.asymmetricKeyType ?? 'an unknown key type'}`);
  }
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (bits !== 2048) throw new InvalidKeyError(`expected a 2048-bit RSA key, got ${bits ?? 'unknown'} bits`);
}

/** A fresh RSA-2048 pair in the documented formats: PKCS#8 PEM private, SPKI PEM public. */
export function generateRsaKeyPair(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicExponent: 0x10001,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

/** SPKI PEM of a public key, or of the public half of a private key. */
export function publicKeyPem(key: KeyObject): string {
  if (key.type === 'secret') throw new InvalidKeyError('a secret key has no public half');
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ type: 'spki', format: 'pem' }).toString();
}
