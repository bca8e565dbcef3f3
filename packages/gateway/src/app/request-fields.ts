// Small shared checks of the non-creation endpoints: required string fields and the
// merchant/AppID relation (40008 unknown merchant, then 40007 AppID of another merchant).
import type { AuthenticatedApp } from './authenticate.js';
import type { Store } from './ports.js';
import { fail, type Failure } from './result.js';

export function readStringFields<K extends string>(
  body: unknown,
  names: readonly K[],
): { ok: true; values: Record<K, string> } | Failure {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return fail(40009, 'the request body must be a JSON object');
  const obj = body as Record<string, unknown>;
  for (const name of names) {
    const v = obj[name];
    if (v === undefined || v === null || v === '') return fail(40003, `missing required parameter: ${name}`);
  }
  const values = {} as Record<K, string>;
  for (const name of names) {
    const v = obj[name];
    if (typeof v !== 'string') return fail(40009, `parameter ${name} must be a string`);
    if (v.length > 64) return fail(40009, `parameter ${name} is longer than 64 characters`);
    values[name] = v;
  }
  return { ok: true, values };
}

export async function checkMerchantAccess(store: Store, app: AuthenticatedApp, merchantNo: string): Promise<{ ok: true } | Failure> {
  if (merchantNo !== app.merchantNo) {
    // No merchant number holds U+0000 (nor could PostgreSQL look one up): unknown.
    if (merchantNo.includes('\0')) return fail(40008);
    const merchant = await store.merchants.get(merchantNo);
    return merchant ? fail(40007) : fail(40008);
  }
  return { ok: true };
}
