// The deposit-address port on EVM networks: the CREATE2 address of the order's forwarder under
// the network's factory (PROTOCOL §15), computed off-chain.
import type { Address } from 'viem';
import type { DepositAddressDeriver } from '../../../app/ports.js';
import { forwarderAddress, forwarderPlan } from './forwarder-plan.js';

export const evmDepositAddresses: DepositAddressDeriver = {
  addressFor(plan, network) {
    const { factory, forwarder } = network.chain;
    if (!factory || !forwarder) return null;
    return forwarderAddress(factory as Address, { implementation: forwarder as Address }, forwarderPlan(plan));
  },
};
