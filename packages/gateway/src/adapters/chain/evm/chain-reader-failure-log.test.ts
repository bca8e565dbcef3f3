// An RPC endpoint down for an hour: the chain scan fails every pass (every chain_poll_ms, a second
// by default), and the reader logged "RPC endpoint failed" at warn on every one of them — 3,600
// lines an hour per network, burying the rest of the outage's log, although the worker loop's own
// line is already logged at the 1st, 2nd, 4th, 8th… failure. The endpoint's failures in a row are
// logged the same way now, and its recovery once with the count.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evmChainReader } from './chain-reader.js';

describe('evmChainReader logging an endpoint that keeps failing', () => {
  let server: Server;
  let url: string;
  let failing = false;
  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (failing) return void res.writeHead(502).end('bad gateway');
        const call = JSON.parse(Buffer.concat(chunks).toString()) as { id: number; method: string };
        const result = call.method === 'eth_chainId' ? '0x5' : { hash: `0x${'ab'.repeat(32)}`, number: '0x10', timestamp: '0x1' };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: call.id, result }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('logs the 1st, 2nd, 4th, 8th… failure in a row, not every one, and the recovery once with the count', async () => {
    const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
    const at = (level: string) => (fields: object, msg?: string) => void lines.push({ level, msg: msg ?? '', fields: fields as Record<string, unknown> });
    const reader = evmChainReader([url], { chainId: 5, log: { info: at('info'), warn: at('warn'), error: at('error') }, timeoutMs: 2_000 });
    expect((await reader.head()).number).toBe(16);
    failing = true;
    for (let i = 0; i < 10; i += 1) await expect(reader.head()).rejects.toThrow();
    failing = false;
    expect((await reader.head()).number).toBe(16);
    expect((await reader.head()).number).toBe(16);
    // Was: ten warnings, one per failed call, and nothing when it answered again.
    expect(lines.map((l) => [l.level, l.msg, l.fields.repeats ?? l.fields.failures ?? null])).toEqual([
      ['warn', 'RPC endpoint failed', null],
      ['warn', 'RPC endpoint failed', 2],
      ['warn', 'RPC endpoint failed', 4],
      ['warn', 'RPC endpoint failed', 8],
      ['info', 'RPC endpoint answers again', 10],
    ]);
    expect(lines.every((l) => l.fields.endpoint === 1 && l.fields.url === url)).toBe(true);
  });
});
