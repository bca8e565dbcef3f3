// Settlement on anvil where one order, one key or one state of the relayer used to wedge a
// network's settlements for good (ADR 0008, amendment of the thirteenth session). Each case has
// its own chain: a gateway settling Polygon (4) USDT and POL on it.
import solc from 'solc';
import type { Abi, Address, Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployedAddress } from '../src/adapters/chain/evm/clients.js';
import { NATIVE_COIN } from '../src/adapters/chain/evm/forwarder-plan.js';
import { evmRelayer } from '../src/adapters/chain/evm/relayer.js';
import { devnetAccount } from '../src/adapters/devnet/devnet.js';
import { Settler } from '../src/app/settle.js';
import type { SettlementSettings } from '../src/cli/config.js';
import { deploymentOn, mine, placeOrder, rpc, type PlacedOrder } from './chain-setup.js';
import { startTestChain, type TestChain } from './evm-chain.js';
import { startTestGateway, type TestGateway } from './harness.js';

const USDT = 1_000_000n;
const POL = 10n ** 18n;
const SETTINGS: SettlementSettings = { batchSize: 20, pollMs: 100, replaceAfterMs: 60_000, maxInFlight: 8, retryBaseMs: 1_000, leaseMs: 30_000 };

/** A contract of a case (Solidity source naming it `name`), compiled with solc's bundled compiler and deployed by the chain's relayer account. */
async function deployContract(chain: TestChain, source: string, name: string): Promise<Address> {
  const settings = { optimizer: { enabled: true, runs: 200 }, evmVersion: 'paris', outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } } };
  const out = JSON.parse(solc.compile(JSON.stringify({ language: 'Solidity', sources: { 'Case.sol': { content: source } }, settings }))) as { contracts: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string } } }>> };
  const c = out.contracts['Case.sol']![name]!;
  return (await deployedAddress(chain.relayer, await chain.relayer.wallet.deployContract({ abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` as Hex }))).address;
}

/** A USDT order of `units` whole USDT, paid and scanned until final (PAID). */
async function paidOrder(env: { chain: TestChain; usdt: Address; t: TestGateway }, units: bigint, confirmations: number): Promise<PlacedOrder> {
  const order = await placeOrder(env.t, { amount: String(units) });
  await env.chain.pay(env.usdt, order.address, units * USDT);
  await env.t.gateway.scanChain('4');
  await mine(env.chain, confirmations);
  await env.t.gateway.scanChain('4');
  return order;
}

/** A fresh chain with a 6-decimal USDT, and a gateway settling Polygon (4) on it with `relayerKey`; `setup` runs on the chain first. */
function onFreshChain(opts: { confirmations: number; relayerKey: Hex; settings?: Partial<SettlementSettings>; setup?: (chain: TestChain) => Promise<void> }) {
  const env = {} as { chain: TestChain; usdt: Address; t: TestGateway };
  beforeAll(async () => {
    env.chain = await startTestChain();
    env.usdt = await env.chain.deployToken({ name: 'Tether USD (test)', symbol: 'USDT', decimals: 6 });
    await opts.setup?.(env.chain);
    env.t = await startTestGateway({
      config: {
        ...deploymentOn(env.chain, { '4': { rpcUrls: [env.chain.node.rpcUrl], confirmations: opts.confirmations, contracts: { USDT: env.usdt } } }),
        relayers: { '4': { privateKey: opts.relayerKey, maxFeePerGas: 1_000_000_000_000n } },
        settlement: { ...SETTINGS, ...opts.settings },
      },
    });
  }, 60_000);
  afterAll(async () => {
    if (env.chain) await rpc(env.chain, 'evm_setAutomine', [true]).catch(() => undefined);
    await env.t?.close();
    await env.chain?.stop();
  });
  return env;
}

// One order whose native-coin receiver spends more gas on receiving than a distribution may use
// (1,000,000): it is set aside with the reason, and the other orders of its network settle; it
// does not make every pass fail on the same batch (any merchant could otherwise stop a network's
// settlements with a contract as seller_addr).
const SOURCE_GAS_HOG = `// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;
/// A contract wallet whose receive() does some bookkeeping: ~1.8M gas, well under a block.
contract HeavyWallet {
  uint256[80] private slots;
  receive() external payable { for (uint256 i = 0; i < 80; i++) slots[i] = msg.value + i + 1; }
}`;

describe('one heavy native receiver', () => {
  const CONFIRMATIONS = 2;
  let heavy: Address;
  const env = onFreshChain({ confirmations: CONFIRMATIONS, relayerKey: devnetAccount(7).privateKey, setup: async (chain) => { heavy = await deployContract(chain, SOURCE_GAS_HOG, 'HeavyWallet'); } });

  it('does not keep the other orders of the network from settling', async () => {
    const bad = await placeOrder(env.t, { amount: '2', currency: 'POL', overrides: { divide_detail: { seller_amount: '1', seller_addr: heavy, merchant_amount: '1' } } });
    const good = await placeOrder(env.t, { amount: '5' });
    await env.chain.pay(NATIVE_COIN, bad.address, 2n * POL);
    await env.chain.pay(env.usdt, good.address, 5n * USDT);
    await env.t.gateway.scanChain('4');
    await mine(env.chain, CONFIRMATIONS);
    await env.t.gateway.scanChain('4');
    expect((await env.t.gateway.store.orders.get(good.paymentOrderNo))!.state.status).toBe('PAID');
    expect((await env.t.gateway.store.orders.get(bad.paymentOrderNo))!.state.status).toBe('PAID');
    const errors: string[] = [];
    for (let pass = 0; pass < 5; pass += 1) {
      env.t.clock.advance(3600);
      await env.t.gateway.settle('4').catch((err: Error) => errors.push(err.message));
      await mine(env.chain, CONFIRMATIONS);
    }
    expect(errors).toEqual([]);
    expect((await env.t.gateway.store.settlements.get(good.paymentOrderNo))!.status).toBe('SETTLED');
    expect((await env.t.gateway.store.orders.get(good.paymentOrderNo))!.state.status).toBe('COMPLETED');
    const set = (await env.t.gateway.store.settlements.get(bad.paymentOrderNo))!;
    expect(set.status).toBe('DUE');
    expect(set.attempts).toBeGreaterThan(0);
    expect(set.lastError).toMatch(/its distribution needs \d+ gas, more than the 1000000 a distribution may use/);
  }, 60_000);
});

// A batch whose plans each fit under 1,000,000 gas alone but not together is halved, not taken for
// an endpoint's lie: the factory pays a receiver recurring in a batch once, with the sum of its
// shares (ADR 0009), so a receiver whose gas use grows with the value it receives makes exactly
// that happen on an honest node. Two native-coin orders naming one as seller_addr must not stop
// every settlement of the network.
const SOURCE_GAS_HOG_PAIR = `// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;
/// Spends 600k gas on a payment of up to 1 coin, 6M on a larger one.
contract ValueHeavyWallet {
  receive() external payable {
    uint256 target = msg.value > 1 ether ? 6_000_000 : 600_000;
    uint256 start = gasleft();
    while (start - gasleft() < target) {}
  }
}`;

describe('two orders naming one value-dependent receiver', () => {
  const CONFIRMATIONS = 2;
  let heavy: Address;
  const env = onFreshChain({ confirmations: CONFIRMATIONS, relayerKey: devnetAccount(7).privateKey, setup: async (chain) => { heavy = await deployContract(chain, SOURCE_GAS_HOG_PAIR, 'ValueHeavyWallet'); } });

  it('does not keep the other orders of the network from settling', async () => {
    const split = { divide_detail: { seller_amount: '0.6', seller_addr: heavy, merchant_amount: '0.4' } };
    const bad1 = await placeOrder(env.t, { amount: '1', currency: 'POL', overrides: split });
    const bad2 = await placeOrder(env.t, { amount: '1', currency: 'POL', overrides: split });
    const good = await placeOrder(env.t, { amount: '5' });
    await env.chain.pay(NATIVE_COIN, bad1.address, POL);
    await env.chain.pay(NATIVE_COIN, bad2.address, POL);
    await env.chain.pay(env.usdt, good.address, 5n * USDT);
    await env.t.gateway.scanChain('4');
    await mine(env.chain, CONFIRMATIONS);
    await env.t.gateway.scanChain('4');
    for (const o of [bad1, bad2, good]) expect((await env.t.gateway.store.orders.get(o.paymentOrderNo))!.state.status).toBe('PAID');
    const errors: string[] = [];
    for (let pass = 0; pass < 5; pass += 1) {
      env.t.clock.advance(3600);
      await env.t.gateway.settle('4').catch((err: Error) => errors.push(err.message));
      await mine(env.chain, CONFIRMATIONS);
    }
    expect(errors).toEqual([]);
    expect((await env.t.gateway.store.orders.get(good.paymentOrderNo))!.state.status).toBe('COMPLETED');
  }, 60_000);
});

// A hole below the relayer's open transactions is filled: a settlement transaction at nonce N
// reverts (recorded REVERTED, its orders given back) and a reorganisation then takes its block, with
// the next ones of ours, away. N is free again; signing at max(latest, highest open + 1) put every
// new transaction behind the hole, and nothing was ever mined again. The next one is signed at the
// lowest nonce from the chain's next one that no open transaction of ours holds.
const SOURCE_NONCE_GAP = `// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;
contract Toggle {
  bool public refuse;
  function set(bool r) external { refuse = r; }
  receive() external payable { require(!refuse, "refused"); }
}`;

describe('a hole in the relayer nonces', () => {
  const RELAYER = devnetAccount(7);
  const CONFIRMATIONS = 3;
  let toggle: Address;
  const env = onFreshChain({ confirmations: CONFIRMATIONS, relayerKey: RELAYER.privateKey, settings: { batchSize: 1 }, setup: async (chain) => { toggle = await deployContract(chain, SOURCE_NONCE_GAP, 'Toggle'); } });

  const status = async (o: PlacedOrder) => (await env.t.gateway.store.orders.get(o.paymentOrderNo))!.state.status;

  it('settles everything once the chain is honest again', async () => {
    const a = await placeOrder(env.t, { amount: '1', currency: 'POL', overrides: { divide_detail: { seller_amount: '0.5', seller_addr: toggle, merchant_amount: '0.5' } } });
    const b = await placeOrder(env.t, { amount: '2' });
    const c = await placeOrder(env.t, { amount: '3' });
    // A is paid (and due) a second before B and C: the due list sends A first.
    await env.chain.pay(NATIVE_COIN, a.address, POL);
    await env.t.gateway.scanChain('4');
    await mine(env.chain, CONFIRMATIONS);
    await env.t.gateway.scanChain('4');
    env.t.clock.advance(1);
    await env.chain.pay(env.usdt, b.address, 2n * USDT);
    await env.chain.pay(env.usdt, c.address, 3n * USDT);
    await env.t.gateway.scanChain('4');
    await mine(env.chain, CONFIRMATIONS);
    await env.t.gateway.scanChain('4');
    for (const o of [a, b, c]) expect(await status(o)).toBe('PAID');

    const snapshot = (await rpc(env.chain, 'evm_snapshot')) as string;
    await rpc(env.chain, 'evm_setAutomine', [false]);
    for (let i = 0; i < 3; i += 1) expect((await env.t.gateway.settle('4')).sent).toBe(1);
    const txOf = async (o: PlacedOrder) => (await env.t.gateway.store.settlements.getTx((await env.t.gateway.store.settlements.get(o.paymentOrderNo))!.txId!))!;
    const [na, nb, nc] = [(await txOf(a)).nonce!, (await txOf(b)).nonce!, (await txOf(c)).nonce!];
    expect(Math.min(nb, nc)).toBe(na + 1);
    // The toggle starts refusing before the block: A's transaction reverts, B and C succeed.
    await rpc(env.chain, 'anvil_setStorageAt', [toggle, '0x0', `0x${'0'.repeat(63)}1`]);
    await mine(env.chain, 1);
    await env.t.gateway.settle('4');
    expect((await env.t.gateway.store.settlements.get(a.paymentOrderNo))!.status).toBe('DUE'); // REVERTED, given back
    // A reorganisation takes that block away (and the toggle's change with it): nonce na is free again.
    await rpc(env.chain, 'evm_revert', [snapshot]);
    await rpc(env.chain, 'evm_setAutomine', [true]);
    await mine(env.chain, 1);

    // Up to six hours of passes, blocks mined all along.
    const done = async () => (await Promise.all([a, b, c].map(status))).every((s) => s === 'COMPLETED');
    for (let pass = 0; pass < 360 && !(await done()); pass += 1) {
      env.t.clock.advance(60);
      await env.t.gateway.settle('4').catch(() => undefined);
      await mine(env.chain, 1);
    }
    for (const o of [a, b, c]) expect(await status(o)).toBe('COMPLETED');
    expect(await env.chain.relayer.public.getTransactionCount({ address: RELAYER.address })).toBeGreaterThan(na);
    expect(await env.t.gateway.store.settlements.listOpenTxs('4')).toEqual([]);
  }, 240_000);
});

// After a relayer key change, a transaction of the old key that no node has any more (and that the
// old account can no longer pay for) is given back once stale: its orders go out with the new key.
// The old key's waiting transactions take no in-flight slot of the new one.
describe('a relayer key change', () => {
  const OLD = devnetAccount(7);
  const NEW = devnetAccount(6);
  const CONFIRMATIONS = 2;
  const env = onFreshChain({ confirmations: CONFIRMATIONS, relayerKey: OLD.privateKey });

  it('settles the orders of an old-key transaction that is gone from every node', async () => {
    const order = await paidOrder(env, 2n, CONFIRMATIONS);
    await rpc(env.chain, 'evm_setAutomine', [false]);
    expect((await env.t.gateway.settle('4')).sent).toBe(1);
    const txId = (await env.t.gateway.store.settlements.get(order.paymentOrderNo))!.txId!;
    // The old key's transaction leaves the mempool; the operator emptied the old account when rotating.
    await rpc(env.chain, 'anvil_dropTransaction', [txId]);
    await rpc(env.chain, 'anvil_setBalance', [OLD.address, '0x0']);
    await rpc(env.chain, 'evm_setAutomine', [true]);
    const network = env.t.gateway.config.deployment.networks.find((n) => n.id === '4')!;
    const rotated = new Settler({
      store: env.t.gateway.store, clock: env.t.clock, ids: env.t.gateway.ids,
      chain: evmRelayer({ rpcUrls: [env.chain.node.rpcUrl], chainId: env.chain.node.chainId, factory: env.chain.factory.factory, privateKey: NEW.privateKey }),
      network, log: env.t.gateway.logger, owner: 'rotated', leaseMs: 30_000,
      // max_in_flight 1 here: with the default 8, eight such transactions of the old key do the same.
      settings: { ...SETTINGS, maxInFlight: 1, maxFeePerGas: 1_000_000_000_000n },
    });
    // An order paid after the key change.
    const later = await placeOrder(env.t, { amount: '3' });
    await env.chain.pay(env.usdt, later.address, 3n * USDT);
    await env.t.gateway.scanChain('4');
    await mine(env.chain, CONFIRMATIONS);
    await env.t.gateway.scanChain('4');
    // A day of passes with the new key.
    for (let pass = 0; pass < 24; pass += 1) {
      env.t.clock.advance(3600);
      await rotated.settleOnce();
      await mine(env.chain, CONFIRMATIONS);
    }
    expect((await env.t.gateway.store.settlements.getTx(txId))!.status).toBe('DROPPED');
    expect((await env.t.gateway.store.orders.get(later.paymentOrderNo))!.state.status).toBe('COMPLETED');
    expect((await env.t.gateway.store.orders.get(order.paymentOrderNo))!.state.status).toBe('COMPLETED');
  }, 60_000);
});

// A relayer short of funds makes settlements wait (ADR 0008): a transaction that is merely stale
// because the account cannot pay it is broadcast again as it is, not re-signed with 12.5 % higher
// fees every replace_after_ms up to the cap, which the transaction, once the account is funded,
// would pay.
describe('a relayer short of funds', () => {
  const RELAYER = devnetAccount(7);
  const CONFIRMATIONS = 2;
  const env = onFreshChain({ confirmations: CONFIRMATIONS, relayerKey: RELAYER.privateKey });

  it('does not raise the fees of its pending transaction while it waits for funds', async () => {
    const order = await paidOrder(env, 2n, CONFIRMATIONS);
    const funded = await env.chain.relayer.public.getBalance({ address: RELAYER.address });
    await rpc(env.chain, 'evm_setAutomine', [false]);
    expect((await env.t.gateway.settle('4')).sent).toBe(1);
    const txId = (await env.t.gateway.store.settlements.get(order.paymentOrderNo))!.txId!;
    const first = (await env.t.gateway.store.settlements.getTx(txId))!;
    // The relayer's account is emptied (say, the operator's sweep) before the block: the transaction waits.
    await rpc(env.chain, 'anvil_setBalance', [RELAYER.address, '0x0']);
    // A node drops what the sender cannot pay for (geth's pool demotes and evicts it).
    await rpc(env.chain, 'anvil_dropTransaction', [txId]);
    // Two hours of passes (replace_after_ms is a minute here; 3 min by default: six hours).
    for (let pass = 0; pass < 120; pass += 1) {
      env.t.clock.advance(SETTINGS.replaceAfterMs / 1000);
      await env.t.gateway.settle('4');
    }
    const after = (await env.t.gateway.store.settlements.getTx(txId))!;
    expect(after.hashes).toEqual([txId]);
    expect([after.maxFeePerGas, after.maxPriorityFeePerGas]).toEqual([first.maxFeePerGas, first.maxPriorityFeePerGas]);
    // Funded again: what does the settlement pay?
    await rpc(env.chain, 'anvil_setBalance', [RELAYER.address, `0x${funded.toString(16)}`]);
    await rpc(env.chain, 'evm_setAutomine', [true]);
    await env.t.gateway.settle('4');
    await mine(env.chain, CONFIRMATIONS);
    await env.t.gateway.settle('4');
    const done = (await env.t.gateway.store.settlements.getTx(txId))!;
    const receipt = await env.chain.relayer.public.getTransactionReceipt({ hash: done.minedHash as `0x${string}` });
    expect(done.status).toBe('FINAL');
    expect(receipt.effectiveGasPrice <= first.maxFeePerGas).toBe(true);
    expect((await env.t.gateway.store.orders.get(order.paymentOrderNo))!.state.status).toBe('COMPLETED');
  }, 120_000);
});

// A pass slow on its RPC calls may outlive its lease: another instance takes over, and the pass
// must stop following transactions (its copies of their rows are older than what the other writes).
describe('a pass that outlives its lease', () => {
  const CONFIRMATIONS = 2;
  const env = onFreshChain({ confirmations: CONFIRMATIONS, relayerKey: devnetAccount(7).privateKey, settings: { batchSize: 1 } });

  it('stops following the open transactions once another instance holds the lease', async () => {
    const first = await paidOrder(env, 2n, CONFIRMATIONS);
    const second = await paidOrder(env, 3n, CONFIRMATIONS);
    await rpc(env.chain, 'evm_setAutomine', [false]);
    expect((await env.t.gateway.settle('4')).sent).toBe(1);
    expect((await env.t.gateway.settle('4')).sent).toBe(1);
    const open = await env.t.gateway.store.settlements.listOpenTxs('4');
    expect(open).toHaveLength(2);
    const network = env.t.gateway.config.deployment.networks.find((n) => n.id === '4')!;
    const relayer = evmRelayer({ rpcUrls: [env.chain.node.rpcUrl], chainId: env.chain.node.chainId, factory: env.chain.factory.factory, privateKey: devnetAccount(7).privateKey });
    const followed: string[] = [];
    const slow = new Settler({
      store: env.t.gateway.store,
      clock: env.t.clock,
      ids: env.t.gateway.ids,
      network,
      log: env.t.gateway.logger,
      owner: 'slow',
      leaseMs: 30_000,
      settings: { ...SETTINGS, batchSize: 1, maxFeePerGas: 1_000_000_000_000n },
      chain: {
        ...relayer,
        // The pass's first RPC answer comes after its lease ran out, and another instance took it.
        head: async () => {
          env.t.clock.advance(31);
          expect(await env.t.gateway.store.leases.acquire('settle:4', 'other', env.t.clock.nowMs(), env.t.clock.nowMs() + 30_000)).toBe(true);
          return relayer.head();
        },
        receipt: async (hash) => {
          followed.push(hash);
          return relayer.receipt(hash);
        },
      },
    });
    env.t.clock.advance(31);
    expect((await slow.settleOnce()).leased).toBe(true);
    // The first open transaction was being followed when the lease went; the second is left to the other instance.
    expect(open.some((t) => followed.includes(t.txHash))).toBe(true);
    expect(open.every((t) => followed.includes(t.txHash))).toBe(false);
    await rpc(env.chain, 'evm_setAutomine', [true]);
    for (const o of [first, second]) expect((await env.t.gateway.store.settlements.get(o.paymentOrderNo))!.status).toBe('SENT');
  });
});
