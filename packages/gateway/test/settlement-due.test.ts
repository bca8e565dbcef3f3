// A settlement scheduled while an order was PAID, whose payment a reorganisation then took back:
// when the order closes with nothing of its own (it expires empty, or the merchant closes it), the
// settlement no transaction carries yet is forgotten. Left due, the settlement worker would pay
// out on its own the money that arrives at the address later, which after the close is PAID_LATE
// and waits for `sparkpay order settle` (§15a). No chain is needed: the facts are fed to the
// payment port as the scan would.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settleClosedOrder } from '../src/app/settlement-admin.js';
import { DATABASE_KINDS, PG_BASE_URL, type DatabaseKind } from './databases.js';
import type { SettlementChain, SettlementReceipt, Store, StoreTx } from '../src/app/ports.js';
import { Settler } from '../src/app/settle.js';
import { api, deploymentWithFactory, observeTransfer, orderBody, startTestGateway, type TestGateway } from './harness.js';

/** A relayer that answers without a chain: every plan holds the order's amount and estimates, nothing is known to be mined; `over` changes what it says. */
function fakeChain(over: Partial<SettlementChain> = {}): SettlementChain {
  return {
    relayer: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
    head: async () => 5_000,
    blockHash: async () => null,
    relayerBalance: async () => 10n ** 20n,
    nonces: async () => ({ latest: 0, pending: 0 }),
    fees: async () => ({ maxFeePerGas: 10n ** 9n, maxPriorityFeePerGas: 10n ** 8n }),
    held: async () => 10_500_000n,
    distributed: async () => false,
    estimate: async (plans) => ({ ok: true, gas: 100_000n * BigInt(plans.length) }),
    sign: async () => ({ hash: `0x${'ab'.repeat(32)}`, raw: '0x02f8deadbeef' }),
    broadcast: async () => ({ ok: true }),
    known: async () => true,
    receipt: async () => null,
    findDistribution: async () => null,
    orderRef: (n) => `0x${Buffer.from(n).toString('hex').padEnd(64, '0')}`,
    ...over,
  };
}

/**
 * A relayer whose transactions are mined at once: one that carries `culprit` reverts on chain
 * (its plan refuses only in a real block, so every estimate passes), the others distribute the
 * forwarders `addresses` names. `sent`: the orders of each transaction broadcast, in order.
 */
function revertingChain(culprit: string, addresses: ReadonlyMap<string, string>, over: Partial<SettlementChain> = {}) {
  const signed = new Map<string, string[]>();
  const sent: string[][] = [];
  const chain: SettlementChain = fakeChain({
    blockHash: async () => `0x${'cd'.repeat(32)}`,
    nonces: async () => ({ latest: sent.length, pending: sent.length }),
    sign: async (plans) => {
      const hash = `0x${(signed.size + 1).toString(16).padStart(64, '0')}`;
      signed.set(hash, plans.map((p) => p.paymentOrderNo));
      return { hash, raw: `0x02${hash.slice(2)}` };
    },
    broadcast: async (raw) => {
      sent.push(signed.get(`0x${raw.slice(4)}`)!);
      return { ok: true };
    },
    receipt: async (hash): Promise<SettlementReceipt | null> => {
      const orders = signed.get(hash);
      if (!orders) return null;
      const reverts = orders.includes(culprit);
      return {
        hash,
        blockNumber: 4_000,
        blockHash: `0x${'cd'.repeat(32)}`,
        success: !reverts,
        gasUsed: 90_000n,
        distributions: reverts ? [] : orders.map((n) => ({ orderRef: chain.orderRef(n), forwarder: addresses.get(n)!, balance: 10_500_000n })),
        skipped: [],
      };
    },
    ...over,
  });
  return { chain, sent };
}

/** The settlement of Polygon (4) on `t`'s store (or `store`), through `chain`, as `owner`. */
const settlerOn = (t: TestGateway, chain: SettlementChain, store: Store = t.gateway.store, owner = 'review') =>
  new Settler({
    store,
    clock: t.clock,
    ids: t.gateway.ids,
    chain,
    network: t.gateway.config.deployment.networks.find((n) => n.id === '4')!,
    log: t.gateway.logger,
    owner,
    leaseMs: 30_000,
    settings: { batchSize: 20, replaceAfterMs: 60_000, maxFeePerGas: 10n ** 12n, maxInFlight: 8, retryBaseMs: 1_000 },
  });

