// Delivery of the notification outbox (PROTOCOL §13). Each attempt: take the row's lease and
// log the attempt as IN_FLIGHT (one transaction), build a fresh envelope, POST it outside any
// transaction, then store the outcome and the next due time (another transaction). A sender
// that dies mid-attempt leaves a lease that runs out; whoever claims the row next marks that
// attempt INTERRUPTED and sends again with the same notify_id.
import type { KeyObject } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { parsePublicKey, sealNotification } from '@sparkpay/protocol';
import { afterFailure } from '../domain/notification-schedule.js';
import type { PlatformKeys } from './platform-keys.js';
import type { AttemptResult, Clock, DueNotification, EventLog, Metrics, NotificationSender, SendResult, Store } from './ports.js';
import type { NotificationRecord } from './records.js';

export interface DeliveryOptions {
  /** Identifies this sender in leases and the attempt log (one per process). */
  owner: string;
  /** How long a claimed attempt may take before others may take it over: above the send timeout. */
  leaseMs: number;
  /** Attempts in flight at once in this process. */
  concurrency: number;
  /** Attempts in flight at once to one destination (host:port), so a slow receiver holds only these. */
  perDestination: number;
  /**
   * Attempts in flight at once for one application (default: `concurrency`), so that a merchant
   * whose notify URLs name many hosts that never answer holds only these, and the other
   * merchants' notifications do not wait behind its backlog.
   */
  perApplication?: number;
}

export interface DeliveryDeps {
  store: Store;
  clock: Clock;
  platformKeys: PlatformKeys;
  sender: NotificationSender;
  log: EventLog;
  metrics?: Metrics;
}

interface Claimed {
  due: DueNotification;
  record: NotificationRecord;
  attemptNo: number;
}

/**
 * Attempts in flight at once for one application, for a process that runs `concurrency` at once
 * and `perDestination` to one host: never the last destination's worth of them, so one
 * merchant's dead receivers (many hosts, each held to per_destination) leave the other merchants
 * room; and never all of them (with `concurrency` at most `perDestination`, one merchant's
 * backlog took every attempt), unless there is only one.
 */
export function perApplicationLimit(concurrency: number, perDestination: number): number {
  if (concurrency <= 1) return 1;
  return Math.min(concurrency - 1, Math.max(perDestination, concurrency - perDestination));
}

/** Adds `value` to `key`'s set. */
function addTo(sets: Map<string, Set<string>>, key: string, value: string): void {
  const set = sets.get(key);
  if (set) set.add(value);
  else sets.set(key, new Set([value]));
}

/**
 * Backlogged destinations a look at everything due leaves out at most (bound parameters of one
 * statement; past them a backlogged destination's row may come back in the look, and is skipped
 * or taken as it fits).
 */
const MAX_LEFT_OUT = 1_000;

/** Destinations backlogged for one application's limit (not their own) at most. */
const MAX_WAITING_PER_APP = 64;

/** Adds `delta` to `key`'s count; a count that reaches 0 leaves the map. */
function count(counts: Map<string, number>, key: string, delta: number): void {
  const n = (counts.get(key) ?? 0) + delta;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}

export class NotificationDelivery {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly perDestination = new Map<string, number>();
  private readonly perApplication = new Map<string, number>();
  /** Applications whose due notifications a query left out (at their limit): a slot of theirs that frees makes the next pass look at everything due. */
  private readonly appsWaiting = new Set<string>();
  /** Destinations whose due notifications were left waiting by their limit: served after the look at everything else, in turn. */
  private readonly backlogged = new Set<string>();
  /** Backlogged destinations not at their own limit, with the applications at theirs whose rows wait there: asked again once one of those has room. */
  private readonly appLimited = new Map<string, Set<string>>();
  /** Look at everything due in the next pass (a poll, a wake-up, or the process limit was what stopped the last one). */
  private scanWanted = true;
  /** Each application's merchant public key as last parsed, with the PEM it was parsed from. */
  private readonly merchantKeys = new Map<string, { pem: string; key: KeyObject }>();
  private readonly abort = new AbortController();
  /** Called whenever an attempt finishes (capacity is free again; more may be due). */
  onSettled: () => void = () => undefined;

