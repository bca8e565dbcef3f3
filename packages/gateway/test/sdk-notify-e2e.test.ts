// The gateway's notifications received by the merchant SDK's ready handler on node:http: the
// handler verifies and decrypts them, answers SUCCESS only after the merchant's callback
// resolved, and the gateway's attempt log and retry schedule follow what it answered.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNotificationHandler, type NotificationPayload } from '@sparkpay/sdk';
import { DATABASE_KINDS } from './databases.js';
import { api, observeTransfer, orderBody, startTestGateway, type TestGateway } from './harness.js';
import { waitUntil } from './wait.js';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/sparkpay/notify`;
}

describe.each(DATABASE_KINDS)('SDK notification handler receiving from the gateway (%s)', (kind) => {
  let t: TestGateway;
  const servers: Server[] = [];
  beforeAll(async () => {
    t = await startTestGateway({ kind, workers: true, config: { notifyAllowPrivate: true, notify: { timeoutMs: 10_000, concurrency: 8, perDestination: 4, pollMs: 20, leaseMs: 15_000 } } });
  });
  afterAll(async () => {
    await t?.close();
    for (const s of servers) s.closeAllConnections();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  async function paidOrder(notifyUrl: string): Promise<string> {
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(t.merchant, t.clock, { notify_url: notifyUrl }), merchant: t.merchant, clock: t.clock });
    expect(res.json.code).toBe(0);
    const paymentOrderNo = String(res.json.data!.payment_order_no);
    await observeTransfer(t, { paymentOrderNo, amount: 10_500_000n });
    return paymentOrderNo;
  }

  // The notification is read again after its log: an attempt's outcome and the notification's
  // counters commit together, so the second read sees what the finished log says (the first may
  // be from before the attempt ended).
  const attemptsOf = async (paymentOrderNo: string, n: number) =>
    waitUntil(`${n} finished attempts`, async () => {
      const [note] = await t.gateway.store.notifications.listByOrder(paymentOrderNo);
      const log = note ? await t.gateway.store.notifications.listAttempts(note.notifyId) : [];
      if (log.length < n || log.some((a) => a.outcome === 'IN_FLIGHT')) return null;
      const [now] = await t.gateway.store.notifications.listByOrder(paymentOrderNo);
      return { note: now!, log };
    });

  it('is retried while the merchant callback fails, and delivered once it succeeds', async () => {
    const handled: NotificationPayload[] = [];
    let healthy = false;
    const handler = createNotificationHandler({
      appId: t.merchant.appId,
      merchantPrivateKey: t.merchant.privateKey,
      platformPublicKey: t.merchant.platformPublicKeyPem,
      onNotification: async (payload) => {
        if (!healthy) throw new Error('merchant database unavailable');
        handled.push(payload);
      },
    });
    const server = createServer((req, res) => void handler.node(req, res));
    servers.push(server);
    const paymentOrderNo = await paidOrder(await listen(server));
    const first = await attemptsOf(paymentOrderNo, 1);
    expect(first.log[0]).toMatchObject({ outcome: 'FAILED', errorKind: 'HTTP_STATUS', httpStatus: 500 });
    healthy = true;
    t.clock.advance(10);
    const second = await attemptsOf(paymentOrderNo, 2);
    expect(second.log[1]).toMatchObject({ outcome: 'DELIVERED', httpStatus: 200, responseHead: 'SUCCESS' });
    expect(handled).toHaveLength(1);
    expect(handled[0]).toMatchObject({ payment_order_no: paymentOrderNo, notify_id: second.note.notifyId, notify_type: 'ORDER_PAID', pay_status: 'PAID', sequence: 1 });
  });

  it('is refused by a receiver holding another application’s key, and the gateway keeps retrying', async () => {
    let called = 0;
    const handler = createNotificationHandler({
      merchantPrivateKey: t.otherMerchant.privateKey,
      platformPublicKey: t.otherMerchant.platformPublicKeyPem,
      onNotification: () => {
        called += 1;
      },
    });
    const server = createServer((req, res) => void handler.node(req, res));
    servers.push(server);
    const paymentOrderNo = await paidOrder(await listen(server));
    const { note, log } = await attemptsOf(paymentOrderNo, 1);
    expect(log[0]).toMatchObject({ outcome: 'FAILED', errorKind: 'HTTP_STATUS', httpStatus: 400 });
    expect(note).toMatchObject({ status: 'PENDING', attempts: 1 });
    expect(called).toBe(0);
  });
});

describe.each(DATABASE_KINDS)('a notification of an order flooded with dust transfers (%s)', (kind) => {
  let t: TestGateway;
  let server: Server | undefined;
  beforeAll(async () => {
    t = await startTestGateway({ kind, workers: true, config: { notifyAllowPrivate: true, notify: { timeoutMs: 10_000, concurrency: 8, perDestination: 4, pollMs: 20, leaseMs: 15_000 } } });
  });
  afterAll(async () => {
    await t?.close();
    server?.closeAllConnections();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
  });

  it('stays within what the SDK handler accepts by default: 50 transfers listed, the largest first, payments_count says how many', async () => {
    const received: NotificationPayload[] = [];
    const sizes: number[] = [];
    const handler = createNotificationHandler({ merchantPrivateKey: t.merchant.privateKey, platformPublicKey: t.merchant.platformPublicKeyPem, onNotification: (p) => void received.push(p) });
    server = createServer((req, res) => {
      sizes.push(Number(req.headers['content-length']));
      void handler.node(req, res);
    });
    const url = await listen(server);
    // Every text field at its limit, in a character JSON escapes to six bytes, and a split of 20
    // receivers: the largest order body there is.
    const others = Array.from({ length: 19 }, (_, i) => ({ receiver_addr: `0x${(i + 1).toString(16).padStart(40, 'b')}`, amount: '0.10' }));
    const texts = { merchant_order_desc: '\u0001'.repeat(256), goods_info: '\u0001'.repeat(1024), business_info: '\u0001'.repeat(1024), extension: '\u0001'.repeat(1024) };
    const body = orderBody(t.merchant, t.clock, { notify_url: url, ...texts, divide_detail: { seller_amount: '6.60', seller_addr: `0x${'c'.repeat(40)}`, merchant_amount: '2.00', other_details: others } });
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });
    expect(res.json.code, res.json.message).toBe(0);
    const paymentOrderNo = String(res.json.data!.payment_order_no);
    // 300 transfers of one base unit (on the order's pair: they count), then the payer's payment.
    const dust = Array.from({ length: 300 }, (_, i) => ({ network: '4' as const, currency: 'USDT', txHash: `0x${(0xd000 + i).toString(16).padStart(64, '0')}`, logIndex: 0, blockNumber: 5000 + i, blockHash: `0x${(0xe000 + i).toString(16).padStart(64, '0')}`, address: `0x${'a'.repeat(40)}`, confirmations: 64, status: 'FINAL' as const, paymentOrderNo, amount: 1n }));
    await t.gateway.payments.transfersObserved(dust);
    const payment = await observeTransfer(t, { paymentOrderNo, amount: 10_500_000n - 300n, blockNumber: 9000 });
    await waitUntil('ORDER_PAID received', async () => received.find((p) => p.notify_type === 'ORDER_PAID') ?? null, 15_000);
    const paid = received.find((p) => p.notify_type === 'ORDER_PAID')! as NotificationPayload & { payments: { tx_hash: string; amount: string; block_number: number }[]; payments_count: number };
    expect(paid).toMatchObject({ pay_status: 'PAID', real_pay_amount: '10.5', payments_count: 301, goods_info: texts.goods_info });
    expect(paid.payments).toHaveLength(50);
    // The payer's payment is listed, the list in its stored order (by block).
    expect(paid.payments.map((p) => p.tx_hash)).toContain(payment.txHash);
    expect(paid.payments.map((p) => p.block_number)).toEqual([...paid.payments.map((p) => p.block_number)].sort((a, b) => a - b));
    // Room left under the handler's 64 KiB for the settlement's 22 payouts listed later.
    expect(Math.max(...sizes)).toBeLessThan(64 * 1024 - 8 * 1024);
    const query = await api(t.baseUrl, { method: 'GET', path: `/v4/pay/orders/${t.merchant.merchantNo}/${String(body.request_no)}`, merchant: t.merchant, clock: t.clock });
    expect(query.json.data).toMatchObject({ payments_count: 301 });
    expect((query.json.data as { payments: unknown[] }).payments).toHaveLength(50);
  }, 30_000);

  it('keeps the payer’s payment listed when it left the chain (REVERTED) among more dust than the list holds', async () => {
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(t.merchant, t.clock), merchant: t.merchant, clock: t.clock });
    const paymentOrderNo = String(res.json.data!.payment_order_no);
    const dust = Array.from({ length: 60 }, (_, i) => ({ network: '4' as const, currency: 'USDT', txHash: `0x${(0xf000 + i).toString(16).padStart(64, '0')}`, logIndex: 0, blockNumber: 6000 + i, blockHash: `0x${(0xf100 + i).toString(16).padStart(64, '0')}`, address: `0x${'a'.repeat(40)}`, confirmations: 1, status: 'SEEN' as const, paymentOrderNo, amount: 1n }));
    await t.gateway.payments.transfersObserved(dust);
    const payment = await observeTransfer(t, { paymentOrderNo, amount: 10_500_000n, status: 'SEEN', confirmations: 1, blockNumber: 7000 });
    await observeTransfer(t, { ...payment, status: 'REVERTED', confirmations: 0 });
    const query = await api(t.baseUrl, { method: 'GET', path: `/v4/pay/orders/${t.merchant.merchantNo}/${String(res.json.data!.request_no)}`, merchant: t.merchant, clock: t.clock });
    const data = query.json.data as { pay_exception?: string; payments_count: number; payments: { tx_hash: string; status: string }[] };
    expect(data).toMatchObject({ pay_exception: 'REVERTED', payments_count: 61 });
    expect(data.payments).toHaveLength(50);
    expect(data.payments.find((p) => p.tx_hash === payment.txHash)).toMatchObject({ status: 'REVERTED' });
  });
});
