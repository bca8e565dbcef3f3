// Business validation of an order creation request and the plan the store persists (PROTOCOL
// §7-§9). The rules run in the pinned order of §7, first failure wins:
//   41023 request_no; 41009 currency; 41013, 41018 amount; 41021, 41012 times; 41001, 41000
//   URLs; networks (order-networks.ts); split (split.ts); fees (order-options.ts).
// Parsing (40003/40009) and the merchant checks (checkMerchant) come before, in the caller.

import { parseAmount } from '@sparkpay/protocol';
import type { Deployment, NetworkDeployment } from './catalogue.js';
import { FIAT_CURRENCIES, findNetwork, isFiatCode, networksCarrying, parseNetworkId } from './catalogue.js';
import type { MerchantView } from './merchant.js';
import type { Candidate } from './order-networks.js';
import { proCandidates, standardCandidates } from './order-networks.js';
import type { PaymentOption, Pricing } from './order-options.js';
import { buildOptions } from './order-options.js';
import type { CreateOrderRequest, Edition } from './order-request.js';
import type { RateTable } from './rates.js';
import { formatRate } from './rates.js';
import type { Refusal } from './result.js';
import { OrderErrors, refuse } from './result.js';
import type { DivideDetailWire, SplitPlan } from './split.js';
import { splitToWire, validateSplit } from './split.js';
import { isValidHttpUrl } from './url.js';

export { checkMerchant } from './merchant.js';
export type { MerchantView } from './merchant.js';
export type { PaymentOption, Pricing } from './order-options.js';

/** Default payment window when merchant_order_timeout is not sent (§7: now + 30 min). */
export const DEFAULT_TIMEOUT_SECONDS = 1800;
/** Longest payment window (§7: capped at 7 days). */
export const MAX_TIMEOUT_SECONDS = 7 * 24 * 3600;

export interface PlanContext {
  readonly merchant: MerchantView;
  readonly deployment: Deployment;
  /** Rate snapshot; its rates are locked into the plan. */
  readonly rates: RateTable;
  /** Current Unix time in seconds (from the injected clock). */
  readonly nowSeconds: number;
  readonly maxTimeoutSeconds?: number;
  readonly defaultTimeoutSeconds?: number;
}

/** Everything the store needs to create the order. Times in Unix seconds. */
export interface OrderPlan {
  readonly edition: Edition;
  readonly merchantNo: string;
  /** request_no as sent; requestNoKey is its lower case, the idempotency key. */
  readonly requestNo: string;
  readonly requestNoKey: string;
  readonly merchantOrderTime: number;
  /** merchant_order_timeout as sent, null when not sent. */
  readonly merchantOrderTimeout: number | null;
  /** The effective deadline: the timeout (capped at now + max) or now + default. */
  readonly expireTime: number;
  readonly merchantOrderNo: string | null;
  readonly merchantOrderDesc: string | null;
  readonly goodsInfo: string | null;
  readonly merchantApplicationUserId: string | null;
  readonly notifyUrl: string | null;
  readonly redirectUrl: string | null;
  readonly businessInfo: string | null;
  readonly extension: string | null;
  readonly pricing: Pricing;
  /** The split in pricing units (either wire form, normalised), or null. */
  readonly split: SplitPlan | null;
  readonly divideDetailWire: DivideDetailWire | null;
  /** At least one; in candidate order. */
  readonly options: readonly PaymentOption[];
}

export type PlanResult = { readonly ok: true; readonly plan: OrderPlan } | Refusal;

const REQUEST_NO = /^[A-Za-z0-9_]{1,64}$/;

/**
 * The idempotency key of a request_no (its lower case), or null for one no order can hold: a
 * query or close naming such a request_no finds nothing, though its lower case may be a key
 * ("ab\u212A_1", with the Kelvin sign, lowers to "abk_1").
 */
export function requestNoKey(requestNo: string): string | null {
  return REQUEST_NO.test(requestNo) ? requestNo.toLowerCase() : null;
}

