// Business rules answer with typed results, never exceptions (ARCHITECTURE "Errors"). A refusal
// carries a SparkPay catalogue code (numeric, as on the wire) and a message naming the field.

/** A refused request: `code` is a code of the protocol's error catalogue. */
export interface Refusal {
  readonly ok: false;
  readonly code: number;
  readonly message: string;
}

export function refuse(code: number, message: string): Refusal {
  return { ok: false, code, message };
}

/**
 * The catalogue codes order creation answers with, spelled as numbers here so the domain does
 * not depend on the protocol's constant names; result.test.ts checks each against the catalogue.
 */
export const OrderErrors = {
  MISSING_PARAMETER: 40003,
  APP_ID_NOT_OF_MERCHANT: 40007,
  MERCHANT_NOT_FOUND: 40008,
  PARAMETER_ERROR: 40009,
  INVALID_REDIRECT_URL: 41000,
  INVALID_NOTIFY_URL: 41001,
  MERCHANT_NOT_ACTIVATED: 41002,
  SPLIT_TYPE_UNSUPPORTED: 41005,
  SPLIT_PURPOSE_UNSUPPORTED: 41006,
  MERCHANT_AMOUNT_NOT_ABOVE_FEE: 41007,
  SPLIT_TOTAL_MISMATCH: 41008,
  CURRENCY_NOT_SUPPORTED: 41009,
  ORDER_EXPIRED: 41012,
  INVALID_TOTAL_AMOUNT: 41013,
  INVALID_SPLIT_AMOUNT: 41014,
  SPLIT_MISSING_MAIN_RECIPIENT: 41015,
  SPLIT_MULTIPLE_MAIN_RECIPIENTS: 41016,
  FEE_MERCHANT_MISMATCH: 41017,
  TOTAL_AMOUNT_TOO_PRECISE: 41018,
  SPLIT_AMOUNT_TOO_PRECISE: 41019,
  TIMEOUT_NOT_AFTER_ORDER_TIME: 41021,
  INVALID_REQUEST_NO: 41023,
  SPLIT_TYPE_PURPOSE_MISMATCH: 41025,
  SPLIT_MISSING_MERCHANT: 41026,
  NETWORK_NOT_SUPPORTED: 41027,
  AMOUNT_NOT_ABOVE_MIN_FEE: 41028,
  DUPLICATE_SPLIT_RECEIVER: 41029,
  NETWORK_CURRENCY_NOT_SUPPORTED: 41031,
  INVALID_SPLIT_ADDRESS: 41032,
  DUPLICATE_SPLIT_ADDRESS: 41033,
  SPLIT_ADDRESS_IS_CA_ADDRESS: 41034,
  NO_EXTERNAL_WALLET: 41035,
  DUPLICATE_CURRENCY: 41036,
  DUPLICATE_NETWORK: 41037,
  NO_NETWORK_ABOVE_MIN_FEE: 41038,
  ONLINE_PAYMENT_DISABLED: 41039,
  TOO_MANY_SPLITS: 43011,
} as const;
