// Settling with the forwarder factory on a real chain (its own anvil, automine): a plan pays out
// once, batches settle several orders, malformed plans and strangers are refused. Prints the gas
// figures the settlement work plans with (not asserted: they move with compiler and fork).
import { erc20Abi, parseEventLogs, type Address } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshAddress, startTestChain, testPlan, type TestChain } from '../../../../test/evm-chain.js';
import { confirmed } from './clients.js';
import { forwarderFactoryAbi } from './contract-artifacts.js';
import { abiPlan, distributeCalldata, isDistributed } from './forwarder-factory.js';
import { NATIVE_COIN, type ForwarderPlan } from './forwarder-plan.js';

let chain: TestChain;
let usdt6: Address;
let usdt18: Address;
beforeAll(async () => {
  chain = await startTestChain();
  usdt6 = await chain.deployToken({ name: 'Tether USD', symbol: 'USDT', decimals: 6, noReturn: true });
  usdt18 = await chain.deployToken({ name: 'Tether USD', symbol: 'USDT', decimals: 18 });
});
afterAll(async () => {
  await chain?.stop();
});

const sum = (xs: readonly bigint[]) => xs.reduce((s, x) => s + x, 0n);
const balances = (plan: ForwarderPlan) => Promise.all(plan.receivers.map((r) => chain.balanceOf(plan.token, r)));

/** Sends the factory raw calldata (a plan the TypeScript checks would refuse to build). */
async function distributeRaw(plan: { orderRef: `0x${string}`; token: Address; receivers: Address[]; amounts: bigint[]; merchantIndex: bigint }) {
  return chain.relayer.wallet.writeContract({ address: chain.factory.factory, abi: forwarderFactoryAbi, functionName: 'distribute', args: [plan] });
}

describe('a plan pays out exactly once', () => {
  it('refuses a second distribution, even after more funds arrived; later funds stay at the forwarder', async () => {
    const plan = testPlan(NATIVE_COIN, [10n ** 18n, 10n ** 17n, 10n ** 16n]);
    const address = chain.addressOf(plan);
    await chain.pay(NATIVE_COIN, address, 11n * 10n ** 17n + 10n ** 16n);
    expect(await isDistributed(chain.relayer.public, chain.factory.factory, plan)).toBe(false);
    await chain.distribute(plan);
    expect(await isDistributed(chain.relayer.public, chain.factory.factory, plan)).toBe(true);
    await chain.pay(NATIVE_COIN, address, 5n); // accepted: the forwarder's one byte of code is a STOP
    expect(await chain.relayer.public.getCode({ address })).toBe('0x00');
    await expect(chain.distribute(plan)).rejects.toThrow(/AlreadyDistributed/);
    expect(await chain.balanceOf(NATIVE_COIN, address)).toBe(5n);
    expect(await balances(plan)).toEqual(plan.amounts);
  });

  it('refuses to distribute nothing, which would otherwise mark the plan distributed', async () => {
    const plan = testPlan(usdt18, [1n, 2n, 3n]);
    await expect(chain.distribute(plan)).rejects.toThrow(/NothingToDistribute/);
    expect(await isDistributed(chain.relayer.public, chain.factory.factory, plan)).toBe(false);
    expect(await chain.relayer.public.getCode({ address: chain.addressOf(plan) })).toBeUndefined();
  });

  it('moves a forwarder’s funds only while the factory creates it', async () => {
    const plan = testPlan(usdt6, [100n, 200n]);
    const address = chain.addressOf(plan);
    await chain.pay(usdt6, address, 300n);
    await chain.distribute(plan);
    await chain.pay(usdt6, address, 50n);
    // The forwarder has no function left; the implementation refuses to run outside a creation.
    const stranger = chain.payer.wallet;
    await stranger.sendTransaction({ to: address, data: '0x' });
    await expect(stranger.sendTransaction({ to: chain.factory.implementation, data: '0x' })).rejects.toThrow(/DirectCall|revert/);
    expect(await chain.balanceOf(usdt6, address)).toBe(50n);
    // The factory reports nothing pending and takes no native coin between settlements.
    await expect(chain.relayer.public.readContract({ address: chain.factory.factory, abi: forwarderFactoryAbi, functionName: 'pending' })).rejects.toThrow(/NotSettling/);
    await expect(stranger.sendTransaction({ to: chain.factory.factory, value: 1n })).rejects.toThrow(/NotSettling|revert/);
  });

  it('keeps nothing in the factory: a batch pays out exactly what it pulled in', async () => {
    const plans = [testPlan(usdt6, [100n, 200n]), testPlan(NATIVE_COIN, [10n, 20n]), testPlan(usdt6, [1n, 2n, 3n])];
    for (const p of plans) await chain.pay(p.token, chain.addressOf(p), sum(p.amounts) + 7n);
    await chain.distribute(plans);
    expect(await chain.balanceOf(usdt6, chain.factory.factory)).toBe(0n);
    expect(await chain.balanceOf(NATIVE_COIN, chain.factory.factory)).toBe(0n);
    for (const p of plans) expect(await chain.balanceOf(p.token, chain.addressOf(p))).toBe(0n);
  });
});

