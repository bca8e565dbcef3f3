// `sparkpay devnet pay` asks the order's cashier API first: a gateway that accepts the connection
// and never answers (stopped in a debugger, wedged) held the command for ever. The ask has a
// timeout now, and the payer is told which gateway did not answer (ARCHITECTURE: outbound calls
// have timeouts).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inProcess } from './cli-run.js';

describe('devnet pay against a gateway that never answers', () => {
  let server: Server;
  let url: string;
  let dir: string;
  beforeAll(async () => {
    server = createServer(() => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    dir = mkdtempSync(join(tmpdir(), 'sparkpay-devnet-pay-'));
    mkdirSync(join(dir, '.sparkpay'));
    // A devnet "running" in this process: the command gets as far as the cashier API.
    const account = { address: '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266', private_key: `0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80` };
    writeFileSync(join(dir, '.sparkpay', 'devnet.json'), JSON.stringify({ pid: process.pid, networks: {}, funded_accounts: [account], merchant_wallet: account.address }));
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives up within its timeout, naming the gateway', async () => {
    const started = performance.now();
    const r = await inProcess(['devnet', 'pay', `${url}/cashier/P1?t=token`], { SPARKPAY_DATA_DIR: join(dir, '.sparkpay') }, dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the gateway at ${url} did not answer`);
    expect(performance.now() - started).toBeLessThan(15_000);
  }, 30_000);
});
