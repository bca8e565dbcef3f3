import { describe, expect, it } from 'vitest';
import { compactUtc, randomAlnum, randomIds } from './random-ids.js';

describe('random identifiers', () => {
  it('draws alphanumeric strings of the asked length, each character about equally often, across refills of the pool', () => {
    const counts = new Map<string, number>();
    const n = 4000;
    const seen = new Set<string>();
    for (let i = 0; i < n; i += 1) {
      const s = randomAlnum(32);
      expect(s).toMatch(/^[A-Za-z0-9]{32}$/);
      seen.add(s);
      for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    // 128,000 characters (about 33 pools of 4 KiB): never a string twice, every character drawn.
    expect(seen.size).toBe(n);
    expect(counts.size).toBe(62);
    // Chi-square with 61 degrees of freedom; 140 is far beyond p = 1e-6 for uniform draws (a
    // biased reduction, b % 62 of every byte, scores about 800 here).
    const expected = (n * 32) / 62;
    const chi = [...counts.values()].reduce((s, k) => s + (k - expected) ** 2 / expected, 0);
    expect(chi).toBeLessThan(140);
  });

  it('shapes the identifiers as the protocol shows them', () => {
    const at = Date.UTC(2026, 10, 27, 9, 5, 7);
    expect(compactUtc(at)).toBe('20261127090507');
    expect(compactUtc(at + 999)).toBe('20261127090507');
    expect(compactUtc(at + 1000)).toBe('20261127090508');
    expect(compactUtc(at - 1)).toBe('20261127090506');
    expect(compactUtc(Date.UTC(1999, 11, 31, 23, 59, 59, 500))).toBe('19991231235959');
    expect(randomIds.paymentOrderNo(at)).toMatch(/^P20261127090507[0-9]{10}$/);
    expect(randomIds.cashierToken()).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(randomIds.nonce()).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(randomIds.notifyId()).toMatch(/^N[0-9a-f]{24}$/);
  });
});
