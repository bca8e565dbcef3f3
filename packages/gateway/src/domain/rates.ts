// USD prices of currencies (PROTOCOL §14) and exact conversion between currencies. A rate is the
// USD price of one whole unit of a currency (ETH = 3000 means 1 ETH = 3000 USD), held as an
// exact rational so a conversion rounds exactly once.

import type { Rational, Rounding } from './money.js';
import { divRound, pow10, ratFromDecimal, ratToDecimal } from './money.js';

/**
 * A pure snapshot of a rate source. `usdPrice` is null when the rate is missing or stale; the
 * currency is then not a candidate for an order (§14). USD itself is always 1.
 */
export interface RateTable {
  usdPrice(code: string): Rational | null;
}

/** Rates as configured: currency code -> USD price as a decimal string. */
export type RateConfig = Readonly<Record<string, string>>;

/** §14 defaults; every other currency is set by the operator. */
export const DEFAULT_RATE_CONFIG: RateConfig = { USDT: '1', USDC: '1', HKD: '0.1282' };

/** Development-mode demo rates: every currency of §5 has one, so nothing is missing there. */
export const DEMO_RATE_CONFIG: RateConfig = {
  USDT: '1',
  USDC: '1',
  HKD: '0.1282',
  ETH: '3000',
  BNB: '600',
  POL: '0.5',
  HSK: '0.5',
  IRIS: '0.01',
};

const ONE: Rational = { num: 1n, den: 1n };

/** Validates a rate configuration: every value a §5 decimal string, strictly positive. */
export function parseRateTable(config: RateConfig): { ok: true; table: RateTable } | { ok: false; errors: string[] } {
  const prices = new Map<string, Rational>();
  const errors: string[] = [];
  for (const [code, text] of Object.entries(config)) {
    const price = typeof text === 'string' ? ratFromDecimal(text) : null;
    // Codes are matched as written: a lower-case "usdt" was accepted and never used.
    if (!/^[A-Z][A-Z0-9]{0,9}$/.test(code)) errors.push(`rate for "${code}": currency codes are upper case letters and digits, as in orders (USDT, HKD)`);
    else if (!price || price.num <= 0n) errors.push(`rate for ${code} must be a positive decimal string`);
    // USD is the unit of the table: another rate for it was silently ignored.
    else if (code === 'USD' && !(price.num === 1n && price.den === 1n)) errors.push('rate for USD is 1 by definition (the rates are USD prices); leave it out');
    else prices.set(code, price);
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, table: { usdPrice: (code) => (code === 'USD' ? ONE : (prices.get(code) ?? null)) } };
}

/** Like parseRateTable for trusted constants and tests: an invalid table is a bug, so it throws. */
export function rateTableFrom(config: RateConfig): RateTable {
  const r = parseRateTable(config);
  if (!r.ok) throw new RangeError(r.errors.join('; '));
  return r.table;
}

export const DEMO_RATES: RateTable = rateTableFrom(DEMO_RATE_CONFIG);

/** The canonical decimal of a price read from a decimal table (always terminating). */
export function formatRate(price: Rational): string {
  // A price built from a decimal string always terminates; the fallback keeps it lossless anyway.
  return ratToDecimal(price) ?? `${price.num}/${price.den}`;
}

/** One side of a conversion: the unit of the amount (10^-scale of the currency) and its price. */
export interface Priced {
  readonly scale: number;
  readonly usdPrice: Rational;
}

/**
 * Converts `value` (units of 10^-from.scale of the source currency) into units of
 * 10^-to.scale of the target currency at the given prices, rounding once:
 * value × fromPrice / toPrice × 10^(to.scale - from.scale).
 */
export function convertAmount(value: bigint, from: Priced, to: Priced, rounding: Rounding): bigint {
  if (from.usdPrice.num <= 0n || to.usdPrice.num <= 0n) throw new RangeError('prices must be positive');
  const num = value * from.usdPrice.num * to.usdPrice.den * pow10(to.scale);
  const den = from.usdPrice.den * to.usdPrice.num * pow10(from.scale);
  return divRound(num, den, rounding);
}

/**
 * Currency codes the deployment carries that have no USD rate in `table`, sorted: no order can be
 * paid in them (the minimum fee is in USD, §6, §14). The production defaults price only USDT,
 * USDC and HKD, so the start warns of the native coins and tokens left without one.
 */
export function currenciesWithoutRate(deployment: { readonly networks: readonly { readonly currencies: readonly { readonly code: string }[] }[] }, table: RateTable): string[] {
  const codes = new Set(deployment.networks.flatMap((n) => n.currencies.map((c) => c.code)));
  return [...codes].filter((code) => table.usdPrice(code) === null).sort();
}
