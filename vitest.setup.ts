// Every property-based test runs the same cases on every run: fast-check's global seed is fixed
// (the suites under test/ set their own through test/fuzz.ts). SPARKPAY_FUZZ_SEED moves it, for a
// search by hand; a failure prints the seed and path that replay it.
import fc from 'fast-check';

fc.configureGlobal({ seed: Number(process.env.SPARKPAY_FUZZ_SEED ?? 20_251_125) });
