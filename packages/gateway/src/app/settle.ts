// One pass of a network's settlement (PROTOCOL §15a, issue 5; ADR 0008). One instance at a time
// sends for a network (a named lease), and the (network, relayer, nonce) unique index backs that
// up. A pass:
// 1. follows the open transactions, lowest nonce first: final → the orders' payouts are recorded
//    (each order's Distribution event and its plan) and the orders complete; reverted → the
//    orders are due again; pending too long → replaced with higher fees (same nonce, new hash
//    recorded first); known to nobody (a reorg dropped it, or the process died between
//    recording and broadcasting) → the same signed transaction is broadcast again, unless its
//    nonce was used meanwhile (DROPPED, the orders due again);
// 2. settles what is due: orders still PAID (or closed underpaid), whose forwarder holds money
//    and was not distributed yet (if it was — by us before a lost record, or by anyone — the
//    distribution found on chain is adopted instead: nobody is paid twice, the contract would
//    refuse anyway), in one batch transaction. Signed, recorded (intent, hash, raw), then sent.
// A relayer short of gas, or a gas price above the cap, makes settlements wait; orders never fail.
import { distribute, planFromJson, type SettlementPlan } from '../domain/settlement-plan.js';
import type { NetworkDeployment } from '../domain/catalogue.js';
import type { OrderFact } from '../domain/lifecycle.js';
import type { EventLog, FeeQuote, Metrics, SettlementChain, SettlementReceipt, StoreTx } from './ports.js';
import { noMetrics } from './ports.js';
import { transition, type TransitionDeps } from './order-transitions.js';
import { elsewhereOf } from './record-payment.js';
import { leadershipLog } from './lease-log.js';
import { fencedStore, LeaseGoneError } from './lease-fence.js';
import type { OrderRecord, PayoutRecord, SettlementRecord, SettlementTxRecord } from './records.js';

/** What each receiver of `plan` gets when `balance` is distributed (zero shares left out). */
function payoutsOf(paymentOrderNo: string, plan: SettlementPlan, balance: bigint): PayoutRecord[] {
  const amounts = distribute(plan, balance);
  return plan.receivers.flatMap((r, idx) => (amounts[idx]! > 0n ? [{ paymentOrderNo, idx, role: r.role, address: r.address.toLowerCase(), amount: amounts[idx]! }] : []));
}

export interface SettleSettings {
  /** Orders per settlement transaction at most (issue 5: 20). */
  batchSize: number;
  /** A transaction pending longer than this is replaced with higher fees. */
  replaceAfterMs: number;
  /** Highest max fee per gas the relayer pays, wei. */
  maxFeePerGas: bigint;
  /** Open settlement transactions at most before new ones wait. */
  maxInFlight: number;
  /** First retry delay after a failed simulation or a revert; doubles per attempt, at most 1 h. */
  retryBaseMs: number;
}

export interface SettleDeps extends TransitionDeps {
  chain: SettlementChain;
  network: NetworkDeployment;
  log: EventLog;
  owner: string;
  leaseMs: number;
  settings: SettleSettings;
  metrics?: Metrics;
}

export interface SettleResult {
  leased: boolean;
  /** Orders put into a new transaction this pass. */
  sent: number;
  /** Orders whose settlement became final this pass. */
  settled: number;
  /** Transactions replaced with higher fees, or broadcast again. */
  replaced: number;
  rebroadcast: number;
  /** Why due orders wait, when they do (low balance, gas price above the cap). */
  waiting: string | null;
}

/** Gas a one-order settlement may take; the low-balance line is ten of them at the current price. */
const SETTLEMENT_GAS_ESTIMATE = 250_000n;
const LOW_BALANCE_SETTLEMENTS = 10n;
const MAX_RETRY_MS = 3_600_000;
/**
 * The longest wait of an order whose transaction reverted on chain while it went alone (it
 * already had): its own plan refuses in a real block. Retried hourly it cost the relayer a
 * reverted transaction's gas 24 times a day, for good; once a day is enough to notice a receiver
 * that accepts again, and `sparkpay order settle` retries it at once.
 */
const MAX_RETRY_ALONE_MS = 86_400_000;
const BALANCE_READ_IDLE_MS = 60_000;

const leaseName = (network: string) => `settle:${network}`;

/**
 * Fees of a replacement: at least 12.5 % above the old ones (nodes want 10 % to replace), the
 * current quote if higher, never above the cap; null when the cap leaves no room for the bump.
 */
export function bumpedFees(old: FeeQuote, quote: FeeQuote, cap: bigint): FeeQuote | null {
  const up = (v: bigint) => (v * 1125n) / 1000n + 1n;
  const max = (a: bigint, b: bigint) => (a > b ? a : b);
  const min = (a: bigint, b: bigint) => (a < b ? a : b);
  if (up(old.maxFeePerGas) > cap) return null;
  const maxFee = min(cap, max(up(old.maxFeePerGas), quote.maxFeePerGas));
  const priority = min(maxFee, max(up(old.maxPriorityFeePerGas), quote.maxPriorityFeePerGas));
  return { maxFeePerGas: maxFee, maxPriorityFeePerGas: priority };
}

export class Settler {
  /** The dependencies, with a store whose every transaction renews the settlement lease first (see settleOnce). */
  private readonly deps: SettleDeps;
  private lowBalanceLogged = 0;
  private balanceReadAt = -Infinity;
  /** Logs when this instance takes over or loses the network's settlement lease. */
  private readonly leading: (held: boolean) => void;

  constructor(deps: SettleDeps) {
    // Every write of a pass is a transaction that renews the lease inside it first: a pass slowed
    // past its lease (RPC calls between its reads and its writes) while another instance took the
    // settlement over must not write its older copy of a transaction row over the other's (a
    // replacement's hash lost from the row, its own replacement broadcast as well).
    this.deps = { ...deps, store: fencedStore(deps.store, leaseName(deps.network.id), deps.owner, deps.leaseMs, () => deps.clock.nowMs()) };
    this.leading = leadershipLog(deps.log, deps.network.id, 'settlement');
  }

