// Platform private keys at rest: AES-256-GCM under the operator's master key, with the
// key's serial as associated data so a sealed key cannot be swapped onto another row.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { KeyVault } from '../../app/ports.js';

const VERSION = 'v1';

export class MasterKeyError extends Error {}

/**
 * Accepts 32 bytes as 64 hex characters or Base64. A weaker passphrase is refused rather
 * than stretched: the operator is expected to generate the key (`openssl rand -hex 32`).
 */
/** `source`: where the text came from, as the refusal names it. */
export function parseMasterKey(text: string, source = 'SPARKPAY_MASTER_KEY'): Buffer {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/]{43}=?$/.test(t)) {
    const b = Buffer.from(t, 'base64');
    if (b.length === 32) return b;
  }
  throw new MasterKeyError(`${source} must be 32 bytes as 64 hex characters or Base64 (e.g. \`openssl rand -hex 32\`)`);
}

export function createKeyVault(masterKey: Buffer): KeyVault {
  if (masterKey.length !== 32) throw new MasterKeyError('the master key must be 32 bytes');
  const key = Buffer.from(masterKey);
  return {
    seal(plaintext, context) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return `${VERSION}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
    },
    open(sealed, context) {
      const [version, data] = sealed.split(':');
      if (version !== VERSION || !data) throw new MasterKeyError('unknown sealed key format');
      const raw = Buffer.from(data, 'base64');
      const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(raw.subarray(12, 28));
      try {
        return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
      } catch {
        throw new MasterKeyError('a platform key could not be decrypted: wrong SPARKPAY_MASTER_KEY for this database?');
      }
    },
  };
}

/** A short, non-secret fingerprint so logs can tell which master key is in use. */
export function masterKeyFingerprint(masterKey: Buffer): string {
  return createHash('sha256').update(masterKey).digest('hex').slice(0, 12);
}

/** Development mode: read the master key file, creating it (mode 0600) on first use. */
export function loadOrCreateMasterKeyFile(path: string): Buffer {
  // A malformed file is named: SPARKPAY_MASTER_KEY, which the refusal named, is not set.
  if (existsSync(path)) return parseMasterKey(readFileSync(path, 'utf8'), `the master key file ${path}`);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  writeFileSync(path, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return key;
}
