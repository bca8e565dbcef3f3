// The error catalogue: every code of SparkPay's published error table (shared/seeds/
// sparkpay-error-codes.txt) exactly once, with its published reason, description and solution,
// plus the HTTP status this project answers with (PROTOCOL §3). Written out here as source, not
// read from the seed at run time; errors.test.ts checks it against the seed word for word.

export interface ErrorDef {
  readonly code: number;
  readonly httpStatus: number;
  /** The seed's "Error Reason" column. */
  readonly reason: string;
  /** The seed's "Error Description" column; the default client-visible message. */
  readonly message: string;
  /** The seed's "Solution" column; empty where the seed gives none. */
  readonly solution: string;
}

// The three "Error Reason" values of the seed, spelled as published (including the capital P).
const REQ = 'Invalid request parameters';
const PARAM = 'Invalid Parameter';
const SYS = 'System exception';

interface Row<C extends number> {
  readonly code: C;
  readonly reason: string;
  readonly message: string;
  readonly solution: string;
}

function row<C extends number>(code: C, reason: string, message: string, solution = ''): Row<C> {
  return { code, reason, message, solution };
}

const ROWS = {
  SIGNATURE_INVALID: row(40000, REQ, 'Signature verification of the interface parameters failed',
    'Ensure that the signature private key matches the RSA public key uploaded on the merchant platform.'),
  AES_KEY_DECRYPT_FAILED: row(40001, REQ, 'AES key decryption failed',
    'The public key used to encrypt the AES key should be the payment platform’s RSA public key. Merchants should log into the merchant platform to view and download it on the “Applications” page.'),
  INVALID_APP_ID: row(40002, REQ, 'Invalid APPID',
    'Check if the APPID is correct.'),
  MISSING_PARAMETER: row(40003, REQ, 'Missing required parameter',
    'Verify that all parameters are included.'),
  UNSUPPORTED_DOCUMENT_TYPE: row(40004, REQ, 'Unsupported document type',
    'Check if the document type is correct. Currently supported types: ID for identity card and PASSPORT for passport.'),
  PHONE_FORMAT_UNSUPPORTED: row(40005, REQ, 'Phone number format not supported',
    'Check if the phone number format is correct.'),
  INCOMPLETE_DOCUMENT_INFO: row(40006, REQ, 'Incomplete document information provided',
    'Check if the document type and document number are complete.'),
  APP_ID_NOT_OF_MERCHANT: row(40007, REQ, 'APPID does not belong to this merchant',
    'Log into the merchant platform and check the APPID on the “Applications” page.'),
  MERCHANT_NOT_FOUND: row(40008, REQ, 'Merchant number does not exist',
    'Verify that the merchant number is correct.'),
  PARAMETER_ERROR: row(40009, REQ, 'Parameter error',
    'Ensure that the parameter values match the types outlined in the online interface documentation.'),
  REGION_NOT_SUPPORTED: row(40010, REQ, 'User account opening not supported in this region',
    'Consult Spark’s official support staff about future support plans for your region.'),
  RATE_LIMIT_EXCEEDED: row(40011, REQ, 'Application call limit exceeded',
    'Reduce the request frequency and try again later.'),
  EMAIL_FORMAT_UNSUPPORTED: row(40012, REQ, 'Email format not supported',
    'Check if the email format is correct.'),
  UNAUTHORIZED: row(40013, REQ, 'Unauthorized',
    'Authorization credentials must be included in the "Authorization" field of the HTTP Header for the request. For details, please refer to the interface documentation (check the authorization information interface based on the authorization token).'),
  ACCOUNT_ALREADY_EXISTS: row(40014, REQ, 'Account already exists',
    'The specified phone number/email already has an account in SPARK. To retrieve the user’s SPARK account information, call the SPARK user authorization-related interface to obtain user information through user authorization.'),
  USER_INFO_RETRIEVAL_FAILED: row(40015, REQ, 'User information retrieval exception',
    'The user is registered under another merchant’s application; call the SPARK user authorization-related interface to obtain user information through user authorization.'),
  REGION_NOT_IN_OPERATIONAL_AREA: row(40016, REQ, 'Country or region is not within the merchant’s operational area, account opening not possible',
    'Merchants need to support user regions as operational areas.'),
  COUNTRY_CODE_PHONE_MISMATCH: row(40017, REQ, 'Country code and phone number do not match',
    'Please use the country code corresponding to the phone number; see the country code table.'),
  INVALID_COUNTRY_CODE: row(40018, REQ, 'Invalid country code',
    'Check if the country code format is correct; see the country code table.'),
  INVALID_REDIRECT_URL: row(41000, REQ, 'Callback notification URL does not comply with rules',
    'Check if the URL format is correct.'),
  INVALID_NOTIFY_URL: row(41001, REQ, 'Asynchronous notification URL does not comply with rules',
    'Check if the URL format is correct.'),
  MERCHANT_NOT_ACTIVATED: row(41002, REQ, 'Merchant not activated',
    'Contact Spark’s official support personnel for assistance in activation.'),
  PAYER_ACCOUNT_NOT_OPENED: row(41003, REQ, 'Payer has not opened an account',
    'The payer must be an active account.'),
  SPLIT_TYPE_UNSUPPORTED: row(41005, REQ, 'Split type not supported',
    'Check if the split type is correct; currently supported types are: 1 for merchant number, 2 for wallet user.'),
  SPLIT_PURPOSE_UNSUPPORTED: row(41006, REQ, 'Split purpose not supported',
    'Check if the split purpose is correct; currently supported types are: 1 for main transaction amount, 2 for merchant service fee, 3 for other fees.'),
  MERCHANT_AMOUNT_NOT_ABOVE_FEE: row(41007, REQ, 'Merchant split amount must be greater than platform service fee',
    'Verify the split amount; it must be greater than the minimum service fee on any network (platform service fee = order amount * service fee rate; if calculated amount ≤ minimum service fee, use minimum service fee).'),
  SPLIT_TOTAL_MISMATCH: row(41008, REQ, 'Split order amount does not match the total order amount',
    'Check if the split amount is correct.'),
  CURRENCY_NOT_SUPPORTED: row(41009, REQ, 'Payment currency not supported',
    'Check if the order currency is correct; currently supported currency is USDT.'),
  SPLIT_ACCOUNT_NOT_OPENED: row(41010, REQ, 'Split account has not been opened',
    'The split account must be an active account.'),
  SPLIT_ACCOUNT_NOT_ACTIVATED: row(41011, REQ, 'Split account has not been activated',
    'The split account must be an activated account.'),
  ORDER_EXPIRED: row(41012, REQ, 'Merchant order has expired',
    'Verify that the order payment deadline is correct.'),
  INVALID_TOTAL_AMOUNT: row(41013, REQ, 'Total amount of merchant order does not comply with rules',
    'Check if the total order amount is correct.'),
  INVALID_SPLIT_AMOUNT: row(41014, REQ, 'Split amount does not comply with rules',
    'Check if the split amount is correct.'),
  SPLIT_MISSING_MAIN_RECIPIENT: row(41015, REQ, 'Split order missing main recipient',
    'Check if the main recipient of the split order is provided.'),
  SPLIT_MULTIPLE_MAIN_RECIPIENTS: row(41016, REQ, 'Split order does not support multiple main recipients',
    'Check if there is only one unique main recipient for the split order.'),
  FEE_MERCHANT_MISMATCH: row(41017, REQ, 'Service fee merchant and ordering merchant customer numbers do not match',
    'Verify that the service fee merchant or ordering merchant customer numbers are correct.'),
  TOTAL_AMOUNT_TOO_PRECISE: row(41018, REQ, 'Total order amount exceeds maximum precision',
    'Verify that the total order amount is correct.'),
  SPLIT_AMOUNT_TOO_PRECISE: row(41019, REQ, 'Split amount exceeds maximum precision',
    'Verify that the split order amount is correct.'),
  TIMEOUT_NOT_AFTER_ORDER_TIME: row(41021, REQ, 'Timeout must be greater than order time',
    'Verify that the order timeout is set correctly.'),
  PAYER_IS_PAYEE: row(41022, REQ, 'Payer and payee cannot be the same',
    'Verify that the recipient of the order is correct.'),
  INVALID_REQUEST_NO: row(41023, REQ, 'Request number does not comply with rules',
    'Check if the request number is correct.'),
  SPLIT_TYPE_PURPOSE_MISMATCH: row(41025, REQ, 'Split type and split purpose do not match',
    'Verify that the split type and split purpose are correct; the current rule is that the wallet user split purpose is the main transaction amount, while the merchant split purpose is for service fees or other costs.'),
  SPLIT_MISSING_MERCHANT: row(41026, REQ, 'Split order missing merchant',
    'Check if the merchant recipient is provided in the split order.'),
  NETWORK_NOT_SUPPORTED: row(41027, REQ, 'Order payment network not supported',
    'Check if the order payment network is correct.'),
  AMOUNT_NOT_ABOVE_MIN_FEE: row(41028, REQ, 'Payment order amount must be greater than the minimum platform service fee',
    'Verify that the order amount is correct; it must be greater than the minimum platform service fee on any network.'),
  DUPLICATE_SPLIT_RECEIVER: row(41029, REQ, 'Splitter information error',
    'Check for duplicate splitters.'),
  MERCHANT_PAYMENT_NOT_SUPPORTED: row(41030, REQ, 'Ordering merchant payment not supported',
    'Verify if the payer is correct.'),
  NETWORK_CURRENCY_NOT_SUPPORTED: row(41031, REQ, 'Payment network does not support this currency.'),
  INVALID_SPLIT_ADDRESS: row(41032, REQ, 'Split payment address is incorrect.'),
  DUPLICATE_SPLIT_ADDRESS: row(41033, REQ, 'Duplicate split payment address exists.'),
  SPLIT_ADDRESS_IS_CA_ADDRESS: row(41034, REQ, 'The split payment address cannot be the merchant CA address.',
    'Check each split payment address; the payment address cannot be the merchant CA address.'),
  NO_EXTERNAL_WALLET: row(41035, REQ, 'No external wallet configured for the current network, please configure one first.',
    'Log in to the merchant system and set an external wallet in the receive payment network.'),
  DUPLICATE_CURRENCY: row(41036, PARAM, 'Duplicate currency found in the available receiving networks.',
    'Check the parameter available_payment_currency_networks to ensure no duplicate currencies within the same network.'),
  DUPLICATE_NETWORK: row(41037, PARAM, 'Duplicate network found in the available receiving networks.',
    'Check the parameter available_payment_currency_networks to ensure no duplicate networks.'),
  NO_NETWORK_ABOVE_MIN_FEE: row(41038, PARAM, 'None of the available receiving networks meet the minimum service fee.',
    'Try setting a higher pricing amount or seller amount.'),
  ONLINE_PAYMENT_DISABLED: row(41039, PARAM, 'Online payment not enabled.',
    'Please contact Spark support staff to enable online payment services.'),
  MERCHANT_BALANCE_INSUFFICIENT: row(43000, REQ, 'Merchant balance insufficient',
    'Merchant balance is insufficient; please recharge.'),
  ORDER_NOT_FOUND: row(43005, REQ, 'Payment order does not exist',
    'Check if the payment order number is correct.'),
  ORDER_CANNOT_BE_CLOSED: row(43006, REQ, 'This order cannot be closed',
    'The order cannot be closed due to status or system constraints.'),
  ORDER_ALREADY_CLOSED: row(43007, REQ, 'This order has been closed',
    'The order has been closed; no further action is required.'),
  CUSTOMER_ACCOUNT_NOT_OPENED: row(43008, REQ, 'This customer has not opened an account',
    'Customers in the interface parameters must have an active account.'),
  TOO_MANY_SPLITS: row(43011, REQ, 'Exceeded the maximum number of splits per order',
    'Adjust the number of splits in the order and try again.'),
  INVALID_AUTHORIZATION_CODE: row(44000, REQ, 'Authorization code invalid',
    'The authorization code has expired; user authorization needs to be reinitiated.'),
  REDIRECT_URL_CODE_MISMATCH: row(44001, REQ, 'Callback address for successful authorization does not match authorization code',
    'Check if the parameters redirect_url and code correspond; the code should match the callback address receiving the authorization code during merchant application registration.'),
  INVALID_CLIENT_ID: row(44002, REQ, 'Invalid identification information',
    'Check if the parameter client_id is correct.'),
  INVALID_GRANT_TYPE: row(44003, REQ, 'Invalid authorization type',
    'Check if the authorization type is correct; currently supported types are: refresh_token for refresh token and authorization_code for obtaining authorization token.'),
  INVALID_REFRESH_TOKEN: row(44004, REQ, 'Refresh token invalid',
    'The refresh_token returned by the authorization token interface has expired; user authorization needs to be reinitiated.'),
  INTERNAL_ERROR: row(50000, SYS, 'Internal system error',
    'System exception; please retry with the same parameters.'),
};

