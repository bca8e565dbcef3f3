// Exact arithmetic for money. Amounts are bigint counts of a stated unit (10^-precision of a
// currency, or a token's base unit 10^-decimals); rates and fee rates are exact rationals so a
// conversion rounds exactly once, in a stated direction. No `number` ever holds an amount.

import { parseDecimal, trimTrailingZeros } from '@sparkpay/protocol';

/** Direction of the single rounding step of an operation: toward -inf or toward +inf. */
export type Rounding = 'floor' | 'ceil';

/**
 * An exact rational number. Invariants (kept by `rational`): `den > 0n` and the fraction is in
 * lowest terms, so two equal values have equal fields.
 */
export interface Rational {
  readonly num: bigint;
  readonly den: bigint;
}

function gcd(a: bigint, b: bigint): bigint {
  let x = a < 0n ? -a : a;
  let y = b < 0n ? -b : b;
  while (y !== 0n) [x, y] = [y, x % y];
  return x;
}

/** 10^0 … 10^80: every scale a currency or token has, computed once. */
const POWERS = Array.from({ length: 81 }, (_, n) => 10n ** BigInt(n));

/** 10^n as bigint; `n` is a small non-negative scale (precision, decimals). */
export function pow10(n: number): bigint {
  const known = POWERS[n];
  if (known !== undefined) return known;
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`invalid scale ${n}`);
  return 10n ** BigInt(n);
}

/** num/den in lowest terms. A zero denominator is a programming error, so it throws. */
export function rational(num: bigint, den: bigint = 1n): Rational {
  if (den === 0n) throw new RangeError('rational with zero denominator');
  const sign = den < 0n ? -1n : 1n;
  const g = gcd(num, den) || 1n;
  return { num: (sign * num) / g, den: (sign * den) / g };
}

/** Exact value of a §5 decimal string ("0.1282" -> 641/5000); null when not such a string. */
export function ratFromDecimal(s: string): Rational | null {
  const d = parseDecimal(s);
  return d ? rational(d.digits, pow10(d.scale)) : null;
}

export function ratMul(a: Rational, b: Rational): Rational {
  return rational(a.num * b.num, a.den * b.den);
}

/** a / b; dividing by zero is a programming error (callers check positivity first). */
export function ratDiv(a: Rational, b: Rational): Rational {
  if (b.num === 0n) throw new RangeError('division by zero');
  return rational(a.num * b.den, a.den * b.num);
}

/** -1, 0 or 1 as a < b, a = b, a > b. */
export function ratCmp(a: Rational, b: Rational): -1 | 0 | 1 {
  const l = a.num * b.den;
  const r = b.num * a.den;
  return l < r ? -1 : l > r ? 1 : 0;
}

/** n / d rounded toward -inf (floor) or +inf (ceil); d must be positive. */
export function divRound(n: bigint, d: bigint, rounding: Rounding): bigint {
  if (d <= 0n) throw new RangeError('divisor must be positive');
  const q = n / d; // truncates toward zero
  const r = n % d;
  if (r === 0n) return q;
  if (rounding === 'floor') return n < 0n ? q - 1n : q;
  return n > 0n ? q + 1n : q;
}

/** value × r rounded once to an integer of the same unit as `value`. */
export function mulRound(value: bigint, r: Rational, rounding: Rounding): bigint {
  return divRound(value * r.num, r.den, rounding);
}

/**
 * The decimal string of `r` when it terminates (denominator of the form 2^a·5^b), canonical
 * (no trailing fraction zeros); null otherwise. Rates read from decimal strings always terminate.
 */
export function ratToDecimal(r: Rational): string | null {
  let den = r.den;
  let twos = 0;
  let fives = 0;
  while (den % 2n === 0n) {
    den /= 2n;
    twos += 1;
  }
  while (den % 5n === 0n) {
    den /= 5n;
    fives += 1;
  }
  if (den !== 1n) return null;
  const scale = Math.max(twos, fives);
  const scaled = (r.num * pow10(scale)) / r.den; // exact by construction
  const neg = scaled < 0n;
  const digits = (neg ? -scaled : scaled).toString().padStart(scale + 1, '0');
  const cut = digits.length - scale;
  const frac = trimTrailingZeros(digits.slice(cut));
  return `${neg ? '-' : ''}${digits.slice(0, cut)}${frac ? `.${frac}` : ''}`;
}

/**
 * Base units of a token below its currency's precision (10^(decimals - precision) - 1; 0 when the
 * token has no more decimals than the precision): the most a payment can fall short of, or go
 * beyond, an amount due while still being that amount (lifecycle `slack`).
 */
export function paymentSlack(decimals: number, precision: number): bigint {
  return decimals > precision ? pow10(decimals - precision) - 1n : 0n;
}
