// Key options are parsed once, in the constructor, so a wrong key fails at start-up rather than
// on the first payment. Strings go through the protocol's parsers (PEM with or without header
// lines, or the bare Base64 body, as the docs allow); KeyObjects are checked for type only.
import { KeyObject } from 'node:crypto';
import { parsePrivateKey, parsePublicKey } from '@sparkpay/protocol';
import { SparkPayConfigError } from './errors.js';

/** A key as PEM (headers optional) / bare Base64, or an already-parsed `KeyObject`. */
export type KeyInput = string | KeyObject;

/** One platform public key, or several by serial (`Sparkpay-Serial`) during a key rotation. */
export type PlatformPublicKeyInput = KeyInput | Readonly<Record<string, KeyInput>>;

/** How response keys are chosen: a single key ignores the serial; a map requires a known one. */
export type PlatformKeys =
  | { kind: 'single'; key: KeyObject }
  | { kind: 'by-serial'; keys: ReadonlyMap<string, KeyObject> };

function requireRsa(key: KeyObject, type: 'public' | 'private', what: string): KeyObject {
  if (key.type !== type || key.asymmetricKeyType !== 'rsa') {
    const actual = key.type === 'secret' ? 'a secret key' : `an ${key.asymmetricKeyType ?? 'unknown'} ${key.type} key`;
    throw new SparkPayConfigError(`${what} must be an RSA ${type} key, got ${actual}`);
  }
  return key;
}

function parse(input: unknown, type: 'public' | 'private', what: string): KeyObject {
  if (input instanceof KeyObject) return requireRsa(input, type, what);
  if (typeof input !== 'string' || input.trim() === '') {
    throw new SparkPayConfigError(`${what} must be a PEM/Base64 string or a KeyObject`);
  }
  let key: KeyObject;
  try {
    key = type === 'public' ? parsePublicKey(input) : parsePrivateKey(input);
  } catch (cause) {
    const detail = cause instanceof Error ? `: ${cause.message}` : '';
    throw new SparkPayConfigError(`${what} could not be parsed${detail}`, { cause });
  }
  return requireRsa(key, type, what);
}

export function resolveMerchantPrivateKey(input: unknown): KeyObject {
  return parse(input, 'private', 'merchantPrivateKey');
}

export function resolvePlatformKeys(input: unknown): PlatformKeys {
  if (typeof input === 'string' || input instanceof KeyObject) {
    return { kind: 'single', key: parse(input, 'public', 'platformPublicKey') };
  }
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new SparkPayConfigError('platformPublicKey must be a key or a { [serial]: key } map');
  }
  const keys = new Map<string, KeyObject>();
  for (const [serial, value] of Object.entries(input)) {
    keys.set(serial, parse(value, 'public', `platformPublicKey["${serial}"]`));
  }
  if (keys.size === 0) throw new SparkPayConfigError('platformPublicKey map is empty');
  return { kind: 'by-serial', keys };
}

/** The key that must have signed a response carrying `serial`, or null when none applies. */
export function platformKeyFor(keys: PlatformKeys, serial: string | undefined): KeyObject | null {
  if (keys.kind === 'single') return keys.key;
  if (serial === undefined) return null;
  return keys.keys.get(serial) ?? null;
}
