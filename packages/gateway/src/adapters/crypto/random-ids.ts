// Identifiers and secrets from the operating system's CSPRNG. Unbiased base-62 by rejection.
import { randomBytes, randomFillSync, randomInt } from 'node:crypto';
import type { Ids } from '../../app/ports.js';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * CSPRNG bytes drawn a few kilobytes at a time (as node:crypto's randomInt does): every request
 * takes fresh random strings (a response nonce, a cashier token), and one call into the CSPRNG
 * per string cost more than the rest of making it. Each byte is used once.
 */
const pool = Buffer.alloc(4096);
let taken = pool.length;

function randomByte(): number {
  if (taken === pool.length) {
    randomFillSync(pool);
    taken = 0;
  }
  return pool[taken++]!;
}

export function randomAlnum(length: number): string {
  let out = '';
  while (out.length < length) {
    const b = randomByte();
    // 248 = 4 * 62: the bytes above it are dropped, so every character is equally likely.
    if (b < 248) out += ALNUM[b % 62];
  }
  return out;
}

function digits(n: number): string {
  let s = '';
  for (let i = 0; i < n; i += 1) s += String(randomInt(10));
  return s;
}

let lastSecond = NaN;
let lastCompact = '';

/** yyyyMMddHHmmss in UTC (the last second's kept: orders come many a second). */
export function compactUtc(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== lastSecond) {
    lastCompact = new Date(second * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14);
    lastSecond = second;
  }
  return lastCompact;
}

export const randomIds: Ids = {
  paymentOrderNo: (nowMs) => `P${compactUtc(nowMs)}${digits(10)}`,
  merchantNo: () => `M${digits(12)}`,
  appId: () => `${digits(18)}`,
  keySerial: () => randomBytes(10).toString('hex').toUpperCase(),
  cashierToken: () => randomAlnum(32),
  notifyId: () => `N${randomBytes(12).toString('hex')}`,
  nonce: () => randomAlnum(32),
};
