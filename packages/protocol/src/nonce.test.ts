import { describe, expect, it } from 'vitest';
import { NONCE_PATTERN, generateNonce } from './index.js';

describe('NONCE_PATTERN', () => {
  it('accepts 1 to 64 characters from [A-Za-z0-9_-]', () => {
    for (const ok of ['a', 'A-_9', 'x'.repeat(64), 'Zq3kX9b2LmN8pR4tV6wY1aC5eG7iK0oS']) expect(NONCE_PATTERN.test(ok)).toBe(true);
  });

  it('refuses empty, too long and other characters', () => {
    for (const bad of ['', 'x'.repeat(65), 'a b', 'a+b', 'a/b', 'a=', 'é', 'a\n', '\na']) expect(NONCE_PATTERN.test(bad)).toBe(false);
  });
});

describe('generateNonce', () => {
  it('makes 32 alphanumeric characters by default, each time different', () => {
    const a = generateNonce();
    expect(a).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(NONCE_PATTERN.test(a)).toBe(true);
    expect(generateNonce()).not.toBe(a);
  });

  it('is deterministic with injected randomness and honours the length', () => {
    const source = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => i);
    expect(generateNonce(source, 5)).toBe('ABCDE');
    expect(generateNonce(source)).toBe(generateNonce(source));
    expect(generateNonce(undefined, 64)).toHaveLength(64);
  });

  it('refuses lengths the server would not accept', () => {
    for (const bad of [0, 65, 1.5, -1]) expect(() => generateNonce(undefined, bad)).toThrow(RangeError);
  });

  it('uses all 62 characters about evenly (no modulo bias)', () => {
    const counts = new Map<string, number>();
    const text = Array.from({ length: 200 }, () => generateNonce(undefined, 64)).join('');
    for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    expect(counts.size).toBe(62);
    // 12,800 draws over 62 symbols: about 206 each; a +/-40% band is far outside random variation.
    for (const n of counts.values()) {
      expect(n).toBeGreaterThan(124);
      expect(n).toBeLessThan(289);
    }
  });
});
