// The HTTP edge: raw bodies (signatures are over the exact bytes), authentication, the
// rate limit, the v4 routes and the health check. Client mistakes always get a documented
// code; anything unexpected is 50000 with the detail only in the log, under the request id.
import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { MAX_APP_ID_LENGTH, type AuthenticatedApp, type Authenticator } from '../../app/authenticate.js';
import { replayFailure, type NonceGuard } from '../../app/nonce-guard.js';
import type { Edition } from '../../app/records.js';
import type { Result } from '../../app/result.js';
import type { MetricsPage } from '../metrics/prometheus.js';
import { apiNotFound, apiRefused, cashierGuard, cashierRoutes, type CashierApi } from './cashier-api.js';
import { cashierPageRoutes, notFound as pageNotFound } from './cashier-page/routes.js';
import { CONSOLE_PREFIX, consolePageRoutes, type ConsoleApi } from './console/routes.js';
import { keepContentTypeSent, mediaTypeSent } from './media-type.js';
import { clientKey, type RateLimiter } from './rate-limit.js';
import { reusedSignatures, sendError, sendSigned, signatureHeaders, type ReusedSignatures, type Signer } from './signed-reply.js';

export const MAX_BODY_BYTES = 64 * 1024;

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Deepest JSON nesting a body may have. The v4 bodies need 4 levels; unknown fields are
 * ignored but still walked by recursive code (the idempotency hash's canonical JSON), which a
 * 64 KiB body of `[[[[…` would otherwise drive into a stack overflow and a 50000.
 */
const MAX_JSON_DEPTH = 64;

export interface OrderApi {
  /** Settles the nonce guard itself, inside the order's transaction on success. */
  createOrder(app: AuthenticatedApp, edition: Edition, body: unknown, nonce: NonceGuard): Promise<Result<{ data: unknown }>>;
  queryOrder(app: AuthenticatedApp, edition: Edition, merchantNo: string, requestNo: string): Promise<Result<{ data: unknown }>>;
  closeOrder(app: AuthenticatedApp, body: unknown): Promise<Result<{ data: unknown }>>;
}

export interface HttpDeps extends Signer {
  logger: Logger;
  authenticator: Authenticator;
  rateLimiter: RateLimiter | null;
  /**
   * Budget of refusals, per client address, for /v4/ requests that did not authenticate (an
   * unknown AppID, a bad signature, a malformed request…): each is signed (§3), an RSA signature
   * the client did nothing to earn. Over it the answer is TOO_MANY_REFUSALS, its signature made
   * once a second. null: no budget.
   */
  refusalLimiter: RateLimiter | null;
  api: OrderApi;
  /** The cashier's JSON API (§15); absent: not served. */
  cashier?: CashierApi;
  /** The operator console under /console (§16); absent: not served. */
  console?: ConsoleApi;
  /** GET /metrics (Prometheus); absent: not served. */
  metrics?: MetricsPage;
  /** When set, GET /metrics answers only requests carrying `Authorization: Bearer <token>`. */
  metricsToken?: string | null;
  /** Reverse proxies (addresses, CIDR ranges) whose X-Forwarded-For names the client (the cashier's per-client budget, the logs). */
  trustProxy?: readonly string[];
  isReady(): boolean;
  /** Whether the gateway is shutting down (GET /healthz says so, rather than "starting"). */
  isStopping?(): boolean;
  /** Whether the database answers now (GET /healthz); absent: not asked. */
  databaseAnswers?(): Promise<boolean>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The AppID whose platform key signs the answer, once the application is known. */
    signAs: string | null;
    app: AuthenticatedApp | null;
    errorCode: number;
  }
}

type Handler = (req: FastifyRequest, app: AuthenticatedApp, nonce: NonceGuard) => Promise<Result<{ data: unknown }>>;

interface RouteOptions {
  /** The handler settles the nonce guard itself (in its own transaction); else it is settled first. */
  settlesNonce?: boolean;
}

