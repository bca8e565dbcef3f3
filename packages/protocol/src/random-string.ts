// Uniform random strings over [A-Za-z0-9] for nonces and notification AES keys. The random source
// is injectable so callers (and tests) can make the output deterministic.
import { randomBytes as cryptoRandomBytes } from 'node:crypto';

export type RandomBytes = (n: number) => Uint8Array;

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
// 62 does not divide 256: bytes at or above 248 (= 4 × 62) are rejected so that every character
// is equally likely (a plain `byte % 62` would favour the first 8 characters).
const LIMIT = 256 - (256 % ALPHANUMERIC.length);
// A real source rejects a byte with probability 8/256; so many empty rounds mean a broken source,
// and failing beats looping forever.
const MAX_EMPTY_ROUNDS = 100;

export function randomAlphanumeric(length: number, randomBytes: RandomBytes = cryptoRandomBytes): string {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`invalid length ${length}`);
  let out = '';
  let emptyRounds = 0;
  while (out.length < length) {
    const before = out.length;
    // Ask for a little more than needed so one round usually suffices despite rejections.
    for (const byte of randomBytes(length - out.length + 8)) {
      if (byte < LIMIT) out += ALPHANUMERIC[byte % ALPHANUMERIC.length];
      if (out.length === length) break;
    }
    if (out.length === before && ++emptyRounds >= MAX_EMPTY_ROUNDS) {
      throw new Error('random source produced no usable bytes');
    }
  }
  return out;
}
