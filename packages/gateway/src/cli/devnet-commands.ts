// `sparkpay devnet …`: the running development chains (`sparkpay dev`) seen from another
// terminal. `info` describes them; `pay` is a payer with a funded wallet: it chooses a pair on an
// order's cashier API, as the page does, and sends the money; `reorg` replaces the newest blocks
// of one chain, so a merchant's integration can meet a payment that leaves the chain.
import { join } from 'node:path';
import { erc20Abi, type Address, type Hex, type TransactionReceipt } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { formatAmount, parseAmount } from '@sparkpay/protocol';
import { confirmed, evmClients } from '../adapters/chain/evm/clients.js';
import { DEVNET_BLOCK_TIME, DevnetNotRunningError, readDevnetFile, rpc, type DevnetInfo } from '../adapters/devnet/devnet.js';
import { loadConfig } from './config.js';
import { args, failed, UsageError } from './output.js';

/** The running devnet's description, or null after printing why there is none. */
function runningDevnet(): DevnetInfo | null {
  try {
    return readDevnetFile(join(loadConfig('development').dataDir, 'devnet.json'));
  } catch (err) {
    if (err instanceof DevnetNotRunningError) {
      failed(err.message);
      return null;
    }
    throw err;
  }
}

export function devnetInfoCommand(argv: string[]): number {
  const { out } = args(argv, {});
  const info = runningDevnet();
  if (!info) return 1;
  const { networks, funded_accounts, merchant_wallet } = info;
  out.result({ networks, funded_accounts, merchant_wallet }, () => [
    ...Object.entries(networks).flatMap(([id, n]) => [
      `network ${id} (${n.name}): ${n.rpc_url}, chain id ${n.chain_id}, ${n.confirmations} confirmations`,
      ...(n.native_coin ? [`  ${n.native_coin.padEnd(5)} native coin`] : []),
      ...Object.entries(n.tokens).map(([code, address]) => `  ${code.padEnd(5)} ${address} (${String(n.token_decimals[code])} decimals)`),
      `  factory ${n.factory}, forwarder ${n.forwarder}, fee address ${n.fee_address}`,
    ]),
    `demo merchant wallet ${merchant_wallet}`,
    'funded accounts (1,000,000 of every token, and native coin, on every chain; anvil\'s public development keys):',
    ...funded_accounts.map((a) => `  ${a.address} ${a.private_key}`),
  ]);
  return 0;
}

/** Where an order's cashier JSON API is, from its `cashier_url` (`<public URL>/cashier/<payment_order_no>?t=<token>`). */
interface CashierTarget {
  api: string;
  paymentOrderNo: string;
  token: string;
}

function cashierTarget(given: string): CashierTarget {
  let url: URL;
  try {
    url = new URL(given);
  } catch {
    throw new UsageError(`expected an order's cashier_url (http://…/cashier/<payment_order_no>?t=…), got "${given}"`);
  }
  const match = /^(.*)\/cashier\/([^/]+)$/.exec(url.pathname);
  const token = url.searchParams.get('t');
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !match || !token) {
    throw new UsageError(`expected an order's cashier_url (http://…/cashier/<payment_order_no>?t=…), got "${given}"`);
  }
  return { api: `${url.origin}${match[1]}/cashier/api/orders/${match[2]}`, paymentOrderNo: decodeURIComponent(match[2]!), token };
}

interface Selected {
  network: string;
  currency: string;
  chain_id: number;
  token_contract: string | null;
  address: string;
  amount_base: string;
}

interface CashierView {
  pay_status: string;
  payer_state: string;
  options: { network: string; currency: string }[];
  available_networks: string[];
  selected: Selected | null;
  remaining_base: string | null;
}

/** Attempts of one cashier API call answered 429 (too many requests) before giving up. */
const CASHIER_ATTEMPTS = 10;
/** One cashier API call, answer read included (ms): a gateway that never answers fails the command, not holds it. */
const CASHIER_TIMEOUT_MS = 10_000;

