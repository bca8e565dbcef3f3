// The wire views of an order: creation `data` (§7), query `data` (§11), which is also the
// notification payload (§13). Wire names are snake_case; amounts are decimal strings.
import { mainnetDeployment, type Deployment } from '../domain/catalogue.js';
import { paymentSlack } from '../domain/money.js';
import { formatAmount } from '@sparkpay/protocol';
import type { SettlementView } from './ports.js';
import { shownTxHash, type OrderOptionRecord, type OrderRecord, type PaymentRecord } from './records.js';

export interface CreateOrderData {
  payment_order_no: string;
  merchant_no: string;
  request_no: string;
  merchant_order_no: string;
  pay_status: string;
  total_amount?: string;
  merchant_order_currency?: string;
  pricing_amount?: string;
  pricing_currency?: string;
  payment_options: { network: string; currency: string; amount: string }[];
  expire_time: number;
  cashier_url: string;
}

export function cashierUrl(publicUrl: string, order: Pick<OrderRecord, 'paymentOrderNo' | 'cashierToken'>): string {
  return `${publicUrl.replace(/\/+$/, '')}/cashier/${encodeURIComponent(order.paymentOrderNo)}?t=${order.cashierToken}`;
}

function pricing(order: OrderRecord): Record<string, string> {
  return order.edition === 'pro'
    ? { pricing_amount: order.pricingAmountWire, pricing_currency: order.pricingCurrency }
    : { total_amount: order.pricingAmountWire, merchant_order_currency: order.pricingCurrency };
}

function optionView(o: OrderOptionRecord) {
  return { network: o.network, currency: o.currency, amount: formatAmount(o.amount, o.precision) };
}

/**
 * Options by network, then currency code: one order whatever built the record (the plan keeps
 * candidate order, a store load its own), so a repeated request_no answers the same data (§7).
 */
function optionViews(order: OrderRecord) {
  const key = (o: OrderOptionRecord) => `${o.network}\u0000${o.currency}`;
  return [...order.options].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0)).map(optionView);
}

export function createOrderData(order: OrderRecord, publicUrl: string): CreateOrderData {
  return {
    payment_order_no: order.paymentOrderNo,
    merchant_no: order.merchantNo,
    request_no: order.requestNo,
    merchant_order_no: order.merchantOrderNo ?? '',
    pay_status: order.state.status,
    ...pricing(order),
    payment_options: optionViews(order),
    expire_time: order.state.expireTime,
    cashier_url: cashierUrl(publicUrl, order),
  };
}

export function selectedOption(order: OrderRecord): OrderOptionRecord | null {
  return order.options.find((o) => o.network === order.selectedNetwork && o.currency === order.selectedCurrency) ?? null;
}

/**
 * The decimals of a network's token by contract: what a transfer in a token the order has no
 * option for (a wrong token sent to a deposit address, recorded under its contract) is written in.
 */
export type TokenDecimals = (network: string, contract: string) => number | null;

/**
 * TokenDecimals from the configured networks' tokens (the only ones the scan reads), then the
 * mainnet catalogue's (a token taken off the configuration after transfers in it were recorded).
 */
export const deploymentDecimals = (deployment: Deployment): TokenDecimals => {
  const mainnet = mainnetDeployment();
  const find = (d: Deployment, network: string, contract: string) =>
    d.networks.find((n) => n.id === network)?.currencies.find((c) => c.contract !== null && c.contract.toLowerCase() === contract.toLowerCase())?.decimals ?? null;
  return (network, contract) => find(deployment, network, contract) ?? find(mainnet, network, contract);
};

/**
 * The decimals an amount of `currency` (a code, or a contract for a wrong token) on `network` is
 * written in: the order's pair's, else an option's in the same contract, else the configured
 * token's; 0 (base units) only for a token nobody knows.
 */
function decimalsOf(order: OrderRecord, network: string, currency: string, tokens: TokenDecimals | undefined): number {
  const pair = order.options.find((o) => o.network === network && o.currency === currency);
  if (pair) return pair.decimals;
  const lower = currency.toLowerCase();
  const sameContract = order.options.find((o) => o.network === network && o.contract !== null && o.contract.toLowerCase() === lower);
  return sameContract?.decimals ?? tokens?.(network, currency) ?? 0;
}

/** The base units below `option`'s currency precision (lifecycle `slack`; 0 without an option). */
export const optionSlack = (option: OrderOptionRecord | null | undefined): bigint => (option ? paymentSlack(option.decimals, option.precision) : 0n);

/** The slack of the order's chosen pair (0 before a pair is chosen). */
export const orderSlack = (order: OrderRecord): bigint => optionSlack(selectedOption(order));

