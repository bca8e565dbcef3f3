// Request and response bodies of the SparkPay OpenAPI v4, with the documented snake_case field
// names merchants already know (PROTOCOL §7–§12). Amounts are decimal strings, always: never
// pass or expect a JavaScript number for money. Times are Unix seconds (integers). Responses may
// gain new optional fields at any time; code must ignore what it does not know.

/** A decimal amount such as `"10.50"`: digits, optional fraction, no sign or exponent. */
export type DecimalString = string;

/** Network enum (§5): 2 Ethereum, 3 BNB Smart Chain, 4 Polygon, 5 IRISnet. */
export type NetworkEnum = '2' | '3' | '4' | '5';

export type PayStatus = 'PENDING' | 'PAYING' | 'PAID' | 'COMPLETED' | 'CLOSED';
export type PayException = 'UNDERPAID' | 'OVERPAID' | 'PAID_LATE' | 'REVERTED';
export type CloseReason = 'MERCHANT_CLOSED' | 'EXPIRED';

/** The split of an order (§9). Amounts are in the order (or Pro pricing) currency. */
export interface DivideDetail {
  /** Main recipient's amount; comes together with `seller_addr`. */
  seller_amount?: DecimalString;
  /** Main recipient's EVM address. */
  seller_addr?: string;
  /** The merchant's share; must exceed the platform service fee (41007). */
  merchant_amount?: DecimalString;
  other_details?: DivideReceiver[];
}

export interface DivideReceiver {
  receiver_addr: string;
  amount: DecimalString;
}

/** Older integrations' split form (§9); maps onto `divide_detail`. Never send both. */
export interface SplitDetail {
  /** 1 = merchant number, 2 = wallet address. */
  split_type: 1 | 2 | '1' | '2';
  /** 1 = main amount, 2 = merchant service fee, 3 = other fee. */
  split_purpose: 1 | 2 | 3 | '1' | '2' | '3';
  /** A merchant number (type 1) or a wallet address (type 2). */
  receiver: string;
  amount: DecimalString;
}

/** Fields shared by standard and Pro order creation. */
export interface OrderRequestCommon {
  merchant_no: string;
  /** Idempotency key: ≤ 64 chars of `[A-Za-z0-9_]`, unique per merchant, case-insensitive. */
  request_no: string;
  /** Unix seconds when the merchant created its order. */
  merchant_order_time: number;
  /** Absolute payment deadline, Unix seconds; default now + 30 min, capped at 7 days. */
  merchant_order_timeout?: number;
  /** ≤ 256 chars; shown on the cashier page. */
  merchant_order_desc?: string;
  goods_info?: string;
  /** The merchant's own order number, ≤ 64 chars. */
  merchant_order_no?: string;
  merchant_application_user_id?: string;
  /** Absolute http(s) URL receiving asynchronous notifications. */
  notify_url?: string;
  /** Absolute http(s) URL the payer is sent to after paying. */
  redirect_url?: string;
  business_info?: string;
  divide_detail?: DivideDetail;
  split_details?: SplitDetail[];
  /** Opaque, echoed back in queries and notifications. */
  extension?: string;
}

/** `POST /v4/pay/cashier` (§7). */
export interface CreateOrderRequest extends OrderRequestCommon {
  /** Decimal > 0 within the currency's precision. */
  total_amount: DecimalString;
  /** Currency code, e.g. `"USDT"`. */
  merchant_order_currency: string;
  /** Comma-separated network enums, e.g. `"2,4"`; default every eligible network. */
  receive_network?: string;
}

/** One entry of `available_payment_currency_networks` (§8). */
export interface PaymentCurrencyNetworks {
  currency: string;
  /** Omitted: every network that carries the currency. */
  networks?: Array<NetworkEnum | string | number>;
}

/** `POST /v4/pro/pay/cashier` (§8): priced in a pricing currency; the payer picks what to pay with. */
export interface CreateProOrderRequest extends OrderRequestCommon {
  /** `USD`, `HKD` or a crypto currency code. */
  pricing_currency: string;
  pricing_amount: DecimalString;
  available_payment_currency_networks?: PaymentCurrencyNetworks[];
}

/** A currency/network pair the payer may pay with, and the exact amount due in it. */
export interface PaymentOption {
  network: string;
  currency: string;
  amount: DecimalString;
}

/** Fields shared by the `data` of both creation endpoints. */
export interface CreatedOrderCommon {
  payment_order_no: string;
  merchant_no: string;
  request_no: string;
  merchant_order_no?: string;
  pay_status: PayStatus;
  /** Payment deadline, Unix seconds. */
  expire_time: number;
  /** Where the payer is sent to pay. */
  cashier_url: string;
  /** The pairs offered on the cashier page, with converted amounts (a gateway extension). */
  payment_options?: PaymentOption[];
}

