// Notification delivery end to end (PROTOCOL §13): a running gateway on a real database, its
// delivery worker, and real HTTP receivers on 127.0.0.1. The retry schedule runs on the
// injected clock; only the 10 s answer timeout is waited for in real time.
import pino from 'pino';
import { generateRsaKeyPair, parsePrivateKey } from '@sparkpay/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpSender } from '../src/adapters/notify/http-sender.js';
import { NotificationDelivery } from '../src/app/deliver-notifications.js';
import { noMetrics, type NotificationSender, type SendResult, type Store } from '../src/app/ports.js';
import { listOrderNotifications, resendNotification } from '../src/app/notification-admin.js';
import type { NotificationAttemptRecord, NotificationRecord } from '../src/app/records.js';
import { DATABASE_KINDS } from './databases.js';
import { api, observeTransfer, orderBody, startTestGateway, type Merchant, type TestGateway } from './harness.js';
import { openReceived, startNonAcceptingListener, startReceiver, SUCCESS, type Receiver } from './notify-receiver.js';
import { freePort } from './processes.js';
import { pause, waitUntil } from './wait.js';

// 24 attempts: one application holds at most 20 (concurrency - per destination), and attempts
// left hanging by earlier cases of a describe stay in flight until their 10 s timeout.
const NOTIFY = { timeoutMs: 10_000, concurrency: 24, perDestination: 4, pollMs: 20, leaseMs: 15_000 };

