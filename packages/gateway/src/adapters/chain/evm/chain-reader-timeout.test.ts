// A hung RPC endpoint must not stall the chain watcher (ARCHITECTURE: outbound calls have
// timeouts): every read fails within the reader's timeout, whether the endpoint never answers or
// stops in the middle of its answer, on the single calls (viem) and the JSON-RPC batches alike.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evmChainReader } from './chain-reader.js';

const TIMEOUT_MS = 300;
const ADDRESS = `0x${'11'.repeat(20)}`;

describe('evmChainReader against an endpoint that does not answer', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    // /silent: accepts the request, answers nothing; /stalled: the headers and a byte of the body, then nothing.
    server = createServer((req, res) => {
      if (req.url === '/stalled') res.writeHead(200, { 'content-type': 'application/json' }).write('[');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  for (const path of ['/silent', '/stalled']) {
    it(`${path}: each read fails within the timeout`, async () => {
      const reader = evmChainReader([`${base}${path}`], { timeoutMs: TIMEOUT_MS });
      const reads: [string, () => Promise<unknown>][] = [
        ['head', () => reader.head()],
        ['blockHash', () => reader.blockHash(1)],
        ['tokenTransfers', () => reader.tokenTransfers([ADDRESS], [ADDRESS], 1, 2)],
        ['balances', () => reader.balances([ADDRESS], 1)],
      ];
      for (const [what, read] of reads) {
        const started = performance.now();
        await expect(read(), what).rejects.toThrow();
        expect(performance.now() - started, what).toBeLessThan(TIMEOUT_MS + 1_500);
      }
    });
  }
});
