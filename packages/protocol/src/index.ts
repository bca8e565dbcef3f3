// @sparkpay/protocol: the SparkPay OpenAPI v4 wire format, shared by the gateway and the SDK.
// No runtime dependencies beyond node: builtins.
export { decodeBase64, encodeBase64 } from './base64.js';
export {
  InvalidKeyError,
  assertRsa2048,
  generateRsaKeyPair,
  parsePrivateKey,
  parsePublicKey,
  publicKeyPem,
} from './keys.js';
export { signMessage, signPayload, stringToSign, verifyMessage, verifyPayload } from './signing.js';
export { ERROR_CATALOGUE, ErrorCodes, SparkPayError, errorDef, isErrorCode } from './errors.js';
export type { ErrorCode, ErrorDef } from './errors.js';
export { formatAmount, formatAmountFixed, parseAmount, parseDecimal, rescale, trimTrailingZeros } from './amounts.js';
export type { AmountError } from './amounts.js';
export { NotificationError, generateAesKey, openNotification, sealNotification } from './envelope.js';
export type { NotificationEnvelope, NotificationErrorKind } from './envelope.js';
export { canonicalJson } from './canonical-json.js';
export { NONCE_PATTERN, generateNonce } from './nonce.js';
