// Everything the SDK throws is one of these classes, so a merchant can tell the four cases apart:
// the platform said no (ApiError), the answer cannot be trusted (ResponseSignatureError), the
// answer is authentic but unreadable (ResponseError), or no answer arrived (NetworkError).
// Incoming notifications that cannot be trusted or read throw NotificationError.

/** What request an error belongs to; `path` is the request path without the base URL. */
export interface RequestContext {
  method: string;
  path: string;
}

/** Base class of every error the SDK throws. */
export class SparkPaySdkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * The client options are unusable (bad key, bad base URL…; thrown by the constructor), or a call's
 * arguments are (an empty order number, a body JSON cannot carry, a bad per-call timeout; the
 * call's promise rejects with it). Nothing was sent.
 */
export class SparkPayConfigError extends SparkPaySdkError {}

/**
 * The platform answered with an authentic (signature-verified) envelope whose `code` is not 0.
 * `code` is the numeric SparkPay error code (e.g. 41013), `message` the platform's message,
 * `httpStatus` the HTTP status (400, 401, 404, 409, 413, 429, 500…).
 */
export class SparkPayApiError extends SparkPaySdkError {
  readonly code: number;
  readonly httpStatus: number;
  /** `Sparkpay-Request-Id` response header: quote it when asking the operator about an error. */
  readonly requestId: string | undefined;
  readonly method: string;
  readonly path: string;

  constructor(init: RequestContext & { code: number; message: string; httpStatus: number; requestId: string | undefined }) {
    // `message` is the platform's message exactly as sent, so merchants can show or match it.
    super(init.message);
    this.code = init.code;
    this.httpStatus = init.httpStatus;
    this.requestId = init.requestId;
    this.method = init.method;
    this.path = init.path;
  }
}

/** Why a response was refused as not authentic. */
export type ResponseSignatureFailure =
  /** No `Sparkpay-Timestamp`, `Sparkpay-Nonce` or `Sparkpay-Signature` (e.g. a proxy's error page). */
  | 'MISSING_HEADERS'
  /** Several platform keys are configured and `Sparkpay-Serial` is absent or names none of them. */
  | 'UNKNOWN_SERIAL'
  /** The signature does not verify over `timestamp\nnonce\nbody\n` with the platform key. */
  | 'BAD_SIGNATURE'
  /** The signed timestamp is malformed or too far from the client clock (replay, or clock skew). */
  | 'TIMESTAMP_OUT_OF_WINDOW';

/**
 * The response failed verification with the platform public key. Its body was NOT trusted:
 * treat the outcome of the request as unknown (query the order again before acting).
 */
export class SparkPayResponseSignatureError extends SparkPaySdkError {
  readonly reason: ResponseSignatureFailure;
  readonly httpStatus: number;
  /** `Sparkpay-Request-Id` as received; unsigned, so for correlation only. */
  readonly requestId: string | undefined;
  /** `Sparkpay-Serial` as received, if any. */
  readonly serial: string | undefined;
  readonly method: string;
  readonly path: string;

  constructor(
    message: string,
    init: RequestContext & {
      reason: ResponseSignatureFailure;
      httpStatus: number;
      requestId: string | undefined;
      serial: string | undefined;
    },
  ) {
    super(message);
    this.reason = init.reason;
    this.httpStatus = init.httpStatus;
    this.requestId = init.requestId;
    this.serial = init.serial;
    this.method = init.method;
    this.path = init.path;
  }
}

/** The response was authentic but not a well-formed `{code, message, data}` envelope. */
export class SparkPayResponseError extends SparkPaySdkError {
  readonly httpStatus: number;
  readonly requestId: string | undefined;
  readonly method: string;
  readonly path: string;

  constructor(
    message: string,
    init: RequestContext & { httpStatus: number; requestId: string | undefined },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.httpStatus = init.httpStatus;
    this.requestId = init.requestId;
    this.method = init.method;
    this.path = init.path;
  }
}

/**
 * No response arrived: connection refused or reset, DNS failure, TLS failure, timeout or abort.
 * The request may or may not have reached the platform; order creation is safe to retry with
 * the same `request_no` and the same body (the platform treats that as idempotent).
 */
export class SparkPayNetworkError extends SparkPaySdkError {
  /** True when the client's own timeout fired (as opposed to a caller's abort signal). */
  readonly timedOut: boolean;
  readonly method: string;
  readonly path: string;

  constructor(message: string, init: RequestContext & { timedOut: boolean }, options?: { cause?: unknown }) {
    super(message, options);
    this.timedOut = init.timedOut;
    this.method = init.method;
    this.path = init.path;
  }
}

/** Why an incoming notification (PROTOCOL §13) was refused. */
export type NotificationFailure =
  /** Not a JSON `{head, body}` envelope, a head field missing, or a payload that is not JSON. */
  | 'MALFORMED'
  /** `head.aes_key` does not decrypt with the merchant private key (wrong key, or forged). */
  | 'KEY_DECRYPT'
  /** `body` does not decrypt with the AES key (wrong length or padding). */
  | 'BODY_DECRYPT'
  /** `head.sign` is not the platform's signature of the decrypted payload. */
  | 'SIGNATURE'
  /** Several platform keys are configured and `head.serial` names none of them. */
  | 'UNKNOWN_SERIAL'
  /** `appId` is configured and `head.app_id` differs from it. */
  | 'APP_ID_MISMATCH'
  /** Authentic, but the payload lacks a required field or has one of the wrong type. */
  | 'BAD_PAYLOAD';

/**
 * An incoming notification was refused: do not act on it, and do not answer `SUCCESS`. Messages
 * name fields and reasons, never key material or decrypted content.
 */
export class SparkPayNotificationError extends SparkPaySdkError {
  readonly kind: NotificationFailure;

  constructor(kind: NotificationFailure, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
  }
}
