// The order lifecycle where payments, the expiry and the settlement meet: a pair switch that is
// no reorg, a transfer written as the order expires (PostgreSQL), a scan that goes back after the
// expiry listed the order, money confirming after completion, and PAYING orders still confirming
// that must not hold back the ones that can close.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASE_KINDS } from './databases.js';
import { paymentFacts } from '../src/app/record-payment.js';
import { expireOverdueOrders } from '../src/app/expire-orders.js';
import { transition } from '../src/app/order-transitions.js';
import { queryOrder } from '../src/app/query-order.js';
import type { Store } from '../src/app/ports.js';
import { api, observeTransfer, orderBody, startTestGateway, type Merchant, type TestGateway } from './harness.js';

const NOTIFY_URL = 'https://merchant.example/sparkpay/notify';

describe.each(DATABASE_KINDS)('lifecycle races on %s', (kind) => {
  let t: TestGateway;
  let m: Merchant;
  beforeAll(async () => {
    t = await startTestGateway({ kind });
    m = t.merchant;
  });
  afterAll(async () => {
    await t?.close();
  });

  async function newOrder(overrides: Record<string, unknown> = {}) {
    const body = orderBody(m, t.clock, { notify_url: NOTIFY_URL, ...overrides });
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: m, clock: t.clock });
    expect(res.json.code).toBe(0);
    return { requestNo: String(body.request_no), paymentOrderNo: String(res.json.data!.payment_order_no), expireTime: Number(res.json.data!.expire_time), data: res.json.data! };
  }
  const query = async (requestNo: string) => (await api(t.baseUrl, { path: `/v4/pay/orders/${m.merchantNo}/${requestNo}`, merchant: m, clock: t.clock })).json.data!;
  const notes = async (no: string) => (await t.gateway.store.notifications.listByOrder(no)).map((n) => ({ type: n.notifyType, seq: n.sequence, payload: JSON.parse(n.payload) as Record<string, unknown> }));

  // USDT on BNB Smart Chain has 18 decimals and a precision of 6: a wallet converting 10.5 through a
  // floating-point number sends 10.499999999999. Short by less than one precision unit is the
  // amount due (the payer could not even be asked for the rest); one unit short is UNDERPAID.
  it('takes a payment short by less than one unit of the currency precision for the amount due, and one unit short as short', async () => {
    const dust = await newOrder();
    await observeTransfer(t, { paymentOrderNo: dust.paymentOrderNo, network: '3', amount: 10_499_999_999_999n * 10n ** 6n });
    expect(await query(dust.requestNo)).toMatchObject({ pay_status: 'PAID', real_pay_network: '3', real_pay_amount: '10.499999999999' });
    expect((await query(dust.requestNo)).pay_exception).toBeUndefined();
    const short = await newOrder();
    await observeTransfer(t, { paymentOrderNo: short.paymentOrderNo, network: '3', amount: 10_499_999n * 10n ** 12n });
    expect(await query(short.requestNo)).toMatchObject({ pay_status: 'PAYING', pay_exception: 'UNDERPAID' });
    // The missing unit paid: nothing of this test is left for the others' expiries.
    await observeTransfer(t, { paymentOrderNo: short.paymentOrderNo, network: '3', amount: 10n ** 12n });
    expect(await query(short.requestNo)).toMatchObject({ pay_status: 'PAID' });
  });

  it('pays at its deadline an order left PAYING short by dust before the slack existed, instead of expiring it short', async () => {
    const legacy = await newOrder();
    await observeTransfer(t, { paymentOrderNo: legacy.paymentOrderNo, network: '3', amount: 10_499_999_999_999n * 10n ** 6n });
    // As the code before the slack left it: PAYING, UNDERPAID, everything final.
    await t.gateway.db.kysely.updateTable('orders').set({ pay_status: 'PAYING', pay_exception: 'UNDERPAID', pay_time: 0 }).where('payment_order_no', '=', legacy.paymentOrderNo).execute();
    expect(await query(legacy.requestNo)).toMatchObject({ pay_status: 'PAYING', pay_exception: 'UNDERPAID' });
    t.clock.advance(legacy.expireTime - t.clock.seconds() + 1);
    await t.gateway.expireOrders();
    expect(await query(legacy.requestNo)).toMatchObject({ pay_status: 'PAID' });
    expect((await notes(legacy.paymentOrderNo)).map((n) => n.type)).toContain('ORDER_PAID');
  });

  // The totals of two pairs must not be compared as if in one unit (18-decimal BSC USDT vs 6-decimal Polygon USDT).
  for (const [label, first, firstAmount] of [
    ['control: a 6-decimal pair first (Ethereum USDT)', '2', 1_000_000n],
    ['an 18-decimal pair first (BSC USDT)', '3', 10n ** 18n],
  ] as const) {
    it(`money that takes the order over to another pair is no reorg: ${label}`, async () => {
      const { requestNo, paymentOrderNo } = await newOrder();
      // 1 USDT, still confirming, on the first pair (selects it: PAYING).
      await observeTransfer(t, { paymentOrderNo, network: first, amount: firstAmount, status: 'SEEN', confirmations: 1 });
      expect(await query(requestNo)).toMatchObject({ pay_status: 'PAYING', real_pay_network: first });
      // The whole amount on Polygon USDT (an address handed out earlier): the order takes that pair.
      await observeTransfer(t, { paymentOrderNo, network: '4', amount: 10_500_000n });
      const q = await query(requestNo);
      expect(q).toMatchObject({ pay_status: 'PAID', real_pay_network: '4', real_pay_amount: '10.5' });
      // Nothing left the chain: no REVERTED flag, no REVERTED notification.
      expect(q.pay_exception).toBeUndefined();
      expect((await notes(paymentOrderNo)).map((n) => [n.type, n.payload.pay_exception ?? null])).toEqual([['ORDER_PAID', null]]);
    });
  }

  // A transfer that is no state change still moves the order's version: an expiry deciding the
  // order at the same time (PostgreSQL, READ COMMITTED) that read the payments without it retries,
  // instead of closing the order without the PAID_LATE that money elsewhere calls for.
  /** A store whose transactions stop after writing their payment rows, until `release`. */
  /**
   * A store whose transactions stop, the first time (only) `on` has run in one of them, until
   * `release`: after writing their payment rows (upsertMany) or after reading them (listByOrder).
   */
  function gatedStore(store: Store, on: 'upsertMany' | 'listByOrder' = 'upsertMany') {
    let reached!: () => void;
    let release!: () => void;
    const atGate = new Promise<void>((r) => (reached = r));
    const gate = new Promise<void>((r) => (release = r));
    let passed = false;
    const stop = async () => {
      if (passed) return;
      passed = true;
      reached();
      await gate;
    };
    const gated: Store = {
      ...store,
      transaction: (fn) =>
        store.transaction((tx) =>
          fn({
            ...tx,
            payments: {
              ...tx.payments,
              upsertMany: async (ps) => {
                await tx.payments.upsertMany(ps);
                if (on === 'upsertMany') await stop();
              },
              listByOrder: async (no) => {
                const rows = await tx.payments.listByOrder(no);
                if (on === 'listByOrder') await stop();
                return rows;
              },
            },
          }),
        ),
    };
    return { gated, atGate, release };
  }

  for (const racing of [false, true]) {
    it.skipIf(kind !== 'postgres' && racing)(`money at another pair's address as a PAYING order expires ${racing ? '(at the same instant)' : '(just before)'} is PAID_LATE`, async () => {
      const { requestNo, paymentOrderNo, expireTime } = await newOrder();
      await observeTransfer(t, { paymentOrderNo, network: '4', amount: 5_000_000n });
      expect(await query(requestNo)).toMatchObject({ pay_status: 'PAYING', pay_exception: 'UNDERPAID' });
      t.clock.advance(expireTime - t.clock.seconds() + 1);
      const late = { paymentOrderNo, network: '2' as const, currency: 'USDT', txHash: `0x${'ee'.repeat(31)}${racing ? '01' : '02'}`, logIndex: 0, blockNumber: 5, blockHash: `0x${'dd'.repeat(32)}`, address: '0x00000000000000000000000000000000000000aa', amount: 1_000_000n, confirmations: 64, status: 'FINAL' as const };
      if (racing) {
        const { gated, atGate, release } = gatedStore(t.gateway.store);
        const observing = paymentFacts({ store: gated, clock: t.clock, ids: t.gateway.ids }).transferObserved(late);
        await atGate; // the transfer is written, not committed; the order was read PAYING
        expect(await t.gateway.expireOrders()).toBe(1);
        release();
        expect((await observing).ok).toBe(true);
      } else {
        await t.gateway.payments.transferObserved(late);
        expect(await t.gateway.expireOrders()).toBe(1);
      }
      const q = await query(requestNo);
      expect(q.payments).toHaveLength(2);
      expect(q).toMatchObject({ pay_status: 'CLOSED', close_reason: 'EXPIRED', pay_exception: 'PAID_LATE' });
      expect((await notes(paymentOrderNo)).map((n) => [n.type, n.payload.pay_exception])).toContainEqual(['ORDER_EXCEPTION', 'PAID_LATE']);
    });
  }

  // The same when the transfer's first attempt meets a version moved by a third writer: that
  // attempt commits its row without the order (RETRY), and the retry, finding the row stored,
  // must still write the order row (PostgreSQL).
  it.skipIf(kind !== 'postgres')('money elsewhere written by an attempt that retries is still seen by a concurrent expiry (PAID_LATE)', async () => {
    const { paymentOrderNo, expireTime } = await newOrder();
    await observeTransfer(t, { paymentOrderNo, network: '4', amount: 5_000_000n });
    expect((await t.gateway.store.orders.get(paymentOrderNo))!.state).toMatchObject({ status: 'PAYING', exception: 'UNDERPAID' });
    t.clock.advance(expireTime - t.clock.seconds() + 1);
    const store = t.gateway.store;

    // P: the late transfer at another pair's address (network 2); its first attempt stops after writing the row.
    const gp = gatedStore(store);
    const late = { paymentOrderNo, network: '2' as const, currency: 'USDT', txHash: `0x${'ee'.repeat(31)}03`, logIndex: 0, blockNumber: 5, blockHash: `0x${'dd'.repeat(32)}`, address: '0x00000000000000000000000000000000000000aa', amount: 1_000_000n, confirmations: 64, status: 'FINAL' as const };
    const observing = paymentFacts({ store: gp.gated, clock: t.clock, ids: t.gateway.ids }).transferObserved(late);
    await gp.atGate;

    // W: another writer moves the order's version meanwhile (network 4's scanner: 1 USDT more, still short).
    await observeTransfer(t, { paymentOrderNo, network: '4', amount: 1_000_000n });

    // E: the expiry reads the order (new version) and its payments (P's row not committed yet), then waits.
    const ge = gatedStore(store, 'listByOrder');
    const expiring = expireOverdueOrders({ store: ge.gated, clock: t.clock, ids: t.gateway.ids }, []);
    await ge.atGate;

    // P goes on: attempt 1 finds the version moved (RETRY, its row commits), attempt 2 writes nothing.
    gp.release();
    expect((await observing).ok).toBe(true);
    ge.release();
    await expiring;

    const order = (await store.orders.get(paymentOrderNo))!;
    expect((await store.payments.listByOrder(paymentOrderNo)).map((p) => p.network).sort()).toEqual(['2', '4', '4']);
    expect(order.state.status).toBe('CLOSED');
    // Money sits at another pair's address of the closed order: PAID_LATE (as the racing test of 67b447b expects).
    expect(order.state.exception).toBe('PAID_LATE');
  });

  // The expiry checks that the scan has caught up past the deadline when it lists the overdue
  // orders and again as it closes each one: a reorganisation found in between (the cursor
  // rewound, caught_up_at cleared: the money may be in the blocks read again) keeps it open.
  for (const rewoundFirst of [true, false]) {
    it(`an order whose network's scan was rewound ${rewoundFirst ? 'before' : 'after'} the expiry listed it stays open`, async () => {
      const { requestNo, paymentOrderNo, expireTime } = await newOrder();
      const store = t.gateway.store;
      await store.depositAddresses.insertOrGet({ paymentOrderNo, network: '4', currency: 'USDT', address: `0x${paymentOrderNo.replace(/\D/g, '').slice(-40).padStart(40, '1')}`, token: '0xc2132d05d31c914a87c6611c10748aeb04b58e8f', amountBase: 10_500_000n, plan: '{}', createdAt: t.clock.nowMs() });
      t.clock.advance(expireTime - t.clock.seconds() + 1);
      // The scan of network 4 has covered the chain past the deadline.
      await store.chainCursors.lease('4', 'scanner', t.clock.nowMs(), t.clock.nowMs() + 30_000);
      await store.chainCursors.advance('4', 'scanner', 2_000, `0x${'ab'.repeat(32)}`, t.clock.nowMs());
      // A pass finds a reorganisation: the cursor goes back and the caught-up time is cleared.
      const rewind = () => store.chainCursors.rewind('4', 'scanner', 1_000);
      if (rewoundFirst) await rewind();
      const racing: Store = {
        ...store,
        orders: {
          ...store.orders,
          listOverdue: async (...args) => {
            const listed = await store.orders.listOverdue(...args);
            if (!rewoundFirst && args[0] === 'PENDING') await rewind();
            return listed;
          },
        },
      };
      await expireOverdueOrders({ store: racing, clock: t.clock, ids: t.gateway.ids }, ['4']);
      expect((await store.chainCursors.caughtUpTimes(['4'])).get('4')).toBeNull();
      expect((await query(requestNo)).pay_status).toBe('PENDING');
      await store.chainCursors.release('4', 'scanner', t.clock.nowMs());
    });
  }

  // Money seen while PAID (not final: no flag yet) that becomes final after the order COMPLETED.
  it('flags a second payment seen while PAID and final after COMPLETED, of which no distribution is recorded, as PAID_LATE, and notifies it', async () => {
    const { requestNo, paymentOrderNo } = await newOrder();
    await observeTransfer(t, { paymentOrderNo, amount: 10_500_000n });
    const twice = await observeTransfer(t, { paymentOrderNo, amount: 10_500_000n, status: 'SEEN', confirmations: 1 });
    expect(await query(requestNo)).toMatchObject({ pay_status: 'PAID' });
    // The settlement becomes final (as the settlement worker reports it).
    const done = await transition({ store: t.gateway.store, clock: t.clock, ids: t.gateway.ids }, paymentOrderNo, { kind: 'SETTLEMENT_FINAL' });
    expect(done).toMatchObject({ ok: true, changed: true });
    await observeTransfer(t, { ...twice, status: 'FINAL', confirmations: 64 });
    const q = await query(requestNo);
    expect(q).toMatchObject({ pay_status: 'COMPLETED', real_pay_amount: '21' });
    // Completed by hand, no settlement recorded: nothing says the money went out with a distribution.
    expect(q.pay_exception).toBe('PAID_LATE');
    expect((await notes(paymentOrderNo)).map((n) => [n.type, n.payload.pay_exception ?? null])).toEqual([['ORDER_PAID', null], ['ORDER_COMPLETED', null], ['ORDER_EXCEPTION', 'PAID_LATE']]);
  });

  // The query reads the order, its payments and its settlement in separate statements: a change
  // committed in between (here, the whole amount arriving right after the order was read) must not
  // pair the old status with the new payments.
  it('answers a query with a status and the payments it was decided from, when a payment commits between its reads', async () => {
    const { requestNo, paymentOrderNo } = await newOrder();
    const store = t.gateway.store;
    let paid = false;
    const racing: Store = {
      ...store,
      payments: {
        ...store.payments,
        listByOrder: async (no) => {
          if (!paid) {
            paid = true;
            await observeTransfer(t, { paymentOrderNo, amount: 10_500_000n });
          }
          return store.payments.listByOrder(no);
        },
      },
    };
    const answer = await queryOrder(racing, { appId: m.appId, merchantNo: m.merchantNo }, 'standard', m.merchantNo, requestNo);
    expect(answer.ok).toBe(true);
    if (answer.ok) expect(answer.data).toMatchObject({ pay_status: 'PAID', real_pay_amount: '10.5', payments: [{ status: 'FINAL' }] });
  });

  it('is not flagged OVERPAID when it confirms after another late transfer left the chain', async () => {
    const { paymentOrderNo } = await newOrder();
    await observeTransfer(t, { paymentOrderNo, amount: 10_500_000n });
    const done = await transition({ store: t.gateway.store, clock: t.clock, ids: t.gateway.ids }, paymentOrderNo, { kind: 'SETTLEMENT_FINAL' });
    expect(done).toMatchObject({ ok: true, changed: true });
    // The payer pays twice more after completion: late money (PAID_LATE).
    const l1 = await observeTransfer(t, { paymentOrderNo, amount: 1_000_000n, status: 'SEEN', confirmations: 1 });
    const l2 = await observeTransfer(t, { paymentOrderNo, amount: 2_000_000n, status: 'SEEN', confirmations: 1 });
    expect((await t.gateway.store.orders.get(paymentOrderNo))!.state.exception).toBe('PAID_LATE');
    // A reorganisation takes the first late transfer away: REVERTED.
    await observeTransfer(t, { ...l1, status: 'REVERTED', confirmations: 0 });
    expect((await t.gateway.store.orders.get(paymentOrderNo))!.state.exception).toBe('REVERTED');
    // The second late transfer confirms.
    await observeTransfer(t, { ...l2, status: 'FINAL', confirmations: 64 });
    const notes = (await t.gateway.store.notifications.listByOrder(paymentOrderNo)).map((n) => [n.notifyType, (JSON.parse(n.payload) as { pay_exception?: string }).pay_exception ?? null]);
    // Late money (after COMPLETED) is never OVERPAID: the settlement did not pay it out.
    expect(notes).not.toContainEqual(['ORDER_EXCEPTION', 'OVERPAID']);
    expect((await t.gateway.store.orders.get(paymentOrderNo))!.state.exception).not.toBe('OVERPAID');
  });

  // A full batch of overdue PAYING orders still confirming must not hold back later ones (batch of 1 here; 100 in production).
  it('overdue PAYING orders still confirming do not hold back later ones that can close', async () => {
    const a = await newOrder({ merchant_order_timeout: t.clock.seconds() + 600 });
    const b = await newOrder({ merchant_order_timeout: t.clock.seconds() + 700 });
    await observeTransfer(t, { paymentOrderNo: a.paymentOrderNo, amount: 10_500_000n, status: 'SEEN', confirmations: 1 });
    await observeTransfer(t, { paymentOrderNo: b.paymentOrderNo, amount: 5_000_000n });
    t.clock.advance(701);
    await expireOverdueOrders({ store: t.gateway.store, clock: t.clock, ids: t.gateway.ids }, [], 1);
    expect((await query(a.requestNo)).pay_status).toBe('PAYING');
    expect((await query(b.requestNo)).pay_status).toBe('CLOSED');
  });

  // An order whose close throws (a row that cannot be read back, say) was the first of every
  // listing, and stopped every run before the orders after it (a review of the lifecycle).
  it('an overdue order whose close fails does not keep the ones after it from expiring', async () => {
    const a = await newOrder({ merchant_order_timeout: t.clock.seconds() + 600 });
    const b = await newOrder({ merchant_order_timeout: t.clock.seconds() + 700 });
    t.clock.advance(701);
    const real = t.gateway.store;
    const broken: Store = {
      ...real,
      transaction: (fn) =>
        real.transaction((tx) =>
          fn({
            ...tx,
            orders: { ...tx.orders, get: async (no) => (no === a.paymentOrderNo ? Promise.reject(new Error('row unreadable')) : tx.orders.get(no)) },
          }),
        ),
    };
    const errors: unknown[] = [];
    const closed = await expireOverdueOrders({ store: broken, clock: t.clock, ids: t.gateway.ids }, [], 100, { error: (fields: unknown) => errors.push(fields) });
    expect(closed).toBe(1);
    expect((await query(a.requestNo)).pay_status).toBe('PENDING');
    expect((await query(b.requestNo)).pay_status).toBe('CLOSED');
    expect(errors).toEqual([expect.objectContaining({ paymentOrderNo: a.paymentOrderNo })]);
  });
});