function minPrecision(networks: readonly NetworkDeployment[], code: string): number {
  const precisions = networks.flatMap((n) => n.currencies.filter((c) => c.code === code).map((c) => c.precision));
  return Math.min(...precisions);
}

/**
 * The pricing currency and its precision, or 41009. A crypto currency's order precision may in
 * principle differ between networks (not on mainnet); the amount is then held to the smallest
 * precision among the networks it may be paid on, so it is exact on each of them: for a
 * standard order the networks named in receive_network that carry it (when it names any), else
 * every network carrying it; for a pro order priced in crypto, every network carrying it.
 */
function pricingCurrency(req: CreateOrderRequest, deployment: Deployment): { ok: true; code: string; precision: number } | Refusal {
  const code = req.edition === 'standard' ? req.merchantOrderCurrency : req.pricingCurrency;
  const field = req.edition === 'standard' ? 'merchant_order_currency' : 'pricing_currency';
  if (req.edition === 'pro' && isFiatCode(code)) return { ok: true, code, precision: FIAT_CURRENCIES[code].precision };
  const carriers = networksCarrying(deployment, code);
  if (carriers.length === 0) return refuse(OrderErrors.CURRENCY_NOT_SUPPORTED, `${field} ${code} is not supported`);
  if (req.edition === 'standard' && req.receiveNetwork !== null) {
    const named = req.receiveNetwork
      .map(parseNetworkId)
      .flatMap((id) => (id === null ? [] : [findNetwork(deployment, id)]))
      .filter((n): n is NetworkDeployment => n !== null && carriers.includes(n));
    if (named.length > 0) return { ok: true, code, precision: minPrecision(named, code) };
  }
  return { ok: true, code, precision: minPrecision(carriers, code) };
}

function pricingAmount(req: CreateOrderRequest, code: string, precision: number): { ok: true; value: bigint } | Refusal {
  const [field, text] = req.edition === 'standard' ? ['total_amount', req.totalAmount] : ['pricing_amount', req.pricingAmount];
  const r = parseAmount(text, precision);
  if (r.ok) return r;
  if (r.error === 'PRECISION') {
    return refuse(OrderErrors.TOTAL_AMOUNT_TOO_PRECISE, `${field} has more than ${precision} decimal places for ${code}`);
  }
  return refuse(OrderErrors.INVALID_TOTAL_AMOUNT, `${field} must be a positive decimal string (no sign, exponent or spaces; at most 30 integer digits)`);
}

function expireTime(req: CreateOrderRequest, ctx: PlanContext): { ok: true; expire: number } | Refusal {
  const now = ctx.nowSeconds;
  const max = now + (ctx.maxTimeoutSeconds ?? MAX_TIMEOUT_SECONDS);
  const timeout = req.merchantOrderTimeout;
  if (timeout === null) return { ok: true, expire: Math.min(now + (ctx.defaultTimeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS), max) };
  if (timeout <= req.merchantOrderTime) {
    return refuse(OrderErrors.TIMEOUT_NOT_AFTER_ORDER_TIME, 'merchant_order_timeout must be greater than merchant_order_time');
  }
  if (timeout <= now) return refuse(OrderErrors.ORDER_EXPIRED, 'merchant_order_timeout is not in the future');
  return { ok: true, expire: Math.min(timeout, max) };
}

function checkUrls(req: CreateOrderRequest): Refusal | null {
  if (req.notifyUrl !== null && !isValidHttpUrl(req.notifyUrl)) {
    return refuse(OrderErrors.INVALID_NOTIFY_URL, 'notify_url must be an absolute http:// or https:// URL of at most 512 characters');
  }
  if (req.redirectUrl !== null && !isValidHttpUrl(req.redirectUrl)) {
    return refuse(OrderErrors.INVALID_REDIRECT_URL, 'redirect_url must be an absolute http:// or https:// URL of at most 512 characters');
  }
  return null;
}

