// The operator console's routes (PROTOCOL §3, §13, §16): sign-in with the console token, then
// the overview, one order with its notifications (and a resend button), the merchants with their
// applications and live platform keys. Pages only; no script. Every page but the sign-in needs a
// session; every form that changes something carries the session's anti-forgery value.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { MerchantEntry, OrderFilter, OrderPage, Overview } from '../../../app/operator-console.js';
import type { ResendOutcome } from '../../../app/notification-admin.js';
import type { Clock } from '../../../app/ports.js';
import type { PayStatus } from '../../../domain/lifecycle-types.js';
import { consoleStylesheet } from '../cashier-page/assets.js';
import { pageHeaders, type PageRoute } from '../cashier-page/routes.js';
import { mediaTypeSent } from '../media-type.js';
import { clientKey, tokenBucket } from '../rate-limit.js';
import { renderLogin, renderMerchants, renderMessage, renderOrder, renderOverview, type Frame } from './render.js';
import { ConsoleSessions, cookieValue, SESSION_COOKIE, SESSION_SECONDS } from './session.js';

export interface ConsoleApi {
  /** The sign-in token (console_token). */
  token: string;
  /** Send the session cookie only over HTTPS (the public URL is https). */
  secureCookie: boolean;
  overview(filter: OrderFilter): Promise<Overview>;
  order(paymentOrderNo: string): Promise<OrderPage | null>;
  /** The payment_order_no of the order the search box names (see consoleFind), or null: indexed reads, the search box only redirects. */
  find(typed: string, merchantNo: string | null): Promise<string | null>;
  merchants(after: string | null): Promise<{ merchants: MerchantEntry[]; nextAfter: string | null }>;
  resend(notifyId: string): Promise<ResendOutcome>;
}

/** Everything under /console is the console's; its own 404 for a path no route takes. */
export const CONSOLE_PREFIX = '/console';

/**
 * Longest identifier (order, merchant, notification) a console URL may carry: longer ones are no
 * identifier, nor is one with a NUL character (%00), which none holds and PostgreSQL cannot even
 * look up (its failure was a 500 page blaming the database).
 */
const MAX_ID = 64;
const PAY_STATUSES: readonly string[] = ['PENDING', 'PAYING', 'PAID', 'COMPLETED', 'CLOSED'];

/** No script at all; the stylesheet from this origin; forms post back here. */
export const CONSOLE_CSP = ["default-src 'none'", "style-src 'self'", "img-src 'self' data:", "form-action 'self'", "base-uri 'none'", "frame-ancestors 'none'"].join('; ');

const htmlHeaders = (reply: FastifyReply) => pageHeaders(reply, CONSOLE_CSP);

const text = (v: unknown, max = MAX_ID): string => (typeof v === 'string' && v.length <= max && !v.includes('\0') ? v.trim() : '');

export interface ConsolePages {
  routes: PageRoute[];
  notFound: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
  /** The answer to a console request that failed (the server's error handler): a page, not the API's JSON. */
  failed: (req: FastifyRequest, reply: FastifyReply, status: number, message: string) => Promise<unknown>;
}

