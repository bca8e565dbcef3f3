// One order whose native-coin receiver spends more gas on receiving than a distribution may use
// (1,000,000): it is set aside with the reason, and the other orders of its network settle; it
// does not make every pass fail on the same batch (any merchant could otherwise stop a network's
// settlements with a contract as seller_addr).
import solc from 'solc';
import type { Abi, Address, Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployedAddress } from '../src/adapters/chain/evm/clients.js';
import { NATIVE_COIN } from '../src/adapters/chain/evm/forwarder-plan.js';
import { devnetAccount } from '../src/adapters/devnet/devnet.js';
import { deploymentOn, mine, placeOrder } from './chain-setup.js';
import { startTestChain, type TestChain } from './evm-chain.js';
import { startTestGateway, type TestGateway } from './harness.js';

const SOURCE = `// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;
/// A contract wallet whose receive() does some bookkeeping: ~1.8M gas, well under a block.
contract HeavyWallet {
  uint256[80] private slots;
  receive() external payable { for (uint256 i = 0; i < 80; i++) slots[i] = msg.value + i + 1; }
}`;

function compile(): { abi: Abi; bytecode: Hex } {
  const settings = { optimizer: { enabled: true, runs: 200 }, evmVersion: 'paris', outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } } };
  const out = JSON.parse(solc.compile(JSON.stringify({ language: 'Solidity', sources: { 'H.sol': { content: SOURCE } }, settings })));
  const c = out.contracts['H.sol'].HeavyWallet;
  return { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` };
}

const CONFIRMATIONS = 2;
const USDT = 1_000_000n;
const POL = 10n ** 18n;

describe('one heavy native receiver', () => {
  let chain: TestChain;
  let usdt: Address;
  let t: TestGateway;
  let heavy: Address;
  beforeAll(async () => {
    chain = await startTestChain();
    usdt = await chain.deployToken({ name: 'Tether USD (test)', symbol: 'USDT', decimals: 6 });
    const { abi, bytecode } = compile();
    heavy = (await deployedAddress(chain.relayer, await chain.relayer.wallet.deployContract({ abi, bytecode }))).address;
    t = await startTestGateway({
      config: {
        ...deploymentOn(chain, { '4': { rpcUrls: [chain.node.rpcUrl], confirmations: CONFIRMATIONS, contracts: { USDT: usdt } } }),
        relayers: { '4': { privateKey: devnetAccount(7).privateKey, maxFeePerGas: 1_000_000_000_000n } },
        settlement: { batchSize: 20, pollMs: 100, replaceAfterMs: 60_000, maxInFlight: 8, retryBaseMs: 1_000, leaseMs: 30_000 },
      },
    });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await chain?.stop();
  });

  it('does not keep the other orders of the network from settling', async () => {
    const bad = await placeOrder(t, { amount: '2', currency: 'POL', overrides: { divide_detail: { seller_amount: '1', seller_addr: heavy, merchant_amount: '1' } } });
    const good = await placeOrder(t, { amount: '5' });
    await chain.pay(NATIVE_COIN, bad.address, 2n * POL);
    await chain.pay(usdt, good.address, 5n * USDT);
    await t.gateway.scanChain('4');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    expect((await t.gateway.store.orders.get(good.paymentOrderNo))!.state.status).toBe('PAID');
    expect((await t.gateway.store.orders.get(bad.paymentOrderNo))!.state.status).toBe('PAID');
    const errors: string[] = [];
    for (let pass = 0; pass < 5; pass += 1) {
      t.clock.advance(3600);
      await t.gateway.settle('4').catch((err: Error) => errors.push(err.message));
      await mine(chain, CONFIRMATIONS);
    }
    expect(errors).toEqual([]);
    expect((await t.gateway.store.settlements.get(good.paymentOrderNo))!.status).toBe('SETTLED');
    expect((await t.gateway.store.orders.get(good.paymentOrderNo))!.state.status).toBe('COMPLETED');
    const set = (await t.gateway.store.settlements.get(bad.paymentOrderNo))!;
    expect(set.status).toBe('DUE');
    expect(set.attempts).toBeGreaterThan(0);
    expect(set.lastError).toMatch(/its distribution needs \d+ gas, more than the 1000000 a distribution may use/);
  }, 60_000);
});
