// The Content-Type a client sent. Fastify refuses a header it cannot parse (an empty one, `json`,
// `application /json`) with its own 415 before any route runs, which would skip the order of
// checks of §2 (a request must be authenticated before its body is judged). So the server keeps
// the header as sent and shows Fastify a neutral one (its only parser takes any type as bytes);
// the routes judge what was sent.
import type { FastifyRequest } from 'fastify';

declare module 'fastify' {
  interface FastifyRequest {
    /** The Content-Type header as the client sent it (undefined: none). */
    contentTypeSent: string | undefined;
  }
}

/** An onRequest hook (the request decorated with `contentTypeSent`: undefined). */
export async function keepContentTypeSent(req: FastifyRequest): Promise<void> {
  const sent = req.raw.headers['content-type'];
  if (sent === undefined) return;
  req.contentTypeSent = sent;
  req.raw.headers['content-type'] = 'application/octet-stream';
}

/** The media type sent, lower case without parameters ('' when none). */
export function mediaTypeSent(req: FastifyRequest): string {
  return (req.contentTypeSent ?? '').split(';')[0]!.trim().toLowerCase();
}
