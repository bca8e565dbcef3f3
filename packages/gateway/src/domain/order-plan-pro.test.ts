import fc from 'fast-check';
import { formatAmount, parseAmount } from '@sparkpay/protocol';
import { describe, expect, it } from 'vitest';
import { ratFromDecimal } from './money.js';
import { ADDR, addressN, baseSplit, codeOf, merchant, plan, planOf, proBody, standardBody } from './order-fixtures.suite.js';
import type { PaymentOption } from './order-plan.js';
import { DEMO_RATE_CONFIG, rateTableFrom } from './rates.js';

const E10 = 10n ** 10n;
const E18 = 10n ** 18n;

function option(options: readonly PaymentOption[], network: string, currency: string): PaymentOption | undefined {
  return options.find((o) => o.network === network && o.currency === currency);
}

describe('pro pricing currency and amount', () => {
  it.each(['EUR', 'usd', 'DOGE'])('refuses pricing_currency %s with 41009', (c) => {
    expect(codeOf(plan(proBody({ pricing_currency: c }), 'pro'))).toBe(41009);
  });
  it('holds fiat to 2 decimals and crypto to its order precision', () => {
    expect(codeOf(plan(proBody({ pricing_currency: 'HKD', pricing_amount: '1.001' }), 'pro'))).toBe(41018);
    expect(codeOf(plan(proBody({ pricing_currency: 'ETH', pricing_amount: '0.123456789' }), 'pro'))).toBe(41018);
    expect(codeOf(plan(proBody({ pricing_currency: 'ETH', pricing_amount: '0.12345678' }), 'pro'))).toBe(0);
    expect(codeOf(plan(proBody({ pricing_amount: '0' }), 'pro'))).toBe(41013);
  });
});

describe('pro conversion', () => {
  it('converts HKD at the locked rate, rounding up to each currency precision', () => {
    const p = planOf(plan(proBody({ pricing_currency: 'HKD', pricing_amount: '100.00' }), 'pro'));
    expect(p.pricing).toEqual({ currency: 'HKD', amount: 10_000n, precision: 2, usdRate: '0.1282' });
    // 100 HKD × 0.1282 = 12.82 USD
    expect(option(p.options, '2', 'USDT')).toMatchObject({ amount: 12_820_000n, amountBase: 12_820_000n, usdRate: '1' });
    expect(option(p.options, '3', 'USDT')).toMatchObject({ amount: 12_820_000n, amountBase: 1282n * E18 / 100n });
    // 12.82 / 3000 = 0.0042733333… ETH -> 0.00427334 (8 decimals, up)
    expect(option(p.options, '2', 'ETH')).toMatchObject({ amount: 427_334n, amountBase: 427_334n * E10, usdRate: '3000', fee: 333_333_333_333_334n });
    // 12.82 / 0.01 = 1282 IRIS
    expect(option(p.options, '5', 'IRIS')).toMatchObject({ amount: 1_282_000_000n, decimals: 18, precision: 6 });
  });
  it('prices in a crypto currency: the same currency exactly, others converted', () => {
    const p = planOf(plan(proBody({ pricing_currency: 'USDT', pricing_amount: '30' }), 'pro'));
    expect(p.pricing).toMatchObject({ currency: 'USDT', amount: 30_000_000n, precision: 6, usdRate: '1' });
    expect(option(p.options, '3', 'USDT')?.amountBase).toBe(30n * E18);
    expect(option(p.options, '2', 'ETH')?.amount).toBe(1_000_000n); // 0.01 ETH
  });
  it('drops pairs whose converted amount does not exceed the minimum fee (boundary: equal)', () => {
    const p = planOf(plan(proBody({ pricing_amount: '1.00' }), 'pro'));
    expect(option(p.options, '2', 'USDT')).toBeUndefined(); // 1.00 = Ethereum's minimum
    expect(option(p.options, '4', 'USDT')).toBeDefined();
    expect(option(p.options, '2', 'USDC')).toBeUndefined();
    // 1 USD in ETH rounds up to 0.00033334 ETH, just above the minimum 0.000333333333333334 ETH.
    expect(option(p.options, '2', 'ETH')?.amount).toBe(33_334n);
  });
  it('drops pairs with a missing rate; 41038 when none is left', () => {
    const noHsk = rateTableFrom(Object.fromEntries(Object.entries(DEMO_RATE_CONFIG).filter(([c]) => c !== 'HSK')));
    const p = planOf(plan(proBody(), 'pro', { rates: noHsk }));
    expect(p.options.some((o) => o.currency === 'HSK')).toBe(false);
    expect(p.options.some((o) => o.currency === 'ETH')).toBe(true);
    const noHkd = rateTableFrom({ USDT: '1', ETH: '3000' });
    expect(codeOf(plan(proBody({ pricing_currency: 'HKD' }), 'pro', { rates: noHkd }))).toBe(41038);
  });
});

