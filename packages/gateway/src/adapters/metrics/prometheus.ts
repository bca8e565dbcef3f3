// The Metrics port on prom-client, served by GET /metrics in the Prometheus text format. Each
// gateway has its own Registry (several gateways in one process, as in the tests, never clash);
// the Node process metrics (CPU, memory, event loop lag, GC) belong to the process, so they are
// collected once per process into a shared registry and appended to every gateway's page.
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Metrics } from '../../app/ports.js';
import type { AttemptErrorKind, AttemptOutcome, Edition, PaymentStatus } from '../../app/records.js';
import { PAY_STATUSES, type PayStatus } from '../../domain/lifecycle-types.js';

export const METRICS_PREFIX = 'sparkpay_';

export interface PrometheusOptions {
  /** Append the Node process metrics (prefixed `sparkpay_`); default true. */
  processMetrics?: boolean;
  /** Networks whose payment counters start at 0 (so rates work from the first transfer). */
  networks?: readonly string[];
  /** Read at each scrape: what waits in the outbox and the settlement queue (gauges left out without it). */
  backlog?: BacklogSource;
}

/** The queues an operator watches, read from the database when /metrics is scraped. */
export interface BacklogSource {
  nowMs(): number;
  notifications(nowMs: number): Promise<{ pending: number; due: number; oldestDueAt: number | null; failed: number }>;
  settlements(): Promise<{ network: string; status: 'DUE' | 'SENT'; count: number; deferred?: number }[]>;
  /** Until when (ms) the scan of each network this gateway scans has covered the chain (null: not yet). */
  chainCaughtUp?(): Promise<Map<string, number | null>>;
}

/** What the HTTP server needs to serve /metrics. */
export interface MetricsPage {
  readonly contentType: string;
  render(): Promise<string>;
}

const EDITIONS: readonly Edition[] = ['standard', 'pro'];
const PAYMENT_STATUSES: readonly PaymentStatus[] = ['SEEN', 'FINAL', 'REVERTED'];

/**
 * How long a scrape waits for the backlog reads: a query stuck on a dead connection (a database
 * failover without a reset) would otherwise hold every scrape, which all wait for the one read
 * under way. Past it the page says the database did not answer.
 */
export const BACKLOG_READ_TIMEOUT_MS = 5_000;

/** `p`, or a rejection once `ms` have passed (the timer does not keep the process alive). */
function withinMs<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

let processRegistry: Registry | null = null;

/** The process-wide registry of the default Node metrics, created on first use. */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, prefix: METRICS_PREFIX });
  }
  return processRegistry;
}

export class PrometheusMetrics implements Metrics, MetricsPage {
  /** This gateway's own metrics (not the process ones). */
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  private readonly process: Registry | null;
  private readonly ordersCreated: Counter<'edition'>;
  private readonly paymentsObserved: Counter<'network' | 'status'>;
  private readonly transitions: Counter<'status'>;
  private readonly notificationAttempts: Counter<'outcome' | 'error_kind'>;
  private readonly headBlock: Gauge<'network'>;
  private readonly scannedBlock: Gauge<'network'>;
  private readonly lagBlocks: Gauge<'network'>;
  private readonly scanning: Gauge<'network'>;
  private readonly scanFailures: Counter<'network'>;
  private readonly settling: Gauge<'network'>;
  private readonly relayerBalanceGauge: Gauge<'network'>;
  private readonly relayerLow: Gauge<'network'>;
  private readonly settlementsSent: Counter<'network'>;
  private readonly settlementsFinal: Counter<'network'>;
  private readonly settlementGas: Counter<'network'>;
  /** The last block scanned per network, for passes that found nothing new. */
  private readonly scanned = new Map<string, number>();
  /** Until when this process's own scans covered each network's chain (its passes say so; the database may not answer). */
  private readonly ownCaughtUp = new Map<string, number>();

