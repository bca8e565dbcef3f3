// Decimal strings on the wire <-> bigint base units inside (PROTOCOL §5). Everything is string
// and bigint arithmetic: a binary float cannot represent 0.1, and 30 integer digits exceed
// Number's 2^53 anyway.

export type AmountError = 'FORMAT' | 'NOT_POSITIVE' | 'TOO_MANY_INTEGER_DIGITS' | 'PRECISION';

/** Longest integer part accepted (§5); also bounds the work done on hostile input. */
const MAX_INTEGER_DIGITS = 30;

// `[0-9]`, not `\d`: only ASCII digits. JS `$` (without the m flag) matches only at the very end,
// so a trailing newline is refused too.
const DECIMAL = /^([0-9]+)(?:\.([0-9]+))?$/;

type Lexed = { ok: true; int: string; frac: string } | { ok: false; error: 'FORMAT' | 'TOO_MANY_INTEGER_DIGITS' };

function lex(s: unknown): Lexed {
  if (typeof s !== 'string') return { ok: false, error: 'FORMAT' };
  const m = DECIMAL.exec(s);
  if (!m) return { ok: false, error: 'FORMAT' };
  const int = m[1] ?? '';
  // Leading zeros count: the limit is on the text the client sent, as §5 states it.
  if (int.length > MAX_INTEGER_DIGITS) return { ok: false, error: 'TOO_MANY_INTEGER_DIGITS' };
  return { ok: true, int, frac: m[2] ?? '' };
}

/**
 * `s` without its trailing '0's. A scan, not /0+$/: that regex backtracks quadratically over a
 * run of zeros followed by another digit, and a fraction can be as long as a request body.
 */
export function trimTrailingZeros(s: string): string {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 48) end -= 1;
  return s.slice(0, end);
}

function assertPrecision(precision: number): void {
  if (!Number.isSafeInteger(precision) || precision < 0) throw new RangeError(`invalid precision ${precision}`);
}

/** The exact value of a decimal string as digits / 10^scale; null when it does not follow §5. */
export function parseDecimal(s: string): { digits: bigint; scale: number } | null {
  const lexed = lex(s);
  if (!lexed.ok) return null;
  return { digits: BigInt(lexed.int + lexed.frac), scale: lexed.frac.length };
}

/**
 * Parses a wire amount into units of 10^-precision. Errors are checked in a fixed order
 * (FORMAT, TOO_MANY_INTEGER_DIGITS, PRECISION, NOT_POSITIVE) so each maps to one error code.
 */
export function parseAmount(
  s: unknown,
  precision: number,
  opts?: { allowZero?: boolean },
): { ok: true; value: bigint } | { ok: false; error: AmountError } {
  assertPrecision(precision);
  const lexed = lex(s);
  if (!lexed.ok) return lexed;
  // Trailing zeros carry no value, so "1.500" is fine at precision 2.
  const frac = trimTrailingZeros(lexed.frac);
  if (frac.length > precision) return { ok: false, error: 'PRECISION' };
  const value = BigInt(lexed.int + frac.padEnd(precision, '0'));
  if (value === 0n && !opts?.allowZero) return { ok: false, error: 'NOT_POSITIVE' };
  return { ok: true, value };
}

function split(value: bigint, precision: number): { sign: string; int: string; frac: string } {
  assertPrecision(precision);
  const sign = value < 0n ? '-' : '';
  const digits = (value < 0n ? -value : value).toString().padStart(precision + 1, '0');
  const cut = digits.length - precision;
  return { sign, int: digits.slice(0, cut), frac: digits.slice(cut) };
}

/** Canonical decimal: no trailing fraction zeros, no trailing '.', "0" for zero. */
export function formatAmount(value: bigint, precision: number): string {
  const { sign, int, frac } = split(value, precision);
  const trimmed = trimTrailingZeros(frac);
  return trimmed ? `${sign}${int}.${trimmed}` : `${sign}${int}`;
}

/** Exactly `precision` fraction digits ("10.50" for 1050n at 2), for display. */
export function formatAmountFixed(value: bigint, precision: number): string {
  const { sign, int, frac } = split(value, precision);
  return frac ? `${sign}${int}.${frac}` : `${sign}${int}`;
}

/**
 * Converts between base units of 10^-from and 10^-to (e.g. order precision 6 to token decimals
 * 18). Exact when to >= from; otherwise rounds toward -infinity ('floor') or +infinity ('ceil').
 */
export function rescale(value: bigint, from: number, to: number, rounding: 'floor' | 'ceil'): bigint {
  assertPrecision(from);
  assertPrecision(to);
  if (to >= from) return value * 10n ** BigInt(to - from);
  const divisor = 10n ** BigInt(from - to);
  // bigint division truncates toward zero; adjust to the requested direction.
  const q = value / divisor;
  if (value % divisor === 0n) return q;
  if (rounding === 'floor') return value < 0n ? q - 1n : q;
  return value > 0n ? q + 1n : q;
}