describe('refusals', () => {
  it('refuses malformed plans (InvalidPlan)', async () => {
    const base = { orderRef: testPlan(usdt6, [1n]).orderRef, token: usdt6 };
    const [a, b] = [freshAddress(), freshAddress()];
    await expect(distributeRaw({ ...base, receivers: [a, b], amounts: [1n], merchantIndex: 0n })).rejects.toThrow(/InvalidPlan/);
    await expect(distributeRaw({ ...base, receivers: [a, b], amounts: [1n, 2n], merchantIndex: 2n })).rejects.toThrow(/InvalidPlan/);
    await expect(distributeRaw({ ...base, receivers: [], amounts: [], merchantIndex: 0n })).rejects.toThrow(/InvalidPlan/);
    // The factory itself as a receiver would keep that share for good.
    const toFactory = { ...testPlan(usdt6, [6n, 4n]), receivers: [a, chain.factory.factory] };
    await chain.pay(usdt6, chain.addressOf(toFactory), 10n);
    await expect(chain.distribute(toFactory)).rejects.toThrow(/InvalidPlan/);
    expect(await chain.balanceOf(usdt6, chain.addressOf(toFactory))).toBe(10n);
  });

  it('reverts as a whole when a receiver refuses the native coin, leaving the funds in place', async () => {
    const plan = { ...testPlan(NATIVE_COIN, [700n, 300n]), receivers: [freshAddress(), usdt18] }; // a token contract has no receive()
    const address = chain.addressOf(plan);
    await chain.pay(NATIVE_COIN, address, 1000n);
    await expect(chain.distribute(plan)).rejects.toThrow(/NativeTransferFailed/);
    expect(await chain.balanceOf(NATIVE_COIN, address)).toBe(1000n);
  });
});

