// Notification delivery when things go wrong for real (PROTOCOL §13): a gateway process killed
// with SIGKILL while deliveries are in flight loses nothing, and repeats only what it could not
// know the outcome of; two gateways on one database send each notification once. Real
// processes (`sparkpay start` from the built dist: `npx tsc -b packages/gateway`), real
// databases, real HTTP receivers.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomIds } from '../src/adapters/crypto/random-ids.js';
import { systemClock } from '../src/app/ports.js';
import type { NotificationAttemptRecord, NotificationRecord } from '../src/app/records.js';
import { paymentFacts, type TransferFact } from '../src/app/record-payment.js';
import { loadConfig } from '../src/cli/config.js';
import { createGateway, openCore, type Gateway } from '../src/cli/gateway.js';
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from './databases.js';
import { api, createTestMerchant, ManualClock, orderBody, startTestGateway, TEST_MASTER_KEY, WALLET, type TestGateway } from './harness.js';
import { openReceived, startReceiver, SUCCESS, type Answer, type Received, type Receiver } from './notify-receiver.js';
import { assertGatewayBuilt, freePort, startGatewayProcess, stopProcess, waitHealthy, type GatewayProcess } from './processes.js';
import { pause, waitUntil } from './wait.js';

/** The child gateways run on the system clock, so requests to them are signed with real time. */
class RealClock extends ManualClock {
  override nowMs(): number {
    return Date.now();
  }
  override seconds(): number {
    return Math.floor(Date.now() / 1000);
  }
}

/** A final, exact 10.50 USDT transfer on Polygon: makes a 10.50 USDT order PAID. */
function exactFinalTransfer(paymentOrderNo: string): TransferFact {
  return {
    paymentOrderNo,
    network: '4',
    currency: 'USDT',
    amount: 10_500_000n,
    txHash: `0x${randomBytes(32).toString('hex')}`,
    logIndex: 0,
    blockNumber: 1000,
    blockHash: `0x${randomBytes(32).toString('hex')}`,
    address: WALLET,
    confirmations: 64,
    status: 'FINAL',
  };
}

const attemptKey = (a: Pick<NotificationAttemptRecord, 'notifyId' | 'attemptNo'>) => `${a.notifyId}#${a.attemptNo}`;