/**
 * A gateway of the describe block's own (Polygon with a factory), started before its tests and
 * closed after them; used as the started one (`t.baseUrl`, `t.gateway`…).
 */
function ownGateway(kind: DatabaseKind): TestGateway {
  let started: TestGateway | undefined;
  beforeAll(async () => {
    started = await startTestGateway({ kind, config: { deployment: deploymentWithFactory(['4']) } });
  }, 60_000);
  afterAll(async () => {
    await started?.close();
  });
  return new Proxy({} as TestGateway, { get: (_target, prop) => Reflect.get(started!, prop) });
}

/** An order whose payer selected Polygon USDT and paid it in full: PAID, its settlement DUE; or `amount` base units of it. */
async function paidOnPolygon(t: TestGateway, amount = 10_500_000n) {
  const body = orderBody(t.merchant, t.clock, { notify_url: 'https://merchant.example/sparkpay/notify' });
  const created = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });
  expect(created.json.code).toBe(0);
  const no = String(created.json.data!.payment_order_no);
  const token = new URL(String(created.json.data!.cashier_url)).searchParams.get('t')!;
  const chosen = await fetch(`${t.baseUrl}/cashier/api/orders/${no}/select?t=${encodeURIComponent(token)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ network: '4', currency: 'USDT' }),
  });
  expect(chosen.status).toBe(200);
  const address = ((await chosen.json()) as { address: string }).address.toLowerCase();
  const paid = await observeTransfer(t, { paymentOrderNo: no, amount, address });
  if (amount >= 10_500_000n) expect(await t.gateway.store.settlements.get(no)).toMatchObject({ status: 'DUE', network: '4' });
  return { no, requestNo: String(body.request_no), address, paid };
}

describe.each(DATABASE_KINDS)('a settlement scheduled before a reorganisation, on %s', (kind) => {
  const t = ownGateway(kind);

  /** The scan of Polygon has caught up now (the expiry waits for a pass past the deadline). */
  const caughtUpNow = () =>
    t.gateway.db.kysely
      .insertInto('chain_cursors')
      .values({ network: '4', next_block: 2_000_000, lease_owner: null, lease_until: 0, updated_at: t.clock.nowMs(), caught_up_at: t.clock.nowMs() })
      .onConflict((oc) => oc.column('network').doUpdateSet({ caught_up_at: t.clock.nowMs() }))
      .execute();

  /** An order whose payer selected Polygon USDT, paid in full (PAID, settlement DUE), then reorganised away (PENDING, REVERTED). */
  async function paidThenReverted() {
    const { no, requestNo, address, paid } = await paidOnPolygon(t);
    await observeTransfer(t, { ...paid, status: 'REVERTED', confirmations: 0 });
    const order = (await t.gateway.store.orders.get(no))!;
    expect(order.state).toMatchObject({ status: 'PENDING', exception: 'REVERTED' });
    // The settlement worker waits for the order to be paid again; the row is still due.
    expect(await t.gateway.store.settlements.get(no)).toMatchObject({ status: 'DUE' });
    return { no, requestNo, address, expireTime: order.state.expireTime };
  }

  /** Money arriving after the close is PAID_LATE and not settled until the operator says so. */
  async function lateMoneyWaitsForTheOperator(no: string, address: string) {
    expect(await t.gateway.store.settlements.get(no)).toBeNull();
    await observeTransfer(t, { paymentOrderNo: no, amount: 10_500_000n, address });
    expect((await t.gateway.store.orders.get(no))!.state).toMatchObject({ status: 'CLOSED', exception: 'PAID_LATE' });
    expect(await t.gateway.store.settlements.get(no)).toBeNull();
    expect(await t.gateway.store.settlements.listDue('4', t.clock.nowMs() + 86_400_000, 100)).not.toContainEqual(expect.objectContaining({ paymentOrderNo: no }));
    const manual = await settleClosedOrder({ store: t.gateway.store, clock: t.clock }, no);
    expect(manual).toMatchObject({ ok: true, scheduled: true, settlement: { status: 'DUE', address } });
  }

  it('is forgotten when the order then expires empty', async () => {
    const { no, address, expireTime } = await paidThenReverted();
    t.clock.advance(expireTime - t.clock.seconds() + 1);
    // The scan of Polygon has caught up past the deadline (the expiry waits for that).
    await t.gateway.db.kysely
      .insertInto('chain_cursors')
      .values({ network: '4', next_block: 2_000_000, lease_owner: null, lease_until: 0, updated_at: t.clock.nowMs(), caught_up_at: t.clock.nowMs() })
      .onConflict((oc) => oc.column('network').doUpdateSet({ caught_up_at: t.clock.nowMs() }))
      .execute();
    expect(await t.gateway.expireOrders()).toBeGreaterThanOrEqual(1);
    expect((await t.gateway.store.orders.get(no))!.state).toMatchObject({ status: 'CLOSED', closeReason: 'EXPIRED' });
    // The ORDER_CLOSED notification lists no settlement either.
    const closedNote = (await t.gateway.store.notifications.listByOrder(no)).find((n) => n.notifyType === 'ORDER_CLOSED');
    expect((JSON.parse(closedNote!.payload) as { settlements?: unknown[] }).settlements ?? []).toEqual([]);
    await lateMoneyWaitsForTheOperator(no, address);
  });

  it('is forgotten when the merchant then closes the order', async () => {
    const { no, requestNo, address } = await paidThenReverted();
    const closed = await api(t.baseUrl, { path: '/v4/pay/orders/close', body: { merchant_no: t.merchant.merchantNo, request_no: requestNo }, merchant: t.merchant, clock: t.clock });
    expect(closed.json.code).toBe(0);
    await lateMoneyWaitsForTheOperator(no, address);
  });

  it('order settle of an address paid out already: money that arrived since is named as stranded (a refusal), not answered as settled; with nothing since, the settlement as it is', async () => {
    const { no, address } = await paidOnPolygon(t);
    const due = (await t.gateway.store.settlements.get(no))!;
    // Distributed on chain: the forwarder paid out the 10.5 USDT and can pay out nothing more.
    const txHash = `0x${'5e'.repeat(32)}`;
    await t.gateway.store.settlements.update({ ...due, status: 'SETTLED', txHash, distributed: 10_500_000n, settledAt: t.clock.nowMs(), updatedAt: t.clock.nowMs() });
    expect(await settleClosedOrder({ store: t.gateway.store, clock: t.clock }, no)).toMatchObject({ ok: true, scheduled: false, settlement: { status: 'SETTLED', txHash } });
    // The payer pays again; it is final at the address.
    await observeTransfer(t, { paymentOrderNo: no, amount: 2_000_000n, address });
    const again = await settleClosedOrder({ store: t.gateway.store, clock: t.clock }, no);
    expect(again.ok).toBe(false);
    expect(again.ok ? '' : again.message).toBe(
      `payment order ${no} was settled by transaction ${txHash}, which paid out ${address} for good: its forwarder can pay out nothing more, so the 2 USDT that arrived there since cannot be moved by the gateway (the merchant settles it with the payer)`,
    );
    // Money not final yet is not named.
    await observeTransfer(t, { paymentOrderNo: no, amount: 1_000_000n, address, status: 'SEEN', confirmations: 1 });
    expect(await settleClosedOrder({ store: t.gateway.store, clock: t.clock }, no)).toMatchObject({ ok: false, message: expect.stringContaining('the 2 USDT that arrived') });
    expect(await t.gateway.store.settlements.get(no)).toMatchObject({ status: 'SETTLED', txHash });
  });

  it('order settle of a settlement deferred after failed attempts makes it due again now (the operator fixed the cause); one waiting for nothing is left as it is', async () => {
    const { no } = await paidOnPolygon(t);
    const due = (await t.gateway.store.settlements.get(no))!;
    expect(await settleClosedOrder({ store: t.gateway.store, clock: t.clock }, no)).toMatchObject({ ok: true, scheduled: false, settlement: { status: 'DUE', attempts: 0 } });
    expect((await t.gateway.store.settlements.get(no))!.nextAttemptAt).toBe(due.nextAttemptAt);
    const inAnHour = t.clock.nowMs() + 3_600_000;
    await t.gateway.store.settlements.update({ ...due, attempts: 7, lastError: 'the relayer cannot pay the gas', nextAttemptAt: inAnHour });
    const r = await settleClosedOrder({ store: t.gateway.store, clock: t.clock }, no);
    expect(r).toMatchObject({ ok: true, scheduled: false, retried: true, settlement: { status: 'DUE', attempts: 7, nextAttemptAt: t.clock.nowMs() } });
    expect(await t.gateway.store.settlements.get(no)).toMatchObject({ status: 'DUE', attempts: 7, lastError: 'the relayer cannot pay the gas', nextAttemptAt: t.clock.nowMs() });
    expect((await t.gateway.store.settlements.listDue('4', t.clock.nowMs(), 100)).map((s) => s.paymentOrderNo)).toContain(no);
  });

  it('an order that expires with dust (the fee address\'s pro-rata share of it is nothing) is not paid out on its own: the money waits for order settle', async () => {
    const { no, address } = await paidOnPolygon(t, 1n);
    const order = (await t.gateway.store.orders.get(no))!;
    const option = order.options.find((o) => o.network === '4' && o.currency === 'USDT')!;
    expect(option.fee * 1n).toBeLessThan(option.amountBase);
    t.clock.advance(order.state.expireTime - t.clock.seconds() + 1);
    await caughtUpNow();
    expect(await t.gateway.expireOrders()).toBeGreaterThanOrEqual(1);
    expect((await t.gateway.store.orders.get(no))!.state).toMatchObject({ status: 'CLOSED', closeReason: 'EXPIRED', exception: 'UNDERPAID', received: { final: 1n } });
    expect(await t.gateway.store.settlements.get(no)).toBeNull();
    expect(await settleClosedOrder({ store: t.gateway.store, clock: t.clock }, no)).toMatchObject({ ok: true, scheduled: true, settlement: { status: 'DUE', address } });
  });

  it('an order that expires with little, but more than dust, is paid out pro rata (the fee address gets its share)', async () => {
    const order0 = await paidOnPolygon(t, 200n);
    const order = (await t.gateway.store.orders.get(order0.no))!;
    const option = order.options.find((o) => o.network === '4' && o.currency === 'USDT')!;
    expect(option.fee * 200n).toBeGreaterThanOrEqual(option.amountBase);
    t.clock.advance(order.state.expireTime - t.clock.seconds() + 1);
    await caughtUpNow();
    expect(await t.gateway.expireOrders()).toBeGreaterThanOrEqual(1);
    expect(await t.gateway.store.settlements.get(order0.no)).toMatchObject({ status: 'DUE', address: order0.address });
  });

  it('an order paid, reorganised down to dust and expired forgets the settlement scheduled while it was paid', async () => {
    const { no, address, paid } = await paidOnPolygon(t);
    await observeTransfer(t, { ...paid, status: 'REVERTED', confirmations: 0 });
    await observeTransfer(t, { paymentOrderNo: no, amount: 5n, address });
    const order = (await t.gateway.store.orders.get(no))!;
    expect(await t.gateway.store.settlements.get(no)).toMatchObject({ status: 'DUE' });
    t.clock.advance(order.state.expireTime - t.clock.seconds() + 1);
    await caughtUpNow();
    expect(await t.gateway.expireOrders()).toBeGreaterThanOrEqual(1);
    expect((await t.gateway.store.orders.get(no))!.state).toMatchObject({ status: 'CLOSED', exception: 'UNDERPAID' });
    expect(await t.gateway.store.settlements.get(no)).toBeNull();
  });

  it('is kept when the order expires with final money of its own (settled pro rata)', async () => {
    const { no, address, expireTime } = await paidThenReverted();
    await observeTransfer(t, { paymentOrderNo: no, amount: 4_000_000n, address });
    t.clock.advance(expireTime - t.clock.seconds() + 1);
    await t.gateway.db.kysely.updateTable('chain_cursors').set({ caught_up_at: t.clock.nowMs() }).where('network', '=', '4').execute();
    expect(await t.gateway.expireOrders()).toBeGreaterThanOrEqual(1);
    expect((await t.gateway.store.orders.get(no))!.state).toMatchObject({ status: 'CLOSED', closeReason: 'EXPIRED', exception: 'UNDERPAID' });
    expect(await t.gateway.store.settlements.get(no)).toMatchObject({ status: 'DUE', address });
  });
});

// On PostgreSQL a close may commit between the settlement worker's read of the due row and its
// intent record (the transaction row and SENT): the record must then not go out.
describe.skipIf(!PG_BASE_URL)('a close racing the settlement worker (postgres)', () => {
  const t = ownGateway('postgres');

  it('never broadcasts a settlement for an order whose due settlement the close forgot', async () => {
    const { no, requestNo, paid } = await paidOnPolygon(t);

    const broadcasts: string[] = [];
    const chain = fakeChain({
      broadcast: async (raw) => {
        broadcasts.push(raw);
        return { ok: true };
      },
    });
    // Between the intent transaction's check of the row (DUE) and its update to SENT, on another
    // connection: the reorganisation is reported and the merchant closes the order (dropDue commits).
    let armed = true;
    const real = t.gateway.store;
    const wrapTx = (tx: StoreTx): StoreTx => ({
      ...tx,
      settlements: {
        ...tx.settlements,
        insertTx: async (row) => {
          if (armed) {
            armed = false;
            await observeTransfer(t, { ...paid, status: 'REVERTED', confirmations: 0 });
            const closed = await api(t.baseUrl, { path: '/v4/pay/orders/close', body: { merchant_no: t.merchant.merchantNo, request_no: requestNo }, merchant: t.merchant, clock: t.clock });
            expect(closed.json.code).toBe(0);
          }
          return tx.settlements.insertTx(row);
        },
      },
    });
    const store: Store = { ...real, transaction: (fn) => real.transaction((tx) => fn(wrapTx(tx))) };
    const settler = settlerOn(t, chain, store);
    const r = await settler.settleOnce();
    expect((await t.gateway.store.orders.get(no))!.state).toMatchObject({ status: 'CLOSED' });
    const txs = await t.gateway.db.kysely.selectFrom('settlement_txs').selectAll().execute();
    const row = await t.gateway.store.settlements.get(no);
    // Nothing was sent for the closed order, and no transaction recorded for it (was: broadcast,
    // with no settlement row: paid out without `order settle`, the bookkeeping lost).
    expect({ sent: r.sent, broadcasts: broadcasts.length, settlement: row, txs: txs.length }).toEqual({ sent: 0, broadcasts: 0, settlement: null, txs: 0 });
  }, 60_000);
});

// A batch halved down to one plan whose estimate then fails (each plan passed alone a moment
// before: an endpoint whose answers do not add up, or a flaky one) is deferred — with its
// backoff, its reason in `order show` and the deferred gauge — instead of tried again on every
// pass unseen (a review of settlement).
describe('a settlement batch halved to one plan that fails', () => {
  const t = ownGateway('sqlite');

  it('defers it, naming why', async () => {
    // a due a second before b: the due list, and so the halved batch, starts with a.
    const a = (await paidOnPolygon(t)).no;
    t.clock.advance(1);
    const b = (await paidOnPolygon(t)).no;
    const estimates: number[] = [];
    // Alone, each plan passes; any other estimate fails.
    const chain = fakeChain({
      estimate: async (plans) => {
        estimates.push(plans.length);
        return estimates.length === 2 || estimates.length === 3 ? { ok: true, gas: 100_000n } : { ok: false, error: 'execution reverted: the answers do not add up' };
      },
    });
    await settlerOn(t, chain).settleOnce();
    // The batch, each alone, the batch again, then the first alone after halving.
    expect(estimates).toEqual([2, 1, 1, 2, 1]);
    const deferred = (await t.gateway.store.settlements.get(a))!;
    expect(deferred).toMatchObject({ status: 'DUE', attempts: 1, lastError: expect.stringContaining('the answers do not add up') });
    expect(deferred.nextAttemptAt).toBeGreaterThan(t.clock.nowMs());
    expect(await t.gateway.store.settlements.get(b)).toMatchObject({ status: 'DUE', attempts: 0 });
  });
});

// Settlement follows its open transactions with RPC calls between its reads and its writes. A pass
// slowed past its lease (a stalled provider, a paused process) while another instance took the
// settlement over must write nothing more: its copy of the transaction row is older than what the
// other instance wrote since (a review of settlement; the scan has the same fence, ADR 0007).
describe.each(DATABASE_KINDS)('a settlement pass that outlived its lease, on %s', (kind) => {
  const t = ownGateway(kind);

  it('does not overwrite the replacement the instance that took over recorded, nor broadcast its own', async () => {
    const { no } = await paidOnPolygon(t);
    const hash = (b: string) => `0x${b.repeat(32)}`;
    const broadcasts: string[] = [];
    const chainOf = (signs: string, over: Partial<SettlementChain> = {}) =>
      fakeChain({
        sign: async () => ({ hash: hash(signs), raw: `0x02${signs}` }),
        broadcast: async (raw) => {
          broadcasts.push(raw);
          return { ok: true };
        },
        ...over,
      });
    // A sends the settlement (a1), which then waits in the mempool past the replacement delay.
    expect((await settlerOn(t, chainOf('a1'), t.gateway.store, 'a').settleOnce()).sent).toBe(1);
    const txId = (await t.gateway.store.settlements.get(no))!.txId!;
    t.clock.advance(61);
    // A's next pass reprices it; while it reads the fee quote, its lease runs out and B takes
    // the settlement over and reprices it first (b2).
    let stalled = false;
    const b = settlerOn(t, chainOf('b2'), t.gateway.store, 'b');
    const a = settlerOn(
      t,
      chainOf('a3', {
        fees: async () => {
          if (!stalled) {
            stalled = true;
            t.clock.advance(31);
            expect((await b.settleOnce()).replaced).toBe(1);
          }
          return { maxFeePerGas: 10n ** 9n, maxPriorityFeePerGas: 10n ** 8n };
        },
      }),
      t.gateway.store,
      'a',
    );
    const r = await a.settleOnce();
    expect(stalled).toBe(true);
    const row = (await t.gateway.store.settlements.listOpenTxs('4')).find((x) => x.id === txId)!;
    // Was: A's replacement a3 stored over B's (b2 gone from the row, though a node has it) and broadcast.
    expect({ hashes: row.hashes, txHash: row.txHash, broadcasts, replaced: r.replaced }).toEqual({
      hashes: [hash('a1'), hash('b2')],
      txHash: hash('b2'),
      broadcasts: ['0x02a1', '0x02b2'],
      replaced: 0,
    });
    expect(await t.gateway.store.settlements.get(no)).toMatchObject({ status: 'SENT', txHash: hash('b2') });
  });
});

// A transaction the current relayer cannot reprice (a former relayer key's, after a key change)
// that nodes keep pending: nothing but the mempool's eviction ended its wait, and its orders
// waited with it (a review of settlement). Past the replacement delay they are due again and go
// out with the current key.
describe('a settlement pending in a transaction of a former relayer key', () => {
  const t = ownGateway('sqlite');

  it('is given back once it has been pending for the replacement delay, and sent by the current key', async () => {
    const { no } = await paidOnPolygon(t);
    const former = fakeChain({ relayer: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC', sign: async () => ({ hash: `0x${'f1'.repeat(32)}`, raw: '0x02f1' }) });
    expect((await settlerOn(t, former).settleOnce()).sent).toBe(1);
    const old = (await t.gateway.store.settlements.get(no))!.txId!;
    const current = fakeChain({ sign: async () => ({ hash: `0x${'c2'.repeat(32)}`, raw: '0x02c2' }), nonces: async () => ({ latest: 5, pending: 5 }) });
    // Pending, not yet for the delay: it waits.
    t.clock.advance(30);
    expect(await settlerOn(t, current).settleOnce()).toMatchObject({ sent: 0 });
    expect(await t.gateway.store.settlements.get(no)).toMatchObject({ status: 'SENT', txId: old });
    // Pending for the delay: given back, and sent again by the current key in the same pass.
    t.clock.advance(31);
    expect(await settlerOn(t, current).settleOnce()).toMatchObject({ sent: 1 });
    expect(await t.gateway.store.settlements.get(no)).toMatchObject({ status: 'SENT', txId: `0x${'c2'.repeat(32)}` });
    const rows = await t.gateway.db.kysely.selectFrom('settlement_txs').select(['id', 'status']).orderBy('id').execute();
    expect(rows).toEqual([
      { id: `0x${'c2'.repeat(32)}`, status: 'SENT' },
      { id: old, status: 'DROPPED' },
    ]);
  });
});

// A plan that passes eth_estimateGas but reverts when mined (a native-coin receiver contract that
// refuses the coin only in a real block: it looks at tx.gasprice, block.number, coinbase...) makes
// the whole batch it is in revert: the factory pays a batch's receivers together (ADR 0009). The
// estimate cannot find it, so after an on-chain revert the orders of that transaction are sent
// alone: the others settle, and the one that reverts again does so without dragging anyone else
// (each revert costs the relayer gas). Was: the same orders were batched together again after
// each backoff, and every one of those transactions reverted (a review of the contracts).
describe('a batch that reverts on chain though its estimate passed', () => {
  const t = ownGateway('sqlite');

  it('is not sent again as a batch: its orders go alone, the others settle, the culprit reverts alone', async () => {
    const culprit = await paidOnPolygon(t);
    t.clock.advance(1);
    const honest = await paidOnPolygon(t);
    const { chain, sent } = revertingChain(culprit.no, new Map([[culprit.no, culprit.address], [honest.no, honest.address]]));
    const settler = settlerOn(t, chain);
    for (let pass = 0; pass < 12; pass += 1) {
      await settler.settleOnce();
      t.clock.advance(3_600);
    }
    // The first transaction carried both and reverted; none after it carries both again.
    expect(sent[0]!.slice().sort()).toEqual([culprit.no, honest.no].sort());
    expect(sent.slice(1).filter((orders) => orders.length > 1)).toEqual([]);
    expect(await t.gateway.store.settlements.get(honest.no)).toMatchObject({ status: 'SETTLED' });
    expect(await t.gateway.store.settlements.get(culprit.no)).toMatchObject({ status: 'DUE' });
    // Reverting alone, again and again: its own plan refuses. Its wait grows past the hour (was:
    // capped at 1 h, a reverted transaction's gas 24 times a day for good) up to a day.
    const before = sent.length;
    for (let pass = 0; pass < 72; pass += 1) {
      await settler.settleOnce();
      t.clock.advance(3_600);
    }
    const alone = sent.slice(before).filter((orders) => orders.length === 1 && orders[0] === culprit.no).length;
    expect(alone).toBeGreaterThan(0);
    expect(alone).toBeLessThan(24);
    const waiting = (await t.gateway.store.settlements.get(culprit.no))!;
    expect(waiting.nextAttemptAt - t.clock.nowMs()).toBeGreaterThan(3_600_000);
  });
});

// The mark that sends an order alone (its last transaction reverted on chain) lived only in its
// lastError, which any other deferral overwrote: a provider's hiccup while preparing the culprit,
// an estimate that failed once, its solo transaction given back. The culprit then joined the next
// batch again, and that whole batch reverted with it (another merchant's order deferred, the
// relayer's gas lost) (a review of the poisoned-batch change).
describe('an order whose transaction reverted on chain, deferred afterwards for another reason', () => {
  const t = ownGateway('sqlite');

  it('still goes alone: it never joins a batch again', async () => {
    const culprit = await paidOnPolygon(t);
    t.clock.advance(1);
    const first = await paidOnPolygon(t);
    const addresses = new Map([
      [culprit.no, culprit.address],
      [first.no, first.address],
    ]);
    // The culprit's forwarder cannot be read once, when armed (a provider's hiccup).
    let armed = false;
    let hiccups = 0;
    const { chain, sent } = revertingChain(culprit.no, addresses, {
      held: async (_plan, address) => {
        if (armed && address.toLowerCase() === culprit.address && hiccups === 0) {
          hiccups += 1;
          throw new Error('HTTP request failed: 503 Service Unavailable');
        }
        return 10_500_000n;
      },
    });
    const settler = settlerOn(t, chain);
    // The batch reverts; alone, the other order settles.
    for (let pass = 0; pass < 12 && (await t.gateway.store.settlements.get(first.no))?.status !== 'SETTLED'; pass += 1) {
      await settler.settleOnce();
      t.clock.advance(3_600);
    }
    expect(await t.gateway.store.settlements.get(first.no)).toMatchObject({ status: 'SETTLED' });
    // The culprit's next attempt cannot be prepared: deferred, with that reason.
    armed = true;
    for (let pass = 0; pass < 6 && hiccups === 0; pass += 1) {
      t.clock.advance(3_600_000);
      await settler.settleOnce();
    }
    expect(hiccups).toBe(1);
    expect(await t.gateway.store.settlements.get(culprit.no)).toMatchObject({ status: 'DUE', lastError: expect.stringContaining('could not be prepared') });
    // Another merchant's order is paid, and due when the culprit is due again.
    const later = await paidOnPolygon(t);
    addresses.set(later.no, later.address);
    t.clock.advance(3_600_000);
    for (let pass = 0; pass < 6; pass += 1) {
      await settler.settleOnce();
      t.clock.advance(3_600);
    }
    // Was: [culprit, later] in one transaction, which reverted.
    expect(sent[0]!.slice().sort()).toEqual([culprit.no, first.no].sort());
    expect(sent.slice(1).filter((orders) => orders.length > 1)).toEqual([]);
    expect(await t.gateway.store.settlements.get(later.no)).toMatchObject({ status: 'SETTLED', attempts: 0 });
  });
});
