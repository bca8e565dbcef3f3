// Settlement on a real EVM node (issue 5): orders are paid on anvil, the gateway's relayer
// distributes each forwarder's balance through the factory, and the order completes when that
// transaction is final. Exact balances are checked for every receiver, and the awkward paths:
// excess and shortfall, batches, a settlement transaction dropped by a reorganisation, one stuck
// pending and replaced, a relayer without gas, and a plan someone else distributed first.
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEventLogs, type Address } from 'viem';
import { forwarderFactoryAbi } from '../src/adapters/chain/evm/contract-artifacts.js';
import { abiPlan } from '../src/adapters/chain/evm/forwarder-factory.js';
import { NATIVE_COIN, orderRef } from '../src/adapters/chain/evm/forwarder-plan.js';
import { forwarderPlan } from '../src/adapters/chain/evm/forwarder-plan.js';
import { devnetAccount } from '../src/adapters/devnet/devnet.js';
import { bumpedFees, Settler } from '../src/app/settle.js';
import { settleClosedOrder } from '../src/app/settlement-admin.js';
import { evmRelayer } from '../src/adapters/chain/evm/relayer.js';
import { planFromJson } from '../src/domain/settlement-plan.js';
import { DATABASE_KINDS } from './databases.js';
import { minedReceipt } from '../src/adapters/chain/evm/clients.js';
import { freshAddress, startTestChain, type TestChain } from './evm-chain.js';
import { deploymentOn, FEE_ADDRESS, mine, mineAtClock, notifyTypes, placeOrder, queryOrder, rpc, type PlacedOrder } from './chain-setup.js';
import { api, startTestGateway, WALLET, type TestGateway } from './harness.js';
import { samples } from './metrics-page.js';

const CONFIRMATIONS = 3;
const USDT = 1_000_000n;
const RELAYER = devnetAccount(7);
export const SETTLEMENT_TEST_SETTINGS = { batchSize: 20, pollMs: 100, replaceAfterMs: 60_000, maxInFlight: 8, retryBaseMs: 1_000, leaseMs: 30_000 };

