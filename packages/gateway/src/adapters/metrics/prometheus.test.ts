import { describe, expect, it, vi } from 'vitest';
import { BACKLOG_READ_TIMEOUT_MS, PrometheusMetrics } from './prometheus.js';
import { samples } from '../../../test/metrics-page.js';


const own = (page: string) => new Map([...samples(page)].filter(([k]) => !/^sparkpay_(process|nodejs)_/.test(k)));

describe('PrometheusMetrics', () => {
  it('counts orders, payments, transitions and notification attempts by label, from zero', async () => {
    const m = new PrometheusMetrics({ processMetrics: false, networks: ['4'] });
    expect(own(await m.render())).toEqual(
      new Map([
        ['sparkpay_orders_created_total{edition="standard"}', 0],
        ['sparkpay_orders_created_total{edition="pro"}', 0],
        ['sparkpay_payments_observed_total{network="4",status="SEEN"}', 0],
        ['sparkpay_payments_observed_total{network="4",status="FINAL"}', 0],
        ['sparkpay_payments_observed_total{network="4",status="REVERTED"}', 0],
        ['sparkpay_order_transitions_total{status="PENDING"}', 0],
        ['sparkpay_order_transitions_total{status="PAYING"}', 0],
        ['sparkpay_order_transitions_total{status="PAID"}', 0],
        ['sparkpay_order_transitions_total{status="COMPLETED"}', 0],
        ['sparkpay_order_transitions_total{status="CLOSED"}', 0],
        ['sparkpay_notification_attempts_total{outcome="DELIVERED",error_kind="none"}', 0],
        ['sparkpay_chain_scan_failures_total{network="4"}', 0],
        // From zero too, not absent until the network's first settlement.
        ['sparkpay_settlements_sent_total{network="4"}', 0],
        ['sparkpay_settlements_final_total{network="4"}', 0],
        ['sparkpay_settlement_gas_used_total{network="4"}', 0],
      ]),
    );
    m.orderCreated('standard');
    m.orderCreated('standard');
    m.orderCreated('pro');
    m.paymentObserved('4', 'SEEN');
    m.paymentObserved('2', 'FINAL');
    m.paymentObserved('2', 'FINAL', 3);
    m.transition('PAYING');
    m.transition('PAID');
    m.transition('PAID');
    m.notificationAttempt('DELIVERED', null);
    m.notificationAttempt('FAILED', 'TIMEOUT');
    m.notificationAttempt('FAILED', 'TIMEOUT');
    m.notificationAttempt('INTERRUPTED', 'INTERRUPTED');
    const s = samples(await m.render());
    expect(s.get('sparkpay_orders_created_total{edition="standard"}')).toBe(2);
    expect(s.get('sparkpay_orders_created_total{edition="pro"}')).toBe(1);
    expect(s.get('sparkpay_payments_observed_total{network="4",status="SEEN"}')).toBe(1);
    expect(s.get('sparkpay_payments_observed_total{network="2",status="FINAL"}')).toBe(4);
    expect(s.get('sparkpay_order_transitions_total{status="PAYING"}')).toBe(1);
    expect(s.get('sparkpay_order_transitions_total{status="PAID"}')).toBe(2);
    expect(s.get('sparkpay_notification_attempts_total{outcome="DELIVERED",error_kind="none"}')).toBe(1);
    expect(s.get('sparkpay_notification_attempts_total{outcome="FAILED",error_kind="TIMEOUT"}')).toBe(2);
    expect(s.get('sparkpay_notification_attempts_total{outcome="INTERRUPTED",error_kind="INTERRUPTED"}')).toBe(1);
  });

  it('gauges each network’s head, last scanned block and lag', async () => {
    const m = new PrometheusMetrics({ processMetrics: false });
    const chain = async (network: string) => {
      const s = samples(await m.render());
      return [s.get(`sparkpay_chain_head_block{network="${network}"}`), s.get(`sparkpay_chain_scanned_block{network="${network}"}`), s.get(`sparkpay_chain_lag_blocks{network="${network}"}`)];
    };
    expect(await chain('4')).toEqual([undefined, undefined, undefined]);
    m.chainScanned('4', 1_000, 936);
    m.chainScanned('2', 20_000_000, 20_000_000);
    expect(await chain('4')).toEqual([1_000, 936, 64]);
    expect(await chain('2')).toEqual([20_000_000, 20_000_000, 0]);
    // A pass with nothing new: the cursor is past the head, so everything up to it is scanned.
    m.chainScanned('4', 1_003, null);
    expect(await chain('4')).toEqual([1_003, 1_003, 0]);
    // A head behind what was scanned (a lagging endpoint after failover) is no negative lag.
    m.chainScanned('4', 1_001, null);
    expect(await chain('4')).toEqual([1_001, 1_003, 0]);
  });

  it('reads the backlog once for scrapes that arrive while a read is under way, and afresh for the next one', async () => {
    let reads = 0;
    let release = () => undefined as void;
    const gate = new Promise<void>((r) => (release = r));
    const m = new PrometheusMetrics({
      processMetrics: false,
      networks: ['4'],
      backlog: {
        nowMs: () => 1_000,
        notifications: async () => {
          reads += 1;
          await gate;
          return { pending: reads, due: 0, oldestDueAt: null, failed: 0 };
        },
        settlements: async () => [],
      },
    });
    const pages = Array.from({ length: 20 }, () => m.render());
    release();
    for (const page of await Promise.all(pages)) expect(own(page).get('sparkpay_notifications_pending')).toBe(1);
    expect(reads).toBe(1);
    expect(own(await m.render()).get('sparkpay_notifications_pending')).toBe(2);
  });

  it("while the database does not answer, ages the caught-up moment from this process's own latest catching up, not from the last scrape's read", async () => {
    let now = 1_000_000;
    let down = false;
    const m = new PrometheusMetrics({
      processMetrics: false,
      networks: ['4'],
      backlog: {
        nowMs: () => now,
        notifications: async () => {
          if (down) throw new Error('Connection terminated unexpectedly');
          return { pending: 0, due: 0, oldestDueAt: null, failed: 0 };
        },
        settlements: async () => [],
        chainCaughtUp: async () => new Map([['4', now - 1_000]]),
      },
    });
    const age = async () => own(await m.render()).get('sparkpay_chain_caught_up_age_seconds{network="4"}');
    expect(await age()).toBe(1);
    // Five minutes of scans catching up without a scrape, then the database stops answering.
    now += 300_000;
    m.chainCaughtUp('4', now - 2_000);
    down = true;
    now += 5_000;
    expect(await age()).toBe(7);
    expect(own(await m.render()).get('sparkpay_database_up')).toBe(0);
    // Nothing caught up since: the age grows with the outage.
    now += 10_000;
    expect(await age()).toBe(17);
  });

  it('serves the page when the backlog read hangs, saying the database did not answer, and reads afresh for the next scrape', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      let reads = 0;
      const m = new PrometheusMetrics({
        processMetrics: false,
        backlog: {
          nowMs: () => 1_000,
          // The first read never answers (a connection that died without a reset); later ones do.
          notifications: () => (++reads === 1 ? new Promise<never>(() => undefined) : Promise.resolve({ pending: 3, due: 0, oldestDueAt: null, failed: 0 })),
          settlements: async () => [],
        },
      });
      const first = m.render();
      const second = m.render();
      await vi.advanceTimersByTimeAsync(BACKLOG_READ_TIMEOUT_MS);
      for (const page of await Promise.all([first, second])) expect(own(page).get('sparkpay_database_up')).toBe(0);
      expect(reads).toBe(1);
      const third = own(await m.render());
      expect(third.get('sparkpay_database_up')).toBe(1);
      expect(third.get('sparkpay_notifications_pending')).toBe(3);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps gateways apart and appends the process metrics, prefixed, when asked', async () => {
    const a = new PrometheusMetrics();
    const b = new PrometheusMetrics();
    a.orderCreated('pro');
    const pa = samples(await a.render());
    const pb = samples(await b.render());
    expect(pa.get('sparkpay_orders_created_total{edition="pro"}')).toBe(1);
    expect(pb.get('sparkpay_orders_created_total{edition="pro"}')).toBe(0);
    for (const s of [pa, pb]) {
      expect(s.has('sparkpay_process_cpu_user_seconds_total')).toBe(true);
      expect(s.has('sparkpay_process_resident_memory_bytes') || process.platform !== 'linux').toBe(true);
      expect([...s.keys()].some((k) => k.startsWith('sparkpay_nodejs_eventloop_lag_seconds'))).toBe(true);
    }
    expect([...samples(await new PrometheusMetrics({ processMetrics: false }).render()).keys()].some((k) => k.includes('process_'))).toBe(false);
    expect(a.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  });
});
