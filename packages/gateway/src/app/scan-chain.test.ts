import { describe, expect, it } from 'vitest';
import { earlierOf } from './scan-chain.js';

const block = (number: number, hash = `0x${number.toString(16).padStart(64, '0')}`) => ({ number, hash });

describe('earlierOf: how far every answer of a pass went', () => {
  it('is the lower of two answers\' last blocks, whichever comes first; null is no answer', () => {
    expect(earlierOf(null, null)).toBeNull();
    expect(earlierOf(null, block(7))).toEqual(block(7));
    expect(earlierOf(block(7), null)).toEqual(block(7));
    expect(earlierOf(block(7), block(9))).toEqual(block(7));
    expect(earlierOf(block(9), block(7))).toEqual(block(7));
    expect(earlierOf(block(7), block(7))).toEqual(block(7));
  });

  it('refuses two answers that disagree on the hash of the same block (two forks)', () => {
    expect(() => earlierOf(block(7), block(7, `0x${'ab'.repeat(32)}`))).toThrow(/disagree on block 7/);
    // Different blocks may have any hashes.
    expect(earlierOf(block(7), block(8, `0x${'ab'.repeat(32)}`))).toEqual(block(7));
  });
});
