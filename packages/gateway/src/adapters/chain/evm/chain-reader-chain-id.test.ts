// The chain reader's check of each endpoint's chain id (ADR 0006, fifteenth session), against a
// small JSON-RPC server whose chain id and health the test sets: an endpoint of another chain is
// never read from, and each spell on another chain is logged once.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evmChainReader } from './chain-reader.js';

describe('evmChainReader with a configured chain id', () => {
  let server: Server;
  let url: string;
  const node = { chainId: 5, failing: false, calls: [] as string[] };
  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const call = JSON.parse(Buffer.concat(chunks).toString()) as { id: number; method: string };
        node.calls.push(call.method);
        if (node.failing) return void res.writeHead(500).end('down');
        const result = call.method === 'eth_chainId' ? `0x${node.chainId.toString(16)}` : { hash: `0x${'ab'.repeat(32)}`, number: '0x10', timestamp: '0x1' };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: call.id, result }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('reads nothing from an endpoint serving another chain, asks again after a failure, and logs each spell on another chain once', async () => {
    const errors: string[] = [];
    const log = { info: () => undefined, warn: () => undefined, error: (o: object) => void errors.push((o as { err: string }).err) };
    const reader = evmChainReader([url], { chainId: 5, log, timeoutMs: 2_000 });
    node.chainId = 6;
    node.calls.length = 0;
    await expect(reader.head()).rejects.toThrow(/serves chain id 6, not the configured chain_id 5/);
    await expect(reader.head()).rejects.toThrow(/chain id 6/);
    expect(node.calls).toEqual(['eth_chainId', 'eth_chainId']);
    expect(errors).toHaveLength(1);
    node.chainId = 5;
    expect((await reader.head()).number).toBe(16);
    // Asked once while it answers well.
    node.calls.length = 0;
    await reader.head();
    expect(node.calls).toEqual(['eth_getBlockByNumber']);
    // It fails, and comes back serving the other chain again: asked again, and logged again.
    node.failing = true;
    await expect(reader.head()).rejects.toThrow();
    node.failing = false;
    node.chainId = 6;
    await expect(reader.head()).rejects.toThrow(/chain id 6/);
    expect(errors).toHaveLength(2);
  });
});