/** The merchant's CA addresses on the candidates' networks (41034). */
function caAddresses(candidates: readonly Candidate[], merchant: MerchantView): string[] {
  const ids = [...new Set(candidates.map((c) => c.network.id))];
  return ids.flatMap((id) => {
    const a = merchant.caAddresses[id];
    return a ? [a] : [];
  });
}

/**
 * The forwarder factories of the candidates' networks, and the forwarder implementations they
 * create from: a split share paid to either would stay there, or (the implementation refuses the
 * native coin, DirectCall) the whole plan could never be paid out (41032).
 */
function factories(candidates: readonly Candidate[]): { address: string; what: string }[] {
  const seen = new Map<string, { address: string; what: string }[]>();
  for (const { network } of candidates) {
    if (seen.has(network.id)) continue;
    const { factory, forwarder } = network.chain;
    seen.set(network.id, [
      ...(factory ? [{ address: factory, what: `the forwarder factory of network ${network.id}` }] : []),
      ...(forwarder ? [{ address: forwarder, what: `the forwarder implementation of network ${network.id}` }] : []),
    ]);
  }
  return [...seen.values()].flat();
}

/** Validates a parsed request against the merchant, deployment and rates; see the file top. */
export function planOrder(request: CreateOrderRequest, ctx: PlanContext): PlanResult {
  if (!REQUEST_NO.test(request.requestNo)) {
    return refuse(OrderErrors.INVALID_REQUEST_NO, 'request_no must be 1 to 64 characters from [A-Za-z0-9_]');
  }
  const currency = pricingCurrency(request, ctx.deployment);
  if (!currency.ok) return currency;
  const amount = pricingAmount(request, currency.code, currency.precision);
  if (!amount.ok) return amount;
  const times = expireTime(request, ctx);
  if (!times.ok) return times;
  const badUrl = checkUrls(request);
  if (badUrl) return badUrl;
  const cands = request.edition === 'standard'
    ? standardCandidates(request, ctx.deployment, ctx.merchant)
    : proCandidates(request, ctx.deployment, ctx.merchant);
  if (!cands.ok) return cands;
  let split: SplitPlan | null = null;
  if (request.split) {
    const r = validateSplit(request.split, {
      merchantNo: request.merchantNo,
      precision: currency.precision,
      total: amount.value,
      caAddresses: caAddresses(cands.candidates, ctx.merchant),
      unpayable: factories(cands.candidates),
    });
    if (!r.ok) return r;
    split = r.split;
  }
  const price = ctx.rates.usdPrice(currency.code);
  const pricing: Pricing = { currency: currency.code, amount: amount.value, precision: currency.precision, usdRate: price ? formatRate(price) : null };
  const built = buildOptions(request.edition, pricing, cands.candidates, split, ctx.rates);
  if (!built.ok) return built;
  return { ok: true, plan: assemble(request, times.expire, pricing, split, built.options) };
}

function assemble(
  request: CreateOrderRequest,
  expire: number,
  pricing: Pricing,
  split: SplitPlan | null,
  options: readonly PaymentOption[],
): OrderPlan {
  return {
    edition: request.edition,
    merchantNo: request.merchantNo,
    requestNo: request.requestNo,
    requestNoKey: requestNoKey(request.requestNo)!,
    merchantOrderTime: request.merchantOrderTime,
    merchantOrderTimeout: request.merchantOrderTimeout,
    expireTime: expire,
    merchantOrderNo: request.merchantOrderNo,
    merchantOrderDesc: request.merchantOrderDesc,
    goodsInfo: request.goodsInfo,
    merchantApplicationUserId: request.merchantApplicationUserId,
    notifyUrl: request.notifyUrl,
    redirectUrl: request.redirectUrl,
    businessInfo: request.businessInfo,
    extension: request.extension,
    pricing,
    split,
    divideDetailWire: split ? splitToWire(split, pricing.precision) : null,
    options,
  };
}