  get relayer(): string {
    return this.deps.chain.relayer;
  }

  private get metrics(): Metrics {
    return this.deps.metrics ?? noMetrics;
  }

  async settleOnce(): Promise<SettleResult> {
    const result: SettleResult = { leased: false, sent: 0, settled: 0, replaced: 0, rebroadcast: 0, waiting: null };
    try {
      await this.pass(result);
    } catch (err) {
      if (!(err instanceof LeaseGoneError)) throw err;
      this.leading(false);
      this.deps.log.warn({ network: this.deps.network.id }, 'another instance took the settlement lease during a pass (it outlived its lease); nothing more of it is written');
    }
    return result;
  }

  private async pass(result: SettleResult): Promise<SettleResult> {
    const { deps } = this;
    const now = deps.clock.nowMs();
    const held = await deps.store.leases.acquire(leaseName(deps.network.id), deps.owner, now, now + deps.leaseMs);
    this.metrics.settlementLease(deps.network.id, held);
    this.leading(held);
    if (!held) {
      // Read again at the next pass that holds the lease: the figures were withdrawn meanwhile.
      this.balanceReadAt = -Infinity;
      return result;
    }
    result.leased = true;
    // The head is read once a pass needs it (a transaction to follow, an order to send): an idle
    // pass reads the database only, not the RPC provider's allowance.
    let headRead: Promise<number> | null = null;
    const head = () => (headRead ??= deps.chain.head());
    const open = await deps.store.settlements.listOpenTxs(deps.network.id);
    // Only the lowest open nonce of the relayer that is not mined is repriced (the others wait
    // behind it anyway); ours are followed in nonce order, so one mined but not final yet passes
    // that on to the next.
    let lowestFree = true;
    // No open transaction of ours below this one at all (mined or not): only then can a gap below
    // its nonce be nothing of ours (an endpoint that has not seen our mined one would show one).
    let noneBelow = true;
    let stillOpen = 0;
    for (const tx of open) {
      // Still the network's sender, without a break, before each transaction it follows (a pass
      // slow on its RPC calls may outlive its lease): another instance that took over meanwhile
      // must not have its replacement overwritten by this pass's older copy of the row.
      const at = deps.clock.nowMs();
      if (!(await deps.store.leases.renew(leaseName(deps.network.id), deps.owner, at, at + deps.leaseMs))) return result;
      const ours = tx.nonce !== null && this.isOurs(tx);
      const outcome = await this.follow(tx, await head(), ours && lowestFree, ours && noneBelow);
      if (ours) noneBelow = false;
      if (typeof outcome === 'number') result.settled += outcome;
      else if (outcome === 'REPLACED') result.replaced += 1;
      else if (outcome === 'REBROADCAST') result.rebroadcast += 1;
      // Only the current key's transactions take in-flight slots: a former key's waiting ones must
      // not keep the new key from sending.
      if (ours && typeof outcome !== 'number' && outcome !== 'GONE') stillOpen += 1;
      if (ours && (outcome === 'PENDING' || outcome === 'REPLACED' || outcome === 'REBROADCAST')) lowestFree = false;
    }
    result.settled += await this.completeSettledButPaid();
    if (stillOpen >= deps.settings.maxInFlight) return result;
    await this.sendDue(head, result);
    return result;
  }

  /** A transaction of the current relayer account (after a key change, the old one's are only followed). */
  private isOurs(tx: SettlementTxRecord): boolean {
    return tx.relayer.toLowerCase() === this.deps.chain.relayer.toLowerCase();
  }

  /**
   * Orders whose settlement is final but which could not complete then (a reorganisation had
   * taken their payment back) and are PAID again: they complete now.
   */
  private async completeSettledButPaid(): Promise<number> {
    let done = 0;
    for (const st of await this.deps.store.settlements.listSettledButPaid(this.deps.network.id, this.deps.settings.batchSize)) {
      const outcome = await transition(this.deps, st.paymentOrderNo, async (s, order) => settlementFinal(s, order));
      if (outcome.ok && outcome.changed) done += 1;
    }
    return done;
  }

  /** Lets the lease go (a stopping process), so another instance takes over at once; whether this instance held it. */
  release(): Promise<boolean> {
    return this.deps.store.leases.release(leaseName(this.deps.network.id), this.deps.owner);
  }

  // ---- 1. open transactions -------------------------------------------------------------------

  /** What became of an open transaction; a number: it is final, and that many of its orders completed. */
  private async follow(tx: SettlementTxRecord, head: number, lowestNonce: boolean, noneBelow: boolean): Promise<FollowOutcome> {
    let mined: SettlementReceipt | null = null;
    for (const hash of [...tx.hashes].reverse()) {
      mined = await this.deps.chain.receipt(hash);
      if (mined) break;
    }
    const now = this.deps.clock.nowMs();
    if (mined) return this.followMined(tx, mined, head, now);
    // Not mined (any more): pending somewhere, or gone.
    const cleared = { ...tx, minedHash: null, blockNumber: null, blockHash: null, gasUsed: null };
    if (await this.anyKnown(tx.hashes)) return this.followPending(tx, cleared, now, lowestNonce, noneBelow);
    return this.followUnknown(tx, cleared, now, lowestNonce);
  }

  /** A transaction mined in one of its hashes: reverted (its orders due again), final (complete), or confirming. */
  private async followMined(tx: SettlementTxRecord, mined: SettlementReceipt, head: number, now: number): Promise<FollowOutcome> {
    const { deps } = this;
    if (!mined.success) {
      deps.log.warn({ network: tx.network, txHash: mined.hash, orders: tx.orderCount }, 'settlement transaction reverted; its orders are due again');
      await this.giveBack(tx, 'REVERTED', `settlement transaction ${mined.hash} reverted on chain`, true, mined.hash);
      return 'GONE';
    }
    const confirmations = head - mined.blockNumber + 1;
    if (confirmations >= deps.network.chain.confirmations && (await deps.chain.blockHash(mined.blockNumber))?.toLowerCase() === mined.blockHash.toLowerCase()) {
      return this.complete(tx, mined);
    }
    if (tx.minedHash !== mined.hash || tx.blockHash !== mined.blockHash || tx.status !== 'SENT') {
      // sentAt: a transaction recorded SIGNED whose broadcast went through before a crash.
      await this.saveTx({ ...tx, status: 'SENT', sentAt: tx.sentAt ?? now, minedHash: mined.hash, blockNumber: mined.blockNumber, blockHash: mined.blockHash, gasUsed: mined.gasUsed, updatedAt: now }, mined.hash);
    }
    return 'MINED';
  }