/**
 * A request Node's parser refuses (headers too large, not HTTP) never reaches a route. When the
 * bytes it refused show a request line under /v4/ (the usual case: a whole request in one packet),
 * it is answered as any /v4/ refusal is, 40009 in the envelope signed with the default platform
 * key (§3: every answer under /v4/ is signed); elsewhere, or when its path cannot be seen, unsigned
 * as outside /v4/ (no key is spent on anyone's garbage). The connection is closed, saying so.
 */
function answerClientError(deps: HttpDeps, reused: ReusedSignatures, err: Error & { code?: string; rawPacket?: unknown }, socket: Duplex & { remoteAddress?: string }): void {
  if (socket.destroyed) return;
  // The peer went away (or timed out): nobody to answer.
  if (err.code === 'ECONNRESET' || err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    socket.destroy();
    return;
  }
  const [status, text] = err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large'] : [400, 'Bad Request'];
  const body = JSON.stringify({ code: 40009, message: status === 431 ? 'request headers too large' : 'malformed HTTP request' });
  const head = [`HTTP/1.1 ${status} ${text}`, 'Connection: close', 'Content-Type: application/json; charset=utf-8', 'Cache-Control: no-store', `Content-Length: ${Buffer.byteLength(body)}`, `Sparkpay-Request-Id: ${randomUUID()}`];
  const send = (signed: string[]) => {
    if (!socket.destroyed) socket.end(`${[...head, ...signed].join('\r\n')}\r\n\r\n${body}`);
  };
  const raw = Buffer.isBuffer(err.rawPacket) ? err.rawPacket.toString('latin1', 0, 4096) : '';
  const requestLine = /^[A-Z]{3,10} (\S+) HTTP\/1\.[01]\r?\n/.exec(raw);
  if (!requestLine || !originForm(requestLine[1]!).startsWith('/v4/')) return send([]);
  // The key is cached; a lookup that does not come within a second (a database that hangs) does
  // not hold the answer: it goes unsigned then.
  let timer: NodeJS.Timeout | undefined;
  const unsigned = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), CLIENT_ERROR_SIGN_WAIT_MS);
    timer.unref();
  });
  // Over the client's budget of refusals, the answer's signature is shared with its copies of the same second.
  const overBudget = deps.refusalLimiter !== null && !deps.refusalLimiter.take(clientKey(socket.remoteAddress ?? ''), deps.clock.nowMs());
  Promise.race([deps.platformKeys.signingKeyFor(null), unsigned])
    .then(
      (key) => {
        send(key ? (overBudget ? reused.headers(key, body) : signatureHeaders(deps, key, body)).map(([name, value]) => `${name}: ${value}`) : []);
      },
      () => send([]),
    )
    .finally(() => clearTimeout(timer));
}

/** How long the answer to a request Node's parser refused waits for the default key before going unsigned. */
const CLIENT_ERROR_SIGN_WAIT_MS = 1_000;

/**
 * How long a client may take to send a whole request, headers and body. Fastify's default is
 * none (it replaces Node's 300 s with 0): a body that never finishes held its connection, and
 * 2,000 of them the process's file descriptors, for ever (found by review). The longest request
 * the API takes is 64 KiB.
 */
export const REQUEST_TIMEOUT_MS = 30_000;

/** The answer to an unauthenticated /v4/ request over its client's budget of refusals (HttpDeps.refusalLimiter). */
export const TOO_MANY_REFUSALS = {
  code: 40011,
  message: 'Too many refused requests from this address; the earlier answers said why (AppID, signature, timestamp, parameters): fix that and slow down',
};

