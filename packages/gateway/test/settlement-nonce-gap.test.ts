// A hole below the relayer's open transactions is filled: a settlement transaction at nonce N
// reverts (recorded REVERTED, its orders given back) and a reorganisation then takes its block, with
// the next ones of ours, away. N is free again; signing at max(latest, highest open + 1) put every
// new transaction behind the hole, and nothing was ever mined again. The next one is signed at the
// lowest nonce from the chain's next one that no open transaction of ours holds.
import solc from 'solc';
import type { Abi, Address, Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployedAddress } from '../src/adapters/chain/evm/clients.js';
import { NATIVE_COIN } from '../src/adapters/chain/evm/forwarder-plan.js';
import { devnetAccount } from '../src/adapters/devnet/devnet.js';
import { deploymentOn, mine, placeOrder, rpc, type PlacedOrder } from './chain-setup.js';
import { startTestChain, type TestChain } from './evm-chain.js';
import { startTestGateway, type TestGateway } from './harness.js';

const SOURCE = `// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;
contract Toggle {
  bool public refuse;
  function set(bool r) external { refuse = r; }
  receive() external payable { require(!refuse, "refused"); }
}`;
function compile(): { abi: Abi; bytecode: Hex } {
  const settings = { optimizer: { enabled: true, runs: 200 }, evmVersion: 'paris', outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } } };
  const out = JSON.parse(solc.compile(JSON.stringify({ language: 'Solidity', sources: { 'T.sol': { content: SOURCE } }, settings })));
  const c = out.contracts['T.sol'].Toggle;
  return { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` };
}

const CONFIRMATIONS = 3;
const USDT = 1_000_000n;
const POL = 10n ** 18n;
const RELAYER = devnetAccount(7);
const SETTINGS = { batchSize: 1, pollMs: 100, replaceAfterMs: 60_000, maxInFlight: 8, retryBaseMs: 1_000, leaseMs: 30_000 };

describe('a hole in the relayer nonces', () => {
  let chain: TestChain;
  let usdt: Address;
  let t: TestGateway;
  let toggle: Address;
  beforeAll(async () => {
    chain = await startTestChain();
    usdt = await chain.deployToken({ name: 'Tether USD (test)', symbol: 'USDT', decimals: 6 });
    const { abi, bytecode } = compile();
    toggle = (await deployedAddress(chain.relayer, await chain.relayer.wallet.deployContract({ abi, bytecode }))).address;
    t = await startTestGateway({
      config: {
        ...deploymentOn(chain, { '4': { rpcUrls: [chain.node.rpcUrl], confirmations: CONFIRMATIONS, contracts: { USDT: usdt } } }),
        relayers: { '4': { privateKey: RELAYER.privateKey, maxFeePerGas: 1_000_000_000_000n } },
        settlement: SETTINGS,
      },
    });
  }, 60_000);
  afterAll(async () => {
    await rpc(chain, 'evm_setAutomine', [true]).catch(() => undefined);
    await t?.close();
    await chain?.stop();
  });

  const status = async (o: PlacedOrder) => (await t.gateway.store.orders.get(o.paymentOrderNo))!.state.status;

  it('settles everything once the chain is honest again', async () => {
    const a = await placeOrder(t, { amount: '1', currency: 'POL', overrides: { divide_detail: { seller_amount: '0.5', seller_addr: toggle, merchant_amount: '0.5' } } });
    const b = await placeOrder(t, { amount: '2' });
    const c = await placeOrder(t, { amount: '3' });
    // A is paid (and due) a second before B and C: the due list sends A first.
    await chain.pay(NATIVE_COIN, a.address, POL);
    await t.gateway.scanChain('4');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    t.clock.advance(1);
    await chain.pay(usdt, b.address, 2n * USDT);
    await chain.pay(usdt, c.address, 3n * USDT);
    await t.gateway.scanChain('4');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    for (const o of [a, b, c]) expect(await status(o)).toBe('PAID');

    const snapshot = (await rpc(chain, 'evm_snapshot')) as string;
    await rpc(chain, 'evm_setAutomine', [false]);
    for (let i = 0; i < 3; i += 1) expect((await t.gateway.settle('4')).sent).toBe(1);
    const txOf = async (o: PlacedOrder) => (await t.gateway.store.settlements.getTx((await t.gateway.store.settlements.get(o.paymentOrderNo))!.txId!))!;
    const [na, nb, nc] = [(await txOf(a)).nonce!, (await txOf(b)).nonce!, (await txOf(c)).nonce!];
    expect(Math.min(nb, nc)).toBe(na + 1);
    // The toggle starts refusing before the block: A's transaction reverts, B and C succeed.
    await rpc(chain, 'anvil_setStorageAt', [toggle, '0x0', `0x${'0'.repeat(63)}1`]);
    await mine(chain, 1);
    await t.gateway.settle('4');
    expect((await t.gateway.store.settlements.get(a.paymentOrderNo))!.status).toBe('DUE'); // REVERTED, given back
    // A reorganisation takes that block away (and the toggle's change with it): nonce na is free again.
    await rpc(chain, 'evm_revert', [snapshot]);
    await rpc(chain, 'evm_setAutomine', [true]);
    await mine(chain, 1);

    // Up to six hours of passes, blocks mined all along.
    const done = async () => (await Promise.all([a, b, c].map(status))).every((s) => s === 'COMPLETED');
    for (let pass = 0; pass < 360 && !(await done()); pass += 1) {
      t.clock.advance(60);
      await t.gateway.settle('4').catch(() => undefined);
      await mine(chain, 1);
    }
    for (const o of [a, b, c]) expect(await status(o)).toBe('COMPLETED');
    expect(await chain.relayer.public.getTransactionCount({ address: RELAYER.address })).toBeGreaterThan(na);
    expect(await t.gateway.store.settlements.listOpenTxs('4')).toEqual([]);
  }, 240_000);
});
