// The order lifecycle seen through the v4 API: transfers arrive through the payment port (the
// chain watcher will feed it; here the test does), the expiry use case closes overdue orders,
// and every notifying change leaves a row in the notifications outbox with the query snapshot.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASE_KINDS } from './databases.js';
import { api, expectError, observeTransfer, orderBody, startTestGateway, WALLET, type Merchant, type TestGateway } from './harness.js';

const NOTIFY_URL = 'https://merchant.example/sparkpay/notify';

interface NotificationRow {
  notify_id: string;
  notify_type: string;
  sequence: number;
  status: string;
  payload: Record<string, unknown>;
}

describe.each(DATABASE_KINDS)('order lifecycle on %s', (kind) => {
  let t: TestGateway;
  let m: Merchant;
  beforeAll(async () => {
    t = await startTestGateway({ kind });
    m = t.merchant;
  });
  afterAll(async () => {
    await t?.close();
  });

  /** A fresh 10.50 USDT order; returns its numbers. */
  async function newOrder(overrides: Record<string, unknown> = {}): Promise<{ requestNo: string; paymentOrderNo: string; expireTime: number }> {
    const body = orderBody(m, t.clock, { notify_url: NOTIFY_URL, ...overrides });
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: m, clock: t.clock });
    expect(res.json.code).toBe(0);
    return { requestNo: String(body.request_no), paymentOrderNo: String(res.json.data!.payment_order_no), expireTime: Number(res.json.data!.expire_time) };
  }

  async function query(requestNo: string): Promise<Record<string, unknown>> {
    const res = await api(t.baseUrl, { path: `/v4/pay/orders/${m.merchantNo}/${requestNo}`, merchant: m, clock: t.clock });
    expect({ status: res.status, code: res.json.code }).toEqual({ status: 200, code: 0 });
    expect(res.signatureValid).toBe(true);
    return res.json.data!;
  }

  async function notifications(paymentOrderNo: string): Promise<NotificationRow[]> {
    const rows = await t.gateway.db.kysely
      .selectFrom('notifications')
      .select(['notify_id', 'notify_type', 'sequence', 'status', 'payload'])
      .where('payment_order_no', '=', paymentOrderNo)
      .orderBy('sequence')
      .orderBy('created_at')
      .execute();
    return rows.map((r) => ({ ...r, sequence: Number(r.sequence), payload: JSON.parse(r.payload) as Record<string, unknown> }));
  }

  const expire = () => t.gateway.expireOrders();

  it('PENDING → PAYING (seen, not final) → PAID (final, exact)', async () => {
    const { requestNo, paymentOrderNo } = await newOrder();
    expect(await query(requestNo)).toMatchObject({ pay_status: 'PENDING', pay_time: 0, real_pay_amount: '0', payments: [], sequence: 0 });

    t.clock.advance(30);
    const seen = await observeTransfer(t, { paymentOrderNo, amount: 10_500_000n, status: 'SEEN', confirmations: 2 });
    const paying = await query(requestNo);
    expect(paying).toMatchObject({ pay_status: 'PAYING', pay_time: 0, real_pay_amount: '0', sequence: 1 });
    expect(paying.pay_exception).toBeUndefined();
    expect(paying.payments).toEqual([
      {
        network: '4',
        currency: 'USDT',
        amount: '10.5',
        address: WALLET,
        tx_hash: seen.txHash,
        log_index: 0,
        block_number: seen.blockNumber,
        confirmations: 2,
        status: 'SEEN',
      },
    ]);
    // Money seen but not final does not notify.
    expect(await notifications(paymentOrderNo)).toEqual([]);

    t.clock.advance(60);
    await observeTransfer(t, { ...seen, status: 'FINAL', confirmations: 64 });
    const paid = await query(requestNo);
    expect(paid).toMatchObject({
      pay_status: 'PAID',
      pay_time: t.clock.seconds(),
      closed_time: 0,
      real_pay_amount: '10.5',
      total_amount: '10.50',
      merchant_order_currency: 'USDT',
      sequence: 2,
    });
    expect(paid.pay_exception).toBeUndefined();
    expect(paid.payments).toEqual([expect.objectContaining({ tx_hash: seen.txHash, status: 'FINAL', confirmations: 64, amount: '10.5' })]);

    const [paidNote, ...more] = await notifications(paymentOrderNo);
    expect(more).toEqual([]);
    expect(paidNote).toMatchObject({ notify_type: 'ORDER_PAID', sequence: 2, status: 'PENDING' });
    expect(paidNote!.payload).toMatchObject({
      notify_id: paidNote!.notify_id,
      notify_type: 'ORDER_PAID',
      sequence: 2,
      payment_order_no: paymentOrderNo,
      pay_status: 'PAID',
      real_pay_amount: '10.5',
      pay_time: t.clock.seconds(),
    });

    // The same fact again changes nothing.
    await observeTransfer(t, { ...seen, status: 'FINAL', confirmations: 64 });
    expect((await query(requestNo)).sequence).toBe(2);
    expect(await notifications(paymentOrderNo)).toHaveLength(1);
  });

  it('OVERPAID: PAID with the excess recorded and an exception notification', async () => {
    const { requestNo, paymentOrderNo } = await newOrder();
    await observeTransfer(t, { paymentOrderNo, amount: 11_000_000n });
    const q = await query(requestNo);
    expect(q).toMatchObject({ pay_status: 'PAID', pay_exception: 'OVERPAID', real_pay_amount: '11', pay_time: t.clock.seconds(), sequence: 1 });
    const notes = await notifications(paymentOrderNo);
    expect(notes.map((n) => [n.notify_type, n.sequence])).toEqual([
      ['ORDER_PAID', 1],
      ['ORDER_EXCEPTION', 1],
    ]);
    expect(new Set(notes.map((n) => n.notify_id)).size).toBe(2);
    for (const n of notes) expect(n.payload).toMatchObject({ notify_id: n.notify_id, notify_type: n.notify_type, pay_exception: 'OVERPAID', sequence: 1 });
  });

  it('UNDERPAID, then the deadline passes: CLOSED/EXPIRED, still UNDERPAID', async () => {
    const { requestNo, paymentOrderNo, expireTime } = await newOrder();
    await observeTransfer(t, { paymentOrderNo, amount: 5_000_000n });
    expect(await query(requestNo)).toMatchObject({ pay_status: 'PAYING', pay_exception: 'UNDERPAID', real_pay_amount: '5', pay_time: 0, sequence: 1 });
    expect((await notifications(paymentOrderNo)).map((n) => [n.notify_type, n.sequence])).toEqual([['ORDER_EXCEPTION', 1]]);

    // Not before the deadline.
    t.clock.advance(expireTime - t.clock.seconds() - 1);
    await expire();
    expect((await query(requestNo)).pay_status).toBe('PAYING');

    t.clock.advance(2);
    await expire();
    const q = await query(requestNo);
    expect(q).toMatchObject({ pay_status: 'CLOSED', close_reason: 'EXPIRED', pay_exception: 'UNDERPAID', closed_time: t.clock.seconds(), real_pay_amount: '5', sequence: 2 });
    const notes = await notifications(paymentOrderNo);
    expect(notes.map((n) => [n.notify_type, n.sequence])).toEqual([
      ['ORDER_EXCEPTION', 1],
      ['ORDER_CLOSED', 2],
    ]);
    expect(notes[1]!.payload).toMatchObject({ notify_id: notes[1]!.notify_id, pay_status: 'CLOSED', close_reason: 'EXPIRED', pay_exception: 'UNDERPAID', sequence: 2 });
  });

  it('expiry closes a PENDING order after its deadline and writes an ORDER_CLOSED notification', async () => {
    const { requestNo, paymentOrderNo } = await newOrder({ merchant_order_timeout: t.clock.seconds() + 600 });
    t.clock.advance(599);
    await expire();
    expect(await query(requestNo)).toMatchObject({ pay_status: 'PENDING', sequence: 0 });
    expect(await notifications(paymentOrderNo)).toEqual([]);

    t.clock.advance(2);
    expect(await expire()).toBeGreaterThanOrEqual(1);
    const q = await query(requestNo);
    expect(q).toMatchObject({ pay_status: 'CLOSED', close_reason: 'EXPIRED', closed_time: t.clock.seconds(), pay_time: 0, sequence: 1 });
    expect(q.pay_exception).toBeUndefined();

    const notes = await notifications(paymentOrderNo);
    expect(notes).toHaveLength(1);
    const [note] = notes;
    expect(note).toMatchObject({ notify_type: 'ORDER_CLOSED', sequence: 1, status: 'PENDING' });
    expect(note!.notify_id).toMatch(/\S/);
    // The payload is the query data at that moment plus the notification's own fields.
    const { notify_id: notifyId, notify_type: notifyType, ...snapshot } = note!.payload;
    expect({ notifyId, notifyType }).toEqual({ notifyId: note!.notify_id, notifyType: 'ORDER_CLOSED' });
    expect(snapshot).toEqual(q);

    // Expired is closed: a merchant close is 43007, and a second expiry run changes nothing.
    expectError(await api(t.baseUrl, { path: '/v4/pay/orders/close', body: { merchant_no: m.merchantNo, request_no: requestNo }, merchant: m, clock: t.clock }), 43007, 409);
    await expire();
    expect(await notifications(paymentOrderNo)).toHaveLength(1);
    expect((await query(requestNo)).sequence).toBe(1);
  });

  it('a merchant close writes no notification, and expiry leaves the closed order alone', async () => {
    const { requestNo, paymentOrderNo, expireTime } = await newOrder();
    const res = await api(t.baseUrl, { path: '/v4/pay/orders/close', body: { merchant_no: m.merchantNo, request_no: requestNo }, merchant: m, clock: t.clock });
    expect(res.json.code).toBe(0);
    const closedTime = t.clock.seconds();
    t.clock.advance(expireTime - t.clock.seconds() + 1);
    await expire();
    expect(await query(requestNo)).toMatchObject({ pay_status: 'CLOSED', close_reason: 'MERCHANT_CLOSED', closed_time: closedTime, sequence: 1 });
    expect(await notifications(paymentOrderNo)).toEqual([]);
  });

  it('an order without notify_url expires without a notification row', async () => {
    const { requestNo, paymentOrderNo, expireTime } = await newOrder({ notify_url: undefined });
    t.clock.advance(expireTime - t.clock.seconds() + 1);
    await expire();
    expect(await query(requestNo)).toMatchObject({ pay_status: 'CLOSED', close_reason: 'EXPIRED', sequence: 1 });
    expect(await notifications(paymentOrderNo)).toEqual([]);
  });

  it('money after expiry: the order stays CLOSED, flagged PAID_LATE', async () => {
    const { requestNo, paymentOrderNo, expireTime } = await newOrder();
    t.clock.advance(expireTime - t.clock.seconds() + 1);
    await expire();
    await observeTransfer(t, { paymentOrderNo, amount: 10_500_000n });
    const q = await query(requestNo);
    expect(q).toMatchObject({ pay_status: 'CLOSED', close_reason: 'EXPIRED', pay_exception: 'PAID_LATE', pay_time: 0, sequence: 2 });
    expect(q.payments).toEqual([expect.objectContaining({ amount: '10.5', status: 'FINAL' })]);
    expect((await notifications(paymentOrderNo)).map((n) => [n.notify_type, n.sequence])).toEqual([
      ['ORDER_CLOSED', 1],
      ['ORDER_EXCEPTION', 2],
    ]);
  });

  it('money still confirming at the deadline is waited for', async () => {
    const { requestNo, paymentOrderNo, expireTime } = await newOrder();
    const seen = await observeTransfer(t, { paymentOrderNo, amount: 10_500_000n, status: 'SEEN', confirmations: 1 });
    t.clock.advance(expireTime - t.clock.seconds() + 1);
    await expire();
    expect((await query(requestNo)).pay_status).toBe('PAYING');
    await observeTransfer(t, { ...seen, status: 'FINAL', confirmations: 64 });
    expect(await query(requestNo)).toMatchObject({ pay_status: 'PAID', pay_time: t.clock.seconds(), close_reason: null });
  });

  // §7: merchant_order_timeout is the payment deadline, capped at 7 days. The query (and every
  // notification) answered the timeout as sent, a deadline the order never honoured: it closed
  // 7 days in while the merchant read 30.
  it('answers a deadline sent beyond the 7-day cap as the capped one it expires at', async () => {
    const now = t.clock.seconds();
    const { requestNo, paymentOrderNo, expireTime } = await newOrder({ merchant_order_timeout: now + 30 * 86_400 });
    expect(expireTime).toBe(now + 7 * 86_400);
    expect((await query(requestNo)).merchant_order_timeout).toBe(expireTime);
    t.clock.advance(expireTime - t.clock.seconds());
    await expire();
    expect(await query(requestNo)).toMatchObject({ pay_status: 'CLOSED', close_reason: 'EXPIRED', merchant_order_timeout: expireTime });
    expect((await notifications(paymentOrderNo)).map((n) => n.payload.merchant_order_timeout)).toEqual([expireTime]);
  });

  it('several transfers add up; sequence counts each state change', async () => {
    const { requestNo, paymentOrderNo } = await newOrder();
    await observeTransfer(t, { paymentOrderNo, amount: 4_000_000n, status: 'SEEN', confirmations: 1 });
    await observeTransfer(t, { paymentOrderNo, amount: 6_500_000n, status: 'SEEN', confirmations: 1 });
    const q = await query(requestNo);
    expect(q).toMatchObject({ pay_status: 'PAYING', real_pay_amount: '0', sequence: 2 });
    expect((q.payments as unknown[]).length).toBe(2);
    const [a, b] = q.payments as { tx_hash: string; block_number: number; amount: string }[];
    for (const p of [a!, b!]) await observeTransfer(t, { paymentOrderNo, txHash: p.tx_hash, blockNumber: p.block_number, amount: p.amount === '4' ? 4_000_000n : 6_500_000n });
    expect(await query(requestNo)).toMatchObject({ pay_status: 'PAID', real_pay_amount: '10.5', sequence: 4 });
  });
});
