// After a relayer key change, a transaction of the old key that no node has any more (and that the
// old account can no longer pay for) is given back once stale: its orders go out with the new key.
// The old key's waiting transactions take no in-flight slot of the new one.
import type { Address } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evmRelayer } from '../src/adapters/chain/evm/relayer.js';
import { devnetAccount } from '../src/adapters/devnet/devnet.js';
import { Settler } from '../src/app/settle.js';
import { deploymentOn, mine, placeOrder, rpc } from './chain-setup.js';
import { startTestChain, type TestChain } from './evm-chain.js';
import { startTestGateway, type TestGateway } from './harness.js';

const CONFIRMATIONS = 2;
const USDT = 1_000_000n;
const OLD = devnetAccount(7);
const NEW = devnetAccount(6);
const SETTINGS = { batchSize: 20, pollMs: 100, replaceAfterMs: 60_000, maxInFlight: 8, retryBaseMs: 1_000, leaseMs: 30_000 };

describe('a relayer key change', () => {
  let chain: TestChain;
  let usdt: Address;
  let t: TestGateway;
  beforeAll(async () => {
    chain = await startTestChain();
    usdt = await chain.deployToken({ name: 'Tether USD (test)', symbol: 'USDT', decimals: 6 });
    t = await startTestGateway({
      config: {
        ...deploymentOn(chain, { '4': { rpcUrls: [chain.node.rpcUrl], confirmations: CONFIRMATIONS, contracts: { USDT: usdt } } }),
        relayers: { '4': { privateKey: OLD.privateKey, maxFeePerGas: 1_000_000_000_000n } },
        settlement: SETTINGS,
      },
    });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await chain?.stop();
  });

  it('settles the orders of an old-key transaction that is gone from every node', async () => {
    const order = await placeOrder(t, { amount: '2' });
    await chain.pay(usdt, order.address, 2n * USDT);
    await t.gateway.scanChain('4');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    await rpc(chain, 'evm_setAutomine', [false]);
    expect((await t.gateway.settle('4')).sent).toBe(1);
    const txId = (await t.gateway.store.settlements.get(order.paymentOrderNo))!.txId!;
    // The old key's transaction leaves the mempool; the operator emptied the old account when rotating.
    await rpc(chain, 'anvil_dropTransaction', [txId]);
    await rpc(chain, 'anvil_setBalance', [OLD.address, '0x0']);
    await rpc(chain, 'evm_setAutomine', [true]);
    const network = t.gateway.config.deployment.networks.find((n) => n.id === '4')!;
    const rotated = new Settler({
      store: t.gateway.store, clock: t.clock, ids: t.gateway.ids,
      chain: evmRelayer({ rpcUrls: [chain.node.rpcUrl], chainId: chain.node.chainId, factory: chain.factory.factory, privateKey: NEW.privateKey }),
      network, log: t.gateway.logger, owner: 'rotated', leaseMs: 30_000,
      // max_in_flight 1 here: with the default 8, eight such transactions of the old key do the same.
      settings: { ...SETTINGS, maxInFlight: 1, maxFeePerGas: 1_000_000_000_000n },
    });
    // An order paid after the key change.
    const later = await placeOrder(t, { amount: '3' });
    await chain.pay(usdt, later.address, 3n * USDT);
    await t.gateway.scanChain('4');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    // A day of passes with the new key.
    for (let pass = 0; pass < 24; pass += 1) {
      t.clock.advance(3600);
      await rotated.settleOnce();
      await mine(chain, CONFIRMATIONS);
    }
    expect((await t.gateway.store.settlements.getTx(txId))!.status).toBe('DROPPED');
    expect((await t.gateway.store.orders.get(later.paymentOrderNo))!.state.status).toBe('COMPLETED');
    expect((await t.gateway.store.orders.get(order.paymentOrderNo))!.state.status).toBe('COMPLETED');
  }, 60_000);
});
