// Run control of the property-based suites: every property has a fixed seed, so CI runs the same
// cases every time; SPARKPAY_FUZZ_SEED moves all of them at once and SPARKPAY_FUZZ_SCALE
// multiplies the runs, for a longer search by hand. fast-check prints the seed and path of a
// failure, which replays it.
import fc from 'fast-check';

export const FUZZ_SEED = Number(process.env.SPARKPAY_FUZZ_SEED ?? 20_251_125);
export const FUZZ_SCALE = Number(process.env.SPARKPAY_FUZZ_SCALE ?? 1);

/** `n` runs, scaled. */
export const runs = (n: number) => Math.max(1, Math.round(n * FUZZ_SCALE));

/** fast-check options for a property: the seed `seedOffset` from the suite's base, `numRuns` scaled. */
export function fuzzOptions<T>(seedOffset: number, numRuns: number, extra: Omit<fc.Parameters<T>, 'seed' | 'numRuns'> = {}): fc.Parameters<T> {
  return { ...extra, seed: FUZZ_SEED + seedOffset, numRuns: runs(numRuns) };
}

/** Checks an asynchronous property with fuzzOptions. */
export async function check<T>(property: fc.IAsyncPropertyWithHooks<T>, seedOffset: number, numRuns: number, extra: Omit<fc.Parameters<T>, 'seed' | 'numRuns'> = {}): Promise<void> {
  await fc.assert(property, fuzzOptions(seedOffset, numRuns, extra));
}