describe.each(DATABASE_KINDS)('notification delivery on %s', (kind) => {
  let t: TestGateway;
  const receivers: Receiver[] = [];
  beforeAll(async () => {
    t = await startTestGateway({ kind, workers: true, config: { notifyAllowPrivate: true, notify: NOTIFY } });
  });
  afterAll(async () => {
    await t?.close();
    await Promise.all(receivers.map((r) => r.close()));
  });

  async function receiver(...args: Parameters<typeof startReceiver>): Promise<Receiver> {
    const r = await startReceiver(...args);
    receivers.push(r);
    return r;
  }

  /** A 10.50 USDT order paid exactly: its ORDER_PAID notification is written. */
  async function paidOrder(notifyUrl: string, gw: TestGateway = t, merchant: Merchant = gw.merchant): Promise<{ paymentOrderNo: string; notifyId: string }> {
    const res = await api(gw.baseUrl, { path: '/v4/pay/cashier', body: orderBody(merchant, gw.clock, { notify_url: notifyUrl, merchant_order_desc: '咖啡 ☕ x2' }), merchant, clock: gw.clock });
    expect(res.json.code).toBe(0);
    const paymentOrderNo = String(res.json.data!.payment_order_no);
    await observeTransfer(gw, { paymentOrderNo, amount: 10_500_000n });
    const [n] = await gw.gateway.store.notifications.listByOrder(paymentOrderNo);
    return { paymentOrderNo, notifyId: n!.notifyId };
  }

  const record = (notifyId: string) => t.gateway.store.notifications.get(notifyId) as Promise<NotificationRecord>;
  const attempts = (notifyId: string) => t.gateway.store.notifications.listAttempts(notifyId);
  const finishedAttempts = async (notifyId: string, n: number) =>
    waitUntil(`${n} finished attempt(s) of ${notifyId}`, async () => {
      const list = await attempts(notifyId);
      return list.length >= n && list.slice(0, n).every((a) => a.outcome !== 'IN_FLIGHT') ? list : null;
    }, 15_000);

  it('delivers ORDER_PAID encrypted to the merchant, signed by the platform, stamped and logged', async () => {
    const r = await receiver();
    const { paymentOrderNo, notifyId } = await paidOrder(r.url);
    const [req] = await r.waitFor(1);
    expect(req!.method).toBe('POST');
    expect(req!.headers['content-type']).toBe('application/json');
    // No compressed answer, please: the body must read SUCCESS as sent.
    expect(req!.headers['accept-encoding']).toBe('identity');
    const { envelope, payload } = openReceived(req!, { merchantPrivateKey: t.merchant.privateKey, platformPublicKey: t.merchant.platformPublicKey });
    expect(envelope.head).toMatchObject({ charset: 'UTF-8', app_id: t.merchant.appId, serial: t.merchant.serial });
    expect(payload).toMatchObject({
      payment_order_no: paymentOrderNo,
      pay_status: 'PAID',
      real_pay_amount: '10.5',
      merchant_order_desc: '咖啡 ☕ x2',
      notify_id: notifyId,
      notify_type: 'ORDER_PAID',
      notify_time: t.clock.seconds(),
      sequence: 1,
    });
    const delivered = await waitUntil('DELIVERED', async () => {
      const n = await record(notifyId);
      return n.status === 'DELIVERED' ? n : null;
    });
    expect(delivered).toMatchObject({ attempts: 1, series: 1, attemptNo: 1, leaseOwner: null, deliveredAt: t.clock.nowMs(), notifyTime: t.clock.seconds() });
    const log = await attempts(notifyId);
    expect(log).toEqual([
      expect.objectContaining({ attemptNo: 1, series: 1, outcome: 'DELIVERED', httpStatus: 200, responseHead: 'SUCCESS', errorKind: null, error: null, startedAt: t.clock.nowMs(), finishedAt: t.clock.nowMs() }),
    ]);
    expect(log[0]!.latencyMs).toBeGreaterThanOrEqual(0);
    expect(log[0]!.sender).toMatch(/\/\d+\//);
    await pause(150);
    expect(r.received).toHaveLength(1);
  });

  it("seals the attempts that start a second after the merchant's key was replaced elsewhere (the CLI) to the new key", async () => {
    const r = await receiver();
    const m = await t.addMerchant();
    const platformPublicKey = m.platformPublicKey;
    await paidOrder(r.url, t, m);
    const [before] = await r.waitFor(1);
    expect(openReceived(before!, { merchantPrivateKey: m.privateKey, platformPublicKey }).payload.notify_type).toBe('ORDER_PAID');
    // Another process (`sparkpay app set-key`) writes the new key: this gateway's caches are not told.
    const fresh = generateRsaKeyPair();
    await t.gateway.db.kysely.updateTable('applications').set({ merchant_public_key: fresh.publicKeyPem }).where('app_id', '=', m.appId).execute();
    t.clock.advance(2);
    const renewed = { ...m, privateKey: parsePrivateKey(fresh.privateKeyPem) };
    await paidOrder(r.url, t, renewed);
    const [, after] = await r.waitFor(2);
    expect(openReceived(after!, { merchantPrivateKey: renewed.privateKey, platformPublicKey }).payload.notify_type).toBe('ORDER_PAID');
  });

  it('builds a fresh envelope for every attempt of the same notification', async () => {
    const r = await receiver((_req, i) => (i === 0 ? { status: 500, body: 'busy' } : SUCCESS));
    const { notifyId } = await paidOrder(r.url);
    await finishedAttempts(notifyId, 1);
    t.clock.advance(10);
    const [first, second] = await r.waitFor(2);
    const keys = { merchantPrivateKey: t.merchant.privateKey, platformPublicKey: t.merchant.platformPublicKey };
    const a = openReceived(first!, keys);
    const b = openReceived(second!, keys);
    expect(a.envelope.head.aes_key).not.toBe(b.envelope.head.aes_key);
    expect(a.envelope.body).not.toBe(b.envelope.body);
    // Same notification: same id, same first-attempt time, same content.
    expect(b.payloadJson).toBe(a.payloadJson);
    expect(b.payload.notify_id).toBe(notifyId);
  });

  it('records each kind of failure and schedules the retry 10 s later', async () => {
    const cases: { name: string; url: (r: Receiver) => string; answer?: Parameters<typeof startReceiver>[0]; expected: Partial<NotificationAttemptRecord> }[] = [
      { name: '500', url: (r) => r.url, answer: () => ({ status: 500, body: 'Internal Server Error' }), expected: { errorKind: 'HTTP_STATUS', httpStatus: 500, responseHead: 'Internal Server Error' } },
      { name: '200 other body', url: (r) => r.url, answer: () => ({ status: 200, body: 'OK' }), expected: { errorKind: 'BAD_ANSWER', httpStatus: 200, responseHead: 'OK' } },
      { name: '200 lower-case', url: (r) => r.url, answer: () => ({ status: 200, body: 'success' }), expected: { errorKind: 'BAD_ANSWER', httpStatus: 200 } },
      { name: '204', url: (r) => r.url, answer: () => ({ status: 204 }), expected: { errorKind: 'HTTP_STATUS', httpStatus: 204, responseHead: '' } },
      { name: 'reset', url: (r) => r.url, answer: () => ({ action: 'reset' }), expected: { errorKind: 'CONNECTION_RESET', httpStatus: null } },
      { name: 'long answer', url: (r) => r.url, answer: () => ({ status: 200, body: `${'é'.repeat(200)}SUCCESS` }), expected: { errorKind: 'BAD_ANSWER', httpStatus: 200, responseHead: 'é'.repeat(128) } },
      { name: 'unresolvable', url: () => 'http://sparkpay-receiver.invalid/notify', expected: { errorKind: 'DNS', httpStatus: null } },
    ];
    const started = await Promise.all(
      cases.map(async (c) => {
        const r = await receiver(c.answer);
        return { c, r, ...(await paidOrder(c.url(r))) };
      }),
    );
    const now = t.clock.nowMs();
    for (const s of started) {
      const [a] = await finishedAttempts(s.notifyId, 1);
      expect({ name: s.c.name, ...a }).toMatchObject({ name: s.c.name, outcome: 'FAILED', ...s.c.expected });
      expect(a!.error, s.c.name).toMatch(/\S/);
      expect(await record(s.notifyId)).toMatchObject({ status: 'PENDING', attempts: 1, nextAttemptAt: now + 10_000, leaseOwner: null });
    }
  });

  it('does not follow a redirect: the attempt fails and the target never hears of it', async () => {
    const target = await receiver();
    const r = await receiver(() => ({ status: 302, headers: { location: target.url } }));
    const { notifyId } = await paidOrder(r.url);
    const [a] = await finishedAttempts(notifyId, 1);
    expect(a).toMatchObject({ outcome: 'FAILED', errorKind: 'REDIRECT', httpStatus: 302 });
    expect(a!.error).toContain(target.url);
    await pause(100);
    expect(target.received).toHaveLength(0);
  });

  it('gives up after 10 s: an answer after 11 s, no answer, and a listener that never accepts all fail as TIMEOUT', async () => {
    const late = await receiver(() => ({ status: 200, body: 'SUCCESS', delayMs: 11_000 }));
    const silent = await receiver(() => ({ action: 'hang' }));
    const closedDoor = await startNonAcceptingListener();
    try {
      const a = await paidOrder(late.url);
      const b = await paidOrder(silent.url);
      const c = await paidOrder(closedDoor.url);
      const [la] = await finishedAttempts(a.notifyId, 1);
      const [sa] = await finishedAttempts(b.notifyId, 1);
      const [ca] = await finishedAttempts(c.notifyId, 1);
      for (const x of [la!, sa!, ca!]) {
        expect(x).toMatchObject({ outcome: 'FAILED', errorKind: 'TIMEOUT', httpStatus: null });
        expect(x.latencyMs).toBeGreaterThanOrEqual(9_900);
        expect(x.latencyMs).toBeLessThan(12_000);
      }
      expect(la!.error).toMatch(/no complete answer within 10000 ms/);
      expect(ca!.error).toMatch(/no connection within 10000 ms/);
      expect(await record(a.notifyId)).toMatchObject({ status: 'PENDING', attempts: 1 });
    } finally {
      await closedDoor.close();
    }
  }, 30_000);

  it('delivers on the 4th attempt, at the scheduled times, when the receiver is down for the first three', async () => {
    const port = await freePort();
    const { notifyId } = await paidOrder(`http://127.0.0.1:${port}/notify`);
    const t0 = t.clock.nowMs();
    await finishedAttempts(notifyId, 1);
    // Not before it is due: 9 s later nothing happens.
    t.clock.advance(9);
    await pause(120);
    expect(await attempts(notifyId)).toHaveLength(1);
    t.clock.advance(1);
    await finishedAttempts(notifyId, 2);
    t.clock.advance(60);
    await finishedAttempts(notifyId, 3);
    const r = await receiver(() => SUCCESS, { port });
    t.clock.advance(299);
    await pause(120);
    expect(r.received).toHaveLength(0);
    t.clock.advance(1);
    await r.waitFor(1);
    const log = await finishedAttempts(notifyId, 4);
    expect(log.map((a) => [a.outcome, a.errorKind, a.startedAt - t0])).toEqual([
      ['FAILED', 'CONNECTION_REFUSED', 0],
      ['FAILED', 'CONNECTION_REFUSED', 10_000],
      ['FAILED', 'CONNECTION_REFUSED', 70_000],
      ['DELIVERED', null, 370_000],
    ]);
    expect(await record(notifyId)).toMatchObject({ status: 'DELIVERED', attempts: 4 });
  });

  it('marks a notification FAILED after the eighth attempt; a resend starts a new series with the same notify_id', async () => {
    let answer = { status: 503, body: 'down for maintenance' };
    const r = await receiver(() => answer);
    const { paymentOrderNo, notifyId } = await paidOrder(r.url);
    const t0 = t.clock.nowMs();
    const delays = [10, 60, 300, 600, 1800, 3600, 7200];
    await finishedAttempts(notifyId, 1);
    for (const [i, d] of delays.entries()) {
      t.clock.advance(d);
      await finishedAttempts(notifyId, i + 2);
    }
    const failed = await waitUntil('FAILED', async () => {
      const n = await record(notifyId);
      return n.status === 'FAILED' ? n : null;
    });
    expect(failed).toMatchObject({ attempts: 8, attemptNo: 8, series: 1, leaseOwner: null });
    const log = await attempts(notifyId);
    let at = 0;
    expect(log.map((a) => a.startedAt - t0)).toEqual([0, ...delays.map((d) => (at += d * 1000))]);
    t.clock.advance(86_400);
    await pause(150);
    expect(r.received).toHaveLength(8);

    answer = { status: 200, body: 'SUCCESS' };
    const resent = await resendNotification({ store: t.gateway.store, clock: t.clock, outbox: t.gateway.outbox }, notifyId);
    expect(resent).toMatchObject({ ok: true, notification: { status: 'PENDING', series: 2, attempts: 0 } });
    const [, ninth] = [0, await r.waitFor(9)];
    const opened = openReceived(ninth![8]!, { merchantPrivateKey: t.merchant.privateKey, platformPublicKey: t.merchant.platformPublicKey });
    expect(opened.payload).toMatchObject({ notify_id: notifyId, notify_time: t0 / 1000 });
    await waitUntil('DELIVERED', async () => (await record(notifyId)).status === 'DELIVERED');
    const history = await listOrderNotifications(t.gateway.store, paymentOrderNo);
    expect(history).toHaveLength(1);
    expect(history![0]!.notification).toMatchObject({ notifyId, status: 'DELIVERED', series: 2, attempts: 1, attemptNo: 9 });
    expect(history![0]!.attempts.map((a) => [a.attemptNo, a.series, a.outcome])).toEqual([
      ...[1, 2, 3, 4, 5, 6, 7, 8].map((n) => [n, 1, 'FAILED']),
      [9, 2, 'DELIVERED'],
    ]);
    expect(await resendNotification({ store: t.gateway.store, clock: t.clock }, 'Nnot-a-notification')).toMatchObject({ ok: false, reason: 'NOT_FOUND' });
    expect(await listOrderNotifications(t.gateway.store, 'P000')).toBeNull();
  });

  it('keeps other destinations flowing while one receiver never answers', async () => {
    const stuck = await receiver(() => ({ action: 'hang' }));
    const healthy = await receiver();
    const stuckOrders = await Promise.all([1, 2, 3, 4, 5, 6].map(() => paidOrder(stuck.url)));
    await stuck.waitFor(NOTIFY.perDestination);
    const start = performance.now();
    const ok = await paidOrder(healthy.url);
    await healthy.waitFor(1, 3_000);
    expect(performance.now() - start).toBeLessThan(3_000);
    await waitUntil('DELIVERED', async () => (await record(ok.notifyId)).status === 'DELIVERED');
    // The stuck destination holds no more than its share of the senders.
    expect(stuck.received).toHaveLength(NOTIFY.perDestination);
    const inFlight = await Promise.all(stuckOrders.map(async (o) => (await attempts(o.notifyId)).filter((a) => a.outcome === 'IN_FLIGHT').length));
    expect(inFlight.reduce((a, b) => a + b, 0)).toBe(NOTIFY.perDestination);
  });
});

describe.each(DATABASE_KINDS)('outbound safety in production mode on %s', (kind) => {
  let t: TestGateway;
  let r: Receiver;
  beforeAll(async () => {
    t = await startTestGateway({ kind, workers: true, config: { notifyAllowPrivate: false, notify: NOTIFY } });
    r = await startReceiver();
  });
  afterAll(async () => {
    await t?.close();
    await r?.close();
  });

  it.each([
    ['an IPv4 loopback literal', (port: number) => `http://127.0.0.1:${port}/notify`],
    ['a name that resolves to loopback', (port: number) => `http://localhost:${port}/notify`],
    ['an IPv6 loopback literal', (port: number) => `http://[::1]:${port}/notify`],
    ['a private address', () => 'http://10.0.0.1/notify'],
    ['the cloud metadata address', () => 'http://169.254.169.254/latest/meta-data'],
    // Documentation ranges (RFC 5737, RFC 3849): never a receiver, and production once tried them.
    ['an IPv4 documentation address', () => 'http://198.51.100.7/notify'],
    ['an IPv6 documentation address', () => 'http://[2001:db8::7]/notify'],
  ])('refuses to send to %s, and records it as a failed attempt', async (_name, url) => {
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(t.merchant, t.clock, { notify_url: url(r.port) }), merchant: t.merchant, clock: t.clock });
    expect(res.json.code).toBe(0);
    const paymentOrderNo = String(res.json.data!.payment_order_no);
    await observeTransfer(t, { paymentOrderNo, amount: 10_500_000n });
    const [n] = await t.gateway.store.notifications.listByOrder(paymentOrderNo);
    const log = await waitUntil('the attempt', async () => {
      const list = await t.gateway.store.notifications.listAttempts(n!.notifyId);
      return list[0] && list[0].outcome !== 'IN_FLIGHT' ? list : null;
    });
    expect(log[0]).toMatchObject({ outcome: 'FAILED', errorKind: 'BLOCKED_ADDRESS', httpStatus: null });
    // The operator reads why: not "loopback or private" for a documentation address.
    expect(log[0]!.error).toMatch(/is not a public address|resolves only to addresses notifications may not be sent to/);
    expect(r.received).toHaveLength(0);
  });
});

