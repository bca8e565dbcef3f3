import { generateRsaKeyPair, parsePrivateKey } from '@sparkpay/protocol';
import { describe, expect, it } from 'vitest';
import { NotificationDelivery, perApplicationLimit, withNotifyTime, type DeliveryOptions } from './deliver-notifications.js';
import type { PlatformKeys } from './platform-keys.js';
import type { DueNotification, EventLog, NotificationSender, SendResult, Store } from './ports.js';
import type { NotificationRecord } from './records.js';

// One application's share of the process's delivery attempts (a review of notification delivery:
// with concurrency at most per_destination, one merchant's backlog took every attempt).
describe('perApplicationLimit', () => {
  it('leaves the other applications a destination\'s worth, and never fewer than one attempt', () => {
    expect(perApplicationLimit(64, 8)).toBe(56);
    expect(perApplicationLimit(16, 8)).toBe(8);
    expect(perApplicationLimit(12, 8)).toBe(8);
    expect(perApplicationLimit(8, 8)).toBe(7);
    expect(perApplicationLimit(4, 8)).toBe(3);
    expect(perApplicationLimit(2, 1)).toBe(1);
    expect(perApplicationLimit(1, 8)).toBe(1);
  });
});

describe('withNotifyTime', () => {
  it('appends notify_time as the last member, leaving the stored bytes as they are', () => {
    const stored = JSON.stringify({ payment_order_no: 'P1', amount: '1.50', note: 'ü "q" }', notify_id: 'N1', notify_type: 'ORDER_PAID' });
    const sent = withNotifyTime(stored, 1_795_608_000);
    expect(sent).toBe(`${stored.slice(0, -1)},"notify_time":1795608000}`);
    expect(JSON.parse(sent)).toEqual({ ...(JSON.parse(stored) as object), notify_time: 1_795_608_000 });
    expect(Object.keys(JSON.parse(sent) as object).at(-1)).toBe('notify_time');
  });

  it('handles an empty object and refuses anything that is not an object', () => {
    expect(withNotifyTime('{}', 5)).toBe('{"notify_time":5}');
    expect(() => withNotifyTime('[1]', 5)).toThrow(/not a JSON object/);
  });
});

// ---- the delivery worker against an in-memory outbox ------------------------------------------
// The outbox filters as the store's queries do (due, PENDING, destinations and applications left
// out); the sender holds every attempt until the test answers it.

interface OutboxRow {
  notifyId: string;
  appId: string;
  destination: string;
  url: string;
  status: 'PENDING' | 'DELIVERED' | 'FAILED';
  attempts: number;
  nextAttemptAt: number;
  series: number;
  attemptNo: number;
  leaseOwner: string | null;
  deliveredAt: number | null;
}

const KEYS = { merchant: generateRsaKeyPair(), platform: generateRsaKeyPair() };

