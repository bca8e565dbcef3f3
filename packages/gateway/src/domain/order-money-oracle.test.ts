// Order money against an independent oracle (PROTOCOL §5, §6, §8, §9, §14; ADR 0002): random
// amounts, rates with many digits, fee settings and token decimals, each option's amount, base
// amount, fee and split shares recomputed here with plain bigint fractions (no helper of the
// code under test), and every pair the oracle accepts offered, every pair it refuses dropped.
import fc from 'fast-check';
import { formatAmount } from '@sparkpay/protocol';
import { describe, expect, it } from 'vitest';
import type { Deployment } from './catalogue.js';
import { mainnetDeployment } from './catalogue.js';
import { ADDR, addressN, plan, proBody, standardBody } from './order-fixtures.suite.js';
import { rateTableFrom } from './rates.js';

/** A decimal string as [numerator, denominator], written again here on purpose. */
function frac(s: string): [bigint, bigint] {
  const [i, f = ''] = s.split('.');
  return [BigInt(`${i}${f}`), 10n ** BigInt(f.length)];
}
const ceilDiv = (n: bigint, d: bigint) => (n + d - 1n) / d;
const E = (n: number) => 10n ** BigInt(n);

/** A positive decimal string with up to `int` integer and `fr` fraction digits. */
const decimal = (int: number, fr: number) =>
  fc
    .tuple(fc.bigInt({ min: 0n, max: E(int) - 1n }), fc.bigInt({ min: 0n, max: E(fr) - 1n }), fc.nat({ max: fr }))
    .map(([i, f, keep]) => (keep === 0 ? `${i}` : `${i}.${f.toString().padStart(fr, '0').slice(0, keep)}`))
    .filter((s) => frac(s)[0] > 0n);

const CODES = ['USDT', 'USDC', 'ETH', 'BNB', 'POL', 'HSK', 'IRIS', 'HKD'] as const;

interface World {
  rates: Record<string, string>;
  deployment: Deployment;
}

const world = fc
  .record({
    rates: fc.tuple(...CODES.map(() => fc.oneof(decimal(6, 2), decimal(2, 30), decimal(30, 40)))),
    fees: fc.tuple(...[0, 1, 2, 3].map(() => fc.tuple(fc.oneof(fc.constant('0'), decimal(0, 20)), fc.oneof(decimal(1, 2), decimal(3, 25))))),
    decimals: fc.tuple(...[0, 1, 2, 3].map(() => fc.integer({ min: 0, max: 12 }))),
  })
  .map(({ rates, fees, decimals }): World => {
    const base = mainnetDeployment();
    return {
      rates: Object.fromEntries(CODES.map((c, i) => [c, rates[i]!])),
      deployment: {
        networks: base.networks.map((n, i) => ({
          ...n,
          feeRate: fees[i]![0],
          minFeeUsd: fees[i]![1],
          // token decimals at or above the precision, e.g. 6 vs 18 for USDT
          currencies: n.currencies.map((c) => ({ ...c, decimals: c.precision + (decimals[i]! % (c.decimals - c.precision + 7)) })),
        })),
      },
    };
  });

