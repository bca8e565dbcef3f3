import { describe, expect, it } from 'vitest';
import { checkMerchant } from './merchant.js';
import { merchant } from './order-fixtures.suite.js';

describe('checkMerchant', () => {
  it('passes an active merchant with online payment owning the AppID', () => {
    const m = merchant();
    expect(checkMerchant(m, 'M1001', 'M1001')).toEqual({ ok: true, merchant: m });
  });
  it('answers 40008, 40007, 41002, 41039 in that order', () => {
    const off = merchant({ status: 'INACTIVE', onlinePayment: false });
    expect(checkMerchant(null, 'M1001', 'M404')).toMatchObject({ code: 40008 });
    expect(checkMerchant(off, 'M2002', 'M1001')).toMatchObject({ code: 40007 });
    expect(checkMerchant(off, 'M1001', 'M1001')).toMatchObject({ code: 41002 });
    expect(checkMerchant(merchant({ onlinePayment: false }), 'M1001', 'M1001')).toMatchObject({ code: 41039 });
  });
});