/**
 * §11 `settlements`: one row per receiver paid, once the settlement transaction is signed
 * (status SENT, the latest hash broadcast), SETTLED when it is final. The amounts are what the
 * forwarder paid (the plan's, or its excess/shortfall rule applied to what was received).
 */
function settlementViews(order: OrderRecord, view: SettlementView | null, tokens: TokenDecimals | undefined) {
  if (!view || view.settlement.status === 'DUE') return [];
  const s = view.settlement;
  const decimals = decimalsOf(order, s.network, s.currency, tokens);
  return view.payouts.map((p) => ({
    receiver_addr: p.address,
    role: p.role,
    amount: formatAmount(p.amount, decimals),
    network: s.network,
    currency: s.currency,
    tx_hash: s.txHash,
    status: s.status,
  }));
}

/**
 * Most transfers a query or notification lists. Anyone can send an order's deposit address
 * transfers of one base unit; without a bound a few hundred of them would make every notification
 * of the order larger than receivers accept (the SDK's handler takes 64 KiB, Express 100 kB), and
 * it would never be delivered. 50 entries stay under 64 KiB with every text field at its limit
 * (in characters JSON escapes), a split of 20 receivers and its settlement listed.
 */
export const MAX_LISTED_PAYMENTS = 50;
const SHARE_SCALE = 10n ** 18n;

/**
 * The transfers `payments` lists, in their stored order: all of them up to MAX_LISTED_PAYMENTS;
 * past that the largest ones, measured as a share of their pair's amount due (so that amounts in
 * tokens of 6 and 18 decimals compare): dust never pushes out the payer's payment, whether it
 * counts, left the chain (REVERTED) or sits in another pair for the merchant to resolve.
 * Transfers in a pair the order does not offer come last.
 */
function listedPayments(order: OrderRecord, payments: PaymentRecord[]): PaymentRecord[] {
  if (payments.length <= MAX_LISTED_PAYMENTS) return payments;
  const share = (p: PaymentRecord): bigint => {
    const option = order.options.find((o) => o.network === p.network && o.currency === p.currency);
    return option && option.amountBase > 0n ? (p.amount * SHARE_SCALE) / option.amountBase : -1n;
  };
  const ranked = payments
    .map((p, i) => ({ p, i, share: share(p) }))
    .sort((a, b) => (a.share === b.share ? a.i - b.i : a.share > b.share ? -1 : 1));
  const kept = new Set(ranked.slice(0, MAX_LISTED_PAYMENTS).map((x) => x.i));
  return payments.filter((_, i) => kept.has(i));
}

/** §11 query data; also the body of every notification (§13). */
export function orderQueryData(order: OrderRecord, payments: PaymentRecord[], settlement: SettlementView | null = null, opts: { allPayments?: boolean; tokens?: TokenDecimals } = {}): Record<string, unknown> {
  const selected = selectedOption(order);
  const s = order.state;
  const data: Record<string, unknown> = {
    payment_order_no: order.paymentOrderNo,
    order_time: order.orderTime,
    pay_time: s.payTime,
    completed_time: s.completedTime,
    closed_time: s.closedTime,
    pay_status: s.status,
    real_pay_amount: selected ? formatAmount(s.received.final, selected.decimals) : '0',
    real_pay_currency: selected?.currency ?? null,
    real_pay_network: selected?.network ?? null,
    ...pricing(order),
    merchant_customer_no: order.merchantNo,
    merchant_order_no: order.merchantOrderNo ?? '',
    merchant_application_user_id: order.merchantApplicationUserId ?? '',
    request_no: order.requestNo,
    merchant_order_time: order.merchantOrderTime,
    // The payment deadline in force (§7): the one sent, capped at 7 days, or the default.
    merchant_order_timeout: s.expireTime,
    merchant_order_desc: order.merchantOrderDesc ?? '',
    goods_info: order.goodsInfo ?? '',
    business_info: order.businessInfo ?? '',
    divide_detail: order.divideDetail ?? null,
    extension: order.extension ?? '',
    close_reason: s.closeReason,
    payment_options: optionViews(order),
    payments: (opts.allPayments ? payments : listedPayments(order, payments)).map((p) => {
      return {
        network: p.network,
        currency: p.currency,
        amount: formatAmount(p.amount, decimalsOf(order, p.network, p.currency, opts.tokens)),
        address: p.address,
        tx_hash: shownTxHash(p),
        log_index: p.logIndex,
        block_number: p.blockNumber,
        confirmations: p.confirmations,
        status: p.status,
      };
    }),
    // How many transfers the order has in all: more than `payments` lists when it was cut.
    payments_count: payments.length,
    settlements: settlementViews(order, settlement, opts.tokens),
    sequence: order.sequence,
  };
  if (s.exception) data.pay_exception = s.exception;
  return data;
}