function outboxWorld() {
  const clock = { now: 1_000_000, nowMs: () => clock.now };
  const rows = new Map<string, OutboxRow>();
  const calls = { listDueAt: 0, skipped: 0, recorded: [] as string[][] };
  /** Each query costs this much of the clock (a database under load). */
  let queryMs = 0;
  const due = (now: number) => [...rows.values()].filter((r) => r.status === 'PENDING' && r.nextAttemptAt <= now);
  const toDue = (r: OutboxRow): DueNotification => ({ notifyId: r.notifyId, series: r.series, attemptNo: r.attemptNo, leaseOwner: r.leaseOwner, notifyUrl: r.url, appId: r.appId, destination: r.destination });
  let inRecord: string[] | null = null;
  const notifications = {
    async listDue(now: number, limit: number, skipDestinations: readonly string[], skipApps: readonly string[] = []) {
      clock.now += queryMs;
      calls.skipped = Math.max(calls.skipped, skipDestinations.length);
      return due(now)
        .filter((r) => !skipDestinations.includes(r.destination) && !skipApps.includes(r.appId))
        .slice(0, limit)
        .map(toDue);
    },
    async listDueAt(destination: string, now: number, limit: number, skipApps: readonly string[] = []) {
      clock.now += queryMs;
      calls.listDueAt += 1;
      return due(now)
        .filter((r) => r.destination === destination && !skipApps.includes(r.appId))
        .slice(0, limit)
        .map(toDue);
    },
    async claim(d: DueNotification, owner: string, now: number, leaseUntil: number): Promise<NotificationRecord | null> {
      const r = rows.get(d.notifyId);
      if (!r || r.status !== 'PENDING' || r.series !== d.series || r.attemptNo !== d.attemptNo || r.nextAttemptAt > now) return null;
      Object.assign(r, { leaseOwner: owner, attemptNo: r.attemptNo + 1, nextAttemptAt: leaseUntil });
      return {
        notifyId: r.notifyId,
        paymentOrderNo: `P${r.notifyId}`,
        notifyType: 'ORDER_PAID',
        sequence: 1,
        payload: '{"a":1}',
        status: 'PENDING',
        attempts: r.attempts,
        nextAttemptAt: r.nextAttemptAt,
        createdAt: 0,
        series: r.series,
        attemptNo: r.attemptNo,
        notifyTime: Math.floor(now / 1000),
        leaseOwner: owner,
        deliveredAt: null,
        destination: r.destination,
      };
    },
    async insertAttempt() {},
    async finishAttempt() {
      inRecord?.push('finishAttempt');
      return 'IN_FLIGHT' as const;
    },
    async settle(notifyId: string, guard: { owner: string; series: number; attemptNo: number }, next: { status: OutboxRow['status']; attempts: number; nextAttemptAt: number; deliveredAt: number | null }) {
      inRecord?.push('settle');
      const r = rows.get(notifyId)!;
      if (r.leaseOwner !== guard.owner || r.series !== guard.series || r.attemptNo !== guard.attemptNo) return false;
      Object.assign(r, { status: next.status, attempts: next.attempts, nextAttemptAt: next.nextAttemptAt, deliveredAt: next.deliveredAt, leaseOwner: null });
      return true;
    },
    async deliveredLate(notifyId: string, series: number, deliveredAt: number) {
      inRecord?.push('deliveredLate');
      const r = rows.get(notifyId)!;
      if (r.series !== series || r.status !== 'PENDING') return false;
      Object.assign(r, { status: 'DELIVERED', deliveredAt, nextAttemptAt: deliveredAt, leaseOwner: null });
      return true;
    },
  };
  const store = {
    notifications,
    applications: { get: async () => ({ merchantPublicKeyPem: KEYS.merchant.publicKeyPem }) },
    async transaction<T>(fn: (tx: unknown) => Promise<T>) {
      const mine: string[] = [];
      inRecord = mine;
      try {
        return await fn(store);
      } finally {
        inRecord = null;
        if (mine.length > 0) calls.recorded.push(mine);
      }
    },
  };
  const platformKeys = { signingKeyFor: async () => ({ serial: 'S1', privateKey: parsePrivateKey(KEYS.platform.privateKeyPem) }) };
  let seq = 0;
  const add = (appId: string, url: string) => {
    seq += 1;
    const notifyId = `N${String(seq).padStart(7, '0')}`;
    rows.set(notifyId, { notifyId, appId, destination: new URL(url).host, url, status: 'PENDING', attempts: 0, nextAttemptAt: clock.now, series: 1, attemptNo: 0, leaseOwner: null, deliveredAt: null });
    return notifyId;
  };
  const held: { url: string; at: number; answer: (r: SendResult) => void }[] = [];
  const sender: NotificationSender = { send: (url: string) => new Promise<SendResult>((answer) => held.push({ url, at: clock.now, answer })) };
  const timeout = (n: number) => {
    for (const h of held.splice(0, n)) h.answer({ delivered: false, httpStatus: null, latencyMs: 10_000, responseHead: null, errorKind: 'TIMEOUT', error: 'no answer' });
  };
  const log = { info() {}, warn() {}, error() {}, debug() {} };
  const delivery = (options: Partial<DeliveryOptions> = {}) =>
    new NotificationDelivery(
      { store: store as unknown as Store, clock, platformKeys: platformKeys as unknown as PlatformKeys, sender, log: log as unknown as EventLog },
      { owner: 'me', leaseMs: 15_000, concurrency: 64, perDestination: 8, perApplication: 56, ...options },
    );
  return { clock, rows, calls, add, held, timeout, delivery, setQueryMs: (ms: number) => (queryMs = ms) };
}

const settled = async () => {
  for (let i = 0; i < 5; i += 1) await new Promise((r) => setImmediate(r));
};

