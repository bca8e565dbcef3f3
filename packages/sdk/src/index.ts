// @sparkpay/sdk: the merchant SDK of the SparkPay OpenAPI v4. Requests are signed with the
// merchant application's key; every response is verified with the platform public key before
// its body is trusted. Asynchronous notifications are verified and decrypted by
// `parseNotification`, or received end to end by `createNotificationHandler` (node:http,
// Express, Fastify).
export { SparkPayClient } from './client.js';
export type { SparkPayClientOptions } from './client.js';
export type { RequestOptions } from './transport.js';
export type { KeyInput, PlatformPublicKeyInput } from './keys.js';
export { parseNotification } from './notifications.js';
export type { NotificationMeta, ParseNotificationOptions } from './notifications.js';
export { createNotificationHandler } from './notification-handler.js';
export type {
  FastifyLikeReply,
  FastifyLikeRequest,
  NotificationHandler,
  NotificationHandlerOptions,
  NotificationRejection,
} from './notification-handler.js';
export {
  SparkPayApiError,
  SparkPayConfigError,
  SparkPayNetworkError,
  SparkPayNotificationError,
  SparkPayResponseError,
  SparkPayResponseSignatureError,
  SparkPaySdkError,
} from './errors.js';
export type { NotificationFailure, ResponseSignatureFailure } from './errors.js';
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
  NotificationFields,
  NotificationPayload,
  NotifyType,
  OrderDetails,
  OrderDetailsCommon,
  OrderNotificationPayload,
  OrderPayment,
  OrderRequestCommon,
  OrderSettlement,
  PayException,
  PayStatus,
  PaymentCurrencyNetworks,
  PaymentOption,
  ProOrderDetails,
  ProOrderNotificationPayload,
  SplitDetail,
} from './types.js';
