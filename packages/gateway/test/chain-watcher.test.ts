// The chain watcher under stress, on anvil (issue 4): an RPC endpoint that fails mid-scan (a
// JSON-RPC proxy in front of anvil answering 500 or dropping connections), a provider refusing
// wide eth_getLogs ranges, a scan that crashes half-way and a new gateway on the same database
// finishing it, two instances sharing a network's lease, and the amount rules of PROTOCOL §10
// with real transfers: wrong token, over, under then topped up, late after close (and the 24 h
// watch after closure), an 18-decimal USDT (BNB Smart Chain style) next to a 6-decimal one.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { erc20Abi, type Address } from 'viem';
import { evmChainReader } from '../src/adapters/chain/evm/chain-reader.js';
import { NATIVE_COIN } from '../src/adapters/chain/evm/forwarder-plan.js';
import type { PaymentFacts } from '../src/app/record-payment.js';
import { startAnvil } from '../src/adapters/devnet/anvil.js';
import { scanChainOnce, WIDE_MAX_BLOCKS } from '../src/app/scan-chain.js';
import { createGateway, type Gateway } from '../src/cli/gateway.js';
import { WATCH_AFTER_CLOSE_SECONDS } from '../src/domain/lifecycle.js';
import { DATABASE_KINDS } from './databases.js';
import { minedReceipt } from '../src/adapters/chain/evm/clients.js';
import { startTestChain, type TestChain } from './evm-chain.js';
import { deploymentOn, mine, mineAtClock, notifyTypes, placeOrder, queryOrder, rpc } from './chain-setup.js';
import { api, startTestGateway, type TestGateway } from './harness.js';
import { startRpcProxy, type RpcProxy } from './rpc-proxy.js';

const CONFIRMATIONS = 3;
const LEASE_SECONDS = 30;
const silent = pino({ level: 'silent' });