  /** A transaction a node has pending: repriced once it waited the replacement delay (our lowest nonce only), or given back behind a gap. */
  private async followPending(tx: SettlementTxRecord, cleared: SettlementTxRecord, now: number, lowestNonce: boolean, noneBelow: boolean): Promise<FollowOutcome> {
    const { deps } = this;
    if (tx.status === 'SIGNED' || tx.minedHash) await this.saveTx({ ...cleared, status: 'SENT', sentAt: tx.sentAt ?? now, updatedAt: now });
    // A transaction this relayer cannot reprice (a former key's, or an adopted distribution that
    // a reorganisation sent back to the mempool), pending for the replacement delay: nothing but
    // the mempool's eviction would end its wait, so its orders are due again and go out with the
    // current key. Should it be mined after all, the factory skips what it distributed first.
    const pendingSince = tx.minedHash ? now : Math.max(tx.sentAt ?? tx.createdAt, tx.updatedAt);
    if (!(tx.nonce !== null && this.isOurs(tx)) && now - pendingSince >= deps.settings.replaceAfterMs) {
      deps.log.warn({ network: tx.network, relayer: tx.relayer, txHash: tx.txHash }, 'settlement transaction this relayer cannot reprice has been pending for the replacement delay; its orders are due again');
      await this.giveBack(tx, 'DROPPED', `transaction ${tx.txHash} ${tx.nonce === null ? 'found on chain' : `of the former relayer ${tx.relayer}`} has been pending since ${new Date(pendingSince).toISOString()}, and only its sender can reprice it`, false);
      return 'GONE';
    }
    if (!(lowestNonce && this.isOurs(tx) && tx.nonce !== null && now - (tx.sentAt ?? tx.createdAt) >= deps.settings.replaceAfterMs)) return 'PENDING';
    // Our lowest open transaction above the account's next nonce waits behind a gap nothing
    // of ours fills (a nonce signed from a wrong pending count): it can never be mined.
    const { latest } = await deps.chain.nonces();
    if (noneBelow && tx.nonce > latest) {
      deps.log.warn({ network: tx.network, nonce: tx.nonce, latest, txHash: tx.txHash }, 'settlement transaction waits behind a nonce gap none of ours fills; its orders are due again');
      await this.giveBack(tx, 'DROPPED', `nonce ${tx.nonce} is above the account's next nonce ${latest}`, false);
      return 'GONE';
    }
    return (await this.replace(cleared, now)).replaced ? 'REPLACED' : 'PENDING';
  }

  /** A transaction no node knows (any more): given back, or broadcast again (re-signed with higher fees when stale or underpriced). */
  private async followUnknown(tx: SettlementTxRecord, cleared: SettlementTxRecord, now: number, lowestNonce: boolean): Promise<FollowOutcome> {
    const { deps } = this;
    if (tx.nonce === null || tx.rawTx === null) {
      // A distribution adopted from the chain that left it: the orders are checked afresh.
      await this.giveBack(tx, 'DROPPED', 'the distribution found on chain left it (reorganisation)', false);
      return 'GONE';
    }
    // A transaction of a relayer key no longer configured, known to no node any more and stale:
    // nobody will broadcast it successfully (its account is typically emptied at the change), so
    // its orders are due again and go out with the current key. Should it be mined after all,
    // the factory skips the plans it already distributed and the adopt path finds it.
    if (!this.isOurs(tx) && now - (tx.sentAt ?? tx.createdAt) >= deps.settings.replaceAfterMs) {
      deps.log.warn({ network: tx.network, relayer: tx.relayer, txHash: tx.txHash }, 'settlement transaction of a former relayer key is known to no node; its orders are due again');
      await this.giveBack(tx, 'DROPPED', `transaction ${tx.txHash} of the former relayer ${tx.relayer} is known to no node`, false);
      return 'GONE';
    }
    const { latest } = await deps.chain.nonces(tx.relayer);
    if (latest > tx.nonce) {
      // The nonce was used by a transaction that is not one of ours for it: ours can never be mined.
      deps.log.warn({ network: tx.network, nonce: tx.nonce, txHash: tx.txHash }, 'settlement transaction replaced by another use of its nonce; its orders are due again');
      await this.giveBack(tx, 'DROPPED', `nonce ${tx.nonce} was used by another transaction`, false);
      return 'GONE';
    }
    // Dropped by a reorganisation or a node's mempool, or never sent (a crash right after it was
    // recorded): the same signed transaction again, same nonce, same hash — unless it has been
    // gone for the replacement delay (a mempool that evicts it as too cheap keeps doing so) or
    // the node refuses it (underpriced): then it is re-signed with higher fees, same nonce.
    const stale = now - (tx.sentAt ?? tx.createdAt) >= deps.settings.replaceAfterMs;
    const mine = lowestNonce && this.isOurs(tx);
    // The record as last saved: a replacement is recorded before it is broadcast, and its hash
    // must stay in the row even when its broadcast reports a failure (the node may have it).
    let current: SettlementTxRecord = cleared;
    if (mine && stale) {
      const r = await this.replace(current, now);
      if (r.replaced) return 'REPLACED';
      current = r.record;
    }
    const sent = await deps.chain.broadcast(tx.rawTx);
    if (sent.ok) deps.log.info({ network: tx.network, txHash: tx.txHash, nonce: tx.nonce }, 'settlement transaction broadcast again');
    else {
      deps.log.warn({ network: tx.network, txHash: tx.txHash, error: sent.error }, 'settlement transaction could not be broadcast again');
      // A gas limit the node refuses (signed from a wrong estimate) is refused again on every
      // rebroadcast and replacement: the orders are estimated afresh in a new transaction.
      if (mine && GAS_LIMIT_REFUSED.test(sent.error)) {
        await this.giveBack(current, 'DROPPED', `the node refuses the transaction's gas limit: ${sent.error.slice(0, 200)}`, false);
        return 'GONE';
      }
      // Only fees the node calls too low are a reason to re-sign with higher ones, and not more
      // often than every FEE_RESIGN_MIN_MS. An endpoint that fails (429, 5xx, a timeout) or an
      // account short of funds would otherwise raise the fees on every pass up to the cap, and
      // the transaction, once it goes through, pay them all.
      if (mine && current === cleared && FEES_REFUSED.test(sent.error) && now - (tx.sentAt ?? tx.createdAt) >= Math.min(deps.settings.replaceAfterMs, FEE_RESIGN_MIN_MS)) {
        const r = await this.replace(current, now);
        if (r.replaced) return 'REPLACED';
        current = r.record;
      }
    }
    // The replacement delay runs from the first broadcast, or from the last re-signing.
    await this.saveTx({ ...current, status: 'SENT', sentAt: current === cleared ? (tx.sentAt ?? now) : current.sentAt, updatedAt: now });
    return 'REBROADCAST';
  }

