// Table shapes as Kysely sees them. Wire and SQL names are snake_case.
// Amounts are decimal strings of integer base units (never floats); Unix times in
// seconds are named *_time, internal instants in milliseconds are named *_at.

export interface MerchantsTable {
  merchant_no: string;
  name: string;
  status: string; // ACTIVE | INACTIVE
  online_payment: number; // 0 | 1
  created_at: number;
  updated_at: number;
}

export interface MerchantNetworksTable {
  merchant_no: string;
  network: string;
  wallet_address: string | null;
  ca_address: string | null;
}

export interface ApplicationsTable {
  app_id: string;
  merchant_no: string;
  merchant_public_key: string; // SPKI PEM
  status: string; // ACTIVE | DISABLED
  created_at: number;
  updated_at: number;
}

export interface PlatformKeysTable {
  serial: string;
  app_id: string | null; // null: the platform's default key (responses to unknown AppIDs)
  public_key: string; // SPKI PEM
  private_key_enc: string; // encrypted with the operator's master key, never plain
  status: string; // ACTIVE | NEXT | RETIRED
  created_at: number;
  activated_at: number | null; // when a NEXT key became ACTIVE (migration 0009)
}

export interface NoncesTable {
  app_id: string;
  nonce: string;
  expires_at: number;
}

export interface OrdersTable {
  payment_order_no: string;
  merchant_no: string;
  app_id: string;
  edition: string; // standard | pro
  request_no: string;
  request_no_key: string; // lower-cased request_no: the idempotency key
  request_hash: string; // sha256 of the canonical request body
  merchant_order_no: string | null;
  merchant_order_time: number;
  merchant_order_timeout: number; // the deadline as the merchant sent it (0 when omitted)
  expire_time: number;
  merchant_order_desc: string | null;
  goods_info: string | null;
  merchant_application_user_id: string | null;
  notify_url: string | null;
  redirect_url: string | null;
  business_info: string | null;
  extension: string | null;
  divide_detail: string | null; // JSON, as echoed on the wire
  pricing_currency: string;
  pricing_amount: string; // base units of the pricing precision
  pricing_amount_wire: string; // the decimal string exactly as the merchant sent it
  pricing_precision: number;
  /** The pricing currency's USD price used at creation (§14); null before migration 0011. */
  pricing_usd_rate: string | null;
  pay_status: string;
  pay_exception: string | null;
  close_reason: string | null;
  order_time: number;
  pay_time: number;
  completed_time: number;
  closed_time: number;
  selected_network: string | null;
  selected_currency: string | null;
  seen_amount: string; // base units of the selected option
  final_amount: string;
  sequence: number;
  cashier_token: string;
  watch_until: number;
  version: number; // optimistic concurrency
  created_at: number;
  updated_at: number;
}

export interface OrderOptionsTable {
  payment_order_no: string;
  network: string;
  currency: string;
  contract: string | null;
  decimals: number;
  precision: number;
  amount: string; // order precision units
  amount_base: string; // token base units: what the payer sends
  fee: string; // token base units
  usd_rate: string | null;
  split: string | null; // JSON of base-unit shares
}

export interface PaymentsTable {
  payment_order_no: string;
  network: string;
  currency: string;
  tx_hash: string;
  log_index: number;
  block_number: number;
  block_hash: string;
  address: string;
  amount: string; // token base units
  confirmations: number;
  status: string; // SEEN | FINAL | REVERTED
  created_at: number;
  updated_at: number;
  /** A native-coin receipt's transaction, when known (migration 0010). */
  chain_tx_hash: string | null;
}

export interface NotificationsTable {
  notify_id: string;
  payment_order_no: string;
  notify_type: string;
  sequence: number;
  payload: string; // JSON snapshot taken in the state change's transaction
  status: string; // PENDING | DELIVERED | FAILED
  attempts: number;
  next_attempt_at: number; // while an attempt is in flight: when its lease runs out
  created_at: number;
  series: number;
  attempt_no: number;
  notify_time: number | null;
  lease_owner: string | null;
  delivered_at: number | null;
  destination: string; // host[:port] of the notify_url, for per-destination limits
}

export interface NotificationAttemptsTable {
  notify_id: string;
  attempt_no: number;
  series: number;
  sender: string;
  started_at: number;
  finished_at: number | null;
  outcome: string; // IN_FLIGHT | DELIVERED | FAILED | INTERRUPTED
  http_status: number | null;
  latency_ms: number | null;
  response_head: string | null;
  error_kind: string | null;
  error: string | null;
}

export interface DepositAddressesTable {
  payment_order_no: string;
  network: string;
  currency: string;
  address: string; // lower-case hex
  token: string | null;
  amount_base: string; // token base units
  plan: string; // JSON
  created_at: number;
}

export interface ChainCursorsTable {
  network: string;
  next_block: number | null;
  /** The hash of block next_block - 1 as the scan that covered it saw it; null when unknown. */
  scanned_hash: string | null;
  /** Gateway time (ms) at which the last pass that reached the head started; null when unknown. */
  caught_up_at: number | null;
  lease_owner: string | null;
  lease_until: number;
  updated_at: number;
}

export interface SettlementsTable {
  payment_order_no: string;
  network: string;
  currency: string;
  address: string;
  status: string; // DUE | SENT | SETTLED
  tx_id: string | null;
  tx_hash: string | null;
  distributed: string | null; // base units
  attempts: number;
  last_error: string | null;
  next_attempt_at: number;
  created_at: number;
  updated_at: number;
  settled_at: number | null;
  reverted_tx: string | null;
}

export interface SettlementTxsTable {
  id: string;
  network: string;
  relayer: string;
  nonce: number | null;
  status: string; // SIGNED | SENT | FINAL | REVERTED | DROPPED
  tx_hash: string;
  raw_tx: string | null;
  hashes: string; // JSON array
  max_fee_per_gas: string;
  max_priority_fee_per_gas: string;
  gas_limit: string;
  order_count: number;
  block_number: number | null;
  block_hash: string | null;
  mined_hash: string | null;
  gas_used: string | null;
  created_at: number;
  sent_at: number | null;
  updated_at: number;
}

export interface SettlementPayoutsTable {
  payment_order_no: string;
  idx: number;
  role: string;
  address: string;
  amount: string; // base units
}

export interface LeasesTable {
  name: string;
  owner: string | null;
  lease_until: number;
  updated_at: number;
}

export interface Database {
  merchants: MerchantsTable;
  merchant_networks: MerchantNetworksTable;
  applications: ApplicationsTable;
  platform_keys: PlatformKeysTable;
  nonces: NoncesTable;
  orders: OrdersTable;
  order_options: OrderOptionsTable;
  payments: PaymentsTable;
  notifications: NotificationsTable;
  notification_attempts: NotificationAttemptsTable;
  deposit_addresses: DepositAddressesTable;
  chain_cursors: ChainCursorsTable;
  settlements: SettlementsTable;
  settlement_txs: SettlementTxsTable;
  settlement_payouts: SettlementPayoutsTable;
  leases: LeasesTable;
}
