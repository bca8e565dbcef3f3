// The networks step of order creation (PROTOCOL §7 41027/41031/41035, §8 41036/41037): which
// (network, currency) pairs an order may be paid with, before fees drop any of them.

import type { CurrencySpec, Deployment, NetworkDeployment, NetworkId } from './catalogue.js';
import { currencyOn, findNetwork, networksCarrying, parseNetworkId } from './catalogue.js';
import type { MerchantView } from './merchant.js';
import type { PaymentCurrencyNetworks, ProOrderRequest, StandardOrderRequest } from './order-request.js';
import type { Refusal } from './result.js';
import { OrderErrors, refuse } from './result.js';

/** A (network, currency) pair an order could be paid with. */
export interface Candidate {
  readonly network: NetworkDeployment;
  readonly currency: CurrencySpec;
}

export type CandidatesResult = { readonly ok: true; readonly candidates: readonly Candidate[] } | Refusal;

export function hasWallet(merchant: MerchantView, id: NetworkId): boolean {
  const w = merchant.wallets[id];
  return typeof w === 'string' && w !== '';
}

/**
 * The networks of a list as sent (digit strings), each a known enum present in the deployment
 * and none repeated; else 41027.
 */
function resolveNetworkList(
  list: readonly string[],
  deployment: Deployment,
  label: string,
): { ok: true; networks: NetworkDeployment[] } | Refusal {
  const out: NetworkDeployment[] = [];
  for (const raw of list) {
    const id = parseNetworkId(raw);
    const network = id === null ? null : findNetwork(deployment, id);
    if (!network) return refuse(OrderErrors.NETWORK_NOT_SUPPORTED, `${label}: network ${raw} is not supported`);
    if (out.includes(network)) return refuse(OrderErrors.NETWORK_NOT_SUPPORTED, `${label}: network ${raw} is listed twice`);
    out.push(network);
  }
  return { ok: true, networks: out };
}

function noWallet(id: NetworkId): Refusal {
  return refuse(OrderErrors.NO_EXTERNAL_WALLET, `the merchant has no external wallet on network ${id}`);
}

/**
 * Standard edition. With receive_network: every listed network must exist (41027), carry the
 * currency (41031) and have the merchant's wallet (41035). Without it: every network carrying the
 * currency where the merchant has a wallet; none -> 41035.
 */
export function standardCandidates(req: StandardOrderRequest, deployment: Deployment, merchant: MerchantView): CandidatesResult {
  const code = req.merchantOrderCurrency;
  if (req.receiveNetwork === null) {
    const carriers = networksCarrying(deployment, code);
    const candidates = carriers.flatMap((network) => {
      const currency = currencyOn(network, code);
      return currency && hasWallet(merchant, network.id) ? [{ network, currency }] : [];
    });
    if (candidates.length === 0) {
      return refuse(OrderErrors.NO_EXTERNAL_WALLET, `the merchant has no external wallet on any network carrying ${code}`);
    }
    return { ok: true, candidates };
  }
  const listed = resolveNetworkList(req.receiveNetwork, deployment, 'receive_network');
  if (!listed.ok) return listed;
  const candidates: Candidate[] = [];
  for (const network of listed.networks) {
    const currency = currencyOn(network, code);
    if (!currency) return refuse(OrderErrors.NETWORK_CURRENCY_NOT_SUPPORTED, `network ${network.id} does not carry ${code}`);
    candidates.push({ network, currency });
  }
  const missing = candidates.find((c) => !hasWallet(merchant, c.network.id));
  return missing ? noWallet(missing.network.id) : { ok: true, candidates };
}

function duplicates(list: readonly PaymentCurrencyNetworks[]): Refusal | null {
  const codes = new Set<string>();
  for (const e of list) {
    if (codes.has(e.currency)) return refuse(OrderErrors.DUPLICATE_CURRENCY, `available_payment_currency_networks: currency ${e.currency} is listed twice`);
    codes.add(e.currency);
  }
  for (const e of list) {
    const nets = e.networks ?? [];
    const dup = nets.find((n, i) => nets.indexOf(n) !== i);
    if (dup !== undefined) {
      return refuse(OrderErrors.DUPLICATE_NETWORK, `available_payment_currency_networks: network ${dup} is listed twice for ${e.currency}`);
    }
  }
  return null;
}

interface Wanted {
  readonly code: string;
  /** null: every network carrying the currency (within the receive_network filter). */
  readonly networks: readonly NetworkDeployment[] | null;
}

/**
 * Pairs of the explicit list: each currency must be one the deployment carries somewhere (41009),
 * each pair carried (41031) and, when named, have a wallet (41035).
 */
