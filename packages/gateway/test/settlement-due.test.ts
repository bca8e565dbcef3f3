// A settlement scheduled while an order was PAID, whose payment a reorganisation then took back:
// when the order closes with nothing of its own (it expires empty, or the merchant closes it), the
// settlement no transaction carries yet is forgotten. Left due, the settlement worker would pay
// out on its own the money that arrives at the address later, which after the close is PAID_LATE
// and waits for `sparkpay order settle` (§15a). No chain is needed: the facts are fed to the
// payment port as the scan would.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settleClosedOrder } from '../src/app/settlement-admin.js';
import { DATABASE_KINDS } from './databases.js';
import { api, deploymentWithFactory, observeTransfer, orderBody, startTestGateway, type TestGateway } from './harness.js';

describe.each(DATABASE_KINDS)('a settlement scheduled before a reorganisation, on %s', (kind) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ kind, config: { deployment: deploymentWithFactory(['4']) } });
  });
  afterAll(async () => {
    await t?.close();
  });

  /** An order whose payer selected Polygon USDT, paid in full (PAID, settlement DUE), then reorganised away (PENDING, REVERTED). */
  async function paidThenReverted() {
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
    const paid = await observeTransfer(t, { paymentOrderNo: no, amount: 10_500_000n, address });
    expect(await t.gateway.store.settlements.get(no)).toMatchObject({ status: 'DUE', network: '4' });
    await observeTransfer(t, { ...paid, status: 'REVERTED', confirmations: 0 });
    const order = (await t.gateway.store.orders.get(no))!;
    expect(order.state).toMatchObject({ status: 'PENDING', exception: 'REVERTED' });
    // The settlement worker waits for the order to be paid again; the row is still due.
    expect(await t.gateway.store.settlements.get(no)).toMatchObject({ status: 'DUE' });
    return { no, requestNo: String(body.request_no), address, expireTime: order.state.expireTime };
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
