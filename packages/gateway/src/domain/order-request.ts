// Parsing of the order creation bodies (PROTOCOL §7 standard, §8 pro, §9 splits) into typed
// requests. Only presence (40003) and JSON shape (40009) are checked here; every rule with its
// own code (request_no pattern, amounts, URLs, networks, addresses…) is left to planOrder so the
// pinned "which error wins" order of §7 holds. Presence is checked for every required field
// before any type, so a body with both faults answers 40003.
//
// Absent means: the key is missing, null, or "" (empty string). That is 40003 for a required
// field, and "not sent" for an optional one (so `"notify_url": ""` means no notify URL).

import type { Refusal } from './result.js';
import { OrderErrors, refuse } from './result.js';

export type Edition = 'standard' | 'pro';

/** divide_detail as sent (§9); amounts and addresses are unchecked text here. */
export interface DivideDetailRequest {
  readonly sellerAmount: string | null;
  readonly sellerAddr: string | null;
  readonly merchantAmount: string | null;
  /** Absent on the wire = []. */
  readonly otherDetails: readonly OtherDetailRequest[];
}

export interface OtherDetailRequest {
  readonly receiverAddr: string;
  readonly amount: string;
}

/** One entry of the compatibility form `split_details` (§9); type/purpose any integer here. */
export interface SplitDetailEntry {
  readonly splitType: number;
  readonly splitPurpose: number;
  readonly receiver: string;
  readonly amount: string;
}

export type SplitRequest =
  | { readonly form: 'divide_detail'; readonly detail: DivideDetailRequest }
  | { readonly form: 'split_details'; readonly entries: readonly SplitDetailEntry[] };

/** One entry of `available_payment_currency_networks` (§8); networks as digit strings. */
export interface PaymentCurrencyNetworks {
  readonly currency: string;
  /** null: every network carrying the currency (the key absent, null or []). */
  readonly networks: readonly string[] | null;
}

interface OrderRequestBase {
  readonly merchantNo: string;
  readonly requestNo: string;
  /** Unix seconds. */
  readonly merchantOrderTime: number;
  /** Absolute deadline in Unix seconds as sent; null when not sent. */
  readonly merchantOrderTimeout: number | null;
  readonly merchantOrderDesc: string | null;
  readonly goodsInfo: string | null;
  readonly merchantOrderNo: string | null;
  readonly merchantApplicationUserId: string | null;
  readonly notifyUrl: string | null;
  readonly redirectUrl: string | null;
  readonly businessInfo: string | null;
  readonly extension: string | null;
  /** receive_network as digit strings ("2,4" or 2 -> ["2","4"] / ["2"]); null when not sent. */
  readonly receiveNetwork: readonly string[] | null;
  readonly split: SplitRequest | null;
}

export interface StandardOrderRequest extends OrderRequestBase {
  readonly edition: 'standard';
  readonly totalAmount: string;
  readonly merchantOrderCurrency: string;
}

export interface ProOrderRequest extends OrderRequestBase {
  readonly edition: 'pro';
  readonly pricingCurrency: string;
  readonly pricingAmount: string;
  /** null when not sent (or sent as []): every pair the merchant can receive. */
  readonly availablePaymentCurrencyNetworks: readonly PaymentCurrencyNetworks[] | null;
}

export type CreateOrderRequest = StandardOrderRequest | ProOrderRequest;

export type ParseOrderResult = { readonly ok: true; readonly request: CreateOrderRequest } | Refusal;

const REQUIRED: Readonly<Record<Edition, readonly string[]>> = {
  standard: ['merchant_no', 'request_no', 'merchant_order_time', 'total_amount', 'merchant_order_currency'],
  pro: ['merchant_no', 'request_no', 'merchant_order_time', 'pricing_currency', 'pricing_amount'],
};

/** §7 length limits (characters = Unicode code points) of the free-text fields; over is 40009. */
const TEXT_LIMITS: Readonly<Record<string, number>> = {
  merchant_order_desc: 256,
  goods_info: 1024,
  merchant_order_no: 64,
  merchant_application_user_id: 64,
  business_info: 1024,
  extension: 1024,
};

type Json = Readonly<Record<string, unknown>>;

/** Thrown inside this module only, to unwind nested shape checks; never escapes parse. */
class ShapeError {
  constructor(readonly message: string) {}
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isAbsent(v: unknown): boolean {
  return v === undefined || v === null || v === '';
}

function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n += 1;
  return n;
}

function str(obj: Json, key: string, label = key): string | null {
  const v = obj[key];
  if (isAbsent(v)) return null;
  if (typeof v !== 'string') throw new ShapeError(`parameter ${label} must be a string`);
  const limit = TEXT_LIMITS[key];
  if (limit !== undefined && codePoints(v) > limit) {
    throw new ShapeError(`parameter ${label} must be at most ${limit} characters`);
  }
  return v;
}

/** A present string (nested entries: missing there is a shape fault, 40009). */
function reqStr(obj: Json, key: string, label: string): string {
  const v = obj[key];
  if (typeof v !== 'string') throw new ShapeError(`parameter ${label} must be a string`);
  return v;
}

function int(obj: Json, key: string): number | null {
  const v = obj[key];
  if (isAbsent(v)) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new ShapeError(`parameter ${key} must be a non-negative integer`);
  }
  return v;
}

/** An enum sent as a JSON integer or a string of digits (the wire accepts both, §5). */
function enumValue(v: unknown, label: string): string {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return String(v);
  if (typeof v === 'string' && /^[0-9]+$/.test(v)) return v;
  throw new ShapeError(`parameter ${label} must be an integer or a string of digits`);
}