export function buildServer(deps: HttpDeps) {
  const reused = reusedSignatures(deps);
  const server = Fastify({
    requestTimeout: REQUEST_TIMEOUT_MS,
    // Node's check of the request and header times runs every second (30 s by default, which
    // doubles the time a connection that never finishes its request is held). Node applies the
    // request time only when the headers' (60 s by default) is not longer.
    // A HTTP/1.1 request without Host is refused below, as any malformed request is (Node's own
    // refusal was an empty 400: unsigned under /v4/, without a request id).
    http: { headersTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: 1_000, requireHostHeader: false },
    loggerInstance: deps.logger,
    // One line per request is logged by the onResponse hook below, without headers.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: MAX_BODY_BYTES,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    // A request that arrives while the server closes (the next one on a connection whose request
    // was in flight when the close began) is served as usual, the connection closed after it:
    // Fastify's own 503 for it was unsigned, which a merchant's SDK takes for a forgery.
    return503OnClosing: false,
    // Behind the operator's TLS proxy every request comes from the proxy: only a proxy named here
    // is believed about the client's address.
    trustProxy: deps.trustProxy && deps.trustProxy.length > 0 ? deps.trustProxy.join(',') : false,
    // An absolute-form request target (`POST http://host/v4/pay/cashier`, which RFC 9112 §3.2.2
    // says a server must accept) is routed by its path, but every check of the path below read
    // `req.url` as sent: under /v4/ a refusal went out unsigned, as outside /v4/. Origin form here.
    rewriteUrl: (req) => originForm(req.url ?? '/'),
    // Fastify answers a malformed path (e.g. a broken %-escape) with its own unsigned JSON;
    // under /v4/ every answer must be the signed envelope (§3), so it goes through `fail` too.
    frameworkErrors: (err, req, reply) => void malformedRequest(err, req as FastifyRequest, reply as FastifyReply),
    // A request Node's parser refuses (headers too large, not HTTP): answered and the connection
    // closed, saying so, so that a keep-alive client does not send its next request into it.
    clientErrorHandler: (err, socket) => answerClientError(deps, reused, err, socket),
  });
  server.decorateRequest('signAs', null);
  server.decorateRequest('app', null);
  server.decorateRequest('errorCode', 0);

  server.decorateRequest('contentTypeSent', undefined);
  server.addHook('onRequest', keepContentTypeSent);
  server.removeAllContentTypeParsers();
  server.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_BODY_BYTES }, (_req, body, done) => done(null, body));

  server.addHook('onRequest', async (req, reply) => {
    reply.header('Sparkpay-Request-Id', req.id);
  });
  server.addHook('onResponse', async (req, reply) => {
    // Path only: query strings may carry cashier tokens. No headers, bodies or signatures.
    req.log.info(
      {
        method: req.method,
        path: req.url.split('?')[0],
        status: reply.statusCode,
        code: req.errorCode || undefined,
        app_id: req.app?.appId,
        ms: Math.round(reply.elapsedTime * 10) / 10,
      },
      'request',
    );
  });

  const signerOrDefault = async (req: FastifyRequest): Promise<string | null> => {
    try {
      return await deps.authenticator.signerFor(header(req, 'sparkpay-app-id'));
    } catch (err) {
      // The lookup failing must not turn a client mistake into a 500: the default key signs.
      req.log.warn({ err }, 'could not look up the application to sign a refusal');
      return null;
    }
  };

  const fail = async (req: FastifyRequest, reply: FastifyReply, code: number, message?: string, status?: number) => {
    // A refusal of a request that did not authenticate costs a signature; 50000 is our fault, not the client's.
    // A replay (40000 once authenticated) is someone's old request sent again: refused at the cost of
    // the sender's address, as an unauthenticated one, not of the application's rate.
    if ((req.app === null || code === 40000) && code !== 50000 && deps.refusalLimiter && !deps.refusalLimiter.take(clientKey(req.ip), deps.clock.nowMs())) {
      req.errorCode = 40011;
      return sendSigned(deps, reply.header('retry-after', '1'), req.signAs, 429, TOO_MANY_REFUSALS, (key, body) => reused.headers(key, body));
    }
    req.errorCode = code;
    return sendError(deps, reply, req.signAs, code, message, status);
  };

  // RFC 9112 §3.2: a HTTP/1.1 request without Host is answered 400, and the connection closed.
  server.addHook('onRequest', async (req, reply) => {
    if (req.raw.httpVersion !== '1.1' || req.headers.host !== undefined) return;
    const message = 'a HTTP/1.1 request must carry a Host header';
    reply.header('connection', 'close');
    if (req.url.startsWith('/v4/')) {
      req.signAs = await signerOrDefault(req);
      return fail(req, reply, 40009, message, 400);
    }
    if (deps.cashier && req.url.startsWith('/cashier/api/')) return apiRefused(reply, 400, message);
    return reply.code(400).send({ code: 400, message });
  });

  /**
   * Outside /v4/, a path no route takes or cannot even be parsed (a broken %-escape, an order
   * number longer than any): under the cashier it is an order that is not there, answered as
   * the cashier answers one (the same JSON, or the page's 404); elsewhere plain JSON.
   */
  const consolePages = deps.console ? consolePageRoutes(deps.console, deps.clock) : null;
  const notServed = (req: FastifyRequest, reply: FastifyReply, status: 400 | 404) => {
    const path = req.url.split('?')[0] ?? '';
    if (consolePages && isConsolePath(path)) return consolePages.notFound(req, reply);
    if (deps.cashier && path.startsWith('/cashier/api/')) return apiNotFound(reply);
    if (deps.cashier && path.startsWith('/cashier/') && !path.startsWith('/cashier/assets/')) return pageNotFound(reply);
    return reply.code(status).send(status === 404 ? { code: 404, message: 'not found' } : { code: 400, message: 'bad request' });
  };

  // Hooks do not run for these, so the request id header is set here.
  const malformedRequest = async (err: Error, req: FastifyRequest, reply: FastifyReply) => {
    reply.header('Sparkpay-Request-Id', req.id);
    if (!req.url.startsWith('/v4/')) return notServed(req, reply, 400);
    req.signAs = await signerOrDefault(req);
    return fail(req, reply, 40009, `malformed request: ${truncated(err.message, 200)}`, 400);
  };

  server.setErrorHandler(async (err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const status = err.statusCode ?? 500;
    // Outside /v4/ nothing is signed (no platform key spent on anyone's malformed request), and
    // the cashier answers in its own shape.
    if (!req.url.startsWith('/v4/')) {
      reply.header('Sparkpay-Request-Id', req.id);
      if (status >= 500) req.log.error({ err }, 'unexpected error');
      const tooLarge = status === 413 || err.code === 'FST_ERR_CTP_BODY_TOO_LARGE';
      const message = tooLarge ? `request body exceeds ${MAX_BODY_BYTES} bytes` : status < 500 ? `malformed request: ${truncated(err.message, 200)}` : 'internal error';
      const code = tooLarge ? 413 : status < 500 ? 400 : 500;
      if (deps.cashier && req.url.startsWith('/cashier/api/')) return apiRefused(reply, code, message);
      if (consolePages && isConsolePath(req.url)) return consolePages.failed(req, reply, code, message);
      return reply.code(code).header('X-Content-Type-Options', 'nosniff').send({ code, message });
    }
    // Refused before the route ran (e.g. by the body limit): sign as the named application if
    // it is one, as every other refusal to a known AppID is (§3).
    if (status < 500 && req.signAs === null) req.signAs = await signerOrDefault(req);
    if (status === 413 || err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return fail(req, reply, 40009, `request body exceeds ${MAX_BODY_BYTES} bytes`, 413);
    }
    if (status >= 400 && status < 500) return fail(req, reply, 40009, `malformed request: ${err.message}`, 400);
    req.log.error({ err }, 'unexpected error');
    // Failed before the application was known (the database out of reach, say): signed as the
    // AppID named, with the key this process last signed with for it (PlatformKeys), so the
    // merchant's SDK reads the 50000 instead of taking the answer for a forgery.
    if (req.signAs === null) {
      const named = header(req, 'sparkpay-app-id')?.trim();
      req.signAs = named && named.length <= MAX_APP_ID_LENGTH ? named : null;
    }
    return fail(req, reply, 50000, 'Internal system error; retry with the same parameters', 500);
  });

  server.setNotFoundHandler(async (req, reply) => {
    if (!req.url.startsWith('/v4/')) return notServed(req, reply, 404);
    // A parameter error like any other (§3: 400), signed for the application named, if any.
    req.signAs = await signerOrDefault(req);
    return fail(req, reply, 40009, `no such endpoint: ${req.method} ${truncated(req.url.split('?')[0] ?? '', 200)}`, 400);
  });

  // Ready to serve: started, and the database answers (a load balancer takes an instance whose
  // database is out of reach out of rotation; every request would be a 50000 there).
  server.get('/healthz', async (_req, reply) => {
    if (!deps.isReady()) return reply.code(503).send({ status: deps.isStopping?.() ? 'stopping' : 'starting' });
    if (deps.databaseAnswers && !(await deps.databaseAnswers())) return reply.code(503).send({ status: 'database unavailable' });
    return reply.send({ status: 'ok' });
  });

  const metrics = deps.metrics;
  if (metrics) {
    // With a token, only the scraper that has it; without one, anyone who reaches the port (a
    // warning at start in production): the counters tell a stranger how the business is going.
    const expected = deps.metricsToken ? Buffer.from(`Bearer ${deps.metricsToken}`) : null;
    server.get('/metrics', async (req, reply) => {
      if (expected) {
        const given = Buffer.from(typeof req.headers.authorization === 'string' ? req.headers.authorization : '');
        if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
          return reply.code(401).header('www-authenticate', 'Bearer realm="metrics"').send({ error: 'UNAUTHORIZED', message: 'GET /metrics needs Authorization: Bearer <metrics_token>' });
        }
      }
      return reply.header('content-type', metrics.contentType).send(await metrics.render());
    });
  }

  const route = (method: 'GET' | 'POST', url: string, handler: Handler, options: RouteOptions = {}) =>
    server.route({
      method,
      url,
      // No HEAD twin of the GET routes: it would spend the nonce and sign a body it never sends.
      exposeHeadRoute: false,
      handler: async (req, reply) => {
        const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        const userAgent = req.headers['user-agent'];
        if (!userAgent || !userAgent.trim()) {
          req.signAs = await signerOrDefault(req);
          return fail(req, reply, 40003, 'missing required header: User-Agent');
        }
        const auth = await deps.authenticator.authenticate(
          {
            appId: header(req, 'sparkpay-app-id'),
            timestamp: header(req, 'sparkpay-timestamp'),
            nonce: header(req, 'sparkpay-nonce'),
            signature: header(req, 'sparkpay-signature'),
          },
          body,
        );
        if (!auth.ok) {
          // 40002: an unknown application (the default key signs) or a disabled one (its own key
          // signs: its merchant holds that key, §3). 40003: one may be named though the request
          // is incomplete; the merchant still verifies the answer with its application's key.
          if (auth.code === 40003 || auth.code === 40002) req.signAs = await signerOrDefault(req);
          else req.signAs = header(req, 'sparkpay-app-id') ?? null;
          return fail(req, reply, auth.code, auth.message);
        }
        req.app = auth.app;
        req.signAs = auth.app.appId;
        const replayed = async () => !(await auth.nonce.check());
        const appId = auth.app.appId;
        if (deps.rateLimiter && !deps.rateLimiter.take(appId, deps.clock.nowMs())) {
          if (await replayed()) return fail(req, reply, 40000, replayFailure().message);
          return fail(req, reply, 40011, 'Application call limit exceeded; reduce the request frequency');
        }
        // A replay spends none of the application's rate: whoever replays a captured request
        // must not be able to hold its merchant at 40011 (it costs the sender's address budget).
        const refuseReplay = () => {
          deps.rateLimiter?.giveBack(appId);
          return fail(req, reply, 40000, replayFailure().message);
        };
        if (!options.settlesNonce && (await replayed())) return refuseReplay();
        const result = await handler(req, auth.app, auth.nonce);
        if (!auth.nonce.settled) {
          // A handler that promised to settle the nonce did not: a bug, but never a hole.
          req.log.error('request handled without settling its nonce');
          if (await replayed()) return refuseReplay();
        }
        if (!result.ok && result.code === 40000 && (await replayed())) return refuseReplay();
        if (!result.ok) return fail(req, reply, result.code, result.message);
        return sendSigned(deps, reply, auth.app.appId, 200, { code: 0, message: 'success', data: result.data });
      },
    });

  const jsonBody = (req: FastifyRequest): { ok: true; value: unknown } | { ok: false; code: number; message: string } => {
    if (mediaTypeSent(req) !== 'application/json') return { ok: false, code: 40009, message: 'Content-Type must be application/json' };
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    let value: unknown;
    try {
      // Fatal decoding: Buffer#toString would turn invalid UTF-8 into U+FFFD and store the
      // mangled text as if the merchant had sent it (§1: the body is UTF-8).
      value = JSON.parse(UTF8.decode(raw));
    } catch {
      return { ok: false, code: 40009, message: 'the request body is not valid UTF-8 JSON' };
    }
    const flaw = jsonFlaw(value, MAX_JSON_DEPTH);
    if (flaw === 'depth') return { ok: false, code: 40009, message: `the request body nests JSON deeper than ${MAX_JSON_DEPTH} levels` };
    if (flaw === 'text') {
      return { ok: false, code: 40009, message: 'the request body has a string with a NUL character (\\u0000) or an unpaired surrogate escape: text must be well-formed Unicode without NUL' };
    }
    return { ok: true, value };
  };

  const withJson = (fn: (app: AuthenticatedApp, body: unknown, nonce: NonceGuard) => Promise<Result<{ data: unknown }>>): Handler =>
    async (req, app, nonce) => {
      const parsed = jsonBody(req);
      if (parsed.ok) return fn(app, parsed.value, nonce);
      return (await nonce.check()) ? parsed : replayFailure();
    };

  for (const [prefix, edition] of [['/v4/pay', 'standard'], ['/v4/pro/pay', 'pro']] as const) {
    route('POST', `${prefix}/cashier`, withJson((app, body, nonce) => deps.api.createOrder(app, edition, body, nonce)), { settlesNonce: true });
    route('GET', `${prefix}/orders/:merchant_no/:request_no`, async (req, app) => {
      const params = req.params as { merchant_no: string; request_no: string };
      return deps.api.queryOrder(app, edition, params.merchant_no, params.request_no);
    });
  }
  route('POST', '/v4/pay/orders/close', withJson((app, body) => deps.api.closeOrder(app, body)));
  const guard = deps.cashier ? cashierGuard(deps.cashier, { clock: deps.clock }) : null;
  const cashier = deps.cashier && guard ? [...cashierRoutes(deps.cashier, guard), ...cashierPageRoutes(deps.cashier, guard)] : [];
  for (const r of [...cashier, ...(consolePages?.routes ?? [])]) server.route({ method: r.method, url: r.url, handler: (req, reply) => r.handler(req, reply) });

  // An expectation other than 100-continue: served as if it were not there (RFC 9110 §10.1.1
  // allows either). Node's own answer was an empty 417, unsigned under /v4/ and without a request id.
  server.server.on('checkExpectation', (req, res) => server.server.emit('request', req, res));

  return server;
}