describe.each(DATABASE_KINDS)('an answer the database cannot store, on %s', (kind) => {
  it('is left out of the attempt row: the attempt is still recorded and counted, not sent again at every lease', async () => {
    const t = await startTestGateway({ kind, config: { notifyAllowPrivate: true, notify: NOTIFY } });
    const r = await startReceiver(() => ({ status: 500, body: 'busy' }));
    const sender = createHttpSender({ timeoutMs: 5_000, allowPrivate: true, socketsPerHost: 2 });
    try {
      const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(t.merchant, t.clock, { notify_url: r.url }), merchant: t.merchant, clock: t.clock });
      expect(res.json.code).toBe(0);
      const paymentOrderNo = String(res.json.data!.payment_order_no);
      await observeTransfer(t, { paymentOrderNo, amount: 10_500_000n });
      const [n] = await t.gateway.store.notifications.listByOrder(paymentOrderNo);
      // The database refuses what the receiver answered (as PostgreSQL refused a U+0000 in it).
      const store = t.gateway.store;
      const refusing: Store = {
        ...store,
        transaction: (fn) =>
          store.transaction((tx) =>
            fn({
              ...tx,
              notifications: {
                ...tx.notifications,
                finishAttempt: async (id, no, result) => {
                  if (result.responseHead !== null) throw new Error('invalid byte sequence for encoding "UTF8"');
                  return tx.notifications.finishAttempt(id, no, result);
                },
              },
            }),
          ),
      };
      const delivery = new NotificationDelivery(
        { store: refusing, clock: t.clock, platformKeys: t.gateway.platformKeys, sender, log: pino({ level: 'silent' }) },
        { owner: 'refusing-store', leaseMs: 15_000, concurrency: 2, perDestination: 2 },
      );
      expect(await delivery.deliverDue({ scan: true })).toBe(1);
      await delivery.idle();
      await delivery.stop();
      expect(await store.notifications.listAttempts(n!.notifyId)).toMatchObject([
        { outcome: 'FAILED', httpStatus: 500, responseHead: null, errorKind: 'HTTP_STATUS', error: expect.stringMatching(/^the answer could not be stored/) },
      ]);
      expect(await store.notifications.get(n!.notifyId)).toMatchObject({ status: 'PENDING', attempts: 1, leaseOwner: null });
      expect(r.received).toHaveLength(1);
    } finally {
      sender.close();
      await r.close();
      await t.close();
    }
  });
});

