// The cashier page's routes (PROTOCOL §15): the page at cashier_url, the plain form that
// chooses an option without script, and the page's own assets. The token is checked by the
// same use case as the JSON API; a wrong one, like an unknown order, gets the one 404 page.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CashierApi, CashierGuard } from '../cashier-api.js';
import { mediaTypeSent } from '../media-type.js';
import { cashierAssets } from './assets.js';
import { pageUrl } from './html.js';
import { pickLanguage, translator } from './i18n.js';
import { qrSvg } from './qr.js';
import { renderNotFound, renderPage, renderTooMany, requestUri, showPayment } from './render.js';

/** Scripts and styles from this origin only; no inline code, no frames, forms post back here. */
export const CASHIER_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:", // data: only for the empty favicon (no request for /favicon.ico)
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

export interface PageRoute {
  method: 'GET' | 'POST';
  url: string;
  handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
}

const query = (req: FastifyRequest) => req.query as Record<string, unknown>;
const orderNo = (req: FastifyRequest) => (req.params as { payment_order_no: string }).payment_order_no;

/** The headers of every HTML page the gateway serves (the cashier's, the console's), with its policy. */
export function pageHeaders(reply: FastifyReply, csp: string): FastifyReply {
  return reply
    .header('Content-Type', 'text/html; charset=utf-8')
    .header('Content-Security-Policy', csp)
    .header('Referrer-Policy', 'no-referrer')
    .header('X-Content-Type-Options', 'nosniff')
    .header('X-Frame-Options', 'DENY')
    .header('Cache-Control', 'no-store');
}

const htmlHeaders = (reply: FastifyReply) => pageHeaders(reply, CASHIER_CSP);

/** The page's 404 (also for a path no route takes, e.g. an order number too long to be one). */
export const notFound = (reply: FastifyReply) => htmlHeaders(reply).code(404).send(renderNotFound(cashierAssets().style.path));

async function page(api: CashierApi, req: FastifyRequest, reply: FastifyReply) {
  const token = query(req).t;
  const result = await api.order(orderNo(req), token);
  if (!result.ok || typeof token !== 'string') return notFound(reply);
  const view = result.data;
  const lang = pickLanguage(query(req).lang, req.headers['accept-language']);
  const uri = showPayment(view) ? requestUri(view) : null;
  const qr = uri && view.selected ? await qrSvg(uri, translator(lang)('qr_label', { currency: view.selected.currency, network: view.selected.network_name })) : null;
  const assets = cashierAssets();
  const html = renderPage({ view, token, lang, qr, assets: { script: assets.script.path, style: assets.style.path }, selectFailed: query(req).e === '1' });
  return htmlHeaders(reply).code(200).send(html);
}

/** The no-script choice: a form post of option=<network>:<currency>, answered with a redirect to the page. */
async function selectForm(api: CashierApi, req: FastifyRequest, reply: FastifyReply) {
  const token = query(req).t;
  const form = mediaTypeSent(req) === 'application/x-www-form-urlencoded' && Buffer.isBuffer(req.body) ? new URLSearchParams(req.body.toString('latin1')) : new URLSearchParams();
  const [network, currency] = (form.get('option') ?? '').split(':');
  const result = await api.select(orderNo(req), token, { network, currency });
  if (!result.ok && result.reason === 'NOT_FOUND') return notFound(reply);
  if (typeof token !== 'string') return notFound(reply);
  const lang = pickLanguage(query(req).lang, req.headers['accept-language']);
  reply.header('Referrer-Policy', 'no-referrer').header('Cache-Control', 'no-store');
  return reply.redirect(pageUrl(orderNo(req), token, lang, result.ok ? '' : '&e=1'), 303);
}

async function asset(req: FastifyRequest, reply: FastifyReply) {
  const found = cashierAssets().byPath.get(req.url.split('?')[0] ?? '');
  if (!found) return reply.code(404).header('Content-Type', 'text/plain; charset=utf-8').send('not found');
  return reply
    .header('Content-Type', found.contentType)
    .header('Cache-Control', 'public, max-age=31536000, immutable')
    .header('X-Content-Type-Options', 'nosniff')
    .send(found.body);
}

export function cashierPageRoutes(api: CashierApi, guard: CashierGuard): PageRoute[] {
  // Read (and hashed) once at start, so a missing file fails the start, not a payer's request.
  cashierAssets();
  // The page and its form spend the same request budget as the JSON API.
  // A page in the payer's language that loads the order's page again by itself (after a refused
  // form post too: it goes back to the page, where the choice can be made again).
  const refuse = (reply: FastifyReply) => {
    const req = reply.request;
    const token = query(req).t;
    const lang = pickLanguage(query(req).lang, req.headers['accept-language']);
    const again = typeof token === 'string' ? pageUrl(orderNo(req), token, lang) : (req.url.split('?')[0] ?? '/');
    return htmlHeaders(reply).header('Retry-After', '3').send(renderTooMany(cashierAssets().style.path, lang, again));
  };
  return [
    { method: 'GET', url: '/cashier/:payment_order_no', handler: guard((req, reply) => page(api, req, reply), refuse) },
    { method: 'POST', url: '/cashier/:payment_order_no/select', handler: guard((req, reply) => selectForm(api, req, reply), refuse) },
    { method: 'GET', url: '/cashier/assets/:file', handler: asset },
  ];
}
