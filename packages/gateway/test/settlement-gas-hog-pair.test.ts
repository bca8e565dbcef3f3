// A batch whose plans each fit under 1,000,000 gas alone but not together is halved, not taken for
// an endpoint's lie: the factory pays a receiver recurring in a batch once, with the sum of its
// shares (ADR 0009), so a receiver whose gas use grows with the value it receives makes exactly
// that happen on an honest node. Two native-coin orders naming one as seller_addr must not stop
// every settlement of the network.
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
/// Spends 600k gas on a payment of up to 1 coin, 6M on a larger one.
contract ValueHeavyWallet {
  receive() external payable {
    uint256 target = msg.value > 1 ether ? 6_000_000 : 600_000;
    uint256 start = gasleft();
    while (start - gasleft() < target) {}
  }
}`;
function compile(): { abi: Abi; bytecode: Hex } {
  const settings = { optimizer: { enabled: true, runs: 200 }, evmVersion: 'paris', outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } } };
  const out = JSON.parse(solc.compile(JSON.stringify({ language: 'Solidity', sources: { 'V.sol': { content: SOURCE } }, settings })));
  const c = out.contracts['V.sol'].ValueHeavyWallet;
  return { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` };
}

const CONFIRMATIONS = 2;
const USDT = 1_000_000n;
const POL = 10n ** 18n;

describe('two orders naming one value-dependent receiver', () => {
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
    const split = { divide_detail: { seller_amount: '0.6', seller_addr: heavy, merchant_amount: '0.4' } };
    const bad1 = await placeOrder(t, { amount: '1', currency: 'POL', overrides: split });
    const bad2 = await placeOrder(t, { amount: '1', currency: 'POL', overrides: split });
    const good = await placeOrder(t, { amount: '5' });
    await chain.pay(NATIVE_COIN, bad1.address, POL);
    await chain.pay(NATIVE_COIN, bad2.address, POL);
    await chain.pay(usdt, good.address, 5n * USDT);
    await t.gateway.scanChain('4');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    for (const o of [bad1, bad2, good]) expect((await t.gateway.store.orders.get(o.paymentOrderNo))!.state.status).toBe('PAID');
    const errors: string[] = [];
    for (let pass = 0; pass < 5; pass += 1) {
      t.clock.advance(3600);
      await t.gateway.settle('4').catch((err: Error) => errors.push(err.message));
      await mine(chain, CONFIRMATIONS);
    }
    expect(errors).toEqual([]);
    expect((await t.gateway.store.orders.get(good.paymentOrderNo))!.state.status).toBe('COMPLETED');
  }, 60_000);
});
