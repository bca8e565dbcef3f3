// The cashier's JSON API routes (PROTOCOL §15). Plain JSON, unsigned (the payer's browser and
// wallets read it); the `t` query parameter is the credential, never logged (the request log
// keeps the path only). Answers are never cached and send no referrer onwards. Each order has
// its own request budget (a page polls its status; nothing else needs more).
import type { FastifyReply, FastifyRequest } from 'fastify';
import { cashierNotFound, type CashierOrderView, type CashierRefusal } from '../../app/cashier.js';
import type { Clock } from '../../app/ports.js';
import { mediaTypeSent } from './media-type.js';
import { clientKey, tokenBucket, type RateLimiter } from './rate-limit.js';

export interface CashierApi {
  /** Whether the token opens the order (cheap, and as long for an unknown order as for a wrong token). */
  check(paymentOrderNo: string, token: unknown): Promise<boolean>;
  order(paymentOrderNo: string, token: unknown): Promise<{ ok: true; data: CashierOrderView } | CashierRefusal>;
  select(paymentOrderNo: string, token: unknown, body: unknown): Promise<{ ok: true; data: unknown } | CashierRefusal>;
}

type Refusal = CashierRefusal | { ok: false; reason: 'RATE_LIMITED' | 'TOO_LARGE' | 'INTERNAL'; message: string };
const STATUS: Record<Refusal['reason'], number> = { NOT_FOUND: 404, BAD_REQUEST: 400, NOT_SELECTABLE: 409, UNAVAILABLE: 503, RATE_LIMITED: 429, TOO_LARGE: 413, INTERNAL: 500 };
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The API's 404, the same for every order it does not open (also for a path no route takes). */
export const apiNotFound = (reply: FastifyReply) => answer(reply, cashierNotFound());

/** A request refused before any cashier route ran (a body over the limit, say), in the API's own shape. */
export const apiRefused = (reply: FastifyReply, status: 400 | 413 | 500, message: string) =>
  answer(reply, { ok: false, reason: status === 413 ? 'TOO_LARGE' : status === 400 ? 'BAD_REQUEST' : 'INTERNAL', message });

function answer(reply: FastifyReply, result: { ok: true; data: unknown } | Refusal) {
  reply.header('Cache-Control', 'no-store').header('Referrer-Policy', 'no-referrer').header('X-Content-Type-Options', 'nosniff');
  if (result.ok) return reply.code(200).send(result.data);
  return reply.code(STATUS[result.reason]).send({ error: result.reason, message: result.message });
}

const token = (req: FastifyRequest) => (req.query as Record<string, unknown>).t;
const orderNo = (req: FastifyRequest) => (req.params as { payment_order_no: string }).payment_order_no;

export interface CashierRoute {
  method: 'GET' | 'POST';
  url: string;
  handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
}

async function select(api: CashierApi, req: FastifyRequest, reply: FastifyReply) {
  let body: unknown = null;
  if (mediaTypeSent(req) === 'application/json' && Buffer.isBuffer(req.body)) {
    try {
      body = JSON.parse(UTF8.decode(req.body));
    } catch {
      body = null;
    }
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    // The token is still checked first: a wrong one is "not found", whatever the body.
    const known = await api.order(orderNo(req), token(req));
    if (!known.ok) return answer(reply, known);
    return answer(reply, { ok: false, reason: 'BAD_REQUEST', message: 'send a JSON object {"network", "currency"} with Content-Type application/json' });
  }
  return answer(reply, await api.select(orderNo(req), token(req), body));
}

/** Per order: a page polling every couple of seconds uses a fraction of this. */
export const CASHIER_RATE_PER_SECOND = 2;
export const CASHIER_BURST = 30;

/** Per client address, for requests whose token opens nothing (guessing, or a stale link). */
export const CASHIER_STRANGER_RATE_PER_SECOND = 5;
export const CASHIER_STRANGER_BURST = 20;

export interface CashierLimits {
  clock: Clock;
  /** Requests with a valid token, keyed by payment order number. */
  limiter?: RateLimiter;
  /** Requests with a wrong token or for an unknown order, keyed by client address. */
  strangers?: RateLimiter;
}

/** Wraps a handler of the cashier (page, form or JSON API) with its request budget; `refuse` answers a 429. */
export type CashierGuard = (handler: CashierRoute['handler'], refuse: (reply: FastifyReply) => unknown) => CashierRoute['handler'];

/**
 * The cashier's request budget. A valid token spends its order's budget (a page polling its
 * status uses a fraction of it); anything else spends the budget of the client's address, so
 * nobody who lacks the token can exhaust an order's budget and freeze its payer's page.
 */
export function cashierGuard(api: CashierApi, limits: CashierLimits): CashierGuard {
  const limiter = limits.limiter ?? tokenBucket(CASHIER_RATE_PER_SECOND, CASHIER_BURST);
  const strangers = limits.strangers ?? tokenBucket(CASHIER_STRANGER_RATE_PER_SECOND, CASHIER_STRANGER_BURST);
  return (handler, refuse) => async (req, reply) => {
    const no = orderNo(req);
    const now = limits.clock.nowMs();
    const allowed = (await api.check(no, token(req))) ? limiter.take(no, now) : strangers.take(clientKey(req.ip), now);
    if (!allowed) return refuse(reply.header('Retry-After', '1').code(429));
    return handler(req, reply);
  };
}

export function cashierRoutes(api: CashierApi, guard: CashierGuard): CashierRoute[] {
  const refuse = (reply: FastifyReply) => answer(reply, { ok: false, reason: 'RATE_LIMITED', message: 'too many requests for this order; retry in a second' });
  const limited = (handler: CashierRoute['handler']) => guard(handler, refuse);
  return [
    { method: 'GET', url: '/cashier/api/orders/:payment_order_no', handler: limited(async (req, reply) => answer(reply, await api.order(orderNo(req), token(req)))) },
    { method: 'POST', url: '/cashier/api/orders/:payment_order_no/select', handler: limited((req, reply) => select(api, req, reply)) },
  ];
}