  constructor(options: PrometheusOptions = {}) {
    const registers = [this.registry];
    this.process = options.processMetrics === false ? null : processMetrics();
    if (options.backlog) this.backlogGauges(options.backlog, registers, options.networks ?? []);
    this.ordersCreated = new Counter({ name: `${METRICS_PREFIX}orders_created_total`, help: 'Orders created, by edition (repeats of a request not counted)', labelNames: ['edition'], registers });
    this.paymentsObserved = new Counter({
      name: `${METRICS_PREFIX}payments_observed_total`,
      help: 'Transfers to deposit addresses entering a status (SEEN, FINAL, REVERTED), by network',
      labelNames: ['network', 'status'],
      registers,
    });
    this.transitions = new Counter({ name: `${METRICS_PREFIX}order_transitions_total`, help: 'Order status changes, by new status', labelNames: ['status'], registers });
    this.notificationAttempts = new Counter({
      name: `${METRICS_PREFIX}notification_attempts_total`,
      help: 'Notification attempts finished, by outcome (DELIVERED, FAILED, INTERRUPTED) and error kind (none when delivered)',
      labelNames: ['outcome', 'error_kind'],
      registers,
    });
    this.headBlock = new Gauge({ name: `${METRICS_PREFIX}chain_head_block`, help: 'The chain head seen by the last scan pass', labelNames: ['network'], registers });
    this.scannedBlock = new Gauge({ name: `${METRICS_PREFIX}chain_scanned_block`, help: 'The last block scanned for transfers', labelNames: ['network'], registers });
    this.lagBlocks = new Gauge({ name: `${METRICS_PREFIX}chain_lag_blocks`, help: 'Blocks between the chain head and the last block scanned (only on the instance that scans the network)', labelNames: ['network'], registers });
    this.scanning = new Gauge({ name: `${METRICS_PREFIX}chain_scanning`, help: "1 when this instance holds the network's scan lease (its last pass scanned), 0 when another instance does", labelNames: ['network'], registers });
    this.scanFailures = new Counter({
      name: `${METRICS_PREFIX}chain_scan_failures_total`,
      help: "Scan passes that failed (the network's RPC endpoints down or refusing, the database out of reach): the chain gauges keep the last pass's figures meanwhile; alert on its rate with chain_caught_up_age_seconds",
      labelNames: ['network'],
      registers,
    });
    this.settling = new Gauge({ name: `${METRICS_PREFIX}settlement_leading`, help: "1 when this instance holds the network's settlement lease (its last pass settled), 0 when another instance does", labelNames: ['network'], registers });

    this.relayerBalanceGauge = new Gauge({ name: `${METRICS_PREFIX}relayer_balance_wei`, help: 'Native-coin balance of the settlement relayer (wei; may lose precision above 2^53; only on the instance that settles the network)', labelNames: ['network'], registers });
    this.relayerLow = new Gauge({ name: `${METRICS_PREFIX}relayer_balance_low`, help: '1 when the relayer cannot pay for ten settlements at the current gas price', labelNames: ['network'], registers });
    this.settlementsSent = new Counter({ name: `${METRICS_PREFIX}settlements_sent_total`, help: 'Orders put into a settlement transaction', labelNames: ['network'], registers });
    this.settlementsFinal = new Counter({ name: `${METRICS_PREFIX}settlements_final_total`, help: 'Orders whose settlement became final', labelNames: ['network'], registers });
    this.settlementGas = new Counter({ name: `${METRICS_PREFIX}settlement_gas_used_total`, help: 'Gas the relayer paid for its final settlement transactions (none for a distribution adopted from another sender)', labelNames: ['network'], registers });
    for (const edition of EDITIONS) this.ordersCreated.inc({ edition }, 0);
    for (const status of PAY_STATUSES) this.transitions.inc({ status }, 0);
    for (const network of options.networks ?? []) for (const status of PAYMENT_STATUSES) this.paymentsObserved.inc({ network, status }, 0);
    // At 0 from the start, not absent until a network's first settlement (a rate over a series that
    // appears later misses its first increase).
    for (const network of options.networks ?? []) for (const counter of [this.settlementsSent, this.settlementsFinal, this.settlementGas, this.scanFailures]) counter.inc({ network }, 0);
    this.notificationAttempts.inc({ outcome: 'DELIVERED', error_kind: 'none' }, 0);
  }

  orderCreated(edition: Edition): void {
    this.ordersCreated.inc({ edition });
  }

  paymentObserved(network: string, status: PaymentStatus, count = 1): void {
    this.paymentsObserved.inc({ network, status }, count);
  }

  transition(status: PayStatus): void {
    this.transitions.inc({ status });
  }

  notificationAttempt(outcome: Exclude<AttemptOutcome, 'IN_FLIGHT'>, errorKind: AttemptErrorKind | null): void {
    this.notificationAttempts.inc({ outcome, error_kind: errorKind ?? 'none' });
  }

  chainScanned(network: string, head: number, scannedTo: number | null): void {
    // Nothing new this pass: the cursor is past the head, so everything up to it was scanned.
    const scanned = scannedTo ?? Math.max(this.scanned.get(network) ?? head, head);
    this.scanned.set(network, scanned);
    this.headBlock.set({ network }, head);
    this.scannedBlock.set({ network }, scanned);
    this.lagBlocks.set({ network }, Math.max(0, head - scanned));
  }

  chainLease(network: string, held: boolean): void {
    this.scanning.set({ network }, held ? 1 : 0);
    if (held) return;
    // Another instance scans: this one's last figures would stay frozen (a lag of 0 read as healthy).
    this.scanned.delete(network);
    this.headBlock.remove({ network });
    this.scannedBlock.remove({ network });
    this.lagBlocks.remove({ network });
  }

  chainScanFailed(network: string): void {
    this.scanFailures.inc({ network });
  }

  chainCaughtUp(network: string, atMs: number): void {
    this.ownCaughtUp.set(network, Math.max(atMs, this.ownCaughtUp.get(network) ?? atMs));
  }

  relayerBalance(network: string, balanceWei: bigint, low: boolean): void {
    this.relayerBalanceGauge.set({ network }, Number(balanceWei));
    this.relayerLow.set({ network }, low ? 1 : 0);
  }

  settlementLease(network: string, held: boolean): void {
    this.settling.set({ network }, held ? 1 : 0);
    if (held) return;
    this.relayerBalanceGauge.remove({ network });
    this.relayerLow.remove({ network });
  }

