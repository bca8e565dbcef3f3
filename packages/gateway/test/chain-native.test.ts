// Native-coin payments on anvil (issue 4): an order priced in POL, the native option chosen on the
// cashier API, plain value transfers from the payer's wallet, found by balance reads at the
// deposit address, confirmed at depth, reverted when a reorganisation takes the money away, and
// counted once however often the chain is scanned.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { confirmed, evmClients } from '../src/adapters/chain/evm/clients.js';
import { devAccount } from '../src/adapters/devnet/test-tokens.js';
import { evmChainReader } from '../src/adapters/chain/evm/chain-reader.js';
import { NATIVE_COIN } from '../src/adapters/chain/evm/forwarder-plan.js';
import { NAME_CHECK_TRIES } from '../src/app/scan-native.js';
import { DATABASE_KINDS } from './databases.js';
import { freshAddress, startTestChain, type TestChain } from './evm-chain.js';
import { deploymentOn, mine, mineAtClock, notifyTypes, placeOrder, queryOrder, rpc, type PlacedOrder } from './chain-setup.js';
import { startTestGateway, type TestGateway } from './harness.js';
import { startHostileProxy, type Exchange } from './hostile-rpc.js';
import { startRpcProxy, type RpcProxy } from './rpc-proxy.js';

const CONFIRMATIONS = 3;
const POL = 10n ** 18n;