describe('pro networks', () => {
  const list = (v: unknown) => proBody({ available_payment_currency_networks: v });

  it('offers every pair the merchant can receive when no list is sent', () => {
    const p = planOf(plan(proBody({ pricing_amount: '100' }), 'pro'));
    expect(p.options.map((o) => `${o.network}:${o.currency}`)).toEqual(['2:ETH', '2:USDT', '2:USDC', '2:HSK', '3:BNB', '3:USDT', '3:USDC', '4:POL', '4:USDT', '4:USDC', '5:IRIS']);
    const m = merchant({ wallets: { '4': ADDR.wallet } });
    expect(planOf(plan(proBody(), 'pro', { merchant: m })).options.map((o) => o.currency)).toEqual(['POL', 'USDT', 'USDC']);
    expect(planOf(plan(list([]), 'pro', { merchant: m })).options).toHaveLength(3);
  });
  it('follows the list in its order, networks as strings or numbers', () => {
    const p = planOf(plan(list([{ currency: 'USDC', networks: [4, '2'] }, { currency: 'IRIS' }]), 'pro'));
    expect(p.options.map((o) => `${o.network}:${o.currency}`)).toEqual(['4:USDC', '2:USDC', '5:IRIS']);
  });
  it('restricts entries without networks to networks with a wallet (41035 when none)', () => {
    const m = merchant({ wallets: { '3': ADDR.wallet } });
    expect(planOf(plan(list([{ currency: 'USDT' }]), 'pro', { merchant: m })).options.map((o) => o.network)).toEqual(['3']);
    expect(codeOf(plan(list([{ currency: 'USDT' }, { currency: 'IRIS' }]), 'pro', { merchant: m }))).toBe(41035);
    expect(codeOf(plan(list([{ currency: 'USDT', networks: ['3', '4'] }]), 'pro', { merchant: m }))).toBe(41035);
  });
  it('refuses duplicates (41036, 41037), unknown networks (41027), unsupported pairs (41031)', () => {
    expect(codeOf(plan(list([{ currency: 'ETH' }, { currency: 'ETH' }]), 'pro'))).toBe(41036);
    expect(codeOf(plan(list([{ currency: 'USDT', networks: [3, '3'] }]), 'pro'))).toBe(41037);
    expect(codeOf(plan(list([{ currency: 'USDT', networks: ['6'] }]), 'pro'))).toBe(41027);
    expect(codeOf(plan(list([{ currency: 'ETH', networks: ['4'] }]), 'pro'))).toBe(41031);
  });
  it('refuses a listed currency that no network carries with 41009, as §7 does (it was the pair code 41031)', () => {
    expect(codeOf(plan(list([{ currency: 'DOGE' }]), 'pro'))).toBe(41009);
    expect(codeOf(plan(list([{ currency: 'DOGE', networks: ['2'] }]), 'pro'))).toBe(41009);
    // A pricing currency is no payment currency: USD is carried by no network either.
    expect(codeOf(plan(list([{ currency: 'USDT' }, { currency: 'USD' }]), 'pro'))).toBe(41009);
    // An unknown network of the entry still answers first (41027), a pair not carried after (41031).
    expect(codeOf(plan(list([{ currency: 'DOGE', networks: ['6'] }]), 'pro'))).toBe(41027);
    expect(codeOf(plan(list([{ currency: 'ETH', networks: ['4'] }, { currency: 'DOGE' }]), 'pro'))).toBe(41031);
  });
  it('refuses a receive_network network without the merchant wallet (41035), as the standard edition does', () => {
    const m = merchant({ wallets: { '2': ADDR.wallet } });
    expect(codeOf(plan(proBody({ receive_network: '2,4' }), 'pro', { merchant: m }))).toBe(41035);
    expect(codeOf(plan(proBody({ receive_network: '2,4', available_payment_currency_networks: [{ currency: 'USDT' }] }), 'pro', { merchant: m }))).toBe(41035);
    expect(codeOf(plan(proBody({ receive_network: '4,2', available_payment_currency_networks: [{ currency: 'USDT', networks: ['2'] }] }), 'pro', { merchant: m }))).toBe(41035);
    // 41031 (a pair outside receive_network) still wins over the missing wallet.
    expect(codeOf(plan(proBody({ receive_network: '4', available_payment_currency_networks: [{ currency: 'USDT', networks: ['2'] }] }), 'pro', { merchant: m }))).toBe(41031);
    expect(planOf(plan(proBody({ receive_network: '2' }), 'pro', { merchant: m })).options.every((o) => o.network === '2')).toBe(true);
  });
  it('lets receive_network restrict the pairs', () => {
    const p = planOf(plan(proBody({ receive_network: '4' }), 'pro'));
    expect(p.options.map((o) => o.network)).toEqual(['4', '4', '4']);
    expect(codeOf(plan(proBody({ receive_network: '8' }), 'pro'))).toBe(41027);
    expect(codeOf(plan(proBody({ receive_network: '4', available_payment_currency_networks: [{ currency: 'USDT', networks: ['2'] }] }), 'pro'))).toBe(41031);
    expect(codeOf(plan(proBody({ receive_network: '4', available_payment_currency_networks: [{ currency: 'IRIS' }] }), 'pro'))).toBe(41031);
  });
});

