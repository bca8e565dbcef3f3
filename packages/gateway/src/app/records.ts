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
  /**
   * USD price of the pricing currency used at creation (canonical decimal; "1" for USD), locked
   * with the order (§14) beside each option's `usdRate`; null when the table had none (an order
   * paid only in its own pricing currency, or one stored before the rate was kept).
   */
  pricingUsdRate: string | null;
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
  /**
   * True when `options` holds only the selected pair's option, as OrderRepo.getMany loads it for
   * a scan pass (which needs no other); absent when `options` is complete. Whatever shows an
   * order's options (a notification's snapshot) reads the order again first.
   */
  onlySelectedOption?: true;
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
  /**
   * A native-coin receipt's transaction, when one transaction is known to have sent it (its
   * `txHash` is the synthetic `balance:` key); null or absent otherwise, and for token transfers
   * (whose `txHash` is the transaction). What the API shows as `tx_hash`: `shownTxHash`. In a
   * fact, UNNAMED withdraws a name stored earlier.
   */
  chainTxHash?: string | null;
  createdAt: number;
  updatedAt: number;
}

/**
 * In a payment fact, `chainTxHash` UNNAMED withdraws a name given earlier (its transaction is not
 * final on the canonical chain); null or absent keeps what is stored.
 */
export const UNNAMED = '';

/** The transaction hash a payment is shown with: its transaction when known, else its key. */
export const shownTxHash = (p: Pick<PaymentRecord, 'txHash' | 'chainTxHash'>): string => p.chainTxHash || p.txHash;

export type NotificationStatus = 'PENDING' | 'DELIVERED' | 'FAILED';

export interface NotificationRecord {
  notifyId: string;
  paymentOrderNo: string;
  notifyType: NotifyType;
  sequence: number;
  /** The payload JSON without notify_time (stamped at the first attempt). */
  payload: string;
  status: NotificationStatus;
  /** Attempts of the current series whose outcome is known (interrupted ones do not count). */
  attempts: number;
  /** When the next attempt is due; while an attempt is in flight, when its lease runs out. */
  nextAttemptAt: number;
  createdAt: number;
  /** 1, then +1 for every manual resend (a new attempt series, same notify_id). */
  series: number;
  /** Attempts started so far, over all series: the number of the last attempt in the log. */
  attemptNo: number;
  /** Unix seconds of the first attempt, or null before it. */
  notifyTime: number | null;
  /** The sender holding the lease while an attempt is in flight. */
  leaseOwner: string | null;
  deliveredAt: number | null;
  /** host[:port] of the notify_url ('' if it does not parse): the unit of per-destination limits. */
  destination: string;
}

export type AttemptOutcome = 'IN_FLIGHT' | 'DELIVERED' | 'FAILED' | 'INTERRUPTED';

/** Why an attempt failed; null when it was delivered or is still in flight. */
export type AttemptErrorKind =
  | 'INVALID_URL'
  | 'BLOCKED_ADDRESS'
  | 'DNS'
  | 'CONNECTION_REFUSED'
  | 'CONNECTION_RESET'
  | 'TIMEOUT'
  | 'TLS'
  | 'REDIRECT'
  | 'HTTP_STATUS'
  | 'BAD_ANSWER'
  | 'NETWORK'
  | 'ENVELOPE'
  | 'INTERRUPTED';

export interface NotificationAttemptRecord {
  notifyId: string;
  attemptNo: number;
  series: number;
  sender: string;
  startedAt: number;
  finishedAt: number | null;
  outcome: AttemptOutcome;
  httpStatus: number | null;
  latencyMs: number | null;
  /** The first 256 bytes of the answer, decoded as UTF-8 (invalid bytes replaced). */
  responseHead: string | null;
  errorKind: AttemptErrorKind | null;
  error: string | null;
}

/** The deposit address of one (order, network, currency): the CREATE2 address committed to its settlement plan. */
export interface DepositAddressRecord {
  paymentOrderNo: string;
  network: NetworkId;
  currency: string;
  /** Lower-case hex, as watchers compare it. */
  address: string;
  /** Token contract, null for the native coin. */
  token: string | null;
  /** What the payer must send, token base units. */
  amountBase: bigint;
  /** The settlement plan the address commits to, as JSON (amounts as decimal strings). */
  plan: string;
  createdAt: number;
}

/**
 * An order's settlement (PROTOCOL §15a): DUE once it is PAID (or closed underpaid), SENT while a
 * settlement transaction carries it, SETTLED when that transaction is final on chain. A send
 * that cannot go through (the batch reverts in simulation) stays DUE with a later next attempt.
 */
export type SettlementStatus = 'DUE' | 'SENT' | 'SETTLED';

export interface SettlementRecord {
  paymentOrderNo: string;
  network: NetworkId;
  currency: string;
  /** The forwarder (deposit) address, lower-case. */
  address: string;
  status: SettlementStatus;
  /** The settlement transaction row carrying it (SENT, SETTLED), or null. */
  txId: string | null;
  /** The hash that was mined (SETTLED), or the latest broadcast while SENT. */
  txHash: string | null;
  /** Base units distributed (the forwarder's balance), known once signed. */
  distributed: bigint | null;
  attempts: number;
  lastError: string | null;
  nextAttemptAt: number;
  createdAt: number;
  updatedAt: number;
  settledAt: number | null;
  /** The last of its transactions that reverted on chain, until it settles: it goes alone (ADR 0009). */
  revertedTx: string | null;
}

/**
 * A relayer transaction: SIGNED is recorded before it is broadcast (its hash is known then), so
 * a crash in between loses nothing. SENT is in the node's mempool or mined but not final; FINAL
 * has enough confirmations; REVERTED and DROPPED gave their orders back (DUE).
 */
export type SettlementTxStatus = 'SIGNED' | 'SENT' | 'FINAL' | 'REVERTED' | 'DROPPED';

export interface SettlementTxRecord {
  id: string;
  network: NetworkId;
  relayer: string;
  /** null: a distribution found on chain that this gateway did not send (reconciliation). */
  nonce: number | null;
  status: SettlementTxStatus;
  /** The latest signed version (replacements share the nonce). */
  txHash: string;
  rawTx: string | null;
  /** Every hash broadcast for this nonce, oldest first: any of them may be the one mined. */
  hashes: string[];
  maxFeePerGas: bigint;
  maxPriorityFeePerGas: bigint;
  gasLimit: bigint;
  orderCount: number;
  /** The block that mined it (any of its hashes), once seen. */
  blockNumber: number | null;
  blockHash: string | null;
  minedHash: string | null;
  gasUsed: bigint | null;
  createdAt: number;
  sentAt: number | null;
  updatedAt: number;
}

/** One receiver's share of a settlement, as distributed. */
export interface PayoutRecord {
  paymentOrderNo: string;
  idx: number;
  role: string;
  address: string;
  amount: bigint;
}
