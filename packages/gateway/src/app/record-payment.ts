// The payment port: facts about transfers to an order's deposit address arrive here (the
// chain watcher feeds it; tests feed it directly). Each transfer is stored idempotently by
// (network, tx hash, log index) and the order's totals are recomputed from all its rows in
// the same transaction as the state change.
import type { OrderFact } from '../domain/lifecycle.js';
import { transition, type TransitionDeps, type TransitionOutcome } from './order-transitions.js';
import type { PaymentRecord } from './records.js';

/**
 * A transfer to one of the order's deposit addresses as the chain shows it now. status SEEN:
 * canonical, not yet final; FINAL: enough confirmations; REVERTED: left the canonical chain.
 */
export type TransferFact = Omit<PaymentRecord, 'createdAt' | 'updatedAt'>;

export interface PaymentFacts {
  transferObserved(fact: TransferFact): Promise<TransitionOutcome>;
  /**
   * Several transfers of one order as one scan pass found them: stored together and the order
   * decided once on the resulting totals, so two transfers that complete it in the same pass
   * never show it a transient UNDERPAID (a flag that is never cleared) or two REVERTED events.
   */
  transfersObserved(facts: readonly TransferFact[]): Promise<TransitionOutcome>;
}

export function paymentFacts(deps: TransitionDeps): PaymentFacts {
  const transfersObserved = async (facts: readonly TransferFact[]): Promise<TransitionOutcome> => {
    const first = facts[0];
    if (!first) throw new RangeError('transfersObserved needs at least one transfer');
    if (facts.some((f) => f.paymentOrderNo !== first.paymentOrderNo)) throw new RangeError('transfersObserved takes the transfers of one order');
    // The transfers that enter a new status (first seen, final, reverted): what is counted.
    let entered: TransferFact[] = [];
    const outcome = await transition(deps, first.paymentOrderNo, async (tx, order): Promise<OrderFact | null> => {
      entered = [];
      // The order's transfers as stored, then as they will be after this upsert: the totals are
      // computed from that, without reading them back (one read and one write per pass and order).
      const key = (p: Pick<TransferFact, 'network' | 'txHash' | 'logIndex'>) => `${p.network}|${p.txHash}|${p.logIndex}`;
      const rows = new Map((await tx.payments.listByOrder(order.paymentOrderNo)).map((p) => [key(p), p]));
      const nowMs = deps.clock.nowMs();
      const writes = new Map<string, PaymentRecord>();
      for (const fact of facts) {
        const option = order.options.find((o) => o.network === fact.network && o.currency === fact.currency);
        if (!order.selectedNetwork && option) {
          // A transfer in one of the order's options selects it when the payer skipped the cashier.
          order.selectedNetwork = option.network;
          order.selectedCurrency = option.currency;
          order.state = { ...order.state, due: option.amountBase };
        }
        const k = key(fact);
        const stored = rows.get(k);
        if (stored?.status !== fact.status) entered.push(fact);
        // The upsert keeps what identifies a stored transfer (amount, address, currency, created_at)
        // and moves its block, confirmations and status.
        const next: PaymentRecord = stored
          ? { ...stored, blockNumber: fact.blockNumber, blockHash: fact.blockHash, confirmations: fact.confirmations, status: fact.status, updatedAt: nowMs }
          : { ...fact, createdAt: nowMs, updatedAt: nowMs };
        rows.set(k, next);
        writes.set(k, { ...fact, createdAt: nowMs, updatedAt: nowMs });
      }
      await tx.payments.upsertMany([...writes.values()]);
      // A transfer in a pair the order does not offer is recorded but counts for nothing.
      if (order.state.due === null) return null;
      const counted = [...rows.values()].filter((p) => p.network === order.selectedNetwork && p.currency === order.selectedCurrency && p.status !== 'REVERTED');
      const seen = counted.reduce((s, p) => s + p.amount, 0n);
      const final = counted.filter((p) => p.status === 'FINAL').reduce((s, p) => s + p.amount, 0n);
      return {
        kind: 'PAYMENTS_OBSERVED',
        due: order.state.due,
        seen,
        final,
        allFinal: counted.every((p) => p.status === 'FINAL'),
      };
    });
    // Stored unless the order does not exist (a refused decision still commits the rows).
    if (outcome.ok || outcome.reason !== 'NOT_FOUND') for (const fact of entered) deps.metrics?.paymentObserved(fact.network, fact.status);
    return outcome;
  };
  return { transferObserved: (fact) => transfersObserved([fact]), transfersObserved };
}