/** A 10.50 USDT order of `merchant`'s with `notifyUrl`, paid exactly: its ORDER_PAID notification's id. */
async function paidNotification(t: TestGateway, merchant: TestGateway['merchant'], notifyUrl: string): Promise<string> {
  const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(merchant, t.clock, { notify_url: notifyUrl }), merchant, clock: t.clock });
  const no = String(res.json.data!.payment_order_no);
  await observeTransfer(t, { paymentOrderNo: no, amount: 10_500_000n });
  return (await t.gateway.store.notifications.listByOrder(no))[0]!.notifyId;
}

describe.each(DATABASE_KINDS)('attempt log across a resend on %s', (kind) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ kind, workers: false });
  });
  afterAll(async () => {
    await t?.close();
  });

  const delivery = (owner: string, sender: NotificationSender) =>
    new NotificationDelivery({ store: t.gateway.store, clock: t.clock, platformKeys: t.gateway.platformKeys, sender, log: pino({ level: 'silent' }) }, { owner, leaseMs: 15_000, concurrency: 4, perDestination: 4 });
  /** A sender that dies mid-attempt: it never answers, and nothing of it is recorded. */
  const dead: NotificationSender = { send: () => new Promise<never>(() => undefined) };
  const delivering: NotificationSender = { send: async () => ({ delivered: true, httpStatus: 200, latencyMs: 1, responseHead: 'SUCCESS', errorKind: null, error: null }) };


  it.each([
    ['its lease ran out', false],
    ['the notification was resent meanwhile (which clears the lease)', true],
  ])('an attempt whose sender died is INTERRUPTED in the log once the next attempt is claimed: %s', async (_why, resend) => {
    const notifyId = await paidNotification(t, t.merchant, 'http://receiver.example/n');
    expect(await delivery('dead', dead).deliverDue({ scan: true })).toBe(1);
    t.clock.advance(20);
    if (resend) expect((await resendNotification({ store: t.gateway.store, clock: t.clock }, notifyId)).ok).toBe(true);
    const alive = delivery('alive', delivering);
    expect(await alive.deliverDue({ scan: true })).toBe(1);
    await alive.idle();
    const log = await t.gateway.store.notifications.listAttempts(notifyId);
    expect(log.map((a) => [a.attemptNo, a.series, a.outcome, a.finishedAt === null])).toEqual([
      [1, 1, 'INTERRUPTED', false],
      [2, resend ? 2 : 1, 'DELIVERED', false],
    ]);
    expect(log[0]!.error).toMatch(resend ? /resent/ : /sender dead stopped/);
    expect(await t.gateway.store.notifications.get(notifyId)).toMatchObject({ status: 'DELIVERED', attempts: 1 });
  });

  it.each([
    ['its lease ran out', false],
    ['the notification was resent meanwhile', true],
  ])('counts an attempt once in the metrics when its sender, alive after all, reports it after another took the notification over: %s', async (_why, resend) => {
    const counted: string[] = [];
    const metrics = { ...noMetrics, notificationAttempt: (outcome: string) => void counted.push(outcome) };
    let answer!: (r: SendResult) => void;
    const slow: NotificationSender = { send: () => new Promise<SendResult>((r) => (answer = r)) };
    const counting = (owner: string, sender: NotificationSender) =>
      new NotificationDelivery({ store: t.gateway.store, clock: t.clock, platformKeys: t.gateway.platformKeys, sender, log: pino({ level: 'silent' }), metrics }, { owner, leaseMs: 15_000, concurrency: 4, perDestination: 4 });
    const notifyId = await paidNotification(t, t.merchant, 'http://receiver.example/n');
    const first = counting('slow-but-alive', slow);
    expect(await first.deliverDue({ scan: true })).toBe(1);
    t.clock.advance(20);
    if (resend) expect((await resendNotification({ store: t.gateway.store, clock: t.clock }, notifyId)).ok).toBe(true);
    const taker = counting('taker', delivering);
    expect(await taker.deliverDue({ scan: true })).toBe(1);
    await taker.idle();
    // The first sender's receiver answers at last: its outcome replaces INTERRUPTED in the log.
    answer({ delivered: false, httpStatus: 500, latencyMs: 20_000, responseHead: 'busy', errorKind: 'HTTP_STATUS', error: 'HTTP 500' });
    await first.idle();
    expect((await t.gateway.store.notifications.listAttempts(notifyId)).map((a) => a.outcome)).toEqual(['FAILED', 'DELIVERED']);
    // Two attempts, counted once each (the first as the taker saw it).
    expect(counted.sort()).toEqual(['DELIVERED', 'INTERRUPTED']);
  });
});

