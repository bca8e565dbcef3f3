// Every response under /v4/ is the documented envelope, signed with the platform key of the
// calling application (§3) so merchants can verify it before trusting it.
import type { FastifyReply } from 'fastify';
import { errorDef, signMessage } from '@sparkpay/protocol';
import type { PlatformKeys } from '../../app/platform-keys.js';
import type { Clock, Ids } from '../../app/ports.js';
import { nowSeconds } from '../../app/ports.js';

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
): Promise<FastifyReply> {
  const body = JSON.stringify(envelope);
  const timestamp = String(nowSeconds(signer.clock));
  const nonce = signer.ids.nonce();
  const key = await signer.platformKeys.signingKeyFor(appId);
  return reply
    .code(httpStatus)
    .header('content-type', 'application/json; charset=utf-8')
    // An answer carries the order's cashier link (its token) and the merchant's data: no cache keeps it.
    .header('cache-control', 'no-store')
    .header('Sparkpay-Timestamp', timestamp)
    .header('Sparkpay-Nonce', nonce)
    .header('Sparkpay-Signature', signMessage(key.privateKey, timestamp, nonce, body))
    .header('Sparkpay-Serial', key.serial)
    .send(body);
}

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