describe.each(DATABASE_KINDS)('settlement on anvil (%s)', (kind) => {
  let chain: TestChain;
  let usdt: Address;
  let t: TestGateway;
  /** Everything the gateway logs, at debug level: the relayer's key must never be in it. */
  const logged: string[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write: (chunk: Buffer, _enc, done) => (logged.push(chunk.toString()), done()) }));

  beforeAll(async () => {
    chain = await startTestChain();
    usdt = await chain.deployToken({ name: 'Tether USD (test)', symbol: 'USDT', decimals: 6 });
    t = await startTestGateway({
      kind,
      logger,
      config: {
        // Ethereum (2) on the same chain too, for a payer who switches networks; only Polygon settles.
        ...deploymentOn(chain, {
          '4': { rpcUrls: [chain.node.rpcUrl], confirmations: CONFIRMATIONS, contracts: { USDT: usdt } },
          '2': { rpcUrls: [chain.node.rpcUrl], confirmations: CONFIRMATIONS, contracts: { USDT: usdt } },
        }),
        relayers: { '4': { privateKey: RELAYER.privateKey, maxFeePerGas: 1_000_000_000_000n } },
        settlement: SETTLEMENT_TEST_SETTINGS,
      },
    });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await chain?.stop();
  });

  const balances = (token: Address, who: readonly Address[]) => Promise.all(who.map((a) => chain.balanceOf(token, a)));

  /** Pays `amount` to the order's address and scans until the payment is final. */
  async function pay(order: PlacedOrder, amount: bigint, token: Address = usdt): Promise<void> {
    await chain.pay(token, order.address, amount);
    await t.gateway.scanChain('4');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
  }

  /** One settlement pass that sends, then blocks on top until it is final, then the pass that completes. */
  async function settle(): Promise<void> {
    const sent = await t.gateway.settle('4');
    expect(sent.sent, JSON.stringify(sent)).toBeGreaterThan(0);
    await mine(chain, CONFIRMATIONS - 1);
    const done = await t.gateway.settle('4');
    expect(done.settled).toBe(sent.sent);
  }

  /** Runs `fn` with blocks mined only on request (transactions wait in the mempool). */
  async function withoutAutomine(fn: () => Promise<void>): Promise<void> {
    await rpc(chain, 'evm_setAutomine', [false]);
    try {
      await fn();
    } finally {
      await rpc(chain, 'evm_setAutomine', [true]);
    }
  }

  /** A settler of Polygon (4) signing with devnet account `account` (a relayer key other than the gateway's), as `owner`. */
  const settlerWithKey = (account: number, owner: string) =>
    new Settler({
      store: t.gateway.store,
      clock: t.clock,
      ids: t.gateway.ids,
      chain: evmRelayer({ rpcUrls: [chain.node.rpcUrl], chainId: chain.node.chainId, factory: chain.factory.factory, privateKey: devnetAccount(account).privateKey }),
      network: t.gateway.config.deployment.networks.find((n) => n.id === '4')!,
      log: t.gateway.logger,
      owner,
      leaseMs: 30_000,
      settings: { ...SETTLEMENT_TEST_SETTINGS, maxFeePerGas: 1_000_000_000_000n },
    });

  const distributionsOf = async (paymentOrderNo: string) => {
    const logs = await chain.relayer.public.getLogs({ address: chain.factory.factory, fromBlock: 0n, toBlock: 'latest' });
    return parseEventLogs({ abi: forwarderFactoryAbi, logs, eventName: 'Distribution' }).filter((e) => e.args.orderRef === orderRef(paymentOrderNo));
  };
  /** `settler`'s passes, blocks mined between them, complete `order`: distributed once, nothing left at its address; then its lease goes. */
  async function completesOnce(order: PlacedOrder, settler: Settler): Promise<void> {
    for (let i = 0; i < 4 && (await queryOrder(t, order.requestNo)).pay_status !== 'COMPLETED'; i += 1) {
      await settler.settleOnce();
      await mine(chain, CONFIRMATIONS);
    }
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'COMPLETED' });
    expect(await distributionsOf(order.paymentOrderNo)).toHaveLength(1);
    expect(await chain.balanceOf(usdt, order.address)).toBe(0n);
    await settler.release();
  }


  it('settles a three-way split plus fee: every receiver gets exactly its amount, the order completes and the notification lists the settlements', async () => {
    const seller = freshAddress();
    const other = freshAddress();
    const order = await placeOrder(t, {
      amount: '100',
      overrides: { divide_detail: { seller_amount: '80', seller_addr: seller, merchant_amount: '15', other_details: [{ receiver_addr: other, amount: '5' }] } },
    });
    await pay(order, 100n * USDT);
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'PAID', settlements: [] });
    const before = await balances(usdt, [WALLET, FEE_ADDRESS]);
    const sent = await t.gateway.settle('4');
    expect(sent).toMatchObject({ leased: true, sent: 1 });
    const inFlight = await queryOrder(t, order.requestNo);
    expect(inFlight.pay_status).toBe('PAID');
    expect((inFlight.settlements as { status: string }[]).every((s) => s.status === 'SENT')).toBe(true);
    await mine(chain, CONFIRMATIONS - 1);
    expect((await t.gateway.settle('4')).settled).toBe(1);

    const fee = 500_000n; // 0.5 % of 100 USDT (above the 0.10 USD minimum)
    expect(await balances(usdt, [seller, other])).toEqual([80n * USDT, 5n * USDT]);
    const after = await balances(usdt, [WALLET, FEE_ADDRESS]);
    expect(after[0]! - before[0]!).toBe(15n * USDT - fee);
    expect(after[1]! - before[1]!).toBe(fee);
    expect(await chain.balanceOf(usdt, order.address)).toBe(0n);

    const done = await queryOrder(t, order.requestNo);
    const settlement = await t.gateway.store.settlements.get(order.paymentOrderNo);
    const txHash = settlement!.txHash;
    expect(done).toMatchObject({ pay_status: 'COMPLETED' });
    expect(done.completed_time).toBeGreaterThan(0);
    expect(done.settlements).toEqual([
      { receiver_addr: seller.toLowerCase(), role: 'SELLER', amount: '80', network: '4', currency: 'USDT', tx_hash: txHash, status: 'SETTLED' },
      { receiver_addr: other.toLowerCase(), role: 'OTHER', amount: '5', network: '4', currency: 'USDT', tx_hash: txHash, status: 'SETTLED' },
      { receiver_addr: WALLET.toLowerCase(), role: 'MERCHANT', amount: '14.5', network: '4', currency: 'USDT', tx_hash: txHash, status: 'SETTLED' },
      { receiver_addr: FEE_ADDRESS.toLowerCase(), role: 'FEE', amount: '0.5', network: '4', currency: 'USDT', tx_hash: txHash, status: 'SETTLED' },
    ]);
    expect(await notifyTypes(t, order.paymentOrderNo)).toEqual(['ORDER_PAID', 'ORDER_COMPLETED']);
    const completed = (await t.gateway.store.notifications.listByOrder(order.paymentOrderNo)).find((n) => n.notifyType === 'ORDER_COMPLETED')!;
    expect(JSON.parse(completed.payload)).toMatchObject({ pay_status: 'COMPLETED', settlements: done.settlements });
    // Passes after completion change nothing and send nothing.
    await mine(chain, 2);
    expect(await t.gateway.settle('4')).toMatchObject({ sent: 0, settled: 0 });
    expect(await distributionsOf(order.paymentOrderNo)).toHaveLength(1);
  });

  it('settles an order paid in the native coin', async () => {
    const order = await placeOrder(t, { amount: '2', currency: 'POL' });
    const POL = 10n ** 18n;
    await pay(order, 2n * POL, NATIVE_COIN);
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'PAID' });
    const before = await balances(NATIVE_COIN, [WALLET, FEE_ADDRESS]);
    await settle();
    const after = await balances(NATIVE_COIN, [WALLET, FEE_ADDRESS]);
    const plan = planFromJson((await t.gateway.store.depositAddresses.get(order.paymentOrderNo, '4', 'POL'))!.plan);
    const fee = plan.receivers.find((r) => r.role === 'FEE')!.amount;
    expect(after[1]! - before[1]!).toBe(fee);
    expect(after[0]! - before[0]!).toBe(2n * POL - fee);
    expect(await chain.balanceOf(NATIVE_COIN, order.address)).toBe(0n);
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'COMPLETED', settlements: [{ role: 'MERCHANT', status: 'SETTLED' }, { role: 'FEE', status: 'SETTLED' }] });
  });

  it('flags money paid again after the distribution, final after the completion, PAID_LATE (it stays at the address), not OVERPAID', async () => {
    const order = await placeOrder(t, { amount: '2' });
    await pay(order, 2n * USDT);
    expect((await t.gateway.settle('4')).sent).toBe(1); // the distribution is mined (automine)
    // The payer pays again: after the distribution, while the order is still PAID.
    await chain.pay(usdt, order.address, 1n * USDT);
    await t.gateway.scanChain('4');
    expect((await queryOrder(t, order.requestNo)).pay_status).toBe('PAID');
    await mine(chain, CONFIRMATIONS - 1);
    expect((await t.gateway.settle('4')).settled).toBe(1);
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    const q = await queryOrder(t, order.requestNo);
    expect(q.pay_status).toBe('COMPLETED');
    expect(await chain.balanceOf(usdt, order.address)).toBe(1n * USDT);
    expect(q.pay_exception).toBe('PAID_LATE');
  });

  it('does not take native coin that arrived before the settlement and went out with it for a reverted payment, nor for a new one once it is final', async () => {
    const POL = 10n ** 18n;
    const order = await placeOrder(t, { amount: '2', currency: 'POL' });
    await pay(order, 2n * POL, NATIVE_COIN);
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'PAID' });
    // More arrives, seen but not final, and the settlement sweeps it out with the rest.
    await chain.pay(NATIVE_COIN, order.address, POL);
    await t.gateway.scanChain('4');
    const sent = await t.gateway.settle('4');
    expect(sent.sent).toBeGreaterThan(0);
    expect(await chain.balanceOf(NATIVE_COIN, order.address)).toBe(0n);
    // The settlement is mined, not final: the address waits; nothing is reverted.
    const between = await t.gateway.scanChain('4');
    expect(between.reverted).toBe(0);
    await mine(chain, CONFIRMATIONS - 1);
    expect((await t.gateway.settle('4')).settled).toBe(sent.sent);
    await mine(chain, CONFIRMATIONS);
    expect(await t.gateway.scanChain('4')).toMatchObject({ transfers: 0, reverted: 0 });
    const done = await queryOrder(t, order.requestNo);
    expect(done.pay_status).toBe('COMPLETED');
    expect((done.payments as { amount: string; status: string }[]).map((p) => [p.amount, p.status])).toEqual([
      ['2', 'FINAL'],
      ['1', 'FINAL'],
    ]);
    // Nothing reverted; the extra coin, seen while PAID and final after the completion, is
    // OVERPAID (it went out to the merchant with the settlement).
    expect(done.pay_exception).toBe('OVERPAID');
    const notes = await t.gateway.store.notifications.listByOrder(order.paymentOrderNo);
    expect(notes.map((n) => [n.notifyType, (JSON.parse(n.payload) as { pay_exception?: string }).pay_exception ?? null])).toEqual([
      ['ORDER_PAID', null],
      ['ORDER_COMPLETED', null],
      ['ORDER_EXCEPTION', 'OVERPAID'],
    ]);
  });

  it('records money sent again after completion (token and native coin) as PAID_LATE and tells the merchant; the addresses are watched 24 h after completion', async () => {
    const POL = 10n ** 18n;
    const token = await placeOrder(t, { amount: '3' });
    const native = await placeOrder(t, { amount: '1', currency: 'POL' });
    await pay(token, 3n * USDT);
    await pay(native, 1n * POL, NATIVE_COIN);
    await settle();
    for (const o of [token, native]) expect(await queryOrder(t, o.requestNo)).toMatchObject({ pay_status: 'COMPLETED' });
    const completedAt = t.clock.seconds();
    // The payers pay a second time: the forwarders already distributed, the money stays there.
    await pay(token, 3n * USDT);
    await pay(native, POL / 2n, NATIVE_COIN);
    for (const [o, amounts] of [[token, ['3', '3']], [native, ['1', '0.5']]] as const) {
      const q = await queryOrder(t, o.requestNo);
      expect(q).toMatchObject({ pay_status: 'COMPLETED', pay_exception: 'PAID_LATE' });
      expect((q.payments as { amount: string; status: string }[]).map((p) => [p.amount, p.status])).toEqual(amounts.map((a) => [a, 'FINAL']));
      expect(await notifyTypes(t, o.paymentOrderNo)).toEqual(['ORDER_PAID', 'ORDER_COMPLETED', 'ORDER_EXCEPTION']);
    }
    const watched = async () => (await t.gateway.store.depositAddresses.listWatched('4', t.clock.seconds())).map((d) => d.address);
    t.clock.advance(completedAt + 24 * 3600 - t.clock.seconds());
    expect(await watched()).toEqual(expect.arrayContaining([token.address.toLowerCase(), native.address.toLowerCase()]));
    t.clock.advance(1);
    const after = await watched();
    for (const o of [token, native]) expect(after).not.toContain(o.address.toLowerCase());
  });

  it('records money at the address of a pair the payer switched away from as PAID_LATE as the order completes, and tells the merchant once', async () => {
    // USDT on Ethereum chosen first, then on Polygon, which is paid.
    const first = await placeOrder(t, { amount: '2', network: '2' });
    const res = await fetch(`${t.baseUrl}/cashier/api/orders/${first.paymentOrderNo}/select?t=${first.token}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ network: '4', currency: 'USDT' }),
    });
    expect(res.status).toBe(200);
    const order = { ...first, address: ((await res.json()) as { address: Address }).address };
    // ORDER_COMPLETED and ORDER_EXCEPTION come from one decision (one sequence): compared as a set.
    const notes = (types: string[]) => [...types].sort();
    expect(order.address).not.toBe(first.address);
    await pay(order, 2n * USDT);
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'PAID' });
    // While the order is PAID, the payer also pays the Ethereum address handed out first: it
    // counts for nothing (the order's pair is Polygon's), and the open order raises nothing.
    await t.gateway.scanChain('2');
    await chain.pay(usdt, first.address, 2n * USDT);
    await t.gateway.scanChain('2');
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'PAID', real_pay_amount: '2' });
    // The settlement pays out the Polygon address only: the order completes with the money at the
    // Ethereum address flagged as late money for the merchant to resolve.
    await settle();
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'COMPLETED', pay_exception: 'PAID_LATE' });
    expect(notes(await notifyTypes(t, order.paymentOrderNo))).toEqual(['ORDER_COMPLETED', 'ORDER_EXCEPTION', 'ORDER_PAID']);
    // That transfer becoming final changes nothing more.
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('2');
    const q = await queryOrder(t, order.requestNo);
    expect(q).toMatchObject({ pay_status: 'COMPLETED', pay_exception: 'PAID_LATE', real_pay_amount: '2' });
    expect((q.payments as { network: string; status: string }[]).map((p) => [p.network, p.status]).sort()).toEqual([['2', 'FINAL'], ['4', 'FINAL']]);
    expect(notes(await notifyTypes(t, order.paymentOrderNo))).toEqual(['ORDER_COMPLETED', 'ORDER_EXCEPTION', 'ORDER_PAID']);
    // More of it after completion: recorded, and the standing flag is not notified again.
    await chain.pay(usdt, first.address, 1n * USDT);
    await t.gateway.scanChain('2');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('2');
    expect(((await queryOrder(t, order.requestNo)).payments as unknown[]).length).toBe(3);
    expect(notes(await notifyTypes(t, order.paymentOrderNo))).toEqual(['ORDER_COMPLETED', 'ORDER_EXCEPTION', 'ORDER_PAID']);
  });

  it('pays the excess of an overpaid order to the merchant', async () => {
    const seller = freshAddress();
    const order = await placeOrder(t, { amount: '10', overrides: { divide_detail: { seller_amount: '6', seller_addr: seller, merchant_amount: '4' } } });
    await pay(order, 13n * USDT);
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'PAID', pay_exception: 'OVERPAID' });
    const [walletBefore, feeBefore] = await balances(usdt, [WALLET, FEE_ADDRESS]);
    await settle();
    const fee = 100_000n; // the 0.10 USD minimum (0.5 % of 10 is 0.05)
    expect(await chain.balanceOf(usdt, seller)).toBe(6n * USDT);
    expect((await chain.balanceOf(usdt, WALLET)) - walletBefore!).toBe(4n * USDT - fee + 3n * USDT);
    expect((await chain.balanceOf(usdt, FEE_ADDRESS)) - feeBefore!).toBe(fee);
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'COMPLETED', pay_exception: 'OVERPAID' });
  });

  it('shares what arrived of an underpaid order pro rata once it expires, and the order stays closed', async () => {
    const seller = freshAddress();
    const order = await placeOrder(t, { amount: '10', overrides: { divide_detail: { seller_amount: '6', seller_addr: seller, merchant_amount: '4' } } });
    await pay(order, 5n * USDT);
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'PAYING', pay_exception: 'UNDERPAID' });
    expect((await t.gateway.settle('4')).sent).toBe(0);
    const [walletBefore, feeBefore] = await balances(usdt, [WALLET, FEE_ADDRESS]);
    t.clock.advance(8 * 24 * 3600);
    // The deadline closes the order once a scan has covered the chain until it.
    await t.gateway.expireOrders();
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'PAYING' });
    await mineAtClock(chain, t.clock);
    expect((await t.gateway.scanChain('4')).caughtUp).toBe(true);
    await t.gateway.expireOrders();
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'CLOSED', close_reason: 'EXPIRED', pay_exception: 'UNDERPAID' });
    await settle();
    // Half of each planned amount: seller 3, merchant (4 - 0.1) / 2 = 1.95, fee 0.05.
    expect(await chain.balanceOf(usdt, seller)).toBe(3n * USDT);
    expect((await chain.balanceOf(usdt, WALLET)) - walletBefore!).toBe(1_950_000n);
    expect((await chain.balanceOf(usdt, FEE_ADDRESS)) - feeBefore!).toBe(50_000n);
    const closed = await queryOrder(t, order.requestNo);
    expect(closed).toMatchObject({ pay_status: 'CLOSED', completed_time: 0 });
    expect(closed.settlements).toMatchObject([
      { role: 'SELLER', amount: '3', status: 'SETTLED' },
      { role: 'MERCHANT', amount: '1.95', status: 'SETTLED' },
      { role: 'FEE', amount: '0.05', status: 'SETTLED' },
    ]);
  });

  it('sees native coin sent to an expired order after its forwarder was emptied, in full, as PAID_LATE', async () => {
    const POL = 10n ** 18n;
    const order = await placeOrder(t, { amount: '4', currency: 'POL' });
    await pay(order, 1n * POL, NATIVE_COIN);
    t.clock.advance(8 * 24 * 3600);
    await mineAtClock(chain, t.clock);
    await t.gateway.scanChain('4');
    await t.gateway.expireOrders();
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'CLOSED', pay_exception: 'UNDERPAID' });
    await settle();
    expect(await chain.balanceOf(NATIVE_COIN, order.address)).toBe(0n);
    await t.gateway.scanChain('4');
    // Less than what was credited before the settlement: it must still count, and only it.
    await pay(order, POL / 4n, NATIVE_COIN);
    const late = await queryOrder(t, order.requestNo);
    expect(late).toMatchObject({ pay_status: 'CLOSED', pay_exception: 'PAID_LATE' });
    expect((late.payments as { amount: string; status: string }[]).map((p) => [p.amount, p.status])).toEqual([
      ['1', 'FINAL'],
      ['0.25', 'FINAL'],
    ]);
    await mine(chain, 2);
    await t.gateway.scanChain('4');
    expect((await queryOrder(t, order.requestNo)).payments).toHaveLength(2);
  });

  it('settles by hand what arrived at a closed order (PAID_LATE), to the plan’s receivers, and the order stays closed', async () => {
    const seller = freshAddress();
    const order = await placeOrder(t, { amount: '10', overrides: { divide_detail: { seller_amount: '6', seller_addr: seller, merchant_amount: '4' } } });
    const deps = { store: t.gateway.store, clock: t.clock };
    expect(await settleClosedOrder(deps, order.paymentOrderNo)).toMatchObject({ ok: false, message: expect.stringMatching(/is PENDING/) });
    const closed = await api(t.baseUrl, { path: '/v4/pay/orders/close', body: { request_no: order.requestNo, merchant_no: t.merchant.merchantNo }, merchant: t.merchant, clock: t.clock });
    expect(closed.json.code).toBe(0);
    expect(await settleClosedOrder(deps, order.paymentOrderNo)).toMatchObject({ ok: false, message: expect.stringMatching(/nothing final has arrived/) });
    await pay(order, 10n * USDT);
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'CLOSED', pay_exception: 'PAID_LATE' });
    // Never settled on its own…
    expect(await t.gateway.store.settlements.get(order.paymentOrderNo)).toBeNull();
    // …until the operator asks (once; asking again answers the same settlement). Scheduling it
    // moves the order's version (its pair is fixed from then on: a concurrent pass retries).
    const version = (await t.gateway.store.orders.get(order.paymentOrderNo))!.version;
    expect(await settleClosedOrder(deps, order.paymentOrderNo)).toMatchObject({ ok: true, scheduled: true, settlement: { status: 'DUE' } });
    expect((await t.gateway.store.orders.get(order.paymentOrderNo))!.version).toBe(version + 1);
    expect(await settleClosedOrder(deps, order.paymentOrderNo)).toMatchObject({ ok: true, scheduled: false });
    expect((await t.gateway.store.orders.get(order.paymentOrderNo))!.version).toBe(version + 1);
    await settle();
    expect(await chain.balanceOf(usdt, seller)).toBe(6n * USDT);
    expect(await queryOrder(t, order.requestNo)).toMatchObject({
      pay_status: 'CLOSED',
      pay_exception: 'PAID_LATE',
      settlements: [{ role: 'SELLER', amount: '6', status: 'SETTLED' }, { role: 'MERCHANT', status: 'SETTLED' }, { role: 'FEE', status: 'SETTLED' }],
    });
  });

  it('settles several due orders in one batch transaction', async () => {
    const orders = await Promise.all([1, 2, 3, 4].map((n) => placeOrder(t, { amount: String(n) })));
    for (const [i, o] of orders.entries()) await chain.pay(usdt, o.address, BigInt(i + 1) * USDT);
    await t.gateway.scanChain('4');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    await settle();
    const hashes = new Set(await Promise.all(orders.map(async (o) => (await t.gateway.store.settlements.get(o.paymentOrderNo))!.txHash)));
    expect(hashes.size).toBe(1);
    for (const o of orders) expect(await queryOrder(t, o.requestNo)).toMatchObject({ pay_status: 'COMPLETED' });
  });

  it('sends a settlement transaction again when a reorganisation drops it, and pays once', async () => {
    const seller = freshAddress();
    const order = await placeOrder(t, { amount: '10', overrides: { divide_detail: { seller_amount: '6', seller_addr: seller, merchant_amount: '4' } } });
    await pay(order, 10n * USDT);
    const snapshot = (await rpc(chain, 'evm_snapshot')) as string;
    expect((await t.gateway.settle('4')).sent).toBe(1);
    const first = (await t.gateway.store.settlements.get(order.paymentOrderNo))!.txHash!;
    // Automine mines it on arrival, but the node may answer before the block is in.
    await minedReceipt(chain.relayer, first as `0x${string}`);
    expect(await chain.balanceOf(usdt, seller)).toBe(6n * USDT);
    // The block with the settlement is replaced by empty ones: the transaction is gone.
    await rpc(chain, 'evm_revert', [snapshot]);
    await mine(chain, 1);
    expect(await chain.balanceOf(usdt, seller)).toBe(0n);
    const again = await t.gateway.settle('4');
    expect(again).toMatchObject({ rebroadcast: 1, sent: 0 });
    await mine(chain, CONFIRMATIONS - 1);
    expect((await t.gateway.settle('4')).settled).toBe(1);
    expect(await chain.balanceOf(usdt, seller)).toBe(6n * USDT);
    expect((await t.gateway.store.settlements.get(order.paymentOrderNo))!.txHash).toBe(first);
    expect(await distributionsOf(order.paymentOrderNo)).toHaveLength(1);
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'COMPLETED' });
  });

  it('replaces a settlement transaction stuck pending with higher fees; one of them is mined', async () => {
    const order = await placeOrder(t, { amount: '3' });
    await pay(order, 3n * USDT);
    await withoutAutomine(async () => {
      expect((await t.gateway.settle('4')).sent).toBe(1);
      const first = (await t.gateway.store.settlements.get(order.paymentOrderNo))!;
      const tx = (await t.gateway.store.settlements.getTx(first.txId!))!;
      expect(tx.status).toBe('SENT');
      // Not yet: a pass before the replacement delay leaves it alone.
      expect((await t.gateway.settle('4')).replaced).toBe(0);
      t.clock.advance(SETTLEMENT_TEST_SETTINGS.replaceAfterMs / 1000);
      expect((await t.gateway.settle('4')).replaced).toBe(1);
      const replaced = (await t.gateway.store.settlements.getTx(first.txId!))!;
      expect(replaced.hashes).toHaveLength(2);
      expect(replaced.nonce).toBe(tx.nonce);
      expect(replaced.maxFeePerGas > tx.maxFeePerGas).toBe(true);
      await mine(chain, CONFIRMATIONS);
    });
    expect((await t.gateway.settle('4')).settled).toBe(1);
    const settled = (await t.gateway.store.settlements.get(order.paymentOrderNo))!;
    const tx = (await t.gateway.store.settlements.getTx(settled.txId!))!;
    expect(tx.status).toBe('FINAL');
    expect(settled.txHash).toBe(tx.minedHash);
    expect(tx.hashes).toContain(tx.minedHash);
    expect(await distributionsOf(order.paymentOrderNo)).toHaveLength(1);
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'COMPLETED' });
  });

  it('re-signs with higher fees a settlement transaction the node dropped from its mempool, instead of rebroadcasting it forever', async () => {
    const order = await placeOrder(t, { amount: '2' });
    await pay(order, 2n * USDT);
    await withoutAutomine(async () => {
      expect((await t.gateway.settle('4')).sent).toBe(1);
      const st = (await t.gateway.store.settlements.get(order.paymentOrderNo))!;
      const first = (await t.gateway.store.settlements.getTx(st.txId!))!;
      // Evicted (as a node does with the cheapest transactions when its pool is full).
      await rpc(chain, 'anvil_dropTransaction', [first.txHash]);
      // Before the replacement delay it is broadcast again as it was…
      expect(await t.gateway.settle('4')).toMatchObject({ rebroadcast: 1, replaced: 0 });
      await rpc(chain, 'anvil_dropTransaction', [first.txHash]);
      // …after it, re-signed at the same nonce with higher fees.
      t.clock.advance(SETTLEMENT_TEST_SETTINGS.replaceAfterMs / 1000);
      expect(await t.gateway.settle('4')).toMatchObject({ replaced: 1 });
      const replaced = (await t.gateway.store.settlements.getTx(st.txId!))!;
      expect(replaced.nonce).toBe(first.nonce);
      expect(replaced.hashes).toHaveLength(2);
      expect(replaced.maxFeePerGas > first.maxFeePerGas).toBe(true);
      await mine(chain, CONFIRMATIONS);
    });
    expect((await t.gateway.settle('4')).settled).toBe(1);
    const tx = (await t.gateway.store.settlements.getTx((await t.gateway.store.settlements.get(order.paymentOrderNo))!.txId!))!;
    expect(tx.minedHash).toBe(tx.hashes[1]);
    expect(await distributionsOf(order.paymentOrderNo)).toHaveLength(1);
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'COMPLETED' });
  });

  it('takes a plan that would revert out of the batch, names why, and settles the others', async () => {
    const POL = 10n ** 18n;
    // A receiver that refuses the native coin: a contract without receive() (the token contract).
    const refusing = await placeOrder(t, { amount: '2', currency: 'POL', overrides: { divide_detail: { seller_amount: '1', seller_addr: usdt, merchant_amount: '1' } } });
    const fine = await placeOrder(t, { amount: '3', currency: 'POL' });
    await chain.pay(NATIVE_COIN, refusing.address, 2n * POL);
    await chain.pay(NATIVE_COIN, fine.address, 3n * POL);
    await t.gateway.scanChain('4');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    expect((await t.gateway.store.orders.get(refusing.paymentOrderNo))!.state.status).toBe('PAID');
    expect((await t.gateway.settle('4')).sent).toBe(1);
    const deferred = (await t.gateway.store.settlements.get(refusing.paymentOrderNo))!;
    expect(deferred).toMatchObject({ status: 'DUE', attempts: 1 });
    expect(deferred.lastError).toMatch(/NativeTransferFailed/);
    expect(deferred.nextAttemptAt).toBeGreaterThan(t.clock.nowMs());
    expect((await t.gateway.store.settlements.get(fine.paymentOrderNo))!.status).toBe('SENT');
    await mine(chain, CONFIRMATIONS - 1);
    expect((await t.gateway.settle('4')).settled).toBe(1);
    expect(await queryOrder(t, fine.requestNo)).toMatchObject({ pay_status: 'COMPLETED' });
    // The money of the refused plan stays at its address, the order PAID, retried with a growing delay.
    expect(await chain.balanceOf(NATIVE_COIN, refusing.address)).toBe(2n * POL);
    expect(await queryOrder(t, refusing.requestNo)).toMatchObject({ pay_status: 'PAID' });
  });

  it('after a relayer key change, never re-signs the old key’s transactions; one pending for the replacement delay is given back and sent with the new key, and the order is distributed once', async () => {
    const order = await placeOrder(t, { amount: '2' });
    await pay(order, 2n * USDT);
    const rotated = settlerWithKey(6, 'rotated-key');
    let txId = '';
    await withoutAutomine(async () => {
      expect((await t.gateway.settle('4')).sent).toBe(1);
      txId = (await t.gateway.store.settlements.get(order.paymentOrderNo))!.txId!;
      // The old process is gone (its lease runs out) and the new one, with another key, takes over
      // before the replacement delay: it follows the old transaction, cannot re-sign it.
      t.clock.advance(31);
      expect(await rotated.settleOnce()).toMatchObject({ leased: true, replaced: 0, sent: 0 });
      expect(await t.gateway.store.settlements.getTx(txId)).toMatchObject({ status: 'SENT', hashes: [txId] });
      // Still pending past the delay: only the old key could reprice it, so its order is due
      // again and goes out with the new key (was: it waited for the mempool to evict it).
      t.clock.advance(120);
      expect(await rotated.settleOnce()).toMatchObject({ leased: true, replaced: 0, sent: 1 });
      expect(await t.gateway.store.settlements.getTx(txId)).toMatchObject({ status: 'DROPPED', hashes: [txId] });
      await mine(chain, CONFIRMATIONS);
    });
    // Both are mined: the first distributes, the factory skips the plan in the other; the gateway
    // follows (or adopts) the one that distributed.
    await completesOnce(order, rotated);
  });

  // Operator drill (relayer key change with a settlement pending under the old key): the new key's
  // transaction was estimated against the pending block, which holds the old key's distribution of
  // the same plan, so its gas limit covered only the factory's skip (63,434 gas for a 115,320 gas
  // distribution). Mined first, it ran out of gas and reverted: the relayer's gas lost, the order
  // deferred with "reverted on chain".
  it('after a relayer key change, the new key’s transaction mined before the old one’s distributes (its gas is estimated on the latest block, not the pending one)', async () => {
    const order = await placeOrder(t, { amount: '2' });
    await pay(order, 2n * USDT);
    const rotated = settlerWithKey(8, 'rotated-key-2');
    await withoutAutomine(async () => {
      expect((await t.gateway.settle('4')).sent).toBe(1);
      const oldTx = (await t.gateway.store.settlements.getTx((await t.gateway.store.settlements.get(order.paymentOrderNo))!.txId!))!;
      t.clock.advance(31);
      expect(await rotated.settleOnce()).toMatchObject({ leased: true, sent: 0 });
      t.clock.advance(120);
      expect(await rotated.settleOnce()).toMatchObject({ leased: true, sent: 1 });
      const ours = (await t.gateway.store.settlements.get(order.paymentOrderNo))!;
      expect(ours.txId).not.toBe(oldTx.id);
      // The new key's transaction is mined first; the old key's comes after it.
      await rpc(chain, 'anvil_dropTransaction', [oldTx.txHash]);
      await mine(chain, 1);
      const receipt = await chain.relayer.public.getTransactionReceipt({ hash: ours.txHash as `0x${string}` });
      expect(receipt.status).toBe('success');
      expect(parseEventLogs({ abi: forwarderFactoryAbi, logs: receipt.logs, eventName: 'Distribution' }).map((e) => e.args.orderRef)).toEqual([orderRef(order.paymentOrderNo)]);
      await rpc(chain, 'eth_sendRawTransaction', [oldTx.rawTx]);
      await mine(chain, CONFIRMATIONS);
    });
    await completesOnce(order, rotated);
  });

  it('adopts a distribution someone else sent first instead of sending a second one', async () => {
    const order = await placeOrder(t, { amount: '2' });
    await pay(order, 2n * USDT);
    const plan = planFromJson((await t.gateway.store.depositAddresses.get(order.paymentOrderNo, '4', 'USDT'))!.plan);
    const theirs = await chain.distribute(forwarderPlan(plan));
    const pass = await t.gateway.settle('4');
    expect(pass.sent).toBe(0);
    await mine(chain, CONFIRMATIONS);
    expect((await t.gateway.settle('4')).settled).toBe(1);
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'COMPLETED', settlements: [{ tx_hash: theirs.transactionHash, status: 'SETTLED' }, {}] });
    expect(await distributionsOf(order.paymentOrderNo)).toHaveLength(1);
  });

  it('finishes a batch when someone distributes one of its plans first: that order is skipped, then adopted; the other settles', async () => {
    const [first, second] = await Promise.all([3, 4].map((n) => placeOrder(t, { amount: String(n) })));
    await chain.pay(usdt, first!.address, 3n * USDT);
    await chain.pay(usdt, second!.address, 4n * USDT);
    await t.gateway.scanChain('4');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    const plan = forwarderPlan(planFromJson((await t.gateway.store.depositAddresses.get(first!.paymentOrderNo, '4', 'USDT'))!.plan));
    let theirs = '';
    await withoutAutomine(async () => {
      expect((await t.gateway.settle('4')).sent).toBe(2); // one batch, waiting in the mempool
      // A copy of one of its plans, sent with a higher tip: mined first (gas given: an estimate
      // against the pending block, which holds the batch, would refuse it).
      theirs = await chain.payer.wallet.writeContract({ address: chain.factory.factory, abi: forwarderFactoryAbi, functionName: 'distribute', args: [abiPlan(plan)], gas: 500_000n, maxPriorityFeePerGas: 50_000_000_000n, maxFeePerGas: 500_000_000_000n });
      await mine(chain, 1);
    });
    const ours = (await t.gateway.store.settlements.get(second!.paymentOrderNo))!.txHash!;
    const receipt = await chain.relayer.public.getTransactionReceipt({ hash: ours as `0x${string}` });
    expect(receipt.status).toBe('success'); // the batch did not revert
    expect(parseEventLogs({ abi: forwarderFactoryAbi, logs: receipt.logs, eventName: 'Skipped' }).map((e) => e.args.orderRef)).toEqual([orderRef(first!.paymentOrderNo)]);
    await mine(chain, CONFIRMATIONS);
    expect((await t.gateway.settle('4')).settled).toBe(1); // the second order; the first is due again
    // The next passes adopt the distribution found on chain (already final) and complete the order.
    let adopted = 0;
    for (let pass = 0; pass < 3 && adopted === 0; pass += 1) {
      adopted += (await t.gateway.settle('4')).settled;
      if (adopted === 0) await mine(chain, 1);
    }
    expect(adopted).toBe(1);
    const done = await queryOrder(t, first!.requestNo);
    expect(done).toMatchObject({ pay_status: 'COMPLETED' });
    expect((done.settlements as { tx_hash: string }[]).map((x) => x.tx_hash)).toEqual([theirs, theirs]);
    expect(await queryOrder(t, second!.requestNo)).toMatchObject({ pay_status: 'COMPLETED' });
    expect(await distributionsOf(first!.paymentOrderNo)).toHaveLength(1);
    expect(logged.join('')).toContain('the settlement batch skipped this order');
  });

  it('adopts only the distribution of the order’s own forwarder, not a decoy with the same order reference', async () => {
    const order = await placeOrder(t, { amount: '2' });
    await pay(order, 2n * USDT);
    const plan = forwarderPlan(planFromJson((await t.gateway.store.depositAddresses.get(order.paymentOrderNo, '4', 'USDT'))!.plan));
    // Anyone can distribute a plan of their own naming this order: a decoy paying an attacker.
    const attacker = freshAddress();
    const decoy = { ...plan, receivers: [attacker], amounts: [1n], merchantIndex: 0n };
    await chain.pay(usdt, chain.addressOf(decoy), 1n);
    await chain.distribute(decoy);
    const real = await chain.distribute(plan);
    expect((await t.gateway.settle('4')).sent).toBe(0);
    await mine(chain, CONFIRMATIONS);
    expect((await t.gateway.settle('4')).settled).toBe(1);
    const done = await queryOrder(t, order.requestNo);
    expect(done).toMatchObject({ pay_status: 'COMPLETED' });
    const settlements = done.settlements as { receiver_addr: string; tx_hash: string; amount: string }[];
    expect(settlements.map((x) => x.tx_hash)).toEqual([real.transactionHash, real.transactionHash]);
    expect(settlements.map((x) => x.receiver_addr)).not.toContain(attacker.toLowerCase());
    expect(settlements.map((x) => x.receiver_addr)).toEqual(plan.receivers.map((r) => r.toLowerCase()));
  });

  it('logged what it did, and never the relayer key', () => {
    const text = logged.join('');
    expect(text).toContain('settlement sent');
    expect(text).toContain('settlement final');
    expect(text.toLowerCase()).not.toContain(RELAYER.privateKey.slice(2).toLowerCase());
  });
});

describe('a relayer without gas', () => {
  let chain: TestChain;
  let usdt: Address;
  let t: TestGateway;
  const poor = devnetAccount(8);

  beforeAll(async () => {
    chain = await startTestChain();
    usdt = await chain.deployToken({ name: 'Tether USD (test)', symbol: 'USDT', decimals: 6 });
    await rpc(chain, 'anvil_setBalance', [poor.address, '0x0']);
    t = await startTestGateway({
      config: {
        ...deploymentOn(chain, { '4': { rpcUrls: [chain.node.rpcUrl], confirmations: CONFIRMATIONS, contracts: { USDT: usdt } } }),
        relayers: { '4': { privateKey: poor.privateKey, maxFeePerGas: 1_000_000_000_000n } },
        settlement: SETTLEMENT_TEST_SETTINGS,
      },
    });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await chain?.stop();
  });

  /** Another instance's settler of network 4 (the same relayer), capped at `maxFeePerGas`. */
  const anotherSender = (owner: string, maxFeePerGas: bigint) =>
    new Settler({
      store: t.gateway.store,
      clock: t.clock,
      ids: t.gateway.ids,
      chain: evmRelayer({ rpcUrls: [chain.node.rpcUrl], chainId: chain.node.chainId, factory: chain.factory.factory, privateKey: poor.privateKey }),
      network: t.gateway.config.deployment.networks.find((n) => n.id === '4')!,
      log: t.gateway.logger,
      owner,
      leaseMs: 30_000,
      settings: { ...SETTLEMENT_TEST_SETTINGS, maxFeePerGas },
    });

  it('keeps the paid order waiting, says so in the metrics, and settles once the relayer is funded', async () => {
    const order = await placeOrder(t, { amount: '5' });
    await chain.pay(usdt, order.address, 5n * USDT);
    await t.gateway.scanChain('4');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    const waiting = await t.gateway.settle('4');
    expect(waiting.sent).toBe(0);
    expect(waiting.waiting).toMatch(/balance/);
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'PAID' });
    const page = await t.gateway.metrics.render();
    expect(samples(page).get('sparkpay_relayer_balance_low{network="4"}')).toBe(1);
    expect((await t.gateway.store.settlements.get(order.paymentOrderNo))!.status).toBe('DUE');

    await rpc(chain, 'anvil_setBalance', [poor.address, `0x${(10n ** 18n).toString(16)}`]);
    expect((await t.gateway.settle('4')).sent).toBe(1);
    await mine(chain, CONFIRMATIONS - 1);
    expect((await t.gateway.settle('4')).settled).toBe(1);
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'COMPLETED' });
    expect(samples(await t.gateway.metrics.render()).get('sparkpay_relayer_balance_low{network="4"}')).toBe(0);
    expect(samples(await t.gateway.metrics.render()).get('sparkpay_settlement_leading{network="4"}')).toBe(1);
    // Another instance takes the lease over (this one's ran out): this one's next pass finds it
    // taken, withdraws its relayer figures rather than leave them frozen, and says it does not settle.
    const other = anotherSender('another-instance', 1_000_000_000_000n);
    t.clock.advance(SETTLEMENT_TEST_SETTINGS.leaseMs / 1000 + 1);
    expect((await other.settleOnce()).leased).toBe(true);
    expect((await t.gateway.settle('4')).leased).toBe(false);
    const after = samples(await t.gateway.metrics.render());
    expect(after.get('sparkpay_relayer_balance_low{network="4"}')).toBeUndefined();
    expect(after.get('sparkpay_relayer_balance_wei{network="4"}')).toBeUndefined();
    expect(after.get('sparkpay_settlement_leading{network="4"}')).toBe(0);
    // It hands the lease back within the minute: this one leads again with nothing due, and reads
    // the relayer's balance again at once (it used to show 0 and no balance for up to a minute).
    await other.release();
    t.clock.advance(1);
    expect((await t.gateway.settle('4')).leased).toBe(true);
    const back = samples(await t.gateway.metrics.render());
    expect(back.get('sparkpay_settlement_leading{network="4"}')).toBe(1);
    expect(back.get('sparkpay_relayer_balance_low{network="4"}')).toBe(0);
  });

  it('does not pay more than the configured max fee per gas: above the cap, settlements wait', async () => {
    const order = await placeOrder(t, { amount: '1' });
    await chain.pay(usdt, order.address, USDT);
    await t.gateway.scanChain('4');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    // Another sender of this network (the gateway's own lease has run out), capped at 1 wei per gas.
    t.clock.advance(120);
    const capped = anotherSender('capped-sender', 1n);
    const pass = await capped.settleOnce();
    expect(pass).toMatchObject({ leased: true, sent: 0 });
    expect(pass.waiting).toMatch(/gas price above the cap/);
    expect((await t.gateway.store.settlements.get(order.paymentOrderNo))!.status).toBe('DUE');
    await capped.release();
    expect((await t.gateway.settle('4')).sent).toBe(1);
  });

  it('asks the chain nothing on an idle pass but the relayer balance once a minute (no head read)', async () => {
    // Whatever the tests before left in flight ends first.
    await mine(chain, CONFIRMATIONS);
    await t.gateway.settle('4');
    expect(await t.gateway.store.settlements.listOpenTxs('4')).toEqual([]);
    expect(await t.gateway.store.settlements.listDue('4', t.clock.nowMs() + 10 ** 12, 10)).toEqual([]);
    t.clock.advance(120);
    const relayer = evmRelayer({ rpcUrls: [chain.node.rpcUrl], chainId: chain.node.chainId, factory: chain.factory.factory, privateKey: RELAYER.privateKey });
    const calls: string[] = [];
    const counted = new Proxy(relayer, {
      get(target, key, receiver) {
        const value: unknown = Reflect.get(target, key, receiver);
        return typeof value === 'function' ? (...a: unknown[]) => (calls.push(String(key)), (value as (...x: unknown[]) => unknown).apply(target, a)) : value;
      },
    });
    const network = t.gateway.config.deployment.networks.find((n) => n.id === '4')!;
    const idle = new Settler({ store: t.gateway.store, clock: t.clock, ids: t.gateway.ids, chain: counted, network, log: t.gateway.logger, owner: 'idle-sender', leaseMs: 30_000, settings: { ...SETTLEMENT_TEST_SETTINGS, maxFeePerGas: 1_000_000_000_000n } });
    expect(await idle.settleOnce()).toMatchObject({ leased: true, sent: 0, settled: 0 });
    expect(calls.sort()).toEqual(['fees', 'relayerBalance']);
    calls.length = 0;
    t.clock.advance(30);
    expect(await idle.settleOnce()).toMatchObject({ leased: true, sent: 0 });
    expect(calls).toEqual([]);
    t.clock.advance(31);
    await idle.settleOnce();
    expect(calls.sort()).toEqual(['fees', 'relayerBalance']);
    await idle.release();
  });

  it('fails the pass, deferring no order, when the chain head cannot be read while orders are due', async () => {
    const order = await placeOrder(t, { amount: '2' });
    await chain.pay(usdt, order.address, 2n * USDT);
    await t.gateway.scanChain('4');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    const due = (await t.gateway.store.settlements.get(order.paymentOrderNo))!;
    expect(due.status).toBe('DUE');
    t.clock.advance(120);
    const relayer = evmRelayer({ rpcUrls: [chain.node.rpcUrl], chainId: chain.node.chainId, factory: chain.factory.factory, privateKey: RELAYER.privateKey });
    const headless = new Proxy(relayer, {
      get(target, key, receiver) {
        if (key === 'head') return () => Promise.reject(new Error('eth_getBlockByNumber: 429 too many requests'));
        const value: unknown = Reflect.get(target, key, receiver);
        return typeof value === 'function' ? (value as (...x: unknown[]) => unknown).bind(target) : value;
      },
    });
    const network = t.gateway.config.deployment.networks.find((n) => n.id === '4')!;
    const settler = new Settler({ store: t.gateway.store, clock: t.clock, ids: t.gateway.ids, chain: headless, network, log: t.gateway.logger, owner: 'headless-sender', leaseMs: 30_000, settings: { ...SETTLEMENT_TEST_SETTINGS, maxFeePerGas: 1_000_000_000_000n } });
    await expect(settler.settleOnce()).rejects.toThrow('429');
    expect(await t.gateway.store.settlements.get(order.paymentOrderNo)).toEqual(due);
    await settler.release();
    expect((await t.gateway.settle('4')).sent).toBe(1);
  });
});

describe('the settlement worker', () => {
  let chain: TestChain;
  let usdt: Address;
  let t: TestGateway;

  beforeAll(async () => {
    chain = await startTestChain();
    usdt = await chain.deployToken({ name: 'Tether USD (test)', symbol: 'USDT', decimals: 6 });
    t = await startTestGateway({
      workers: true,
      config: {
        ...deploymentOn(chain, { '4': { rpcUrls: [chain.node.rpcUrl], confirmations: CONFIRMATIONS, contracts: { USDT: usdt } } }),
        relayers: { '4': { privateKey: RELAYER.privateKey, maxFeePerGas: 1_000_000_000_000n } },
        // Polls far apart: only the wake-up on PAID can make it send soon.
        chainPollMs: 600_000,
        settlement: { ...SETTLEMENT_TEST_SETTINGS, pollMs: 600_000 },
      },
    });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await chain?.stop();
  });

  it('is woken by an order becoming PAID instead of waiting for its next poll', async () => {
    const order = await placeOrder(t, { amount: '3' });
    await t.gateway.scanChain('4');
    await chain.pay(usdt, order.address, 3n * USDT);
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    expect((await t.gateway.store.orders.get(order.paymentOrderNo))!.state.status).toBe('PAID');
    const started = Date.now();
    while ((await t.gateway.store.settlements.get(order.paymentOrderNo))!.status === 'DUE') {
      if (Date.now() - started > 10_000) throw new Error('the settlement worker was not woken');
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await t.gateway.store.settlements.get(order.paymentOrderNo))!.status).toBe('SENT');
  });
});

describe('bumpedFees (replacing a stuck settlement transaction)', () => {
  it('raises both fees by at least 12.5 %, follows a higher quote up to the cap, and gives up only when the cap leaves no room', () => {
    const old = { maxFeePerGas: 1_000n, maxPriorityFeePerGas: 100n };
    expect(bumpedFees(old, { maxFeePerGas: 10n, maxPriorityFeePerGas: 1n }, 10_000n)).toEqual({ maxFeePerGas: 1_126n, maxPriorityFeePerGas: 113n });
    expect(bumpedFees(old, { maxFeePerGas: 5_000n, maxPriorityFeePerGas: 300n }, 10_000n)).toEqual({ maxFeePerGas: 5_000n, maxPriorityFeePerGas: 300n });
    // A quote above the cap: as high as the cap allows, not nothing.
    expect(bumpedFees(old, { maxFeePerGas: 12_000n, maxPriorityFeePerGas: 300n }, 2_500n)).toEqual({ maxFeePerGas: 2_500n, maxPriorityFeePerGas: 300n });
    expect(bumpedFees(old, { maxFeePerGas: 10n, maxPriorityFeePerGas: 1n }, 1_125n)).toBeNull();
    // The priority fee never exceeds the max fee.
    expect(bumpedFees({ maxFeePerGas: 100n, maxPriorityFeePerGas: 100n }, { maxFeePerGas: 1n, maxPriorityFeePerGas: 1_000n }, 10_000n)).toEqual({ maxFeePerGas: 113n, maxPriorityFeePerGas: 113n });
  });
});