  private async anyKnown(hashes: readonly string[]): Promise<boolean> {
    for (const hash of [...hashes].reverse()) if (await this.deps.chain.known(hash)) return true;
    return false;
  }

  /** Writes the transaction row, and the hash its orders show (the mined one, else the latest). */
  private async saveTx(tx: SettlementTxRecord, shownHash: string = tx.txHash): Promise<void> {
    await this.deps.store.transaction(async (s) => {
      await s.settlements.updateTx(tx);
      for (const st of await s.settlements.listByTx(tx.id)) {
        if (st.status === 'SENT' && st.txHash !== shownHash) await s.settlements.update({ ...st, txHash: shownHash, updatedAt: tx.updatedAt });
      }
    });
  }

  /**
   * The transaction will not settle its orders: they are due again (after a delay when `backoff`).
   * `reverted`: the hash that reverted on chain; its orders then go alone until they settle.
   */
  private async giveBack(tx: SettlementTxRecord, status: 'REVERTED' | 'DROPPED', why: string, backoff: boolean, reverted?: string): Promise<void> {
    const now = this.deps.clock.nowMs();
    await this.deps.store.transaction(async (s) => {
      await s.settlements.updateTx({ ...tx, status, updatedAt: now });
      const orders = await s.settlements.listByTx(tx.id);
      for (const st of orders) {
        if (st.status !== 'SENT') continue;
        const attempts = st.attempts + (backoff ? 1 : 0);
        const revertedTx = reverted ?? st.revertedTx;
        // Reverted again, alone after an earlier revert: its own plan is what reverts.
        const culprit = reverted !== undefined && st.revertedTx !== null && orders.length === 1;
        if (culprit) this.deps.log.error({ network: st.network, paymentOrderNo: st.paymentOrderNo, txHash: reverted, attempts }, 'settlement of this order reverted on chain again, sent alone: one of its receivers refuses the payout in a real block; it is retried at most once a day (sparkpay order show names its receivers; order settle retries at once)');
        const delay = this.retryDelay(attempts, culprit ? MAX_RETRY_ALONE_MS : MAX_RETRY_MS);
        await s.settlements.update({ ...st, status: 'DUE', txId: null, txHash: null, attempts, lastError: why, nextAttemptAt: backoff ? now + delay : now, updatedAt: now, revertedTx });
        await s.settlements.setPayouts(st.paymentOrderNo, []);
      }
    });
  }

  private retryDelay(attempts: number, max = MAX_RETRY_MS): number {
    return Math.min(max, this.deps.settings.retryBaseMs * 2 ** Math.max(0, attempts - 1));
  }

  /** Re-signs `tx` with higher fees, same nonce: whether the node took it, and the record as saved now. */
  private async replace(tx: SettlementTxRecord, now: number): Promise<{ replaced: boolean; record: SettlementTxRecord }> {
    const { deps } = this;
    const fees = bumpedFees(tx, await deps.chain.fees(), deps.settings.maxFeePerGas);
    if (!fees) {
      deps.log.warn({ network: tx.network, txHash: tx.txHash, cap: deps.settings.maxFeePerGas.toString() }, 'settlement transaction is pending and its fees are at the cap');
      return { replaced: false, record: tx };
    }
    // A transaction that waits because the account cannot pay it is not helped by higher fees:
    // re-signed every replace_after_ms, it would reach the cap and, once the account is funded,
    // pay all of it. It is broadcast again as it is until the relayer can pay the higher fees.
    const balance = await deps.chain.relayerBalance();
    if (balance < tx.gasLimit * fees.maxFeePerGas) {
      deps.log.warn({ network: tx.network, txHash: tx.txHash, balance: balance.toString(), needed: (tx.gasLimit * fees.maxFeePerGas).toString() }, 'settlement transaction is pending and the relayer cannot pay higher fees: fund it');
      return { replaced: false, record: tx };
    }
    const plans = await this.plansOf(tx.id);
    if (plans.length === 0) return { replaced: false, record: tx };
    const signed = await deps.chain.sign(plans, { nonce: tx.nonce!, gas: tx.gasLimit, fees });
    // Recorded before it is sent: whichever of the hashes is mined, it is one we know.
    const next: SettlementTxRecord = { ...tx, status: 'SENT', txHash: signed.hash, rawTx: signed.raw, hashes: [...tx.hashes, signed.hash], ...fees, sentAt: now, updatedAt: now };
    await this.saveTx(next);
    const sent = await deps.chain.broadcast(signed.raw);
    if (!sent.ok) {
      deps.log.warn({ network: tx.network, txHash: signed.hash, error: sent.error }, 'replacement settlement transaction refused');
      return { replaced: false, record: next };
    }
    deps.log.info({ network: tx.network, nonce: tx.nonce, from: tx.txHash, to: signed.hash, maxFeePerGas: fees.maxFeePerGas.toString() }, 'settlement transaction replaced with higher fees');
    return { replaced: true, record: next };
  }