describe('order money against an independent bigint oracle', () => {
  it('pro: conversion, minimum fee, fee, split shares and the pairs offered', () => {
    fc.assert(
      fc.property(
        world,
        fc.constantFrom('USD', 'HKD', 'USDT', 'ETH', 'IRIS'),
        fc.bigInt({ min: 1n, max: E(40) }),
        fc.array(fc.bigInt({ min: 1n, max: E(12) }), { maxLength: 2 }),
        fc.boolean(),
        ({ rates, deployment }, pricingCode, rawTotal, otherShares, withSplit) => {
          const pp = pricingCode === 'USD' || pricingCode === 'HKD' ? 2 : pricingCode === 'ETH' ? 8 : 6;
          const total = rawTotal % E(30 + pp) || 1n;
          const others = withSplit ? otherShares : [];
          const seller = withSplit ? total / 3n : 0n;
          const merchantShare = total - seller - others.reduce((a, b) => a + b, 0n);
          const split = withSplit && seller > 0n && merchantShare > 0n;
          const body = proBody({
            pricing_currency: pricingCode,
            pricing_amount: formatAmount(total, pp),
            ...(split
              ? {
                  divide_detail: {
                    seller_amount: formatAmount(seller, pp),
                    seller_addr: ADDR.seller,
                    merchant_amount: formatAmount(merchantShare, pp),
                    other_details: others.map((a, i) => ({ receiver_addr: addressN(i), amount: formatAmount(a, pp) })),
                  },
                }
              : {}),
          });
          const r = plan(body, 'pro', { deployment, rates: rateTableFrom(rates) });
          const [fn, fd] = pricingCode === 'USD' ? [1n, 1n] : frac(rates[pricingCode]!);
          const expected: string[] = [];
          for (const n of deployment.networks) {
            for (const c of n.currencies) {
              const [tn, td] = frac(rates[c.code]!);
              // price × fromPrice / toPrice, in the option's order precision, rounded up
              const same = c.code === pricingCode;
              const num = total * (same ? 1n : fn * td) * E(c.precision);
              const den = E(pp) * (same ? 1n : fd * tn);
              const amount = ceilDiv(num, den);
              const amountBase = amount * E(c.decimals - c.precision);
              const [mn, md] = frac(n.minFeeUsd);
              const minFee = ceilDiv(mn * td * E(c.decimals), md * tn);
              const [rn, rd] = frac(n.feeRate);
              const prop = ceilDiv(amountBase * rn, rd);
              const fee = prop > minFee ? prop : minFee;
              const toBase = (x: bigint) => (x * (same ? 1n : fn * td) * E(c.decimals)) / (E(pp) * (same ? 1n : fd * tn));
              const shares = split ? { seller: toBase(seller), others: others.map(toBase) } : null;
              const merchantBase = shares ? amountBase - shares.seller - shares.others.reduce((a, b) => a + b, 0n) : amountBase;
              // A named receiver paid 0 base units in the token: the pair cannot carry the split.
              const emptyShare = shares !== null && [shares.seller, ...shares.others].some((x) => x === 0n);
              const ok = !emptyShare && amountBase > minFee && amountBase < 1n << 128n && merchantBase > fee;
              const o = r.ok ? r.plan.options.find((x) => x.network === n.id && x.currency === c.code) : undefined;
              if (!ok) {
                expect(o, `${n.id}/${c.code} must be dropped`).toBeUndefined();
                continue;
              }
              expected.push(`${n.id}/${c.code}`);
              expect(r.ok, `${n.id}/${c.code} must be offered: ${r.ok ? '' : `${r.code} ${r.message}`}`).toBe(true);
              expect(o).toMatchObject({ amount, amountBase, fee, decimals: c.decimals, precision: c.precision });
              if (shares) {
                expect(o?.split).toEqual({
                  seller: { address: ADDR.seller, amount: shares.seller },
                  merchant: merchantBase,
                  others: shares.others.map((a, i) => ({ address: addressN(i), amount: a })),
                });
              }
            }
          }
          if (r.ok) expect(r.plan.options.map((o) => `${o.network}/${o.currency}`).sort()).toEqual(expected.sort());
          else expect([41038, 41007, 41013, 41014]).toContain(r.code);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('standard: the amount exact in every option, fee and 41028 boundaries', () => {
    fc.assert(
      fc.property(world, fc.constantFrom('USDT', 'USDC', 'ETH', 'IRIS'), fc.bigInt({ min: 1n, max: E(36) }), ({ rates, deployment }, code, raw) => {
        const carriers = deployment.networks.filter((n) => n.currencies.some((c) => c.code === code));
        const p = Math.min(...carriers.map((n) => n.currencies.find((c) => c.code === code)!.precision));
        const total = raw % E(30 + p) || 1n;
        const r = plan(standardBody({ merchant_order_currency: code, total_amount: formatAmount(total, p) }), 'standard', { deployment, rates: rateTableFrom(rates) });
        const [tn, td] = frac(rates[code]!);
        const expected: string[] = [];
        for (const n of carriers) {
          const c = n.currencies.find((x) => x.code === code)!;
          const amountBase = total * E(c.decimals - p);
          const [mn, md] = frac(n.minFeeUsd);
          const minFee = ceilDiv(mn * td * E(c.decimals), md * tn);
          const [rn, rd] = frac(n.feeRate);
          const prop = ceilDiv(amountBase * rn, rd);
          const fee = prop > minFee ? prop : minFee;
          if (!(amountBase > minFee && amountBase > fee && amountBase < 1n << 128n)) continue;
          expected.push(n.id);
          const o = r.ok ? r.plan.options.find((x) => x.network === n.id) : undefined;
          expect(o).toMatchObject({ amount: total * E(c.precision - p), amountBase, fee });
        }
        if (r.ok) expect(r.plan.options.map((o) => o.network)).toEqual(expected);
        else {
          expect(expected).toEqual([]);
          expect([41028, 41013]).toContain(r.code);
        }
      }),
      { numRuns: 400 },
    );
  });
});

describe('a currency without a USD rate (§14: not a candidate)', () => {
  // The production defaults price USDT, USDC and HKD only: the operator sets the others.
  const defaults = rateTableFrom({ USDT: '1', USDC: '1', HKD: '0.1282' });

  it('says the rate is missing, not that 100 ETH is below the minimum fee (standard, 41028)', () => {
    const r = plan(standardBody({ merchant_order_currency: 'ETH', total_amount: '100' }), 'standard', { rates: defaults });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.code).toBe(41028);
    expect(r.message).toMatch(/no USD rate.*ETH/);
    expect(r.message).not.toMatch(/does not exceed/);
  });

  it('says so in the pro edition too (41038), naming the currencies', () => {
    const body = proBody({ pricing_amount: '5000', available_payment_currency_networks: [{ currency: 'ETH' }, { currency: 'BNB' }] });
    const r = plan(body, 'pro', { rates: defaults });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.code).toBe(41038);
    expect(r.message).toMatch(/no USD rate.*BNB, ETH/);
  });

  it('keeps the minimum-fee message when an amount really is too small', () => {
    const r = plan(standardBody({ total_amount: '0.05' }), 'standard', { rates: defaults });
    expect(r.ok ? 0 : r.code).toBe(41028);
    expect(r.ok ? '' : r.message).toMatch(/does not exceed the minimum platform service fee/);
  });
});