function receiveNetwork(obj: Json): string[] | null {
  const v = obj['receive_network'];
  if (isAbsent(v)) return null;
  if (typeof v === 'number') return [enumValue(v, 'receive_network')];
  if (typeof v !== 'string' || !/^[0-9]+(,[0-9]+)*$/.test(v)) {
    throw new ShapeError('parameter receive_network must be a comma-separated list of network numbers');
  }
  return v.split(',');
}

function array(v: unknown, label: string): readonly unknown[] {
  if (!Array.isArray(v)) throw new ShapeError(`parameter ${label} must be an array`);
  return v;
}

function entry(v: unknown, label: string): Json {
  if (!isObject(v)) throw new ShapeError(`parameter ${label} must be an object`);
  return v;
}

function divideDetail(v: unknown): DivideDetailRequest {
  const o = entry(v, 'divide_detail');
  const others = isAbsent(o['other_details']) ? [] : array(o['other_details'], 'divide_detail.other_details');
  return {
    sellerAmount: str(o, 'seller_amount', 'divide_detail.seller_amount'),
    sellerAddr: str(o, 'seller_addr', 'divide_detail.seller_addr'),
    merchantAmount: str(o, 'merchant_amount', 'divide_detail.merchant_amount'),
    otherDetails: others.map((raw, i) => {
      const label = `divide_detail.other_details[${i}]`;
      const e = entry(raw, label);
      return { receiverAddr: reqStr(e, 'receiver_addr', `${label}.receiver_addr`), amount: reqStr(e, 'amount', `${label}.amount`) };
    }),
  };
}

function splitDetails(v: unknown): SplitDetailEntry[] {
  return array(v, 'split_details').map((raw, i) => {
    const label = `split_details[${i}]`;
    const e = entry(raw, label);
    return {
      splitType: Number(enumValue(e['split_type'], `${label}.split_type`)),
      splitPurpose: Number(enumValue(e['split_purpose'], `${label}.split_purpose`)),
      receiver: reqStr(e, 'receiver', `${label}.receiver`),
      amount: reqStr(e, 'amount', `${label}.amount`),
    };
  });
}

function split(obj: Json): SplitRequest | null {
  const dd = obj['divide_detail'];
  const sd = obj['split_details'];
  // null counts as not sent; {} or [] are sent (and answered by the split rules, e.g. 41015).
  const hasDd = dd !== undefined && dd !== null;
  const hasSd = sd !== undefined && sd !== null;
  if (hasDd && hasSd) throw new ShapeError('send either divide_detail or split_details, not both');
  if (hasDd) return { form: 'divide_detail', detail: divideDetail(dd) };
  if (hasSd) return { form: 'split_details', entries: splitDetails(sd) };
  return null;
}

function paymentCurrencyNetworks(obj: Json): PaymentCurrencyNetworks[] | null {
  const v = obj['available_payment_currency_networks'];
  if (v === undefined || v === null) return null;
  const list = array(v, 'available_payment_currency_networks');
  if (list.length === 0) return null;
  return list.map((raw, i) => {
    const label = `available_payment_currency_networks[${i}]`;
    const e = entry(raw, label);
    const nets = e['networks'];
    const networks =
      nets === undefined || nets === null ? null : array(nets, `${label}.networks`).map((n, j) => enumValue(n, `${label}.networks[${j}]`));
    return { currency: reqStr(e, 'currency', `${label}.currency`), networks: networks && networks.length > 0 ? networks : null };
  });
}

function must<T>(v: T | null): T {
  // Required fields were checked for presence first; null here would be a bug.
  if (v === null) throw new Error('required field vanished');
  return v;
}

function parseShapes(body: Json, edition: Edition): CreateOrderRequest {
  const base: OrderRequestBase = {
    merchantNo: must(str(body, 'merchant_no')),
    requestNo: must(str(body, 'request_no')),
    merchantOrderTime: must(int(body, 'merchant_order_time')),
    merchantOrderTimeout: int(body, 'merchant_order_timeout'),
    merchantOrderDesc: str(body, 'merchant_order_desc'),
    goodsInfo: str(body, 'goods_info'),
    merchantOrderNo: str(body, 'merchant_order_no'),
    merchantApplicationUserId: str(body, 'merchant_application_user_id'),
    notifyUrl: str(body, 'notify_url'),
    redirectUrl: str(body, 'redirect_url'),
    businessInfo: str(body, 'business_info'),
    extension: str(body, 'extension'),
    receiveNetwork: receiveNetwork(body),
    split: split(body),
  };
  if (edition === 'standard') {
    return {
      ...base,
      edition,
      totalAmount: must(str(body, 'total_amount')),
      merchantOrderCurrency: must(str(body, 'merchant_order_currency')),
    };
  }
  return {
    ...base,
    edition,
    pricingCurrency: must(str(body, 'pricing_currency')),
    pricingAmount: must(str(body, 'pricing_amount')),
    availablePaymentCurrencyNetworks: paymentCurrencyNetworks(body),
  };
}

/**
 * The typed request of a parsed JSON body, or 40003 (a required field absent) / 40009 (not a
 * JSON object, a wrong JSON type, an over-long text, a malformed enum list, both split forms).
 * Unknown fields are ignored.
 */
export function parseCreateOrderRequest(body: unknown, edition: Edition): ParseOrderResult {
  if (!isObject(body)) return refuse(OrderErrors.PARAMETER_ERROR, 'request body must be a JSON object');
  for (const field of REQUIRED[edition]) {
    if (isAbsent(body[field])) return refuse(OrderErrors.MISSING_PARAMETER, `missing required parameter: ${field}`);
  }
  try {
    return { ok: true, request: parseShapes(body, edition) };
  } catch (e) {
    if (e instanceof ShapeError) return refuse(OrderErrors.PARAMETER_ERROR, e.message);
    throw e;
  }
}
