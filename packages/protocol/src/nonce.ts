// Request/response nonces (PROTOCOL §2, §3).
import { randomAlphanumeric, type RandomBytes } from './random-string.js';

/** What the server accepts in `Sparkpay-Nonce`; anything else is 40009. */
export const NONCE_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** A fresh nonce of `length` (default 32) characters from [A-Za-z0-9]. */
export function generateNonce(randomBytes?: RandomBytes, length = 32): string {
  if (!Number.isSafeInteger(length) || length < 1 || length > 64) {
    throw new RangeError(`nonce length must be 1..64, got ${length}`);
  }
  return randomAlphanumeric(length, randomBytes);
}
