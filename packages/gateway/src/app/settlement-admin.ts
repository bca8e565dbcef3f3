// Operator actions on settlements (§15a, §16): settling what arrived at a closed order's deposit
// address. Money sent after an order was closed (PAID_LATE) is recorded but never settled on its
// own: the merchant decides. Only the order's own plan can move it (its deposit address commits
// to the plan), so settling it pays the plan's receivers: pro rata of what arrived, the merchant's
// wallet taking the excess and the dust. The order stays CLOSED; its version moves (ADR 0001), so
// a scan pass deciding it at the same time cannot move it to another pair past the settlement.
import { formatAmount } from '@sparkpay/protocol';
import type { Clock, Store, StoreTx } from './ports.js';
import type { SettlementRecord } from './records.js';

export type ManualSettlement =
  /** scheduled: a settlement was made due; retried: one waiting after a failed attempt is due again now. */
  | { ok: true; settlement: SettlementRecord; scheduled: boolean; retried?: boolean }
  | { ok: false; message: string };

/** Attempts of the version-guarded write before giving up (a scan pass deciding the order meanwhile). */
const MAX_ATTEMPTS = 5;

export async function settleClosedOrder(deps: { store: Store; clock: Clock }, paymentOrderNo: string): Promise<ManualSettlement> {
  for (let attempt = 1; ; attempt += 1) {
    const outcome = await deps.store.transaction(async (tx): Promise<ManualSettlement | 'RETRY'> => {
      const order = await tx.orders.get(paymentOrderNo);
      if (!order) return { ok: false, message: `payment order ${paymentOrderNo} does not exist` };
      const existing = await tx.settlements.get(paymentOrderNo);
      if (existing) {
        // Paid out already: the forwarder at the address distributed once and can never pay out
        // again (ADR 0009). Money that arrived there since (late money to an order that completed,
        // or that expired underpaid and was settled pro rata; a second payment after an earlier
        // `order settle`) cannot be moved by anyone: said so, not answered as if all were settled.
        const late = existing.status === 'SETTLED' ? await strandedAfter(tx, existing) : 0n;
        if (late > 0n) {
          const decimals = order.options.find((o) => o.network === existing.network && o.currency === existing.currency)?.decimals;
          const amount = decimals === undefined ? `${late} base units of ${existing.currency}` : `${formatAmount(late, decimals)} ${existing.currency}`;
          return {
            ok: false,
            message: `payment order ${paymentOrderNo} was settled by transaction ${existing.txHash ?? '?'}, which paid out ${existing.address} for good: its forwarder can pay out nothing more, so the ${amount} that arrived there since cannot be moved by the gateway (the merchant settles it with the payer)`,
          };
        }
        // Waiting after a failed attempt (backing off up to an hour): due again now, so an operator
        // who fixed the cause (funded the relayer, say) need not wait for the next try.
        if (await tx.settlements.dueNow(paymentOrderNo, deps.clock.nowMs())) {
          return { ok: true, settlement: (await tx.settlements.get(paymentOrderNo)) ?? existing, scheduled: false, retried: true };
        }
        return { ok: true, settlement: existing, scheduled: false };
      }
      if (order.state.status !== 'CLOSED') {
        return { ok: false, message: `payment order ${paymentOrderNo} is ${order.state.status}: only a closed order is settled by hand (a paid one is settled on its own)` };
      }
      if (!order.selectedNetwork || !order.selectedCurrency) return { ok: false, message: `payment order ${paymentOrderNo} has no deposit address: nothing can have arrived` };
      const deposit = await tx.depositAddresses.get(paymentOrderNo, order.selectedNetwork, order.selectedCurrency);
      if (!deposit) return { ok: false, message: `payment order ${paymentOrderNo} has no deposit address: nothing can have arrived` };
      const payments = await tx.payments.listByOrder(paymentOrderNo);
      const arrived = payments.filter((p) => p.network === deposit.network && p.currency === deposit.currency && p.status === 'FINAL');
      if (arrived.length === 0) return { ok: false, message: `nothing final has arrived at ${deposit.address} for payment order ${paymentOrderNo}` };
      const now = deps.clock.nowMs();
      // A scheduled settlement fixes the order's pair (money elsewhere no longer takes it over):
      // written against the order's version, so a scan pass deciding the order at the same time
      // retries and sees it, or this does and sees the pass's pair.
      if (!(await tx.orders.saveState({ ...order, version: order.version + 1, updatedAt: now }, order.version))) return 'RETRY';
      await tx.settlements.insertDue({ paymentOrderNo, network: deposit.network, currency: deposit.currency, address: deposit.address }, now);
      const settlement = await tx.settlements.get(paymentOrderNo);
      return { ok: true, settlement: settlement!, scheduled: true };
    });
    if (outcome !== 'RETRY') return outcome;
    if (attempt >= MAX_ATTEMPTS) throw new Error(`order ${paymentOrderNo} kept changing under us; gave up after ${attempt} attempts`);
  }
}

/** What arrived for good at a settled address beyond what its settlement paid out (base units; 0 when nothing). */
async function strandedAfter(tx: StoreTx, settled: SettlementRecord): Promise<bigint> {
  const arrived = (await tx.payments.listByOrder(settled.paymentOrderNo))
    .filter((p) => p.network === settled.network && p.currency === settled.currency && p.address.toLowerCase() === settled.address.toLowerCase() && p.status === 'FINAL')
    .reduce((sum, p) => sum + p.amount, 0n);
  const left = arrived - (settled.distributed ?? 0n);
  return left > 0n ? left : 0n;
}