describe.each(DATABASE_KINDS)('notification delivery across a SIGKILL of the gateway process on %s', (kind) => {
  const ORDERS = 30;
  /** The receiver answers the first requests at once (deliveries completed before the crash) and holds the rest. */
  const ANSWERED_BEFORE_CRASH = 10;
  const MIN_HELD_AT_KILL = 5;
  /** Of those held, how many are answered SUCCESS after the process froze, just before it dies. */
  const ANSWERED_WHILE_FROZEN = 2;
  const TIMEOUT_MS = 3_000;
  const LEASE_MS = TIMEOUT_MS + 5_000; // config.ts: lease = timeout + 5 s

  let db: TestDatabase | undefined;
  let dataDir: string | undefined;
  let core: Awaited<ReturnType<typeof openCore>> | undefined;
  let receiver: Receiver | undefined;
  const children: GatewayProcess[] = [];

  beforeAll(async () => {
    assertGatewayBuilt();
    db = await createTestDatabase(kind);
    dataDir = mkdtempSync(join(tmpdir(), 'sparkpay-crash-'));
    writeFileSync(join(dataDir, 'config.json'), JSON.stringify({ notify: { timeout_ms: TIMEOUT_MS, poll_ms: 50 } }));
    // The test's own connection to the gateway's database, with the same configuration.
    const config = loadConfig('production', { SPARKPAY_DATA_DIR: dataDir, SPARKPAY_MASTER_KEY: TEST_MASTER_KEY, SPARKPAY_DATABASE_URL: db.url });
    expect(config.notify).toMatchObject({ timeoutMs: TIMEOUT_MS, pollMs: 50, leaseMs: LEASE_MS });
    core = await openCore(config, systemClock, randomIds);
  });

  afterAll(async () => {
    await Promise.all(children.map((c) => stopProcess(c, 'SIGKILL')));
    await receiver?.close();
    await core?.db.close();
    await db?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }, 30_000);

  it('loses no notification, and repeats only those whose outcome the dead process had not recorded', async () => {
    const store = core!.store;
    const merchant = await createTestMerchant(core!, { name: 'Crash Test Shop' });
    const keys = { merchantPrivateKey: merchant.privateKey, platformPublicKey: merchant.platformPublicKey };
    const clock = new RealClock();
    const vars = {
      SPARKPAY_DATA_DIR: dataDir!,
      SPARKPAY_DATABASE_URL: db!.url,
      SPARKPAY_MASTER_KEY: TEST_MASTER_KEY,
      SPARKPAY_NOTIFY_ALLOW_PRIVATE: '1',
    };
    // The first requests are answered at once (deliveries completed before the crash); later
    // ones wait for the test to decide.
    const gate = new Map<Received, (answer: Answer) => void>();
    receiver = await startReceiver((req, i) => (i < ANSWERED_BEFORE_CRASH ? SUCCESS : new Promise<Answer>((resolve) => gate.set(req, resolve))));
    const rx = receiver;
    const notifyIdOf = (r: Received) => String(openReceived(r, keys).payload.notify_id);

    // --- Phase 1: a gateway delivering; killed while requests await an answer.
    const first = startGatewayProcess({ name: 'first', port: await freePort(), env: vars });
    children.push(first);
    await waitHealthy(first, 20_000);
    const firstPid = first.proc.pid!;

    const orderNos: string[] = [];
    for (let i = 0; i < ORDERS; i += 1) {
      const res = await api(first.baseUrl, { path: '/v4/pay/cashier', body: orderBody(merchant, clock, { notify_url: rx.url }), merchant, clock });
      expect(res.json, res.text).toMatchObject({ code: 0 });
      orderNos.push(String(res.json.data!.payment_order_no));
    }
    // Paid from this process on its own connection: the outbox rows reach the child by its poll.
    const payments = paymentFacts({ store, clock: systemClock, ids: randomIds });
    const phase1Start = performance.now();
    for (const no of orderNos) {
      const outcome = await payments.transferObserved(exactFinalTransfer(no));
      expect(outcome).toMatchObject({ ok: true, changed: true, order: { state: { status: 'PAID' } } });
    }
    await waitUntil(`${MIN_HELD_AT_KILL} requests awaiting an answer`, () => gate.size >= MIN_HELD_AT_KILL, 20_000, () => `received ${rx.received.length}\n${first.output.join('')}`);
    // Frozen (SIGSTOP), the child can neither send nor record anything more (nor time out).
    first.proc.kill('SIGSTOP');
    const frozenAfterFirstHeldMs = Math.round(performance.now() - Math.min(...[...gate.keys()].map((r) => r.at)));
    const phase1Ms = Math.round(performance.now() - phase1Start);
    // Bytes it had written before may still be on their way.
    await pause(200);
    // Two held requests are answered SUCCESS now: the answers reach the frozen child's socket,
    // but it dies before it can record them.
    const answeredWhileFrozen = [...gate.keys()].slice(0, ANSWERED_WHILE_FROZEN);
    for (const r of answeredWhileFrozen) gate.get(r)!(SUCCESS);
    await waitUntil('the answers to the frozen child written', () => answeredWhileFrozen.every((r) => r.answeredAt !== null), 5_000);
    await pause(100);
    await stopProcess(first, 'SIGKILL');
    expect(first.proc.signalCode).toBe('SIGKILL');
    for (const [r, answer] of gate) if (r.answeredAt === null) answer({ action: 'hang' });
    await pause(100);

    const receivedAtKill = rx.received.map((r) => ({ notifyId: notifyIdOf(r), answered: r.answeredAt !== null }));
    const heldAtKill = new Set(receivedAtKill.filter((r) => !r.answered).map((r) => r.notifyId));
    const answeredAtKill = new Set(receivedAtKill.filter((r) => r.answered).map((r) => r.notifyId));
    const answeredToTheFrozen = new Set(answeredWhileFrozen.map(notifyIdOf));
    expect(heldAtKill.size).toBeGreaterThanOrEqual(MIN_HELD_AT_KILL - ANSWERED_WHILE_FROZEN);
    expect(answeredToTheFrozen.size).toBe(ANSWERED_WHILE_FROZEN);

    // What the database says after the crash (nothing can change it until the restart).
    const notifications = new Map<string, NotificationRecord>();
    for (const no of orderNos) {
      const list = await store.notifications.listByOrder(no);
      expect(list.map((n) => n.notifyType)).toEqual(['ORDER_PAID']);
      notifications.set(list[0]!.notifyId, list[0]!);
    }
    const atKill = new Map<string, { row: NotificationRecord; attempts: NotificationAttemptRecord[] }>();
    for (const [id, row] of notifications) atKill.set(id, { row, attempts: await store.notifications.listAttempts(id) });
    const inFlightAtKill = [...atKill.values()].flatMap((n) => n.attempts.filter((a) => a.outcome === 'IN_FLIGHT'));
    const inFlightIdsAtKill = new Set(inFlightAtKill.map((a) => a.notifyId));
    const deliveredAtKill = new Set([...atKill].filter(([, n]) => n.row.status === 'DELIVERED').map(([id]) => id));
    // Each request awaiting an answer at the kill, or answered too late for the process to record
    // it, was an attempt the dead process still owned.
    for (const id of [...heldAtKill, ...answeredToTheFrozen]) {
      expect(inFlightIdsAtKill.has(id), `${id} has an IN_FLIGHT attempt at the kill (frozen ${frozenAfterFirstHeldMs} ms after the first held request; timeout ${TIMEOUT_MS} ms)`).toBe(true);
      expect(deliveredAtKill.has(id)).toBe(false);
    }
    for (const a of inFlightAtKill) {
      expect(a.sender).toContain(`/${firstPid}/`);
      expect(atKill.get(a.notifyId)!.row).toMatchObject({ status: 'PENDING', attemptNo: a.attemptNo, leaseOwner: a.sender, nextAttemptAt: a.startedAt + LEASE_MS });
    }
    // Answered and recorded before the crash: nothing for anyone to do.
    for (const id of deliveredAtKill) expect(answeredAtKill.has(id), `${id} DELIVERED in the database was answered by the receiver`).toBe(true);

    // --- Phase 2: the receiver answers SUCCESS at once; a new process on the same database and data dir.
    rx.behaviour = () => SUCCESS;
    const second = startGatewayProcess({ name: 'second', port: await freePort(), env: vars });
    children.push(second);
    const restartedAt = Date.now();
    await waitHealthy(second, 20_000);
    const secondPid = second.proc.pid!;
    const statuses = async () => Promise.all([...notifications.keys()].map(async (id) => (await store.notifications.get(id))!.status));
    let last: string[] = [];
    await waitUntil(
      'every notification DELIVERED',
      async () => {
        last = await statuses();
        return last.every((s) => s === 'DELIVERED');
      },
      40_000,
      () => `${JSON.stringify(last)}\n${second.output.join('')}`,
    );
    const phase2Ms = Date.now() - restartedAt;
    // Anything sent late would show up here; then no more senders.
    await pause(300);
    await stopProcess(second, 'SIGTERM');
    expect(second.proc.exitCode, second.output.join('')).toBe(0);

    // --- What the receiver got.
    const byId = new Map<string, Received[]>();
    for (const r of rx.received) {
      const id = notifyIdOf(r);
      byId.set(id, [...(byId.get(id) ?? []), r]);
    }
    expect(new Set(byId.keys()), 'only our notifications were sent').toEqual(new Set(notifications.keys()));
    const duplicated = [...byId].filter(([, rs]) => rs.length > 1).map(([id]) => id);
    for (const [id, rs] of byId) {
      // None lost: each notification reached the receiver.
      expect(rs.length, id).toBeGreaterThanOrEqual(1);
      // The same notification every time: same notify_id, same payload JSON (notify_time included).
      const opened = rs.map((r) => openReceived(r, keys));
      for (const o of opened) {
        expect(o.payload.notify_id).toBe(id);
        expect(o.payloadJson).toBe(opened[0]!.payloadJson);
      }
      if (opened.length > 1) expect(new Set(opened.map((o) => o.envelope.head.aes_key)).size, 'a fresh envelope per attempt').toBe(opened.length);
    }
    // A repeat happens only for what the dead process had sent without recording an outcome.
    for (const id of duplicated) {
      expect(heldAtKill.has(id) || answeredAtKill.has(id), `${id} repeated: it had reached the receiver before the kill`).toBe(true);
      expect(inFlightIdsAtKill.has(id), `${id} repeated: its attempt was IN_FLIGHT at the kill`).toBe(true);
    }
    // ...and each of those is repeated: the gateway cannot know the receiver has it, even when the
    // receiver had answered SUCCESS (at least once, never exactly once).
    for (const id of heldAtKill) expect(byId.get(id)!.length, `${id} held at the kill is sent again`).toBeGreaterThanOrEqual(2);
    for (const id of answeredToTheFrozen) expect(byId.get(id)!.length, `${id} answered but not recorded is sent again`).toBeGreaterThanOrEqual(2);
    // A delivery recorded before the crash is never repeated.
    for (const id of deliveredAtKill) expect(byId.get(id)!.length, `${id} delivered before the kill`).toBe(1);

    // --- The attempt log.
    const interruptedNow: NotificationAttemptRecord[] = [];
    for (const id of notifications.keys()) {
      const row = (await store.notifications.get(id))!;
      const log = await store.notifications.listAttempts(id);
      expect(row).toMatchObject({ status: 'DELIVERED', leaseOwner: null, series: 1, attemptNo: log.length });
      expect(log.map((a) => a.attemptNo)).toEqual(log.map((_, i) => i + 1));
      expect(log.filter((a) => a.outcome === 'IN_FLIGHT')).toEqual([]);
      expect(log.filter((a) => a.outcome === 'DELIVERED'), `${id}: exactly one DELIVERED attempt`).toHaveLength(1);
      expect(log.at(-1)!.outcome).toBe('DELIVERED');
      // An interrupted attempt does not use up one of the eight.
      expect(row.attempts).toBe(log.filter((a) => a.outcome !== 'INTERRUPTED').length);
      // Each request came from an attempt of its own.
      expect(byId.get(id)!.length, `${id}: requests ≤ attempts`).toBeLessThanOrEqual(log.length);
      // Every receipt carries the notify_time of the first attempt.
      const payload = openReceived(byId.get(id)![0]!, keys).payload;
      expect(payload.notify_time).toBe(Math.floor(log[0]!.startedAt / 1000));
      for (const a of log.filter((x) => x.outcome === 'INTERRUPTED')) {
        interruptedNow.push(a);
        // Taken over only after the dead process's lease ran out, by the new process, which sent it again.
        expect(a).toMatchObject({ errorKind: 'INTERRUPTED', httpStatus: null, finishedAt: expect.any(Number) });
        expect(a.error).toContain(a.sender);
        expect(a.finishedAt!).toBeGreaterThanOrEqual(a.startedAt + LEASE_MS);
        const next = log.find((x) => x.attemptNo === a.attemptNo + 1)!;
        expect(next.sender).toContain(`/${secondPid}/`);
        expect(next.startedAt).toBe(a.finishedAt);
      }
    }
    // Exactly the attempts the dead process had in flight were marked INTERRUPTED: no more, no fewer.
    expect(new Set(interruptedNow.map(attemptKey))).toEqual(new Set(inFlightAtKill.map(attemptKey)));

    const answeredNotRecorded = [...answeredAtKill].filter((id) => !deliveredAtKill.has(id));
    const neverReached = [...inFlightIdsAtKill].filter((id) => !heldAtKill.has(id) && !answeredAtKill.has(id));
    console.info(
      `[${kind}] crash: ${ORDERS} notifications; frozen ${frozenAfterFirstHeldMs} ms after the first held request (${phase1Ms} ms after the payments began); ` +
        `at the kill: ${receivedAtKill.length} received (${answeredAtKill.size} answered, ${heldAtKill.size} held), ${deliveredAtKill.size} recorded DELIVERED, ` +
        `${inFlightAtKill.length} attempts IN_FLIGHT (${answeredNotRecorded.length} answered SUCCESS but unrecorded, ${neverReached.length} never reached the receiver); ` +
        `after the restart all DELIVERED in ${phase2Ms} ms; ${rx.received.length} requests in all, ${duplicated.length} notify_ids received twice or more`,
    );
  }, 60_000);
});

