// The settlement relayer's endpoints (relayer.ts, ADR 0008): it stays on the endpoint that
// answered. An endpoint that accepts connections and never answers cost every call its timeout
// when each call began with the first endpoint (viem's fallback): a settlement pass outlived its
// lease and the instances took the settlement from each other while it hung (an operator's
// chaos review). A real anvil behind the second URL, a real TCP server that never answers behind
// the first.
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evmRelayer } from '../src/adapters/chain/evm/relayer.js';
import { startAnvil, type AnvilNode } from '../src/adapters/devnet/anvil.js';
import { devnetAccount } from '../src/adapters/devnet/devnet.js';

const TIMEOUT_MS = 400;
const FACTORY = '0x00000000000000000000000000000000000000fa';

describe('the settlement relayer with an endpoint that never answers', () => {
  let node: AnvilNode;
  let silent: Server;
  let silentUrl: string;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    node = await startAnvil({ chainId: 31337 });
    silent = createServer((socket) => {
      sockets.push(socket);
      socket.on('data', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => silent?.close(resolve));
    await node?.stop();
  });

  const relayerOn = (rpcUrls: string[]) => {
    const said: { msg: string; fields: Record<string, unknown> }[] = [];
    const log = {
      info: () => undefined,
      debug: () => undefined,
      error: (fields: Record<string, unknown>, msg: string) => said.push({ msg, fields }),
      warn: (fields: Record<string, unknown>, msg: string) => said.push({ msg, fields }),
    };
    const relayer = evmRelayer({ rpcUrls, chainId: node.chainId, factory: FACTORY, privateKey: devnetAccount(7).privateKey, timeoutMs: TIMEOUT_MS, log: log as never });
    return { relayer, said };
  };
  const timed = async <T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> => {
    const start = performance.now();
    const value = await fn();
    return { value, ms: performance.now() - start };
  };

  it('waits for the silent endpoint once, says it switched, and asks the one that answered from then on', async () => {
    const { relayer, said } = relayerOn([silentUrl, node.rpcUrl]);
    const first = await timed(() => relayer.head());
    expect(first.ms).toBeGreaterThanOrEqual(TIMEOUT_MS);
    expect(said.map((s) => s.msg)).toEqual(['settlement RPC endpoint failed', 'settlement switched RPC endpoint']);
    expect(said[1]!.fields).toMatchObject({ endpoint: 2, endpoints: 2 });
    // A pass's many calls: none waits for the silent endpoint again.
    const pass = await timed(async () => {
      await relayer.head();
      await relayer.nonces();
      await relayer.relayerBalance();
      await relayer.fees();
      return relayer.known(`0x${'ab'.repeat(32)}`);
    });
    expect(pass.value).toBe(false);
    expect(pass.ms).toBeLessThan(TIMEOUT_MS);
    expect(said).toHaveLength(2);
  });

  it('takes a node\'s answer that something is not there as the answer, not as a failure to try elsewhere', async () => {
    const { relayer, said } = relayerOn([node.rpcUrl, silentUrl]);
    const none = await timed(() => relayer.receipt(`0x${'cd'.repeat(32)}`));
    expect(none.value).toBeNull();
    expect(none.ms).toBeLessThan(TIMEOUT_MS);
    expect(said).toEqual([]);
  });

  it('fails over to the next endpoint when the one it stays on stops answering', async () => {
    const other = await startAnvil({ chainId: 31337 });
    try {
      const { relayer, said } = relayerOn([other.rpcUrl, node.rpcUrl]);
      await relayer.head();
      await other.stop();
      await relayer.head();
      expect(said.map((s) => s.msg)).toEqual(['settlement RPC endpoint failed', 'settlement switched RPC endpoint']);
    } finally {
      await other.stop();
    }
  });
});
