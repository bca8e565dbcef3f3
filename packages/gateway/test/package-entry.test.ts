// The gateway package's entry point (package.json "exports"): it named dist/index.js, which no
// source builds, so `import '@sparkpay/gateway'` failed (found verifying the issues' items). It
// is the module that builds a gateway in a program of one's own, as the benchmarks do.
import { describe, expect, it } from 'vitest';

describe('@sparkpay/gateway', () => {
  it('imports, and gives createGateway', async () => {
    const entry = (await import('@sparkpay/gateway')) as Record<string, unknown>;
    expect(typeof entry.createGateway).toBe('function');
  });
});