type Rows = typeof ROWS;

/** One readable name per published code. */
export const ErrorCodes = Object.freeze(
  Object.fromEntries(Object.entries(ROWS).map(([name, r]) => [name, r.code])),
) as { readonly [K in keyof Rows]: Rows[K]['code'] };

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

// 400 is the default for parameter and business errors; these are the exceptions (PROTOCOL §3).
// 413 for an oversized body is decided by the server (with 40009), so it is not listed here.
const HTTP_STATUS: ReadonlyMap<number, number> = new Map([
  [ErrorCodes.SIGNATURE_INVALID, 401],
  [ErrorCodes.INVALID_APP_ID, 401],
  [ErrorCodes.UNAUTHORIZED, 401],
  [ErrorCodes.ORDER_NOT_FOUND, 404],
  [ErrorCodes.ORDER_CANNOT_BE_CLOSED, 409],
  [ErrorCodes.ORDER_ALREADY_CLOSED, 409],
  [ErrorCodes.RATE_LIMIT_EXCEEDED, 429],
  [ErrorCodes.INTERNAL_ERROR, 500],
]);

export const ERROR_CATALOGUE: readonly ErrorDef[] = Object.freeze(
  Object.values(ROWS).map(
    (r): ErrorDef => Object.freeze({ ...r, httpStatus: HTTP_STATUS.get(r.code) ?? 400 }),
  ),
);

const BY_CODE: ReadonlyMap<number, ErrorDef> = new Map(ERROR_CATALOGUE.map((d) => [d.code, d]));

/** The definition of a catalogue code. An unknown code is a programming error, so it throws. */
export function errorDef(code: number): ErrorDef {
  const def = BY_CODE.get(code);
  if (!def) throw new RangeError(`unknown SparkPay error code ${code}`);
  return def;
}

export function isErrorCode(code: number): code is ErrorCode {
  return BY_CODE.has(code);
}

/**
 * A client-visible failure carrying a catalogue code. The message defaults to the catalogue's
 * description; a more specific one (e.g. "timestamp outside the allowed window") may be given.
 */
export class SparkPayError extends Error {
  readonly code: ErrorCode;
  readonly httpStatus: number;

  constructor(code: ErrorCode, message?: string) {
    const def = errorDef(code);
    super(message ?? def.message);
    this.name = 'SparkPayError';
    this.code = code;
    this.httpStatus = def.httpStatus;
  }
}