/** `data` of `POST /v4/pay/cashier`. */
export interface CreateOrderResponse extends CreatedOrderCommon {
  total_amount: DecimalString;
  merchant_order_currency: string;
}

/** `data` of `POST /v4/pro/pay/cashier`. */
export interface CreateProOrderResponse extends CreatedOrderCommon {
  pricing_amount: DecimalString;
  pricing_currency: string;
}

/** A payment observed on chain against an order (§11). */
export interface OrderPayment {
  network: string;
  currency: string;
  amount: DecimalString;
  address: string;
  tx_hash: string;
  log_index: number;
  block_number: number;
  confirmations: number;
  status: string;
}

/** A payout made when the order's split was settled (§11, §15a). */
export interface OrderSettlement {
  receiver_addr: string;
  /** SELLER, OTHER, MERCHANT (the merchant's wallet) or FEE (the platform fee address). */
  role?: string;
  amount: DecimalString;
  network: string;
  currency: string;
  tx_hash?: string | null;
  /** SENT (in a transaction not final yet) or SETTLED (final on chain). */
  status: string;
}

/** Fields shared by the `data` of both query endpoints (§11). Times are 0 until reached. */
export interface OrderDetailsCommon {
  payment_order_no: string;
  order_time: number;
  pay_time: number;
  completed_time: number;
  closed_time: number;
  pay_status: PayStatus;
  /** Final amount received, in the payment currency. */
  real_pay_amount?: DecimalString | null;
  /** Currency and network the payer chose, null until chosen (gateway extension). */
  real_pay_currency?: string | null;
  real_pay_network?: string | null;
  /** Equals the order's merchant_no. */
  merchant_customer_no: string;
  merchant_order_no?: string | null;
  merchant_application_user_id?: string | null;
  request_no: string;
  merchant_order_time: number;
  merchant_order_timeout?: number | null;
  merchant_order_desc?: string | null;
  goods_info?: string | null;
  business_info?: string | null;
  divide_detail?: DivideDetail | null;
  extension?: string | null;
  /** Absent when there is no exception. */
  pay_exception?: PayException;
  close_reason?: CloseReason | null;
  payment_options?: PaymentOption[];
  /**
   * The order's transfers; at most 50 of them (the largest, as a share of their pair's amount
   * due) when it has more: see `payments_count`.
   */
  payments?: OrderPayment[];
  /** How many transfers the order has in all (more than `payments` lists when it was cut). */
  payments_count?: number;
  settlements?: OrderSettlement[];
  /** Increases with every state change; compare with notifications' `sequence`. */
  sequence?: number;
}

/** `data` of `GET /v4/pay/orders/{merchant_no}/{request_no}`. */
export interface OrderDetails extends OrderDetailsCommon {
  total_amount: DecimalString;
  merchant_order_currency: string;
}

/** `data` of `GET /v4/pro/pay/orders/{merchant_no}/{request_no}`. */
export interface ProOrderDetails extends OrderDetailsCommon {
  pricing_amount: DecimalString;
  pricing_currency: string;
}

/** `POST /v4/pay/orders/close` (§12). */
export interface CloseOrderRequest {
  merchant_no: string;
  request_no: string;
}

/** `data` of `POST /v4/pay/orders/close`. */
export interface CloseOrderResponse {
  request_no: string;
  merchant_no: string;
  merchant_order_no?: string | null;
  pay_status: 'CLOSED';
  closed_time: number;
}

/** `notify_type` of an asynchronous notification (§13). */
export type NotifyType = 'ORDER_PAID' | 'ORDER_COMPLETED' | 'ORDER_CLOSED' | 'ORDER_EXCEPTION';

/** What a notification adds to the query `data` (§13). */
export interface NotificationFields {
  /** Unique per notification and the same on every retry of it: deduplicate on this. */
  notify_id: string;
  notify_type: NotifyType;
  /** Unix seconds of the first delivery attempt. */
  notify_time: number;
  /** The order's state counter: ignore a notification older than the newest one processed. */
  sequence: number;
}

/** A standard order's notification: the query `data` (§11) plus the notification fields. */
export type OrderNotificationPayload = OrderDetails & NotificationFields;

/** A Pro order's notification (priced in `pricing_currency`). */
export type ProOrderNotificationPayload = ProOrderDetails & NotificationFields;

/**
 * The verified payload of an asynchronous notification (§13). Tell the editions apart with
 * `'total_amount' in payload` (standard) or `'pricing_amount' in payload` (Pro).
 */
export type NotificationPayload = OrderNotificationPayload | ProOrderNotificationPayload;

/** The response envelope (§3); `data` is absent on error. */
export interface Envelope<T> {
  code: number;
  message: string;
  data?: T;
}
