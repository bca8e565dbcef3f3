import { ErrorCodes, isErrorCode } from '@sparkpay/protocol';
import { describe, expect, it } from 'vitest';
import { OrderErrors } from './result.js';

describe('OrderErrors', () => {
  it.each(Object.entries(OrderErrors))('%s = %i is that code of the protocol catalogue', (name, code) => {
    expect(isErrorCode(code)).toBe(true);
    expect((ErrorCodes as Record<string, number>)[name]).toBe(code);
  });
});
