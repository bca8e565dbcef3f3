// What a settlement transaction costs the relayer when things go wrong (issue 5, ADR 0008/0009;
// found by review): a broadcast that fails for a reason higher fees do not fix (a provider's 429,
// an account short of funds) must not raise the fees on every pass; a stuck transaction is
// repriced even while a lower nonce of ours is mined but not final; a plan someone copied from the
// mempool and distributed first is skipped, not reverted; and a new transaction never spends what
// the pending ones may still cost.
import type { Address } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forwarderFactoryAbi } from '../src/adapters/chain/evm/contract-artifacts.js';
import { abiPlan } from '../src/adapters/chain/evm/forwarder-factory.js';
import { forwarderPlan } from '../src/adapters/chain/evm/forwarder-plan.js';
import { evmRelayer } from '../src/adapters/chain/evm/relayer.js';
import { devnetAccount } from '../src/adapters/devnet/devnet.js';
import { noMetrics, type Metrics, type SettlementChain } from '../src/app/ports.js';
import { Settler } from '../src/app/settle.js';
import { planFromJson } from '../src/domain/settlement-plan.js';
import { deploymentOn, mine, placeOrder, rpc, type PlacedOrder } from './chain-setup.js';
import { DATABASE_KINDS } from './databases.js';
import { startTestChain, type TestChain } from './evm-chain.js';
import { startTestGateway, type TestGateway } from './harness.js';

const CONFIRMATIONS = 3;
const USDT = 1_000_000n;
const RELAYER = devnetAccount(7);
const SETTINGS = { batchSize: 20, pollMs: 100, replaceAfterMs: 60_000, maxInFlight: 8, retryBaseMs: 1_000, leaseMs: 30_000 };
const CAP = 1_000_000_000_000n; // the production default: 1000 gwei

