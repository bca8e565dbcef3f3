// @sparkpay/sdk: the merchant SDK of the SparkPay OpenAPI v4. Requests are signed with the
// merchant application's key; every response is verified with the platform public key before
// its body is trusted.
//
// Planned next to the client (not yet here): notification parsing (`parseNotification`), which
// will live in its own module and be exported from this file.
export { SparkPayClient } from './client.js';
export type { SparkPayClientOptions } from './client.js';
export type { RequestOptions } from './transport.js';
export type { KeyInput, PlatformPublicKeyInput } from './keys.js';
export {
  SparkPayApiError,
  SparkPayConfigError,
  SparkPayNetworkError,
  SparkPayResponseError,
  SparkPayResponseSignatureError,
  SparkPaySdkError,
} from './errors.js';
export type { ResponseSignatureFailure } from './errors.js';
export { DEFAULT_USER_AGENT, SDK_VERSION } from './version.js';
export type {
  CloseOrderRequest,
  CloseOrderResponse,
  CloseReason,
  CreatedOrderCommon,
  CreateOrderRequest,
  CreateOrderResponse,
  CreateProOrderRequest,
  CreateProOrderResponse,
  DecimalString,
  DivideDetail,
  DivideReceiver,
  Envelope,
  NetworkEnum,
  OrderDetails,
  OrderDetailsCommon,
  OrderPayment,
  OrderRequestCommon,
  OrderSettlement,
  PayException,
  PayStatus,
  PaymentCurrencyNetworks,
  PaymentOption,
  ProOrderDetails,
  SplitDetail,
} from './types.js';
