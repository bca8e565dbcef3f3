// A private anvil (automine) with a forwarder factory, test tokens and a payer, for the tests of
// the contracts and of chain code. Each test file starts its own: no test shares chain state.
import { erc20Abi, type Address, type Hex, type TransactionReceipt } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { confirmed, evmClients, type EvmClients } from '../src/adapters/chain/evm/clients.js';
import { abiPlan, deployForwarderFactory, settlementAbi, type DeployedFactory } from '../src/adapters/chain/evm/forwarder-factory.js';
import { forwarderAddress, NATIVE_COIN, orderRef, type ForwarderPlan } from '../src/adapters/chain/evm/forwarder-plan.js';
import { startAnvil, type AnvilNode } from '../src/adapters/devnet/anvil.js';
import { deployTestToken, devAccount, mintTestToken, type TestTokenSpec } from '../src/adapters/devnet/test-tokens.js';

export interface TestChain {
  readonly node: AnvilNode;
  /** Account 0: deploys, mints and relays settlements. */
  readonly relayer: EvmClients;
  /** Account 1: pays orders. */
  readonly payer: EvmClients;
  readonly factory: DeployedFactory;
  /** Deploys a token and mints the payer plenty of it. */
  deployToken(spec: TestTokenSpec): Promise<Address>;
  /** The payer sends `amount` of `token` (NATIVE_COIN: the native coin) to `to`. */
  pay(token: Address, to: Address, amount: bigint): Promise<TransactionReceipt>;
  balanceOf(token: Address, who: Address): Promise<bigint>;
  /** The plan's deposit address, computed off-chain. */
  addressOf(plan: ForwarderPlan): Address;
  /** The relayer settles one plan (`distribute`) or several (`distributeBatch`). */
  distribute(plans: ForwarderPlan | readonly ForwarderPlan[]): Promise<TransactionReceipt>;
  stop(): Promise<void>;
}

export async function startTestChain(): Promise<TestChain> {
  const node = await startAnvil({ chainId: 31337 });
  try {
    const relayer = evmClients(node.rpcUrl, node.chainId, devAccount(0));
    const payer = evmClients(node.rpcUrl, node.chainId, devAccount(1));
    const factory = await deployForwarderFactory(relayer);
    return {
      node,
      relayer,
      payer,
      factory,
      async deployToken(spec) {
        const token = await deployTestToken(relayer, spec);
        await mintTestToken(relayer, token, payer.wallet.account.address, 10n ** 40n);
        return token;
      },
      async pay(token, to, amount) {
        const hash: Hex =
          token === NATIVE_COIN
            ? await payer.wallet.sendTransaction({ to, value: amount })
            : await payer.wallet.writeContract({ address: token, abi: erc20Abi, functionName: 'transfer', args: [to, amount] });
        return confirmed(payer, hash);
      },
      async balanceOf(token, who) {
        if (token === NATIVE_COIN) return relayer.public.getBalance({ address: who });
        return relayer.public.readContract({ address: token, abi: erc20Abi, functionName: 'balanceOf', args: [who] });
      },
      addressOf(plan) {
        return forwarderAddress(factory.factory, { implementation: factory.implementation }, plan);
      },
      async distribute(plans) {
        const address = factory.factory;
        const hash = Array.isArray(plans)
          ? await relayer.wallet.writeContract({ address, abi: settlementAbi, functionName: 'distributeBatch', args: [plans.map(abiPlan)] })
          : await relayer.wallet.writeContract({ address, abi: settlementAbi, functionName: 'distribute', args: [abiPlan(plans as ForwarderPlan)] });
        return confirmed(relayer, hash);
      },
      stop: () => node.stop(),
    };
  } catch (err) {
    await node.stop();
    throw err;
  }
}

/** A fresh address: its balances start at zero, so a test can check them exactly. */
export function freshAddress(): Address {
  return privateKeyToAccount(generatePrivateKey()).address;
}

let orders = 0;

/** A plan over fresh receivers; `merchantIndex` defaults to the last but one (as the domain orders them). */
export function testPlan(token: Address, amounts: readonly bigint[], merchantIndex = Math.max(0, amounts.length - 2)): ForwarderPlan {
  orders += 1;
  return {
    orderRef: orderRef(`TEST${process.pid}-${orders}-${Date.now()}`),
    token,
    receivers: amounts.map(() => freshAddress()),
    amounts,
    merchantIndex: BigInt(merchantIndex),
  };
}
