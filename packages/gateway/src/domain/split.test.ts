import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rational } from './money.js';
import { ADDR } from './order-fixtures.suite.js';
import type { SplitPlan } from './split.js';
import { allocateSplit, splitToWire, validateSplit } from './split.js';

describe('validateSplit', () => {
  const ctx = { merchantNo: 'M1', precision: 2, total: 1000n, caAddresses: [] };
  it('returns the split in pricing units', () => {
    const r = validateSplit(
      { form: 'divide_detail', detail: { sellerAmount: '7.5', sellerAddr: ADDR.seller, merchantAmount: '2.00', otherDetails: [{ receiverAddr: ADDR.other1, amount: '0.5' }] } },
      ctx,
    );
    expect(r).toEqual({ ok: true, split: { seller: { address: ADDR.seller, amount: 750n }, merchantAmount: 200n, others: [{ address: ADDR.other1, amount: 50n }] } });
  });
  it('names the field in its messages', () => {
    const r = validateSplit({ form: 'divide_detail', detail: { sellerAmount: '7.5', sellerAddr: ADDR.seller, merchantAmount: '2.5', otherDetails: [{ receiverAddr: ADDR.other1, amount: '0' }] } }, ctx);
    expect(r).toEqual({ ok: false, code: 41014, message: 'divide_detail.other_details[0].amount must be a positive decimal amount' });
  });
});

describe('validateSplit: addresses nothing can be paid out to (41032)', () => {
  const detail = (sellerAddr: string, receiverAddr: string = ADDR.other1) => ({ form: 'divide_detail' as const, detail: { sellerAmount: '7.5', sellerAddr, merchantAmount: '2.00', otherDetails: [{ receiverAddr, amount: '0.5' }] } });
  const ctx = { merchantNo: 'M1', precision: 2, total: 1000n, caAddresses: [], unpayable: [{ address: ADDR.other2, what: 'the forwarder factory of network 4' }] };
  it('refuses the zero address, in any field', () => {
    expect(validateSplit(detail('0x0000000000000000000000000000000000000000'), ctx)).toEqual({ ok: false, code: 41032, message: 'divide_detail.seller_addr is the zero address: nothing can be paid out to it' });
    expect(validateSplit(detail(ADDR.seller, '0x0000000000000000000000000000000000000000'), ctx)).toMatchObject({ ok: false, code: 41032 });
  });
  it('refuses an address the context names (a forwarder factory), in any case', () => {
    expect(validateSplit(detail(ADDR.other2.toLowerCase()), ctx)).toEqual({ ok: false, code: 41032, message: 'divide_detail.seller_addr is the forwarder factory of network 4: nothing can be paid out to it' });
    expect(validateSplit(detail(ADDR.seller, ADDR.other2), ctx)).toMatchObject({ ok: false, code: 41032 });
    expect(validateSplit(detail(ADDR.other2), { ...ctx, unpayable: [] })).toMatchObject({ ok: true });
  });
});

describe('splitToWire', () => {
  it('prints canonical amounts', () => {
    const s: SplitPlan = { seller: { address: ADDR.seller, amount: 800n }, merchantAmount: 250n, others: [] };
    expect(splitToWire(s, 2)).toEqual({ seller_amount: '8', seller_addr: ADDR.seller, merchant_amount: '2.5', other_details: [] });
  });
});

describe('allocateSplit', () => {
  it('rounds non-merchant shares down and gives the merchant the remainder', () => {
    const s: SplitPlan = { seller: { address: ADDR.seller, amount: 1n }, merchantAmount: 1n, others: [{ address: ADDR.other1, amount: 1n }] };
    // one pricing unit = 1/3 base unit; total 3 units = 1 base unit exactly, rounded up to 2
    expect(allocateSplit(s, 2n, rational(1n, 3n))).toEqual({ seller: { address: ADDR.seller, amount: 0n }, merchant: 2n, others: [{ address: ADDR.other1, amount: 0n }] });
  });
  it('sums exactly to the converted total with no negative share, for any rate', () => {
    const units = fc.bigInt({ min: 1n, max: 10n ** 12n });
    fc.assert(
      fc.property(units, units, fc.array(units, { maxLength: 5 }), fc.bigInt({ min: 1n, max: 10n ** 20n }), fc.bigInt({ min: 1n, max: 10n ** 20n }), (seller, merchant, others, n, d) => {
        const toBase = rational(n, d);
        const total = seller + merchant + others.reduce((a, b) => a + b, 0n);
        // the caller's total: converted and rounded up
        const amountBase = (total * toBase.num + toBase.den - 1n) / toBase.den;
        const s: SplitPlan = { seller: { address: ADDR.seller, amount: seller }, merchantAmount: merchant, others: others.map((a) => ({ address: ADDR.other1, amount: a })) };
        const out = allocateSplit(s, amountBase, toBase);
        const sum = out.seller.amount + out.merchant + out.others.reduce((a, b) => a + b.amount, 0n);
        expect(sum).toBe(amountBase);
        expect(out.seller.amount >= 0n && out.others.every((o) => o.amount >= 0n)).toBe(true);
        // the merchant never gets less than its exact converted share
        expect(out.merchant * toBase.den >= merchant * toBase.num).toBe(true);
      }),
    );
  });
});
