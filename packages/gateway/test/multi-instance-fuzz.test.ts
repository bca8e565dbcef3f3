// Two in-process gateways (A and B) on ONE database: SQLite (one file, two connections) always,
// and PostgreSQL when SPARKPAY_TEST_DATABASE_URL is set. fast-check generates batches of
// operations sent concurrently to either instance — signed creates with the same or another
// request_no and body, a request replayed on both, closes, queries, cashier selects, payment
// facts fed through either instance's payment port, expiry passes and notification delivery
// passes of both instances to one real receiver, which fails the first zero to two attempts of
// a notification (HTTP 500, another body, a reset connection) — and checks that the outcome is
// one a sequential execution could have produced (PROTOCOL §2, §7, §10, §12, §13, §15; ADR 0001,
// 0005): every notification answered SUCCESS exactly once, after its failures, each attempt logged.
import { createHash } from 'node:crypto';
import { generateNonce } from '@sparkpay/protocol';
import fc from 'fast-check';
import pino, { type Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from '../src/cli/gateway.js';
import { DATABASE_KINDS } from './databases.js';
import { check } from './fuzz.js';
import { api, deploymentWithFactory, orderBody, startTestGateway, WALLET, type ApiResponse, type TestGateway } from './harness.js';
import { openReceived, startReceiver, SUCCESS, type Answer, type Receiver } from './notify-receiver.js';
import { pause, waitUntil } from './wait.js';

const NOTIFY = { timeoutMs: 10_000, concurrency: 16, perDestination: 4, pollMs: 20, leaseMs: 15_000 };
const FULL = 10_500_000n; // 10.50 USDT on Polygon (6 decimals)
const PART = 4_000_000n;

type Inst = 0 | 1;
type Op =
  | { t: 'create'; inst: Inst; slot: number; variant: number }
  | { t: 'replay'; slot: number; variant: number }
  | { t: 'close'; inst: Inst; slot: number }
  | { t: 'query'; inst: Inst; slot: number }
  | { t: 'select'; inst: Inst; slot: number; network: '3' | '4' }
  | { t: 'pay'; inst: Inst; slot: number; amount: 'full' | 'part' }
  | { t: 'expire'; inst: Inst }
  | { t: 'deliver'; inst: Inst };
interface Batch {
  /** Seconds the shared clock moves before the batch (31 min passes the default 30 min deadline). */
  advance: number;
  ops: Op[];
}

const SLOTS = 2;
const inst = fc.constantFrom<Inst>(0, 1);
const variant = fc.integer({ min: 0, max: 1 });
const opArb = (slots: number): fc.Arbitrary<Op> => {
  const slot = fc.integer({ min: 0, max: slots - 1 });
  return fc.oneof(
    { weight: 4, arbitrary: fc.record({ t: fc.constant('create' as const), inst, slot, variant }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('replay' as const), slot, variant }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('close' as const), inst, slot }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('query' as const), inst, slot }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('select' as const), inst, slot, network: fc.constantFrom<'3' | '4'>('3', '4') }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('pay' as const), inst, slot, amount: fc.constantFrom<'full' | 'part'>('full', 'part') }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('expire' as const), inst }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('deliver' as const), inst }) },
  );
};
const batchArb = (slots: number, maxOps: number): fc.Arbitrary<Batch> =>
  fc.record({ advance: fc.constantFrom(0, 0, 0, 31 * 60), ops: fc.array(opArb(slots), { minLength: 1, maxLength: maxOps }) });
/** Two request_nos, a few small batches. */
const scenarioArb = fc.tuple(inst, variant, fc.array(batchArb(SLOTS, 6), { minLength: 1, maxLength: 4 }));
/** One request_no, larger batches: every operation contends for the same order. */
const contendedArb = fc.tuple(inst, variant, fc.array(batchArb(1, 10), { minLength: 1, maxLength: 3 }));

/** A logger that keeps every line at error level or above. */
function capturingLogger(sink: string[]): Logger {
  return pino({ level: 'warn' }, {
    write(line: string) {
      const o = JSON.parse(line) as { level: number };
      if (o.level >= 50) sink.push(line);
    },
  });
}

