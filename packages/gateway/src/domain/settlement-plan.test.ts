import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { distribute, planFromJson, planToJson, settlementPlan, type PlanOption } from './settlement-plan.js';

const SELLER = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC';
const OTHER = '0x90f79Bf6EB2c4f870365E51cEf8ba6b2A2Aa3e6f';
const WALLET = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
const FEE = '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65';

const option = (over: Partial<PlanOption> = {}): PlanOption => ({ network: '4', currency: 'USDT', contract: '0xc2132d05d31c914a87c6611c10748aeb04b58e8f', amountBase: 10_500_000n, fee: 52_500n, split: null, ...over });

describe('settlement plan', () => {
  it('pays the merchant the amount less the fee when there is no split', () => {
    const plan = settlementPlan('P1', option(), WALLET, FEE);
    expect(plan.receivers).toEqual([
      { role: 'MERCHANT', address: WALLET, amount: 10_447_500n },
      { role: 'FEE', address: FEE, amount: 52_500n },
    ]);
    expect(plan).toMatchObject({ merchantIndex: 0, total: 10_500_000n, token: option().contract, network: '4', currency: 'USDT' });
  });

  it('lists seller, other receivers, merchant and fee; the fee comes out of the merchant share', () => {
    const split = { seller: { address: SELLER, amount: 6_000_000n }, merchant: 3_500_000n, others: [{ address: OTHER, amount: 1_000_000n }] };
    const plan = settlementPlan('P2', option({ split }), WALLET, FEE);
    expect(plan.receivers.map((r) => [r.role, r.amount])).toEqual([
      ['SELLER', 6_000_000n],
      ['OTHER', 1_000_000n],
      ['MERCHANT', 3_447_500n],
      ['FEE', 52_500n],
    ]);
    expect(plan.merchantIndex).toBe(2);
  });

  it('refuses options whose shares do not add up or whose fee is not below the merchant share', () => {
    expect(() => settlementPlan('P', option({ split: { seller: { address: SELLER, amount: 1n }, merchant: 10_000_000n, others: [] } }), WALLET, FEE)).toThrow(/sum/);
    expect(() => settlementPlan('P', option({ fee: 10_500_000n }), WALLET, FEE)).toThrow(/fee/);
    expect(() => settlementPlan('P', option({ fee: 0n }), WALLET, FEE)).toThrow(/fee/);
  });

  it('distributes exactly, gives an excess to the merchant and shares a shortfall pro rata with the dust to the merchant', () => {
    const split = { seller: { address: SELLER, amount: 6_000_000n }, merchant: 3_500_000n, others: [{ address: OTHER, amount: 1_000_000n }] };
    const plan = settlementPlan('P3', option({ split }), WALLET, FEE);
    expect(distribute(plan, 10_500_000n)).toEqual([6_000_000n, 1_000_000n, 3_447_500n, 52_500n]);
    expect(distribute(plan, 11_000_000n)).toEqual([6_000_000n, 1_000_000n, 3_947_500n, 52_500n]);
    // Half: 3,000,000 / 500,000 / 1,723,750 / 26,250 exactly.
    expect(distribute(plan, 5_250_000n)).toEqual([3_000_000n, 500_000n, 1_723_750n, 26_250n]);
    // 7 units: floor(7×6/10.5)=4, floor(7×1/10.5)=0, floor(7×3.4475/10.5)=2, floor(7×0.0525/10.5)=0; dust 1 → merchant.
    expect(distribute(plan, 7n)).toEqual([4n, 0n, 3n, 0n]);
    expect(distribute(plan, 0n)).toEqual([0n, 0n, 0n, 0n]);
  });

  it('always pays out exactly what was received, never a negative share, never more than the plan to a non-merchant', () => {
    const arb = fc.record({
      seller: fc.bigInt({ min: 1n, max: 10n ** 24n }),
      others: fc.array(fc.bigInt({ min: 1n, max: 10n ** 24n }), { maxLength: 5 }),
      merchant: fc.bigInt({ min: 2n, max: 10n ** 24n }),
      feePermille: fc.integer({ min: 1, max: 999 }),
      receivedPermille: fc.integer({ min: 0, max: 3000 }),
    });
    fc.assert(
      fc.property(arb, ({ seller, others, merchant, feePermille, receivedPermille }) => {
        const fee = (merchant * BigInt(feePermille)) / 1000n || 1n;
        fc.pre(fee < merchant);
        const amountBase = seller + merchant + others.reduce((s, o) => s + o, 0n);
        const split = { seller: { address: SELLER, amount: seller }, merchant, others: others.map((amount) => ({ address: OTHER, amount })) };
        const plan = settlementPlan('P', option({ amountBase, fee, split }), WALLET, FEE);
        expect(plan.receivers.reduce((s, r) => s + r.amount, 0n)).toBe(amountBase);
        const received = (amountBase * BigInt(receivedPermille)) / 1000n;
        const out = distribute(plan, received);
        expect(out.reduce((s, a) => s + a, 0n)).toBe(received);
        out.forEach((a, i) => {
          expect(a >= 0n).toBe(true);
          if (i !== plan.merchantIndex) expect(a <= plan.receivers[i]!.amount).toBe(true);
        });
        // The fee is never above what was received, nor above the planned fee.
        expect(out.at(-1)! <= fee && out.at(-1)! <= received).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('planToJson / planFromJson', () => {
  it('round-trips a plan exactly, bigints included', () => {
    const plan = settlementPlan(
      'P1',
      { network: '4', currency: 'USDT', contract: '0x' + 'ab'.repeat(20), amountBase: 10_000_000_000_000_000_000_001n, fee: 5n, split: { seller: { address: '0x' + '11'.repeat(20), amount: 1n }, merchant: 10_000_000_000_000_000_000_000n, others: [] } },
      '0x' + '22'.repeat(20),
      '0x' + '33'.repeat(20),
    );
    expect(planFromJson(planToJson(plan))).toEqual(plan);
  });

  it('refuses a document that is not a plan', () => {
    expect(() => planFromJson('{"a":1}')).toThrow(TypeError);
  });
});
