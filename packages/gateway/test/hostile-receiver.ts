// A misbehaving notification receiver for tests: a raw TCP server on 127.0.0.1 that reads each
// HTTP request it is sent (request line, headers, Content-Length body) and then answers with
// whatever bytes a script says, at whatever pace, closing or resetting the connection or never
// answering. It counts what it managed to hand to the kernel, when each connection was closed and
// by whom, how many connections were open at once and how many complete requests it read, so a
// test can tell what the client did without trusting the client's own account.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** One step of an answer. Steps run in order; after the last, the connection reads the next request (keep-alive). */
export type Step =
  /** Write these bytes (waits until the kernel took them, or the peer went away). */
  | { write: Buffer }
  /** Wait this long. */
  | { pause: number }
  /** Write the bytes one at a time, `everyMs` apart (slowloris). */
  | { drip: Buffer; everyMs: number }
  /** Write `chunk` again and again until the peer hangs up or `maxBytes` went out; `everyMs` apart (0: as fast as the kernel takes them). */
  | { stream: Buffer; everyMs: number; maxBytes: number }
  /** Half-close (FIN) after what was written. */
  | { end: true }
  /** Reset the connection (RST). */
  | { reset: true }
  /** Never do anything more on this connection. */
  | { hang: true };

export type Script = readonly Step[];

export interface RequestSeen {
  connection: number;
  /** The request line and headers, as text. */
  head: string;
  body: Buffer;
  at: number;
}

export interface ConnectionLog {
  openedAt: number;
  closedAt: number | null;
  /** Bytes the kernel accepted from us on this connection. */
  bytesWritten: number;
  /** The peer closed or reset before we ended the script (for a stream: before maxBytes). */
  closedByPeer: boolean;
  requests: number;
  /** performance.now() when the last step of the current answer began, for latency checks. */
  answerStartedAt: number | null;
}

export interface HostileServer {
  readonly port: number;
  readonly url: string;
  /** How to answer request `index` (0-based over the server's life) on connection `connection`. */
  script: (index: number, connection: number) => Script;
  readonly requests: RequestSeen[];
  readonly connections: ConnectionLog[];
  /** The most connections open at the same time. */
  readonly maxOpen: number;
  readonly open: number;
  /** Resolves when `n` complete requests were read (rejects after `timeoutMs`). */
  waitForRequests(n: number, timeoutMs?: number): Promise<void>;
  /** Resolves when every connection opened so far is closed (rejects after `timeoutMs`). */
  waitAllClosed(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Writes and resolves true when the kernel took it, false when the connection is gone. */
function put(socket: Socket, data: Buffer): Promise<boolean> {
  if (socket.destroyed || !socket.writable) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    socket.write(data, (err) => resolve(!err));
  });
}

/** Reads one request from `buf`: [head, body, rest] or null when more bytes are needed. */
function parseRequest(buf: Buffer): [string, Buffer, Buffer] | null {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = buf.subarray(0, end).toString('latin1');
  const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  const length = m ? Number(m[1]) : 0;
  if (buf.length < end + 4 + length) return null;
  return [head, buf.subarray(end + 4, end + 4 + length), buf.subarray(end + 4 + length)];
}

export interface HostileOptions {
  /** Run the script for request 0 as soon as a connection is accepted, without reading a request (for a client that speaks TLS, say). */
  answerOnConnect?: boolean;
}

