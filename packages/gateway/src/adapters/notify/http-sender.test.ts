// The outbound sender against real local HTTP servers: what counts as delivered, how failures
// are classified, and that the address policy applies to the address actually connected to.
import { createSocket } from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createHttpSender, dnsResolver, type HttpSender } from './http-sender.js';

const servers: Server[] = [];
const senders: HttpSender[] = [];

async function serve(handler: Parameters<typeof createServer>[1]): Promise<number> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
}

function sender(opts: Partial<Parameters<typeof createHttpSender>[0]> = {}): HttpSender {
  const s = createHttpSender({ timeoutMs: 2000, allowPrivate: true, socketsPerHost: 4, ...opts });
  senders.push(s);
  return s;
}

afterEach(() => {
  for (const s of senders.splice(0)) s.close();
});
afterAll(async () => {
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

describe('http sender', () => {
  it('POSTs the body as JSON and counts HTTP 200 with SUCCESS as delivered', async () => {
    let seen: { method?: string; type?: string; body: string } = { body: '' };
    const port = await serve((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen = { method: req.method, type: req.headers['content-type'], body };
        res.end('  SUCCESS\n');
      });
    });
    const r = await sender().send(`http://127.0.0.1:${port}/n?x=1`, '{"a":"ü"}');
    expect(r).toMatchObject({ delivered: true, httpStatus: 200, responseHead: '  SUCCESS\n', errorKind: null, error: null });
    expect(seen).toEqual({ method: 'POST', type: 'application/json', body: '{"a":"ü"}' });
  });

  it.each([
    ['ftp://127.0.0.1/x', /scheme ftp:/],
    ['not a url', /not usable/],
    ['http://user:secret@127.0.0.1/x', /credentials/],
  ])('refuses %s without connecting', async (url, reason) => {
    const r = await sender().send(url, '{}');
    expect(r).toMatchObject({ delivered: false, errorKind: 'INVALID_URL', httpStatus: null });
    expect(r.error).toMatch(reason);
    expect(r.error).not.toContain('secret');
  });

  it('stops reading a long answer after 4 KiB and keeps its first 256 bytes', async () => {
    const port = await serve((_req, res) => {
      res.writeHead(200);
      const chunk = 'x'.repeat(64 * 1024);
      for (let i = 0; i < 160; i += 1) res.write(chunk); // 10 MiB if anyone read it all
      res.end('SUCCESS');
    });
    const r = await sender().send(`http://127.0.0.1:${port}/`, '{}');
    expect(r).toMatchObject({ delivered: false, httpStatus: 200, errorKind: 'BAD_ANSWER' });
    expect(r.responseHead).toBe('x'.repeat(256));
  });

  it('refuses loopback targets in production, by literal and by resolved name', async () => {
    const port = await serve((_req, res) => res.end('SUCCESS'));
    const strict = sender({ allowPrivate: false });
    for (const url of [`http://127.0.0.1:${port}/`, `http://[::ffff:127.0.0.1]:${port}/`, `http://localhost:${port}/`]) {
      const r = await strict.send(url, '{}');
      expect({ url, ...r }).toMatchObject({ url, delivered: false, errorKind: 'BLOCKED_ADDRESS', httpStatus: null });
    }
    const named = await sender({ allowPrivate: false, resolve: async () => [{ address: '127.0.0.1', family: 4 }] }).send(`http://merchant.example:${port}/`, '{}');
    expect(named).toMatchObject({ errorKind: 'BLOCKED_ADDRESS' });
    expect(named.error).toContain('127.0.0.1');
  });

  it('checks the address at every connection, so a name that rebinds to a refused address gets nowhere', async () => {
    let hits = 0;
    const port = await serve((_req, res) => {
      hits += 1;
      // No keep-alive: every attempt opens (and resolves) a new connection.
      res.setHeader('connection', 'close');
      res.end('SUCCESS');
    });
    // The policy under test refuses 127.0.0.2; the DNS answer changes between attempts.
    const answers = ['127.0.0.1', '127.0.0.2', '127.0.0.1'];
    let lookups = 0;
    const s = sender({
      allowPrivate: false,
      isBlocked: (a) => a === '127.0.0.2',
      resolve: async () => [{ address: answers[lookups++] ?? '127.0.0.2', family: 4 }],
    });
    const url = `http://rebinding.example:${port}/`;
    expect((await s.send(url, '{}')).delivered).toBe(true);
    expect(await s.send(url, '{}')).toMatchObject({ delivered: false, errorKind: 'BLOCKED_ADDRESS' });
    expect((await s.send(url, '{}')).delivered).toBe(true);
    expect({ lookups, hits }).toEqual({ lookups: 3, hits: 2 });
  });

  it('connects only to the permitted addresses of a name that resolves to several', async () => {
    const port = await serve((_req, res) => res.end('SUCCESS'));
    const s = sender({
      allowPrivate: false,
      isBlocked: (a) => a !== '127.0.0.1',
      resolve: async () => [
        { address: '10.0.0.7', family: 4 },
        { address: '127.0.0.1', family: 4 },
      ],
    });
    expect((await s.send(`http://mixed.example:${port}/`, '{}')).delivered).toBe(true);
  });

  it('cuts an attempt short when the gateway stops, as INTERRUPTED', async () => {
    const port = await serve(() => undefined); // never answers
    const stop = new AbortController();
    const pending = sender({ timeoutMs: 10_000 }).send(`http://127.0.0.1:${port}/`, '{}', stop.signal);
    setTimeout(() => stop.abort(), 50);
    const started = performance.now();
    const r = await pending;
    expect(r).toMatchObject({ delivered: false, errorKind: 'INTERRUPTED', httpStatus: null });
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('classifies a refused connection and an unknown name', async () => {
    const closed = await serve(() => undefined);
    const s = servers.at(-1)!;
    await new Promise((r) => s.close(r));
    expect(await sender().send(`http://127.0.0.1:${closed}/`, '{}')).toMatchObject({ errorKind: 'CONNECTION_REFUSED' });
    expect(await sender().send('http://no-such-host.invalid/', '{}')).toMatchObject({ errorKind: 'DNS' });
  });
});

describe('production DNS resolution (c-ares, not the threadpool)', () => {
  /** A name server on 127.0.0.1: `answers` get an A record, every other name no answer at all. */
  async function nameServer(answers: Record<string, string>): Promise<{ address: string; asked: string[]; close(): void }> {
    const socket = createSocket('udp4');
    const asked: string[] = [];
    socket.on('message', (query, peer) => {
      // Header (12 bytes), then the question: labels, type, class.
      const labels: string[] = [];
      let at = 12;
      while (query[at]! > 0) {
        labels.push(query.subarray(at + 1, at + 1 + query[at]!).toString('latin1'));
        at += query[at]! + 1;
      }
      const question = query.subarray(12, at + 5);
      const type = query.readUInt16BE(at + 1);
      const name = labels.join('.');
      asked.push(`${name}/${type}`);
      const ip = answers[name];
      if (ip === undefined) return; // a name server that never answers
      if (type === 28 && name.startsWith('noaaaa.')) return; // one that drops AAAA queries
      // slow-a.*: an IPv6 address at once, the A answer 600 ms later (a retried packet, say).
      const v6 = name.startsWith('slow-a.') ? Buffer.from('26062800022000010248189325c81946', 'hex') : null;
      const a =
        type === 1
          ? Buffer.concat([Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]), Buffer.from(ip.split('.').map(Number))])
          : type === 28 && v6
            ? Buffer.concat([Buffer.from([0xc0, 0x0c, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16]), v6])
            : Buffer.alloc(0);
      const header = Buffer.alloc(12);
      query.copy(header, 0, 0, 2);
      header.writeUInt16BE(0x8180, 2); // a response, recursion available, no error
      header.writeUInt16BE(1, 4);
      header.writeUInt16BE(a.length > 0 ? 1 : 0, 6);
      const answer = Buffer.concat([header, question, a]);
      if (type === 1 && v6) setTimeout(() => socket.send(answer, peer.port, peer.address), 600);
      else socket.send(answer, peer.port, peer.address);
    });
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
    return { address: `127.0.0.1:${socket.address().port}`, asked, close: () => socket.close() };
  }

  it('finds a name in DNS, and a name server that never answers holds up neither other names nor the threadpool', async () => {
    const ns = await nameServer({ 'shop.example': '93.184.216.34' });
    try {
      const resolve = dnsResolver([ns.address]);
      // More lookups to a dead name server than libuv has threads.
      const dead = Array.from({ length: 8 }, (_, i) => resolve(`pay${i}.dead-dns.example`, 0));
      for (const d of dead) d.catch(() => undefined);
      const started = performance.now();
      expect(await resolve('shop.example', 0)).toEqual([{ address: '93.184.216.34', family: 4 }]);
      // The threadpool is free: getaddrinfo of a local name and a file read answer at once.
      await new Promise<void>((ok, fail) => dnsLookup('localhost', (err) => (err ? fail(err) : ok())));
      await readFile(fileURLToPath(import.meta.url));
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(await resolve('127.0.0.1', 0)).toEqual([{ address: '127.0.0.1', family: 4 }]);
      // The dead ones fail, as DNS failures, within c-ares' timeout and tries.
      const failed = await Promise.allSettled(dead);
      expect(failed.map((f) => (f.status === 'rejected' ? (f.reason as { code?: string }).code : 'resolved'))).toEqual(Array(8).fill('EAI_AGAIN'));
      expect(performance.now() - started).toBeLessThan(15_000);
    } finally {
      ns.close();
    }
  }, 30_000);

  it('does not wait out the timeout of a family the name server never answers once the other answered', async () => {
    const ns = await nameServer({ 'noaaaa.shop.example': '93.184.216.34' });
    try {
      const started = performance.now();
      expect(await dnsResolver([ns.address])('noaaaa.shop.example', 0)).toEqual([{ address: '93.184.216.34', family: 4 }]);
      expect(performance.now() - started).toBeLessThan(1_500);
      expect(ns.asked).toEqual(expect.arrayContaining(['noaaaa.shop.example/1', 'noaaaa.shop.example/28']));
    } finally {
      ns.close();
    }
  });

  it('keeps waiting for the A records when the AAAA answer came first (a host without IPv6 needs them)', async () => {
    const ns = await nameServer({ 'slow-a.shop.example': '93.184.216.34' });
    try {
      const found = await dnsResolver([ns.address])('slow-a.shop.example', 0);
      expect(found).toContainEqual({ address: '93.184.216.34', family: 4 });
      expect(found).toContainEqual({ address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 });
    } finally {
      ns.close();
    }
  });

  it('is what a production sender resolves with: a name without an address is a DNS failure, not a refused connection', async () => {
    const ns = await nameServer({ 'shop.example': '93.184.216.34' });
    try {
      const resolve = dnsResolver([ns.address]);
      await expect(resolve('nowhere.example', 4)).rejects.toMatchObject({ code: 'EAI_AGAIN' });
    } finally {
      ns.close();
    }
  }, 30_000);
});