describe.each(DATABASE_KINDS)('chain watcher on anvil (%s)', (kind) => {
  let chain: TestChain;
  let t: TestGateway;
  /** In front of anvil for Polygon (4), which fails over to anvil itself. */
  let proxy: RpcProxy;
  /** The only endpoint of Ethereum (2): when it fails the scan fails. */
  let lone: RpcProxy;
  let usdt6: Address;
  let usdc6: Address;
  let usdt18: Address;
  const others: Gateway[] = [];

  beforeAll(async () => {
    chain = await startTestChain();
    usdt6 = await chain.deployToken({ name: 'Tether USD (test)', symbol: 'USDT', decimals: 6 });
    usdc6 = await chain.deployToken({ name: 'USD Coin (test)', symbol: 'USDC', decimals: 6 });
    usdt18 = await chain.deployToken({ name: 'Tether USD BSC (test)', symbol: 'USDT', decimals: 18 });
    proxy = await startRpcProxy(chain.node.rpcUrl);
    lone = await startRpcProxy(chain.node.rpcUrl);
    const config = deploymentOn(chain, {
      '2': { rpcUrls: [lone.url], confirmations: CONFIRMATIONS, contracts: { USDT: usdt6, USDC: usdc6 } },
      '3': { rpcUrls: [chain.node.rpcUrl], confirmations: CONFIRMATIONS, contracts: { USDT: usdt18 } },
      '4': { rpcUrls: [proxy.url, chain.node.rpcUrl], confirmations: CONFIRMATIONS, contracts: { USDT: usdt6, USDC: usdc6 } },
    });
    t = await startTestGateway({ kind, config });
  }, 60_000);
  afterAll(async () => {
    for (const g of others) await g.close();
    await t?.close();
    await proxy?.close();
    await lone?.close();
    await chain?.stop();
  });

  /** Another gateway process on the same database (same configuration and clock). */
  async function secondGateway(): Promise<Gateway> {
    const g = await createGateway({ config: t.gateway.config, clock: t.clock, logger: silent, workers: false });
    others.push(g);
    return g;
  }

  const pay = async (token: Address, to: Address, amount: bigint) => (await chain.pay(token, to, amount)).transactionHash;
  const payments = async (requestNo: string) => (await queryOrder(t, requestNo)).payments as { tx_hash: string; amount: string; status: string; currency: string }[];

  it('splits eth_getLogs ranges a provider refuses as too wide and finds every transfer', async () => {
    const a = await placeOrder(t, { amount: '1' });
    const b = await placeOrder(t, { amount: '2' });
    await t.gateway.scanChain('4');
    proxy.maxLogRange(2);
    const txA = await pay(usdt6, a.address, 1_000_000n);
    await mine(chain, 4);
    const txB = await pay(usdt6, b.address, 2_000_000n);
    await mine(chain, 4);
    const r = await t.gateway.scanChain('4');
    proxy.maxLogRange(null);
    expect(r.scanned!.to - r.scanned!.from + 1).toBeGreaterThan(2);
    expect(proxy.stats.refusedRanges).toBeGreaterThan(0);
    expect(Math.max(...proxy.stats.logRanges)).toBeLessThanOrEqual(2);
    expect(r.transfers).toBe(2);
    expect(await queryOrder(t, a.requestNo)).toMatchObject({ pay_status: 'PAID', payments: [{ tx_hash: txA }] });
    expect(await queryOrder(t, b.requestNo)).toMatchObject({ pay_status: 'PAID', payments: [{ tx_hash: txB }] });
  });

  it.each([
    ['eth_getBlockReceipts', false],
    ['eth_getTransactionReceipt, from a provider without eth_getBlockReceipts', true],
  ] as const)("reads a block whose transfers to the watched addresses exceed the provider's result cap from the block's receipts (%s)", async (_how, noBlockReceipts) => {
    const dusted = await placeOrder(t, { amount: '1' });
    const other = await placeOrder(t, { amount: '2' });
    await t.gateway.scanChain('4');
    // Three transfers to one address and one to another, all in one block; the provider answers
    // at most two logs. Before, the scan stopped at that block for ever.
    const hashes: `0x${string}`[] = [];
    await rpc(chain, 'evm_setAutomine', [false]);
    try {
      for (const [to, amount] of [[dusted.address, 1n], [dusted.address, 2n], [other.address, 2_000_000n], [dusted.address, 999_997n]] as const) {
        hashes.push(await chain.payer.wallet.writeContract({ address: usdt6, abi: erc20Abi, functionName: 'transfer', args: [to, amount] }));
      }
      await mine(chain, 1);
    } finally {
      await rpc(chain, 'evm_setAutomine', [true]);
    }
    const receipts = await Promise.all(hashes.map((hash) => minedReceipt(chain.payer, hash)));
    expect(new Set(receipts.map((r) => r.blockNumber)).size).toBe(1);
    await mine(chain, CONFIRMATIONS);
    const receiptCallsBefore = proxy.stats.calls.eth_getBlockReceipts ?? 0;
    const txReceiptCallsBefore = proxy.stats.calls.eth_getTransactionReceipt ?? 0;
    proxy.maxLogResults(2);
    if (noBlockReceipts) proxy.unsupported(['eth_getBlockReceipts']);
    try {
      const r = await t.gateway.scanChain('4');
      expect(r.scanned!.to).toBe(r.head);
      expect(r.transfers).toBe(4);
    } finally {
      proxy.maxLogResults(null);
      proxy.unsupported([]);
    }
    expect(proxy.stats.cappedResults).toBeGreaterThan(0);
    // The block's receipts once per request of recipients that met the cap (the two addresses may be in two).
    expect((proxy.stats.calls.eth_getBlockReceipts ?? 0) - receiptCallsBefore).toBeGreaterThanOrEqual(1);
    expect((proxy.stats.calls.eth_getBlockReceipts ?? 0) - receiptCallsBefore).toBeLessThanOrEqual(2);
    // Without eth_getBlockReceipts, each of the block's four transactions' receipts, per request of recipients.
    const txReceiptCalls = (proxy.stats.calls.eth_getTransactionReceipt ?? 0) - txReceiptCallsBefore;
    if (noBlockReceipts) expect([4, 8]).toContain(txReceiptCalls);
    else expect(txReceiptCalls).toBe(0);
    const q = await queryOrder(t, dusted.requestNo);
    expect(q).toMatchObject({ pay_status: 'PAID' });
    expect((q.payments as { tx_hash: string }[]).map((p) => p.tx_hash).sort()).toEqual([hashes[0], hashes[1], hashes[3]].sort());
    expect(await queryOrder(t, other.requestNo)).toMatchObject({ pay_status: 'PAID', payments: [{ tx_hash: hashes[2] }] });
  });

  it("never reads a chain other than the network's: an endpoint serving another chain id is skipped, and with only such endpoints the cursor does not move", async () => {
    // Another chain far ahead of this one, as a URL copied from another network's configuration would be.
    const wrong = await startAnvil({ chainId: chain.node.chainId + 1 });
    const gateways: Gateway[] = [];
    /** A gateway on the same database whose network 4 reads `rpcUrls`. */
    const readingFrom = async (rpcUrls: string[]) => {
      const { deployment } = t.gateway.config;
      const config = { ...t.gateway.config, deployment: { ...deployment, networks: deployment.networks.map((n) => (n.id === '4' ? { ...n, chain: { ...n.chain, rpcUrls } } : n)) } };
      const g = await createGateway({ config, clock: t.clock, logger: silent, workers: false });
      gateways.push(g);
      return g;
    };
    const cursor = async () => (await t.gateway.db.kysely.selectFrom('chain_cursors').select(['next_block', 'scanned_hash']).where('network', '=', '4').executeTakeFirstOrThrow());
    try {
      await fetch(wrong.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'anvil_mine', params: ['0x3e8'] }) });
      const a = await placeOrder(t, { amount: '4' });
      await t.gateway.scanChain('4');
      const tx = await pay(usdt6, a.address, 4_000_000n);
      await mine(chain, CONFIRMATIONS);
      const before = await cursor();
      t.clock.advance(LEASE_SECONDS + 1);
      await expect((await readingFrom([wrong.rpcUrl])).scanChain('4')).rejects.toThrow(/serves chain id \d+, not the configured chain_id/);
      expect(await cursor()).toEqual(before);
      t.clock.advance(LEASE_SECONDS + 1);
      const r = await (await readingFrom([wrong.rpcUrl, chain.node.rpcUrl])).scanChain('4');
      expect(r.head).toBeLessThan(1000);
      expect(r.transfers).toBe(1);
      expect(await queryOrder(t, a.requestNo)).toMatchObject({ pay_status: 'PAID', payments: [{ tx_hash: tx }] });
    } finally {
      for (const g of gateways) await g.close();
      await wrong.stop();
      t.clock.advance(LEASE_SECONDS + 1);
    }
  });

  it('fails over to the next RPC URL when an endpoint fails mid-scan, and loses nothing', async () => {
    const a = await placeOrder(t, { amount: '3' });
    await t.gateway.scanChain('4');
    const txA = await pay(usdt6, a.address, 3_000_000n);
    // The head is read through the proxy, then its eth_getLogs answers 500.
    proxy.fault('http500', ['eth_getLogs']);
    const failedBefore = proxy.stats.failed;
    const r = await t.gateway.scanChain('4');
    expect(proxy.stats.failed).toBeGreaterThan(failedBefore);
    expect(r.transfers).toBe(1);
    // Now the proxy drops every connection: the reader stays on anvil.
    proxy.fault('drop');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    proxy.fault('none');
    expect(await queryOrder(t, a.requestNo)).toMatchObject({ pay_status: 'PAID', payments: [{ tx_hash: txA, status: 'FINAL' }] });
  });

  it('keeps the cursor when the only endpoint fails mid-scan, and finds the transfer once it answers again', async () => {
    const a = await placeOrder(t, { amount: '4', network: '2' });
    await t.gateway.scanChain('2');
    const txA = await pay(usdt6, a.address, 4_000_000n);
    await mine(chain, CONFIRMATIONS);
    lone.fault('drop', ['eth_getLogs']);
    await expect(t.gateway.scanChain('2')).rejects.toThrow();
    lone.fault('http500', ['eth_getLogs']);
    await expect(t.gateway.scanChain('2')).rejects.toThrow();
    lone.fault('none');
    const r = await t.gateway.scanChain('2');
    expect(r.transfers).toBe(1);
    await t.gateway.scanChain('2');
    expect(await queryOrder(t, a.requestNo)).toMatchObject({ pay_status: 'PAID', payments: [{ tx_hash: txA }] });
  });

  it('does not take a lagging endpoint for a reorg: token and native-coin (ETH) payments beyond its head stay counted', async () => {
    const token = await placeOrder(t, { amount: '2', network: '2' });
    const native = await placeOrder(t, { amount: '0.01', currency: 'ETH', network: '2' });
    await t.gateway.scanChain('2');
    await pay(usdt6, token.address, 2_000_000n);
    await chain.pay(NATIVE_COIN, native.address, 10n ** 16n);
    const seen = await t.gateway.scanChain('2');
    expect(seen.transfers).toBe(2);
    // The endpoint now answers a head two blocks behind the one the payments were seen at.
    lone.lag(2);
    const lagging = await t.gateway.scanChain('2');
    expect(lagging.reverted).toBe(0);
    for (const o of [token, native]) expect(await queryOrder(t, o.requestNo)).toMatchObject({ pay_status: 'PAYING', payments: [{ status: 'SEEN' }] });
    lone.lag(0);
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('2');
    for (const o of [token, native]) {
      const q = await queryOrder(t, o.requestNo);
      expect(q).toMatchObject({ pay_status: 'PAID', payments: [{ status: 'FINAL' }] });
      expect(q.pay_exception).toBeUndefined();
      expect(await notifyTypes(t, o.paymentOrderNo)).toEqual(['ORDER_PAID']);
    }
  });

  it('does not pass blocks the node answering its logs had not reached (a lagging backend behind a load balancer), and finds the transfer in them once it has', async () => {
    const a = await placeOrder(t, { amount: '6', network: '2' });
    await t.gateway.scanChain('2');
    await mine(chain, 2);
    // The head comes from an up-to-date node; the log requests reach one two blocks behind.
    lone.logsLag(2);
    const tx = await pay(usdt6, a.address, 6_000_000n);
    await mine(chain, 1);
    const block = Number((await chain.relayer.public.getTransactionReceipt({ hash: tx })).blockNumber);
    const lagging = await t.gateway.scanChain('2');
    expect(lagging.head).toBe(block + 1);
    expect(lagging.transfers).toBe(0);
    expect(lagging.scanned!.to).toBe(block - 1);
    lone.logsLag(0);
    const caught = await t.gateway.scanChain('2');
    expect(caught.transfers).toBe(1);
    expect(await queryOrder(t, a.requestNo)).toMatchObject({ pay_status: 'PAYING', payments: [{ tx_hash: tx, block_number: block }] });
  });

  it('loses nothing and counts nothing twice when a scan crashes half-way and a new gateway on the same database takes over', async () => {
    const a = await placeOrder(t, { amount: '30' });
    const b = await placeOrder(t, { amount: '8' });
    await t.gateway.scanChain('4');
    const txA1 = await pay(usdt6, a.address, 10_000_000n);
    const txA2 = await pay(usdt6, a.address, 20_000_000n);
    const txB = await pay(usdt6, b.address, 8_000_000n);
    await mine(chain, CONFIRMATIONS);
    // The running gateway holds the lease; let it run out, as when its process dies.
    t.clock.advance(LEASE_SECONDS + 1);
    // A scanner that stores the first order's transfers and then dies (before the cursor moves).
    const crashing: PaymentFacts = {
      transferObserved: (fact) => t.gateway.payments.transferObserved(fact),
      transfersObserved: (facts) => t.gateway.payments.transfersObserved(facts),
      async passObserved(facts) {
        await t.gateway.payments.passObserved(facts.filter((f) => f.paymentOrderNo === facts[0]!.paymentOrderNo));
        throw new Error('killed mid-scan');
      },
    };
    const network = t.gateway.config.deployment.networks.find((n) => n.id === '4')!;
    const deps = { store: t.gateway.store, clock: t.clock, payments: crashing, reader: evmChainReader([chain.node.rpcUrl]), network, log: silent, owner: 'crashed', leaseMs: LEASE_SECONDS * 1000, maxBlocks: 2000 };
    await expect(scanChainOnce(deps)).rejects.toThrow('killed mid-scan');
    expect((await payments(a.requestNo)).map((p) => p.tx_hash).sort()).toEqual([txA1, txA2].sort());
    expect(await payments(b.requestNo)).toEqual([]);

    // A new gateway on the same database: it waits for the dead scanner's lease, then rescans.
    const restarted = await secondGateway();
    expect((await restarted.scanChain('4')).leased).toBe(false);
    t.clock.advance(LEASE_SECONDS + 1);
    expect((await restarted.scanChain('4')).leased).toBe(true);
    await restarted.scanChain('4');
    const rowsA = await payments(a.requestNo);
    expect(rowsA.map((p) => p.tx_hash).sort()).toEqual([txA1, txA2].sort());
    expect(rowsA.every((p) => p.status === 'FINAL')).toBe(true);
    expect(await queryOrder(t, a.requestNo)).toMatchObject({ pay_status: 'PAID', real_pay_amount: '30' });
    expect(await queryOrder(t, b.requestNo)).toMatchObject({ pay_status: 'PAID', real_pay_amount: '8', payments: [{ tx_hash: txB }] });
    expect(await payments(b.requestNo)).toHaveLength(1);
    // Two transfers completing an order in one pass: PAID, with no transient UNDERPAID on the way.
    expect(await notifyTypes(t, a.paymentOrderNo)).toEqual(['ORDER_PAID']);
    expect((await queryOrder(t, a.requestNo)).pay_exception).toBeUndefined();
    expect(await notifyTypes(t, b.paymentOrderNo)).toEqual(['ORDER_PAID']);
  });

  it('reads the watched addresses a page at a time and still finds every transfer, whatever page it falls in', async () => {
    const orders = await Promise.all([1, 2, 3, 4, 5].map((n) => placeOrder(t, { amount: String(n) })));
    await t.gateway.scanChain('4');
    for (const [i, o] of orders.entries()) await pay(usdt6, o.address, BigInt(i + 1) * 1_000_000n);
    await mine(chain, CONFIRMATIONS);
    // The running gateway's lease runs out; a scanner reading two addresses per page takes over.
    t.clock.advance(LEASE_SECONDS + 1);
    const network = t.gateway.config.deployment.networks.find((n) => n.id === '4')!;
    const reader = evmChainReader([chain.node.rpcUrl]);
    const asked: number[] = [];
    const counting = { ...reader, tokenTransfers: (tokens: readonly string[], recipients: readonly string[], from: number, to: number) => (asked.push(recipients.length), reader.tokenTransfers(tokens, recipients, from, to)) };
    const deps = { store: t.gateway.store, clock: t.clock, payments: t.gateway.payments, reader: counting, network, log: silent, owner: 'paged', leaseMs: LEASE_SECONDS * 1000, maxBlocks: 2000, watchPageSize: 2 };
    const watchedNow = (await t.gateway.store.depositAddresses.listWatched('4', t.clock.seconds())).length;
    const r = await scanChainOnce(deps);
    expect(r.leased).toBe(true);
    expect(asked.every((n) => n <= 2)).toBe(true);
    expect(asked.reduce((a, b) => a + b, 0)).toBe(watchedNow);
    for (const [i, o] of orders.entries()) expect(await queryOrder(t, o.requestNo)).toMatchObject({ pay_status: 'PAID', real_pay_amount: String(i + 1) });
    t.clock.advance(LEASE_SECONDS + 1);
  });

  it('with many watched addresses reads every transfer of the tokens in fewer blocks, records those to watched addresses, and splits a refused range', async () => {
    const orders = await Promise.all([1, 2, 3].map((n) => placeOrder(t, { amount: String(n) })));
    // Network 4's USDC pair of another order: a USDT transfer to its address is recorded, not counted.
    const usdcOrder = await placeOrder(t, { amount: '9', currency: 'USDC' });
    await t.gateway.scanChain('4');
    const network = t.gateway.config.deployment.networks.find((n) => n.id === '4')!;
    // Through the proxy (which can refuse wide ranges), wrapped to see what is asked.
    const reader = evmChainReader([proxy.url]);
    const asked: (number | null)[] = [];
    const counting = { ...reader, tokenTransfers: (tokens: readonly string[], recipients: readonly string[] | null, from: number, to: number) => (asked.push(recipients === null ? null : recipients.length), reader.tokenTransfers(tokens, recipients, from, to)) };
    // Pages of two watched addresses, so most of the orders paid are not on the page the pass lists.
    const deps = { store: t.gateway.store, clock: t.clock, payments: t.gateway.payments, reader: counting, network, log: silent, owner: 'wide', leaseMs: LEASE_SECONDS * 1000, maxBlocks: 2000, wideScanFrom: 1, watchPageSize: 2 };
    const scan = () => {
      t.clock.advance(LEASE_SECONDS + 1);
      asked.length = 0;
      return scanChainOnce(deps);
    };
    expect((await t.gateway.store.depositAddresses.listWatched('4', t.clock.seconds())).length).toBeGreaterThan(1);
    const txs = [];
    for (const [i, o] of orders.entries()) txs.push(await pay(usdt6, o.address, BigInt(i + 1) * 1_000_000n));
    // Transfers of the same tokens to addresses nobody watches: read, and left alone.
    await pay(usdt6, '0x000000000000000000000000000000000000dEaD', 5_000_000n);
    await pay(usdc6, '0x00000000000000000000000000000000DeaDBeef', 6_000_000n);
    const stray = await pay(usdt6, usdcOrder.address, 2_000_000n);
    // Another event of the token (an Approval naming a deposit address): not a transfer, not asked for.
    await minedReceipt(chain.payer, await chain.payer.wallet.writeContract({ address: usdt6, abi: erc20Abi, functionName: 'approve', args: [orders[0]!.address, 7n] }));
    await mine(chain, CONFIRMATIONS);
    const r = await scan();
    expect(r.leased).toBe(true);
    expect(asked).toEqual([null]);
    expect(r.transfers).toBe(4);
    for (const [i, o] of orders.entries()) expect(await queryOrder(t, o.requestNo)).toMatchObject({ pay_status: 'PAID', real_pay_amount: String(i + 1), payments: [{ tx_hash: txs[i] }] });
    expect(await queryOrder(t, usdcOrder.requestNo)).toMatchObject({ pay_status: 'PENDING', payments: [{ tx_hash: stray, currency: usdt6.toLowerCase() }] });

    // A wide pass reads at most WIDE_MAX_BLOCKS, and a range the provider refuses is halved.
    const late = await placeOrder(t, { amount: '4' });
    await mine(chain, WIDE_MAX_BLOCKS + 20);
    const txLate = await pay(usdt6, late.address, 4_000_000n);
    await mine(chain, CONFIRMATIONS);
    proxy.maxLogRange(40);
    const refusedBefore = proxy.stats.refusedRanges;
    try {
      const first = await scan();
      expect(first.scanned!.to - first.scanned!.from + 1).toBe(WIDE_MAX_BLOCKS);
      expect(first.caughtUp).toBe(false);
      expect(await queryOrder(t, late.requestNo)).toMatchObject({ pay_status: 'PENDING' });
      const second = await scan();
      expect(second.scanned!.to).toBe(second.head);
      expect(second.transfers).toBe(1);
      expect(proxy.stats.refusedRanges).toBeGreaterThan(refusedBefore);
      expect(asked).toEqual([null]);
    } finally {
      proxy.maxLogRange(null);
    }
    expect(await queryOrder(t, late.requestNo)).toMatchObject({ pay_status: 'PAID', payments: [{ tx_hash: txLate, status: 'FINAL' }] });

    // A provider that will not answer every transfer of the tokens (too many, even in one block):
    // the pass asks by recipient instead, and misses nothing.
    const capped = await placeOrder(t, { amount: '5' });
    const txCapped = await pay(usdt6, capped.address, 5_000_000n);
    await mine(chain, CONFIRMATIONS);
    proxy.refuseUnfilteredLogs(true);
    try {
      const r3 = await scan();
      expect(r3.scanned!.to).toBe(r3.head);
      expect(asked[0]).toBeNull();
      expect(asked.slice(1).every((n) => n !== null && n <= 2)).toBe(true);
    } finally {
      proxy.refuseUnfilteredLogs(false);
    }
    expect(await queryOrder(t, capped.requestNo)).toMatchObject({ pay_status: 'PAID', payments: [{ tx_hash: txCapped, status: 'FINAL' }] });
    t.clock.advance(LEASE_SECONDS + 1);
  });

  it('stores each request\'s transfers while the next request runs, deciding each order once on all its facts of the pass', async () => {
    // One recipient per request: every order's transfers arrive in their own request.
    const network = t.gateway.config.deployment.networks.find((n) => n.id === '4')!;
    const reader = evmChainReader([chain.node.rpcUrl]);
    let failAt = -1;
    let calls = 0;
    const flaky = {
      ...reader,
      async tokenTransfers(tokens: readonly string[], recipients: readonly string[], from: number, to: number) {
        calls += 1;
        // Fails while the request before it is being stored (the scan is in the database then).
        if (calls === failAt) throw new Error('endpoint gone mid-pass');
        return reader.tokenTransfers(tokens, recipients, from, to);
      },
    };
    const deps = { store: t.gateway.store, clock: t.clock, payments: t.gateway.payments, reader: flaky, network, log: silent, owner: 'pipelined', leaseMs: LEASE_SECONDS * 1000, maxBlocks: 2000, recipientsPerRequest: 1 };
    const scan = () => {
      t.clock.advance(LEASE_SECONDS + 1);
      calls = 0;
      return scanChainOnce(deps);
    };
    // `first` has a transfer still confirming; in the pass where it becomes final a second one
    // arrives that completes the order: decided together, PAID without a transient UNDERPAID.
    const first = await placeOrder(t, { amount: '10' });
    const others3 = await Promise.all([3, 4, 5].map((n) => placeOrder(t, { amount: String(n) })));
    await scan();
    await pay(usdt6, first.address, 4_000_000n);
    await mine(chain, 1);
    await scan();
    expect(await queryOrder(t, first.requestNo)).toMatchObject({ pay_status: 'PAYING' });
    await pay(usdt6, first.address, 6_000_000n);
    for (const [i, o] of others3.entries()) await pay(usdt6, o.address, BigInt(i + 3) * 1_000_000n);
    await mine(chain, CONFIRMATIONS);
    // The second request fails while the first one's transfers are stored: the pass fails (no
    // unhandled rejection), the cursor stays, and the next pass finds everything once.
    failAt = 2;
    await expect(scan()).rejects.toThrow('endpoint gone mid-pass');
    failAt = -1;
    const r = await scan();
    expect(r.leased).toBe(true);
    expect(calls).toBeGreaterThanOrEqual(4);
    expect(await queryOrder(t, first.requestNo)).toMatchObject({ pay_status: 'PAID', real_pay_amount: '10' });
    expect((await queryOrder(t, first.requestNo)).pay_exception).toBeUndefined();
    expect(await notifyTypes(t, first.paymentOrderNo)).toEqual(['ORDER_PAID']);
    expect(await payments(first.requestNo)).toHaveLength(2);
    for (const [i, o] of others3.entries()) {
      expect(await queryOrder(t, o.requestNo)).toMatchObject({ pay_status: 'PAID', real_pay_amount: String(i + 3) });
      expect(await payments(o.requestNo)).toHaveLength(1);
    }
    t.clock.advance(LEASE_SECONDS + 1);
  });

  it('lets only one of two instances on one database scan a network at a time', async () => {
    const second = others[0] ?? (await secondGateway());
    t.clock.advance(LEASE_SECONDS + 1);
    const first = await t.gateway.scanChain('3');
    expect(first.leased).toBe(true);
    expect((await second.scanChain('3')).leased).toBe(false);
    // The holder renews its lease on each pass; the other still waits.
    t.clock.advance(LEASE_SECONDS - 5);
    expect((await t.gateway.scanChain('3')).leased).toBe(true);
    t.clock.advance(10);
    expect((await second.scanChain('3')).leased).toBe(false);
    // The holder stops scanning: once its lease ran out the other takes over, and the first waits.
    t.clock.advance(LEASE_SECONDS + 1);
    expect((await second.scanChain('3')).leased).toBe(true);
    expect((await t.gateway.scanChain('3')).leased).toBe(false);
    // Concurrent passes: exactly one holds the lease.
    t.clock.advance(LEASE_SECONDS + 1);
    const both = await Promise.all([t.gateway.scanChain('3'), second.scanChain('3')]);
    expect(both.filter((x) => x.leased)).toHaveLength(1);
    // Leave the lease to the test gateway for the next tests.
    t.clock.advance(LEASE_SECONDS + 1);
    for (const n of ['2', '3', '4']) expect((await t.gateway.scanChain(n)).leased).toBe(true);
  });

  it('records a transfer of the wrong token to a deposit address without counting it', async () => {
    const order = await placeOrder(t, { amount: '5' });
    await pay(usdc6, order.address, 1_500_000n);
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    const q = await queryOrder(t, order.requestNo);
    // Written in that token's decimals (the order has no USDC pair; it was written in base units, "1500000").
    expect(q).toMatchObject({ pay_status: 'PENDING', payments: [{ currency: usdc6.toLowerCase(), amount: '1.5', status: 'FINAL' }] });
    expect(q.pay_exception).toBeUndefined();
    await pay(usdt6, order.address, 5_000_000n);
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'PAID', real_pay_amount: '5' });
    expect(await payments(order.requestNo)).toHaveLength(2);
  });

  it('counts money sent to the address of the pair the payer chose first, then switched away from, and makes that the order\'s pair', async () => {
    const o = await placeOrder(t, { amount: '5' });
    const again = await fetch(`${t.baseUrl}/cashier/api/orders/${o.paymentOrderNo}/select?t=${o.token}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ network: '3', currency: 'USDT' }) });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { address: string }).address).not.toBe(o.address);
    // The payer's wallet still had the first address (USDT on Polygon).
    const tx = await pay(usdt6, o.address, 5_000_000n);
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    expect(await queryOrder(t, o.requestNo)).toMatchObject({ pay_status: 'PAID', real_pay_amount: '5', payments: [{ tx_hash: tx, network: '4', currency: 'USDT', status: 'FINAL' }] });
    expect(await notifyTypes(t, o.paymentOrderNo)).toEqual(['ORDER_PAID']);
  });

  it('marks an overpaid order PAID with OVERPAID', async () => {
    const order = await placeOrder(t, { amount: '10' });
    await pay(usdt6, order.address, 12_500_000n);
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'PAID', pay_exception: 'OVERPAID', real_pay_amount: '12.5' });
    // Both written by the same transition (listing order within it is not defined).
    expect((await notifyTypes(t, order.paymentOrderNo)).sort()).toEqual(['ORDER_EXCEPTION', 'ORDER_PAID']);
  });

  it('flags a short payment UNDERPAID once final, and a top-up before the deadline makes it PAID', async () => {
    const order = await placeOrder(t, { amount: '10' });
    await pay(usdt6, order.address, 4_000_000n);
    await t.gateway.scanChain('4');
    const seen = await queryOrder(t, order.requestNo);
    expect(seen).toMatchObject({ pay_status: 'PAYING' });
    expect(seen.pay_exception).toBeUndefined();
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'PAYING', pay_exception: 'UNDERPAID' });
    await pay(usdt6, order.address, 6_000_000n);
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'PAID', real_pay_amount: '10' });
    expect(await notifyTypes(t, order.paymentOrderNo)).toEqual(['ORDER_EXCEPTION', 'ORDER_PAID']);
  });

  it('pays an 18-decimal USDT on BNB Smart Chain (3) in 18-decimal units, next to the 6-decimal one on Polygon', async () => {
    const bsc = await placeOrder(t, { amount: '10.5', network: '3' });
    const polygon = await placeOrder(t, { amount: '10.5', network: '4' });
    expect(bsc.amountBase).toBe(10_500_000_000_000_000_000n);
    expect(polygon.amountBase).toBe(10_500_000n);
    // 10.5 in 6-decimal units is dust on the 18-decimal token.
    await pay(usdt18, bsc.address, 10_500_000n);
    await pay(usdt6, polygon.address, 10_500_000n);
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('3');
    await t.gateway.scanChain('4');
    expect(await queryOrder(t, bsc.requestNo)).toMatchObject({ pay_status: 'PAYING', pay_exception: 'UNDERPAID', payments: [{ amount: '0.0000000000105' }] });
    expect(await queryOrder(t, polygon.requestNo)).toMatchObject({ pay_status: 'PAID', real_pay_amount: '10.5', payments: [{ amount: '10.5' }] });
    await pay(usdt18, bsc.address, bsc.amountBase - 10_500_000n);
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('3');
    expect(await queryOrder(t, bsc.requestNo)).toMatchObject({ pay_status: 'PAID', real_pay_amount: '10.5' });
  });

  it('records a payment after closure as PAID_LATE, keeps the order CLOSED, and watches the address 24 h after closure', async () => {
    const order = await placeOrder(t, { amount: '6' });
    const closed = await api(t.baseUrl, { path: '/v4/pay/orders/close', body: { merchant_no: t.merchant.merchantNo, request_no: order.requestNo }, merchant: t.merchant, clock: t.clock });
    expect(closed.json.code, closed.json.message).toBe(0);
    const closedAt = t.clock.seconds();
    await pay(usdt6, order.address, 6_000_000n);
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'CLOSED', pay_exception: 'PAID_LATE', payments: [{ amount: '6', status: 'FINAL' }] });
    expect(await notifyTypes(t, order.paymentOrderNo)).toEqual(['ORDER_EXCEPTION']);

    const watched = async () => (await t.gateway.store.depositAddresses.listWatched('4', t.clock.seconds())).map((d) => d.address);
    // Still watched at the last second of the 24 h.
    t.clock.advance(closedAt + WATCH_AFTER_CLOSE_SECONDS - t.clock.seconds());
    expect(await watched()).toContain(order.address.toLowerCase());
    await pay(usdt6, order.address, 1_000_000n);
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    expect(await payments(order.requestNo)).toHaveLength(2);
    // A second later it is not, once the scan has covered the chain past the watch (it is judged
    // by the chain the scan reads, not the clock: a scan behind still reads blocks mined during
    // it): a transfer in a block after it is not recorded.
    t.clock.advance(1);
    expect(await watched()).not.toContain(order.address.toLowerCase());
    await mineAtClock(chain, t.clock);
    await t.gateway.scanChain('4');
    await pay(usdt6, order.address, 1_000_000n);
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    expect(await payments(order.requestNo)).toHaveLength(2);
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'CLOSED', pay_exception: 'PAID_LATE' });
  });
});
