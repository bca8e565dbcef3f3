// Split validation (PROTOCOL §9) and the division of a payment among receivers.
//
// Both wire forms become one draft and go through the same checks, in this order (each check
// runs over the whole split before the next one, so the code that wins does not depend on
// entry order):
//   divide_detail:  41015 seller_amount/seller_addr missing or not together,
//                   41026 merchant_amount missing (the same rule as the compatibility form's
//                         "a purpose-2 entry is required": the merchant must take a share,
//                         since the fee is taken from it);
//   split_details:  41005, 41006, 41025 per entry; 41015 no purpose-1 entry, 41016 several;
//                   41026 no purpose-2 entry; 41017 a merchant entry names another merchant;
//   then both:      41014 an amount not a positive decimal; 41019 too many decimals;
//                   41008 the shares do not add up to the order total exactly (§9 lists the
//                         sum right after the amounts, before the addresses);
//                   41032 a bad address (also the zero address or a forwarder factory); 41029 an entry repeated (same receiver and amount);
//                   41033 an address twice; 41034 a merchant CA address; 43011 over 20
//                   receivers.

import { formatAmount, parseAmount } from '@sparkpay/protocol';
import { addressKey, isValidEvmAddress, ZERO_ADDRESS } from './address.js';
import type { Rational } from './money.js';
import { mulRound } from './money.js';
import type { SplitDetailEntry, SplitRequest } from './order-request.js';
import type { Refusal } from './result.js';
import { OrderErrors, refuse } from './result.js';

/** Most receivers a split may list (§9, 43011). */
export const MAX_SPLIT_RECEIVERS = 20;

export interface SplitShare {
  readonly address: string;
  readonly amount: bigint;
}

/**
 * A validated split in units of the order's pricing precision (10^-precision of the pricing
 * currency). Invariant: seller.amount + merchantAmount + Σ others = the order total; all > 0.
 * Addresses are as the merchant sent them.
 */
export interface SplitPlan {
  readonly seller: SplitShare;
  readonly merchantAmount: bigint;
  readonly others: readonly SplitShare[];
}

/** divide_detail as echoed in queries: amounts as canonical decimal strings. */
export interface DivideDetailWire {
  readonly seller_amount: string;
  readonly seller_addr: string;
  readonly merchant_amount: string;
  readonly other_details: readonly { readonly receiver_addr: string; readonly amount: string }[];
}

/** A split's shares in one payment option, in token base units. merchant includes the fee. */
export interface OptionSplit {
  readonly seller: SplitShare;
  /** The merchant's share before the platform fee is taken from it (> fee by 41007). */
  readonly merchant: bigint;
  readonly others: readonly SplitShare[];
}

export interface SplitContext {
  readonly merchantNo: string;
  /** Pricing precision: amounts are in units of 10^-precision. */
  readonly precision: number;
  /** The order total in the same units. */
  readonly total: bigint;
  /** The merchant's CA addresses on the candidate networks (41034). */
  readonly caAddresses: readonly string[];
  /**
   * Addresses nothing can be paid out to on the candidate networks, with what they are (41032):
   * the forwarder factories, which refuse a plan paying themselves (ADR 0009). The zero address
   * is always refused.
   */
  readonly unpayable?: readonly { readonly address: string; readonly what: string }[];
}

interface Text {
  readonly label: string;
  readonly text: string;
}

/** The common shape both wire forms reduce to before the shared checks. */
interface Draft {
  readonly seller: { readonly amount: Text; readonly addr: Text };
  /** One for divide_detail; every purpose-2/3 amount for split_details (summed). */
  readonly merchantAmounts: readonly Text[];
  readonly others: readonly { readonly amount: Text; readonly addr: Text }[];
  /** Identity of each entry for 41029, paired with its amount. */
  readonly entries: readonly { readonly key: string; readonly amount: Text }[];
  readonly receiverCount: number;
  readonly totalLabel: string;
}

type DraftResult = { ok: true; draft: Draft } | Refusal;

function divideDraft(detail: Extract<SplitRequest, { form: 'divide_detail' }>['detail']): DraftResult {
  const { sellerAmount, sellerAddr, merchantAmount } = detail;
  if (sellerAmount === null || sellerAddr === null) {
    const msg = sellerAmount === null && sellerAddr === null
      ? 'divide_detail has no seller: seller_amount and seller_addr are required'
      : 'divide_detail.seller_amount and divide_detail.seller_addr must be sent together';
    return refuse(OrderErrors.SPLIT_MISSING_MAIN_RECIPIENT, msg);
  }
  if (merchantAmount === null) {
    return refuse(OrderErrors.SPLIT_MISSING_MERCHANT, 'divide_detail.merchant_amount is required');
  }
  const others = detail.otherDetails.map((o, i) => ({
    amount: { label: `divide_detail.other_details[${i}].amount`, text: o.amount },
    addr: { label: `divide_detail.other_details[${i}].receiver_addr`, text: o.receiverAddr },
  }));
  return {
    ok: true,
    draft: {
      seller: {
        amount: { label: 'divide_detail.seller_amount', text: sellerAmount },
        addr: { label: 'divide_detail.seller_addr', text: sellerAddr },
      },
      merchantAmounts: [{ label: 'divide_detail.merchant_amount', text: merchantAmount }],
      others,
      entries: others.map((o) => ({ key: addressKey(o.addr.text), amount: o.amount })),
      receiverCount: 1 + others.length,
      totalLabel: 'seller_amount + merchant_amount + other_details amounts',
    },
  };
}