export function consolePageRoutes(api: ConsoleApi, clock: Clock): ConsolePages {
  const sessions = new ConsoleSessions(api.token);
  // Sign-in attempts per client address: ten at once, then one every five seconds. The token is
  // long, guessing it is hopeless, but nobody gets to try at the server's full speed.
  const signIns = tokenBucket(0.2, 10);
  const style = consoleStylesheet();
  const nowSeconds = () => Math.floor(clock.nowMs() / 1000);
  const frame = (csrf?: string): Frame => ({ style: style.path, nowMs: clock.nowMs(), ...(csrf !== undefined ? { csrf } : {}) });
  /** The expiry of the session the request's cookie holds, or null. */
  const sessionOf = (req: FastifyRequest) => sessions.verify(cookieValue(req.headers.cookie, SESSION_COOKIE), nowSeconds());
  /** The page frame of a session (its forms' anti-forgery value), or of none. */
  const frameOf = (expires: number | null) => frame(expires === null ? undefined : sessions.csrf(expires));
  const cookie = (value: string, maxAge: number) =>
    `${SESSION_COOKIE}=${value}; Path=${CONSOLE_PREFIX}; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${api.secureCookie ? '; Secure' : ''}`;

  /** The session's expiry, or null having answered: a page sends the browser to sign in, a form is refused. */
  const session = async (req: FastifyRequest, reply: FastifyReply, form: URLSearchParams | null): Promise<number | null> => {
    const expires = sessionOf(req);
    if (expires === null) {
      if (form === null) await reply.header('Cache-Control', 'no-store').redirect(`${CONSOLE_PREFIX}/login`, 303);
      else await htmlHeaders(reply).code(401).send(renderLogin(frame(), 'Your session ended: sign in again, then repeat what you did.'));
      return null;
    }
    if (form !== null && !sessions.csrfMatches(form.get('csrf'), expires)) {
      await htmlHeaders(reply).code(403).send(renderMessage(frameOf(expires), 'Refused', 'This form did not come from a console page of this session. Nothing was changed.'));
      return null;
    }
    return expires;
  };

  /** A posted form (application/x-www-form-urlencoded), or null for another body. */
  const formOf = (req: FastifyRequest): URLSearchParams | null =>
    mediaTypeSent(req) === 'application/x-www-form-urlencoded' && Buffer.isBuffer(req.body) ? new URLSearchParams(req.body.toString('utf8')) : null;

  const badForm = (reply: FastifyReply) => htmlHeaders(reply).code(400).send(renderMessage(frame(), 'Bad request', 'The console takes forms sent as application/x-www-form-urlencoded.'));

  const notFound = async (req: FastifyRequest, reply: FastifyReply) =>
    htmlHeaders(reply).code(404).send(renderMessage(frameOf(sessionOf(req)), 'Not found', 'There is no such console page.'));

  const failed = async (req: FastifyRequest, reply: FastifyReply, status: number, message: string) => {
    // Most often the database out of reach: the operator is told that much, the detail is in the log.
    const text =
      status >= 500
        ? `The console could not answer: the gateway's database may be out of reach (GET /healthz says whether it answers). The log has the detail under request id ${req.id}.`
        : `The console could not take this request: ${message}.`;
    return htmlHeaders(reply).code(status).send(renderMessage(frameOf(sessionOf(req)), status >= 500 ? 'Something went wrong' : 'Bad request', text));
  };

  const overview = async (req: FastifyRequest, reply: FastifyReply) => {
    const expires = await session(req, reply, null);
    if (expires === null) return reply;
    const q = req.query as Record<string, unknown>;
    const merchantNo = text(q.merchant);
    const status = PAY_STATUSES.includes(text(q.status)) ? text(q.status) : '';
    const before = text(q.before);
    const filter: OrderFilter = { ...(merchantNo ? { merchantNo } : {}), ...(status ? { status: status as PayStatus } : {}), ...(before ? { before } : {}) };
    const found = await api.overview(filter);
    const missing = typeof q.missing === 'string' ? text(q.missing) : null;
    return htmlHeaders(reply).code(200).send(renderOverview(frameOf(expires), found, { merchantNo, status, missing }));
  };

  const routes: PageRoute[] = [
    {
      method: 'GET',
      url: `${CONSOLE_PREFIX}/login`,
      handler: async (req, reply) => {
        if (sessionOf(req) !== null) return reply.redirect(CONSOLE_PREFIX, 303);
        return htmlHeaders(reply).code(200).send(renderLogin(frame(), null));
      },
    },
    {
      method: 'POST',
      url: `${CONSOLE_PREFIX}/login`,
      handler: async (req, reply) => {
        if (!signIns.take(clientKey(req.ip), clock.nowMs())) {
          return htmlHeaders(reply).code(429).header('Retry-After', '10').send(renderLogin(frame(), 'Too many sign-in attempts from this address: wait a little, then try again.'));
        }
        const form = formOf(req);
        if (form === null) return badForm(reply);
        // Whitespace around it is not the token's (it has none): a script's copy of the token file ends with a line break.
        if (!sessions.tokenMatches((form.get('token') ?? '').trim())) {
          req.log.warn({ client: req.ip }, 'console sign-in refused: not the console token');
          return htmlHeaders(reply).code(401).send(renderLogin(frame(), 'That is not the console token.'));
        }
        req.log.info({ client: req.ip }, 'console sign-in');
        return reply.header('Set-Cookie', cookie(sessions.issue(nowSeconds()), SESSION_SECONDS)).header('Cache-Control', 'no-store').redirect(CONSOLE_PREFIX, 303);
      },
    },
    {
      method: 'POST',
      url: `${CONSOLE_PREFIX}/logout`,
      handler: async (req, reply) => {
        const form = formOf(req);
        if (form === null) return badForm(reply);
        if ((await session(req, reply, form)) === null) return reply;
        return reply.header('Set-Cookie', cookie('', 0)).redirect(`${CONSOLE_PREFIX}/login`, 303);
      },
    },
    { method: 'GET', url: CONSOLE_PREFIX, handler: overview },
    // Typed with a trailing slash, or sent so by a proxy whose location is "/console/" (nginx
    // redirects "/console" there): the same page, not a redirect back, which would loop.
    { method: 'GET', url: `${CONSOLE_PREFIX}/`, handler: overview },
    {
      method: 'GET',
      url: `${CONSOLE_PREFIX}/find`,
      handler: async (req, reply) => {
        if ((await session(req, reply, null)) === null) return reply;
        const query = req.query as Record<string, unknown>;
        const q = text(query.q);
        // The merchant the overview is filtered by: its request numbers are searched too.
        const merchantNo = text(query.merchant);
        const found = q ? await api.find(q, merchantNo || null) : null;
        if (found !== null) return reply.redirect(`${CONSOLE_PREFIX}/orders/${encodeURIComponent(found)}`, 303);
        const back = new URLSearchParams(merchantNo ? { merchant: merchantNo, missing: q } : { missing: q });
        return reply.redirect(`${CONSOLE_PREFIX}?${back.toString()}`, 303);
      },
    },
    {
      method: 'GET',
      url: `${CONSOLE_PREFIX}/orders/:payment_order_no`,
      handler: async (req, reply) => {
        const expires = await session(req, reply, null);
        if (expires === null) return reply;
        const no = text((req.params as { payment_order_no: string }).payment_order_no);
        const found = no ? await api.order(no) : null;
        if (!found) return htmlHeaders(reply).code(404).send(renderMessage(frameOf(expires), 'Not found', `There is no order ${no || '(none given)'}.`));
        // Said only of one of this order's notifications: the query is anyone's to write, and a
        // link must not have the page claim that something was done.
        const resent = text((req.query as Record<string, unknown>).resent);
        const known = found.notifications.some((h) => h.notification.notifyId === resent);
        return htmlHeaders(reply).code(200).send(renderOrder(frameOf(expires), found, known ? resent : null));
      },
    },
    {
      method: 'POST',
      url: `${CONSOLE_PREFIX}/notifications/:notify_id/resend`,
      handler: async (req, reply) => {
        const form = formOf(req);
        if (form === null) return badForm(reply);
        const expires = await session(req, reply, form);
        if (expires === null) return reply;
        const notifyId = text((req.params as { notify_id: string }).notify_id);
        const r = notifyId ? await api.resend(notifyId) : null;
        if (!r || !r.ok) return htmlHeaders(reply).code(404).send(renderMessage(frameOf(expires), 'Not found', `There is no notification ${notifyId || '(none given)'}.`));
        req.log.info({ notify_id: notifyId, payment_order_no: r.notification.paymentOrderNo }, 'notification resent from the console');
        return reply.redirect(`${CONSOLE_PREFIX}/orders/${encodeURIComponent(r.notification.paymentOrderNo)}?resent=${encodeURIComponent(notifyId)}`, 303);
      },
    },
    {
      method: 'GET',
      url: `${CONSOLE_PREFIX}/merchants`,
      handler: async (req, reply) => {
        const expires = await session(req, reply, null);
        if (expires === null) return reply;
        const after = text((req.query as Record<string, unknown>).after);
        const { merchants, nextAfter } = await api.merchants(after || null);
        return htmlHeaders(reply).code(200).send(renderMerchants(frameOf(expires), merchants, nextAfter));
      },
    },
    {
      method: 'GET',
      url: style.path,
      handler: async (_req, reply) =>
        reply.header('Content-Type', style.contentType).header('Cache-Control', 'public, max-age=31536000, immutable').header('X-Content-Type-Options', 'nosniff').send(style.body),
    },
  ];
  return { routes, notFound, failed };
}