describe('pro splits', () => {
  const hkdSplit = proBody({
    pricing_currency: 'HKD',
    pricing_amount: '100',
    divide_detail: baseSplit({ seller_amount: '70', merchant_amount: '25', other_details: [{ receiver_addr: ADDR.other1, amount: '5' }] }),
  });

  it('converts shares with the locked rate: others rounded down, the merchant takes the remainder', () => {
    const p = planOf(plan(hkdSplit, 'pro'));
    expect(p.divideDetailWire).toEqual({ seller_amount: '70', seller_addr: ADDR.seller, merchant_amount: '25', other_details: [{ receiver_addr: ADDR.other1, amount: '5' }] });
    // 1 HKD cent = 1282 USDT base units (6 decimals): exact
    expect(option(p.options, '2', 'USDT')?.split).toEqual({ seller: { address: ADDR.seller, amount: 8_974_000n }, merchant: 3_205_000n, others: [{ address: ADDR.other1, amount: 641_000n }] });
    // ETH: 70 HKD = 0.0029913333… ETH -> floor; 5 HKD -> floor; merchant gets the rest of 0.00427334
    expect(option(p.options, '2', 'ETH')?.split).toEqual({
      seller: { address: ADDR.seller, amount: 2_991_333_333_333_333n },
      merchant: 1_068_340_000_000_001n,
      others: [{ address: ADDR.other1, amount: 213_666_666_666_666n }],
    });
  });
  it('refuses a split that does not add up to the pricing amount (41008)', () => {
    const body = proBody({ pricing_currency: 'HKD', pricing_amount: '100', divide_detail: baseSplit({ seller_amount: '70', merchant_amount: '29.99' }) });
    expect(codeOf(plan(body, 'pro'))).toBe(41008);
  });
  it('holds split amounts to the pricing precision (41019)', () => {
    const body = proBody({ pricing_amount: '10.50', divide_detail: baseSplit({ seller_amount: '8.001', merchant_amount: '2.499' }) });
    expect(codeOf(plan(body, 'pro'))).toBe(41019);
  });
  it('drops pairs where the converted merchant share does not exceed the fee (41007 when none is left)', () => {
    // 0.50 USD to the merchant: above the 0.10 minimum on BSC/Polygon/IRISnet, below Ethereum's 1.00.
    const p = planOf(plan(proBody({ pricing_amount: '10.50', divide_detail: baseSplit({ seller_amount: '10', merchant_amount: '0.50' }) }), 'pro'));
    expect(p.options.length).toBeGreaterThan(0);
    expect(p.options.every((o) => o.network !== '2')).toBe(true);
    const tiny = proBody({ pricing_amount: '10.50', divide_detail: baseSplit({ seller_amount: '10.45', merchant_amount: '0.05' }) });
    expect(codeOf(plan(tiny, 'pro'))).toBe(41007);
  });
});

