// The fees step of order creation (PROTOCOL §6, §7 41028/41007, §8 41038, and the per-token
// check of a split's shares, 41014): each candidate (network, currency) pair becomes a payment
// option with its exact amount, or is dropped.
//
// Conversion (pro edition, and trivially the standard edition where pricing currency = payment
// currency): amount = pricing amount × usdPrice(pricing) / usdPrice(payment), rounded UP to the
// payment currency's order precision, so the payer never pays less than the price. The rate is
// the one in the RateTable snapshot; its decimal is locked into the option (`usdRate`).

import { formatAmount } from '@sparkpay/protocol';
import type { NetworkId } from './catalogue.js';
import { serviceFee, feeScheduleFor } from './fees.js';
import type { Rational } from './money.js';
import { mulRound, pow10, ratDiv, ratMul, rational } from './money.js';
import type { Candidate } from './order-networks.js';
import type { Edition } from './order-request.js';
import type { RateTable } from './rates.js';
import { formatRate } from './rates.js';
import type { Refusal } from './result.js';
import { OrderErrors, refuse } from './result.js';
import type { OptionSplit, SplitPlan, SplitShare } from './split.js';
import { allocateSplit, emptyShare } from './split.js';
import { MAX_PLAN_TOTAL } from './settlement-plan.js';

/** The price of the order: in the standard edition total_amount in merchant_order_currency. */
export interface Pricing {
  readonly currency: string;
  /** In units of 10^-precision of the pricing currency. */
  readonly amount: bigint;
  readonly precision: number;
  /** USD price of the pricing currency at creation (canonical decimal); null if the table has none. */
  readonly usdRate: string | null;
}

/** One way to pay the order: a (network, currency) pair with the exact amount due. */
export interface PaymentOption {
  readonly network: NetworkId;
  readonly currency: string;
  /** Token contract; null for the native coin. */
  readonly contract: string | null;
  readonly decimals: number;
  readonly precision: number;
  /** Amount due in units of 10^-precision of the currency (what the cashier shows). */
  readonly amount: bigint;
  /** The same amount in token base units (10^-decimals): what the payer must send. */
  readonly amountBase: bigint;
  /** Platform service fee in base units; 0 < fee <= amountBase. */
  readonly fee: bigint;
  /** Locked USD price of the payment currency (canonical decimal), used for conversion and the minimum fee. */
  readonly usdRate: string | null;
  /** The split's shares in base units (sum = amountBase), or null without a split. */
  readonly split: OptionSplit | null;
}

interface Converted {
  /** Order precision units, rounded up. */
  readonly amount: bigint;
  /** Exact factor from pricing units to the option's base units (for split shares). */
  readonly toBase: Rational;
}

/** Pricing amount into a candidate's units; null when a rate it needs is missing (§14). */
export function convertPricing(pricing: Pricing, c: Candidate, rates: RateTable): Converted | null {
  let rate: Rational = rational(1n);
  if (c.currency.code !== pricing.currency) {
    const from = rates.usdPrice(pricing.currency);
    const to = rates.usdPrice(c.currency.code);
    if (!from || !to || from.num <= 0n || to.num <= 0n) return null;
    rate = ratDiv(from, to);
  }
  const perPricingUnit = rational(1n, pow10(pricing.precision));
  const toOrder = ratMul(ratMul(rate, perPricingUnit), rational(pow10(c.currency.precision)));
  const toBase = ratMul(ratMul(rate, perPricingUnit), rational(pow10(c.currency.decimals)));
  return { amount: mulRound(pricing.amount, toOrder, 'ceil'), toBase };
}

type Outcome =
  | { kind: 'option'; option: PaymentOption }
  | { kind: 'amount' }
  | { kind: 'merchant' }
  /** A seller or other share converts to 0 base units of the pair's token (41014). */
  | { kind: 'empty-share'; share: SplitShare; network: NetworkId; currency: string }
  | { kind: 'too-large' }
  /** A USD rate the pair needs is missing (§14): the pair is not a candidate. */
  | { kind: 'no-rate'; codes: readonly string[] };

/** The currencies of a pair (its payment currency, then the pricing currency) that have no USD rate (a table holds positive rates only). */
function missingRates(pricing: Pricing, c: Candidate, rates: RateTable): string[] {
  const codes = c.currency.code === pricing.currency ? [c.currency.code] : [c.currency.code, pricing.currency];
  return codes.filter((code) => rates.usdPrice(code) === null);
}

