// A relayer short of funds makes settlements wait (ADR 0008): a transaction that is merely stale
// because the account cannot pay it is broadcast again as it is, not re-signed with 12.5 % higher
// fees every replace_after_ms up to the cap, which the transaction, once the account is funded,
// would pay.
import type { Address } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devnetAccount } from '../src/adapters/devnet/devnet.js';
import { deploymentOn, mine, placeOrder, rpc } from './chain-setup.js';
import { startTestChain, type TestChain } from './evm-chain.js';
import { startTestGateway, type TestGateway } from './harness.js';

const CONFIRMATIONS = 2;
const USDT = 1_000_000n;
const RELAYER = devnetAccount(7);
const SETTINGS = { batchSize: 20, pollMs: 100, replaceAfterMs: 60_000, maxInFlight: 8, retryBaseMs: 1_000, leaseMs: 30_000 };

describe('a relayer short of funds', () => {
  let chain: TestChain;
  let usdt: Address;
  let t: TestGateway;
  beforeAll(async () => {
    chain = await startTestChain();
    usdt = await chain.deployToken({ name: 'Tether USD (test)', symbol: 'USDT', decimals: 6 });
    t = await startTestGateway({
      config: {
        ...deploymentOn(chain, { '4': { rpcUrls: [chain.node.rpcUrl], confirmations: CONFIRMATIONS, contracts: { USDT: usdt } } }),
        relayers: { '4': { privateKey: RELAYER.privateKey, maxFeePerGas: 1_000_000_000_000n } },
        settlement: SETTINGS,
      },
    });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await chain?.stop();
  });

  it('does not raise the fees of its pending transaction while it waits for funds', async () => {
    const order = await placeOrder(t, { amount: '2' });
    await chain.pay(usdt, order.address, 2n * USDT);
    await t.gateway.scanChain('4');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    const funded = await chain.relayer.public.getBalance({ address: RELAYER.address });
    await rpc(chain, 'evm_setAutomine', [false]);
    expect((await t.gateway.settle('4')).sent).toBe(1);
    const txId = (await t.gateway.store.settlements.get(order.paymentOrderNo))!.txId!;
    const first = (await t.gateway.store.settlements.getTx(txId))!;
    // The relayer's account is emptied (say, the operator's sweep) before the block: the transaction waits.
    await rpc(chain, 'anvil_setBalance', [RELAYER.address, '0x0']);
    // A node drops what the sender cannot pay for (geth's pool demotes and evicts it).
    await rpc(chain, 'anvil_dropTransaction', [txId]);
    // Two hours of passes (replace_after_ms is a minute here; 3 min by default: six hours).
    for (let pass = 0; pass < 120; pass += 1) {
      t.clock.advance(SETTINGS.replaceAfterMs / 1000);
      await t.gateway.settle('4');
    }
    const after = (await t.gateway.store.settlements.getTx(txId))!;
    expect(after.hashes).toEqual([txId]);
    expect([after.maxFeePerGas, after.maxPriorityFeePerGas]).toEqual([first.maxFeePerGas, first.maxPriorityFeePerGas]);
    // Funded again: what does the settlement pay?
    await rpc(chain, 'anvil_setBalance', [RELAYER.address, `0x${funded.toString(16)}`]);
    await rpc(chain, 'evm_setAutomine', [true]);
    await t.gateway.settle('4');
    await mine(chain, CONFIRMATIONS);
    await t.gateway.settle('4');
    const done = (await t.gateway.store.settlements.getTx(txId))!;
    const receipt = await chain.relayer.public.getTransactionReceipt({ hash: done.minedHash as `0x${string}` });
    expect(done.status).toBe('FINAL');
    expect(receipt.effectiveGasPrice <= first.maxFeePerGas).toBe(true);
    expect((await t.gateway.store.orders.get(order.paymentOrderNo))!.state.status).toBe('COMPLETED');
  }, 120_000);
});