describe('distributeBatch', () => {
  it('settles several orders in one transaction, each by its own plan', async () => {
    const exact = testPlan(usdt6, [6_000_000n, 3_000_000n, 1_000_000n]);
    const u = 10n ** 12n; // 6 decimals -> 18
    const short = testPlan(usdt18, [6_000_000n * u, 3_000_001n * u, 1_000_002n * u], 1);
    const over = testPlan(NATIVE_COIN, [10n ** 15n, 2n * 10n ** 15n, 3n * 10n ** 15n], 1);
    await chain.pay(usdt6, chain.addressOf(exact), 10_000_000n);
    await chain.pay(usdt18, chain.addressOf(short), 7_000_000n * u + 1n);
    await chain.pay(NATIVE_COIN, chain.addressOf(over), 6n * 10n ** 15n + 42n);
    const receipt = await chain.distribute([exact, short, over]);
    expect(await balances(exact)).toEqual(exact.amounts);
    expect(await balances(short)).toEqual([4_199_998_740_000_378_000n, 2_100_000_069_999_979_001n, 700_001_189_999_643_000n]);
    expect(await balances(over)).toEqual([10n ** 15n, 2n * 10n ** 15n + 42n, 3n * 10n ** 15n]);
    const logs = parseEventLogs({ abi: forwarderFactoryAbi, logs: receipt.logs, eventName: 'Distribution' });
    expect(logs.map((l) => l.args.orderRef)).toEqual([exact.orderRef, short.orderRef, over.orderRef]);
  });

  it('skips a plan already distributed (by anyone, first) or holding nothing, and settles the rest', async () => {
    const done = testPlan(usdt6, [5n, 5n]);
    const empty = testPlan(usdt6, [2n, 2n]);
    const pending = testPlan(usdt6, [7n, 3n]);
    await chain.pay(usdt6, chain.addressOf(done), 10n);
    await chain.pay(usdt6, chain.addressOf(pending), 10n);
    await chain.distribute(done); // a copy of the plan sent ahead of the relayer's batch
    const receipt = await chain.distribute([done, pending, empty]);
    expect(await balances(pending)).toEqual([7n, 3n]);
    expect(await balances(done)).toEqual([5n, 5n]); // paid once
    const logs = parseEventLogs({ abi: forwarderFactoryAbi, logs: receipt.logs });
    expect(logs.filter((l) => l.eventName === 'Skipped').map((l) => l.args)).toEqual([
      { orderRef: done.orderRef, forwarder: chain.addressOf(done), reason: 1 },
      { orderRef: empty.orderRef, forwarder: chain.addressOf(empty), reason: 2 },
    ]);
    expect(logs.filter((l) => l.eventName === 'Distribution').map((l) => l.args.orderRef)).toEqual([pending.orderRef]);
    expect(await isDistributed(chain.relayer.public, chain.factory.factory, empty)).toBe(false);
    // The gateway's calldata for one plan is a batch of one: skipped too, not reverted (a plan
    // copied from the mempool must not burn the relayer's gas)…
    const alone = await confirmed(chain.relayer, await chain.relayer.wallet.sendTransaction({ to: chain.factory.factory, data: distributeCalldata([done]) }));
    expect(alone.status).toBe('success');
    expect(parseEventLogs({ abi: forwarderFactoryAbi, logs: alone.logs }).map((l) => [l.eventName, (l.args as { reason?: number }).reason])).toEqual([['Skipped', 1]]);
    // …while `distribute` (one plan, for anyone calling the factory directly) refuses it.
    await expect(chain.distribute(done)).rejects.toThrow(/AlreadyDistributed|revert/);
  });
});

describe('gas (printed for the settlement work, not asserted)', () => {
  it('measures distribute for 3 receivers against a plain ERC-20 transfer', async () => {
    const token = await chain.deployToken({ name: 'Tether USD', symbol: 'USDT', decimals: 6 });
    const amounts = [6_000_000n, 3_000_000n, 1_000_000n];
    const gas: Record<string, bigint> = {};
    const fresh = testPlan(token, amounts);
    await chain.pay(token, chain.addressOf(fresh), sum(amounts));
    gas['distribute, ERC-20, 3 receivers with no balance yet'] = (await chain.distribute(fresh)).gasUsed;
    // Receivers that already hold the token (the usual case: the fee address, a merchant wallet).
    const warm = { ...testPlan(token, amounts), receivers: fresh.receivers };
    await chain.pay(token, chain.addressOf(warm), sum(amounts));
    gas['distribute, ERC-20, 3 receivers holding the token'] = (await chain.distribute(warm)).gasUsed;
    const native = testPlan(NATIVE_COIN, amounts);
    await chain.pay(NATIVE_COIN, chain.addressOf(native), sum(amounts));
    gas['distribute, native coin, 3 fresh receivers'] = (await chain.distribute(native)).gasUsed;
    const batch = Array.from({ length: 5 }, () => ({ ...testPlan(token, amounts), receivers: fresh.receivers }));
    for (const p of batch) await chain.pay(token, chain.addressOf(p), sum(amounts));
    gas['distributeBatch of 5, ERC-20, per order'] = (await chain.distribute(batch)).gasUsed / 5n;
    const transfer = async (to: Address) =>
      (await confirmed(chain.payer, await chain.payer.wallet.writeContract({ address: token, abi: erc20Abi, functionName: 'transfer', args: [to, 1_000_000n] }))).gasUsed;
    gas['plain ERC-20 transfer to a fresh address'] = await transfer(freshAddress());
    gas['plain ERC-20 transfer to a holder'] = await transfer(fresh.receivers[0] as Address);
    console.log(`forwarder gas (TestToken, solc 0.8.37, paris, anvil):\n${Object.entries(gas).map(([k, v]) => `  ${k}: ${v}`).join('\n')}`);
    for (const v of Object.values(gas)) expect(v).toBeGreaterThan(21_000n);
    expect(await chain.relayer.public.readContract({ address: chain.factory.factory, abi: forwarderFactoryAbi, functionName: 'distributed', args: [abiPlan(fresh)] })).toBe(true);
  });
});
