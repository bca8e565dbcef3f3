// Operator actions on settlements (§15a, §16): settling what arrived at a closed order's deposit
// address. Money sent after an order was closed (PAID_LATE) is recorded but never settled on its
// own: the merchant decides. Only the order's own plan can move it (its deposit address commits
// to the plan), so settling it pays the plan's receivers: pro rata of what arrived, the merchant's
// wallet taking the excess and the dust. The order stays CLOSED; its version moves (ADR 0001), so
// a scan pass deciding it at the same time cannot move it to another pair past the settlement.
import type { Clock, Store } from './ports.js';
import type { SettlementRecord } from './records.js';

export type ManualSettlement =
  | { ok: true; settlement: SettlementRecord; scheduled: boolean }
  | { ok: false; message: string };

/** Attempts of the version-guarded write before giving up (a scan pass deciding the order meanwhile). */
const MAX_ATTEMPTS = 5;

export async function settleClosedOrder(deps: { store: Store; clock: Clock }, paymentOrderNo: string): Promise<ManualSettlement> {
  for (let attempt = 1; ; attempt += 1) {
    const outcome = await deps.store.transaction(async (tx): Promise<ManualSettlement | 'RETRY'> => {
      const order = await tx.orders.get(paymentOrderNo);
      if (!order) return { ok: false, message: `payment order ${paymentOrderNo} does not exist` };
      const existing = await tx.settlements.get(paymentOrderNo);
      if (existing) return { ok: true, settlement: existing, scheduled: false };
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
