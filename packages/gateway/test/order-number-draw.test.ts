// A payment_order_no is P, the second and 10 random digits: orders created in the same second
// may draw the same number (at about 1,500 orders a second, once every few hours). The second
// one used to be answered 50000 ("retry with the same parameters"), its nonce spent, so the
// retry it asked for was a replay (40000). It draws another number (an API review).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomIds } from '../src/adapters/crypto/random-ids.js';
import { OrderNumberTakenError, DuplicateRequestError } from '../src/app/ports.js';
import { DATABASE_KINDS } from './databases.js';
import { api, orderBody, orderRowCounts, startTestGateway, type TestGateway } from './harness.js';

describe.each(DATABASE_KINDS)('an order drawing a number another order holds (%s)', (kind) => {
  let t: TestGateway;
  /** The numbers the next draws give, before random ones. */
  const forced: string[] = [];
  beforeAll(async () => {
    t = await startTestGateway({ kind, ids: { ...randomIds, paymentOrderNo: (ms) => forced.shift() ?? randomIds.paymentOrderNo(ms) } });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
  });
  const create = (body = orderBody(t.merchant, t.clock)) => api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });

  it('is created under another number, once, and answered 0', async () => {
    const first = await create();
    expect(first.json.code).toBe(0);
    const taken = String(first.json.data!.payment_order_no);
    const before = await orderRowCounts(t);
    forced.push(taken, taken);
    const second = await create();
    expect(second.json.code, second.json.message).toBe(0);
    expect(second.json.data!.payment_order_no).not.toBe(taken);
    expect(second.signatureValid).toBe(true);
    expect((await orderRowCounts(t)).orders).toBe(before.orders + 1);
    // Its order is there, under its own number, with its options.
    expect(await t.gateway.store.orders.get(String(second.json.data!.payment_order_no))).toMatchObject({ requestNo: (second.json.data as { request_no: string }).request_no });
  });

  it('tells the taken number from the taken request_no at the store', async () => {
    const first = await create();
    const order = (await t.gateway.store.orders.get(String(first.json.data!.payment_order_no)))!;
    await expect(t.gateway.store.orders.insert({ ...order, requestNo: 'other_request', requestNoKey: 'other_request' })).rejects.toBeInstanceOf(OrderNumberTakenError);
    await expect(t.gateway.store.orders.insert({ ...order, paymentOrderNo: randomIds.paymentOrderNo(t.clock.nowMs()) })).rejects.toBeInstanceOf(DuplicateRequestError);
  });
});
