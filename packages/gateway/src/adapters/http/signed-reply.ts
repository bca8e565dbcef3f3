// Every response under /v4/ is the documented envelope, signed with the platform key of the
// calling application (§3) so merchants can verify it before trusting it.
import type { KeyObject } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import { errorDef, signMessage } from '@sparkpay/protocol';
import type { PlatformKeys } from '../../app/platform-keys.js';
import type { Clock, Ids } from '../../app/ports.js';
import { nowSeconds } from '../../app/ports.js';
import { evictingOldest } from './rate-limit.js';

export interface Signer {
  platformKeys: PlatformKeys;
  clock: Clock;
  ids: Ids;
}

export async function sendSigned(
  signer: Signer,
  reply: FastifyReply,
  appId: string | null,
  httpStatus: number,
  envelope: { code: number; message: string; data?: unknown },
  sign: (key: { privateKey: KeyObject; serial: string }, body: string) => [string, string][] = (key, body) => signatureHeaders(signer, key, body),
): Promise<FastifyReply> {
  const body = JSON.stringify(envelope);
  const key = await signer.platformKeys.signingKeyFor(appId);
  reply
    .code(httpStatus)
    .header('content-type', 'application/json; charset=utf-8')
    // An answer carries the order's cashier link (its token) and the merchant's data: no cache keeps it.
    .header('cache-control', 'no-store');
  for (const [name, value] of sign(key, body)) reply.header(name, value);
  return reply.send(body);
}

/** The §3 signature headers of an answer `body` signed with `key`: a fresh timestamp and nonce. */
export function signatureHeaders(signer: Pick<Signer, 'clock' | 'ids'>, key: { privateKey: KeyObject; serial: string }, body: string): [string, string][] {
  const timestamp = String(nowSeconds(signer.clock));
  const nonce = signer.ids.nonce();
  return [
    ['Sparkpay-Timestamp', timestamp],
    ['Sparkpay-Nonce', nonce],
    ['Sparkpay-Signature', signMessage(key.privateKey, timestamp, nonce, body)],
    ['Sparkpay-Serial', key.serial],
  ];
}

/**
 * Signature headers for a few fixed answers, made at most once a second per key and answer:
 * copies sent within that second share their timestamp and nonce. Only for the answer to a client
 * that has used up its budget of refusals (server.ts), whose refusals would otherwise cost an
 * RSA signature each (a flood of unauthenticated requests would keep a core signing).
 */
export interface ReusedSignatures {
  headers(key: { privateKey: KeyObject; serial: string }, body: string): [string, string][];
}

export function reusedSignatures(signer: Pick<Signer, 'clock' | 'ids'>, capacity = REUSED_SIGNATURES): ReusedSignatures {
  const made = new Map<string, { second: number; headers: [string, string][] }>();
  const evictOldest = evictingOldest(made);
  return {
    headers(key, body) {
      const second = nowSeconds(signer.clock);
      const id = `${key.serial}\n${body}`;
      const hit = made.get(id);
      // Most recently used last: the first entry is the one to evict.
      made.delete(id);
      if (hit && hit.second === second) {
        made.set(id, hit);
        return hit.headers;
      }
      // A few fixed bodies per key, one key per application named (AppIDs are no secret: a flood
      // may name every one it knows). The least recently used goes: never all, which a flood
      // naming more keys than fit would turn into a signature per answer again.
      if (made.size >= capacity) evictOldest();
      const headers = signatureHeaders(signer, key, body);
      made.set(id, { second, headers });
      return headers;
    },
  };
}

/** Signature header sets reusedSignatures keeps: a few per live platform key of a large deployment (about 1 KB each). */
export const REUSED_SIGNATURES = 20_000;

export function sendError(
  signer: Signer,
  reply: FastifyReply,
  appId: string | null,
  code: number,
  message?: string,
  httpStatus?: number,
): Promise<FastifyReply> {
  const def = errorDef(code);
  return sendSigned(signer, reply, appId, httpStatus ?? def.httpStatus, { code, message: message ?? def.message });
}
