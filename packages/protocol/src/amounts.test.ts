import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatAmount, formatAmountFixed, parseAmount, parseDecimal, rescale } from './index.js';

describe('parseAmount', () => {
  it.each([
    ['10.50', 2, 1050n],
    ['1.500', 2, 150n],
    ['1', 6, 1_000_000n],
    ['0.000001', 6, 1n],
    ['007.10', 2, 710n],
    ['123456789012345678901234567890', 0, 123456789012345678901234567890n],
    ['123456789012345678901234567890.123456789012345678', 18, 123456789012345678901234567890123456789012345678n],
    ['5.000000000000000000000000', 0, 5n],
  ])('reads %s at precision %i as %s base units', (s, precision, value) => {
    expect(parseAmount(s, precision)).toEqual({ ok: true, value });
  });

  it.each(['-1', '1e3', '1.2.3', ' 1', '1 ', '', '.5', '5.', '+1', '0x10', '１', '1\n', '1,5', '١', 'NaN', 'Infinity'])(
    'refuses %j as FORMAT',
    (s) => {
      expect(parseAmount(s, 8)).toEqual({ ok: false, error: 'FORMAT' });
    },
  );

  it.each([12, 12n, null, undefined, {}, ['1'], true])('refuses the non-string %s as FORMAT', (v) => {
    expect(parseAmount(v, 8)).toEqual({ ok: false, error: 'FORMAT' });
  });

  it('refuses more than 30 integer digits, leading zeros included', () => {
    expect(parseAmount('1'.repeat(31), 2)).toEqual({ ok: false, error: 'TOO_MANY_INTEGER_DIGITS' });
    expect(parseAmount(`0${'1'.repeat(30)}`, 2)).toEqual({ ok: false, error: 'TOO_MANY_INTEGER_DIGITS' });
    expect(parseAmount('9'.repeat(30), 2)).toEqual({ ok: true, value: BigInt('9'.repeat(30)) * 100n });
  });

  it('refuses significant fraction digits beyond the precision', () => {
    expect(parseAmount('1.001', 2)).toEqual({ ok: false, error: 'PRECISION' });
    expect(parseAmount('0.5', 0)).toEqual({ ok: false, error: 'PRECISION' });
    expect(parseAmount('1.0000001', 6)).toEqual({ ok: false, error: 'PRECISION' });
  });

  it('refuses zero unless allowZero, after the precision check', () => {
    expect(parseAmount('0', 2)).toEqual({ ok: false, error: 'NOT_POSITIVE' });
    expect(parseAmount('0.000', 2)).toEqual({ ok: false, error: 'NOT_POSITIVE' });
    expect(parseAmount('0.001', 2)).toEqual({ ok: false, error: 'PRECISION' });
    expect(parseAmount('0.00', 2, { allowZero: true })).toEqual({ ok: true, value: 0n });
  });

  it('checks in the order FORMAT, TOO_MANY_INTEGER_DIGITS, PRECISION, NOT_POSITIVE', () => {
    expect(parseAmount(`${'0'.repeat(31)}.001`, 2)).toEqual({ ok: false, error: 'TOO_MANY_INTEGER_DIGITS' });
    expect(parseAmount(`-${'0'.repeat(31)}`, 2)).toEqual({ ok: false, error: 'FORMAT' });
  });

  // Found by review: the trailing zeros were cut with /0+$/, which backtracks quadratically over a
  // run of zeros followed by another digit. A signed order creation whose total_amount was
  // "1." + 60,000 zeros + "1" (inside the 64 KiB body limit) held the gateway's event loop for
  // over 4 s per request.
  it('reads a 64 KiB fraction in linear time (zeros then a digit)', () => {
    const long = `1.${'0'.repeat(64_000)}1`;
    const started = performance.now();
    expect(parseAmount(long, 6)).toEqual({ ok: false, error: 'PRECISION' });
    expect(parseAmount(`1.5${'0'.repeat(64_000)}`, 6)).toEqual({ ok: true, value: 1_500_000n });
    // Linear: about a millisecond; the regex took over 4 s on this input (a bound far from both).
    expect(performance.now() - started).toBeLessThan(1_500);
  });

  it('treats an invalid precision as a bug', () => {
    expect(() => parseAmount('1', -1)).toThrow(RangeError);
    expect(() => parseAmount('1', 1.5)).toThrow(RangeError);
  });
});

describe('parseDecimal', () => {
  it('returns the exact value as digits / 10^scale', () => {
    expect(parseDecimal('10.50')).toEqual({ digits: 1050n, scale: 2 });
    expect(parseDecimal('0')).toEqual({ digits: 0n, scale: 0 });
    expect(parseDecimal('0.1')).toEqual({ digits: 1n, scale: 1 });
  });

  it('returns null outside the grammar or beyond 30 integer digits', () => {
    for (const s of ['-1', '1e3', '.5', '5.', ' 1', '', '１']) expect(parseDecimal(s)).toBeNull();
    expect(parseDecimal('1'.repeat(31))).toBeNull();
    expect(parseDecimal('1'.repeat(30))).not.toBeNull();
  });
});