describe.each(DATABASE_KINDS)('native-coin payments on anvil (%s)', (kind) => {
  let chain: TestChain;
  let t: TestGateway;
  /** The first RPC URL of Polygon (4); anvil itself is the second. */
  let proxy: RpcProxy;

  beforeAll(async () => {
    chain = await startTestChain();
    const usdt = await chain.deployToken({ name: 'Tether USD (test)', symbol: 'USDT', decimals: 6 });
    proxy = await startRpcProxy(chain.node.rpcUrl);
    t = await startTestGateway({ kind, config: deploymentOn(chain, { '4': { rpcUrls: [proxy.url, chain.node.rpcUrl], confirmations: CONFIRMATIONS, contracts: { USDT: usdt } } }) });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await proxy?.close();
    await chain?.stop();
  });

  const payNative = async (to: string, amount: bigint) => chain.pay(NATIVE_COIN, to as `0x${string}`, amount);

  it('sees a POL transfer to the deposit address, confirms it at depth and marks the order PAID once', async () => {
    const order = await placeOrder(t, { amount: '5', currency: 'POL' });
    expect(order.amountBase).toBe(5n * POL);
    await t.gateway.scanChain('4');
    const receipt = await payNative(order.address, 5n * POL);
    const seen = await t.gateway.scanChain('4');
    expect(seen.transfers).toBe(1);
    // Found by a balance read, and named by the one transaction that sent it since the last pass.
    const key = receipt.transactionHash.toLowerCase();
    expect(await queryOrder(t, order.requestNo)).toMatchObject({
      pay_status: 'PAYING',
      payments: [{ network: '4', currency: 'POL', amount: '5', tx_hash: key, log_index: 0, block_number: Number(receipt.blockNumber), confirmations: 1, status: 'SEEN' }],
    });
    // Scanning again at the same head adds nothing.
    expect((await t.gateway.scanChain('4')).transfers).toBe(0);
    await mine(chain, CONFIRMATIONS - 2);
    await t.gateway.scanChain('4');
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'PAYING', payments: [{ confirmations: CONFIRMATIONS - 1, status: 'SEEN' }] });
    await mine(chain, 1);
    await t.gateway.scanChain('4');
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'PAID', real_pay_amount: '5', payments: [{ tx_hash: key, confirmations: CONFIRMATIONS, status: 'FINAL' }] });
    expect(await notifyTypes(t, order.paymentOrderNo)).toEqual(['ORDER_PAID']);
    await mine(chain, 2);
    await t.gateway.scanChain('4');
    const after = await queryOrder(t, order.requestNo);
    expect(after.payments).toHaveLength(1);
    expect(after).toMatchObject({ pay_status: 'PAID', real_pay_amount: '5' });
  });

  it('completes an order from two native transfers, PAYING with UNDERPAID in between', async () => {
    const order = await placeOrder(t, { amount: '3', currency: 'POL' });
    const first = await payNative(order.address, 1n * POL);
    await t.gateway.scanChain('4');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'PAYING', pay_exception: 'UNDERPAID' });
    const second = await payNative(order.address, 2n * POL);
    await t.gateway.scanChain('4');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    const done = await queryOrder(t, order.requestNo);
    expect(done).toMatchObject({ pay_status: 'PAID', real_pay_amount: '3' });
    expect((done.payments as { amount: string; status: string; tx_hash: string }[]).map((p) => [p.amount, p.status, p.tx_hash])).toEqual([
      ['1', 'FINAL', first.transactionHash.toLowerCase()],
      ['2', 'FINAL', second.transactionHash.toLowerCase()],
    ]);
  });

  it('names a receipt by its balance key when no one transaction made it: two between passes (one row of their sum), or a contract (no transaction), or one of another amount', async () => {
    const order = await placeOrder(t, { amount: '9', currency: 'POL' });
    await t.gateway.scanChain('4');
    await payNative(order.address, 1n * POL);
    const second = await payNative(order.address, 2n * POL);
    await t.gateway.scanChain('4');
    const view = async () => (await queryOrder(t, order.requestNo)).payments as { amount: string; tx_hash: string; block_number: number }[];
    expect((await view()).map((p) => [p.amount, p.tx_hash])).toEqual([['3', `balance:${order.address.toLowerCase()}:${second.blockNumber}`]]);
    // Money at the address with no transaction to it, as a contract's internal transfer leaves it.
    const balance = await chain.balanceOf(NATIVE_COIN, order.address);
    await rpc(chain, 'anvil_setBalance', [order.address, `0x${(balance + 2n * POL).toString(16)}`]);
    await mine(chain, 1);
    const head = Number(await chain.payer.public.getBlockNumber({ cacheTime: 0 }));
    await t.gateway.scanChain('4');
    expect((await view()).map((p) => [p.amount, p.tx_hash])).toEqual([
      ['3', `balance:${order.address.toLowerCase()}:${second.blockNumber}`],
      ['2', `balance:${order.address.toLowerCase()}:${head}`],
    ]);
    // A transaction of another amount than the balance rose by (a part of it came otherwise) names nothing.
    const third = await payNative(order.address, 1n * POL);
    const bumped = await chain.balanceOf(NATIVE_COIN, order.address);
    await rpc(chain, 'anvil_setBalance', [order.address, `0x${(bumped + 1n).toString(16)}`]);
    await t.gateway.scanChain('4');
    expect((await view()).at(-1)).toMatchObject({ amount: '1.000000000000000001', tx_hash: `balance:${order.address.toLowerCase()}:${third.blockNumber}` });
    // The key stays the row's identity: a later pass that names nothing changes nothing.
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    expect((await view()).map((p) => p.tx_hash)).toHaveLength(3);
  });

  it('records an overpayment in the native coin as PAID with OVERPAID', async () => {
    const order = await placeOrder(t, { amount: '2', currency: 'POL' });
    await payNative(order.address, 2n * POL + POL / 2n);
    await t.gateway.scanChain('4');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'PAID', pay_exception: 'OVERPAID', real_pay_amount: '2.5' });
  });

  it('never names a receipt by a transaction counted already: after a pass on an endpoint that lags (a failover), money without a transaction, of the same amount, keeps its key', async () => {
    const order = await placeOrder(t, { amount: '9', currency: 'POL' });
    await t.gateway.scanChain('4');
    const paid = await payNative(order.address, 1n * POL);
    await t.gateway.scanChain('4');
    await mine(chain, 1);
    proxy.lag(3);
    try {
      await t.gateway.scanChain('4');
    } finally {
      proxy.lag(0);
    }
    const balance = await chain.balanceOf(NATIVE_COIN, order.address);
    await rpc(chain, 'anvil_setBalance', [order.address, `0x${(balance + POL).toString(16)}`]);
    await mine(chain, 1);
    const head = Number(await chain.payer.public.getBlockNumber({ cacheTime: 0 }));
    await t.gateway.scanChain('4');
    const payments = (await queryOrder(t, order.requestNo)).payments as { amount: string; tx_hash: string }[];
    expect(payments.map((p) => [p.amount, p.tx_hash])).toEqual([
      ['1', paid.transactionHash.toLowerCase()],
      ['1', `balance:${order.address.toLowerCase()}:${head}`],
    ]);
  });

  it('keeps a right name when the node answers no receipt for it (not indexed yet) at finality, in fewer passes in a row than it takes to withdraw it: checked again the next pass', async () => {
    const order = await placeOrder(t, { amount: '5', currency: 'POL' });
    await t.gateway.scanChain('4');
    const paid = await payNative(order.address, 5n * POL);
    await t.gateway.scanChain('4');
    const shown = async () => (await queryOrder(t, order.requestNo)).payments as { tx_hash: string; status: string }[];
    await mine(chain, CONFIRMATIONS);
    proxy.hideReceipts(NAME_CHECK_TRIES - 1);
    for (let i = 1; i < NAME_CHECK_TRIES; i += 1) {
      await t.gateway.scanChain('4');
      expect(await shown()).toMatchObject([{ tx_hash: paid.transactionHash.toLowerCase(), status: 'SEEN' }]);
    }
    await t.gateway.scanChain('4');
    expect(await shown()).toMatchObject([{ tx_hash: paid.transactionHash.toLowerCase(), status: 'FINAL' }]);
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'PAID' });
  });

  it('withdraws the name of a receipt whose transaction a reorganisation replaced by another of the same value: final under its key, never the dropped transaction', async () => {
    const order = await placeOrder(t, { amount: '9', currency: 'POL' });
    await t.gateway.scanChain('4');
    const snapshot = await rpc(chain, 'evm_snapshot');
    const dropped = await payNative(order.address, 1n * POL);
    await t.gateway.scanChain('4');
    const shown = async () => (await queryOrder(t, order.requestNo)).payments as { tx_hash: string; status: string }[];
    expect(await shown()).toMatchObject([{ tx_hash: dropped.transactionHash.toLowerCase(), status: 'SEEN' }]);
    // The block is replaced by one where another transaction pays the same (a wallet's "speed up" from elsewhere).
    await rpc(chain, 'evm_revert', [snapshot]);
    const other = evmClients(chain.node.rpcUrl, chain.node.chainId, devAccount(5));
    const replacement = await confirmed(other, await other.wallet.sendTransaction({ to: order.address as `0x${string}`, value: POL }));
    expect(replacement.blockNumber).toBe(dropped.blockNumber);
    await t.gateway.scanChain('4');
    await mine(chain, CONFIRMATIONS);
    // Final by balance; its transaction's check fails (no receipt: never mined) in NAME_CHECK_TRIES passes in a row.
    for (let i = 1; i < NAME_CHECK_TRIES; i += 1) {
      await t.gateway.scanChain('4');
      expect(await shown()).toEqual([expect.objectContaining({ tx_hash: dropped.transactionHash.toLowerCase(), status: 'SEEN' })]);
    }
    await t.gateway.scanChain('4');
    expect(await shown()).toEqual([expect.objectContaining({ tx_hash: `balance:${order.address.toLowerCase()}:${dropped.blockNumber}`, status: 'FINAL' })]);
  });

  it('reverts an unconfirmed native receipt whose block left the chain, and counts the payment once when it is sent again', async () => {
    const order = await placeOrder(t, { amount: '4', currency: 'POL' });
    await t.gateway.scanChain('4');
    const snapshot = await rpc(chain, 'evm_snapshot');
    await payNative(order.address, 4n * POL);
    await t.gateway.scanChain('4');
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'PAYING', payments: [{ status: 'SEEN' }] });
    await rpc(chain, 'evm_revert', [snapshot]);
    await mine(chain, 2);
    const r = await t.gateway.scanChain('4');
    expect(r.reverted).toBe(1);
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'PENDING', pay_exception: 'REVERTED', payments: [{ status: 'REVERTED' }] });
    expect(await notifyTypes(t, order.paymentOrderNo)).toContain('ORDER_EXCEPTION');
    const resent = await payNative(order.address, 4n * POL);
    await t.gateway.scanChain('4');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    const again = await queryOrder(t, order.requestNo);
    expect(again).toMatchObject({ pay_status: 'PAID', real_pay_amount: '4' });
    expect((again.payments as { status: string }[]).map((p) => p.status)).toEqual(['REVERTED', 'FINAL']);
    expect((again.payments as { tx_hash: string }[])[1]!.tx_hash).toBe(resent.transactionHash.toLowerCase());
  });

  it('keeps counting a receipt whose first block was replaced when the new chain still pays it', async () => {
    const order = await placeOrder(t, { amount: '1', currency: 'POL' });
    await payNative(order.address, 1n * POL);
    await mine(chain, 1);
    await t.gateway.scanChain('4');
    // A reorganisation that keeps the payment: the block it was first seen in (one after the
    // payment's) is replaced.
    const head = await chain.relayer.public.getBlockNumber();
    const before = (await chain.relayer.public.getBlock({ blockNumber: head })).hash;
    await rpc(chain, 'anvil_reorg', [1, []]);
    expect(await chain.relayer.public.getBlockNumber()).toBe(head);
    expect((await chain.relayer.public.getBlock({ blockNumber: head })).hash).not.toBe(before);
    await mine(chain, CONFIRMATIONS);
    const r = await t.gateway.scanChain('4');
    expect(r.reverted).toBe(0);
    const paid = await queryOrder(t, order.requestNo);
    expect(paid).toMatchObject({ pay_status: 'PAID', real_pay_amount: '1', payments: [{ status: 'FINAL' }] });
    expect(paid.pay_exception).toBeUndefined();
  });

  it('records a token sent to a native deposit address without counting it', async () => {
    const order = await placeOrder(t, { amount: '1', currency: 'POL' });
    const usdt = t.gateway.config.deployment.networks.find((n) => n.id === '4')!.currencies.find((c) => c.code === 'USDT')!.contract!;
    await chain.pay(usdt as `0x${string}`, order.address, 1_000_000n);
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    const q = await queryOrder(t, order.requestNo);
    expect(q).toMatchObject({ pay_status: 'PENDING', payments: [{ currency: usdt }] });
  });

  it('reads the balances of many deposit addresses in JSON-RPC batches, and fails over when the endpoint fails', async () => {
    const orders = await Promise.all([1, 2, 3].map((n) => placeOrder(t, { amount: String(n), currency: 'POL' })));
    await t.gateway.scanChain('4');
    const batchesBefore = proxy.stats.batchSizes.length;
    for (const [i, o] of orders.entries()) await payNative(o.address, BigInt(i + 1) * POL);
    expect((await t.gateway.scanChain('4')).transfers).toBe(3);
    // The watched native addresses (these three at least) went out as one batch request.
    expect(Math.max(...proxy.stats.batchSizes.slice(batchesBefore))).toBeGreaterThanOrEqual(3);
    // The endpoint now fails every balance read: the next one answers.
    const late = await placeOrder(t, { amount: '1', currency: 'POL' });
    proxy.fault('http500', ['eth_getBalance']);
    const failedBefore = proxy.stats.failed;
    await payNative(late.address, POL);
    expect((await t.gateway.scanChain('4')).transfers).toBe(1);
    expect(proxy.stats.failed).toBeGreaterThan(failedBefore);
    proxy.fault('none');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    for (const o of [...orders, late]) expect(await queryOrder(t, o.requestNo)).toMatchObject({ pay_status: 'PAID', payments: [{ status: 'FINAL' }] });
  });

  it('goes on with the token scan when its only endpoint cannot read balances (a node behind its load balancer lagging), and counts the native receipt once balances read again', async () => {
    const only = await startRpcProxy(chain.node.rpcUrl);
    const usdt = t.gateway.config.deployment.networks.find((n) => n.id === '4')!.currencies.find((c) => c.code === 'USDT')!.contract! as `0x${string}`;
    const g = await startTestGateway({ kind, config: deploymentOn(chain, { '4': { rpcUrls: [only.url], confirmations: CONFIRMATIONS, contracts: { USDT: usdt } } }) });
    try {
      const native = await placeOrder(g, { amount: '1', currency: 'POL' });
      const token = await placeOrder(g, { amount: '2', currency: 'USDT' });
      await g.gateway.scanChain('4');
      await payNative(native.address, POL);
      await chain.pay(usdt, token.address, 2_000_000n);
      only.fault('http500', ['eth_getBalance']);
      const failedBefore = only.stats.failed;
      // The pass completes: the token transfer is counted and the cursor moves; the native receipt waits.
      const blind = await g.gateway.scanChain('4');
      expect(only.stats.failed).toBeGreaterThan(failedBefore);
      expect(blind).toMatchObject({ transfers: 1, scanned: { to: blind.head } });
      expect(await queryOrder(g, token.requestNo)).toMatchObject({ pay_status: 'PAYING' });
      expect(await queryOrder(g, native.requestNo)).toMatchObject({ pay_status: 'PENDING', payments: [] });
      // Not caught up while the balances are unreadable: past the deadline the native order stays
      // open (its receipt, mined in time, has not been read yet), and a new blind pass changes nothing.
      expect(blind.caughtUp).toBe(false);
      g.clock.advance((await g.gateway.store.orders.get(native.paymentOrderNo))!.state.expireTime - g.clock.seconds() + 1);
      expect((await g.gateway.scanChain('4')).caughtUp).toBe(false);
      expect(await g.gateway.expireOrders()).toBe(0);
      expect(await queryOrder(g, native.requestNo)).toMatchObject({ pay_status: 'PENDING' });
      only.fault('none');
      const seen = await g.gateway.scanChain('4');
      expect(seen).toMatchObject({ transfers: 1, caughtUp: true });
      expect(await queryOrder(g, native.requestNo)).toMatchObject({ pay_status: 'PAYING', payments: [{ amount: '1', status: 'SEEN' }] });
      // Caught up after the deadline: the receipt counts, and the expiry waits while it confirms.
      expect(await g.gateway.expireOrders()).toBe(0);
      // Deep enough, but the balances at the final depth cannot be read: the receipt stays SEEN
      // (its confirmations move), and becomes FINAL, once, when they can.
      await mine(chain, CONFIRMATIONS);
      only.fault('http500', ['eth_getBalance']);
      await g.gateway.scanChain('4');
      expect(await queryOrder(g, native.requestNo)).toMatchObject({ pay_status: 'PAYING', payments: [{ status: 'SEEN', confirmations: CONFIRMATIONS + 1 }] });
      expect(await queryOrder(g, token.requestNo)).toMatchObject({ pay_status: 'PAID' });
      only.fault('none');
      await g.gateway.scanChain('4');
      expect(await queryOrder(g, native.requestNo)).toMatchObject({ pay_status: 'PAID', real_pay_amount: '1', payments: [{ status: 'FINAL' }] });
      expect(await notifyTypes(g, native.paymentOrderNo)).toEqual(['ORDER_PAID']);
    } finally {
      await g.close();
      await only.close();
    }
  });

  describe('many native deposit addresses: balances read where they can have changed', () => {
    const FULL_READ_MS = 3_600_000;
    let only: RpcProxy;
    let g: TestGateway;
    beforeAll(async () => {
      only = await startRpcProxy(chain.node.rpcUrl);
      // Three watched native addresses or more: a pass reads only the balances that can have changed.
      const usdt = t.gateway.config.deployment.networks.find((n) => n.id === '4')!.currencies.find((c) => c.code === 'USDT')!.contract! as `0x${string}`;
      g = await startTestGateway({ kind, config: { ...deploymentOn(chain, { '4': { rpcUrls: [only.url], confirmations: CONFIRMATIONS, contracts: { USDT: usdt } } }), chainNativeSparseFrom: 2, chainNativeFullReadMs: FULL_READ_MS } });
    }, 60_000);
    afterAll(async () => {
      await g?.close();
      await only?.close();
    });

    /** How many native balances a pass read (eth_getBalance calls) and what it found. */
    const pass = async () => {
      const before = only.stats.calls.eth_getBalance ?? 0;
      const r = await g.gateway.scanChain('4');
      return { transfers: r.transfers, balancesRead: (only.stats.calls.eth_getBalance ?? 0) - before, caughtUp: r.caughtUp };
    };
    /** Money at the address without a transaction to it, as a contract's internal transfer leaves it, in a new block. */
    const creditWithoutTransaction = async (o: PlacedOrder, amount: bigint) => {
      const balance = await chain.balanceOf(NATIVE_COIN, o.address);
      await rpc(chain, 'anvil_setBalance', [o.address, `0x${(balance + amount).toString(16)}`]);
      await mine(chain, 1);
    };
    const placeFour = () => Promise.all([1, 2, 3, 4].map(() => placeOrder(g, { amount: '1', currency: 'POL' })));
    const payments = async (o: PlacedOrder) => (await queryOrder(g, o.requestNo)).payments as unknown[];

    it('lists the value-carrying transactions of a run of blocks that follows the one given (hash, recipient, value), and nothing else', async () => {
      const reader = evmChainReader([chain.node.rpcUrl]);
      const start = await reader.head();
      const paid = freshAddress();
      const zero = freshAddress();
      await payNative(paid, 7n);
      await chain.payer.wallet.sendTransaction({ to: zero, value: 0n });
      await chain.deployToken({ name: 'Another', symbol: 'ANO', decimals: 6 }); // contract creations: no recipient
      await payNative(paid, 1n);
      const head = await reader.head();
      const sent = await reader.valueTransfers(start, head);
      expect(sent.map((x) => [x.to, x.value])).toEqual([
        [paid.toLowerCase(), 7n],
        [paid.toLowerCase(), 1n],
      ]);
      for (const x of sent) expect((await chain.payer.public.getTransaction({ hash: x.hash as `0x${string}` })).to?.toLowerCase()).toBe(paid.toLowerCase());
      expect(await reader.valueTransfers(head, head)).toEqual([]);
      const other = `0x${'1'.repeat(64)}`;
      await expect(reader.valueTransfers({ number: start.number, hash: other }, head)).rejects.toThrow(/does not follow block/);
      // The blocks must end at the head the caller has: another one at that height is another fork.
      await expect(reader.valueTransfers(start, { number: head.number, hash: other })).rejects.toThrow(/end at block/);
      await expect(reader.valueTransfers(start, { number: head.number + 5, hash: other })).rejects.toThrow(/beyond the endpoint's head/);
    });

    it('reads only the paid address after a full read, finds a contract-sent receipt at the next full read, and counts each once', async () => {
      const [a, b] = await placeFour();
      // The first pass of an instance reads every watched balance.
      expect((await pass()).balancesRead).toBeGreaterThanOrEqual(4);
      const paid = await payNative(a!.address, POL);
      // One direct payment: its block's transactions name the address; only its balance is read.
      expect(await pass()).toMatchObject({ transfers: 1, balancesRead: 1, caughtUp: true });
      // …and the transaction the receipt is shown with, from those same blocks.
      expect(await queryOrder(g, a!.requestNo)).toMatchObject({ pay_status: 'PAYING', payments: [{ amount: '1', status: 'SEEN', tx_hash: paid.transactionHash.toLowerCase() }] });
      // Value without a transaction to the address is not seen between full reads; the unfinal row's address is still read.
      await creditWithoutTransaction(b!, POL);
      expect(await pass()).toMatchObject({ transfers: 0, balancesRead: 1 });
      expect(await payments(b!)).toEqual([]);
      g.clock.advance(FULL_READ_MS / 1000);
      const full = await pass();
      expect(full.transfers).toBe(1);
      expect(full.balancesRead).toBeGreaterThanOrEqual(4);
      expect(await queryOrder(g, b!.requestNo)).toMatchObject({ pay_status: 'PAYING', payments: [{ amount: '1', status: 'SEEN' }] });
      await mine(chain, CONFIRMATIONS);
      await pass();
      for (const o of [a!, b!]) expect(await queryOrder(g, o.requestNo)).toMatchObject({ pay_status: 'PAID', real_pay_amount: '1', payments: [{ status: 'FINAL' }] });
      // Nothing new: a pass at the same head reads no balance at all.
      expect(await pass()).toMatchObject({ transfers: 0, balancesRead: 0 });
    });

    it('reads every balance when the blocks since the last pass no longer follow it (a reorganisation)', async () => {
      const [c] = await placeFour();
      g.clock.advance(FULL_READ_MS / 1000);
      await pass();
      const snapshot = await rpc(chain, 'evm_snapshot');
      await mine(chain, 1);
      expect(await pass()).toMatchObject({ transfers: 0, balancesRead: 0 });
      // The block that pass read is replaced by another one (with a transaction, so another hash).
      await rpc(chain, 'evm_revert', [snapshot]);
      await chain.pay(NATIVE_COIN, freshAddress(), 1n);
      await creditWithoutTransaction(c!, POL);
      const after = await pass();
      expect(after.transfers).toBe(1);
      expect(after.balancesRead).toBeGreaterThanOrEqual(4);
      expect(await queryOrder(g, c!.requestNo)).toMatchObject({ pay_status: 'PAYING', payments: [{ amount: '1', status: 'SEEN' }] });
    });

    it('does not let an order expire before a full read covered its deadline: money sent in time by a contract still pays it', async () => {
      g.clock.advance(FULL_READ_MS / 1000);
      expect((await pass()).caughtUp).toBe(true);
      const [d] = await placeFour();
      await creditWithoutTransaction(d!, POL);
      // Past the deadline (within the full-read period): the scan is caught up to its last full read only.
      g.clock.advance((await g.gateway.store.orders.get(d!.paymentOrderNo))!.state.expireTime - g.clock.seconds() + 1);
      await mineAtClock(chain, g.clock);
      expect(await pass()).toMatchObject({ transfers: 0, caughtUp: true });
      await g.gateway.expireOrders(); // orders of the earlier tests expire
      expect(await queryOrder(g, d!.requestNo)).toMatchObject({ pay_status: 'PENDING' });
      g.clock.advance(FULL_READ_MS / 1000);
      await mineAtClock(chain, g.clock);
      expect((await pass()).transfers).toBe(1);
      expect(await queryOrder(g, d!.requestNo)).toMatchObject({ pay_status: 'PAYING', payments: [{ amount: '1', status: 'SEEN' }] });
    });

    it('reads again what a pass that failed after reading the balances found: an order paid in time does not expire', async () => {
      g.clock.advance(FULL_READ_MS / 1000);
      await pass();
      const [e] = await placeFour();
      await payNative(e!.address, POL);
      // Past the deadline, a full read finds the receipt, then the token scan fails: nothing is stored.
      g.clock.advance((await g.gateway.store.orders.get(e!.paymentOrderNo))!.state.expireTime - g.clock.seconds() + FULL_READ_MS / 1000);
      await mineAtClock(chain, g.clock);
      only.fault('http500', ['eth_getLogs']);
      await expect(g.gateway.scanChain('4')).rejects.toThrow();
      only.fault('none');
      const again = await pass();
      expect(again).toMatchObject({ transfers: 1, caughtUp: true });
      await g.gateway.expireOrders();
      expect(await queryOrder(g, e!.requestNo)).toMatchObject({ pay_status: 'PAYING', payments: [{ amount: '1', status: 'SEEN' }] });
    });

    it('is not caught up while a receipt waits for the next block (its block replaced at the same height), and reads every balance then', async () => {
      const [f] = await placeFour();
      g.clock.advance(FULL_READ_MS / 1000);
      await pass();
      const snapshot = await rpc(chain, 'evm_snapshot');
      await payNative(f!.address, 2n * POL);
      expect(await pass()).toMatchObject({ transfers: 1 });
      // The block is replaced at the same height by one paying less: the row is reverted, and the
      // rest waits for a new key (the next block); the pass has not seen everything.
      await rpc(chain, 'evm_revert', [snapshot]);
      await payNative(f!.address, POL);
      const replaced = await g.gateway.scanChain('4');
      expect(replaced).toMatchObject({ reverted: 1, transfers: 0, caughtUp: false });
      await mine(chain, 1);
      expect(await pass()).toMatchObject({ transfers: 1, caughtUp: true });
      const q = await queryOrder(g, f!.requestNo);
      expect((q.payments as { amount: string; status: string }[]).map((p) => [p.amount, p.status])).toEqual([
        ['2', 'REVERTED'],
        ['1', 'SEEN'],
      ]);
    });

    it('takes no lie about the blocks\' transactions for the chain: a garbled or unchained answer reads every balance, an omission waits for the next full read', async () => {
      const hostile = await startHostileProxy(chain.node.rpcUrl);
      const h = await startTestGateway({ kind, config: { ...deploymentOn(chain, { '4': { rpcUrls: [hostile.url], confirmations: CONFIRMATIONS } }), chainNativeSparseFrom: 2, chainNativeFullReadMs: FULL_READ_MS } });
      /** Rewrites each block of the answers to eth_getBlockByNumber with transactions (a batch). */
      const lie = (change: (block: Record<string, unknown>) => void) =>
        hostile.set(async (x: Exchange) => {
          if (!x.batch || !x.calls.every((c) => c.method === 'eth_getBlockByNumber' && c.params?.[1] === true)) return null;
          const honest = JSON.parse((await x.forward()).text) as { result: Record<string, unknown> | null }[];
          for (const item of honest) if (item.result) change(item.result);
          return { body: JSON.stringify(honest) };
        });
      const found = async (o: PlacedOrder) => ((await queryOrder(h, o.requestNo)).payments as unknown[]).length;
      try {
        const orders = await Promise.all([1, 2, 3, 4, 5].map(() => placeOrder(h, { amount: '1', currency: 'POL' })));
        const lies: [string, (b: Record<string, unknown>) => void][] = [
          ['a value that is not a quantity', (b) => ((b.transactions as Record<string, unknown>[]).forEach((tx) => (tx.value = 'lots')))],
          ['another parent', (b) => (b.parentHash = `0x${'2'.repeat(64)}`)],
          ['transaction hashes only', (b) => (b.transactions = (b.transactions as { hash: string }[]).map((tx) => tx.hash))],
          ['a recipient that is not an address', (b) => ((b.transactions as Record<string, unknown>[]).forEach((tx) => (tx.to = '0x1234')))],
        ];
        for (const [i, [what, change]] of lies.entries()) {
          // A full read, then sparse passes.
          h.clock.advance(FULL_READ_MS / 1000);
          hostile.set(null);
          await h.gateway.scanChain('4');
          await payNative(orders[i]!.address, POL);
          lie(change);
          const tampered = hostile.tampered;
          expect((await h.gateway.scanChain('4')).transfers, what).toBe(1);
          expect(hostile.tampered, `${what}: the blocks were asked for and lied about`).toBeGreaterThan(tampered);
          expect(await found(orders[i]!), what).toBe(1);
        }
        // A well-formed answer without the payment's transaction: missed until the next full read.
        h.clock.advance(FULL_READ_MS / 1000);
        hostile.set(null);
        await h.gateway.scanChain('4');
        const last = orders[4]!;
        await payNative(last.address, POL);
        lie((b) => (b.transactions = []));
        expect((await h.gateway.scanChain('4')).transfers).toBe(0);
        expect(await found(last)).toBe(0);
        h.clock.advance(FULL_READ_MS / 1000);
        await mine(chain, 1);
        expect((await h.gateway.scanChain('4')).transfers).toBe(1);
        expect(await found(last)).toBe(1);
      } finally {
        await h.close();
        await hostile.close();
      }
    });
  });
});
