// `sparkpay network deploy-factory`: the operator deploys a network's forwarder factory once
// (PROTOCOL §15), from the network's relayer account, and puts the addresses it prints into the
// configuration. Checked first: the endpoint serves the configured chain, no factory is
// configured there already, and the relayer holds something to pay with.
import { getAddress, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import type { NetworkDeployment } from '../../../domain/catalogue.js';
import { endpointLabel } from '../../../domain/endpoint-secrets.js';
import { evmClients, minedReceipt, shortReason } from './clients.js';
import { forwarderFactoryAbi, forwarderFactoryBytecode } from './contract-artifacts.js';
import { readForwarderCode } from './forwarder-factory.js';

export type FactoryDeployResult =
  | { ok: true; factory: string; forwarder: string; initCodeHash: string; txHash: string; gasUsed: bigint; relayer: string; chainId: number; block: number }
  | { ok: false; message: string };

/**
 * Deploys the factory (which creates its forwarder implementation in the same transaction) on
 * `network` through its first RPC endpoint, signed with `privateKey`. `onSent` hears the
 * transaction's hash as soon as it is sent (mined or not, the operator can follow it).
 */
export async function deployFactory(
  network: NetworkDeployment,
  privateKey: Hex,
  options: { onSent?: (txHash: string) => void; timeoutMs?: number; pollingIntervalMs?: number; maxFeePerGas?: bigint } = {},
): Promise<FactoryDeployResult> {
  const url = network.chain.rpcUrls[0];
  if (!url) return { ok: false, message: `network ${network.id} has no RPC endpoint (networks.${network.id}.rpc_urls or SPARKPAY_RPC_URLS_${network.id})` };
  const where = `network ${network.id}'s RPC endpoint ${endpointLabel(url)}`;
  const account = privateKeyToAccount(privateKey);
  const clients = evmClients(url, network.chainId, account, { pollingIntervalMs: options.pollingIntervalMs ?? 1_000, timeoutMs: 30_000 });
  let chainId: number;
  try {
    chainId = await clients.public.getChainId();
  } catch (err) {
    return { ok: false, message: `${where} did not answer: ${shortReason(err)}` };
  }
  if (chainId !== network.chainId) {
    return { ok: false, message: `${where} serves chain id ${chainId}, not the configured chain_id ${network.chainId}: nothing deployed` };
  }
  const configured = network.chain.factory;
  if (configured) {
    let code: string | undefined;
    try {
      code = await clients.public.getCode({ address: getAddress(configured) });
    } catch (err) {
      // Not known to be absent: deploying a second factory on a doubt would be the worse mistake.
      return { ok: false, message: `${where} did not answer whether networks.${network.id}.factory ${configured} exists: ${shortReason(err)}; nothing deployed` };
    }
    if (code && code !== '0x') {
      return { ok: false, message: `networks.${network.id}.factory is already ${configured}, a contract on chain ${chainId}; remove factory and forwarder from the configuration to deploy another (orders already paid keep settling through theirs only if it stays configured)` };
    }
  }
  const balance = await clients.public.getBalance({ address: account.address }).catch((err: unknown) => err as Error);
  if (balance instanceof Error) return { ok: false, message: `${where} did not answer: ${shortReason(balance)}` };
  if (balance === 0n) return { ok: false, message: `the relayer account ${account.address} holds nothing on chain ${chainId}: fund it first (it pays for the deployment and for every settlement)` };
  let txHash: Hex;
  try {
    // The relayer's fee cap (max_fee_gwei) holds for the deployment as for settlements.
    const fees = await clients.public.estimateFeesPerGas();
    if (options.maxFeePerGas !== undefined && fees.maxFeePerGas > options.maxFeePerGas) {
      return { ok: false, message: `gas costs ${fees.maxFeePerGas} wei now, above networks.${network.id}.max_fee_gwei (${options.maxFeePerGas} wei): nothing deployed; try again later or raise the cap` };
    }
    txHash = await clients.wallet.deployContract({ abi: forwarderFactoryAbi, bytecode: forwarderFactoryBytecode, maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas });
  } catch (err) {
    return { ok: false, message: `the deployment was not sent: ${shortReason(err)}` };
  }
  options.onSent?.(txHash);
  let receipt;
  try {
    receipt = await minedReceipt(clients, txHash, { timeoutMs: options.timeoutMs ?? 600_000 });
  } catch (err) {
    return { ok: false, message: `the deployment ${txHash} was sent but not seen mined: ${shortReason(err)}; look it up before deploying again` };
  }
  if (receipt.status !== 'success' || !receipt.contractAddress) return { ok: false, message: `the deployment ${txHash} reverted (gas used ${receipt.gasUsed})` };
  const factory = getAddress(receipt.contractAddress);
  let code: Awaited<ReturnType<typeof readForwarderCode>>;
  try {
    code = await readForwarderCode(clients.public, factory);
  } catch (err) {
    // Deployed: the operator needs the address whatever the read says (the start checks it again).
    return { ok: false, message: `the factory was deployed at ${factory} (transaction ${txHash}), but reading its forwarder back failed: ${shortReason(err)}; configure factory ${factory} and take forwarder from its implementation() once the endpoint answers` };
  }
  return { ok: true, factory, forwarder: code.implementation, initCodeHash: code.initCodeHash, txHash, gasUsed: receipt.gasUsed, relayer: account.address, chainId, block: Number(receipt.blockNumber) };
}
