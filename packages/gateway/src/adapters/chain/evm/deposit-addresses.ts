// The deposit-address port on EVM networks: the CREATE2 address of the order's forwarder under
// the network's factory (PROTOCOL §15), computed off-chain.
//
// The address is only settleable if the configured `forwarder` is the implementation the
// deployed factory creates its forwarders from (the init code, hence the address, depends on
// it, ADR 0006/0009). `CheckedDepositAddresses` asks each network's factory (again later until
// it matches) and hands out no address on a network whose factory disagrees: a payer's money
// sent there could never be distributed.
import { BaseError, createPublicClient, fallback, getAddress, http, type Address, type PublicClient } from 'viem';
import type { DepositAddressDeriver } from '../../../app/ports.js';
import type { NetworkDeployment } from '../../../domain/catalogue.js';
import { readForwarderCode } from './forwarder-factory.js';
import { forwarderAddress, forwarderInitCodeHash, forwarderPlan } from './forwarder-plan.js';

export const evmDepositAddresses: DepositAddressDeriver = {
  addressFor(plan, network) {
    const { factory, forwarder } = network.chain;
    if (!factory || !forwarder) return null;
    // The factory refuses a plan that pays itself (InvalidPlan, ADR 0009): that share would stay there.
    if (plan.receivers.some((r) => r.address.toLowerCase() === factory.toLowerCase())) throw new RangeError(`a receiver is the network's forwarder factory ${factory}`);
    return forwarderAddress(factory as Address, { implementation: forwarder as Address }, forwarderPlan(plan));
  },
};

/** What a network's factory said: `UNCHECKED` until one of its nodes answered. */
export type FactoryCheck = { state: 'UNCHECKED'; reason: string } | { state: 'OK' } | { state: 'MISMATCH'; reason: string };

/**
 * Compares what the factory at `factory` reports with the configured forwarder. A node that does
 * not answer leaves it UNCHECKED; a factory address without code, a contract that is not a
 * forwarder factory, or one built from another forwarder or init code is a MISMATCH.
 */
export async function checkFactory(client: PublicClient, factory: string, forwarder: string): Promise<FactoryCheck> {
  let code: string | undefined;
  try {
    code = await client.getCode({ address: getAddress(factory) });
  } catch (err) {
    return { state: 'UNCHECKED', reason: err instanceof BaseError ? err.shortMessage : String(err) };
  }
  if (!code || code === '0x') return { state: 'MISMATCH', reason: `there is no contract at the factory address ${factory}` };
  let reported: { implementation: Address; initCodeHash: string };
  try {
    reported = await readForwarderCode(client, getAddress(factory));
  } catch (err) {
    // The node answered getCode a moment ago: a failing call is the contract, not the node.
    return { state: 'MISMATCH', reason: `the contract at ${factory} is not a forwarder factory (${err instanceof BaseError ? err.shortMessage : String(err)})` };
  }
  if (reported.implementation.toLowerCase() !== forwarder.toLowerCase()) {
    return { state: 'MISMATCH', reason: `the factory ${factory} creates forwarders from ${reported.implementation}, not the configured forwarder ${forwarder}` };
  }
  const expected = forwarderInitCodeHash(getAddress(forwarder));
  if (reported.initCodeHash.toLowerCase() !== expected.toLowerCase()) {
    return { state: 'MISMATCH', reason: `the factory ${factory} uses another forwarder init code (hash ${reported.initCodeHash}, this gateway computes addresses with ${expected}): a factory of another version` };
  }
  return { state: 'OK' };
}

/** Deposit addresses, refused on a network whose deployed factory does not match the configuration. */
export class CheckedDepositAddresses implements DepositAddressDeriver {
  private readonly checks = new Map<string, FactoryCheck>();

  addressFor(plan: Parameters<DepositAddressDeriver['addressFor']>[0], network: NetworkDeployment): string | null {
    return this.available(network) ? evmDepositAddresses.addressFor(plan, network) : null;
  }

  available(network: NetworkDeployment): boolean {
    return this.checks.get(network.id)?.state !== 'MISMATCH';
  }

  status(networkId: string): FactoryCheck {
    return this.checks.get(networkId) ?? { state: 'UNCHECKED', reason: 'not checked yet' };
  }

  /**
   * Checks the networks with nodes, a factory and a forwarder that are not OK yet (a MISMATCH is
   * asked again: a node still syncing may not have the factory yet); resolves to the networks
   * whose state changed, with their new state.
   */
  async checkAll(networks: readonly NetworkDeployment[], clientFor: (network: NetworkDeployment) => PublicClient = publicClientFor): Promise<Map<string, FactoryCheck>> {
    const changed = new Map<string, FactoryCheck>();
    await Promise.all(
      networks.map(async (network) => {
        const { factory, forwarder } = network.chain;
        if (!checkable(network) || !factory || !forwarder) return;
        const before = this.status(network.id);
        if (before.state === 'OK') return;
        const result = await checkFactory(clientFor(network), factory, forwarder);
        // A node that does not answer changes nothing that was known.
        if (result.state === 'UNCHECKED' && before.state === 'MISMATCH') return;
        this.checks.set(network.id, result);
        if (result.state !== before.state) changed.set(network.id, result);
      }),
    );
    return changed;
  }

  /** Whether some network with nodes and a factory is not known to be OK. */
  pending(networks: readonly NetworkDeployment[]): boolean {
    return networks.some((n) => checkable(n) && this.status(n.id).state !== 'OK');
  }
}

/** A network whose factory can be asked: nodes, a factory and a forwarder configured. */
const checkable = (network: NetworkDeployment): boolean => !!network.chain.factory && !!network.chain.forwarder && network.chain.rpcUrls.length > 0;

function publicClientFor(network: NetworkDeployment): PublicClient {
  return createPublicClient({ transport: fallback(network.chain.rpcUrls.map((url) => http(url, { timeout: 10_000, retryCount: 0 }))), cacheTime: 0 });
}