describe.each(DATABASE_KINDS)('one application at its limit on %s', (kind) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ kind, workers: false });
  });
  afterAll(async () => {
    await t?.close();
  });


  it("leaves the other applications room: a merchant's many dead hosts hold only its share of the attempts", async () => {
    const started: string[] = [];
    // Every host of the first merchant never answers; the other merchant's receiver does at once.
    const sender: NotificationSender = {
      send: (url) => {
        started.push(new URL(url).hostname);
        return url.includes('dead') ? new Promise<never>(() => undefined) : Promise.resolve({ delivered: true, httpStatus: 200, latencyMs: 1, responseHead: 'SUCCESS', errorKind: null, error: null });
      },
    };
    for (let i = 0; i < 6; i += 1) await paidNotification(t, t.merchant, `http://dead${i}.example/n`);
    t.clock.advance(1);
    const healthy = await paidNotification(t, t.otherMerchant, 'http://shop.example/n');
    const delivery = new NotificationDelivery(
      { store: t.gateway.store, clock: t.clock, platformKeys: t.gateway.platformKeys, sender, log: pino({ level: 'silent' }) },
      { owner: 'fair', leaseMs: 15_000, concurrency: 4, perDestination: 1, perApplication: 2 },
    );
    // Oldest first would be four dead hosts; the first merchant gets two slots, the other merchant one.
    expect(await delivery.deliverDue({ scan: true })).toBe(3);
    await waitUntil('the other merchant delivered', async () => (await t.gateway.store.notifications.get(healthy))?.status === 'DELIVERED');
    await waitUntil('the three attempts sent', async () => started.length === 3);
    expect(started.filter((h) => h.startsWith('dead'))).toHaveLength(2);
    expect(started).toContain('shop.example');
    // Nothing more for the first merchant while its two attempts hang, though a slot is free.
    expect(await delivery.deliverDue({ scan: true })).toBe(0);
  });

  it('still sends another application\'s notification to a host it shares with an application at its limit', async () => {
    const started: string[] = [];
    const sender: NotificationSender = {
      send: (url) => {
        started.push(url);
        return url.includes('dead') ? new Promise<never>(() => undefined) : Promise.resolve({ delivered: true, httpStatus: 200, latencyMs: 1, responseHead: 'SUCCESS', errorKind: null, error: null });
      },
    };
    t.clock.advance(60);
    await paidNotification(t, t.merchant, 'http://dead-a.example/n');
    t.clock.advance(1);
    await paidNotification(t, t.merchant, 'http://dead-b.example/n');
    t.clock.advance(1);
    await paidNotification(t, t.merchant, 'http://hooks.shared.example/a');
    t.clock.advance(1);
    const other = await paidNotification(t, t.otherMerchant, 'http://hooks.shared.example/b');
    const delivery = new NotificationDelivery(
      { store: t.gateway.store, clock: t.clock, platformKeys: t.gateway.platformKeys, sender, log: pino({ level: 'silent' }) },
      { owner: 'shared', leaseMs: 15_000, concurrency: 4, perDestination: 1, perApplication: 2 },
    );
    for (let i = 0; i < 3; i += 1) await delivery.deliverDue({ scan: true });
    await waitUntil('the other merchant delivered', async () => (await t.gateway.store.notifications.get(other))?.status === 'DELIVERED');
    expect(started).toContain('http://hooks.shared.example/b');
    expect(started).not.toContain('http://hooks.shared.example/a');
  });
});

