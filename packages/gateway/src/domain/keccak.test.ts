import { describe, expect, it } from 'vitest';
import { asciiBytes, keccak256, sha3v256, toHex } from './keccak.js';

describe('keccak256', () => {
  it('matches the known vectors', () => {
    expect(toHex(keccak256(new Uint8Array()))).toBe('c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470');
    expect(toHex(keccak256(asciiBytes('abc')))).toBe('4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45');
    expect(toHex(keccak256(asciiBytes('The quick brown fox jumps over the lazy dog')))).toBe('4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15');
  });
  it('absorbs several blocks (FIPS 202 SHA3-256 vectors through the same sponge)', () => {
    expect(toHex(sha3v256(new Uint8Array()))).toBe('a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a');
    // 200 bytes of 0xa3: the FIPS 202 example spanning two 136-byte blocks
    expect(toHex(sha3v256(new Uint8Array(200).fill(0xa3)))).toBe('79f38adec5c20307a98ef76e8324afbfd46cfd81b22e3973c65fa1bd9de31787');
    // 135 and 136 bytes: the padding byte alone and a whole extra block
    expect(toHex(keccak256(new Uint8Array(136)))).not.toBe(toHex(keccak256(new Uint8Array(135))));
  });
  it('refuses non-ASCII input to asciiBytes', () => {
    expect(() => asciiBytes('é')).toThrow(RangeError);
  });
});
