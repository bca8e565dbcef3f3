// The forwarder factory on a real chain (its own anvil, automine): deposit addresses agree with
// the off-chain computation, and what was sent to an address is paid out by the plan's rule,
// checked to the base unit for 6- and 18-decimal tokens, a token without a return value, and
// the native coin.
import { erc20Abi, parseEventLogs, type Address } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distribute as domainDistribute } from '../../../domain/settlement-plan.js';
import { freshAddress, startTestChain, testPlan, type TestChain } from '../../../../test/evm-chain.js';
import { forwarderFactoryAbi } from './contract-artifacts.js';
import { abiPlan, readForwarderCode } from './forwarder-factory.js';
import { forwarderAddress, forwarderInitCodeHash, NATIVE_COIN, type ForwarderPlan } from './forwarder-plan.js';

let chain: TestChain;
beforeAll(async () => {
  chain = await startTestChain();
});
afterAll(async () => {
  await chain?.stop();
});

const sum = (xs: readonly bigint[]) => xs.reduce((s, x) => s + x, 0n);

/** Pays `paid` to the plan's address, distributes, and returns what each receiver got. */
async function settle(plan: ForwarderPlan, paid: bigint): Promise<bigint[]> {
  const address = chain.addressOf(plan);
  await chain.pay(plan.token, address, paid);
  expect(await chain.relayer.public.getCode({ address })).toBeUndefined(); // funds wait at an address without code
  await chain.distribute(plan);
  expect(await chain.balanceOf(plan.token, address)).toBe(0n);
  return Promise.all(plan.receivers.map((r) => chain.balanceOf(plan.token, r)));
}

/** What the domain says each receiver gets: the contract must agree to the base unit. */
function expected(plan: ForwarderPlan, received: bigint): bigint[] {
  const receivers = plan.receivers.map((address, i) => ({ role: 'OTHER' as const, address, amount: plan.amounts[i] ?? 0n }));
  return domainDistribute({ receivers, merchantIndex: Number(plan.merchantIndex), total: sum(plan.amounts) }, received);
}

describe('deposit addresses', () => {
  it('the factory reports the implementation it created and the init code hash computed off-chain', async () => {
    const reported = await readForwarderCode(chain.relayer.public, chain.factory.factory);
    expect(reported.implementation).toBe(chain.factory.implementation);
    expect(reported.initCodeHash).toBe(forwarderInitCodeHash(chain.factory.implementation));
    expect((await chain.relayer.public.getCode({ address: chain.factory.implementation }))?.length).toBeGreaterThan(2);
  });

  it('the off-chain address equals factory.forwarderAddress(plan) for many kinds of plan', async () => {
    const token = freshAddress();
    const plans = [
      testPlan(token, [1n], 0),
      testPlan(token, [8_000_000n, 1_500_000n, 490_000n, 10_000n]),
      testPlan(NATIVE_COIN, [10n ** 18n, 0n, 5n], 2),
      testPlan(token, Array.from({ length: 20 }, (_, i) => 10n ** 30n + BigInt(i)), 17),
    ];
    for (const plan of plans) {
      const onChain = await chain.relayer.public.readContract({ address: chain.factory.factory, abi: forwarderFactoryAbi, functionName: 'forwarderAddress', args: [abiPlan(plan)] });
      expect(onChain).toBe(chain.addressOf(plan));
      // The same from the hash the factory reports instead of the implementation address.
      expect(forwarderAddress(chain.factory.factory, { initCodeHash: chain.factory.initCodeHash }, plan)).toBe(onChain);
    }
    expect(new Set(plans.map((p) => chain.addressOf(p))).size).toBe(plans.length);
  });

  it('any change to the plan is another address, so funds sent for one plan cannot be paid out by another', async () => {
    const token = await chain.deployToken({ name: 'Tether USD', symbol: 'USDT', decimals: 6 });
    const plan = testPlan(token, [7_000_000n, 2_950_000n, 50_000n]);
    const attacker = freshAddress();
    const variants: ForwarderPlan[] = [
      { ...plan, receivers: plan.receivers.map((r, i) => (i === 0 ? attacker : r)) },
      { ...plan, amounts: [7_000_001n, 2_949_999n, 50_000n] },
      { ...plan, merchantIndex: 0n },
      { ...plan, token: NATIVE_COIN },
      { ...plan, orderRef: testPlan(token, [1n]).orderRef },
    ];
    const address = chain.addressOf(plan);
    for (const v of variants) expect(chain.addressOf(v)).not.toBe(address);
    await chain.pay(token, address, 10_000_000n);
    await expect(chain.distribute(variants[0] as ForwarderPlan)).rejects.toThrow(/NothingToDistribute/);
    expect(await chain.balanceOf(token, attacker)).toBe(0n);
    expect(await chain.balanceOf(token, address)).toBe(10_000_000n);
    await chain.distribute(plan);
    expect(await Promise.all(plan.receivers.map((r) => chain.balanceOf(token, r)))).toEqual(plan.amounts);
  });
});

