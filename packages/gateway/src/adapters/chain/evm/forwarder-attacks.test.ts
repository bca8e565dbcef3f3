// Attacks on the forwarder factory (ADR 0009) on a real chain (its own anvil, automine): anyone may
// call `distribute`/`distributeBatch` with any plan, so a caller controls the token contract, the
// receivers and the batch's other plans. A token or a native receiver re-entering the factory, a
// token lying about balances, a fee-on-transfer token and the init code run outside the factory
// must never move funds of another plan's deposit address or of the factory mid-call. The attack
// contracts live in contracts/test/ and are compiled here with the pinned solc (same settings as
// contracts/build.mjs), so the committed artifacts stay as they are.
import { readFileSync } from 'node:fs';
import solc from 'solc';
import { encodeFunctionData, getAddress, keccak256, parseEventLogs, toFunctionSelector, type Abi, type Address, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshAddress, startTestChain, testPlan, type TestChain } from '../../../../test/evm-chain.js';
import { confirmed, deployedAddress } from './clients.js';
import { forwarderFactoryAbi } from './contract-artifacts.js';
import { abiPlan, isDistributed } from './forwarder-factory.js';
import { forwarderInitCode, NATIVE_COIN, planSalt, type ForwarderPlan } from './forwarder-plan.js';

const ATTACKERS = ['ReentrantToken', 'ReentrantReceiver', 'LyingToken', 'FeeOnTransferToken', 'Impostor'] as const;
type Attacker = (typeof ATTACKERS)[number];
interface Compiled {
  abi: Abi;
  bytecode: Hex;
}
interface SolcOutput {
  errors?: { severity: string; formattedMessage: string }[];
  contracts?: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string } } }>>;
}

