// Identifiers and secrets from the operating system's CSPRNG. Unbiased base-62 by rejection.
import { randomBytes, randomInt } from 'node:crypto';
import type { Ids } from '../../app/ports.js';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function randomAlnum(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < 248 && out.length < length) out += ALNUM[b % 62];
    }
  }
  return out;
}

function digits(n: number): string {
  let s = '';
  for (let i = 0; i < n; i += 1) s += String(randomInt(10));
  return s;
}

/** yyyyMMddHHmmss in UTC. */
export function compactUtc(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14);
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
