// Outbound notification POSTs (PROTOCOL §13). One request per attempt with an overall deadline
// (connect, send, answer); redirects are answered, never followed; in production the address
// actually connected to is checked at connect time (DNS lookups go through our filter), so a
// name that re-resolves to a private address between checks gets nowhere.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { Resolver } from 'node:dns/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { performance } from 'node:perf_hooks';
import { isDeliveredAnswer } from '../../domain/notification-schedule.js';
import type { NotificationSender, SendResult } from '../../app/ports.js';
import type { AttemptErrorKind } from '../../app/records.js';
import { isBlockedAddress } from './address-policy.js';

export interface HttpSenderOptions {
  /** The whole attempt: connection, request, answer (§13: 10 s). */
  timeoutMs: number;
  /** Development mode or SPARKPAY_NOTIFY_ALLOW_PRIVATE=1: private targets allowed. */
  allowPrivate: boolean;
  /** Connections kept per destination. */
  socketsPerHost: number;
  userAgent?: string;
  /**
   * DNS resolution (tests inject one); the address policy is applied to what it returns. Default:
   * the system resolver (getaddrinfo: /etc/hosts too) when private targets are allowed, else
   * dnsResolve (c-ares, DNS only).
   */
  resolve?: (hostname: string, family: number) => Promise<LookupAddress[]>;
  /** DNS servers of the default production resolver (tests name one); default: the system's. */
  dnsServers?: string[];
  /** The address policy (default: isBlockedAddress); only consulted when private targets are not allowed. */
  isBlocked?: (address: string) => boolean;
}

export interface HttpSender extends NotificationSender {
  close(): void;
}

/** Enough to recognise `SUCCESS` with whitespace around it; a longer answer is not it. */
const MAX_ANSWER_BYTES = 4096;
const HEAD_BYTES = 256;
/** Interim (1xx) answers taken before the answer; a receiver streaming them is cut off. */
const MAX_INTERIM_ANSWERS = 16;

/**
 * What the attempt log keeps of an answer: its first 256 bytes as text, cut before a character
 * the boundary would split (not turned into U+FFFD), U+0000 replaced (PostgreSQL text cannot
 * hold it), and never more than 256 bytes of UTF-8.
 */
export function answerHead(answer: Buffer): string {
  let end = Math.min(answer.length, HEAD_BYTES);
  if (end < answer.length) {
    // Back to the start of the last character; drop it if its bytes run past the boundary.
    let lead = end - 1;
    while (lead > 0 && lead > end - 4 && (answer[lead]! & 0xc0) === 0x80) lead -= 1;
    const first = answer[lead]!;
    const size = first >= 0xf0 ? 4 : first >= 0xe0 ? 3 : first >= 0xc0 ? 2 : 1;
    if (lead + size > end) end = lead;
  }
  return storable(answer.subarray(0, end).toString('utf8'), HEAD_BYTES);
}

/** `text` without U+0000 and cut to at most `maxBytes` of UTF-8 at a character boundary. */
function storable(text: string, maxBytes: number): string {
  let out = text.replaceAll('\u0000', '\ufffd');
  while (Buffer.byteLength(out) > maxBytes) out = [...out].slice(0, -1).join('');
  return out;
}

class SendFailure extends Error {
  constructor(
    readonly kind: AttemptErrorKind,
    message: string,
  ) {
    super(message);
  }
}

const systemResolve = (hostname: string, family: number) =>
  new Promise<LookupAddress[]>((resolve, reject) => {
    dnsLookup(hostname, { all: true, family: family === 4 || family === 6 ? family : 0 }, (err, addresses) => (err ? reject(err) : resolve(addresses)));
  });

/** How long a production lookup may take: c-ares' own timeout per try, and tries. */
const DNS_TIMEOUT_MS = 2_500;
const DNS_TRIES = 2;
/** How long the other address family may still take once one answered. */
const OTHER_FAMILY_GRACE_MS = 300;

