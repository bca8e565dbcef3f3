// The deposit-address port on EVM networks: the CREATE2 address of the order's forwarder under
// the network's factory (PROTOCOL §15), computed off-chain.
//
// The address is only settleable if the configured `forwarder` is the implementation the
// deployed factory creates its forwarders from (the init code, hence the address, depends on
// it, ADR 0006/0009). `CheckedDepositAddresses` asks each network's nodes (again later until
// they match) and hands out no address on a network whose chain disagrees with the
// configuration: a node of another chain (the payer would be sent to the configured chain id), a
// factory that could not distribute the money, or a token whose contract or decimals are not the
// configured ones (amounts due would be counted in the wrong unit).
import {
  AbiDecodingDataSizeTooSmallError,
  AbiDecodingZeroDataError,
  BaseError,
  ContractFunctionRevertedError,
  ContractFunctionZeroDataError,
  createPublicClient,
  erc20Abi,
  getAddress,
  http,
  SliceOffsetOutOfBoundsError,
  AbiDecodingDataSizeInvalidError,
  type Address,
  type PublicClient,
} from 'viem';
import type { DepositAddressDeriver } from '../../../app/ports.js';
import type { NetworkDeployment } from '../../../domain/catalogue.js';
import { shortReason } from './clients.js';
import { readForwarderCode } from './forwarder-factory.js';
import { forwarderAddress, forwarderInitCodeHash, forwarderPlan } from './forwarder-plan.js';

export const evmDepositAddresses: DepositAddressDeriver = {
  addressFor(plan, network) {
    const { factory, forwarder } = network.chain;
    if (!factory || !forwarder) return null;
    // The factory refuses a plan that pays itself (InvalidPlan, ADR 0009): that share would stay there.
    if (plan.receivers.some((r) => r.address.toLowerCase() === factory.toLowerCase())) throw new RangeError(`a receiver is the network's forwarder factory ${factory}`);
    // The implementation keeps tokens for good and refuses the native coin (DirectCall): every distribution would revert.
    if (plan.receivers.some((r) => r.address.toLowerCase() === forwarder.toLowerCase())) throw new RangeError(`a receiver is the network's forwarder implementation ${forwarder}`);
    return forwarderAddress(factory as Address, { implementation: forwarder as Address }, forwarderPlan(plan));
  },
};

/**
 * A token the network check refuses: why, and whether there is simply no contract at its address
 * (`absent`: a token not deployed on this chain, a testnet's, say) rather than one that disagrees
 * with the configuration (other decimals, not an ERC-20: a configuration error).
 */
export interface TokenRefusal {
  reason: string;
  absent: boolean;
}

/**
 * What a network's nodes said: `UNCHECKED` until one of them answered. `OK` may still refuse some
 * tokens (`refused`: contract, lower case): those pairs get no deposit address; and may have
 * endpoints that did not answer yet (`unanswered`): it is asked again until each one did.
 */
export type FactoryCheck =
  | { state: 'UNCHECKED'; reason: string }
  | { state: 'OK'; refused?: ReadonlyMap<string, TokenRefusal>; unanswered?: number }
  | { state: 'MISMATCH'; reason: string };

/**
 * Whether a failed contract read is the contract's answer (it reverted, returned nothing or
 * something that does not decode) rather than the node's or the network's failure (a timeout, a
 * 429, a refused connection), which says nothing about the token.
 */