  settlementSent(network: string, orders: number): void {
    this.settlementsSent.inc({ network }, orders);
  }

  settlementFinal(network: string, orders: number, gasUsed: bigint): void {
    this.settlementsFinal.inc({ network }, orders);
    this.settlementGas.inc({ network }, Number(gasUsed));
  }

  /** Registers the backlog gauges, refreshed from `source` (one read) each time the page is rendered. */
  private backlogGauges(source: BacklogSource, registers: Registry[], networks: readonly string[]): void {
    const notificationsPending = new Gauge({ name: `${METRICS_PREFIX}notifications_pending`, help: 'Notifications not delivered yet that will be sent again (due now or at a scheduled retry)', registers });
    const notificationsDue = new Gauge({ name: `${METRICS_PREFIX}notifications_due`, help: 'Notifications due now and waiting for a sender', registers });
    const oldestDue = new Gauge({ name: `${METRICS_PREFIX}notifications_oldest_due_seconds`, help: 'How long the oldest due notification has been waiting for a sender (0 when none)', registers });
    const notificationsFailed = new Gauge({ name: `${METRICS_PREFIX}notifications_failed`, help: 'Notifications whose attempts are all used (FAILED); `sparkpay notify resend` sends one again', registers });
    const settlementsWaiting = new Gauge({ name: `${METRICS_PREFIX}settlements_waiting`, help: 'Paid orders not settled yet, by network and status (DUE: waiting for a transaction; SENT: in one not final yet)', labelNames: ['network', 'status'], registers });
    const settlementsDeferred = new Gauge({
      name: `${METRICS_PREFIX}settlements_deferred`,
      help: "Paid orders whose settlement failed and waits to be tried again (backing off up to an hour): the log's 'settlement deferred' lines and `sparkpay order show` say why",
      labelNames: ['network'],
      registers,
    });
    const caughtUpAge = new Gauge({
      name: `${METRICS_PREFIX}chain_caught_up_age_seconds`,
      help: 'How long ago the chain the last complete scan pass covered was current (+Inf: none since start); overdue orders with an address on the network wait for it to pass their deadline',
      labelNames: ['network'],
      registers,
    });
    const databaseUp = new Gauge({ name: `${METRICS_PREFIX}database_up`, help: '1 when the database answered the reads of this page, 0 when it did not (the backlog gauges then keep their last values)', registers });
    /** The last caught-up moments read: while the database does not answer, their ages go on growing. */
    let lastCaughtUp = new Map<string, number | null>();
    this.backlogRefresh = async () => {
      const now = source.nowMs();
      try {
        const [n, settlements, caughtUp] = await withinMs(
          Promise.all([source.notifications(now), source.settlements(), source.chainCaughtUp?.() ?? new Map<string, number | null>()]),
          BACKLOG_READ_TIMEOUT_MS,
        );
        databaseUp.set(1);
        lastCaughtUp = caughtUp;
        notificationsPending.set(n.pending);
        notificationsDue.set(n.due);
        oldestDue.set(n.oldestDueAt === null ? 0 : Math.max(0, (now - n.oldestDueAt) / 1000));
        notificationsFailed.set(n.failed);
        // Every configured network shows both statuses; one no longer configured drops out once emptied.
        settlementsWaiting.reset();
        for (const network of networks) for (const status of ['DUE', 'SENT']) settlementsWaiting.set({ network, status }, 0);
        for (const r of settlements) settlementsWaiting.set({ network: r.network, status: r.status }, r.count);
        settlementsDeferred.reset();
        for (const network of networks) settlementsDeferred.set({ network }, 0);
        for (const r of settlements) if (r.status === 'DUE') settlementsDeferred.set({ network: r.network }, r.deferred ?? 0);
      } catch {
        // The database did not answer: the page is still served, saying so; the backlog gauges
        // keep their last values. The caught-up moments are the last read's, or later ones this
        // process's own scans reached since (a scrape long before the outage would otherwise
        // show the outage as minutes behind); a pass needs the database to catch up, so these
        // ages then grow.
        databaseUp.set(0);
        const merged = new Map(lastCaughtUp);
        for (const [network, at] of this.ownCaughtUp) merged.set(network, Math.max(at, merged.get(network) ?? at));
        lastCaughtUp = merged;
      }
      for (const [network, at] of lastCaughtUp) caughtUpAge.set({ network }, at === null ? Infinity : Math.max(0, (now - at) / 1000));
    };
  }

  private backlogRefresh: (() => Promise<void>) | null = null;
  /** The backlog reads under way: scrapes arriving meanwhile wait for them rather than read again (a flood of scrapes reads the database once at a time). */
  private refreshing: Promise<void> | null = null;

  /** The page GET /metrics serves: this gateway's metrics, then the process ones. */
  async render(): Promise<string> {
    if (this.backlogRefresh) {
      this.refreshing ??= this.backlogRefresh().finally(() => (this.refreshing = null));
      await this.refreshing;
    }
    const own = await this.registry.metrics();
    return this.process ? `${own}\n${await this.process.metrics()}` : own;
  }
}
