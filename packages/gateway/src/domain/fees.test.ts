import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mainnetDeployment } from './catalogue.js';
import type { CurrencySpec, NetworkDeployment } from './catalogue.js';
import { checkFees, feeScheduleFor, minFeeBase, serviceFee } from './fees.js';
import { rational } from './money.js';
import { DEMO_RATES, rateTableFrom } from './rates.js';

const [ethereum, bsc] = mainnetDeployment().networks as [NetworkDeployment, NetworkDeployment];
const usdtOn = (n: NetworkDeployment): CurrencySpec => n.currencies.find((c) => c.code === 'USDT') as CurrencySpec;

describe('minimum fee', () => {
  it('converts the USD minimum into base units, rounding up', () => {
    expect(minFeeBase(rational(1n), rational(1n), 6)).toBe(1_000_000n);
    expect(minFeeBase(rational(1n, 10n), rational(1n), 18)).toBe(10n ** 17n);
    expect(minFeeBase(rational(1n), rational(3000n), 18)).toBe(333_333_333_333_334n);
    expect(minFeeBase(rational(1n, 10n), rational(641n, 5000n), 2)).toBe(79n); // 0.78003… HKD -> 0.79
  });
  it('resolves per network and currency, or null without a rate', () => {
    expect(feeScheduleFor(ethereum, usdtOn(ethereum), DEMO_RATES)).toMatchObject({ rate: rational(1n, 200n), minFeeBase: 1_000_000n });
    expect(feeScheduleFor(bsc, usdtOn(bsc), DEMO_RATES)?.minFeeBase).toBe(10n ** 17n);
    expect(feeScheduleFor(ethereum, usdtOn(ethereum), rateTableFrom({}))).toBeNull();
    expect(feeScheduleFor({ ...ethereum, feeRate: 'x' }, usdtOn(ethereum), DEMO_RATES)).toBeNull();
  });
});

describe('service fee', () => {
  const schedule = { rate: rational(5n, 1000n), minFeeBase: 1_000_000n, usdPrice: rational(1n) };
  it('is amount × rate rounded up, or the minimum when that is larger', () => {
    expect(serviceFee(10_500_000n, schedule)).toBe(1_000_000n);
    expect(serviceFee(200_000_000n, schedule)).toBe(1_000_000n);
    expect(serviceFee(200_000_001n, schedule)).toBe(1_000_001n);
    expect(serviceFee(1_000_000_000n, schedule)).toBe(5_000_000n);
  });
  it('requires amount > minimum and merchant share > fee (boundaries)', () => {
    expect(checkFees(1_000_000n, null, schedule)).toEqual({ ok: false, reason: 'AMOUNT_NOT_ABOVE_MIN_FEE', fee: 1_000_000n });
    expect(checkFees(1_000_001n, null, schedule)).toEqual({ ok: true, fee: 1_000_000n });
    expect(checkFees(5_000_000n, 1_000_000n, schedule)).toEqual({ ok: false, reason: 'MERCHANT_NOT_ABOVE_FEE', fee: 1_000_000n });
    expect(checkFees(5_000_000n, 1_000_001n, schedule)).toEqual({ ok: true, fee: 1_000_000n });
  });
  it('never exceeds the amount when accepted, and is never below rate or minimum', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 10n ** 30n }),
        fc.bigInt({ min: 0n, max: 999n }),
        fc.bigInt({ min: 0n, max: 10n ** 20n }),
        (amount, permille, min) => {
          const s = { rate: rational(permille, 1000n), minFeeBase: min, usdPrice: rational(1n) };
          const r = checkFees(amount, null, s);
          if (!r.ok) {
            expect(amount <= min).toBe(true);
            return;
          }
          expect(r.fee <= amount).toBe(true);
          expect(r.fee >= min).toBe(true);
          expect(r.fee * 1000n >= amount * permille).toBe(true);
          // rounded up by less than one base unit
          expect(r.fee === min || (r.fee - 1n) * 1000n < amount * permille).toBe(true);
        },
      ),
    );
  });
});