function evaluate(pricing: Pricing, c: Candidate, split: SplitPlan | null, rates: RateTable): Outcome {
  const schedule = feeScheduleFor(c.network, c.currency, rates);
  const converted = convertPricing(pricing, c, rates);
  // A missing rate removes the pair (§14); it counts as failing the amount rule (41028/41038),
  // and the refusal says which rate is missing rather than that the amount is too small.
  if (!schedule || !converted) {
    const codes = missingRates(pricing, c, rates);
    return codes.length > 0 ? { kind: 'no-rate', codes } : { kind: 'amount' };
  }
  const amountBase = converted.amount * pow10(c.currency.decimals - c.currency.precision);
  // The split rules come before the fee rules (§7), in a pair as among the reasons of 41xxx.
  const shares = split ? allocateSplit(split, amountBase, converted.toBase) : null;
  const empty = split && shares ? emptyShare(split, shares) : null;
  if (empty) return { kind: 'empty-share', share: empty, network: c.network.id, currency: c.currency.code };
  if (amountBase <= schedule.minFeeBase) return { kind: 'amount' };
  // So much of an 18-decimal token (about 3.4e20 of it) that no settlement plan could pay it out:
  // the pair is not offered rather than one whose address is never handed out.
  if (amountBase >= MAX_PLAN_TOTAL) return { kind: 'too-large' };
  const fee = serviceFee(amountBase, schedule);
  if (shares && shares.merchant <= fee) return { kind: 'merchant' };
  // Without a split the merchant's share is the whole amount, which must also exceed the fee
  // (a high fee rate on a tiny amount rounds the fee up to all of it): nothing would be left to
  // settle to the merchant (settlementPlan refuses such a plan).
  if (!shares && amountBase <= fee) return { kind: 'amount' };
  return {
    kind: 'option',
    option: {
      network: c.network.id,
      currency: c.currency.code,
      contract: c.currency.contract,
      decimals: c.currency.decimals,
      precision: c.currency.precision,
      amount: converted.amount,
      amountBase,
      fee,
      usdRate: formatRate(schedule.usdPrice),
      split: shares,
    },
  };
}

/**
 * The options that survive the fee rules, in candidate order. A pair is dropped when a seller or
 * other share converts to 0 base units of its token (emptyShare), when its amount does not exceed
 * the minimum fee (or a rate is missing), or when the merchant's share does not exceed the fee,
 * or when its amount is beyond what a settlement plan can hold (MAX_PLAN_TOTAL). None left: 41014
 * if a share too small was the reason (a split rule, before the fee rules as in §7), else 41007
 * if a merchant share was, else 41013 if an amount too large was,
 * else 41028 (standard) / 41038 (pro), whose message names the missing USD rates when every pair
 * was dropped for one (the amount was then never compared with anything).
 */
export function buildOptions(
  edition: Edition,
  pricing: Pricing,
  candidates: readonly Candidate[],
  split: SplitPlan | null,
  rates: RateTable,
): { ok: true; options: PaymentOption[] } | Refusal {
  const outcomes = candidates.map((c) => evaluate(pricing, c, split, rates));
  const options = outcomes.flatMap((o) => (o.kind === 'option' ? [o.option] : []));
  if (options.length > 0) return { ok: true, options };
  const empty = outcomes.find((o) => o.kind === 'empty-share');
  if (empty) {
    const { share, currency, network } = empty;
    return refuse(OrderErrors.INVALID_SPLIT_AMOUNT, `the split share of ${formatAmount(share.amount, pricing.precision)} ${pricing.currency} to ${share.address} is less than one base unit of ${currency} on network ${network}: the receiver would be paid nothing, so no candidate currency and network can carry the split`);
  }
  if (outcomes.some((o) => o.kind === 'merchant')) {
    return refuse(OrderErrors.MERCHANT_AMOUNT_NOT_ABOVE_FEE, 'merchant_amount does not exceed the platform service fee on any candidate network');
  }
  if (outcomes.some((o) => o.kind === 'too-large')) {
    const field = edition === 'standard' ? 'total_amount' : 'pricing_amount';
    return refuse(OrderErrors.INVALID_TOTAL_AMOUNT, `${field} is more than a settlement can pay out on any candidate network (below 2^128 base units of the token)`);
  }
  const code = edition === 'standard' ? OrderErrors.AMOUNT_NOT_ABOVE_MIN_FEE : OrderErrors.NO_NETWORK_ABOVE_MIN_FEE;
  // Every pair was dropped for a rate the gateway does not have: the amount is not the problem.
  if (outcomes.length > 0 && outcomes.every((o) => o.kind === 'no-rate')) {
    const codes = [...new Set(outcomes.flatMap((o) => (o.kind === 'no-rate' ? o.codes : [])))].sort();
    return refuse(code, `no USD rate is configured for ${codes.join(', ')} on this gateway (PROTOCOL §14), so no candidate currency and network can be offered`);
  }
  return edition === 'standard'
    ? refuse(code, 'total_amount does not exceed the minimum platform service fee on any candidate network')
    : refuse(code, 'pricing_amount does not exceed the minimum platform service fee in any candidate currency and network');
}