function listedPairs(wanted: readonly Wanted[], deployment: Deployment, filter: readonly NetworkDeployment[] | null, merchant: MerchantView): CandidatesResult {
  const inFilter = (n: NetworkDeployment) => filter === null || filter.includes(n);
  const pairs: { candidate: Candidate; named: boolean }[] = [];
  for (const w of wanted) {
    // §7: a currency that no network of the deployment carries is 41009 (not a pair's 41031).
    if (networksCarrying(deployment, w.code).length === 0) {
      return refuse(OrderErrors.CURRENCY_NOT_SUPPORTED, `available_payment_currency_networks: currency ${w.code} is not supported`);
    }
    const pool = w.networks ?? networksCarrying(deployment, w.code).filter(inFilter);
    if (pool.length === 0) return refuse(OrderErrors.NETWORK_CURRENCY_NOT_SUPPORTED, `currency ${w.code} is not supported on the order's networks`);
    for (const network of pool) {
      const currency = currencyOn(network, w.code);
      if (!currency || !inFilter(network)) {
        return refuse(OrderErrors.NETWORK_CURRENCY_NOT_SUPPORTED, `network ${network.id} does not support ${w.code} for this order`);
      }
      pairs.push({ candidate: { network, currency }, named: w.networks !== null });
    }
  }
  const named = pairs.find((p) => p.named && !hasWallet(merchant, p.candidate.network.id));
  if (named) return noWallet(named.candidate.network.id);
  const candidates = pairs.filter((p) => hasWallet(merchant, p.candidate.network.id)).map((p) => p.candidate);
  // Per entry: an entry without networks needs at least one network with a wallet.
  const empty = wanted.find((w) => !candidates.some((c) => c.currency.code === w.code));
  if (empty) return refuse(OrderErrors.NO_EXTERNAL_WALLET, `the merchant has no external wallet on any network carrying ${empty.code}`);
  return { ok: true, candidates };
}

/**
 * Pro edition, checked in this order: 41036 a currency listed twice, 41037 a network listed
 * twice in one entry, 41027 an unknown network (receive_network, then the list), 41009 a listed
 * currency no network of the deployment carries (as §7 answers it), 41031 a pair
 * the deployment (or the receive_network filter) does not offer, 41035 a network of
 * receive_network or of an entry without the merchant's wallet, or an entry/order with no network
 * left that has one. receive_network, when sent, restricts the pairs to its networks (and, as in
 * the standard edition, each of them needs the merchant's wallet).
 */
export function proCandidates(req: ProOrderRequest, deployment: Deployment, merchant: MerchantView): CandidatesResult {
  const list = req.availablePaymentCurrencyNetworks;
  const dup = list ? duplicates(list) : null;
  if (dup) return dup;
  let filter: NetworkDeployment[] | null = null;
  if (req.receiveNetwork !== null) {
    const r = resolveNetworkList(req.receiveNetwork, deployment, 'receive_network');
    if (!r.ok) return r;
    filter = r.networks;
  }
  const pairs = list ? listedProPairs(list, deployment, filter, merchant) : everyPair(filter ?? deployment.networks, merchant);
  if (!pairs.ok) return pairs;
  // receive_network names its networks as the standard edition's does: each needs a wallet
  // (after the pairs' own 41027/41031, like every 41035).
  const filterless = filter?.find((n) => !hasWallet(merchant, n.id));
  return filterless ? noWallet(filterless.id) : pairs;
}

/** The pairs of available_payment_currency_networks (41027 for an entry's unknown network, then listedPairs). */
function listedProPairs(list: readonly PaymentCurrencyNetworks[], deployment: Deployment, filter: readonly NetworkDeployment[] | null, merchant: MerchantView): CandidatesResult {
  const wanted: Wanted[] = [];
  for (const [i, e] of list.entries()) {
    if (e.networks === null) {
      wanted.push({ code: e.currency, networks: null });
      continue;
    }
    const r = resolveNetworkList(e.networks, deployment, `available_payment_currency_networks[${i}].networks`);
    if (!r.ok) return r;
    wanted.push({ code: e.currency, networks: r.networks });
  }
  return listedPairs(wanted, deployment, filter, merchant);
}

/** Every pair of `networks` the merchant has a wallet on; none: 41035. */
function everyPair(networks: readonly NetworkDeployment[], merchant: MerchantView): CandidatesResult {
  const candidates = networks.filter((n) => hasWallet(merchant, n.id)).flatMap((network) => network.currencies.map((currency) => ({ network, currency })));
  if (candidates.length === 0) return refuse(OrderErrors.NO_EXTERNAL_WALLET, 'the merchant has no external wallet on any network of the order');
  return { ok: true, candidates };
}