/** Compiles contracts/test/*.sol as contracts/build.mjs compiles the real ones (paris, optimizer on). */
function compileAttackers(): Record<Attacker, Compiled> {
  const sources = Object.fromEntries(ATTACKERS.map((name) => [`${name}.sol`, { content: readFileSync(new URL(`../../../../contracts/test/${name}.sol`, import.meta.url), 'utf8') }]));
  const settings = { optimizer: { enabled: true, runs: 10_000 }, evmVersion: 'paris', outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } } };
  const output = JSON.parse(solc.compile(JSON.stringify({ language: 'Solidity', sources, settings }))) as SolcOutput;
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) throw new Error(errors.map((e) => e.formattedMessage).join('\n'));
  const compiled = {} as Record<Attacker, Compiled>;
  for (const name of ATTACKERS) {
    const c = output.contracts?.[`${name}.sol`]?.[name];
    if (!c) throw new Error(`${name}.sol produced no contract ${name}`);
    compiled[name] = { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` };
  }
  return compiled;
}

let chain: TestChain;
let usdt: Address;
let attackers: Record<Attacker, Compiled>;
beforeAll(async () => {
  attackers = compileAttackers();
  chain = await startTestChain();
  usdt = await chain.deployToken({ name: 'Tether USD', symbol: 'USDT', decimals: 6, noReturn: true });
});
afterAll(async () => {
  await chain?.stop();
});

const REENTERED = toFunctionSelector('Reentered()');
const sum = (xs: readonly bigint[]) => xs.reduce((s, x) => s + x, 0n);
const balances = (plan: ForwarderPlan) => Promise.all(plan.receivers.map((r) => chain.balanceOf(plan.token, r)));

async function deploy(name: Attacker, args: readonly unknown[] = []): Promise<Address> {
  const { abi, bytecode } = attackers[name];
  const hash = await chain.relayer.wallet.deployContract({ abi, bytecode, args });
  return (await deployedAddress(chain.relayer, hash)).address;
}

/** `gas`: for a call whose inner failure does not revert it (estimation would find the gas that makes it fail). */
async function write(name: Attacker, address: Address, functionName: string, args: readonly unknown[] = [], gas?: bigint): Promise<void> {
  await confirmed(chain.relayer, await chain.relayer.wallet.writeContract({ address, abi: attackers[name].abi, functionName, args, gas }));
}

async function read<T>(name: Attacker, address: Address, functionName: string, args: readonly unknown[] = []): Promise<T> {
  return (await chain.relayer.public.readContract({ address, abi: attackers[name].abi, functionName, args })) as T;
}

const batchCalldata = (plans: readonly ForwarderPlan[]): Hex => encodeFunctionData({ abi: forwarderFactoryAbi, functionName: 'distributeBatch', args: [plans.map(abiPlan)] });
const singleCalldata = (plan: ForwarderPlan): Hex => encodeFunctionData({ abi: forwarderFactoryAbi, functionName: 'distribute', args: [abiPlan(plan)] });

/** A funded USDT plan of someone else (the victim), over fresh receivers. */
async function victimPlan(amounts: readonly bigint[] = [700_000n, 300_000n]): Promise<ForwarderPlan> {
  const plan = testPlan(usdt, amounts);
  await chain.pay(usdt, chain.addressOf(plan), sum(amounts));
  return plan;
}

/** The victim's plan is untouched: funds at its deposit address, no code there, receivers unpaid. */
async function expectUntouched(plan: ForwarderPlan): Promise<void> {
  expect(await chain.balanceOf(plan.token, chain.addressOf(plan))).toBe(sum(plan.amounts));
  expect(await isDistributed(chain.relayer.public, chain.factory.factory, plan)).toBe(false);
  expect(await balances(plan)).toEqual(plan.amounts.map(() => 0n));
}

/** The factory holds none of `token` after the call (tests that strand funds there come last in their kind). */
async function expectFactoryEmpty(token: Address = usdt): Promise<void> {
  expect(await chain.balanceOf(token, chain.factory.factory)).toBe(0n);
}

describe('a token whose transfer re-enters the factory', () => {
  async function evilPlan(): Promise<{ token: Address; plan: ForwarderPlan }> {
    const token = await deploy('ReentrantToken', [chain.factory.factory]);
    const plan = testPlan(token, [60n, 40n]);
    await write('ReentrantToken', token, 'mint', [chain.addressOf(plan), 100n]);
    return { token, plan };
  }

  it('while the factory pays out (holding a victim’s USDT): the batch reverts and nothing moves', async () => {
    const victim = await victimPlan();
    const other = await victimPlan();
    const { token, plan } = await evilPlan();
    await write('ReentrantToken', token, 'arm', [batchCalldata([other]), true, chain.factory.factory]);
    // The token bubbles Reentered; the factory's safe transfer reports it as TokenTransferFailed.
    await expect(chain.distribute([victim, plan])).rejects.toThrow(/TokenTransferFailed|Reentered/);
    await expectUntouched(victim);
    await expectUntouched(other);
    await expectFactoryEmpty();
  });

  it('while the factory pays out, the re-entry swallowed: refused (Reentered), every plan paid exactly, the factory keeps nothing', async () => {
    const victim = await victimPlan();
    const other = await victimPlan();
    const { token, plan } = await evilPlan();
    await write('ReentrantToken', token, 'arm', [singleCalldata(other), false, chain.factory.factory]);
    await chain.distribute([victim, plan]);
    expect(await read<bigint>('ReentrantToken', token, 'attempts')).toBe(2n); // one per payout of the token: two receivers
    expect(await read<boolean>('ReentrantToken', token, 'lastOk')).toBe(false);
    expect(await read<Hex>('ReentrantToken', token, 'lastResult')).toBe(REENTERED);
    expect(await balances(victim)).toEqual(victim.amounts);
    expect(await balances(plan)).toEqual(plan.amounts);
    await expectUntouched(other);
    await expectFactoryEmpty();
  });

  it('while its forwarder is created (the factory mid-batch holds a victim’s USDT): the batch reverts and nothing moves', async () => {
    const victim = await victimPlan();
    const other = await victimPlan();
    const { token, plan } = await evilPlan();
    await write('ReentrantToken', token, 'arm', [batchCalldata([other]), true, chain.addressOf(plan)]);
    // Reentered becomes the forwarder's TokenTransferFailed, which the init code and the factory
    // pass on to the caller.
    await expect(chain.distribute([victim, plan])).rejects.toThrow(/TokenTransferFailed/);
    await expectUntouched(victim);
    await expectUntouched(other);
    await expectFactoryEmpty();
  });

  it('while its forwarder is created, the re-entry swallowed: refused (Reentered), every plan paid exactly', async () => {
    const victim = await victimPlan();
    const other = await victimPlan();
    const { token, plan } = await evilPlan();
    await write('ReentrantToken', token, 'arm', [batchCalldata([other, victim]), false, chain.addressOf(plan)]);
    await chain.distribute([victim, plan]);
    expect(await read<bigint>('ReentrantToken', token, 'attempts')).toBe(1n);
    expect(await read<Hex>('ReentrantToken', token, 'lastResult')).toBe(REENTERED);
    expect(await balances(victim)).toEqual(victim.amounts);
    expect(await balances(plan)).toEqual(plan.amounts);
    await expectUntouched(other);
    await expectFactoryEmpty();
  });
});

describe('a native-coin receiver whose receive() re-enters the factory', () => {
  async function nativePlans(receiver: Address): Promise<{ victim: ForwarderPlan; plan: ForwarderPlan }> {
    const victim = testPlan(NATIVE_COIN, [10n ** 15n, 2n * 10n ** 15n]);
    const plan = { ...testPlan(NATIVE_COIN, [5n * 10n ** 14n, 10n ** 14n], 0), receivers: [receiver, freshAddress()] };
    await chain.pay(NATIVE_COIN, chain.addressOf(victim), sum(victim.amounts));
    await chain.pay(NATIVE_COIN, chain.addressOf(plan), sum(plan.amounts));
    return { victim, plan };
  }

  it('bubbling the refusal: the batch reverts (NativeTransferFailed) and nothing moves', async () => {
    const receiver = await deploy('ReentrantReceiver', [chain.factory.factory]);
    const other = await victimPlan();
    await write('ReentrantReceiver', receiver, 'arm', [batchCalldata([other]), true, 0n]);
    const { victim, plan } = await nativePlans(receiver);
    await expect(chain.distribute([plan, victim])).rejects.toThrow(/NativeTransferFailed|Reentered/);
    expect(await chain.balanceOf(NATIVE_COIN, chain.addressOf(victim))).toBe(sum(victim.amounts));
    expect(await chain.balanceOf(NATIVE_COIN, chain.addressOf(plan))).toBe(sum(plan.amounts));
    await expectUntouched(other);
    await expectFactoryEmpty(NATIVE_COIN);
    await expectFactoryEmpty();
  });

  it('swallowing the refusal: refused (Reentered), every plan paid exactly, the factory keeps nothing', async () => {
    const receiver = await deploy('ReentrantReceiver', [chain.factory.factory]);
    const other = await victimPlan();
    const { victim, plan } = await nativePlans(receiver);
    // It tries to settle the victim's plan again (already pulled in this call) and another one.
    await write('ReentrantReceiver', receiver, 'arm', [batchCalldata([other, victim]), false, 0n]);
    await chain.distribute([victim, plan]);
    expect(await read<bigint>('ReentrantReceiver', receiver, 'attempts')).toBe(1n);
    expect(await read<Hex>('ReentrantReceiver', receiver, 'lastResult')).toBe(REENTERED);
    expect(await balances(victim)).toEqual(victim.amounts);
    expect(await balances(plan)).toEqual(plan.amounts);
    await expectUntouched(other);
    await expectFactoryEmpty(NATIVE_COIN);
    await expectFactoryEmpty();
  });

  it('coin pushed back into the factory while it pays out is refused (NotSettling); the factory keeps nothing', async () => {
    const receiver = await deploy('ReentrantReceiver', [chain.factory.factory]);
    await write('ReentrantReceiver', receiver, 'arm', ['0x', false, 12345n]);
    const { victim, plan } = await nativePlans(receiver);
    await chain.distribute([plan, victim]);
    expect(await read<boolean>('ReentrantReceiver', receiver, 'pushBackOk')).toBe(false);
    expect(await chain.balanceOf(NATIVE_COIN, chain.factory.factory)).toBe(0n);
    expect(await balances(victim)).toEqual(victim.amounts);
    expect(await balances(plan)).toEqual(plan.amounts);
    await expect(chain.relayer.wallet.sendTransaction({ to: chain.factory.factory, value: 1n })).rejects.toThrow(/NotSettling|revert/);
  });
});

describe('a plan with a lying token', () => {
  it('cannot extract the real token the factory holds mid-batch, before or after the real plan', async () => {
    for (const lyingFirst of [false, true]) {
      const victim = await victimPlan([6_000_000n, 4_000_000n]);
      const lying = await deploy('LyingToken', [chain.factory.factory]);
      // It claims exactly what the factory holds of the real token once the victim is pulled in.
      await write('LyingToken', lying, 'set', [sum(victim.amounts), usdt]);
      const attacker = freshAddress();
      const plan = { ...testPlan(lying, [1n]), receivers: [attacker] };
      await chain.distribute(lyingFirst ? [plan, victim] : [victim, plan]);
      expect(await read<bigint>('LyingToken', lying, 'payouts')).toBe(1n); // the factory did pay the lie, in the lying token
      expect(await read<boolean>('LyingToken', lying, 'stoleByTransfer')).toBe(false);
      expect(await read<boolean>('LyingToken', lying, 'stoleByTransferFrom')).toBe(false);
      expect(await chain.balanceOf(usdt, attacker)).toBe(0n);
      expect(await balances(victim)).toEqual(victim.amounts);
      await expectFactoryEmpty();
    }
  });

  it('cannot extract real tokens stranded at the factory either', async () => {
    await chain.pay(usdt, chain.factory.factory, 999n); // sent there by mistake: nothing can move it
    const victim = await victimPlan();
    const lying = await deploy('LyingToken', [chain.factory.factory]);
    await write('LyingToken', lying, 'set', [sum(victim.amounts) + 999n, usdt]);
    const attacker = freshAddress();
    await chain.distribute([victim, { ...testPlan(lying, [1n]), receivers: [attacker] }]);
    expect(await chain.balanceOf(usdt, attacker)).toBe(0n);
    expect(await balances(victim)).toEqual(victim.amounts);
    expect(await chain.balanceOf(usdt, chain.factory.factory)).toBe(999n);
  });
});

describe('a fee-on-transfer token', () => {
  it('settles what actually arrived at the factory; the batch’s other plans are paid exactly', async () => {
    const fot = await deploy('FeeOnTransferToken');
    const plan = testPlan(fot, [600n, 400n]);
    await write('FeeOnTransferToken', fot, 'mint', [chain.addressOf(plan), 1000n]);
    const victim = await victimPlan();
    const receipt = await chain.distribute([victim, plan]);
    // 1000 sent, 990 arrived: shared pro rata (594 + 396); each payout loses 1% again on the way.
    const distributions = parseEventLogs({ abi: forwarderFactoryAbi, logs: receipt.logs, eventName: 'Distribution' }).map((l) => [l.args.orderRef, l.args.balance]);
    expect(distributions).toEqual([
      [victim.orderRef, sum(victim.amounts)],
      [plan.orderRef, 990n],
    ]);
    expect(await balances(plan)).toEqual([589n, 393n]);
    expect(await chain.balanceOf(fot, chain.factory.factory)).toBe(0n);
    expect(await balances(victim)).toEqual(victim.amounts);
    // USDT stranded at the factory by an earlier test stays as it was: shares come from what arrived.
    expect(await chain.balanceOf(usdt, chain.factory.factory)).toBe(999n);
  });
});

describe('the init code outside the factory', () => {
  it('CREATE2 by another contract with a victim plan’s salt lands elsewhere and moves none of the victim’s funds', async () => {
    const victim = await victimPlan();
    const deposit = chain.addressOf(victim);
    const impostor = await deploy('Impostor');
    const salt = planSalt(victim);
    const elsewhere = await read<Address>('Impostor', impostor, 'predict', [chain.factory.implementation, salt]);
    expect(getAddress(elsewhere)).not.toBe(getAddress(deposit));
    // Asking for the victim's balance: the clone it creates holds nothing, so the init code reverts.
    const claimed = sum(victim.amounts);
    expect(await chain.relayer.public.simulateContract({ address: impostor, abi: attackers.Impostor.abi, functionName: 'clone', args: [chain.factory.implementation, salt, usdt, claimed], account: chain.relayer.wallet.account }).then((r) => r.result)).toBe('0x0000000000000000000000000000000000000000');
    // Asking for nothing: created, at its own address.
    await write('Impostor', impostor, 'clone', [chain.factory.implementation, salt, usdt, 0n], 1_000_000n);
    expect(await chain.relayer.public.getCode({ address: elsewhere })).toBe('0x00');
    await expectUntouched(victim);
    // The victim's plan still settles normally through the factory.
    await chain.distribute(victim);
    expect(await balances(victim)).toEqual(victim.amounts);
  });

  it('is the 46 bytes reviewed by hand: DELEGATECALL, JUMPI to 0x28, revert data bubbled, RETURN of one zero byte', async () => {
    const impl = chain.factory.implementation;
    const code = Buffer.from(forwarderInitCode(impl).slice(2), 'hex');
    expect(code.length).toBe(46);
    expect(keccak256(forwarderInitCode(impl))).toBe(chain.factory.initCodeHash);
    expect(`0x${code.subarray(5, 25).toString('hex')}`).toBe(impl.toLowerCase());
    // Opcodes with their PUSH data, the implementation address elided.
    const ops: string[] = [];
    for (let pc = 0; pc < code.length; pc += 1) {
      const op = code[pc]!;
      if (op >= 0x60 && op <= 0x7f) {
        const n = op - 0x5f;
        ops.push(`${pc}:${op.toString(16)}${n === 20 ? '<impl>' : code.subarray(pc + 1, pc + 1 + n).toString('hex')}`);
        pc += n;
      } else ops.push(`${pc}:${op.toString(16)}`);
    }
    expect(ops).toEqual([
      '0:3d', '1:3d', '2:3d', '3:3d', // RETURNDATASIZE (0) x4: retSize, retOffset, argsSize, argsOffset
      '4:73<impl>', '25:5a', '26:f4', // PUSH20 impl, GAS, DELEGATECALL
      '27:6028', '29:57', // PUSH1 0x28, JUMPI (on success)
      '30:3d', '31:6000', '33:6000', '35:3e', // RETURNDATACOPY(0, 0, RETURNDATASIZE)
      '36:3d', '37:6000', '39:fd', // REVERT(0, RETURNDATASIZE)
      '40:5b', '41:6001', '43:6000', '45:f3', // JUMPDEST (0x28 = 40), RETURN(0, 1): memory is untouched, so one zero byte
    ]);
  });
});
