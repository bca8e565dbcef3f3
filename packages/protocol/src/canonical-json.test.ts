import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from './index.js';

describe('canonicalJson', () => {
  it('sorts object keys recursively, keeping array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}');
  });

  it('gives the same text for bodies that differ only in key order and whitespace', () => {
    const a = JSON.parse('{"request_no":"r1","divide_detail":{"seller_amount":"8","merchant_amount":"2"}}');
    const b = JSON.parse('{ "divide_detail": { "merchant_amount": "2", "seller_amount": "8" }, "request_no": "r1" }');
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(canonicalJson(a)).not.toBe(canonicalJson({ ...b, request_no: 'r2' }));
  });

  it('sorts integer-like keys as strings and keeps a "__proto__" key as data', () => {
    expect(canonicalJson({ 10: 'a', 9: 'b', x: 'c' })).toBe('{"10":"a","9":"b","x":"c"}');
    expect(canonicalJson(JSON.parse('{"__proto__":{"b":1,"a":2},"a":0}'))).toBe('{"__proto__":{"a":2,"b":1},"a":0}');
  });

  it('escapes strings and keys as JSON.stringify does', () => {
    expect(canonicalJson({ 'k"\n': 'é\u2028"\\' })).toBe(JSON.stringify({ 'k"\n': 'é\u2028"\\' }));
  });

  it('drops undefined members, writes null for undefined array items and non-finite numbers', () => {
    expect(canonicalJson({ a: undefined, b: [undefined, NaN, Infinity], c: () => 1 })).toBe('{"b":[null,null,null]}');
    expect(canonicalJson(new Date(0))).toBe('"1970-01-01T00:00:00.000Z"');
  });

  it('refuses bigint, circular structures and values with no JSON form', () => {
    expect(() => canonicalJson({ a: 1n })).toThrow(TypeError);
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    expect(() => canonicalJson(loop)).toThrow(/circular/);
    expect(() => canonicalJson(undefined)).toThrow(TypeError);
  });

  it('allows the same object twice when it is not a cycle', () => {
    const shared = { x: 1 };
    expect(canonicalJson([shared, shared])).toBe('[{"x":1},{"x":1}]');
  });

  it('parses back to an equal value and ignores key order (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = canonicalJson(v);
        expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(v)));
        expect(canonicalJson(JSON.parse(text))).toBe(text);
        if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
          const reversed = Object.fromEntries(Object.entries(v).reverse());
          expect(canonicalJson(reversed)).toBe(text);
        }
      }),
    );
  });
});