describe.each(DATABASE_KINDS)('two gateway instances on one %s database (property-based)', (kind) => {
  let t: TestGateway;
  let gwB: Gateway;
  let baseB: string;
  let receiver: Receiver;
  const errorLogs: string[] = [];
  let run = 0;
  /** What the runs reached (printed with MIF_DEBUG, to see the generator covers the interesting cases). */
  const coverage = new Map<string, number>();
  const cover = (what: string) => coverage.set(what, (coverage.get(what) ?? 0) + 1);

  /** Per notify_id, what the receiver answered each of its requests, in order. */
  const answers = new Map<string, ('SUCCESS' | 'FAILED')[]>();
  const FAILURES: Answer[] = [{ status: 500, body: 'oops' }, { status: 200, body: 'FAIL' }, { action: 'reset' }];
  /** The first 0-2 attempts of a notification fail (by its id), each in one of the ways of FAILURES. */
  const failuresOf = (id: string) => createHash('sha256').update(id).digest()[0]! % 3;

  beforeAll(async () => {
    // Prompt, but slow enough that the two instances' passes overlap attempts in flight.
    receiver = await startReceiver((req) => {
      const id = String(openReceived(req, keys()).payload.notify_id);
      const seen = answers.get(id) ?? [];
      answers.set(id, seen);
      if (seen.length < failuresOf(id)) {
        seen.push('FAILED');
        return FAILURES[(seen.length + id.length) % FAILURES.length]!;
      }
      seen.push('SUCCESS');
      return { ...SUCCESS, delayMs: 30 };
    });
    const config = { deployment: deploymentWithFactory(['3', '4']), notifyAllowPrivate: true, notify: NOTIFY };
    t = await startTestGateway({ kind, config, logger: capturingLogger(errorLogs) });
    gwB = await createGateway({ config: t.gateway.config, clock: t.clock, logger: capturingLogger(errorLogs), workers: false });
    baseB = await gwB.listen();
  }, 60_000);
  afterAll(async () => {
    const step = async (what: string, f: () => Promise<void> | undefined) => {
      const started = Date.now();
      await f();
      if (process.env.MIF_DEBUG) console.log(`${what} closed in ${Date.now() - started} ms`);
    };
    if (process.env.MIF_DEBUG) console.log(kind, JSON.stringify(Object.fromEntries(coverage)), 'receiver hits', receiver?.received.length);
    await step('B', () => gwB?.close());
    await step('A', () => t?.close());
    await step('receiver', () => receiver?.close());
  }, 30_000);

  const gw = (i: Inst): Gateway => (i === 0 ? t.gateway : gwB);
  const base = (i: Inst): string => (i === 0 ? t.baseUrl : baseB);
  const keys = () => ({ merchantPrivateKey: t.merchant.privateKey, platformPublicKey: t.merchant.platformPublicKey });

  /** The notify_id of each request the receiver got, from index `from` on. */
  function hitsByNotifyId(from = 0, to = receiver.received.length): Map<string, number> {
    const hits = new Map<string, number>();
    for (const r of receiver.received.slice(from, to)) {
      const id = String(openReceived(r, keys()).payload.notify_id);
      hits.set(id, (hits.get(id) ?? 0) + 1);
    }
    return hits;
  }

  /**
   * Runs passes of both delivery workers at once, moving the shared clock past each retry, until
   * every notification is delivered; then checks that each notification sent during this run
   * (from receiver index `from`) reached the receiver exactly its failures + 1 times over all runs,
   * was answered SUCCESS once and last, and has every attempt logged with the outcome it got.
   */
  async function drainAndCheckDelivery(from: number): Promise<void> {
    const k = t.gateway.db.kysely;
    await waitUntil('every notification delivered', async () => {
      await Promise.all([t.gateway.notifications.deliverDue({ scan: true }), gwB.notifications.deliverDue({ scan: true })]);
      const open = await k.selectFrom('notifications').select('notify_id').where('status', '!=', 'DELIVERED').execute();
      // A failed attempt's retry is due 10 s, then 1 min later (§13): the clock moves on to it.
      if (open.length > 0 && t.gateway.notifications.busy === 0 && gwB.notifications.busy === 0) t.clock.advance(61);
      return open.length === 0;
    }, 15_000);
    await waitUntil('no attempt in flight', () => t.gateway.notifications.busy === 0 && gwB.notifications.busy === 0, 5_000);
    await pause(40); // a request a worker sent without counting it as in flight would arrive now
    const before = hitsByNotifyId(0, from);
    const now = hitsByNotifyId(from);
    for (const [id, count] of now) {
      const expected = failuresOf(id) + 1;
      expect(count + (before.get(id) ?? 0), `receiver hits of ${id}`).toBe(expected);
      expect(answers.get(id), `answers to ${id}`).toEqual([...Array<string>(expected - 1).fill('FAILED'), 'SUCCESS']);
      const attempts = await t.gateway.store.notifications.listAttempts(id);
      expect(attempts.map((a) => a.outcome), `attempts logged for ${id}`).toEqual([...Array<string>(expected - 1).fill('FAILED'), 'DELIVERED']);
      cover(`notification delivered at attempt ${expected}`);
    }
    const all = await k.selectFrom('notifications').select(['notify_id', 'attempts']).execute();
    for (const n of all) {
      expect((before.get(n.notify_id) ?? 0) + (now.get(n.notify_id) ?? 0), `receiver hits of delivered ${n.notify_id}`).toBeGreaterThanOrEqual(1);
      expect(Number(n.attempts), `attempts of ${n.notify_id}`).toBe(failuresOf(n.notify_id) + 1);
    }
  }

  interface Known {
    paymentOrderNo: string;
    token: string;
    /** The data of the first successful create answer. */
    data: Record<string, unknown>;
  }

  async function runScenario(firstInst: Inst, firstVariant: number, batches: Batch[]): Promise<void> {
    run += 1;
    const requestNo = (s: number) => `mf_${kind}_${run}_${s}`;
    const body = (s: number, v: number) => orderBody(t.merchant, t.clock, { request_no: requestNo(s), merchant_order_desc: `variant ${v}`, notify_url: receiver.url });
    const known = new Map<number, Known>();
    const createdVariants = new Map<number, Set<number>>();
    const attemptedVariants = new Map<number, Set<number>>();
    const closedOk = new Set<number>();
    const fullyPaid = new Set<number>(); // a full final payment was recorded before a close of the slot answered
    const addresses = new Map<string, Set<string>>();
    const transfersFed = new Map<number, number>();
    /** Slots whose close succeeded in an earlier batch: no cashier select may hand out an address any more. */
    const closedBeforeBatch = new Set<number>();
    const errorsBefore = errorLogs.length;
    const receivedBefore = receiver.received.length;

    const expectNo5xx = (res: ApiResponse | Response, what: string) => expect(res.status, `${what}: HTTP ${res.status}`).toBeLessThan(500);
    const noteCreate = (s: number, v: number, res: ApiResponse) => {
      expectNo5xx(res, 'create');
      if (res.json.code === 0) {
        const pon = String(res.json.data!.payment_order_no);
        const prev = known.get(s);
        if (prev) {
          expect(pon, `one order per request_no (slot ${s})`).toBe(prev.paymentOrderNo);
          // A repeat is answered with the same order, whichever instance answers (§7); its
          // pay_status is the order's current one (a payment or close may have happened since).
          expect({ ...res.json.data, pay_status: undefined }, `repeat of slot ${s}`).toEqual({ ...prev.data, pay_status: undefined });
        } else known.set(s, { paymentOrderNo: pon, token: new URL(String(res.json.data!.cashier_url)).searchParams.get('t')!, data: res.json.data! });
        createdVariants.set(s, (createdVariants.get(s) ?? new Set()).add(v));
      } else {
        expect(res.json.code, JSON.stringify(res.json)).toBe(41023);
      }
    };

    async function exec(op: Op): Promise<void> {
      switch (op.t) {
        case 'create': {
          attemptedVariants.set(op.slot, (attemptedVariants.get(op.slot) ?? new Set()).add(op.variant));
          const res = await api(base(op.inst), { path: '/v4/pay/cashier', body: body(op.slot, op.variant), merchant: t.merchant, clock: t.clock });
          noteCreate(op.slot, op.variant, res);
          return;
        }
        case 'replay': {
          attemptedVariants.set(op.slot, (attemptedVariants.get(op.slot) ?? new Set()).add(op.variant));
          const nonce = generateNonce();
          const req = { path: '/v4/pay/cashier', body: body(op.slot, op.variant), merchant: t.merchant, clock: t.clock, nonce };
          const [ra, rb] = await Promise.all([api(t.baseUrl, req), api(baseB, req)]);
          const refused = [ra, rb].filter((r) => r.status === 401 && r.json.code === 40000);
          expect(refused.length, `the same signed request on both instances: exactly one refused as a replay (${JSON.stringify([ra.json, rb.json])})`).toBe(1);
          for (const r of [ra, rb]) if (!refused.includes(r)) noteCreate(op.slot, op.variant, r);
          return;
        }
        case 'close': {
          const paidBefore = fullyPaid.has(op.slot);
          const res = await api(base(op.inst), { path: '/v4/pay/orders/close', body: { merchant_no: t.merchant.merchantNo, request_no: requestNo(op.slot) }, merchant: t.merchant, clock: t.clock });
          expectNo5xx(res, 'close');
          expect([0, 43005, 43006, 43007], JSON.stringify(res.json)).toContain(res.json.code);
          if (res.json.code === 0) {
            expect(paidBefore, 'a fully paid order is never closed by close').toBe(false);
            closedOk.add(op.slot);
          }
          cover(`close ${res.json.code}`);
          return;
        }
        case 'query': {
          const res = await api(base(op.inst), { path: `/v4/pay/orders/${t.merchant.merchantNo}/${requestNo(op.slot)}`, merchant: t.merchant, clock: t.clock });
          expectNo5xx(res, 'query');
          expect([0, 43005], JSON.stringify(res.json)).toContain(res.json.code);
          return;
        }
        case 'select': {
          const k = known.get(op.slot);
          if (!k) return;
          const res = await fetch(`${base(op.inst)}/cashier/api/orders/${k.paymentOrderNo}/select?t=${encodeURIComponent(k.token)}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ network: op.network, currency: 'USDT' }),
          });
          expectNo5xx(res, 'select');
          const json = (await res.json()) as Record<string, unknown>;
          cover(`select ${res.status}${res.status === 200 ? "" : ` ${String(json.message).slice(0, 40)}`}`);
          if (closedBeforeBatch.has(op.slot)) expect(res.status, `select after the order was closed: ${JSON.stringify(json)}`).not.toBe(200);
          if (res.status === 200) {
            const key = `${k.paymentOrderNo}/${op.network}`;
            addresses.set(key, (addresses.get(key) ?? new Set()).add(String(json.address).toLowerCase()));
          }
          return;
        }
        case 'pay': {
          const k = known.get(op.slot);
          if (!k) return;
          const outcome = await gw(op.inst).payments.transferObserved({
            network: '4',
            currency: 'USDT',
            txHash: `0x${Buffer.from(`${kind}${run}${op.slot}${Math.random()}`).toString('hex').slice(0, 64).padEnd(64, '0')}`,
            logIndex: 0,
            blockNumber: 1000 + run,
            blockHash: `0x${'ab'.repeat(32)}`,
            address: WALLET,
            confirmations: 64,
            status: 'FINAL',
            paymentOrderNo: k.paymentOrderNo,
            amount: op.amount === 'full' ? FULL : PART,
          });
          expect(outcome.ok ? 'ok' : `transfer refused: ${outcome.reason}`).toBe('ok');
          if (op.amount === 'full') fullyPaid.add(op.slot);
          transfersFed.set(op.slot, (transfersFed.get(op.slot) ?? 0) + 1);
          return;
        }
        case 'expire': {
          const g = gw(op.inst);
          await g.expireOrders();
          return;
        }
        case 'deliver': {
          await gw(op.inst).notifications.deliverDue({ scan: true });
          return;
        }
      }
    }

    const all: Batch[] = [{ advance: batches[0]!.advance, ops: [{ t: 'create', inst: firstInst, slot: 0, variant: firstVariant }, ...batches[0]!.ops] }, ...batches.slice(1)];
    for (const batch of all) {
      if (batch.advance > 0) {
        // Attempts in flight finish first: the lease runs on the injected clock, and an attempt
        // outliving it (here: by a jump of the clock) is not one the 10 s answer timeout allows.
        await waitUntil('no attempt in flight', () => t.gateway.notifications.busy === 0 && gwB.notifications.busy === 0, 5_000);
        t.clock.advance(batch.advance);
      }
      await Promise.all(batch.ops.map(exec));
      for (const s of closedOk) closedBeforeBatch.add(s);
    }

    // Final state: one a sequential execution could have produced.
    const k = t.gateway.db.kysely;
    for (let s = 0; s < SLOTS; s += 1) {
      const rows = await k.selectFrom('orders').select(['payment_order_no']).where('merchant_no', '=', t.merchant.merchantNo).where('request_no_key', '=', requestNo(s).toLowerCase()).execute();
      expect(rows.length, `orders for request_no slot ${s}`).toBe(known.has(s) ? 1 : 0);
      const variants = createdVariants.get(s) ?? new Set();
      expect(variants.size, `only one body ever accepted for slot ${s}`).toBeLessThanOrEqual(1);
      const info = known.get(s);
      if (!info) continue;
      expect(rows[0]!.payment_order_no).toBe(info.paymentOrderNo);
      const order = await t.gateway.store.orders.get(info.paymentOrderNo);
      const status = order!.state.status;
      cover(`final ${status}${order!.state.closeReason ? `/${order!.state.closeReason}` : ''}`);
      if (closedOk.has(s)) expect(status, `slot ${s} closed by the merchant`).toBe('CLOSED');
      if (status === 'PAID' || status === 'COMPLETED') expect(closedOk.has(s), `slot ${s}: a closed order never becomes PAID`).toBe(false);
      // Notifications: distinct, strictly increasing sequences; at most one per kind of event.
      const notes = await t.gateway.store.notifications.listByOrder(info.paymentOrderNo);
      // One transition may notify twice (the domain's effect order: status notification, then
      // ORDER_EXCEPTION, e.g. OVERPAID = ORDER_PAID + ORDER_EXCEPTION); those share the sequence of
      // that one state change and carry the same snapshot. Different changes: different sequences.
      const bySequence = new Map<number, typeof notes>();
      for (const n of notes) bySequence.set(n.sequence, [...(bySequence.get(n.sequence) ?? []), n]);
      for (const [seq, group] of bySequence) {
        const what = `notifications of sequence ${seq}: ${JSON.stringify(group.map((n) => n.notifyType))}`;
        expect(new Set(group.map((n) => n.notifyType)).size, what).toBe(group.length);
        const snapshots = group.map((n) => {
          const p = JSON.parse(n.payload) as Record<string, unknown>;
          delete p.notify_id;
          delete p.notify_type;
          return JSON.stringify(p);
        });
        expect(new Set(snapshots).size, `${what}: one state change, one snapshot`).toBe(1);
      }
      const byCreation = [...notes].sort((x, y) => x.createdAt - y.createdAt).map((n) => n.sequence);
      expect(byCreation, 'sequences never decrease in the order notifications were written').toEqual([...byCreation].sort((x, y) => x - y));
      expect(Math.max(0, ...notes.map((n) => n.sequence)), 'no notification is newer than the order').toBeLessThanOrEqual(order!.sequence);
      const types = notes.map((n) => n.notifyType);
      expect(types.filter((x) => x === 'ORDER_PAID').length, JSON.stringify(types)).toBeLessThanOrEqual(1);
      if (status === 'PAID') expect(types, 'a PAID order notified ORDER_PAID').toContain('ORDER_PAID');
      expect(types.filter((x) => x === 'ORDER_CLOSED').length, JSON.stringify(types)).toBeLessThanOrEqual(1);
      if (closedOk.has(s)) expect(types, 'a close by the merchant does not notify, and the order is never paid').not.toContain('ORDER_PAID');
      expect(types.includes('ORDER_PAID') && types.includes('ORDER_CLOSED'), `an order is either paid or closed, not both: ${JSON.stringify(types)}`).toBe(false);
      if (types.includes('ORDER_CLOSED')) expect(status).toBe('CLOSED');
      if (types.includes('ORDER_PAID')) expect(['PAID', 'COMPLETED']).toContain(status);
      // Every transfer fed through either payment port is recorded once.
      const payments = await t.gateway.store.payments.listByOrder(info.paymentOrderNo);
      expect(payments.length, 'payment rows').toBe(transfersFed.get(s) ?? 0);
      // No lost update of the totals: an open order on the Polygon pair (or none chosen) counts every final transfer fed.
      if (status !== 'CLOSED' && (order!.selectedNetwork ?? '4') === '4') {
        const sum = payments.reduce((acc, p) => acc + p.amount, 0n);
        expect(order!.state.received.final, `final total of ${info.paymentOrderNo}`).toBe(sum);
        expect(status, `received ${sum} of ${order!.state.due ?? FULL}`).toBe(sum === 0n ? 'PENDING' : sum >= (order!.state.due ?? FULL) ? 'PAID' : 'PAYING');
      }
      // One deposit address per (order, pair), whichever instance chose it.
      const deposits = await k.selectFrom('deposit_addresses').select(['network', 'currency', 'address']).where('payment_order_no', '=', info.paymentOrderNo).execute();
      const pairs = deposits.map((d) => `${d.network}/${d.currency}`);
      expect(new Set(pairs).size, `deposit rows ${JSON.stringify(deposits)}`).toBe(pairs.length);
      for (const network of ['3', '4']) {
        const seen = addresses.get(`${info.paymentOrderNo}/${network}`);
        if (!seen) continue;
        expect(seen.size, `one deposit address for ${info.paymentOrderNo} on ${network}: ${[...seen].join(', ')}`).toBe(1);
        expect(deposits.find((d) => d.network === network)?.address.toLowerCase()).toBe([...seen][0]);
      }
    }
    await drainAndCheckDelivery(receivedBefore);
    expect(errorLogs.slice(errorsBefore), 'error-level log lines').toEqual([]);
  }

  it('concurrent interleavings on A and B end in a state a sequential execution could produce', async () => {
    await check(
      fc.asyncProperty(scenarioArb, async ([firstInst, firstVariant, batches]) => {
        await runScenario(firstInst, firstVariant, batches);
      }),
      1,
      kind === 'postgres' ? 60 : 30,
    );
  }, 120_000);

  it('concurrent operations on ONE order through A and B end in a state a sequential execution could produce', async () => {
    await check(
      fc.asyncProperty(contendedArb, async ([firstInst, firstVariant, batches]) => {
        await runScenario(firstInst, firstVariant, batches);
      }),
      2,
      kind === 'postgres' ? 30 : 15,
    );
  }, 120_000);

  it('a burst of identical creates, closes and full payments on both instances leaves exactly one consistent order', async () => {
    for (let i = 0; i < 5; i += 1) {
      const ops: Op[] = [];
      for (let j = 0; j < 4; j += 1) ops.push({ t: 'create', inst: (j % 2) as Inst, slot: 0, variant: 0 });
      await runScenario(0, 0, [
        { advance: 0, ops },
        { advance: 0, ops: [{ t: 'close', inst: 0, slot: 0 }, { t: 'close', inst: 1, slot: 0 }, { t: 'pay', inst: 0, slot: 0, amount: 'full' }, { t: 'pay', inst: 1, slot: 0, amount: 'full' }, { t: 'select', inst: 0, slot: 0, network: '4' }, { t: 'select', inst: 1, slot: 0, network: '4' }] },
        { advance: 31 * 60, ops: [{ t: 'expire', inst: 0 }, { t: 'expire', inst: 1 }, { t: 'deliver', inst: 0 }, { t: 'deliver', inst: 1 }] },
      ]);
      await pause(1);
    }
  }, 60_000);
});
