// A real merchant notification receiver for tests: an HTTP server on 127.0.0.1 that records
// every request (raw bytes, headers, arrival time) and answers as the test tells it to.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { openNotification, type NotificationEnvelope } from '@sparkpay/protocol';
import type { KeyObject } from 'node:crypto';

export interface Received {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  raw: Buffer;
  at: number; // performance.now() at arrival of the whole body
  /** Set when the answer has been sent (or the connection dropped by the behaviour). */
  answeredAt: number | null;
}

/** How to answer one request: status and body, or a raw socket action. */
export type Answer =
  | { status: number; body?: string; headers?: Record<string, string>; delayMs?: number }
  | { action: 'reset' }
  | { action: 'hang' };

export type Behaviour = (req: Received, index: number) => Answer | Promise<Answer>;

export const SUCCESS: Answer = { status: 200, body: 'SUCCESS' };

export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  behaviour: Behaviour;
  /** Resolves when `n` requests have arrived (rejects after `timeoutMs`). */
  waitFor(n: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

export async function startReceiver(behaviour: Behaviour = () => SUCCESS, opts: { path?: string; port?: number } = {}): Promise<Receiver> {
  const path = opts.path ?? '/notify';
  const sockets = new Set<Socket>();
  const waiters: { n: number; resolve: () => void }[] = [];
  const received: Received[] = [];
  const receiver: Receiver = {
    url: '',
    port: 0,
    received,
    behaviour,
    async waitFor(n, timeoutMs = 10_000) {
      if (received.length >= n) return received;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`receiver got ${received.length} of ${n} requests within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
      return received;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, raw: Buffer.concat(chunks), at: performance.now(), answeredAt: null };
      const index = received.push(r) - 1;
      for (const w of waiters.filter((w) => received.length >= w.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
      void Promise.resolve(receiver.behaviour(r, index)).then(async (answer) => {
        if ('action' in answer) {
          if (answer.action === 'reset') {
            req.socket.resetAndDestroy();
            r.answeredAt = performance.now();
          }
          return; // hang: never answer
        }
        if (answer.delayMs) await new Promise((resolve) => setTimeout(resolve, answer.delayMs));
        if (res.destroyed) return;
        res.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers });
        res.end(answer.body ?? '');
        r.answeredAt = performance.now();
      });
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  receiver.port = port;
  receiver.url = `http://127.0.0.1:${port}${path}`;
  return receiver;
}

/** Opens a received notification with the merchant's key and the platform's public key. */
export function openReceived(r: Received, keys: { merchantPrivateKey: KeyObject; platformPublicKey: KeyObject }) {
  const envelope = JSON.parse(r.raw.toString('utf8')) as NotificationEnvelope;
  const opened = openNotification(r.raw, keys);
  return { envelope, payload: opened.payload as Record<string, unknown>, payloadJson: opened.payloadJson };
}

/**
 * A TCP port whose listener never accepts: a socket listening with a backlog of 0 whose one
 * queue slot is taken, so further connection attempts get no answer to their SYN (Linux drops
 * it while the accept queue is full). Node always accepts, so the listener is a python3
 * process — python3 is on every machine that builds better-sqlite3.
 */
export async function startNonAcceptingListener(): Promise<{ url: string; close(): Promise<void> }> {
  const { spawn } = await import('node:child_process');
  const net = await import('node:net');
  const script = "import socket,sys\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()";
  const py = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    py.once('error', reject);
    py.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
  });
  const filler = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    filler.once('connect', resolve);
    filler.once('error', reject);
  });
  return {
    url: `http://127.0.0.1:${port}/notify`,
    async close() {
      filler.destroy();
      py.stdin.end();
      if (py.exitCode === null) await new Promise((r) => py.once('exit', r));
    },
  };
}
