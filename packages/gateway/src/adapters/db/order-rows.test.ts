import { describe, expect, it } from 'vitest';
import { paymentToRow, pushPaymentValues } from './order-rows.js';

describe('payment rows', () => {
  it('gives a multi-row insert the values of paymentToRow in its column order', () => {
    const p = {
      paymentOrderNo: 'P1',
      network: '4' as const,
      currency: 'USDT',
      txHash: '0xabc',
      logIndex: 3,
      blockNumber: 77,
      blockHash: '0xdef',
      address: '0x0000000000000000000000000000000000000001',
      amount: 123_456_789_012_345_678_901_234_567_890n,
      confirmations: 5,
      status: 'SEEN' as const,
      createdAt: 1,
      updatedAt: 2,
    };
    const out: unknown[] = ['before'];
    pushPaymentValues(out, p);
    expect(out).toEqual(['before', ...Object.values(paymentToRow(p))]);
  });
});