export async function startHostileServer(script: (index: number, connection: number) => Script, options: HostileOptions = {}): Promise<HostileServer> {
  const sockets = new Set<Socket>();
  const requests: RequestSeen[] = [];
  const connections: ConnectionLog[] = [];
  let open = 0;
  let maxOpen = 0;
  const changed: (() => void)[] = [];
  const poke = () => changed.splice(0).forEach((f) => f());
  const waitFor = (what: string, cond: () => boolean, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`hostile server on ${self.port}: ${what} not within ${timeoutMs} ms (requests ${requests.length}, open ${open})`)), timeoutMs);
      const look = () => {
        if (cond()) {
          clearTimeout(timer);
          resolve();
        } else changed.push(look);
      };
      look();
    });

  const server: Server = createServer((socket) => {
    const id = connections.length;
    const log: ConnectionLog = { openedAt: performance.now(), closedAt: null, bytesWritten: 0, closedByPeer: false, requests: 0, answerStartedAt: null };
    connections.push(log);
    sockets.add(socket);
    open += 1;
    maxOpen = Math.max(maxOpen, open);
    let scriptDone = false;
    let answering = false;
    let buf = Buffer.alloc(0);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      sockets.delete(socket);
      open -= 1;
      log.closedAt = performance.now();
      if (!scriptDone) log.closedByPeer = true;
      poke();
    });

    const run = async (steps: Script): Promise<'again' | 'stop'> => {
      log.answerStartedAt = performance.now();
      for (const step of steps) {
        if (socket.destroyed) return 'stop';
        if ('write' in step) {
          if (await put(socket, step.write)) log.bytesWritten += step.write.length;
          else return 'stop';
        } else if ('pause' in step) {
          await sleep(step.pause);
        } else if ('drip' in step) {
          for (const byte of step.drip) {
            if (!(await put(socket, Buffer.from([byte])))) return 'stop';
            log.bytesWritten += 1;
            await sleep(step.everyMs);
          }
        } else if ('stream' in step) {
          while (log.bytesWritten < step.maxBytes) {
            if (!(await put(socket, step.stream))) return 'stop';
            log.bytesWritten += step.stream.length;
            if (step.everyMs > 0) await sleep(step.everyMs);
          }
          // The cap was reached with the peer still reading: a finding for the test, not for us.
          scriptDone = true;
          socket.destroy();
          return 'stop';
        } else if ('end' in step) {
          scriptDone = true;
          socket.end();
          return 'stop';
        } else if ('reset' in step) {
          scriptDone = true;
          socket.resetAndDestroy();
          return 'stop';
        } else {
          return 'stop'; // hang
        }
      }
      return 'again';
    };

    const next = () => {
      // A connection we ended or reset reads nothing more (as a server that closes does).
      if (answering || scriptDone) return;
      const parsed = parseRequest(buf);
      if (!parsed) return;
      const [head, body, rest] = parsed;
      buf = Buffer.from(rest);
      const index = requests.length;
      requests.push({ connection: id, head, body: Buffer.from(body), at: performance.now() });
      log.requests += 1;
      poke();
      answering = true;
      void run(self.script(index, id)).then((r) => {
        answering = false;
        if (r === 'again') next();
      });
    };
    if (options.answerOnConnect) {
      answering = true;
      void run(self.script(requests.length, id));
      socket.on('data', () => undefined);
      return;
    }
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      next();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const self: HostileServer = {
    port,
    url: `http://127.0.0.1:${port}/notify`,
    script,
    requests,
    connections,
    get maxOpen() {
      return maxOpen;
    },
    get open() {
      return open;
    },
    waitForRequests: (n, timeoutMs = 10_000) => waitFor(`${n} request(s)`, () => requests.length >= n, timeoutMs),
    waitAllClosed: (timeoutMs = 10_000) => waitFor('all connections closed', () => open === 0, timeoutMs),
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return self;
}

// ---------------------------------------------------------------------------------------------
// Building answers.

export const CRLF = '\r\n';

/** A status line and headers (each [name, value], written as given: duplicates, odd case and all). */
export function head(statusLine: string, headers: readonly (readonly [string, string])[]): Buffer {
  return Buffer.from(`${statusLine}${CRLF}${headers.map(([k, v]) => `${k}: ${v}${CRLF}`).join('')}${CRLF}`, 'latin1');
}

/** `body` in chunked framing, cut where `cuts` say (offsets into the body). */
export function chunked(body: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.max(0, Math.min(body.length, c))))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let from = 0;
  for (const p of [...points, body.length]) {
    if (p > from) {
      const piece = body.subarray(from, p);
      parts.push(Buffer.concat([Buffer.from(`${piece.length.toString(16)}${CRLF}`), piece, Buffer.from(CRLF)]));
      from = p;
    }
  }
  parts.push(Buffer.from(`0${CRLF}${CRLF}`));
  return parts;
}