/**
 * Addresses of `hostname` from DNS (A and AAAA), with c-ares, in the process: a merchant's name
 * server that never answers costs this lookup its timeout, and nothing else. The system resolver
 * (getaddrinfo) runs on libuv's four threads and cannot be cancelled; a few notifications to such
 * a host held all of them for 10 s a lookup, and every other receiver's lookup (and any other
 * threadpool work) queued behind them. Names from /etc/hosts are not found here: production
 * refuses loopback and private targets anyway.
 */
export function dnsResolver(servers?: string[]): (hostname: string, family: number) => Promise<LookupAddress[]> {
  const resolver = new Resolver({ timeout: DNS_TIMEOUT_MS, tries: DNS_TRIES });
  if (servers) resolver.setServers(servers);
  return async (hostname, family) => {
    const literal = isIP(hostname);
    if (literal) return [{ address: hostname, family: literal }];
    // RFC 6761: localhost names are the loopback addresses, whatever DNS says (then refused).
    if (/^(.+\.)?localhost\.?$/i.test(hostname)) return [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }].filter((a) => family === 0 || a.family === family);
    const asked = [family === 6 ? Promise.resolve([]) : resolver.resolve4(hostname), family === 4 ? Promise.resolve([]) : resolver.resolve6(hostname)];
    const results: (LookupAddress[] | { code: string } | undefined)[] = [undefined, undefined];
    const tracked = asked.map((p, i) =>
      p.then(
        (list) => void (results[i] = list.map((address) => ({ address, family: i === 0 ? 4 : 6 }))),
        (err: unknown) => void (results[i] = { code: String((err as { code?: unknown })?.code ?? err) }),
      ),
    );
    const hasAddresses = (i: number) => Array.isArray(results[i]) && results[i].length > 0;
    // Both answered, or A did with addresses: then AAAA gets a moment more, not its whole timeout
    // (a name server that drops AAAA queries must not cost every lookup that). An AAAA answer
    // does not cut A short: a host without IPv6 (many containers) needs the A records.
    await Promise.race([Promise.all(tracked), tracked[0]!.then(() => (hasAddresses(0) ? undefined : new Promise<never>(() => undefined)))]);
    if (results[1] === undefined) await Promise.race([tracked[1], sleep(OTHER_FAMILY_GRACE_MS)]);
    const found = results.flatMap((r) => (Array.isArray(r) ? r : []));
    if (found.length > 0) return found;
    const why = results.flatMap((r) => (r !== undefined && !Array.isArray(r) ? [r.code] : []));
    // A DNS failure whatever c-ares called it (its ECONNREFUSED is the name server's, not the receiver's).
    throw Object.assign(new Error(`${hostname}: no address from DNS (${why.join(', ') || 'no records'})`), { code: why.includes('ETIMEOUT') ? 'EAI_AGAIN' : 'ENOTFOUND' });
  };
}

function familyNumber(family: number | string | undefined): number {
  return family === 4 || family === 'IPv4' ? 4 : family === 6 || family === 'IPv6' ? 6 : 0;
}

function errorKind(err: unknown): AttemptErrorKind {
  if (err instanceof SendFailure) return err.kind;
  const code = String((err as { code?: unknown })?.code ?? '');
  if (['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NODATA', 'EAI_NONAME'].includes(code)) return 'DNS';
  if (code === 'ECONNREFUSED') return 'CONNECTION_REFUSED';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED') return 'CONNECTION_RESET';
  if (code === 'ETIMEDOUT') return 'TIMEOUT';
  if (/^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH)/.test(code)) return 'TLS';
  // OpenSSL's own failures (an https:// notify_url whose receiver speaks plain HTTP: "wrong
  // version number"; a TLS alert) come as EPROTO, naming its library.
  if (code === 'EPROTO' || /SSL/.test(String((err as { library?: unknown })?.library ?? ''))) return 'TLS';
  return 'NETWORK';
}

