import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAINNET_CURRENCIES, mainnetDeployment, NETWORK_IDS } from './catalogue.js';
import { rational } from './money.js';
import { convertAmount, currenciesWithoutRate, DEFAULT_RATE_CONFIG, DEMO_RATES, formatRate, parseRateTable, rateTableFrom } from './rates.js';

describe('rate tables', () => {
  it('demo rates cover every currency of the catalogue, USD is always 1', () => {
    for (const id of NETWORK_IDS) for (const c of MAINNET_CURRENCIES[id]) expect(DEMO_RATES.usdPrice(c.code)).not.toBeNull();
    expect(DEMO_RATES.usdPrice('HKD')).toEqual(rational(641n, 5000n));
    expect(DEMO_RATES.usdPrice('USD')).toEqual(rational(1n));
    expect(rateTableFrom({}).usdPrice('USD')).toEqual(rational(1n));
    expect(DEMO_RATES.usdPrice('DOGE')).toBeNull();
  });
  it('defaults to USDT = USDC = 1 and HKD = 0.1282', () => {
    const t = rateTableFrom(DEFAULT_RATE_CONFIG);
    expect(t.usdPrice('USDT')).toEqual(rational(1n));
    expect(t.usdPrice('USDC')).toEqual(rational(1n));
    expect(formatRate(t.usdPrice('HKD') ?? rational(0n))).toBe('0.1282');
    expect(t.usdPrice('ETH')).toBeNull();
  });
  it('refuses rates that are not positive decimal strings', () => {
    const r = parseRateTable({ A: '0', B: '-1', C: '1e3', D: 'abc', E: '2.5' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors).toHaveLength(4);
    expect(() => rateTableFrom({ A: '0.0' })).toThrow(RangeError);
  });
  // Both were accepted and had no effect (a review of the money arithmetic).
  it('refuses a code not written as orders write it, and a USD rate other than 1', () => {
    const r = parseRateTable({ usdt: '1', 'US D': '1', USD: '7.8' });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.errors).toEqual([
        'rate for "usdt": currency codes are upper case letters and digits, as in orders (USDT, HKD)',
        'rate for "US D": currency codes are upper case letters and digits, as in orders (USDT, HKD)',
        'rate for USD is 1 by definition (the rates are USD prices); leave it out',
      ]);
    }
    expect(parseRateTable({ USD: '1.000', USDT: '1' }).ok).toBe(true);
  });
});

describe('convertAmount', () => {
  it('converts HKD cents into USDT units at 0.1282', () => {
    const hkd = { scale: 2, usdPrice: rational(641n, 5000n) };
    const usdt = { scale: 6, usdPrice: rational(1n) };
    expect(convertAmount(10_000n, hkd, usdt, 'ceil')).toBe(12_820_000n);
    // 0.01 HKD = 0.001282 USD exactly
    expect(convertAmount(1n, hkd, usdt, 'floor')).toBe(1282n);
  });
  it('rounds once in the stated direction', () => {
    const usd = { scale: 2, usdPrice: rational(1n) };
    const eth = { scale: 8, usdPrice: rational(3000n) };
    expect(convertAmount(1282n, usd, eth, 'floor')).toBe(427_333n);
    expect(convertAmount(1282n, usd, eth, 'ceil')).toBe(427_334n);
  });
  it('ceil and floor bracket the exact value within one unit', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 24n }), fc.bigInt({ min: 1n, max: 10n ** 8n }), fc.bigInt({ min: 1n, max: 10n ** 8n }), (v, p, q) => {
        const from = { scale: 2, usdPrice: rational(p, 10000n) };
        const to = { scale: 6, usdPrice: rational(q, 100n) };
        const lo = convertAmount(v, from, to, 'floor');
        const hi = convertAmount(v, from, to, 'ceil');
        expect(hi - lo === 0n || hi - lo === 1n).toBe(true);
        // exact: v × p/10000 × 100/q × 10^4
        expect(lo * 10000n * q <= v * p * 100n * 10000n && v * p * 100n * 10000n <= hi * 10000n * q).toBe(true);
      }),
    );
  });
});

describe('currenciesWithoutRate', () => {
  it('names the currencies of the deployment the production defaults leave without a rate', () => {
    expect(currenciesWithoutRate(mainnetDeployment(), rateTableFrom(DEFAULT_RATE_CONFIG))).toEqual(['BNB', 'ETH', 'HSK', 'IRIS', 'POL']);
    expect(currenciesWithoutRate(mainnetDeployment(), DEMO_RATES)).toEqual([]);
  });
});