function contractAnswered(err: unknown): boolean {
  return (
    err instanceof BaseError &&
    err.walk((e) => e instanceof ContractFunctionRevertedError || e instanceof ContractFunctionZeroDataError || e instanceof AbiDecodingZeroDataError || e instanceof AbiDecodingDataSizeTooSmallError || e instanceof AbiDecodingDataSizeInvalidError || e instanceof SliceOffsetOutOfBoundsError) !== null
  );
}

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
    return { state: 'UNCHECKED', reason: shortReason(err) };
  }
  if (!code || code === '0x') return { state: 'MISMATCH', reason: `there is no contract at the factory address ${factory}` };
  let reported: { implementation: Address; initCodeHash: string };
  try {
    reported = await readForwarderCode(client, getAddress(factory));
  } catch (err) {
    // The node answered getCode a moment ago: a failing call is the contract, not the node.
    return { state: 'MISMATCH', reason: `the contract at ${factory} is not a forwarder factory (${shortReason(err)})` };
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

/**
 * The whole network against its configuration: every RPC endpoint that answers serves the
 * configured chain id and the factory matches (checkFactory), else the network is a MISMATCH; and
 * every configured token is a contract whose `decimals()` are the configured ones, else that token
 * is refused (`refused`) while the network's other currencies stay offered. `clients`: one per RPC
 * endpoint. No endpoint answering leaves it UNCHECKED.
 */
export async function checkNetwork(clients: readonly PublicClient[], network: NetworkDeployment): Promise<FactoryCheck> {
  const { factory, forwarder } = network.chain;
  let answering: PublicClient | null = null;
  let silence = 'no RPC endpoint configured';
  let unanswered = 0;
  for (const [i, client] of clients.entries()) {
    let chainId: number;
    try {
      chainId = await client.getChainId();
    } catch (err) {
      silence = shortReason(err);
      unanswered += 1;
      continue;
    }
    if (chainId !== network.chainId) {
      return { state: 'MISMATCH', reason: `RPC endpoint ${i + 1} of ${clients.length} serves chain id ${chainId}, not the configured chain_id ${network.chainId}: payers would be sent to another chain` };
    }
    answering ??= client;
  }
  if (!answering) return { state: 'UNCHECKED', reason: silence };
  if (factory && forwarder) {
    const check = await checkFactory(answering, factory, forwarder);
    if (check.state !== 'OK') return check;
  }
  const refused = new Map<string, TokenRefusal>();
  for (const currency of network.currencies) {
    if (!currency.contract) continue;
    const what = `the ${currency.code} contract ${currency.contract}`;
    let code: string | undefined;
    try {
      code = await answering.getCode({ address: getAddress(currency.contract) });
    } catch (err) {
      return { state: 'UNCHECKED', reason: shortReason(err) };
    }
    if (!code || code === '0x') {
      refused.set(currency.contract.toLowerCase(), { reason: `there is no contract at ${what}`, absent: true });
      continue;
    }
    let decimals: number;
    try {
      decimals = await answering.readContract({ address: getAddress(currency.contract), abi: erc20Abi, functionName: 'decimals' });
    } catch (err) {
      // A node that failed says nothing of the token: asked again, not refused for good.
      if (!contractAnswered(err)) return { state: 'UNCHECKED', reason: shortReason(err) };
      refused.set(currency.contract.toLowerCase(), { reason: `${what} does not answer decimals() as an ERC-20 token does (${shortReason(err)})`, absent: false });
      continue;
    }
    if (decimals !== currency.decimals) {
      refused.set(currency.contract.toLowerCase(), { reason: `${what} has ${decimals} decimals, not the configured ${currency.decimals}: amounts due would be counted in the wrong unit`, absent: false });
    }
  }
  return { state: 'OK', ...(refused.size > 0 ? { refused } : {}), ...(unanswered > 0 ? { unanswered } : {}) };
}

/** Deposit addresses, refused on a network whose chain does not match the configuration (checkNetwork). */
export class CheckedDepositAddresses implements DepositAddressDeriver {
  private readonly checks = new Map<string, FactoryCheck>();

  addressFor(plan: Parameters<DepositAddressDeriver['addressFor']>[0], network: NetworkDeployment): string | null {
    return this.available(network, plan.token) ? evmDepositAddresses.addressFor(plan, network) : null;
  }

  /** `token`: a pair's contract (null: the native coin), else the network as a whole. */
  available(network: NetworkDeployment, token?: string | null): boolean {
    const check = this.checks.get(network.id);
    if (check?.state === 'MISMATCH') return false;
    return !(token && check?.state === 'OK' && check.refused?.has(token.toLowerCase()));
  }

  status(networkId: string): FactoryCheck {
    return this.checks.get(networkId) ?? { state: 'UNCHECKED', reason: 'not checked yet' };
  }

  /**
   * Checks the networks with nodes, a factory and a forwarder that are not OK yet (a MISMATCH is
   * asked again: a node still syncing may not have the factory yet); resolves to the networks
   * whose state changed, with their new state.
   */
  async checkAll(networks: readonly NetworkDeployment[], clientsFor: (network: NetworkDeployment) => PublicClient[] = publicClientsFor): Promise<Map<string, FactoryCheck>> {
    const changed = new Map<string, FactoryCheck>();
    await Promise.all(
      networks.map(async (network) => {
        if (!checkable(network)) return;
        const before = this.status(network.id);
        if (complete(before)) return;
        const result = await checkNetwork(clientsFor(network), network);
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
    return networks.some((n) => checkable(n) && !complete(this.status(n.id)));
  }
}

/** Checked for good: OK, every endpoint having answered. */
const complete = (check: FactoryCheck): boolean => check.state === 'OK' && !check.unanswered;

/** A network whose factory can be asked: nodes, a factory and a forwarder configured. */
const checkable = (network: NetworkDeployment): boolean => !!network.chain.factory && !!network.chain.forwarder && network.chain.rpcUrls.length > 0;

function publicClientsFor(network: NetworkDeployment): PublicClient[] {
  return network.chain.rpcUrls.map((url) => createPublicClient({ transport: http(url, { timeout: 10_000, retryCount: 0 }), cacheTime: 0 }));
}