function describe(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return (typeof e?.code === 'string' && !message.includes(e.code) ? `${e.code}: ${message}` : message).slice(0, 500);
}

export function createHttpSender(options: HttpSenderOptions): HttpSender {
  const resolve = options.resolve ?? (options.allowPrivate ? systemResolve : dnsResolver(options.dnsServers));
  const isBlocked = options.isBlocked ?? isBlockedAddress;
  const agentOptions = { keepAlive: true, maxSockets: options.socketsPerHost, maxFreeSockets: options.socketsPerHost, timeout: 4000, scheduling: 'lifo' as const };
  const httpAgent = new HttpAgent(agentOptions);
  const httpsAgent = new HttpsAgent(agentOptions);

  // Every connection's address passes through here, also on reconnects of kept-alive agents.
  const lookup: LookupFunction = (hostname, lookupOptions, callback) => {
    resolve(hostname, familyNumber(lookupOptions.family)).then(
      (addresses) => {
        const usable = options.allowPrivate ? addresses : addresses.filter((a) => !isBlocked(a.address));
        const first = usable[0];
        if (!first) {
          const refused = Object.assign(new Error(`${hostname} resolves only to addresses notifications may not be sent to (${addresses.map((a) => a.address).join(', ')})`), {
            code: 'SPARKPAY_BLOCKED_ADDRESS',
          });
          callback(refused, '', 0);
        } else if (lookupOptions.all) {
          (callback as unknown as (err: null, addresses: LookupAddress[]) => void)(null, usable);
        } else {
          callback(null, first.address, first.family);
        }
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };

  function attempt(url: URL, body: string, deadline: number, signal: AbortSignal | undefined): Promise<{ status: number; answer: Buffer; location: string | undefined }> {
    return new Promise((resolvePromise, reject) => {
      const https = url.protocol === 'https:';
      const request = https ? httpsRequest : httpRequest;
      let settled = false;
      let req: ClientRequest | null = null;
      const finish = (err: unknown, value?: { status: number; answer: Buffer; location: string | undefined }) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolvePromise(value!);
      };
      let connected = false;
      const timer = setTimeout(
        () => {
          const failure = new SendFailure('TIMEOUT', connected ? `no complete answer within ${options.timeoutMs} ms` : `no connection within ${options.timeoutMs} ms`);
          finish(failure);
          req?.destroy(failure);
        },
        Math.max(0, deadline - performance.now()),
      );
      req = request(url, {
        method: 'POST',
        agent: https ? httpsAgent : httpAgent,
        lookup,
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
          'User-Agent': options.userAgent ?? 'SparkPay-Notifier/0.1',
          Accept: 'text/plain, */*',
          // The answer is read as sent: a compressed SUCCESS would not be one (§13 names the bytes).
          'Accept-Encoding': 'identity',
        },
      });
      const onAbort = () => {
        const failure = new SendFailure('INTERRUPTED', 'the gateway is stopping; the attempt was cut short');
        finish(failure);
        req?.destroy(failure);
      };
      if (signal?.aborted) queueMicrotask(onAbort);
      else signal?.addEventListener('abort', onAbort, { once: true });
      // An error before any answer on a kept-alive connection is marked, so it can be retried.
      req.on('socket', (socket) => {
        if (!socket.connecting) connected = true;
        else socket.once('connect', () => (connected = true));
      });
      // A kept-alive connection the receiver had closed (its FIN crossed our request: "socket
      // hang up" with nothing answered) is marked, so it can be tried again on a new one.
      req.on('error', (err) => finish(req?.reusedSocket && err.message === 'socket hang up' ? Object.assign(err, { staleSocket: true }) : err));
      // Interim answers (102, 103…) are let through, a few: a stream of them is cut off.
      let interim = 0;
      req.on('information', () => {
        interim += 1;
        if (interim <= MAX_INTERIM_ANSWERS) return;
        const failure = new SendFailure('BAD_ANSWER', `more than ${MAX_INTERIM_ANSWERS} interim (1xx) answers`);
        finish(failure);
        req?.destroy(failure);
      });
      // 101 Switching Protocols was not asked for: an answer, not a reason to wait.
      req.on('upgrade', (res: IncomingMessage, socket) => {
        socket.destroy();
        finish(null, { status: res.statusCode ?? 101, answer: Buffer.alloc(0), location: undefined });
      });
      req.on('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < MAX_ANSWER_BYTES + 1) chunks.push(chunk);
          size += chunk.length;
          // A long answer is not SUCCESS; stop reading instead of downloading it.
          if (size > MAX_ANSWER_BYTES) res.destroy();
        });
        const done = () =>
          finish(null, { status: res.statusCode ?? 0, answer: Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES + 1), location: res.headers.location });
        res.on('end', done);
        res.on('close', () => {
          if (settled) return;
          if (size > MAX_ANSWER_BYTES) done();
          else finish(new SendFailure('CONNECTION_RESET', 'the answer was cut off'));
        });
        res.on('error', (err) => (size > MAX_ANSWER_BYTES ? done() : finish(err)));
      });
      req.end(body);
    });
  }

  return {
    async send(target, body, signal): Promise<SendResult> {
      const started = performance.now();
      const deadline = started + options.timeoutMs;
      const result = (r: Omit<SendResult, 'latencyMs' | 'delivered'> & { delivered?: boolean }): SendResult => ({
        delivered: r.delivered ?? false,
        latencyMs: Math.round(performance.now() - started),
        ...r,
      });
      let url: URL;
      try {
        url = new URL(target);
        if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`scheme ${url.protocol} is not http or https`);
        if (url.username || url.password) throw new Error('credentials in the URL are not sent');
      } catch (err) {
        return result({ httpStatus: null, responseHead: null, errorKind: 'INVALID_URL', error: `notify_url is not usable: ${describe(err)}` });
      }
      const literal = url.hostname.replace(/^\[|\]$/g, '');
      if (!options.allowPrivate && isIP(literal) !== 0 && isBlocked(literal)) {
        return result({ httpStatus: null, responseHead: null, errorKind: 'BLOCKED_ADDRESS', error: `${literal} is not a public address (loopback, private, link-local, multicast, documentation or another special-purpose range)` });
      }
      // One POST per attempt, except once more on a new connection when a kept-alive one turns
      // out to have been closed by the receiver (the usual keep-alive race, ADR 0005). A reset
      // after the request was sent, or anything else, is this attempt's outcome: the receiver
      // may have read it, and the schedule tries again.
      for (let tries = 1; ; tries += 1) {
      try {
        const { status, answer, location } = await attempt(url, body, deadline, signal);
        const text = answer.toString('utf8');
        const head = answerHead(answer);
        if (isDeliveredAnswer(status, answer.length > MAX_ANSWER_BYTES ? null : text)) {
          return result({ delivered: true, httpStatus: status, responseHead: head, errorKind: null, error: null });
        }
        if (status >= 300 && status < 400) {
          return result({ httpStatus: status, responseHead: head, errorKind: 'REDIRECT', error: storable(`redirect${location ? ` to ${location.slice(0, 300)}` : ''} not followed`, 500) });
        }
        if (status !== 200) return result({ httpStatus: status, responseHead: head, errorKind: 'HTTP_STATUS', error: `HTTP ${status}` });
        return result({ httpStatus: status, responseHead: head, errorKind: 'BAD_ANSWER', error: 'HTTP 200 without the body SUCCESS' });
      } catch (err) {
        if ((err as { staleSocket?: boolean }).staleSocket === true && tries < 2 && performance.now() < deadline && !signal?.aborted) continue;
        const kind = String((err as { code?: unknown }).code) === 'SPARKPAY_BLOCKED_ADDRESS' ? 'BLOCKED_ADDRESS' : errorKind(err);
        return result({ httpStatus: null, responseHead: null, errorKind: kind, error: storable(describe(err), 500) });
      }
      }
    },
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}
