// viem clients for one chain reached through one JSON-RPC URL, and waiting for transactions:
// what the deploy helpers, the devnet and the tests share. (The watcher builds its own clients
// with failover between URLs.)
import { BaseError, createPublicClient, createWalletClient, defineChain, getAddress, http, type Account, type Address, type Chain, type Hex, type PublicClient, type TransactionReceipt, type Transport, type WalletClient } from 'viem';

export interface EvmClients {
  readonly public: PublicClient<Transport, Chain>;
  /** Signs with a local account (a private key), so it works against any node, not only anvil. */
  readonly wallet: WalletClient<Transport, Chain, Account>;
}

export interface EvmClientOptions {
  /** How often receipts and blocks are polled; viem's 4 s default is far too slow for a devnet. */
  readonly pollingIntervalMs?: number;
  /** Per HTTP request, milliseconds (default 10 000). */
  readonly timeoutMs?: number;
}

/** A chain as viem wants it; the native coin's name only shows in wallets, 18 decimals everywhere in §5. */
export function evmChain(chainId: number, rpcUrl: string, name = `chain ${chainId}`): Chain {
  return defineChain({ id: chainId, name, nativeCurrency: { name: 'Native coin', symbol: 'NATIVE', decimals: 18 }, rpcUrls: { default: { http: [rpcUrl] } } });
}

export function evmClients(rpcUrl: string, chainId: number, account: Account, options: EvmClientOptions = {}): EvmClients {
  const chain = evmChain(chainId, rpcUrl);
  const transport = http(rpcUrl, { timeout: options.timeoutMs ?? 10_000, retryCount: 0 });
  const pollingInterval = options.pollingIntervalMs ?? 50;
  return {
    // cacheTime 0: viem otherwise serves getBlockNumber from a cache, hiding blocks just mined.
    public: createPublicClient({ chain, transport, pollingInterval, cacheTime: 0 }),
    wallet: createWalletClient({ chain, transport, account, pollingInterval, cacheTime: 0 }),
  };
}

/** The receipt of `hash` once mined; throws when the transaction reverted. */
export async function confirmed(clients: EvmClients, hash: Hex): Promise<TransactionReceipt> {
  const receipt = await clients.public.waitForTransactionReceipt({ hash, timeout: 60_000 });
  if (receipt.status !== 'success') throw new Error(`transaction ${hash} reverted`);
  return receipt;
}

/** The address a mined contract-creation transaction deployed, checksummed (receipts give it in lower case). */
export async function deployedAddress(clients: EvmClients, hash: Hex): Promise<{ address: Address; receipt: TransactionReceipt }> {
  const receipt = await confirmed(clients, hash);
  if (!receipt.contractAddress) throw new Error(`transaction ${hash} created no contract`);
  return { address: getAddress(receipt.contractAddress), receipt };
}

/** Why a chain call failed, in one line: viem's short message (its full one quotes the endpoint URL and the request). */
export function shortReason(err: unknown): string {
  return err instanceof BaseError ? err.shortMessage : err instanceof Error ? err.message : String(err);
}