  private async plansOf(txId: string): Promise<SettlementPlan[]> {
    const plans: SettlementPlan[] = [];
    for (const st of await this.deps.store.settlements.listByTx(txId)) {
      const plan = await this.planOf(st);
      if (plan) plans.push(plan);
    }
    return plans;
  }

  private async planOf(st: SettlementRecord): Promise<SettlementPlan | null> {
    const deposit = await this.deps.store.depositAddresses.get(st.paymentOrderNo, st.network, st.currency);
    return deposit ? planFromJson(deposit.plan) : null;
  }

  /** The transaction is final: each order's payouts from its Distribution event and plan, then COMPLETED. Resolves to the orders settled. */
  private async complete(tx: SettlementTxRecord, mined: SettlementReceipt): Promise<number> {
    const { deps } = this;
    const now = deps.clock.nowMs();
    const orders = await deps.store.settlements.listByTx(tx.id);
    let settled = 0;
    /** Orders this transaction distributed (completed or not). */
    let distributedOrders = 0;
    for (const st of orders) {
      const ref = deps.chain.orderRef(st.paymentOrderNo);
      const forwarder = st.address.toLowerCase();
      const distribution = mined.distributions.find((d) => d.orderRef === ref && d.forwarder === forwarder);
      if (!distribution) {
        // The transaction did not distribute this order's forwarder: it is due again. Skipped
        // because someone distributed the plan first: the next pass adopts that distribution.
        const skipped = mined.skipped.find((d) => d.orderRef === ref && d.forwarder === forwarder);
        if (skipped) deps.log.warn({ network: deps.network.id, paymentOrderNo: st.paymentOrderNo, txHash: mined.hash, reason: skipped.reason }, 'the settlement batch skipped this order (distributed already, or nothing held); it is due again');
        else deps.log.error({ network: deps.network.id, paymentOrderNo: st.paymentOrderNo, txHash: mined.hash }, 'a final settlement transaction has no distribution of this order; it is due again');
        await deps.store.transaction(async (s) => {
          await s.settlements.update({ ...st, status: 'DUE', txId: null, txHash: null, lastError: `transaction ${mined.hash} did not distribute it`, nextAttemptAt: now, updatedAt: now });
          await s.settlements.setPayouts(st.paymentOrderNo, []);
        });
        continue;
      }
      const plan = await this.planOf(st);
      // The factory pays the receivers of a whole batch together; each order's shares follow
      // from the balance its Distribution event reports and its plan, by the contract's rule.
      const payouts = plan ? payoutsOf(st.paymentOrderNo, plan, distribution.balance) : [];
      if (!plan) deps.log.error({ network: deps.network.id, paymentOrderNo: st.paymentOrderNo, txHash: mined.hash }, 'a settled order has no stored plan: its payouts are not recorded');
      const distributed = distribution.balance;
      distributedOrders += 1;
      const outcome = await transition(deps, st.paymentOrderNo, async (s, order) => {
        await s.settlements.update({ ...st, status: 'SETTLED', txHash: mined.hash, distributed, lastError: null, settledAt: now, updatedAt: now, revertedTx: null });
        await s.settlements.setPayouts(st.paymentOrderNo, payouts);
        return settlementFinal(s, order);
      });
      if (outcome.ok) settled += 1;
      else {
        // E.g. a reorg took the payment back after the settlement was sent: the money was
        // distributed all the same; the operator must look at it.
        deps.log.error({ network: deps.network.id, paymentOrderNo: st.paymentOrderNo, txHash: mined.hash, reason: outcome.reason }, `settled order could not complete: ${outcome.message}`);
        await deps.store.transaction(async (s) => {
          await s.settlements.update({ ...st, status: 'SETTLED', txHash: mined.hash, distributed, lastError: outcome.message, settledAt: now, updatedAt: now, revertedTx: null });
          await s.settlements.setPayouts(st.paymentOrderNo, payouts);
        });
      }
    }
    await deps.store.transaction((s) => s.settlements.updateTx({ ...tx, status: 'FINAL', orderCount: orders.length, sentAt: tx.sentAt ?? now, minedHash: mined.hash, blockNumber: mined.blockNumber, blockHash: mined.blockHash, gasUsed: mined.gasUsed, updatedAt: now }));
    // Orders settled for good by it (not those it skipped, due again), and gas the relayer paid:
    // none for a distribution adopted from someone else's transaction (no nonce of ours).
    this.metrics.settlementFinal(deps.network.id, distributedOrders, tx.nonce === null ? 0n : mined.gasUsed);
    deps.log.info({ network: deps.network.id, txHash: mined.hash, orders: orders.length, settled, gasUsed: mined.gasUsed.toString() }, 'settlement final');
    return settled;
  }

  // ---- 2. due settlements ---------------------------------------------------------------------

