// Operator actions on settlements (§15a, §16): settling what arrived at a closed order's deposit
// address. Money sent after an order was closed (PAID_LATE) is recorded but never settled on its
// own: the merchant decides. Only the order's own plan can move it (its deposit address commits
// to the plan), so settling it pays the plan's receivers: pro rata of what arrived, the merchant's
// wallet taking the excess and the dust. The order stays CLOSED.
import type { Clock, Store } from './ports.js';
import type { SettlementRecord } from './records.js';

export type ManualSettlement =
  | { ok: true; settlement: SettlementRecord; scheduled: boolean }
  | { ok: false; message: string };

export async function settleClosedOrder(deps: { store: Store; clock: Clock }, paymentOrderNo: string): Promise<ManualSettlement> {
  const order = await deps.store.orders.get(paymentOrderNo);
  if (!order) return { ok: false, message: `payment order ${paymentOrderNo} does not exist` };
  const existing = await deps.store.settlements.get(paymentOrderNo);
  if (existing) return { ok: true, settlement: existing, scheduled: false };
  if (order.state.status !== 'CLOSED') {
    return { ok: false, message: `payment order ${paymentOrderNo} is ${order.state.status}: only a closed order is settled by hand (a paid one is settled on its own)` };
  }
  if (!order.selectedNetwork || !order.selectedCurrency) return { ok: false, message: `payment order ${paymentOrderNo} has no deposit address: nothing can have arrived` };
  const deposit = await deps.store.depositAddresses.get(paymentOrderNo, order.selectedNetwork, order.selectedCurrency);
  if (!deposit) return { ok: false, message: `payment order ${paymentOrderNo} has no deposit address: nothing can have arrived` };
  const payments = await deps.store.payments.listByOrder(paymentOrderNo);
  const arrived = payments.filter((p) => p.network === deposit.network && p.currency === deposit.currency && p.status === 'FINAL');
  if (arrived.length === 0) return { ok: false, message: `nothing final has arrived at ${deposit.address} for payment order ${paymentOrderNo}` };
  await deps.store.settlements.insertDue({ paymentOrderNo, network: deposit.network, currency: deposit.currency, address: deposit.address }, deps.clock.nowMs());
  const settlement = await deps.store.settlements.get(paymentOrderNo);
  return { ok: true, settlement: settlement!, scheduled: true };
}