describe('pro split shares too small for a token', () => {
  // Priced in IRIS (6 decimals of a 0.01 USD coin): 0.000001 IRIS is 0.00000001 USD, which is
  // 0.01 base unit of a 6-decimal USDT/USDC but 10^10 of BSC's 18-decimal USDT.
  const tinyOther = (overrides: Record<string, unknown> = {}) => proBody({
    pricing_currency: 'IRIS',
    pricing_amount: '2000',
    divide_detail: baseSplit({ seller_amount: '1000', merchant_amount: '999.999999', other_details: [{ receiver_addr: ADDR.other1, amount: '0.000001' }] }),
    ...overrides,
  });

  it('leaves out a pair where a named receiver\'s share would be 0 base units', () => {
    const p = planOf(plan(tinyOther(), 'pro'));
    const pairs = p.options.map((o) => `${o.network}:${o.currency}`);
    for (const gone of ['2:USDT', '2:USDC', '4:USDT', '4:USDC']) expect(pairs).not.toContain(gone);
    expect(pairs).toEqual(['2:ETH', '2:HSK', '3:BNB', '3:USDT', '3:USDC', '4:POL', '5:IRIS']);
    expect(option(p.options, '3', 'USDT')?.split?.others).toEqual([{ address: ADDR.other1, amount: 10n ** 10n }]);
    for (const o of p.options) {
      expect(o.split?.seller.amount).toBeGreaterThan(0n);
      for (const x of o.split?.others ?? []) expect(x.amount).toBeGreaterThan(0n);
    }
  });
  it('refuses with 41014 when every pair is left out for it, the seller\'s share as any other', () => {
    const usdtOnly = { available_payment_currency_networks: [{ currency: 'USDT', networks: ['2', '4'] }] };
    expect(plan(tinyOther(usdtOnly), 'pro')).toEqual({
      ok: false,
      code: 41014,
      message: `the split share of 0.000001 IRIS to ${ADDR.other1} is less than one base unit of USDT on network 2: the receiver would be paid nothing, so no candidate currency and network can carry the split`,
    });
    const tinySeller = proBody({
      pricing_currency: 'IRIS',
      pricing_amount: '2000',
      available_payment_currency_networks: [{ currency: 'USDC', networks: ['4'] }],
      divide_detail: baseSplit({ seller_amount: '0.000001', merchant_amount: '1999.999999' }),
    });
    expect(codeOf(plan(tinySeller, 'pro'))).toBe(41014);
  });
  it('answers 41014 before the fee rules when no pair is left (§7: split rules come first)', () => {
    // Polygon USDT drops for the share, Ethereum USDT for its merchant share under the 1 USD fee.
    const body = proBody({
      pricing_currency: 'IRIS',
      pricing_amount: '500',
      available_payment_currency_networks: [{ currency: 'USDT', networks: ['2', '4'] }],
      divide_detail: baseSplit({ seller_amount: '449.999999', merchant_amount: '50', other_details: [{ receiver_addr: ADDR.other1, amount: '0.000001' }] }),
    });
    expect(codeOf(plan(body, 'pro'))).toBe(41014);
  });
});