  constructor(
    private readonly deps: DeliveryDeps,
    private readonly options: DeliveryOptions,
  ) {
    // Every attempt in flight listens for the stop signal.
    setMaxListeners(options.concurrency + 10, this.abort.signal);
  }

  get busy(): number {
    return this.inFlight.size;
  }

  /** The next pass looks at everything due, not only at destinations with a freed slot. */
  wantScan(): void {
    this.scanWanted = true;
  }

  /**
   * Claims what is due and can be sent now and starts those attempts; resolves to how many
   * started. The look at everything due comes first and skips destinations at their limit or
   * backlogged (so one busy or dead receiver's backlog never fills a batch, nor takes every
   * freed slot, while the others wait); then freed slots of backlogged destinations are
   * refilled with a query for that destination alone.
   */
  async deliverDue(opts: { scan?: boolean } = {}): Promise<number> {
    if (opts.scan) this.scanWanted = true;
    if (this.abort.signal.aborted) return 0;
    const capacity = this.options.concurrency - this.inFlight.size;
    if (capacity <= 0) return 0;
    const now = this.deps.clock.nowMs();
    const picked: DueNotification[] = [];
    const planned = new Map<string, number>();
    const room = (d: string) => this.options.perDestination - (this.perDestination.get(d) ?? 0) - (planned.get(d) ?? 0);
    const plannedApp = new Map<string, number>();
    const appRoom = (a: string) => (this.options.perApplication ?? this.options.concurrency) - (this.perApplication.get(a) ?? 0) - (plannedApp.get(a) ?? 0);
    const fits = (d: DueNotification) => room(d.destination) > 0 && appRoom(d.appId) > 0;
    // Applications at their limit: their rows are left out of the queries (not their destinations:
    // another application's notifications to the same host go on).
    const fullApps = () => {
      const full = [...new Set([...this.perApplication.keys(), ...plannedApp.keys()])].filter((a) => appRoom(a) <= 0);
      for (const a of full) this.appsWaiting.add(a);
      return full;
    };
    const take = (d: DueNotification) => {
      count(planned, d.destination, 1);
      count(plannedApp, d.appId, 1);
      picked.push(d);
    };
    // Everything else due is looked at first, leaving out the backlogged destinations: a freed
    // slot must not always go back to a receiver that holds its connections while others wait
    // (ADR 0005). What is left of the capacity goes to the backlogged destinations, in turn.
    if (this.scanWanted) {
      this.scanWanted = false;
      for (;;) {
        const left = capacity - picked.length;
        if (left <= 0) {
          // The process limit stopped this look: look again when a slot frees.
          this.scanWanted = true;
          break;
        }
        const full = [...new Set([...this.perDestination.keys(), ...planned.keys()])].filter((d) => room(d) <= 0);
        // A destination at its limit may have more due: it waits its turn with the backlogged
        // ones (and leaves them once nothing is due there), so its rows, however old, never
        // take the slot it frees ahead of every other destination's.
        for (const d of full) this.backlogged.add(d);
        const apps = fullApps();
        const rows = await this.deps.store.notifications.listDue(now, left, this.leftOutOfScan(new Set(apps)), apps);
        let skipped = false;
        for (const row of rows) {
          if (fits(row)) take(row);
          else {
            // Its destination, or its application, at its limit: the destination waits its turn
            // with the backlogged ones (so its older rows do not take a freed slot ahead of other
            // destinations' rows), and the next query leaves a full application's rows out.
            skipped = true;
            if (room(row.destination) <= 0) this.backlogged.add(row.destination);
            else if (this.waitingFor(row.appId) < MAX_WAITING_PER_APP || this.backlogged.has(row.destination)) {
              // Waiting for its application only: not asked about while that application is full,
              // and no more than so many per application (a merchant at its limit with many dead
              // hosts backlogged them all, and asked about each on every pass). Past that its
              // rows are found by a later look at everything due.
              this.backlogged.add(row.destination);
              addTo(this.appLimited, row.destination, row.appId);
            }
          }
        }
        // Rows skipped: their destinations are full now and excluded from the next query.
        if (!skipped) {
          if (rows.length === left) this.scanWanted = true;
          break;
        }
      }
    }
    for (const destination of [...this.backlogged]) {
      if (capacity - picked.length <= 0) break;
      const n = Math.min(room(destination), capacity - picked.length);
      if (n <= 0) continue;
      // Only rows of applications still at their limit were seen waiting there: nothing to ask.
      const waitingFor = this.appLimited.get(destination);
      if (waitingFor && [...waitingFor].every((a) => appRoom(a) <= 0)) continue;
      const leftOut = fullApps();
      const rows = await this.deps.store.notifications.listDueAt(destination, now, n, leftOut);
      let held = false;
      for (const row of rows) {
        if (fits(row)) take(row);
        else held = true;
      }
      // Served: to the back of the line. Nothing more due there (for any application: one at its
      // limit was left out of the query, and waits there for a slot of its own): no longer backlogged.
      this.backlogged.delete(destination);
      this.appLimited.delete(destination);
      if (rows.length === n || held) this.backlogged.add(destination);
      else if (leftOut.length > 0) {
        this.backlogged.add(destination);
        for (const a of leftOut) addTo(this.appLimited, destination, a);
      }
    }
    // An application this pass filled may have more due that no query of it saw: a slot of its
    // that frees makes the next pass look at everything due (else it waited for the poll).
    fullApps();
    if (picked.length === 0) return 0;
    // The lease runs from the claim, not from the start of the pass: a pass slowed by its queries
    // must not leave an attempt sending past its lease while another instance takes it over.
    const claimed = await this.claim(picked, this.deps.clock.nowMs());
    for (const c of claimed) this.start(c);
    return claimed.length;
  }

