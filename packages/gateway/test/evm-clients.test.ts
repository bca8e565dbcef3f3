// Waiting for a transaction (`confirmed`): what the devnet's set-up, the deploy commands and the
// chain tests stand on. Under automine no block follows the last transaction, so a receipt that
// is not there at the first question must be asked for again, not awaited with the next block.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { confirmed, evmClients } from '../src/adapters/chain/evm/clients.js';
import { startAnvil, type AnvilNode } from '../src/adapters/devnet/anvil.js';
import { deployTestToken, devAccount } from '../src/adapters/devnet/test-tokens.js';
import { startRpcProxy, type RpcProxy } from './rpc-proxy.js';

describe('confirmed: the receipt of a sent transaction', () => {
  let node: AnvilNode;
  let proxy: RpcProxy;
  beforeAll(async () => {
    node = await startAnvil({ chainId: 31337 });
    proxy = await startRpcProxy(node.rpcUrl);
  });
  afterAll(async () => {
    await proxy?.close();
    await node?.stop();
  });

  it('is found when the node answers null at first and no further block comes (automine, the last transaction of a set-up)', async () => {
    const clients = evmClients(proxy.url, node.chainId, devAccount(0), { pollingIntervalMs: 20 });
    const before = await clients.public.getBlockNumber({ cacheTime: 0 });
    const hash = await clients.wallet.sendTransaction({ to: devAccount(1).address, value: 1n });
    proxy.hideReceipts(3);
    const started = Date.now();
    const receipt = await confirmed(clients, hash, { timeoutMs: 10_000 });
    expect(receipt.transactionHash).toBe(hash);
    // anvil may answer the hash before it mines the block (automine runs beside the answer): the
    // transaction's block is the one after `before`, and none came after it.
    expect(receipt.blockNumber).toBe(before + 1n);
    expect(await clients.public.getBlockNumber({ cacheTime: 0 }), 'no block was mined meanwhile').toBe(before + 1n);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(proxy.stats.calls['eth_getTransactionReceipt']).toBeGreaterThanOrEqual(4);
  });

  it('gives up after its time with the transaction named, when no receipt ever comes', async () => {
    const clients = evmClients(proxy.url, node.chainId, devAccount(0), { pollingIntervalMs: 20 });
    const hash = await clients.wallet.sendTransaction({ to: devAccount(1).address, value: 1n });
    proxy.hideReceipts(1_000_000);
    try {
      await expect(confirmed(clients, hash, { timeoutMs: 500 })).rejects.toThrow(hash);
    } finally {
      proxy.hideReceipts(0);
    }
  });

  it('throws when the transaction reverted', async () => {
    const clients = evmClients(node.rpcUrl, node.chainId, devAccount(0), { pollingIntervalMs: 20 });
    const token = await deployTestToken(clients, { name: 'T', symbol: 'T', decimals: 6 });
    // mint by another account than the owner reverts; sent with a fixed gas so the node takes it
    const other = evmClients(node.rpcUrl, node.chainId, devAccount(2), { pollingIntervalMs: 20 });
    const hash = await other.wallet.sendTransaction({ to: token, data: `0x40c10f19${'0'.repeat(128)}`, gas: 100_000n });
    await expect(confirmed(other, hash)).rejects.toThrow(/reverted/);
  });
});
