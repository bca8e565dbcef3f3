// The operator's side of the forwarder factory: deploying it (once per network, also on the
// devnet), reading what a deployed factory reports, and encoding settlements for a relayer.
import { encodeFunctionData, getAddress, type Address, type Hex, type PublicClient } from 'viem';
import { deployedAddress, type EvmClients } from './clients.js';
import { forwarderAbi, forwarderFactoryAbi, forwarderFactoryBytecode } from './contract-artifacts.js';
import type { ForwarderPlan } from './forwarder-plan.js';

type ForwarderError = Extract<(typeof forwarderAbi)[number], { type: 'error' }>;

/**
 * The factory's ABI plus the forwarder's errors, which surface through `distribute` when a
 * payout fails (a receiver refusing the native coin, a token refusing a transfer): with it viem
 * names every revert a settlement can meet.
 */
export const settlementAbi = [...forwarderFactoryAbi, ...forwarderAbi.filter((item): item is ForwarderError => item.type === 'error')];

export interface DeployedFactory {
  readonly factory: Address;
  /** The forwarder implementation the factory created in its constructor (configuration: `forwarder`). */
  readonly implementation: Address;
  readonly initCodeHash: Hex;
  readonly txHash: Hex;
  readonly gasUsed: bigint;
}

/** Deploys a factory (which creates its forwarder implementation in the same transaction). */
export async function deployForwarderFactory(clients: EvmClients): Promise<DeployedFactory> {
  const txHash = await clients.wallet.deployContract({ abi: forwarderFactoryAbi, bytecode: forwarderFactoryBytecode });
  const { address, receipt } = await deployedAddress(clients, txHash);
  const code = await readForwarderCode(clients.public, address);
  return { factory: address, ...code, txHash, gasUsed: receipt.gasUsed };
}

/** What a deployed factory reports: to check the configured forwarder against it at start. */
export async function readForwarderCode(client: PublicClient, factory: Address): Promise<{ implementation: Address; initCodeHash: Hex }> {
  const [implementation, initCodeHash] = await Promise.all([
    client.readContract({ address: factory, abi: forwarderFactoryAbi, functionName: 'implementation' }),
    client.readContract({ address: factory, abi: forwarderFactoryAbi, functionName: 'initCodeHash' }),
  ]);
  return { implementation: getAddress(implementation), initCodeHash };
}

/** Whether the plan has been distributed (its forwarder exists): the reconciler's question after a crash. */
export async function isDistributed(client: PublicClient, factory: Address, plan: ForwarderPlan): Promise<boolean> {
  return client.readContract({ address: factory, abi: forwarderFactoryAbi, functionName: 'distributed', args: [abiPlan(plan)] });
}

/**
 * Calldata settling `plans` in one transaction: `distributeBatch`, also for one plan. A plan that
 * someone else distributed first (anyone may, from the mempool) or a payment a reorganisation took
 * back is then SKIPPED, where `distribute` would revert and burn the relayer's gas (ADR 0009).
 */
export function distributeCalldata(plans: readonly ForwarderPlan[]): Hex {
  if (plans.length === 0) throw new RangeError('nothing to distribute');
  return encodeFunctionData({ abi: forwarderFactoryAbi, functionName: 'distributeBatch', args: [plans.map(abiPlan)] });
}

/** viem wants mutable arrays for the struct's dynamic members. */
export function abiPlan(plan: ForwarderPlan) {
  return { orderRef: plan.orderRef, token: plan.token, receivers: [...plan.receivers], amounts: [...plan.amounts], merchantIndex: plan.merchantIndex };
}