  /** How many backlogged destinations wait for `app`'s limit. */
  private waitingFor(app: string): number {
    let n = 0;
    for (const apps of this.appLimited.values()) if (apps.has(app)) n += 1;
    return n;
  }

  /**
   * The backlogged destinations the look at everything due leaves out: not those waiting only for
   * applications it leaves out (`appsLeftOut`), whose rows it does not see anyway (a merchant at
   * its limit with many dead hosts would make the list as long as its hosts).
   */
  private leftOutOfScan(appsLeftOut: ReadonlySet<string>): string[] {
    const out: string[] = [];
    for (const d of this.backlogged) {
      const waitingFor = this.appLimited.get(d);
      if (waitingFor && [...waitingFor].every((a) => appsLeftOut.has(a))) continue;
      out.push(d);
      if (out.length === MAX_LEFT_OUT) break;
    }
    return out;
  }

  /** Resolves when every attempt started so far has finished. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Stops sending: attempts in flight are cut short and handed back (due at once) for the next sender. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.idle();
  }

  private async claim(picked: DueNotification[], now: number): Promise<Claimed[]> {
    // One order of claims for every instance (by notify_id), so two claiming transactions on
    // PostgreSQL never wait on each other's rows in a cycle.
    const ordered = [...picked].sort((a, b) => (a.notifyId < b.notifyId ? -1 : a.notifyId > b.notifyId ? 1 : 0));
    const { owner, leaseMs } = this.options;
    let interrupted = 0;
    const claimed = await this.deps.store.transaction(async (tx) => {
      interrupted = 0;
      const out: Claimed[] = [];
      for (const due of ordered) {
        const record = await tx.notifications.claim(due, owner, now, now + leaseMs);
        if (!record) continue;
        // The attempt before this one still IN_FLIGHT: its sender stopped before recording an
        // outcome (its lease ran out), or the notification was resent meanwhile (which clears
        // the lease). Either way it is INTERRUPTED in the log; a sender still alive replaces
        // that with the receiver's answer when it has one (finishAttempt). Only an IN_FLIGHT
        // attempt changes: a recorded outcome stays.
        if (due.attemptNo > 0) {
          const changed = await tx.notifications.finishAttempt(due.notifyId, due.attemptNo, {
            outcome: 'INTERRUPTED',
            finishedAt: now,
            httpStatus: null,
            latencyMs: null,
            responseHead: null,
            errorKind: 'INTERRUPTED',
            error:
              due.leaseOwner !== null
                ? `sender ${due.leaseOwner} stopped before recording an outcome; the receiver may have it`
                : 'no outcome was recorded before the notification was resent; the receiver may have it',
          });
          if (changed === 'IN_FLIGHT') interrupted += 1;
        }
        const attemptNo = due.attemptNo + 1;
        await tx.notifications.insertAttempt({
          notifyId: due.notifyId,
          attemptNo,
          series: due.series,
          sender: owner,
          startedAt: now,
          finishedAt: null,
          outcome: 'IN_FLIGHT',
          httpStatus: null,
          latencyMs: null,
          responseHead: null,
          errorKind: null,
          error: null,
        });
        out.push({ due, record, attemptNo });
      }
      return out;
    });
    // Counted as the attempts a stop cut short are (attempt): a crashed sender counts none of its own.
    for (let i = 0; i < interrupted; i += 1) this.deps.metrics?.notificationAttempt('INTERRUPTED', 'INTERRUPTED');
    return claimed;
  }

  private start(c: Claimed): void {
    const dest = c.due.destination;
    const app = c.due.appId;
    count(this.perDestination, dest, 1);
    count(this.perApplication, app, 1);
    const p = this.attempt(c)
      .catch((err: unknown) => this.deps.log.error({ err, notifyId: c.due.notifyId }, 'notification attempt could not be recorded; its lease will run out and it will be sent again'))
      .finally(() => {
        this.inFlight.delete(p);
        count(this.perDestination, dest, -1);
        count(this.perApplication, app, -1);
        // Its due notifications were left out while it was at its limit: they are found by a look
        // at everything due (the freed slot is theirs as much as its destination's).
        if (this.appsWaiting.delete(app)) this.scanWanted = true;
        this.onSettled();
      });
    this.inFlight.add(p);
  }

  private async attempt(c: Claimed): Promise<void> {
    const { notifyId } = c.due;
    let sent: SendResult;
    try {
      const body = await this.envelope(c);
      sent = await this.deps.sender.send(c.due.notifyUrl, body, this.abort.signal);
    } catch (err) {
      sent = { delivered: false, httpStatus: null, latencyMs: 0, responseHead: null, errorKind: 'ENVELOPE', error: `could not build the envelope: ${(err as Error).message}` };
    }
    const finishedAt = this.deps.clock.nowMs();
    const interrupted = sent.errorKind === 'INTERRUPTED';
    const result: AttemptResult = {
      outcome: sent.delivered ? 'DELIVERED' : interrupted ? 'INTERRUPTED' : 'FAILED',
      finishedAt,
      httpStatus: sent.httpStatus,
      latencyMs: sent.latencyMs,
      responseHead: sent.responseHead,
      errorKind: sent.errorKind,
      error: sent.error,
    };
    const attempts = c.record.attempts + (interrupted ? 0 : 1);
    const next = sent.delivered
      ? { status: 'DELIVERED' as const, attempts, nextAttemptAt: finishedAt, deliveredAt: finishedAt }
      : interrupted
        ? { status: 'PENDING' as const, attempts, nextAttemptAt: finishedAt, deliveredAt: null }
        : nextAfterFailure(attempts, finishedAt);
    /** What the outcome replaced in the attempt log: IN_FLIGHT as a rule; INTERRUPTED when another sender took the notification over meanwhile (and counted the attempt so). */
    let replaced: 'IN_FLIGHT' | 'INTERRUPTED' | null = null;
    const record = (r: AttemptResult) =>
      this.deps.store.transaction(async (tx) => {
        // The notification's row before its attempt's, as a claim writes them: on PostgreSQL a
        // claim and a late sender's outcome taking the two locks in opposite orders deadlocked.
        let kept = await tx.notifications.settle(notifyId, { owner: this.options.owner, series: c.due.series, attemptNo: c.attemptNo }, next);
        // The receiver took it, though this sender's lease ran out and another took it over: it
        // is delivered (the other sender's outcome, if any, is then logged only), not sent on
        // until it fails for good beside a DELIVERED attempt. Not after a resend (a new series).
        if (!kept && next.status === 'DELIVERED') kept = await tx.notifications.deliveredLate(notifyId, c.due.series, finishedAt);
        replaced = await tx.notifications.finishAttempt(notifyId, c.attemptNo, r);
        return kept;
      });
    let kept: boolean;
    try {
      kept = await record(result);
    } catch (err) {
      // What the receiver answered could not be stored: the outcome is, without it. An attempt
      // left unrecorded would be sent again at every lease and never count (ADR 0005).
      if (result.responseHead === null && result.error === null) throw err;
      this.deps.log.warn({ notifyId, attemptNo: c.attemptNo, err: (err as Error).message }, 'attempt recorded without the answer, which could not be stored');
      kept = await record({ ...result, responseHead: null, error: `the answer could not be stored (${(err as Error).message.slice(0, 200)})` });
    }
    // Each attempt is counted once: one a taker already counted as INTERRUPTED is not counted again.
    if (replaced !== 'INTERRUPTED') this.deps.metrics?.notificationAttempt(result.outcome, result.errorKind);
    const fields = { notifyId, paymentOrderNo: c.record.paymentOrderNo, attemptNo: c.attemptNo, series: c.due.series, httpStatus: sent.httpStatus, latencyMs: sent.latencyMs, errorKind: sent.errorKind };
    if (!kept) this.deps.log.warn(fields, 'notification changed during the attempt (resent, or the lease ran out); outcome logged only');
    else if (sent.delivered) this.deps.log.info(fields, 'notification delivered');
    else if (next.status === 'FAILED') this.deps.log.warn({ ...fields, error: sent.error }, 'notification failed: no attempts left');
    else this.deps.log.info({ ...fields, error: sent.error, nextAttemptAt: next.nextAttemptAt }, 'notification attempt failed');
  }

  private async envelope(c: Claimed): Promise<string> {
    const { appId } = c.due;
    const payload = withNotifyTime(c.record.payload, c.record.notifyTime);
    const signing = await this.deps.platformKeys.signingKeyFor(appId);
    const merchantPublicKey = await this.merchantKey(appId);
    return JSON.stringify(sealNotification(payload, { appId, serial: signing.serial, merchantPublicKey, platformPrivateKey: signing.privateKey }));
  }

  /**
   * The application's current merchant public key, parsed once per key. The application is read
   * for every envelope (the gateway's store keeps it for a second, ADR 0010), so a key set by
   * `app set-key` on any process seals the attempts that start a second later, as requests
   * signed with the old key are refused by then (a 5 s cache of its own sealed to the old key
   * for up to 6 s, and the merchant's receiver, switched already, refused them).
   */
  private async merchantKey(appId: string): Promise<KeyObject> {
    const app = await this.deps.store.applications.get(appId);
    if (!app) throw new Error(`application ${appId} does not exist`);
    const hit = this.merchantKeys.get(appId);
    if (hit && hit.pem === app.merchantPublicKeyPem) return hit.key;
    const key = parsePublicKey(app.merchantPublicKeyPem);
    this.merchantKeys.set(appId, { pem: app.merchantPublicKeyPem, key });
    return key;
  }
}

function nextAfterFailure(attempts: number, nowMs: number) {
  const after = afterFailure(attempts, nowMs);
  return after.kind === 'RETRY'
    ? { status: 'PENDING' as const, attempts, nextAttemptAt: after.nextAttemptAt, deliveredAt: null }
    : { status: 'FAILED' as const, attempts, nextAttemptAt: nowMs, deliveredAt: null };
}

/**
 * The stored payload (a JSON object written by the state change) with notify_time appended as
 * its last member: spliced into the text rather than parsed and re-serialised, so the bytes the
 * state change wrote are the bytes signed.
 */
export function withNotifyTime(payloadJson: string, notifyTime: number | null): string {
  const body = payloadJson.trimEnd();
  if (!body.startsWith('{') || !body.endsWith('}')) throw new Error('stored notification payload is not a JSON object');
  const inner = body.slice(1, -1).trim();
  return `{${inner}${inner === '' ? '' : ','}"notify_time":${JSON.stringify(notifyTime)}}`;
}