describe.each(DATABASE_KINDS)('two gateway instances delivering from one database on %s', (kind) => {
  const ORDERS = 60;
  const NOTIFY = { timeoutMs: 10_000, concurrency: 16, perDestination: 8, pollMs: 20, leaseMs: 15_000 };
  let t: TestGateway | undefined;
  let second: Gateway | undefined;
  let receiver: Receiver | undefined;

  beforeAll(async () => {
    t = await startTestGateway({ kind, workers: true, config: { notifyAllowPrivate: true, notify: NOTIFY } });
    second = await createGateway({ config: t.gateway.config, clock: t.clock, workers: true, logger: pino({ level: process.env.SPARKPAY_TEST_LOG ?? 'silent' }) });
    await second.listen();
    receiver = await startReceiver(() => SUCCESS);
  });

  afterAll(async () => {
    await second?.close();
    await t?.close();
    await receiver?.close();
  });

  it('sends each of 60 notifications exactly once', async () => {
    const gw = t!;
    const rx = receiver!;
    const orderNos: string[] = [];
    for (let i = 0; i < ORDERS; i += 1) {
      const res = await api(gw.baseUrl, { path: '/v4/pay/cashier', body: orderBody(gw.merchant, gw.clock, { notify_url: rx.url }), merchant: gw.merchant, clock: gw.clock });
      expect(res.json, res.text).toMatchObject({ code: 0 });
      orderNos.push(String(res.json.data!.payment_order_no));
    }
    // Paid all at once, alternately through either instance (each wakes its own worker; both poll).
    const outcomes = await Promise.all(orderNos.map((no, i) => (i % 2 === 0 ? gw.gateway : second!).payments.transferObserved(exactFinalTransfer(no))));
    for (const o of outcomes) expect(o).toMatchObject({ ok: true, changed: true });
    const ids = await Promise.all(orderNos.map(async (no) => (await gw.gateway.store.notifications.listByOrder(no)).map((n) => n.notifyId)));
    for (const list of ids) expect(list).toHaveLength(1);
    const notifyIds = ids.flat();

    let last: string[] = [];
    await waitUntil(
      'every notification DELIVERED',
      async () => {
        last = await Promise.all(notifyIds.map(async (id) => (await gw.gateway.store.notifications.get(id))!.status));
        return last.every((s) => s === 'DELIVERED');
      },
      30_000,
      () => JSON.stringify(last),
    );
    // A second sender of the same notification would be on its way now.
    await pause(300);

    expect(rx.received).toHaveLength(ORDERS);
    const keys = { merchantPrivateKey: gw.merchant.privateKey, platformPublicKey: gw.merchant.platformPublicKey };
    const received = rx.received.map((r) => String(openReceived(r, keys).payload.notify_id));
    expect(new Set(received).size).toBe(ORDERS);
    expect(new Set(received)).toEqual(new Set(notifyIds));
    const bySender = new Map<string, number>();
    for (const id of notifyIds) {
      const log = await gw.gateway.store.notifications.listAttempts(id);
      // The clock stands still, so no lease can run out: one attempt each, the one that delivered.
      expect(log, id).toEqual([expect.objectContaining({ attemptNo: 1, outcome: 'DELIVERED', httpStatus: 200 })]);
      bySender.set(log[0]!.sender, (bySender.get(log[0]!.sender) ?? 0) + 1);
    }
    console.info(`[${kind}] two instances: ${ORDERS} notifications sent by ${JSON.stringify(Object.fromEntries(bySender))}`);
  }, 60_000);
});
