// The settlement plan of one order option (PROTOCOL §9, §15, §15a): who receives what, in base
// units of the payment currency. The deposit address commits to it (the CREATE2 salt is its
// hash), and the forwarder contract pays it out — so this function and the contract must agree
// to the base unit; `distribute` mirrors the contract's arithmetic for what was received.
import type { NetworkId } from './catalogue.js';

/**
 * A settlement plan's total must stay below this many base units: beyond it the forwarder
 * factory's pro rata product (amount x balance, in uint256) could overflow and revert, stranding
 * the money at the address (ForwarderFactory.sol). Checked where a plan is built and where an
 * order's pairs are chosen, so that no order is offered a pair it could never be paid in.
 */
export const MAX_PLAN_TOTAL = 1n << 128n;

export type ReceiverRole = 'SELLER' | 'OTHER' | 'MERCHANT' | 'FEE';

export interface PlanReceiver {
  readonly role: ReceiverRole;
  readonly address: string;
  readonly amount: bigint;
}

export interface SettlementPlan {
  readonly paymentOrderNo: string;
  readonly network: NetworkId;
  readonly currency: string;
  /** Token contract; null for the network's native coin. */
  readonly token: string | null;
  /** Seller, other receivers (in the merchant's order), the merchant's wallet, the platform fee. */
  readonly receivers: readonly PlanReceiver[];
  /** Index of the merchant's wallet: it takes any excess and the rounding dust of a shortfall. */
  readonly merchantIndex: number;
  /** What the payer must send: the sum of the receivers' amounts. */
  readonly total: bigint;
}

export interface PlanOption {
  readonly network: NetworkId;
  readonly currency: string;
  readonly contract: string | null;
  /** What the payer must send, token base units. */
  readonly amountBase: bigint;
  /** Platform service fee, token base units, 0 < fee < the merchant's share. */
  readonly fee: bigint;
  readonly split: {
    readonly seller: { readonly address: string; readonly amount: bigint } | null;
    /** The merchant's share before the fee is taken from it. */
    readonly merchant: bigint;
    readonly others: readonly { readonly address: string; readonly amount: bigint }[];
  } | null;
}

/**
 * The plan for one option. Without a split the merchant's share is the whole amount. The fee is
 * taken from the merchant's share (§6), so the amounts sum exactly to `amountBase`.
 */
export function settlementPlan(paymentOrderNo: string, option: PlanOption, merchantWallet: string, feeAddress: string): SettlementPlan {
  const receivers: PlanReceiver[] = [];
  const split = option.split;
  if (split?.seller) receivers.push({ role: 'SELLER', address: split.seller.address, amount: split.seller.amount });
  for (const o of split?.others ?? []) receivers.push({ role: 'OTHER', address: o.address, amount: o.amount });
  const merchantShare = split ? split.merchant : option.amountBase;
  if (option.fee <= 0n || option.fee >= merchantShare) throw new RangeError('the fee must be positive and below the merchant share');
  const merchantIndex = receivers.length;
  receivers.push({ role: 'MERCHANT', address: merchantWallet, amount: merchantShare - option.fee });
  receivers.push({ role: 'FEE', address: feeAddress, amount: option.fee });
  const total = receivers.reduce((s, r) => s + r.amount, 0n);
  if (total !== option.amountBase) throw new RangeError(`plan amounts sum to ${total}, not the amount due ${option.amountBase}`);
  if (receivers.some((r) => r.amount < 0n)) throw new RangeError('a receiver amount is negative');
  return { paymentOrderNo, network: option.network, currency: option.currency, token: option.contract, receivers, merchantIndex, total };
}

/**
 * What each receiver gets when `received` base units are distributed (the forwarder contract's
 * rule, §15a): exactly the plan when received equals the total; an excess goes to the merchant;
 * a shortfall is shared pro rata, each share rounded down, the dust to the merchant. The result
 * sums to `received`, and no share is negative.
 */
export function distribute(plan: Pick<SettlementPlan, 'receivers' | 'merchantIndex' | 'total'>, received: bigint): bigint[] {
  if (received < 0n) throw new RangeError('received must not be negative');
  const amounts = plan.receivers.map((r) => r.amount);
  if (received >= plan.total) {
    amounts[plan.merchantIndex] = (amounts[plan.merchantIndex] ?? 0n) + (received - plan.total);
    return amounts;
  }
  const shares = plan.total === 0n ? amounts.map(() => 0n) : amounts.map((a) => (a * received) / plan.total);
  const paid = shares.reduce((s, a) => s + a, 0n);
  shares[plan.merchantIndex] = (shares[plan.merchantIndex] ?? 0n) + (received - paid);
  return shares;
}

/** A plan as stored with its deposit address (JSON, amounts as decimal strings). */
export function planToJson(plan: SettlementPlan): string {
  return JSON.stringify(plan, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** The inverse of planToJson; throws on a document that is not a plan (a corrupted row is a bug, not input). */
export function planFromJson(json: string): SettlementPlan {
  const raw = JSON.parse(json) as Record<string, unknown>;
  const receivers = raw.receivers;
  if (!Array.isArray(receivers) || typeof raw.paymentOrderNo !== 'string' || typeof raw.merchantIndex !== 'number') {
    throw new TypeError('not a settlement plan document');
  }
  return {
    paymentOrderNo: raw.paymentOrderNo,
    network: raw.network as SettlementPlan['network'],
    currency: String(raw.currency),
    token: raw.token === null ? null : String(raw.token),
    receivers: receivers.map((r: { role: ReceiverRole; address: string; amount: string }) => ({ role: r.role, address: r.address, amount: BigInt(r.amount) })),
    merchantIndex: raw.merchantIndex,
    total: BigInt(String(raw.total)),
  };
}
