// Conversion between order records and their rows. Amounts cross as decimal strings of
// integer base units; bigint never meets a float.
import type { Selectable } from 'kysely';
import type { NetworkId } from '../../domain/catalogue.js';
import type { CloseReason, PayException, PayStatus } from '../../domain/lifecycle.js';
import type { OptionSplit, OrderOptionRecord, OrderRecord, PaymentRecord } from '../../app/records.js';
import type { OrderOptionsTable, OrdersTable, PaymentsTable } from './schema.js';

type OrderRow = Selectable<OrdersTable>;
type OptionRow = Selectable<OrderOptionsTable>;

export function orderToRow(o: OrderRecord): OrdersTable {
  return {
    payment_order_no: o.paymentOrderNo,
    merchant_no: o.merchantNo,
    app_id: o.appId,
    edition: o.edition,
    request_no: o.requestNo,
    request_no_key: o.requestNoKey,
    request_hash: o.requestHash,
    merchant_order_no: o.merchantOrderNo,
    merchant_order_time: o.merchantOrderTime,
    merchant_order_timeout: o.merchantOrderTimeout,
    merchant_order_desc: o.merchantOrderDesc,
    goods_info: o.goodsInfo,
    merchant_application_user_id: o.merchantApplicationUserId,
    notify_url: o.notifyUrl,
    redirect_url: o.redirectUrl,
    business_info: o.businessInfo,
    extension: o.extension,
    divide_detail: o.divideDetail == null ? null : JSON.stringify(o.divideDetail),
    pricing_currency: o.pricingCurrency,
    pricing_amount: o.pricingAmount.toString(),
    pricing_amount_wire: o.pricingAmountWire,
    pricing_precision: o.pricingPrecision,
    pricing_usd_rate: o.pricingUsdRate,
    order_time: o.orderTime,
    ...stateColumns(o),
    cashier_token: o.cashierToken,
    created_at: o.createdAt,
  };
}

/** The columns a state change may write. */
export function stateColumns(o: OrderRecord) {
  return {
    pay_status: o.state.status,
    pay_exception: o.state.exception,
    close_reason: o.state.closeReason,
    expire_time: o.state.expireTime,
    pay_time: o.state.payTime,
    completed_time: o.state.completedTime,
    closed_time: o.state.closedTime,
    selected_network: o.selectedNetwork,
    selected_currency: o.selectedCurrency,
    seen_amount: o.state.received.seen.toString(),
    final_amount: o.state.received.final.toString(),
    sequence: o.sequence,
    watch_until: o.watchUntil,
    version: o.version,
    updated_at: o.updatedAt,
  };
}

export function optionToRow(paymentOrderNo: string, opt: OrderOptionRecord): OrderOptionsTable {
  return {
    payment_order_no: paymentOrderNo,
    network: opt.network,
    currency: opt.currency,
    contract: opt.contract,
    decimals: opt.decimals,
    precision: opt.precision,
    amount: opt.amount.toString(),
    amount_base: opt.amountBase.toString(),
    fee: opt.fee.toString(),
    usd_rate: opt.usdRate,
    split: opt.split ? JSON.stringify(splitToJson(opt.split)) : null,
  };
}

export function rowToOption(r: OptionRow): OrderOptionRecord {
  return {
    network: r.network as NetworkId,
    currency: r.currency,
    contract: r.contract,
    decimals: Number(r.decimals),
    precision: Number(r.precision),
    amount: BigInt(r.amount),
    amountBase: BigInt(r.amount_base),
    fee: BigInt(r.fee),
    usdRate: r.usd_rate,
    split: r.split ? splitFromJson(JSON.parse(r.split)) : null,
  };
}

