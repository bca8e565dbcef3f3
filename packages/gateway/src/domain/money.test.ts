import fc from 'fast-check';
import { formatAmount, parseAmount } from '@sparkpay/protocol';
import { describe, expect, it } from 'vitest';
import { divRound, mulRound, pow10, ratCmp, ratDiv, ratFromDecimal, ratMul, ratToDecimal, rational } from './money.js';

describe('rational', () => {
  it('keeps lowest terms with a positive denominator', () => {
    expect(rational(10n, -4n)).toEqual({ num: -5n, den: 2n });
    expect(rational(0n, 7n)).toEqual({ num: 0n, den: 1n });
    expect(() => rational(1n, 0n)).toThrow(RangeError);
  });
  it('reads decimal strings exactly', () => {
    expect(ratFromDecimal('0.1282')).toEqual({ num: 641n, den: 5000n });
    expect(ratFromDecimal('3000')).toEqual({ num: 3000n, den: 1n });
    for (const bad of ['-1', '1e3', '', ' 1', '1.']) expect(ratFromDecimal(bad)).toBeNull();
  });
  it('multiplies, divides and compares exactly', () => {
    const a = rational(1n, 3n);
    expect(ratMul(a, rational(3n))).toEqual(rational(1n));
    expect(ratDiv(rational(1n), rational(3000n))).toEqual(rational(1n, 3000n));
    expect(ratCmp(rational(1n, 3n), rational(333n, 1000n))).toBe(1);
    expect(ratCmp(rational(2n, 4n), rational(1n, 2n))).toBe(0);
    expect(() => ratDiv(a, rational(0n))).toThrow(RangeError);
  });
  it('prints terminating values and refuses the others', () => {
    expect(ratToDecimal(rational(641n, 5000n))).toBe('0.1282');
    expect(ratToDecimal(rational(-1n, 8n))).toBe('-0.125');
    expect(ratToDecimal(rational(5n))).toBe('5');
    expect(ratToDecimal(rational(1n, 3n))).toBeNull();
  });
});

describe('rounding', () => {
  it('rounds toward -inf or +inf, for either sign', () => {
    expect(divRound(7n, 2n, 'floor')).toBe(3n);
    expect(divRound(7n, 2n, 'ceil')).toBe(4n);
    expect(divRound(-7n, 2n, 'floor')).toBe(-4n);
    expect(divRound(-7n, 2n, 'ceil')).toBe(-3n);
    expect(divRound(6n, 2n, 'ceil')).toBe(3n);
    expect(() => divRound(1n, 0n, 'floor')).toThrow(RangeError);
  });
  it('mulRound brackets the exact product within one unit', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), fc.bigInt({ min: -(10n ** 9n), max: 10n ** 9n }), fc.bigInt({ min: 1n, max: 10n ** 9n }), (v, n, d) => {
        const r = rational(n, d);
        const lo = mulRound(v, r, 'floor');
        const hi = mulRound(v, r, 'ceil');
        expect(lo * r.den <= v * r.num && v * r.num <= hi * r.den).toBe(true);
        expect(hi - lo <= 1n).toBe(true);
      }),
    );
  });
  it('pow10 refuses a bad scale', () => {
    expect(pow10(3)).toBe(1000n);
    expect(() => pow10(-1)).toThrow(RangeError);
  });
});

describe('round trips', () => {
  // at most 30 integer digits (§5)
  const amount = fc.bigInt({ min: 0n, max: 10n ** 30n - 1n });
  const scale = fc.integer({ min: 0, max: 18 });
  it('decimal -> rational -> decimal is canonical', () => {
    fc.assert(
      fc.property(amount, scale, (v, s) => {
        const text = formatAmount(v, s);
        const r = ratFromDecimal(text);
        expect(r && ratToDecimal(r)).toBe(text);
      }),
    );
  });
  it('format -> parse returns the same base units', () => {
    fc.assert(
      fc.property(amount.filter((v) => v > 0n), scale, (v, s) => {
        expect(parseAmount(formatAmount(v, s), s)).toEqual({ ok: true, value: v });
      }),
    );
  });
});