describe.each([
  { decimals: 6, noReturn: false },
  { decimals: 18, noReturn: false },
  { decimals: 6, noReturn: true },
])('ERC-20 with $decimals decimals (transfer without a return value: $noReturn)', ({ decimals, noReturn }) => {
  let token: Address;
  // Seller 6.000000, merchant 3.000001, fee 1.000002 (in whole tokens): shares of a shortfall
  // do not divide evenly, so the dust rule shows.
  const unit = 10n ** BigInt(decimals - 6);
  const amounts = [6_000_000n * unit, 3_000_001n * unit, 1_000_002n * unit];
  beforeAll(async () => {
    token = await chain.deployToken({ name: 'Test', symbol: 'TST', decimals, noReturn });
  });

  it('pays every receiver its amount exactly when the balance is the plan total', async () => {
    const plan = testPlan(token, amounts, 1);
    expect(await settle(plan, sum(amounts))).toEqual(amounts);
  });

  it('gives the excess to the merchant', async () => {
    const plan = testPlan(token, amounts, 1);
    const got = await settle(plan, sum(amounts) + 123_456_789n * unit + 1n);
    expect(got).toEqual([amounts[0], (amounts[1] ?? 0n) + 123_456_789n * unit + 1n, amounts[2]]);
  });

  it('shares a shortfall pro rata, rounding each share down and giving the dust to the merchant', async () => {
    const plan = testPlan(token, amounts, 1);
    const paid = 7_000_000n * unit + (decimals === 18 ? 1n : 0n);
    const got = await settle(plan, paid);
    expect(got).toEqual(expected(plan, paid));
    expect(sum(got)).toBe(paid);
    if (decimals === 6) expect(got).toEqual([4_199_998n, 2_100_001n, 700_001n]); // dust 1 to the merchant
    else expect(got).toEqual([4_199_998_740_000_378_000n, 2_100_000_069_999_979_001n, 700_001_189_999_643_000n]);
  });

  it('agrees with the domain rule for small and odd balances', async () => {
    for (const paid of [1n, 2n, 10n ** BigInt(decimals) / 3n, sum(amounts) - 1n]) {
      const plan = testPlan(token, amounts, 2);
      expect(await settle(plan, paid)).toEqual(expected(plan, paid));
    }
  });
});

describe('native coin', () => {
  const amounts = [8n * 10n ** 17n, 15n * 10n ** 16n + 7n, 5n * 10n ** 16n - 7n];

  it('pays exact amounts', async () => {
    const plan = testPlan(NATIVE_COIN, amounts, 1);
    expect(await settle(plan, sum(amounts))).toEqual(amounts);
  });

  it('gives the excess to the merchant', async () => {
    const plan = testPlan(NATIVE_COIN, amounts, 1);
    expect(await settle(plan, sum(amounts) + 999n)).toEqual([amounts[0], (amounts[1] ?? 0n) + 999n, amounts[2]]);
  });

  it('shares a shortfall pro rata with the dust to the merchant', async () => {
    const plan = testPlan(NATIVE_COIN, amounts, 1);
    const paid = sum(amounts) / 3n + 1n;
    const got = await settle(plan, paid);
    expect(got).toEqual(expected(plan, paid));
    expect(sum(got)).toBe(paid);
  });
});

describe('events', () => {
  it('emits one Distribution; the money moves forwarder → factory → each receiver with a share', async () => {
    const token = await chain.deployToken({ name: 'USD Coin', symbol: 'USDC', decimals: 6 });
    const plan = testPlan(token, [5_000_000n, 0n, 2_000_000n, 1_000_000n], 2);
    const address = chain.addressOf(plan);
    await chain.pay(token, address, 8_000_005n);
    const receipt = await chain.distribute(plan);
    const logs = parseEventLogs({ abi: forwarderFactoryAbi, logs: receipt.logs });
    const transfers = parseEventLogs({ abi: erc20Abi, logs: receipt.logs, eventName: 'Transfer' }).map((l) => l.args);
    // The zero share is skipped; the merchant's includes the excess of 5.
    const factory = chain.factory.factory;
    expect(transfers).toEqual([
      { from: address, to: factory, value: 8_000_005n },
      { from: factory, to: plan.receivers[0], value: 5_000_000n },
      { from: factory, to: plan.receivers[2], value: 2_000_005n },
      { from: factory, to: plan.receivers[3], value: 1_000_000n },
    ]);
    const distributions = logs.filter((l) => l.eventName === 'Distribution').map((l) => l.args);
    expect(distributions).toEqual([{ orderRef: plan.orderRef, forwarder: address, token, balance: 8_000_005n, planned: 8_000_000n }]);
  });
});
