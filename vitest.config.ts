import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: {
    alias: {
      '@sparkpay/protocol': src('./packages/protocol/src/index.ts'),
      '@sparkpay/sdk': src('./packages/sdk/src/index.ts'),
    },
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'packages/*/contracts/**/*.test.ts', 'examples/**/*.test.ts'],
    pool: 'forks',
    // vitest's default (cores - 1) runs one file at a time on a 2-core machine: most suites wait on
    // anvil, Chromium, child gateways and sockets, so two at a time take about 30 % less wall time.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    // A hang guard, not a speed check (performance lives in the benchmarks): two files at a time
    // make the heaviest tests (gateways killed and restarted, 100 settlements) half as slow again.
    testTimeout: 90_000,
    hookTimeout: 60_000,
  },
});