describe.each(DATABASE_KINDS)('settlement fees and gas when things go wrong (%s)', (kind) => {
  let chain: TestChain;
  let usdt: Address;
  let t: TestGateway;
  let owner = 0;

  beforeAll(async () => {
    chain = await startTestChain();
    usdt = await chain.deployToken({ name: 'Tether USD (test)', symbol: 'USDT', decimals: 6 });
    t = await startTestGateway({
      kind,
      config: {
        ...deploymentOn(chain, { '4': { rpcUrls: [chain.node.rpcUrl], confirmations: CONFIRMATIONS, contracts: { USDT: usdt } } }),
        relayers: { '4': { privateKey: RELAYER.privateKey, maxFeePerGas: CAP } },
        settlement: SETTINGS,
      },
    });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await chain?.stop();
  });

  const relayer = () => evmRelayer({ rpcUrls: [chain.node.rpcUrl], chainId: chain.node.chainId, factory: chain.factory.factory, privateKey: RELAYER.privateKey });
  /** A settler of its own (a fresh lease owner each), on `chainPort` and with `confirmations`. */
  const settlerOn = (chainPort: SettlementChain, opts: { confirmations?: number; batchSize?: number; metrics?: Metrics } = {}) => {
    const base = t.gateway.config.deployment.networks.find((n) => n.id === '4')!;
    const network = { ...base, chain: { ...base.chain, confirmations: opts.confirmations ?? CONFIRMATIONS } };
    owner += 1;
    return new Settler({ store: t.gateway.store, clock: t.clock, ids: t.gateway.ids, chain: chainPort, network, log: t.gateway.logger, owner: `fees-${owner}`, leaseMs: 30_000, metrics: opts.metrics, settings: { ...SETTINGS, batchSize: opts.batchSize ?? SETTINGS.batchSize, maxFeePerGas: CAP } });
  };
  /** Orders paid in full and PAID (their settlements due). */
  const paidOrders = async (amounts: number[]): Promise<PlacedOrder[]> => {
    const orders = await Promise.all(amounts.map((a) => placeOrder(t, { amount: String(a) })));
    for (const [i, o] of orders.entries()) await chain.pay(usdt, o.address, BigInt(amounts[i]!) * USDT);
    await t.gateway.scanChain('4');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    // Past the lease of the gateway's own settler and any retry delay.
    t.clock.advance(120);
    return orders;
  };
  const txOf = async (o: PlacedOrder) => (await t.gateway.store.settlements.getTx((await t.gateway.store.settlements.get(o.paymentOrderNo))!.txId!))!;
  /** The relayer, with broadcasts answered `error` while `failing.error` is set. */
  const failing: { error: string | null } = { error: null };
  const flaky = (): SettlementChain => {
    const real = relayer();
    return { ...real, orderRef: real.orderRef.bind(real), relayer: real.relayer, broadcast: async (raw: `0x${string}`) => (failing.error ? { ok: false, error: failing.error } : real.broadcast(raw)) } as SettlementChain;
  };
  /** Settles everything still open, so that each test starts with no transaction in flight. */
  const drain = async () => {
    failing.error = null;
    await rpc(chain, 'evm_setAutomine', [true]);
    const s = settlerOn(relayer());
    for (let i = 0; i < 5; i += 1) {
      await mine(chain, CONFIRMATIONS);
      t.clock.advance(120);
      await s.settleOnce();
    }
    await s.release();
  };

  it('does not raise the fees of a transaction whose broadcasts fail for a reason fees do not fix; re-signs one the node calls underpriced, at most every 15 s', async () => {
    const [order] = await paidOrders([5]);
    failing.error = 'HTTP request failed. Status: 429 Too Many Requests';
    const settler = settlerOn(flaky());
    try {
      expect((await settler.settleOnce()).sent).toBe(1);
      const first = await txOf(order!);
      // Sixty passes within the replacement delay: the same transaction, broadcast again each time.
      for (let pass = 0; pass < 60; pass += 1) await settler.settleOnce();
      const after = await txOf(order!);
      expect([after.maxFeePerGas, after.maxPriorityFeePerGas, after.hashes.length]).toEqual([first.maxFeePerGas, first.maxPriorityFeePerGas, 1]);
      // "Insufficient funds" is no reason either.
      failing.error = 'insufficient funds for gas * price + value: balance 0, tx cost 10';
      for (let pass = 0; pass < 5; pass += 1) await settler.settleOnce();
      expect((await txOf(order!)).hashes).toHaveLength(1);
      // Underpriced: re-signed with higher fees once, then not again for 15 s.
      failing.error = 'transaction underpriced';
      t.clock.advance(15);
      for (let pass = 0; pass < 5; pass += 1) await settler.settleOnce();
      const bumped = await txOf(order!);
      expect(bumped.hashes).toHaveLength(2);
      expect(bumped.maxFeePerGas > first.maxFeePerGas).toBe(true);
      t.clock.advance(15);
      await settler.settleOnce();
      expect((await txOf(order!)).hashes).toHaveLength(3);
      // The endpoint recovers: the transaction mined pays the fees of its last signing, no more.
      failing.error = null;
      await settler.settleOnce();
      await mine(chain, CONFIRMATIONS);
      await settler.settleOnce();
      const done = await txOf(order!);
      expect(done.status).toBe('FINAL');
      const receipt = await chain.relayer.public.getTransactionReceipt({ hash: done.minedHash as `0x${string}` });
      expect(receipt.effectiveGasPrice <= done.maxFeePerGas).toBe(true);
      expect(done.maxFeePerGas < first.maxFeePerGas * 2n).toBe(true);
    } finally {
      await settler.release();
      await drain();
    }
  });

  it('reprices a stuck transaction while a lower nonce of ours is mined but not final yet', async () => {
    const [a, b] = await paidOrders([6, 7]);
    // Confirmations deeper than the test's: the first transaction stays mined, not final.
    const settler = settlerOn(relayer(), { confirmations: 20, batchSize: 1 });
    try {
      expect((await settler.settleOnce()).sent).toBe(1); // nonce N, mined at once (automine)
      await rpc(chain, 'evm_setAutomine', [false]);
      t.clock.advance(1);
      expect((await settler.settleOnce()).sent).toBe(1); // nonce N+1, waits in the pool
      // Either order may have gone first.
      const [first, second] = [await txOf(a!), await txOf(b!)].sort((x, y) => x.nonce! - y.nonce!);
      expect(second!.nonce).toBe(first!.nonce! + 1);
      // The base fee jumps above what N+1 offers: it is stuck.
      await rpc(chain, 'anvil_setNextBlockBaseFeePerGas', [`0x${(second!.maxFeePerGas * 20n).toString(16)}`]);
      await mine(chain, 1);
      t.clock.advance((SETTINGS.replaceAfterMs / 1000) * 3);
      const pass = await settler.settleOnce();
      expect(pass.replaced).toBe(1);
      const repriced = (await t.gateway.store.settlements.getTx(second!.id))!;
      expect(repriced.hashes).toHaveLength(2);
      expect(repriced.maxFeePerGas > second!.maxFeePerGas).toBe(true);
    } finally {
      await settler.release();
      await drain();
    }
  });

  it('sends one order as a batch of one: a copy of its plan distributed first is skipped (no revert), and that distribution is adopted', async () => {
    const [order] = await paidOrders([4]);
    const deposit = (await t.gateway.store.depositAddresses.get(order!.paymentOrderNo, '4', 'USDT'))!;
    const plan = forwarderPlan(planFromJson(deposit.plan));
    // What the settlement metrics are told: orders settled for good, and the gas the relayer paid.
    const finals: { orders: number; gas: bigint }[] = [];
    const settler = settlerOn(relayer(), { metrics: { ...noMetrics, settlementFinal: (_n, orders, gas) => void finals.push({ orders, gas }) } });
    await rpc(chain, 'evm_setAutomine', [false]);
    try {
      expect((await settler.settleOnce()).sent).toBe(1);
      // Someone copies the plan from the pool and pays more to be mined first.
      await chain.payer.wallet.writeContract({ address: chain.factory.factory, abi: forwarderFactoryAbi, functionName: 'distribute', args: [abiPlan(plan)], gas: 500_000n, maxPriorityFeePerGas: 50_000_000_000n, maxFeePerGas: 500_000_000_000n });
      await mine(chain, 1);
    } finally {
      await rpc(chain, 'evm_setAutomine', [true]);
    }
    try {
      const ours = await txOf(order!);
      const receipt = await chain.relayer.public.getTransactionReceipt({ hash: ours.txHash as `0x${string}` });
      expect(receipt.status).toBe('success');
      // Final: the order is due again, then adopts the copy's distribution and completes.
      for (let i = 0; i < 4; i += 1) {
        await mine(chain, CONFIRMATIONS);
        t.clock.advance(120);
        await settler.settleOnce();
      }
      const st = (await t.gateway.store.settlements.get(order!.paymentOrderNo))!;
      expect(st.status).toBe('SETTLED');
      expect((await t.gateway.store.orders.get(order!.paymentOrderNo))!.state.status).toBe('COMPLETED');
      expect(st.txHash).not.toBe(ours.txHash);
      // Counted once, as one order settled; the gas is that of the relayer's own transaction (which
      // skipped it), not that of the copy it adopted.
      expect(finals.reduce((n, f) => n + f.orders, 0)).toBe(1);
      expect(finals.reduce((g, f) => g + f.gas, 0n)).toBe(receipt.gasUsed);
    } finally {
      await settler.release();
      await drain();
    }
  });

  it('does not send a new transaction with what the pending ones may still cost', async () => {
    const [a, b] = await paidOrders([2, 3]);
    const settler = settlerOn(relayer(), { batchSize: 1 });
    const balanceBefore = await chain.relayer.public.getBalance({ address: RELAYER.address });
    await rpc(chain, 'evm_setAutomine', [false]);
    try {
      expect((await settler.settleOnce()).sent).toBe(1);
      // Either order may have gone first.
      const [sent, waiting] = (await t.gateway.store.settlements.get(a!.paymentOrderNo))!.txId ? [a!, b!] : [b!, a!];
      const first = await txOf(sent);
      // Enough for the pending transaction and half of another one.
      await rpc(chain, 'anvil_setBalance', [RELAYER.address, `0x${((first.gasLimit * first.maxFeePerGas * 3n) / 2n).toString(16)}`]);
      t.clock.advance(1);
      const pass = await settler.settleOnce();
      expect(pass.sent).toBe(0);
      expect(pass.waiting).toMatch(/balance too low/);
      expect((await t.gateway.store.settlements.get(waiting.paymentOrderNo))!.status).toBe('DUE');
    } finally {
      await rpc(chain, 'anvil_setBalance', [RELAYER.address, `0x${balanceBefore.toString(16)}`]);
      await rpc(chain, 'evm_setAutomine', [true]);
      await settler.release();
      await drain();
    }
  });
});