describe('formatAmount and formatAmountFixed', () => {
  it.each([
    [1050n, 2, '10.5', '10.50'],
    [0n, 2, '0', '0.00'],
    [1n, 6, '0.000001', '0.000001'],
    [100n, 2, '1', '1.00'],
    [42n, 0, '42', '42'],
    [-1050n, 2, '-10.5', '-10.50'],
    [-1n, 3, '-0.001', '-0.001'],
    [10n ** 36n, 18, '1000000000000000000', '1000000000000000000.000000000000000000'],
  ])('writes %s at precision %i as %s (fixed: %s)', (value, precision, canonical, fixed) => {
    expect(formatAmount(value, precision)).toBe(canonical);
    expect(formatAmountFixed(value, precision)).toBe(fixed);
  });
});

describe('rescale', () => {
  it('multiplies exactly when the precision grows', () => {
    expect(rescale(1050n, 2, 18, 'floor')).toBe(10_500_000_000_000_000_000n);
    expect(rescale(7n, 6, 6, 'ceil')).toBe(7n);
  });

  it('rounds toward -infinity (floor) or +infinity (ceil) when the precision shrinks', () => {
    expect(rescale(1_999_999n, 6, 2, 'floor')).toBe(199n);
    expect(rescale(1_999_999n, 6, 2, 'ceil')).toBe(200n);
    expect(rescale(-1_999_999n, 6, 2, 'floor')).toBe(-200n);
    expect(rescale(-1_999_999n, 6, 2, 'ceil')).toBe(-199n);
    expect(rescale(1_990_000n, 6, 2, 'ceil')).toBe(199n);
  });
});

// Decimal strings in the §5 grammar: up to 30 integer digits, an optional fraction.
const decimalString = fc
  .tuple(fc.stringMatching(/^[0-9]{1,30}$/), fc.option(fc.stringMatching(/^[0-9]{1,24}$/), { nil: undefined }))
  .map(([int, frac]) => (frac === undefined ? int : `${int}.${frac}`));

const amountAtPrecision = fc
  .integer({ min: 0, max: 18 })
  .chain((p) => fc.tuple(fc.bigInt({ min: 0n, max: 10n ** BigInt(30 + p) - 1n }), fc.constant(p)));

describe('amount properties', () => {
  it('formats what it parses back to the same value (canonical round trip)', () => {
    fc.assert(
      // Values up to 30 integer digits, the most the grammar allows.
      fc.property(amountAtPrecision, ([value, precision]) => {
        const text = formatAmount(value, precision);
        expect(parseAmount(text, precision, { allowZero: true })).toEqual({ ok: true, value });
        expect(parseAmount(formatAmountFixed(value, precision), precision, { allowZero: true })).toEqual({ ok: true, value });
        expect(text).toMatch(/^(?:0|[1-9][0-9]*)(?:\.[0-9]*[1-9])?$/);
      }),
    );
  });

  it('parses any grammar string exactly, by digits alone, never through a float', () => {
    fc.assert(
      fc.property(decimalString, (s) => {
        const d = parseDecimal(s);
        expect(d).not.toBeNull();
        const [int = '', frac = ''] = s.split('.');
        expect(d?.digits).toBe(BigInt(int + frac));
        expect(d?.scale).toBe(frac.length);
        const r = parseAmount(s, 24, { allowZero: true });
        expect(r.ok && typeof r.value).toBe('bigint');
        if (r.ok) expect(formatAmountFixed(r.value, 24)).toBe(`${BigInt(int)}.${frac.padEnd(24, '0')}`);
      }),
    );
  });

  it('rescales up and back down to the same value, and down within one unit of the exact quotient', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }),
        fc.integer({ min: 0, max: 18 }),
        fc.integer({ min: 0, max: 18 }),
        (value, a, b) => {
          const [lo, hi] = a <= b ? [a, b] : [b, a];
          const up = rescale(value, lo, hi, 'floor');
          expect(rescale(up, hi, lo, 'floor')).toBe(value);
          expect(rescale(up, hi, lo, 'ceil')).toBe(value);
          const floor = rescale(value, hi, lo, 'floor');
          const ceil = rescale(value, hi, lo, 'ceil');
          const back = (v: bigint) => rescale(v, lo, hi, 'floor');
          expect(back(floor) <= value && value <= back(ceil)).toBe(true);
          expect(ceil - floor).toBe(back(floor) === value ? 0n : 1n);
        },
      ),
    );
  });
});