describe('standard split shares on 6- and 18-decimal tokens', () => {
  it('scales the smallest share exactly to each token: never 0 base units', () => {
    const body = standardBody({
      total_amount: '10.000001',
      receive_network: '2,3,4',
      divide_detail: baseSplit({ seller_amount: '8', merchant_amount: '2', other_details: [{ receiver_addr: ADDR.other1, amount: '0.000001' }] }),
    });
    const p = planOf(plan(body));
    expect(p.options.map((o) => [o.network, o.split?.others[0]?.amount])).toEqual([['2', 1n], ['3', 10n ** 12n], ['4', 1n]]);
  });
});

describe('properties', () => {
  const cents = fc.bigInt({ min: 1n, max: 10n ** 9n });

  it('converted split shares sum exactly to the converted total, none negative, merchant above the fee', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('USD', 'HKD', 'USDT', 'ETH'),
        cents,
        cents,
        fc.array(cents, { maxLength: 3 }),
        (currency, seller, merchantShare, others) => {
          const precision = currency === 'ETH' ? 8 : currency === 'USDT' ? 6 : 2;
          const total = seller + merchantShare + others.reduce((a, b) => a + b, 0n);
          const body = proBody({
            pricing_currency: currency,
            pricing_amount: formatAmount(total, precision),
            divide_detail: {
              seller_amount: formatAmount(seller, precision),
              seller_addr: ADDR.seller,
              merchant_amount: formatAmount(merchantShare, precision),
              other_details: others.map((a, i) => ({ receiver_addr: addressN(i), amount: formatAmount(a, precision) })),
            },
          });
          const r = plan(body, 'pro');
          if (!r.ok) {
            expect([41038, 41007]).toContain(r.code);
            return;
          }
          expect(r.plan.pricing.amount).toBe(total);
          for (const o of r.plan.options) {
            const s = o.split;
            if (!s) throw new Error('split expected');
            const sum = s.seller.amount + s.merchant + s.others.reduce((a, b) => a + b.amount, 0n);
            expect(sum).toBe(o.amountBase);
            expect(s.seller.amount > 0n && s.others.every((x) => x.amount > 0n)).toBe(true);
            expect(s.merchant > o.fee).toBe(true);
            expect(o.fee > 0n && o.fee <= o.amountBase).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('never asks the payer for less than the price (amount >= exact conversion, within one unit)', () => {
    fc.assert(
      fc.property(cents, (amount) => {
        const r = plan(proBody({ pricing_currency: 'HKD', pricing_amount: formatAmount(amount, 2) }), 'pro');
        if (!r.ok) return;
        const hkd = ratFromDecimal('0.1282');
        if (!hkd) throw new Error('rate');
        for (const o of r.plan.options) {
          const price = o.usdRate === null ? null : ratFromDecimal(o.usdRate);
          if (!price) throw new Error('rate');
          // exact amount in order units = amount/100 × hkd / price × 10^precision
          const num = amount * hkd.num * price.den * 10n ** BigInt(o.precision);
          const den = 100n * hkd.den * price.num;
          expect(o.amount * den >= num).toBe(true);
          expect((o.amount - 1n) * den < num).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('standard splits scale exactly to base units and echo round-trips', () => {
    fc.assert(
      fc.property(cents, cents, (seller, merchantShare) => {
        const total = seller + merchantShare;
        const body = standardBody({
          total_amount: formatAmount(total, 6),
          divide_detail: { seller_amount: formatAmount(seller, 6), seller_addr: ADDR.seller, merchant_amount: formatAmount(merchantShare, 6) },
        });
        const r = plan(body);
        if (!r.ok) {
          expect([41028, 41007]).toContain(r.code);
          return;
        }
        const wire = r.plan.divideDetailWire;
        expect(parseAmount(wire?.seller_amount, 6)).toEqual({ ok: true, value: seller });
        expect(parseAmount(wire?.merchant_amount, 6)).toEqual({ ok: true, value: merchantShare });
        for (const o of r.plan.options) {
          const scale = 10n ** BigInt(o.decimals - 6);
          expect(o.split?.seller.amount).toBe(seller * scale);
          expect(o.split?.merchant).toBe(merchantShare * scale);
          expect(o.amountBase).toBe(total * scale);
        }
      }),
      { numRuns: 200 },
    );
  });
});