/** Waits (on the event loop, not the test clock) until `n` attempts are being sent: each builds its envelope first. */
const sending = async (w: { held: unknown[] }, n: number) => {
  for (let i = 0; i < 10_000 && w.held.length < n; i += 1) await new Promise((r) => setImmediate(r));
  expect(w.held).toHaveLength(n);
};

describe('the delivery worker and a merchant at its limit with many dead hosts', () => {
  it('keeps a pass to a bounded number of queries: the merchant\'s hosts are not backlogged for its own limit', async () => {
    const w = outboxWorld();
    for (let i = 0; i < 600; i += 1) w.add('M', `http://dead-${i}.example/notify`);
    const d = w.delivery();
    await d.deliverDue({ scan: true });
    await sending(w, 56);
    let queries = 0;
    for (let round = 0; round < 150; round += 1) {
      // One of its attempts times out; the freed slot's pass runs.
      w.timeout(1);
      await settled();
      const before = w.calls.listDueAt;
      await d.deliverDue();
      queries = w.calls.listDueAt - before;
      await sending(w, 56);
    }
    // Before: the backlog grew by up to 7 hosts a freed slot (about 500 here), a pass asked about
    // each, and the look at everything due left each out by name. Now at most 64 of its hosts
    // wait for its limit, and none is asked about while it is full.
    expect(queries).toBeLessThanOrEqual(2);
    expect(w.calls.skipped).toBeLessThanOrEqual(64 + 8);
    expect(w.held).toHaveLength(56);
  });

  it('sends another merchant\'s notification at once, with a lease that covers its whole send even when the pass was slow', async () => {
    const w = outboxWorld();
    for (let i = 0; i < 600; i += 1) w.add('M', `http://dead-${i}.example/notify`);
    const d = w.delivery();
    await d.deliverDue({ scan: true });
    await sending(w, 56);
    w.setQueryMs(50);
    const g = w.add('G', 'http://shop-g.example/notify');
    w.timeout(1);
    await settled();
    await d.deliverDue({ scan: true });
    // M's next (its freed slot) and G's, whose merchant is not at its limit.
    await sending(w, 57);
    const send = w.held.find((h) => h.url.includes('shop-g'));
    expect(send).toBeDefined();
    // The lease runs from the claim: it ends 15 s after the send began, not earlier.
    expect(w.rows.get(g)!.nextAttemptAt).toBeGreaterThanOrEqual(send!.at + 15_000);
  });
});

describe('the delivery worker recording an outcome', () => {
  /** One notification being sent; `takenOver`: another instance holds it now (this sender's lease ran out), sending attempt 2. */
  const oneInFlight = async (takenOver: boolean) => {
    const w = outboxWorld();
    const id = w.add('A', 'http://shop.example/notify');
    const d = w.delivery();
    await d.deliverDue({ scan: true });
    await sending(w, 1);
    if (takenOver) Object.assign(w.rows.get(id)!, { leaseOwner: 'other', attemptNo: 2, nextAttemptAt: w.clock.now + 15_000 });
    return { w, d, row: () => w.rows.get(id) };
  };

  it('writes the notification before its attempt (the claim\'s order: no deadlock between the two on PostgreSQL)', async () => {
    const { w, d } = await oneInFlight(false);
    w.timeout(1);
    await d.idle();
    expect(w.calls.recorded).toEqual([['settle', 'finishAttempt']]);
  });

  it('takes a SUCCESS that came after its lease ran out as delivered, though another sender holds it now', async () => {
    const { w, d, row } = await oneInFlight(true);
    w.held.shift()!.answer({ delivered: true, httpStatus: 200, latencyMs: 12_000, responseHead: 'SUCCESS', errorKind: null, error: null });
    await d.idle();
    expect(row()).toMatchObject({ status: 'DELIVERED', leaseOwner: null, deliveredAt: w.clock.now });
    expect(w.calls.recorded).toEqual([['settle', 'deliveredLate', 'finishAttempt']]);
  });

  it('does not take a late failure as anything but a logged attempt', async () => {
    const { w, d, row } = await oneInFlight(true);
    w.timeout(1);
    await d.idle();
    expect(row()).toMatchObject({ status: 'PENDING', leaseOwner: 'other', attemptNo: 2 });
    expect(w.calls.recorded).toEqual([['settle', 'finishAttempt']]);
  });
});
