// The platform service fee (PROTOCOL §6, error table 41007/41028). Per network and payment
// currency, in the token's base units (10^-decimals):
//   fee = max(ceil(amountBase × feeRate), minFeeBase)
//   minFeeBase = ceil(minFeeUsd / usdPrice × 10^decimals)
// Both round UP to a whole base unit: the platform never charges less than the stated rate or
// minimum. An order needs amountBase > minFeeBase (41028) and, with a split, the merchant's share
// > fee (41007), since the fee is taken from the merchant's share.

import type { CurrencySpec, NetworkDeployment } from './catalogue.js';
import type { Rational } from './money.js';
import { divRound, pow10, ratFromDecimal } from './money.js';
import type { RateTable } from './rates.js';

/** The fee terms of one (network, currency) pair, resolved to base units. */
export interface FeeSchedule {
  /** Fraction of the amount, 0 <= rate < 1. */
  readonly rate: Rational;
  /** The minimum fee in base units, already converted from USD and rounded up. */
  readonly minFeeBase: bigint;
  /** USD price of the currency used for the conversion (locked into the order). */
  readonly usdPrice: Rational;
}

/** minFeeUsd converted to base units of a currency priced `usdPrice`, rounded up. */
export function minFeeBase(minFeeUsd: Rational, usdPrice: Rational, decimals: number): bigint {
  if (usdPrice.num <= 0n) throw new RangeError('price must be positive');
  const num = minFeeUsd.num * usdPrice.den * pow10(decimals);
  const den = minFeeUsd.den * usdPrice.num;
  return divRound(num, den, 'ceil');
}

/**
 * The schedule for paying `currency` on `network`, or null when it cannot be resolved: the rate
 * of the currency is missing (§14: the pair is then not a candidate), or the network's fee
 * configuration is not a decimal (checkDeployment reports that at start).
 */
export function feeScheduleFor(network: NetworkDeployment, currency: CurrencySpec, rates: RateTable): FeeSchedule | null {
  const rate = ratFromDecimal(network.feeRate);
  const minUsd = ratFromDecimal(network.minFeeUsd);
  const usdPrice = rates.usdPrice(currency.code);
  if (!rate || !minUsd || !usdPrice || usdPrice.num <= 0n || rate.num >= rate.den) return null;
  return { rate, minFeeBase: minFeeBase(minUsd, usdPrice, currency.decimals), usdPrice };
}

/** The service fee on an amount of `amountBase` base units. */
export function serviceFee(amountBase: bigint, schedule: FeeSchedule): bigint {
  const proportional = divRound(amountBase * schedule.rate.num, schedule.rate.den, 'ceil');
  return proportional > schedule.minFeeBase ? proportional : schedule.minFeeBase;
}

export type FeeCheck =
  | { readonly ok: true; readonly fee: bigint }
  | { readonly ok: false; readonly reason: 'AMOUNT_NOT_ABOVE_MIN_FEE' | 'MERCHANT_NOT_ABOVE_FEE'; readonly fee: bigint };

/**
 * Whether a pair can carry the order: the amount must strictly exceed the minimum fee, and the
 * merchant's share (when the order has a split; null otherwise) must strictly exceed the fee.
 * When accepted, fee <= amountBase holds (rate < 1 and minFeeBase < amountBase).
 */
export function checkFees(amountBase: bigint, merchantBase: bigint | null, schedule: FeeSchedule): FeeCheck {
  const fee = serviceFee(amountBase, schedule);
  if (amountBase <= schedule.minFeeBase) return { ok: false, reason: 'AMOUNT_NOT_ABOVE_MIN_FEE', fee };
  if (merchantBase !== null && merchantBase <= fee) return { ok: false, reason: 'MERCHANT_NOT_ABOVE_FEE', fee };
  return { ok: true, fee };
}