/** Whether a request target (path, with or without its query) is the console's. */
function isConsolePath(url: string): boolean {
  const path = url.split('?')[0] ?? '';
  return path === CONSOLE_PREFIX || path.startsWith(`${CONSOLE_PREFIX}/`);
}

/** The request target in origin form: the path and query of an absolute-form target, anything else as sent. */
export function originForm(url: string): string {
  const absolute = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(url);
  if (!absolute) return url;
  const rest = url.slice(absolute[0].length);
  return rest.startsWith('/') ? rest : `/${rest}`;
}

function truncated(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Text no field may hold: U+0000 (PostgreSQL's text cannot store it) and a lone surrogate, which
 * `\ud800` in JSON produces although it is no Unicode character (stored, it would come back as
 * U+FFFD: not what the merchant sent).
 */
const BAD_TEXT = /[\0\p{Cs}]/u;

/**
 * What is wrong with a parsed body, if anything: an object or array deeper than `max` levels,
 * or a string (member name or value) with text no field may hold. Iterative on purpose.
 */
function jsonFlaw(value: unknown, max: number): 'depth' | 'text' | null {
  const pending: [unknown, number][] = [[value, 1]];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [v, depth] = next;
    if (typeof v === 'string') {
      if (BAD_TEXT.test(v)) return 'text';
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth > max) return 'depth';
    for (const [key, child] of Object.entries(v)) {
      if (BAD_TEXT.test(key)) return 'text';
      pending.push([child, depth + 1]);
    }
  }
  return null;
}
