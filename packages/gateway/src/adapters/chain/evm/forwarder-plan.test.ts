// The off-chain side of deposit addresses, without a chain: the plan's encoding word by word,
// CREATE2 by its definition, and the plans that must never be handed out. (That the factory
// computes the same is checked on anvil in forwarder-factory.test.ts.)
import { concat, getAddress, keccak256, pad, size, slice, stringToBytes, toHex, zeroAddress, type Address } from 'viem';
import { describe, expect, it } from 'vitest';
import { settlementPlan } from '../../../domain/settlement-plan.js';
import { checkedPlan, encodePlan, forwarderAddress, forwarderInitCode, forwarderInitCodeHash, forwarderPlan, NATIVE_COIN, orderRef, planSalt, type ForwarderPlan } from './forwarder-plan.js';

const SELLER = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC';
const WALLET = '0x70997970c51812dc3a010c7d01b50e0d17dc79c8'; // lower case on purpose
const FEE = '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65';
const USDT = '0xc2132d05d31c914a87c6611c10748aeb04b58e8f';
const FACTORY: Address = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
const IMPLEMENTATION: Address = '0xa16E02E87b7454126E5E10d957A927A7F5B5d2be';

const word = (v: bigint | string) => pad(typeof v === 'bigint' ? toHex(v) : (v as `0x${string}`), { size: 32 });

const plan: ForwarderPlan = {
  orderRef: orderRef('P20260101000001'),
  token: getAddress(USDT),
  receivers: [SELLER, getAddress(WALLET), FEE],
  amounts: [6_000_000n, 3_447_500n, 52_500n],
  merchantIndex: 1n,
};

describe('plan encoding', () => {
  it('is abi.encode of the Plan struct: tuple offset, head, then the two arrays', () => {
    const expected = concat([
      word(0x20n), // abi.encode of one dynamic tuple starts with its offset
      plan.orderRef,
      word(plan.token),
      word(0xa0n), // receivers after the 5-word head
      word(0xa0n + 32n * 4n), // amounts after receivers' length and 3 items
      word(1n),
      word(3n),
      ...plan.receivers.map((r) => word(r)),
      word(3n),
      ...plan.amounts.map((a) => word(a)),
    ]);
    expect(encodePlan(plan)).toBe(expected.toLowerCase());
    expect(planSalt(plan)).toBe(keccak256(expected));
  });

  it('references the order by the keccak256 of its number in UTF-8', () => {
    expect(orderRef('P20260101000001')).toBe(keccak256(stringToBytes('P20260101000001')));
    expect(orderRef('a')).not.toBe(orderRef('b'));
  });

  it('is built from the domain plan: checksummed receivers in order, amounts, merchant index, native coin as address(0)', () => {
    const option = { network: '4' as const, currency: 'USDT', contract: USDT, amountBase: 9_500_000n, fee: 52_500n, split: { seller: { address: SELLER, amount: 6_000_000n }, merchant: 3_500_000n, others: [] } };
    const fp = forwarderPlan(settlementPlan('P20260101000001', option, WALLET, FEE));
    expect(fp).toEqual(plan);
    const native = forwarderPlan(settlementPlan('P2', { ...option, currency: 'POL', contract: null }, WALLET, FEE));
    expect(native.token).toBe(NATIVE_COIN);
    expect(NATIVE_COIN).toBe(zeroAddress);
  });
});

describe('deposit address', () => {
  it('comes from the 46-byte init code that runs the implementation once and leaves one byte of code', () => {
    const code = forwarderInitCode(IMPLEMENTATION);
    expect(size(code)).toBe(46);
    expect(slice(code, 0, 5)).toBe('0x3d3d3d3d73'); // RETURNDATASIZE x4 (zeros), PUSH20
    expect(slice(code, 5, 25)).toBe(IMPLEMENTATION.toLowerCase());
    expect(slice(code, 25)).toBe('0x5af46028573d600060003e3d6000fd5b60016000f3');
    expect(forwarderInitCodeHash(IMPLEMENTATION)).toBe(keccak256(code));
  });

  it('is keccak256(0xff ++ factory ++ salt ++ init code hash)[12:], from the implementation or the reported hash', () => {
    const hash = forwarderInitCodeHash(IMPLEMENTATION);
    const byDefinition = getAddress(slice(keccak256(concat(['0xff', FACTORY, planSalt(plan), hash])), 12));
    expect(forwarderAddress(FACTORY, { implementation: IMPLEMENTATION }, plan)).toBe(byDefinition);
    expect(forwarderAddress(FACTORY, { initCodeHash: hash }, plan)).toBe(byDefinition);
  });

  it('differs per factory and per plan', () => {
    const a = forwarderAddress(FACTORY, { implementation: IMPLEMENTATION }, plan);
    expect(forwarderAddress(IMPLEMENTATION, { implementation: IMPLEMENTATION }, plan)).not.toBe(a);
    expect(forwarderAddress(FACTORY, { implementation: IMPLEMENTATION }, { ...plan, amounts: [6_000_000n, 3_447_499n, 52_501n] })).not.toBe(a);
  });
});

describe('plans never handed out (the factory would refuse them and strand the funds)', () => {
  const bad: [string, Partial<ForwarderPlan>][] = [
    ['no receiver', { receivers: [], amounts: [] }],
    ['amounts not matching receivers', { amounts: [1n, 2n] }],
    ['merchant index out of range', { merchantIndex: 3n }],
    ['a zero receiver', { receivers: [SELLER, zeroAddress, FEE] }],
    ['a receiver that is not an address', { receivers: [SELLER, '0x1234', FEE] as Address[] }],
    ['a negative amount', { amounts: [1n, -1n, 1n] }],
    ['a total of 2^128 or more', { amounts: [1n << 127n, 1n << 127n, 0n] }],
    ['an order reference that is not 32 bytes', { orderRef: '0x1234' }],
  ];
  it.each(bad)('refuses %s', (_, change) => {
    expect(() => checkedPlan({ ...plan, ...change })).toThrow(RangeError);
  });

  it('accepts a sound plan unchanged', () => {
    expect(checkedPlan(plan)).toBe(plan);
  });
});
