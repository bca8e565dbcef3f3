// GET /metrics (issue 4, observability): Prometheus counters of orders, payments, state changes
// and notification attempts, incremented where the facts happen and read back over HTTP, and
// the per-network chain gauges fed by scan passes. Each gateway has its own registry.
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScanDeps } from '../src/app/scan-chain.js';
import { scanPass } from '../src/jobs/chain-watcher.js';
import { PrometheusMetrics } from '../src/adapters/metrics/prometheus.js';
import { api, deploymentWithFactory, observeTransfer, orderBody, proOrderBody, startTestGateway, type TestGateway } from './harness.js';
import { startReceiver, SUCCESS, type Receiver } from './notify-receiver.js';
import { samples } from './metrics-page.js';


/** This gateway's samples whose name starts with `prefix` (the process metrics left out). */
function family(all: Map<string, number>, prefix: string): Record<string, number> {
  return Object.fromEntries([...all].filter(([k]) => k.startsWith(prefix)));
}

describe('GET /metrics', () => {
  let t: TestGateway;
  let ok: Receiver;
  let failing: Receiver;
  const lines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    ok = await startReceiver(() => SUCCESS);
    failing = await startReceiver(() => ({ status: 500, body: 'Internal Server Error' }));
    t = await startTestGateway({ logger: pino({ level: 'info' }, sink), config: { notifyAllowPrivate: true } });
  });
  afterAll(async () => {
    await t?.close();
    await ok?.close();
    await failing?.close();
  });

  const scrape = async (query = '') => {
    const res = await fetch(`${t.baseUrl}/metrics${query}`);
    return { status: res.status, contentType: res.headers.get('content-type'), text: await res.text() };
  };

  async function createOrder(body: Record<string, unknown>, pro = false): Promise<string> {
    const res = await api(t.baseUrl, { path: pro ? '/v4/pro/pay/cashier' : '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });
    expect(res.json.code).toBe(0);
    return String(res.json.data!.payment_order_no);
  }

  it('starts with every counter at zero, in the Prometheus text format, with the process metrics', async () => {
    const page = await scrape();
    expect(page.status).toBe(200);
    expect(page.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    const s = samples(page.text);
    expect(family(s, 'sparkpay_orders_created_total')).toEqual({ 'sparkpay_orders_created_total{edition="standard"}': 0, 'sparkpay_orders_created_total{edition="pro"}': 0 });
    expect(s.get('sparkpay_payments_observed_total{network="4",status="FINAL"}')).toBe(0);
    expect(s.get('sparkpay_order_transitions_total{status="PAID"}')).toBe(0);
    expect(s.has('sparkpay_process_cpu_user_seconds_total')).toBe(true);
    expect(page.text).toContain('# TYPE sparkpay_orders_created_total counter');
    expect(page.text).toContain('# TYPE sparkpay_chain_lag_blocks gauge');
  });

  it('counts orders, payments, status changes and notification attempts exactly as they happen', async () => {
    // Two standard orders (one repeated: a repeat is no new order) and a Pro order.
    const bodyA = orderBody(t.merchant, t.clock, { notify_url: `${ok.url}` });
    const a = await createOrder(bodyA);
    expect(await createOrder(bodyA)).toBe(a);
    const b = await createOrder(orderBody(t.merchant, t.clock, { notify_url: `${failing.url}` }));
    const c = proOrderBody(t.merchant, t.clock);
    await createOrder(c, true);

    // A: seen (PAYING), seen again deeper (nothing new), final (PAID).
    const seen = await observeTransfer(t, { paymentOrderNo: a, amount: 10_500_000n, status: 'SEEN', confirmations: 2 });
    await observeTransfer(t, { ...seen, confirmations: 3 });
    await observeTransfer(t, { ...seen, confirmations: 64, status: 'FINAL' });
    // B: final at once (PAID), then found again by a rescan (nothing new).
    const final = await observeTransfer(t, { paymentOrderNo: b, amount: 10_500_000n });
    await observeTransfer(t, final);
    // C: closed by the merchant.
    const close = await api(t.baseUrl, { path: '/v4/pay/orders/close', body: { merchant_no: t.merchant.merchantNo, request_no: c.request_no }, merchant: t.merchant, clock: t.clock });
    expect(close.json.code).toBe(0);

    // ORDER_PAID of A is delivered; B's receiver answers 500 (an HTTP_STATUS failure, retried later).
    expect(await t.gateway.notifications.deliverDue({ scan: true })).toBe(2);
    await t.gateway.notifications.idle();
    expect(ok.received).toHaveLength(1);
    expect(failing.received).toHaveLength(1);

    const s = samples((await scrape()).text);
    expect(family(s, 'sparkpay_orders_created_total')).toEqual({
      'sparkpay_orders_created_total{edition="standard"}': 2,
      'sparkpay_orders_created_total{edition="pro"}': 1,
    });
    expect(family(s, 'sparkpay_payments_observed_total{network="4"')).toEqual({
      'sparkpay_payments_observed_total{network="4",status="SEEN"}': 1,
      'sparkpay_payments_observed_total{network="4",status="FINAL"}': 2,
      'sparkpay_payments_observed_total{network="4",status="REVERTED"}': 0,
    });
    expect(s.get('sparkpay_payments_observed_total{network="2",status="SEEN"}')).toBe(0);
    expect(family(s, 'sparkpay_order_transitions_total')).toEqual({
      'sparkpay_order_transitions_total{status="PENDING"}': 0,
      'sparkpay_order_transitions_total{status="PAYING"}': 1,
      'sparkpay_order_transitions_total{status="PAID"}': 2,
      'sparkpay_order_transitions_total{status="COMPLETED"}': 0,
      'sparkpay_order_transitions_total{status="CLOSED"}': 1,
    });
    expect(family(s, 'sparkpay_notification_attempts_total')).toEqual({
      'sparkpay_notification_attempts_total{outcome="DELIVERED",error_kind="none"}': 1,
      'sparkpay_notification_attempts_total{outcome="FAILED",error_kind="HTTP_STATUS"}': 1,
    });
  });

  it('counts an attempt a crashed sender left in flight as INTERRUPTED once another sender takes the notification over', async () => {
    const a = await createOrder(orderBody(t.merchant, t.clock, { notify_url: `${ok.url}` }));
    await observeTransfer(t, { paymentOrderNo: a, amount: 10_500_000n });
    const [n] = await t.gateway.store.notifications.listByOrder(a);
    const now = t.clock.nowMs();
    const due = (await t.gateway.store.notifications.listDue(now, 1_000, [])).find((d) => d.notifyId === n!.notifyId)!;
    // Another instance claimed it and died (SIGKILL) before recording an outcome.
    await t.gateway.store.transaction(async (tx) => {
      expect(await tx.notifications.claim(due, 'crashed-sender', now, now + 15_000)).not.toBeNull();
      await tx.notifications.insertAttempt({ notifyId: due.notifyId, attemptNo: due.attemptNo + 1, series: due.series, sender: 'crashed-sender', startedAt: now, finishedAt: null, outcome: 'IN_FLIGHT', httpStatus: null, latencyMs: null, responseHead: null, errorKind: null, error: null });
    });
    t.clock.advance(16);
    const received = ok.received.length;
    await t.gateway.notifications.deliverDue({ scan: true });
    await t.gateway.notifications.idle();
    expect(ok.received.length).toBe(received + 1);
    expect((await t.gateway.store.notifications.listAttempts(due.notifyId)).map((x) => x.outcome)).toEqual(['INTERRUPTED', 'DELIVERED']);
    const s = samples((await scrape()).text);
    expect(s.get('sparkpay_notification_attempts_total{outcome="INTERRUPTED",error_kind="INTERRUPTED"}')).toBe(1);
  });

  it('gauges what waits: notifications pending, due, failed and the oldest due one\'s age; settlements by network and status', async () => {
    const gauges = async () => {
      const s = samples((await scrape()).text);
      return {
        pending: s.get('sparkpay_notifications_pending')!,
        due: s.get('sparkpay_notifications_due')!,
        failed: s.get('sparkpay_notifications_failed')!,
        oldest: s.get('sparkpay_notifications_oldest_due_seconds')!,
        settleDue4: s.get('sparkpay_settlements_waiting{network="4",status="DUE"}')!,
        settleSent4: s.get('sparkpay_settlements_waiting{network="4",status="SENT"}')!,
        deferred4: s.get('sparkpay_settlements_deferred{network="4"}')!,
      };
    };
    const db = t.gateway.db.kysely;
    // Whatever earlier tests left is delivered or failed for good: start from no pending notification.
    await db.updateTable('notifications').set({ status: 'DELIVERED' }).where('status', '=', 'PENDING').execute();
    const before = await gauges();
    expect(before).toMatchObject({ pending: 0, due: 0, oldest: 0 });
    // Three paid orders: three ORDER_PAID notifications due now (no worker runs in this test).
    const paid: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const no = await createOrder(orderBody(t.merchant, t.clock, { notify_url: 'https://merchant.example/n' }));
      await observeTransfer(t, { paymentOrderNo: no, amount: 10_500_000n });
      paid.push(no);
    }
    t.clock.advance(90);
    // One waits for a retry an hour from now, one used all its attempts.
    await db.updateTable('notifications').set({ next_attempt_at: t.clock.nowMs() + 3_600_000 }).where('payment_order_no', '=', paid[1]!).execute();
    await db.updateTable('notifications').set({ status: 'FAILED' }).where('payment_order_no', '=', paid[2]!).execute();
    await t.gateway.store.settlements.insertDue({ paymentOrderNo: paid[0]!, network: '4', currency: 'USDT', address: '0x00000000000000000000000000000000000000f1' }, t.clock.nowMs());
    const after = await gauges();
    expect(after).toEqual({ pending: 2, due: 1, failed: before.failed + 1, oldest: 90, settleDue4: before.settleDue4 + 1, settleSent4: before.settleSent4, deferred4: before.deferred4 });
    // A settlement that failed and waits to be tried again is also counted as deferred.
    const st = (await t.gateway.store.settlements.get(paid[0]!))!;
    await t.gateway.store.settlements.update({ ...st, attempts: 1, lastError: 'NativeTransferFailed(0x…, 1)', nextAttemptAt: t.clock.nowMs() + 60_000 });
    expect(await gauges()).toMatchObject({ settleDue4: before.settleDue4 + 1, deferred4: before.deferred4 + 1 });
  });

  it('gauges the head, the last scanned block and the lag of a network after each scan pass', async () => {
    let head = 1_000;
    const hashOf = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;
    const reader = {
      head: async () => ({ number: head, hash: hashOf(head), timestamp: 1_700_000_000 + head * 12 }),
      blockHash: async (n: number) => (n <= head ? hashOf(n) : null),
      blockTimestamp: async (n: number) => (n <= head ? 1_700_000_000 + n * 12 : null),
      tokenTransfers: async (_tokens: readonly string[], _recipients: readonly string[] | null, _from: number, to: number) => ({ transfers: [], through: { number: to, hash: hashOf(to) } }),
      balances: async (addresses: readonly string[]) => addresses.map(() => 0n),
      valueTransfers: async () => [],
      transactionBlock: async () => null,
    };
    const network = t.gateway.config.deployment.networks.find((n) => n.id === '2')!;
    expect(network.chain.confirmations).toBe(12);
    const deps: ScanDeps = {
      store: t.gateway.store,
      clock: t.gateway.clock,
      payments: t.gateway.payments,
      reader,
      network,
      log: pino({ level: 'silent' }),
      owner: 'metrics-test',
      leaseMs: 30_000,
      maxBlocks: 5,
    };
    const gauges = async () => {
      const s = samples((await scrape()).text);
      return ['head_block', 'scanned_block', 'lag_blocks'].map((g) => s.get(`sparkpay_chain_${g}{network="2"}`));
    };
    expect(await gauges()).toEqual([undefined, undefined, undefined]);
    // The first pass starts `confirmations` blocks back: 988..992.
    await scanPass(deps, t.gateway.metrics);
    expect(await gauges()).toEqual([1_000, 992, 8]);
    await scanPass(deps, t.gateway.metrics);
    expect(await gauges()).toEqual([1_000, 997, 3]);
    const caughtUp = async () => (await t.gateway.store.chainCursors.caughtUpTimes(['2'])).get('2');
    expect(await caughtUp()).toBeNull();
    expect((await scanPass(deps, t.gateway.metrics)).caughtUp).toBe(true);
    expect(await gauges()).toEqual([1_000, 1_000, 0]);
    // Caught up with a head whose block is years older than the clock (a node that stopped
    // importing blocks): the scan covers the chain until that block's time only.
    expect(await caughtUp()).toBe((1_700_000_000 + 1_000 * 12) * 1000);
    // Nothing new: still caught up.
    await scanPass(deps, t.gateway.metrics);
    expect(await gauges()).toEqual([1_000, 1_000, 0]);
    head = 1_010;
    await scanPass(deps, t.gateway.metrics);
    expect(await gauges()).toEqual([1_010, 1_005, 5]);
    expect(samples((await scrape()).text).get('sparkpay_chain_scanning{network="2"}')).toBe(1);
    // Another instance holds the lease (this one's pass finds it taken): this one's figures are
    // not current and are withdrawn, not left frozen (a lag of 0 that reads as healthy), and it
    // says that it does not scan.
    const other = { ...deps, owner: 'another-instance' };
    head = 1_020;
    expect((await scanPass(other, t.gateway.metrics)).leased).toBe(false);
    expect(await gauges()).toEqual([undefined, undefined, undefined]);
    expect(samples((await scrape()).text).get('sparkpay_chain_scanning{network="2"}')).toBe(0);
    // This instance's next pass takes the lease and then fails (its node is down): it holds the
    // lease all the same, and says so (every instance showing 0 would hide who scans).
    const failing = { ...deps, reader: { ...reader, head: () => Promise.reject(new Error('connect ECONNREFUSED')) } };
    expect(samples((await scrape()).text).get('sparkpay_chain_scan_failures_total{network="2"}')).toBe(0);
    await expect(scanPass(failing, t.gateway.metrics)).rejects.toThrow(/ECONNREFUSED/);
    expect(samples((await scrape()).text).get('sparkpay_chain_scanning{network="2"}')).toBe(1);
    // The failed pass is counted (the gauges above keep the last pass's figures meanwhile).
    await expect(scanPass(failing, t.gateway.metrics)).rejects.toThrow(/ECONNREFUSED/);
    expect(samples((await scrape()).text).get('sparkpay_chain_scan_failures_total{network="2"}')).toBe(2);
  });

  it('gauges how long ago the chain each scanned network\'s scan covered was current (+Inf before the first complete pass)', async () => {
    const at = new Map<string, number | null>([['2', 1_000_000], ['4', null]]);
    const m = new PrometheusMetrics({
      processMetrics: false,
      backlog: {
        nowMs: () => 1_090_500,
        notifications: async () => ({ pending: 0, due: 0, oldestDueAt: null, failed: 0 }),
        settlements: async () => [],
        chainCaughtUp: async () => at,
      },
    });
    const s = samples(await m.render());
    expect(s.get('sparkpay_chain_caught_up_age_seconds{network="2"}')).toBe(90.5);
    expect(s.get('sparkpay_chain_caught_up_age_seconds{network="4"}')).toBe(Infinity);
  });

  it('serves the caught-up age of each network the gateway scans, from the chain cursors', async () => {
    // Polygon with an RPC endpoint (never called: no workers), the other networks without.
    const base = deploymentWithFactory(['4']);
    const deployment = { networks: base.networks.map((n) => (n.id === '4' ? { ...n, chain: { ...n.chain, rpcUrls: ['http://127.0.0.1:9/'] } } : n)) };
    const g = await startTestGateway({ config: { deployment } });
    try {
      const age = async () => {
        const page = samples((await fetch(`${g.baseUrl}/metrics`).then((r) => r.text())));
        return [...page].filter(([k]) => k.startsWith('sparkpay_chain_caught_up_age_seconds'));
      };
      expect(await age()).toEqual([['sparkpay_chain_caught_up_age_seconds{network="4"}', Infinity]]);
      expect(await g.gateway.store.chainCursors.lease('4', 'me', g.clock.nowMs(), g.clock.nowMs() + 30_000)).not.toBeNull();
      expect(await g.gateway.store.chainCursors.caughtUp('4', 'me', g.clock.nowMs() - 42_000)).toBe(true);
      expect(await age()).toEqual([['sparkpay_chain_caught_up_age_seconds{network="4"}', 42]]);
    } finally {
      await g.close();
    }
  });

  it('is served outside /v4 and logged like every request, by path only', async () => {
    expect((await scrape('?token=secret')).status).toBe(200);
    const logged = lines.filter((l) => l.msg === 'request' && l.path === '/metrics');
    expect(logged.length).toBeGreaterThanOrEqual(1);
    expect(logged.at(-1)).toMatchObject({ method: 'GET', path: '/metrics', status: 200 });
    expect(JSON.stringify(lines)).not.toContain('token=secret');
    // Under /v4/ it is no endpoint: a parameter error in the signed envelope (§3: 400).
    const v4 = await fetch(`${t.baseUrl}/v4/metrics`);
    expect(v4.status).toBe(400);
    expect(((await v4.json()) as { code: number }).code).toBe(40009);
  });
});

describe('GET /metrics turned off', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ config: { metrics: false } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('is not served when the configuration says metrics: false', async () => {
    const res = await fetch(`${t.baseUrl}/metrics`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ code: 404, message: 'not found' });
  });
});

describe('GET /metrics with a metrics_token', () => {
  const TOKEN = 'scrape-me-0123456789abcdef';
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ config: { metricsToken: TOKEN } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('answers only the bearer of the token; anyone else gets 401 and no figure', async () => {
    for (const authorization of [undefined, 'Bearer wrong', `Bearer ${TOKEN}x`, `bearer${TOKEN}`, TOKEN, `Basic ${TOKEN}`]) {
      const res = await fetch(`${t.baseUrl}/metrics`, { headers: authorization === undefined ? {} : { authorization } });
      const text = await res.text();
      expect(res.status, String(authorization)).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
      expect(text).not.toContain('sparkpay_');
    }
    const ok = await fetch(`${t.baseUrl}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('sparkpay_orders_created_total');
  });
});
