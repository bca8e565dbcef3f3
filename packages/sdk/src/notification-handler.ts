// A ready-made receiver for `notify_url` (PROTOCOL §13) for node:http, Express and Fastify.
// The platform treats a delivery as done only on HTTP 200 with the body `SUCCESS`, and retries
// anything else (10 s, 1 min, 5 min, 10 min, 30 min, 1 h, 2 h). So `SUCCESS` is sent only after
// the merchant's callback has finished; a failing callback answers 500 and the platform retries.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { SparkPayConfigError, SparkPayNotificationError, SparkPaySdkError } from './errors.js';
import {
  resolveNotificationConfig,
  verifyNotification,
  type NotificationMeta,
  type ParseNotificationOptions,
} from './notifications.js';
import type { NotificationPayload } from './types.js';

/** What the handler answered instead of `SUCCESS`, passed to `onError`. */
export interface NotificationRejection {
  /**
   * 400: the notification was refused (the error is a SparkPayNotificationError);
   * 413: the body exceeded `maxBodyBytes`; 500: `onNotification` threw (its error is passed).
   */
  status: 400 | 413 | 500;
}

export interface NotificationHandlerOptions extends ParseNotificationOptions {
  /**
   * Called once per verified notification. Do the work durably (e.g. commit the order update and
   * the `notify_id`) before returning or resolving: `SUCCESS` is answered only afterwards. Throw
   * or reject to make the platform retry later. The same `notify_id` may arrive more than once.
   */
  onNotification: (payload: NotificationPayload, meta: NotificationMeta) => Promise<void> | void;
  /** Told about every answer other than `SUCCESS` or 405 (for logging); its own errors are ignored. */
  onError?: (error: unknown, rejection: NotificationRejection) => Promise<void> | void;
  /** Largest accepted request body in bytes (default 64 KiB); larger bodies get 413. */
  maxBodyBytes?: number;
}

/** The parts of a Fastify request the handler reads. */
export interface FastifyLikeRequest {
  method: string;
  headers: IncomingHttpHeaders;
  body?: unknown;
}

/** The parts of a Fastify reply the handler uses. */
export interface FastifyLikeReply {
  code(statusCode: number): FastifyLikeReply;
  header(name: string, value: string): FastifyLikeReply;
  send(payload?: string): FastifyLikeReply;
}

export interface NotificationHandler {
  /** For `http.createServer`: reads the body itself, limited to `maxBodyBytes`. */
  node(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /**
   * Express middleware (`app.post('/notify', handler.express)`). Works with no body parser or
   * after `express.raw()`, `express.text()` or `express.json()`. It always answers and never
   * calls `next`. With `express.json()`, `maxBodyBytes` is checked against Content-Length and the
   * parsed body re-serialised; the raw size of a chunked body is the parser's limit to bound.
   */
  express(req: IncomingMessage & { body?: unknown }, res: ServerResponse, next?: (err?: unknown) => void): Promise<void>;
  /**
   * Fastify route handler (`app.post('/notify', handler.fastify)`), with Fastify's JSON parser
   * (the body is an object) or a buffer/string content-type parser. Fastify's `bodyLimit`
   * applies while parsing; `maxBodyBytes` is checked against Content-Length and the body as parsed
   * (raw, or an object re-serialised).
   */
  fastify(request: FastifyLikeRequest, reply: FastifyLikeReply): Promise<FastifyLikeReply>;
}

interface Answer {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
const TOO_LARGE = Symbol('too large');

/**
 * Builds a notification receiver. Keys are parsed here, once: an unusable key throws
 * SparkPayConfigError now rather than on the first notification.
 */
export function createNotificationHandler(options: NotificationHandlerOptions): NotificationHandler {
  const config = resolveNotificationConfig(options);
  const { onNotification, onError } = options;
  if (typeof onNotification !== 'function') throw new SparkPayConfigError('onNotification must be a function');
  if (onError !== undefined && typeof onError !== 'function') throw new SparkPayConfigError('onError must be a function');
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes <= 0) {
    throw new SparkPayConfigError('maxBodyBytes must be a positive integer');
  }

  const reject = (error: unknown, status: NotificationRejection['status'], body: string): Answer => {
    if (onError) {
      try {
        Promise.resolve(onError(error, { status })).catch(() => undefined);
      } catch {
        // A logging hook must not change the answer.
      }
    }
    return { status, body };
  };

  const tooLarge = (): Answer => ({
    ...reject(new SparkPaySdkError(`notification body exceeds maxBodyBytes (${maxBodyBytes})`), 413, 'FAIL TOO_LARGE'),
    headers: { Connection: 'close' },
  });

