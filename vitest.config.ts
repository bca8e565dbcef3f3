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
    // Two test files at a time, also on a 2-core machine (vitest's default there is one): most
    // files wait on anvil blocks, child processes and timers, and one at a time took 16 minutes.
    maxWorkers: 2,
    setupFiles: ['./vitest.setup.ts'],
    // A hang guard, not a speed check (performance lives in the benchmarks): the heaviest tests
    // (gateways killed and restarted, 100 settlements) take 20-30 s alone, more on a busy machine.
    testTimeout: 90_000,
    hookTimeout: 60_000,
  },
});