describe.each(DATABASE_KINDS)("an application's freed slot on %s", (kind) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ kind, workers: false });
  });
  afterAll(async () => {
    await t?.close();
  });


  it('starts the application\'s next due notification as soon as its slot frees, not at the next poll', async () => {
    const started: string[] = [];
    const answers: ((r: SendResult) => void)[] = [];
    const sender: NotificationSender = {
      send: (url) => {
        started.push(new URL(url).hostname);
        return new Promise<SendResult>((resolve) => answers.push(resolve));
      },
    };
    await paidNotification(t, t.merchant, 'http://one.example/n');
    t.clock.advance(1);
    await paidNotification(t, t.merchant, 'http://two.example/n');
    const delivery = new NotificationDelivery(
      { store: t.gateway.store, clock: t.clock, platformKeys: t.gateway.platformKeys, sender, log: pino({ level: 'silent' }) },
      { owner: 'refill', leaseMs: 15_000, concurrency: 4, perDestination: 4, perApplication: 1 },
    );
    expect(await delivery.deliverDue({ scan: true })).toBe(1);
    await new Promise((r) => setTimeout(r, 50));
    expect(started).toEqual(['one.example']);
    answers[0]!({ delivered: true, httpStatus: 200, latencyMs: 1, responseHead: 'SUCCESS', errorKind: null, error: null });
    await delivery.idle();
    // What the worker's onSettled does: a pass without a scan.
    expect(await delivery.deliverDue()).toBe(1);
    await new Promise((r) => setTimeout(r, 50));
    expect(started).toEqual(['one.example', 'two.example']);
    answers[1]?.({ delivered: true, httpStatus: 200, latencyMs: 1, responseHead: 'SUCCESS', errorKind: null, error: null });
    await delivery.idle();
  });
});
