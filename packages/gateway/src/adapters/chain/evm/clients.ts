// viem clients for one chain reached through one JSON-RPC URL, and waiting for transactions:
// what the deploy helpers, the devnet and the tests share. (The watcher builds its own clients
// with failover between URLs.)
import { BaseError, createPublicClient, createWalletClient, defineChain, getAddress, http, type Account, type Address, type Chain, type Hex, type PublicClient, TransactionReceiptNotFoundError, type TransactionReceipt, type Transport, type WalletClient } from 'viem';

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

/**
 * The receipt of `hash` once mined, whatever its status; throws when none came within
 * `timeoutMs` (default 60 s). The receipt is asked for every polling interval until it is there,
 * and a failed question is asked again (the failure is named if time runs out). viem's
 * `waitForTransactionReceipt` asks once, then again only when a new block arrives; under
 * automine no block follows the last transaction, so a node that had not indexed the receipt
 * when first asked (seen on a loaded machine during the devnet's set-up) left the wait hanging
 * for its whole time.
 */
export async function minedReceipt(clients: EvmClients, hash: Hex, options: { readonly timeoutMs?: number } = {}): Promise<TransactionReceipt> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const started = performance.now();
  let failure: unknown = null;
  for (;;) {
    const receipt = await clients.public.getTransactionReceipt({ hash }).catch((err: unknown) => {
      if (!(err instanceof TransactionReceiptNotFoundError)) failure = err;
      return null;
    });
    if (receipt) return receipt;
    if (performance.now() - started >= timeoutMs) {
      throw new Error(`no receipt for transaction ${hash} within ${timeoutMs} ms${failure === null ? '' : ` (last failure: ${shortReason(failure)})`}`);
    }
    await new Promise((resolve) => setTimeout(resolve, clients.public.pollingInterval));
  }
}

/** The receipt of `hash` once mined (see `minedReceipt`); throws when the transaction reverted. */
export async function confirmed(clients: EvmClients, hash: Hex, options: { readonly timeoutMs?: number } = {}): Promise<TransactionReceipt> {
  const receipt = await minedReceipt(clients, hash, options);
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