  /** Verification, then the callback; the body has been received and size-checked. */
  const handleBody = async (body: unknown): Promise<Answer> => {
    let verified: ReturnType<typeof verifyNotification>;
    try {
      verified = verifyNotification(body, config);
    } catch (err) {
      // One answer for every refusal: telling a sender which check failed (the padding before
      // the signature, say) would let it decrypt a captured notification (see openNotification).
      // The kind goes to onError.
      if (err instanceof SparkPayNotificationError) return reject(err, 400, 'FAIL');
      return reject(err, 500, 'FAIL');
    }
    try {
      await onNotification(verified.payload, verified.meta);
    } catch (err) {
      return reject(err, 500, 'FAIL');
    }
    return { status: 200, body: 'SUCCESS' };
  };

  /** Method and declared-size checks shared by every adapter; null means "go on". */
  const precheck = (method: string | undefined, headers: IncomingHttpHeaders): Answer | null => {
    if (method !== 'POST') return { status: 405, body: 'METHOD NOT ALLOWED', headers: { Allow: 'POST' } };
    const declared = headers['content-length'];
    if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > maxBodyBytes) return tooLarge();
    return null;
  };

  /** Reads the request stream; null when the client went away (nobody left to answer). */
  const fromStream = async (req: IncomingMessage): Promise<Answer | null> => {
    let body: Buffer | typeof TOO_LARGE;
    try {
      body = await readBody(req, maxBodyBytes);
    } catch {
      return null;
    }
    return body === TOO_LARGE ? tooLarge() : handleBody(body);
  };

  // Behind a body parser the bytes sent are gone: what is measured is the body as the parser
  // handed it over (an object re-serialised), besides Content-Length when the sender gave one.
  // A chunked body padded with whitespace past the limit is bounded by the parser's own limit.
  const fromParsed = (body: unknown): Promise<Answer> => {
    const size = typeof body === 'string' ? Buffer.byteLength(body) : body instanceof Uint8Array ? body.byteLength : Buffer.byteLength(JSON.stringify(body) ?? '');
    if (size > maxBodyBytes) return Promise.resolve(tooLarge());
    return handleBody(body ?? '');
  };

  return {
    async node(req, res) {
      writeNode(res, precheck(req.method, req.headers) ?? (await fromStream(req)));
    },

    async express(req, res) {
      const early = precheck(req.method, req.headers);
      if (early) return writeNode(res, early);
      const { body } = req;
      // Express 5 leaves req.body undefined when no parser ran; Express 4's parsers set it to {}
      // without reading when the content type did not match. Then the stream is still unread.
      const unread = body === undefined || (isEmptyPlainObject(body) && !req.readableEnded);
      writeNode(res, unread ? await fromStream(req) : await fromParsed(body));
    },

    async fastify(request, reply) {
      const answer = precheck(request.method, request.headers) ?? (await fromParsed(request.body));
      reply.code(answer.status).header('Content-Type', 'text/plain; charset=utf-8');
      for (const [name, value] of Object.entries(answer.headers ?? {})) reply.header(name, value);
      return reply.send(answer.body);
    },
  };
}

function isEmptyPlainObject(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return (proto === Object.prototype || proto === null) && Object.keys(v).length === 0;
}

function writeNode(res: ServerResponse, answer: Answer | null): void {
  if (answer === null || res.headersSent || res.writableEnded || res.destroyed) return;
  res.writeHead(answer.status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(answer.body)),
    ...answer.headers,
  });
  res.end(answer.body);
}

/**
 * Collects the body up to `limit` bytes. Past the limit it stops collecting and lets the rest
 * drain (the 413 answer carries `Connection: close`, so the socket does not outlive it).
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | typeof TOO_LARGE> {
  return new Promise((resolve, reject) => {
    // Someone else (a body parser) already consumed the stream: there is nothing left to read.
    if (req.readableEnded) return resolve(Buffer.alloc(0));
    if (req.destroyed) return reject(new Error('request stream already destroyed'));
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onFailure);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer | string): void => {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += bytes.length;
      if (size > limit) {
        cleanup();
        req.resume();
        resolve(TOO_LARGE);
        return;
      }
      chunks.push(bytes);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onFailure = (err: unknown): void => {
      cleanup();
      reject(err instanceof Error ? err : new Error('request stream failed'));
    };
    const onClose = (): void => {
      if (!req.readableEnded) onFailure(new Error('request closed before its body ended'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onFailure);
    req.on('close', onClose);
  });
}