function firstIndex(entries: readonly SplitDetailEntry[], bad: (e: SplitDetailEntry) => boolean): number {
  return entries.findIndex(bad);
}

/**
 * split_details (compatibility form) onto the draft. Type 1 = merchant number, 2 = wallet
 * address; purpose 1 = main amount (the seller), 2 = merchant service fee, 3 = other fee. This
 * gateway pays merchants only to their own wallets, so purpose-2 and purpose-3 entries must name
 * the ordering merchant (41017) and their amounts add up to merchant_amount.
 */
function compatDraft(entries: readonly SplitDetailEntry[], merchantNo: string): DraftResult {
  let i = firstIndex(entries, (e) => e.splitType !== 1 && e.splitType !== 2);
  if (i >= 0) return refuse(OrderErrors.SPLIT_TYPE_UNSUPPORTED, `split_details[${i}].split_type must be 1 or 2`);
  i = firstIndex(entries, (e) => e.splitPurpose !== 1 && e.splitPurpose !== 2 && e.splitPurpose !== 3);
  if (i >= 0) return refuse(OrderErrors.SPLIT_PURPOSE_UNSUPPORTED, `split_details[${i}].split_purpose must be 1, 2 or 3`);
  i = firstIndex(entries, (e) => (e.splitType === 2) !== (e.splitPurpose === 1));
  if (i >= 0) {
    return refuse(OrderErrors.SPLIT_TYPE_PURPOSE_MISMATCH, `split_details[${i}]: split_type 2 goes only with split_purpose 1, split_type 1 only with 2 or 3`);
  }
  const main = entries.map((e, k) => [e, k] as const).filter(([e]) => e.splitPurpose === 1);
  const [first] = main;
  if (!first) return refuse(OrderErrors.SPLIT_MISSING_MAIN_RECIPIENT, 'split_details has no split_purpose 1 (main amount) entry');
  if (main.length > 1) return refuse(OrderErrors.SPLIT_MULTIPLE_MAIN_RECIPIENTS, 'split_details has more than one split_purpose 1 entry');
  if (!entries.some((e) => e.splitPurpose === 2)) {
    return refuse(OrderErrors.SPLIT_MISSING_MERCHANT, 'split_details has no split_purpose 2 (merchant service fee) entry');
  }
  i = firstIndex(entries, (e) => e.splitType === 1 && e.receiver !== merchantNo);
  if (i >= 0) return refuse(OrderErrors.FEE_MERCHANT_MISMATCH, `split_details[${i}].receiver must be the ordering merchant ${merchantNo}`);
  const [seller, k] = first;
  const amount = (idx: number, e: SplitDetailEntry): Text => ({ label: `split_details[${idx}].amount`, text: e.amount });
  return {
    ok: true,
    draft: {
      seller: { amount: amount(k, seller), addr: { label: `split_details[${k}].receiver`, text: seller.receiver } },
      merchantAmounts: entries.flatMap((e, idx) => (e.splitPurpose === 1 ? [] : [amount(idx, e)])),
      others: [],
      entries: entries.map((e, idx) => ({ key: `${e.splitType}|${e.splitPurpose}|${e.receiver.toLowerCase()}`, amount: amount(idx, e) })),
      receiverCount: entries.length,
      totalLabel: 'the split_details amounts',
    },
  };
}

function checkAmounts(texts: readonly Text[], precision: number): { ok: true; values: Map<Text, bigint> } | Refusal {
  const parsed = texts.map((t) => [t, parseAmount(t.text, precision)] as const);
  for (const [t, r] of parsed) {
    if (!r.ok && r.error !== 'PRECISION') return refuse(OrderErrors.INVALID_SPLIT_AMOUNT, `${t.label} must be a positive decimal amount`);
  }
  const values = new Map<Text, bigint>();
  for (const [t, r] of parsed) {
    if (!r.ok) return refuse(OrderErrors.SPLIT_AMOUNT_TOO_PRECISE, `${t.label} has more than ${precision} decimal places`);
    values.set(t, r.value);
  }
  return { ok: true, values };
}

