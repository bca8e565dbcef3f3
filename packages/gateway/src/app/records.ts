// What the use cases load and store. camelCase here; adapters convert to SQL names.
import type { NetworkId } from '../domain/catalogue.js';
import type { NotifyType, OrderState } from '../domain/lifecycle.js';

export type Edition = 'standard' | 'pro';

/** A (network, currency) pair the payer may pay with, with amounts locked at creation. */
export interface OrderOptionRecord {
  network: NetworkId;
  currency: string;
  contract: string | null; // null: the network's native coin
  decimals: number;
  precision: number;
  amount: bigint; // order precision units
  amountBase: bigint; // token base units: what the payer must send
  fee: bigint; // platform service fee, token base units
  usdRate: string | null;
  split: OptionSplit | null;
}

export interface OptionSplit {
  seller: { address: string; amount: bigint } | null;
  merchant: bigint;
  others: { address: string; amount: bigint }[];
}

export interface OrderRecord {
  paymentOrderNo: string;
  merchantNo: string;
  appId: string;
  edition: Edition;
  requestNo: string;
  requestNoKey: string;
  requestHash: string;
  merchantOrderNo: string | null;
  merchantOrderTime: number;
  merchantOrderTimeout: number;
  merchantOrderDesc: string | null;
  goodsInfo: string | null;
  merchantApplicationUserId: string | null;
  notifyUrl: string | null;
  redirectUrl: string | null;
  businessInfo: string | null;
  extension: string | null;
  /** The split as echoed on the wire (decimal strings), or null. */
  divideDetail: unknown;
  pricingCurrency: string;
  pricingAmount: bigint; // units of 10^-pricingPrecision
  /** The amount exactly as the merchant wrote it, echoed back unchanged. */
  pricingAmountWire: string;
  pricingPrecision: number;
  orderTime: number;
  state: OrderState;
  selectedNetwork: NetworkId | null;
  selectedCurrency: string | null;
  sequence: number;
  cashierToken: string;
  watchUntil: number;
  version: number;
  createdAt: number;
  updatedAt: number;
  options: OrderOptionRecord[];
}

export type PaymentStatus = 'SEEN' | 'FINAL' | 'REVERTED';

export interface PaymentRecord {
  paymentOrderNo: string;
  network: NetworkId;
  currency: string;
  txHash: string;
  logIndex: number;
  blockNumber: number;
  blockHash: string;
  address: string;
  amount: bigint; // token base units
  confirmations: number;
  status: PaymentStatus;
  createdAt: number;
  updatedAt: number;
}

export type NotificationStatus = 'PENDING' | 'DELIVERED' | 'FAILED';

export interface NotificationRecord {
  notifyId: string;
  paymentOrderNo: string;
  notifyType: NotifyType;
  sequence: number;
  payload: string;
  status: NotificationStatus;
  attempts: number;
  nextAttemptAt: number;
  createdAt: number;
}