export function rowToOrder(r: OrderRow, options: OrderOptionRecord[]): OrderRecord {
  const selected = options.find((o) => o.network === r.selected_network && o.currency === r.selected_currency);
  return {
    paymentOrderNo: r.payment_order_no,
    merchantNo: r.merchant_no,
    appId: r.app_id,
    edition: r.edition === 'pro' ? 'pro' : 'standard',
    requestNo: r.request_no,
    requestNoKey: r.request_no_key,
    requestHash: r.request_hash,
    merchantOrderNo: r.merchant_order_no,
    merchantOrderTime: Number(r.merchant_order_time),
    merchantOrderTimeout: Number(r.merchant_order_timeout),
    merchantOrderDesc: r.merchant_order_desc,
    goodsInfo: r.goods_info,
    merchantApplicationUserId: r.merchant_application_user_id,
    notifyUrl: r.notify_url,
    redirectUrl: r.redirect_url,
    businessInfo: r.business_info,
    extension: r.extension,
    divideDetail: r.divide_detail ? JSON.parse(r.divide_detail) : null,
    pricingCurrency: r.pricing_currency,
    pricingAmount: BigInt(r.pricing_amount),
    pricingAmountWire: r.pricing_amount_wire,
    pricingPrecision: Number(r.pricing_precision),
    pricingUsdRate: r.pricing_usd_rate ?? null,
    orderTime: Number(r.order_time),
    state: {
      status: r.pay_status as PayStatus,
      exception: (r.pay_exception as PayException | null) ?? null,
      closeReason: (r.close_reason as CloseReason | null) ?? null,
      expireTime: Number(r.expire_time),
      payTime: Number(r.pay_time),
      completedTime: Number(r.completed_time),
      closedTime: Number(r.closed_time),
      due: selected ? selected.amountBase : null,
      received: { seen: BigInt(r.seen_amount), final: BigInt(r.final_amount) },
    },
    selectedNetwork: (r.selected_network as NetworkId | null) ?? null,
    selectedCurrency: r.selected_currency,
    sequence: Number(r.sequence),
    cashierToken: r.cashier_token,
    watchUntil: Number(r.watch_until),
    version: Number(r.version),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    options,
  };
}

export function paymentToRow(p: PaymentRecord): PaymentsTable {
  return {
    payment_order_no: p.paymentOrderNo,
    network: p.network,
    currency: p.currency,
    tx_hash: p.txHash,
    log_index: p.logIndex,
    block_number: p.blockNumber,
    block_hash: p.blockHash,
    address: p.address,
    amount: p.amount.toString(),
    confirmations: p.confirmations,
    status: p.status,
    created_at: p.createdAt,
    updated_at: p.updatedAt,
    chain_tx_hash: p.chainTxHash ?? null,
  };
}

/** paymentToRow's values in its column order, appended to `out` (a multi-row insert's parameters, without a row object each). */
export function pushPaymentValues(out: unknown[], p: PaymentRecord): void {
  out.push(p.paymentOrderNo, p.network, p.currency, p.txHash, p.logIndex, p.blockNumber, p.blockHash, p.address, p.amount.toString(), p.confirmations, p.status, p.createdAt, p.updatedAt, p.chainTxHash ?? null);
}

export function rowToPayment(r: Selectable<PaymentsTable>): PaymentRecord {
  return {
    paymentOrderNo: r.payment_order_no,
    network: r.network as NetworkId,
    currency: r.currency,
    txHash: r.tx_hash,
    logIndex: Number(r.log_index),
    blockNumber: Number(r.block_number),
    blockHash: r.block_hash,
    address: r.address,
    amount: BigInt(r.amount),
    confirmations: Number(r.confirmations),
    status: r.status as PaymentRecord['status'],
    // '' is a withdrawn name written as such by an insert: no name.
    chainTxHash: r.chain_tx_hash || null,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

interface SplitJson {
  seller: { address: string; amount: string } | null;
  merchant: string;
  others: { address: string; amount: string }[];
}

function splitToJson(s: OptionSplit): SplitJson {
  return {
    seller: s.seller ? { address: s.seller.address, amount: s.seller.amount.toString() } : null,
    merchant: s.merchant.toString(),
    others: s.others.map((o) => ({ address: o.address, amount: o.amount.toString() })),
  };
}

function splitFromJson(j: SplitJson): OptionSplit {
  return {
    seller: j.seller ? { address: j.seller.address, amount: BigInt(j.seller.amount) } : null,
    merchant: BigInt(j.merchant),
    others: j.others.map((o) => ({ address: o.address, amount: BigInt(o.amount) })),
  };
}
