// Two ways a scan that is behind, or that finds the chain changed under it, lost a payment made in
// time (a review of the whole scan, ADR 0007's seventeenth-session amendment). A real anvil; the
// gateway's own scan and expiry, driven by hand with the injected clock.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Address } from 'viem';
import { evmChainReader } from '../src/adapters/chain/evm/chain-reader.js';
import type { PaymentFacts } from '../src/app/record-payment.js';
import { scanChainOnce } from '../src/app/scan-chain.js';
import { startTestChain, type TestChain } from './evm-chain.js';
import { deploymentOn, mine, mineAtClock, placeOrder, queryOrder, rpc } from './chain-setup.js';
import { startTestGateway, type TestGateway } from './harness.js';
import { startRpcProxy, type RpcProxy } from './rpc-proxy.js';

describe('a scan that is behind, or that finds the chain replaced', { timeout: 60_000 }, () => {
  let chain: TestChain;
  let usdt: Address;
  beforeAll(async () => {
    chain = await startTestChain();
    usdt = await chain.deployToken({ name: 'Tether USD (test)', symbol: 'USDT', decimals: 6 });
  }, 60_000);
  afterAll(async () => {
    await chain?.stop();
  });

  /** The clock at the chain's head (anvil stamps blocks with its own time), then an order on network 2, scanned once. */
  const orderOn = async (t: TestGateway) => {
    const head = Number((await chain.relayer.public.getBlock({ blockTag: 'latest' })).timestamp);
    if (head > t.clock.seconds()) t.clock.ms = (head + 1) * 1000;
    const o = await placeOrder(t, { amount: '5', network: '2' });
    await t.gateway.scanChain('2');
    return { o, deadline: (await t.gateway.store.orders.get(o.paymentOrderNo))!.state.expireTime };
  };

  it('reads a payment mined in the 24 h after closure though the scan reaches its block after them (PAID_LATE, not lost)', async () => {
    const t = await startTestGateway({ kind: 'sqlite', config: deploymentOn(chain, { '2': { rpcUrls: [chain.node.rpcUrl], confirmations: 1, contracts: { USDT: usdt } } }) });
    try {
      const { o, deadline } = await orderOn(t);
      t.clock.advance(deadline - t.clock.seconds() + 1);
      await mineAtClock(chain, t.clock);
      await t.gateway.scanChain('2');
      expect(await t.gateway.expireOrders()).toBe(1);
      const closed = (await t.gateway.store.orders.get(o.paymentOrderNo))!;
      // 23 h later, still inside the watch, the payer pays.
      t.clock.advance(23 * 3600);
      await mineAtClock(chain, t.clock);
      await chain.pay(usdt, o.address, 5_000_000n);
      expect(Number((await chain.relayer.public.getBlock({ blockTag: 'latest' })).timestamp)).toBeLessThanOrEqual(closed.watchUntil!);
      // The scan was down for 2 h; it reads the block now, the watch ended by the clock.
      t.clock.advance(2 * 3600);
      await mineAtClock(chain, t.clock);
      await t.gateway.scanChain('2');
      expect(await queryOrder(t, o.requestNo)).toMatchObject({ pay_status: 'CLOSED', pay_exception: 'PAID_LATE', payments: [expect.objectContaining({ amount: '5' })] });
    } finally {
      await t.close();
    }
  });

  it('stores nothing of a pass whose write waited past its lease while another instance took the scan over', async () => {
    const t = await startTestGateway({ kind: 'sqlite', config: deploymentOn(chain, { '2': { rpcUrls: [chain.node.rpcUrl], confirmations: 1, contracts: { USDT: usdt } } }) });
    try {
      const { o } = await orderOn(t);
      await chain.pay(usdt, o.address, 5_000_000n);
      await mine(chain, 1);
      // The pass's write waits (a database stall) past its lease; another instance takes the scan.
      const stalled: PaymentFacts = {
        ...t.gateway.payments,
        async passObserved(facts, fence) {
          await t.gateway.db.kysely.updateTable('chain_cursors').set({ lease_owner: 'other', lease_until: t.clock.nowMs() + 60_000 }).where('network', '=', '2').execute();
          return t.gateway.payments.passObserved(facts, fence);
        },
      };
      const network = t.gateway.config.deployment.networks.find((n) => n.id === '2')!;
      t.clock.advance(31);
      const pass = await scanChainOnce({ store: t.gateway.store, clock: t.clock, payments: stalled, reader: evmChainReader([chain.node.rpcUrl]), network, log: pino({ level: 'silent' }), owner: 'stalled', leaseMs: 30_000, maxBlocks: 2000 });
      expect(pass.leased).toBe(false);
      // Before, it stored the payment the other instance may store too (a native receipt then counted twice).
      expect(await queryOrder(t, o.requestNo)).toMatchObject({ pay_status: 'PENDING', payments: [] });
    } finally {
      await t.close();
    }
  });

  it('does not expire an order whose payment before the deadline is in blocks that replaced those the scan had covered', async () => {
    const proxy: RpcProxy = await startRpcProxy(chain.node.rpcUrl);
    const t = await startTestGateway({ kind: 'sqlite', config: deploymentOn(chain, { '2': { rpcUrls: [proxy.url], confirmations: 3, contracts: { USDT: usdt } } }) });
    try {
      const { o, deadline } = await orderOn(t);
      const snap = (await rpc(chain, 'evm_snapshot')) as string;
      // The old fork: no payment, blocks past the deadline, scanned (caught up past the deadline).
      t.clock.advance(deadline - t.clock.seconds() + 1);
      await mineAtClock(chain, t.clock);
      await mine(chain, 2);
      await t.gateway.scanChain('2');
      // The new fork holds the payment, stamped before the deadline; no counted transfer was reverted.
      await rpc(chain, 'evm_revert', [snap]);
      await rpc(chain, 'evm_setNextBlockTimestamp', [`0x${(deadline - 100).toString(16)}`]);
      await chain.pay(usdt, o.address, 5_000_000n);
      await rpc(chain, 'evm_setNextBlockTimestamp', [`0x${(deadline + 5).toString(16)}`]);
      await mine(chain, 5);
      // The pass that notices the replaced block cannot read the logs (an endpoint failing).
      proxy.fault('http500', ['eth_getLogs']);
      await expect(t.gateway.scanChain('2')).rejects.toThrow();
      // Before: still caught up past the deadline on the old fork, and the order was closed.
      expect((await t.gateway.store.chainCursors.caughtUpTimes(['2'])).get('2')).toBeNull();
      expect(await t.gateway.expireOrders()).toBe(0);
      proxy.fault('none');
      await t.gateway.scanChain('2');
      await mine(chain, 3);
      await t.gateway.scanChain('2');
      expect(await queryOrder(t, o.requestNo)).toMatchObject({ pay_status: 'PAID' });
    } finally {
      await t.close();
      await proxy.close();
    }
  });
});