function checkDraft(d: Draft, ctx: SplitContext): { ok: true; split: SplitPlan } | Refusal {
  const amounts = [d.seller.amount, ...d.merchantAmounts, ...d.others.map((o) => o.amount)];
  const checked = checkAmounts(amounts, ctx.precision);
  if (!checked.ok) return checked;
  const value = (t: Text): bigint => checked.values.get(t) ?? 0n;
  const sum = amounts.reduce((s, t) => s + value(t), 0n);
  if (sum !== ctx.total) {
    return refuse(OrderErrors.SPLIT_TOTAL_MISMATCH, `${d.totalLabel} (${formatAmount(sum, ctx.precision)}) must equal the order total (${formatAmount(ctx.total, ctx.precision)})`);
  }
  const addrs = [d.seller.addr, ...d.others.map((o) => o.addr)];
  const bad = addrs.find((a) => !isValidEvmAddress(a.text));
  if (bad) return refuse(OrderErrors.INVALID_SPLIT_ADDRESS, `${bad.label} must be an EVM address (0x + 40 hex, EIP-55 checksum if mixed case)`);
  const unpayable = new Map([[ZERO_ADDRESS, 'the zero address'], ...(ctx.unpayable ?? []).map((u) => [addressKey(u.address), u.what] as const)]);
  const dead = addrs.find((a) => unpayable.has(addressKey(a.text)));
  if (dead) return refuse(OrderErrors.INVALID_SPLIT_ADDRESS, `${dead.label} is ${unpayable.get(addressKey(dead.text))}: nothing can be paid out to it`);
  const entryKeys = new Set<string>();
  for (const e of d.entries) {
    const key = `${e.key}|${value(e.amount)}`;
    if (entryKeys.has(key)) return refuse(OrderErrors.DUPLICATE_SPLIT_RECEIVER, `${e.amount.label}: the same receiver entry is repeated`);
    entryKeys.add(key);
  }
  const seen = new Set<string>();
  for (const a of addrs) {
    if (seen.has(addressKey(a.text))) return refuse(OrderErrors.DUPLICATE_SPLIT_ADDRESS, `${a.label}: the address appears twice in the split`);
    seen.add(addressKey(a.text));
  }
  const ca = new Set(ctx.caAddresses.map(addressKey));
  const caHit = addrs.find((a) => ca.has(addressKey(a.text)));
  if (caHit) return refuse(OrderErrors.SPLIT_ADDRESS_IS_CA_ADDRESS, `${caHit.label} is the merchant's CA address`);
  if (d.receiverCount > MAX_SPLIT_RECEIVERS) {
    return refuse(OrderErrors.TOO_MANY_SPLITS, `a split lists at most ${MAX_SPLIT_RECEIVERS} receivers`);
  }
  return {
    ok: true,
    split: {
      seller: { address: d.seller.addr.text, amount: value(d.seller.amount) },
      merchantAmount: d.merchantAmounts.reduce((s, t) => s + value(t), 0n),
      others: d.others.map((o) => ({ address: o.addr.text, amount: value(o.amount) })),
    },
  };
}

/** Validates a split of either wire form against the order (§9 rules, order at file top). */
export function validateSplit(split: SplitRequest, ctx: SplitContext): { ok: true; split: SplitPlan } | Refusal {
  const drafted = split.form === 'divide_detail' ? divideDraft(split.detail) : compatDraft(split.entries, ctx.merchantNo);
  return drafted.ok ? checkDraft(drafted.draft, ctx) : drafted;
}

/** The divide_detail echo of a split (compatibility-form splits echo their mapped form). */
export function splitToWire(split: SplitPlan, precision: number): DivideDetailWire {
  return {
    seller_amount: formatAmount(split.seller.amount, precision),
    seller_addr: split.seller.address,
    merchant_amount: formatAmount(split.merchantAmount, precision),
    other_details: split.others.map((o) => ({ receiver_addr: o.address, amount: formatAmount(o.amount, precision) })),
  };
}

/**
 * The split's shares in one payment option. `toBase` is the exact factor from pricing units to
 * the option's token base units, and `amountBase` the (rounded-up) converted total. Rounding
 * rule: seller and other shares are rounded DOWN to a base unit; the merchant takes the
 * remainder, so the shares sum exactly to amountBase. Since amountBase >= total × toBase, the
 * merchant's share is >= merchantAmount × toBase > 0: no share is negative, none is lost.
 */
export function allocateSplit(split: SplitPlan, amountBase: bigint, toBase: Rational): OptionSplit {
  const seller = { address: split.seller.address, amount: mulRound(split.seller.amount, toBase, 'floor') };
  const others = split.others.map((o) => ({ address: o.address, amount: mulRound(o.amount, toBase, 'floor') }));
  const merchant = others.reduce((m, o) => m - o.amount, amountBase - seller.amount);
  return { seller, merchant, others };
}

/**
 * The first seller or other share (in pricing units, as the merchant named it) that rounds down
 * to 0 base units in an option, or null. Every share is positive by §9 (41014), so a receiver
 * paid nothing in some token would be a receiver the split names and the settlement forgets (its
 * share going to the merchant): such an option is left out of the order. Only a Pro order can
 * meet it, priced in a currency whose smallest unit is worth less than a base unit of a payment
 * token (0.000001 IRIS in 6-decimal USDT); a standard order scales each share by 10^(decimals -
 * precision) >= 1.
 */
export function emptyShare(split: SplitPlan, shares: OptionSplit): SplitShare | null {
  if (shares.seller.amount === 0n) return split.seller;
  const i = shares.others.findIndex((o) => o.amount === 0n);
  return i >= 0 ? (split.others[i] ?? null) : null;
}
