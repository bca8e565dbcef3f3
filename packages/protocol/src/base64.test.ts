import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBase64, encodeBase64 } from './index.js';
import { isBase64 } from './base64.js';

describe('decodeBase64', () => {
  it('decodes padded and unpadded standard Base64 alike', () => {
    expect(decodeBase64('aGk=')?.toString()).toBe('hi');
    expect(decodeBase64('aGk')?.toString()).toBe('hi');
    expect(decodeBase64('aA==')?.toString()).toBe('h');
    expect(decodeBase64('aA')?.toString()).toBe('h');
    expect(decodeBase64('aGV5')?.toString()).toBe('hey');
    expect(decodeBase64('+/8=')).toEqual(Buffer.from([0xfb, 0xff]));
    expect(decodeBase64('')).toEqual(Buffer.alloc(0));
  });

  it.each(['a', 'aGk==', 'aG=k', '=', '====', 'aGk=aGk=', 'a===', 'aGk!', '-_8', 'aG k', 'aGk=\n', ' aGk', 'aé=='])(
    'returns null for malformed %j',
    (s) => {
      expect(decodeBase64(s)).toBeNull();
    },
  );

  it('round-trips any bytes, with or without the padding', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const text = encodeBase64(bytes);
        expect(text.length % 4).toBe(0);
        expect(decodeBase64(text)).toEqual(Buffer.from(bytes));
        expect(decodeBase64(text.replace(/=+$/, ''))).toEqual(Buffer.from(bytes));
      }),
    );
  });

  it('accepts exactly the strings of the RFC 4648 shape (whole quads, then 2 or 3 characters, padding optional)', () => {
    const shape = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;
    const chars = fc.constantFrom('A', 'z', '0', '+', '/', '=', '-', '_', ' ', '\n', 'é');
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 14 }).map((cs) => cs.join('')), (s) => {
        expect(isBase64(s)).toBe(shape.test(s));
        expect(decodeBase64(s) !== null).toBe(shape.test(s));
      }),
      { numRuns: 20_000 },
    );
  });

  it('encodes only the viewed bytes of a Uint8Array', () => {
    const backing = new Uint8Array([1, 2, 3, 4, 5]);
    expect(encodeBase64(backing.subarray(1, 3))).toBe(Buffer.from([2, 3]).toString('base64'));
  });
});