/**
 * The cashier API's answer, or an Error carrying its refusal (what the payer's page would show).
 * A 429 is waited out and asked again, up to CASHIER_ATTEMPTS times and never past `until`
 * (Date.now() ms), when given: then the 429 is the refusal.
 */
async function cashier<T>(target: CashierTarget, path: '' | '/select', body?: unknown, until = Number.POSITIVE_INFINITY): Promise<T> {
  const url = `${target.api}${path}?t=${encodeURIComponent(target.token)}`;
  let res: Response;
  // The cashier's request budget per order (a burst, then 2 per second) answers 429 with
  // Retry-After: wait and ask again, as the page does (a select is idempotent).
  for (let attempt = 1; ; attempt += 1) {
    try {
      const signal = AbortSignal.timeout(CASHIER_TIMEOUT_MS);
      res = await fetch(url, body === undefined ? { signal } : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
    } catch (err) {
      throw new Error(`the gateway at ${new URL(target.api).origin} did not answer: ${(err as Error).message}`);
    }
    const waitMs = 1000 * Math.min(5, Math.max(1, Number(res.headers.get('retry-after')) || 1));
    if (res.status !== 429 || attempt === CASHIER_ATTEMPTS || Date.now() + waitMs > until) break;
    await res.arrayBuffer();
    await new Promise((r) => setTimeout(r, waitMs));
  }
  const answer = (await res.json().catch(() => null)) as (T & { message?: unknown }) | null;
  if (!res.ok || answer === null) throw new Error(`the cashier refused: ${typeof answer?.message === 'string' ? answer.message : `HTTP ${res.status}`}`);
  return answer;
}

export async function devnetPayCommand(argv: string[]): Promise<number> {
  const { values, positionals, out } = args(argv, { network: { type: 'string' }, currency: { type: 'string' }, amount: { type: 'string' }, account: { type: 'string' }, reorg: { type: 'boolean' } }, 1);
  const target = cashierTarget(positionals[0]!);
  const network = values.network as string | undefined;
  const currency = values.currency as string | undefined;
  if ((network === undefined) !== (currency === undefined)) throw new UsageError('--network and --currency go together');
  const info = runningDevnet();
  if (!info) return 1;
  const accountNo = values.account === undefined ? 1 : Number(values.account);
  const payer = Number.isSafeInteger(accountNo) ? info.funded_accounts[accountNo - 1] : undefined;
  if (!payer) throw new UsageError(`--account is one of the funded accounts, 1 to ${info.funded_accounts.length}`);

  try {
    let view = await cashier<CashierView>(target, '');
    let pair = network !== undefined && currency !== undefined ? { network, currency } : view.selected;
    if (!pair) {
      // Nothing chosen yet: the one pair this gateway can take, or the payer must say which.
      const usable = view.options.filter((o) => view.available_networks.includes(o.network));
      if (usable.length !== 1) throw new UsageError(`choose how to pay with --network and --currency: this order can be paid in ${usable.map((o) => `${o.currency} on ${o.network}`).join(', ') || 'nothing here'}`);
      pair = usable[0]!;
    }
    if (view.selected?.network !== pair.network || view.selected.currency !== pair.currency) {
      await cashier<Selected>(target, '/select', { network: pair.network, currency: pair.currency });
      view = await cashier<CashierView>(target, '');
    }
    const selected = view.selected;
    if (!selected) throw new Error('the cashier gave no deposit address');
    const chain = info.networks[selected.network];
    if (!chain || chain.chain_id !== selected.chain_id) {
      return failed(`network ${selected.network} of this order is chain ${selected.chain_id}, not one of this devnet's (${Object.values(info.networks).map((n) => n.chain_id).join(', ')}): is the cashier_url from the gateway "sparkpay dev" runs?`);
    }
    const decimals = selected.token_contract === null ? 18 : chain.token_decimals[selected.currency];
    if (decimals === undefined) return failed(`${selected.currency} is not a token of the devnet's network ${selected.network}`);
    let amount: bigint;
    if (values.amount !== undefined) {
      const parsed = parseAmount(values.amount, decimals);
      if (!parsed.ok) throw new UsageError(`--amount must be a positive decimal with at most ${decimals} decimals (${selected.currency}), got "${String(values.amount)}"`);
      amount = parsed.value;
    } else {
      // The whole amount while nothing has arrived; what is still short once something has.
      const rest = view.remaining_base ?? (view.payer_state === 'AWAITING' ? selected.amount_base : null);
      if (rest === null && view.payer_state === 'CLOSING') return failed('the payment deadline has passed (the order closes once the chain is checked)');
      if (rest === null) return failed(`nothing remains to pay on this order (${view.pay_status})`);
      amount = BigInt(rest);
    }
    // The cashier hands out the address only while something is still to be sent.
    if (!selected.address) return failed(`the cashier hands out no deposit address for this order now (${view.pay_status}): nothing more is to be sent to it`);

    const reorg = values.reorg === true;
    if (reorg && chain.confirmations < 2) return failed(`network ${selected.network} needs ${chain.confirmations} confirmation: a payment is final in its own block, no reorganisation can come before`);
    const clients = evmClients(chain.rpc_url, chain.chain_id, privateKeyToAccount(payer.private_key as Hex), { pollingIntervalMs: 100 });
    const to = selected.address as Address;
    // --reorg: the chain stops making blocks while the payment is mined in one block, seen by the
    // gateway (one confirmation: not final) and that block replaced by one without it.
    if (reorg) await rpc(clients, 'evm_setIntervalMining', [0]);
    let receipt: TransactionReceipt;
    let hash: Hex;
    try {
      hash =
        selected.token_contract === null
          ? await clients.wallet.sendTransaction({ to, value: amount })
          : await clients.wallet.writeContract({ address: selected.token_contract as Address, abi: erc20Abi, functionName: 'transfer', args: [to, amount] });
      if (reorg) await rpc(clients, 'evm_mine', []);
      receipt = await confirmed(clients, hash);
      if (reorg) {
        await seenByGateway(target, hash, selected.address, Number(receipt.blockNumber));
        await rpc(clients, 'anvil_reorg', [1, []]);
      }
    } finally {
      if (reorg) await rpc(clients, 'evm_setIntervalMining', [chain.block_time ?? DEVNET_BLOCK_TIME]);
    }
    const shown = formatAmount(amount, decimals);
    out.result(
      {
        payment_order_no: target.paymentOrderNo,
        network: selected.network,
        currency: selected.currency,
        address: selected.address,
        amount: shown,
        amount_base: amount.toString(),
        from: payer.address,
        tx_hash: hash,
        block_number: Number(receipt.blockNumber),
        reorganised: reorg,
      },
      () => [
        `sent ${shown} ${selected.currency} on network ${selected.network} (${chain.name}) from ${payer.address} to ${selected.address}`,
        reorg
          ? `transaction ${hash} was in block ${receipt.blockNumber}; the gateway saw it, then that block was replaced by one without it: the order shows the payment REVERTED`
          : `transaction ${hash} in block ${receipt.blockNumber}; the order counts it after ${chain.confirmations} confirmation(s)`,
      ],
    );
    return 0;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    return failed((err as Error).message);
  }
}

/** How long `devnet pay --reorg` waits for the gateway to see the payment (the chain makes no block meanwhile). */
const SEEN_WITHIN_MS = 30_000;

/** Resolves once the order's cashier view lists the payment (a token transfer by its hash, a native receipt by its block). */
async function seenByGateway(target: CashierTarget, hash: Hex, address: string, block: number): Promise<void> {
  const native = `balance:${address.toLowerCase()}:${block}`;
  // Twice a second: within the cashier's request budget for the order.
  for (const deadline = Date.now() + SEEN_WITHIN_MS; Date.now() < deadline; await new Promise((r) => setTimeout(r, 500))) {
    const view = await cashier<{ payments: { tx_hash: string }[] }>(target, '', undefined, deadline);
    if (view.payments.some((p) => p.tx_hash.toLowerCase() === hash.toLowerCase() || p.tx_hash === native)) return;
  }
  throw new Error(`the gateway did not see the payment within ${SEEN_WITHIN_MS / 1000} s; it stays on the chain (is "sparkpay dev" scanning?)`);
}

/** Blocks `sparkpay devnet reorg` replaces at most: a devnet is young, and deeper tells nothing more. */
const MAX_REORG_DEPTH = 64;

const hex = (n: number) => `0x${n.toString(16)}`;

export async function devnetReorgCommand(argv: string[]): Promise<number> {
  const { values, out } = args(argv, { network: { type: 'string' }, depth: { type: 'string' }, tx: { type: 'string' }, keep: { type: 'boolean' } });
  const network = values.network as string | undefined;
  if (network === undefined) throw new UsageError('--network is required (2, 3, 4 or 5)');
  if (values.depth !== undefined && values.tx !== undefined) throw new UsageError('give --depth or --tx, not both');
  const info = runningDevnet();
  if (!info) return 1;
  const chain = info.networks[network];
  if (!chain) throw new UsageError(`--network is one of the devnet's networks (${Object.keys(info.networks).join(', ')}), got "${network}"`);
  // No transaction is signed here: any funded account will do for the clients.
  const clients = evmClients(chain.rpc_url, chain.chain_id, privateKeyToAccount(info.funded_accounts[0]!.private_key as Hex));
  try {
    const head = Number(BigInt((await rpc<{ number: string }>(clients, 'eth_getBlockByNumber', ['latest', false])).number));
    let depth: number;
    if (values.tx !== undefined) {
      const tx = String(values.tx);
      if (!/^0x[0-9a-fA-F]{64}$/.test(tx)) throw new UsageError(`--tx is a transaction hash (0x and 64 hex digits), got "${tx}"`);
      const receipt = await rpc<{ blockNumber: string } | null>(clients, 'eth_getTransactionReceipt', [tx]);
      if (!receipt) return failed(`transaction ${tx} is in no block of network ${network}'s chain`);
      depth = head - Number(BigInt(receipt.blockNumber)) + 1;
    } else {
      depth = values.depth === undefined ? 1 : Number(values.depth);
      if (!Number.isSafeInteger(depth) || depth < 1) throw new UsageError(`--depth is a whole number of blocks from 1 to ${MAX_REORG_DEPTH}, got "${String(values.depth)}"`);
    }
    if (depth > MAX_REORG_DEPTH) return failed(`that is ${depth} blocks deep; the devnet replaces at most ${MAX_REORG_DEPTH}`);
    if (depth > head) return failed(`the chain has only ${head} block(s) after its genesis`);
    const first = head - depth + 1;
    // The transactions of the replaced blocks: dropped, or with --keep mined again at the same
    // offsets (each lands in a block of the same number with another hash).
    const txs: { hash: string; offset: number }[] = [];
    for (let n = first; n <= head; n += 1) {
      const block = await rpc<{ transactions: string[] }>(clients, 'eth_getBlockByNumber', [hex(n), false]);
      for (const hash of block.transactions) txs.push({ hash, offset: n - first });
    }
    const replay = values.keep === true ? await Promise.all(txs.map(async (t) => [await rpc<string>(clients, 'eth_getRawTransactionByHash', [t.hash]), t.offset])) : [];
    await rpc<null>(clients, 'anvil_reorg', [depth, replay]);
    const deep = depth > chain.confirmations;
    out.result({ network, depth, from_block: first, to_block: head, kept: values.keep === true, transactions: txs.map((t) => t.hash) }, () => [
      `replaced blocks ${first}-${head} of network ${network} (${chain.name}) with new ones; ${txs.length} transaction(s) ${values.keep === true ? 'mined again in them' : 'dropped'}`,
      ...txs.map((t) => `  ${t.hash}`),
      ...(deep ? [`deeper than the network's ${chain.confirmations} confirmations: payments already final there are not revisited (no real chain should do this)`] : []),
    ]);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    return failed((err as Error).message);
  }
}