  private async sendDue(head: () => Promise<number>, result: SettleResult): Promise<void> {
    const { deps } = this;
    const now = deps.clock.nowMs();
    const due = await deps.store.settlements.listDue(deps.network.id, now, deps.settings.batchSize);
    // With nothing due the balance is read for the metric and the warning only once a minute, so
    // an idle gateway does not spend its RPC provider's allowance on it.
    if (due.length === 0 && now - this.balanceReadAt < BALANCE_READ_IDLE_MS) return;
    this.balanceReadAt = now;
    const [balance, quote] = await Promise.all([deps.chain.relayerBalance(), deps.chain.fees()]);
    this.balanceSeen(balance, quote, now, due.length);
    if (due.length === 0) return;

    // Waiting is decided before anything is read per order: a poll while waiting costs two calls.
    const fees = this.cappedFees(quote, result);
    if (!fees) return;
    // What our open transactions not mined yet may still cost (gas limit at fee cap, as last
    // signed): a new one must not spend it.
    const reserved = (await deps.store.settlements.listOpenTxs(deps.network.id))
      .filter((t) => t.minedHash === null && t.nonce !== null && this.isOurs(t))
      .reduce((sum, t) => sum + t.gasLimit * t.maxFeePerGas, 0n);
    if (balance < reserved + SETTLEMENT_GAS_ESTIMATE * fees.maxFeePerGas) {
      result.waiting = 'relayer balance too low for the settlement gas';
      return;
    }

    // Read before the orders: a failed read fails the pass, it does not defer every due order.
    const at = await head();
    const candidates: Candidate[] = [];
    for (const st of due) {
      try {
        const c = await this.candidate(st, at);
        if (c) candidates.push(c);
      } catch (err) {
        // One order's reads failing (an RPC error, a provider refusing a range) must not hold up the others.
        await this.deferred(st, `could not be prepared: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
      }
    }
    if (candidates.length === 0) return;
    // An order whose last transaction reverted on chain goes alone: its estimate passed then (a
    // receiver may refuse only in a real block), so estimating again cannot tell which plan of
    // that batch reverted it, and batched again it would revert every batch it joins.
    const suspect = candidates.find((c) => c.st.revertedTx !== null);
    const fitted = await this.fittingBatch(suspect ? [suspect] : candidates);
    if (!fitted) return;
    const { batch, estimate } = fitted;
    const gas = (estimate * 6n) / 5n + 10_000n;
    if (balance < reserved + gas * fees.maxFeePerGas) {
      result.waiting = 'relayer balance too low for the settlement gas';
      deps.log.warn({ network: deps.network.id, relayer: deps.chain.relayer, balance: balance.toString(), needed: (gas * fees.maxFeePerGas).toString(), reserved: reserved.toString() }, 'relayer cannot pay the settlement gas: settlements wait until it is funded');
      return;
    }
    await this.send(batch, gas, fees, now, result);
  }

  /** The relayer's balance as a pass read it: the gauges, and a warning (every ten minutes at most) while it is low. */
  private balanceSeen(balance: bigint, quote: FeeQuote, now: number, due: number): void {
    const { deps } = this;
    const low = balance < SETTLEMENT_GAS_ESTIMATE * LOW_BALANCE_SETTLEMENTS * quote.maxFeePerGas;
    this.metrics.relayerBalance(deps.network.id, balance, low);
    if (low && now - this.lowBalanceLogged >= 600_000) {
      this.lowBalanceLogged = now;
      deps.log.warn({ network: deps.network.id, relayer: deps.chain.relayer, balance: balance.toString(), due }, 'relayer gas balance is low: fund it, or settlements will wait');
    }
    if (!low) this.lowBalanceLogged = 0;
  }

  /** The fees to sign with: the quote, clamped to the cap; null (settlements wait) when even its base fee is above the cap. */
  private cappedFees(quote: FeeQuote, result: SettleResult): FeeQuote | null {
    const { deps } = this;
    const cap = deps.settings.maxFeePerGas;
    if (quote.maxFeePerGas <= cap) return quote;
    const floor = quote.maxFeePerGas / 2n; // the base fee part of the quote, roughly
    if (floor + quote.maxPriorityFeePerGas > cap) {
      result.waiting = `gas price above the cap (${cap} wei)`;
      deps.log.warn({ network: deps.network.id, quote: quote.maxFeePerGas.toString(), cap: cap.toString() }, 'gas price above the cap: settlements wait');
      return null;
    }
    return { maxFeePerGas: cap, maxPriorityFeePerGas: quote.maxPriorityFeePerGas < cap ? quote.maxPriorityFeePerGas : cap };
  }

  /**
   * The candidates that can go out in one transaction, with its gas estimate; null when none can
   * this pass. All or nothing on chain: a plan that would revert is taken out (deferred, retried
   * later). Beyond what a batch of distributions uses, a plan whose receiver spends gas on
   * receiving (a contract as seller_addr of a native-coin order, say) is deferred on its own, so
   * that one order cannot hold up every other one of the network. Plans that pass alone but not
   * together (a receiver recurring in the batch is paid once, its shares summed, and may spend
   * more gas on the sum; or the endpoint's answers do not add up) halve the batch.
   */
  private async fittingBatch(candidates: Candidate[]): Promise<{ batch: Candidate[]; estimate: bigint } | null> {
    const { deps } = this;
    const gasFits = (gas: bigint, n: number) => gas <= MAX_GAS_PER_ORDER * BigInt(n);
    let batch = candidates;
    let estimate = await deps.chain.estimate(batch.map((c) => c.plan));
    if (!estimate.ok) {
      batch = await this.eachAlone(batch, estimate, (one) => (one.ok ? null : one.error));
      if (batch.length === 0) return null;
      ({ batch, estimate } = await this.halved(batch, (e) => e.ok));
    }
    if (estimate.ok && !gasFits(estimate.gas, batch.length)) {
      batch = await this.eachAlone(batch, estimate, (one) =>
        !one.ok ? one.error : !gasFits(one.gas, 1) ? `its distribution needs ${one.gas} gas, more than the ${MAX_GAS_PER_ORDER} a distribution may use (a receiver that spends gas on receiving?)` : null,
      );
      if (batch.length === 0) return null;
      ({ batch, estimate } = await this.halved(batch, (e, n) => e.ok && gasFits(e.gas, n)));
    }
    if (!estimate.ok) {
      // Halved down to one plan that passed alone a moment ago: deferred (with its backoff, in
      // `order show` and the metrics) instead of tried again on every pass unseen.
      if (batch.length === 1) await this.deferred(batch[0]!.st, estimate.error);
      else deps.log.warn({ network: deps.network.id, error: estimate.error }, 'settlement batch would revert; trying again next pass');
      return null;
    }
    // An estimate no node gives for this call (below a plain transfer, or beyond what a batch of
    // distributions can use, each of them fitting alone) is an endpoint's mistake: signed, the
    // node would refuse the transaction on every broadcast. The pass fails and is repeated.
    if (estimate.gas < MIN_GAS || !gasFits(estimate.gas, batch.length)) {
      throw new Error(`eth_estimateGas answered ${estimate.gas} for ${batch.length} distribution(s), outside ${MIN_GAS}-${MAX_GAS_PER_ORDER * BigInt(batch.length)}`);
    }
    return { batch, estimate: estimate.gas };
  }

  /** The candidates whose plan passes alone (`refusal` null), the others deferred with its reason; `together`: the batch's estimate, the one plan's when alone. */
  private async eachAlone(batch: Candidate[], together: GasEstimate, refusal: (one: GasEstimate) => string | null): Promise<Candidate[]> {
    const kept: Candidate[] = [];
    for (const c of batch) {
      const one = batch.length === 1 ? together : await this.deps.chain.estimate([c.plan]);
      const why = refusal(one);
      if (why === null) kept.push(c);
      else await this.deferred(c.st, why);
    }
    return kept;
  }

  /** `batch` and its estimate, halved (the first half kept) until the estimate `fits` or one plan is left. */
  private async halved(batch: Candidate[], fits: (estimate: GasEstimate, n: number) => boolean): Promise<{ batch: Candidate[]; estimate: GasEstimate }> {
    let estimate = await this.deps.chain.estimate(batch.map((c) => c.plan));
    while (batch.length > 1 && !fits(estimate, batch.length)) {
      batch = batch.slice(0, Math.ceil(batch.length / 2));
      estimate = await this.deps.chain.estimate(batch.map((c) => c.plan));
    }
    return { batch, estimate };
  }

  /** Signs the batch's transaction at the next free nonce, records it with its orders (intent first), then broadcasts it. */
  private async send(batch: Candidate[], gas: bigint, fees: FeeQuote, now: number, result: SettleResult): Promise<void> {
    const { deps } = this;
    const nonces = await deps.chain.nonces();
    // The lowest nonce from the chain's next one up that no open transaction of ours holds: a
    // gap below our open ones (one of them reverted and a reorganisation took its block, or was
    // given back) is filled first, else everything signed after it would wait behind it for
    // ever. Never the node's pending count alone: one above ours would sign behind a gap nothing
    // fills (the relayer account is the gateway's own).
    // Read again, not reused from the balance check: preparing the candidates may have adopted a
    // distribution into a transaction of ours given up on (open again, with its nonce).
    const held = new Set((await deps.store.settlements.listOpenTxs(deps.network.id)).filter((t) => t.nonce !== null && this.isOurs(t)).map((t) => t.nonce!));
    let nonce = nonces.latest;
    while (held.has(nonce)) nonce += 1;
    const signed = await deps.chain.sign(batch.map((c) => c.plan), { nonce, gas, fees });
    const txRow: SettlementTxRecord = {
      id: signed.hash,
      network: deps.network.id,
      relayer: deps.chain.relayer,
      nonce,
      status: 'SIGNED',
      txHash: signed.hash,
      rawTx: signed.raw,
      hashes: [signed.hash],
      ...fees,
      gasLimit: gas,
      orderCount: batch.length,
      blockNumber: null,
      blockHash: null,
      minedHash: null,
      gasUsed: null,
      createdAt: now,
      sentAt: null,
      updatedAt: now,
    };
    // Still the network's sender (a slow pass may have outlived its lease)?
    const stamp = deps.clock.nowMs();
    if (!(await deps.store.leases.renew(leaseName(deps.network.id), deps.owner, stamp, stamp + deps.leaseMs))) return;
    // Intent first: the transaction, its hash and its orders are stored before it is broadcast.
    const recorded = await deps.store
      .transaction(async (s) => {
        for (const c of batch) if ((await s.settlements.get(c.st.paymentOrderNo))?.status !== 'DUE') throw new Conflict();
        if (!(await s.settlements.insertTx(txRow))) throw new NonceTaken();
        for (const c of batch) {
          // Still due as read above: a close that forgot it meanwhile (PostgreSQL) stops the batch.
          if (!(await s.settlements.update({ ...c.st, status: 'SENT', txId: txRow.id, txHash: signed.hash, distributed: c.held, updatedAt: now }, 'DUE'))) throw new Conflict();
          await s.settlements.setPayouts(c.st.paymentOrderNo, payoutsOf(c.st.paymentOrderNo, c.plan, c.held));
        }
        return true;
      })
      .catch((err: unknown) => (err instanceof NonceTaken ? 'NONCE' : err instanceof Conflict ? 'CHANGED' : Promise.reject(err)));
    if (recorded === 'CHANGED') return;
    if (recorded === 'NONCE') {
      // A closed transaction (reverted, or dropped) may hold the nonce the chain says is next: a
      // reorganisation took it away. The nonce is free again; anything else is another sender.
      if ((nonces.pending === nonce || nonces.latest === nonce) && (await deps.store.transaction((s) => s.settlements.releaseNonce(deps.network.id, deps.chain.relayer, nonce)))) {
        deps.log.warn({ network: deps.network.id, nonce }, 'relayer nonce of a reverted or dropped settlement is free again on chain; reusing it next pass');
      } else deps.log.warn({ network: deps.network.id, nonce }, 'another sender used this relayer nonce; backing off');
      return;
    }
    const sent = await deps.chain.broadcast(signed.raw);
    if (sent.ok) await deps.store.transaction((s) => s.settlements.updateTx({ ...txRow, status: 'SENT', sentAt: deps.clock.nowMs(), updatedAt: deps.clock.nowMs() }));
    else deps.log.warn({ network: deps.network.id, txHash: signed.hash, error: sent.error }, 'settlement transaction not accepted by the node; it is followed up next pass');
    result.sent += batch.length;
    this.metrics.settlementSent(deps.network.id, batch.length);
    deps.log.info({ network: deps.network.id, txHash: signed.hash, nonce, orders: batch.length, gas: gas.toString() }, 'settlement sent');
  }

  /** A due settlement ready to send, or null (after adopting a distribution found on chain, or deferring it). */
  private async candidate(st: SettlementRecord, head: number): Promise<Candidate | null> {
    const { deps } = this;
    const order = await deps.store.orders.get(st.paymentOrderNo);
    if (!order) {
      await this.deferred(st, 'the order does not exist');
      return null;
    }
    // A reorganisation may have taken the payment back after the order was scheduled: wait, out of
    // the way of the other due orders.
    if (order.state.status !== 'PAID' && order.state.status !== 'CLOSED' && order.state.status !== 'COMPLETED') {
      await this.deferred(st, `the order is ${order.state.status} again (a reorganisation); waiting for it to be paid`);
      return null;
    }
    const plan = await this.planOf(st);
    if (!plan) {
      await this.deferred(st, 'no settlement plan is stored for its deposit address');
      return null;
    }
    if (await deps.chain.distributed(plan)) {
      await this.adopt(st, plan, head);
      return null;
    }
    const held = await deps.chain.held(plan, st.address);
    if (held === 0n) {
      await this.deferred(st, 'the deposit address holds nothing to distribute');
      return null;
    }
    return { st, plan, held };
  }

  /**
   * The plan was distributed already (a transaction of ours whose record was lost, or anyone's:
   * distribute is open to all). The transaction found on chain is adopted and followed to
   * finality like our own; nothing is sent.
   */
  private async adopt(st: SettlementRecord, plan: SettlementPlan, head: number): Promise<void> {
    const { deps } = this;
    const payments = (await deps.store.payments.listByOrder(st.paymentOrderNo)).filter((p) => p.network === st.network);
    const from = Math.min(head, ...payments.map((p) => p.blockNumber));
    const found = await deps.chain.findDistribution(plan, st.address, from);
    if (!found) {
      await this.deferred(st, 'distributed on chain, but the distribution was not found yet');
      return;
    }
    const now = deps.clock.nowMs();
    const existing = await deps.store.settlements.getTx(found.hash);
    const adopted = await deps.store.transaction(async (s) => {
      if (!existing) {
        const inserted = await s.settlements.insertTx({
          id: found.hash,
          network: deps.network.id,
          relayer: deps.chain.relayer,
          nonce: null,
          status: 'SENT',
          txHash: found.hash,
          rawTx: null,
          hashes: [found.hash],
          maxFeePerGas: 0n,
          maxPriorityFeePerGas: 0n,
          gasLimit: 0n,
          orderCount: 1,
          blockNumber: found.blockNumber,
          blockHash: found.blockHash,
          minedHash: found.hash,
          gasUsed: found.gasUsed,
          createdAt: now,
          sentAt: now,
          updatedAt: now,
        });
        // Inserted meanwhile by another order of the same transaction: the next pass adopts again.
        if (!inserted) throw new Conflict();
      } else {
        // Another order of the same batch transaction, or a transaction of ours we had given up on.
        const reopened = existing.status !== 'SENT' && existing.status !== 'SIGNED';
        const count = (await s.settlements.listByTx(existing.id)).filter((x) => x.paymentOrderNo !== st.paymentOrderNo).length + 1;
        await s.settlements.updateTx({ ...existing, status: reopened ? 'SENT' : existing.status, orderCount: count, minedHash: found.hash, blockNumber: found.blockNumber, blockHash: found.blockHash, updatedAt: now });
      }
      if (!(await s.settlements.update({ ...st, status: 'SENT', txId: existing?.id ?? found.hash, txHash: found.hash, updatedAt: now }, 'DUE'))) throw new Conflict();
      return true;
    }).catch((err: unknown) => (err instanceof Conflict ? false : Promise.reject(err)));
    if (adopted) deps.log.info({ network: deps.network.id, paymentOrderNo: st.paymentOrderNo, txHash: found.hash }, 'settlement found on chain and adopted');
  }

  private async deferred(st: SettlementRecord, why: string): Promise<void> {
    const now = this.deps.clock.nowMs();
    const attempts = st.attempts + 1;
    this.deps.log.warn({ paymentOrderNo: st.paymentOrderNo, network: st.network, attempts, error: why }, 'settlement deferred');
    await this.deps.store.transaction((s) => s.settlements.update({ ...st, attempts, lastError: why, nextAttemptAt: now + this.retryDelay(attempts), updatedAt: now }));
  }
}

class NonceTaken extends Error {}

/** What following an open transaction did: completed orders (their count), or where it stands now. */
type FollowOutcome = number | 'MINED' | 'PENDING' | 'REPLACED' | 'REBROADCAST' | 'GONE';

/** A due settlement ready to go into a transaction: its plan and what its forwarder holds. */
interface Candidate {
  st: SettlementRecord;
  plan: SettlementPlan;
  held: bigint;
}

type GasEstimate = Awaited<ReturnType<SettlementChain['estimate']>>;

/** The settlement of `order` is final: with whether money sits at another of its pairs' addresses (not paid out by it). */
async function settlementFinal(tx: StoreTx, order: OrderRecord): Promise<OrderFact> {
  return { kind: 'SETTLEMENT_FINAL', elsewhere: await elsewhereOf(tx, order) };
}
/** Gas of a plain transfer: no distribution estimates below it. */
const MIN_GAS = 21_000n;
/** Far above what one distribution of a batch uses (about 60,000, ADR 0009). */
const MAX_GAS_PER_ORDER = 1_000_000n;
/** A transaction the node refuses as underpriced is re-signed with higher fees at most this often (or replace_after_ms, if shorter). */
const FEE_RESIGN_MIN_MS = 15_000;
/** The node refuses a transaction's fees as too low (geth, Erigon, Nethermind, Besu, anvil wordings). */
export const FEES_REFUSED = /underpriced|fee too low|tip too low|less than (the )?block base ?fee|below (the )?(current )?base ?fee|max ?fee per gas less than|feecap.*(low|less)|gas price too low|gas price below|below (the )?(configured )?minimum gas price|GAS_PRICE_TOO_LOW|GAS_PRICE_BELOW_CURRENT_BASE_FEE|FeeTooLow/i;
/** A node refusing a transaction for its gas limit (geth, Erigon, Nethermind, anvil wordings). */
export const GAS_LIMIT_REFUSED = /intrinsic gas too low|intrinsic gas too high|gas_limit > env\.block\.gas_limit|gas limit reached|exceeds block gas limit|gas limit .*(too low|too high|exceeds)|out of gas|GasLimitExceeded|IntrinsicGas/i;

class Conflict extends Error {}
