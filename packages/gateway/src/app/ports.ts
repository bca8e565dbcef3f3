// The ports the use cases depend on. Adapters implement them (db/, crypto/), and the
// composition root (cli/) wires them. Each use case owns its transaction.
import type { NetworkId } from '../domain/catalogue.js';
import type { MerchantView } from '../domain/merchant.js';
import type { NetworkDeployment } from '../domain/catalogue.js';
import type { SettlementPlan } from '../domain/settlement-plan.js';
import type { PayoutRecord, SettlementRecord, SettlementTxRecord } from './records.js';
import type { AttemptErrorKind, DepositAddressRecord, NotificationAttemptRecord, NotificationRecord, OrderRecord, PaymentRecord } from './records.js';
import type { PayStatus } from '../domain/lifecycle-types.js';
import type { Edition, PaymentStatus } from './records.js';

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  nowMs(): number;
}

export const systemClock: Clock = { nowMs: () => Date.now() };

export function nowSeconds(clock: Clock): number {
  return Math.floor(clock.nowMs() / 1000);
}

/** Every identifier and secret the gateway makes comes from here, so tests can pin them. */
export interface Ids {
  paymentOrderNo(nowMs: number): string;
  merchantNo(): string;
  appId(): string;
  keySerial(): string;
  cashierToken(): string;
  notifyId(): string;
  nonce(): string;
}

export interface MerchantRecord extends MerchantView {
  name: string;
  createdAt: number;
}

export interface MerchantPatch {
  status?: 'ACTIVE' | 'INACTIVE';
  onlinePayment?: boolean;
  wallets?: Partial<Record<NetworkId, string>>;
  caAddresses?: Partial<Record<NetworkId, string>>;
}

export interface ApplicationRecord {
  appId: string;
  merchantNo: string;
  merchantPublicKeyPem: string;
  status: 'ACTIVE' | 'DISABLED';
  createdAt: number;
}

export interface PlatformKeyRecord {
  serial: string;
  appId: string | null;
  publicKeyPem: string;
  privateKeyEnc: string;
  /**
   * ACTIVE: live, and the newest ACTIVE key of its application signs (§3); NEXT: live (listed for
   * merchants to install) but not signing until activated; RETIRED: neither.
   */
  status: 'ACTIVE' | 'NEXT' | 'RETIRED';
  createdAt: number;
  /** When a NEXT key became ACTIVE (absent: created ACTIVE, or never activated). */
  activatedAt?: number;
}

export interface MerchantRepo {
  insert(m: MerchantRecord): Promise<void>;
  get(merchantNo: string): Promise<MerchantRecord | null>;
  update(merchantNo: string, patch: MerchantPatch, nowMs: number): Promise<boolean>;
}

export interface ApplicationRepo {
  insert(a: ApplicationRecord): Promise<void>;
  get(appId: string): Promise<ApplicationRecord | null>;
  listByMerchant(merchantNo: string): Promise<ApplicationRecord[]>;
  /** Replaces the merchant public key that verifies the application's requests; false for an unknown application. */
  setMerchantKey(appId: string, merchantPublicKeyPem: string, nowMs: number): Promise<boolean>;
  /** Sets the application's status (DISABLED: its requests are refused, 40002); true when it changed it, false when the application is unknown or had that status already. */
  setStatus(appId: string, status: ApplicationRecord['status'], nowMs: number): Promise<boolean>;
}

export interface PlatformKeyRepo {
  insert(k: PlatformKeyRecord): Promise<void>;
  /** The newest ACTIVE key of an application (null appId: the platform default key). */
  activeFor(appId: string | null): Promise<PlatformKeyRecord | null>;
  get(serial: string): Promise<PlatformKeyRecord | null>;
  /** The first key stored, of any application or the default (null on an empty database). */
  oldest(): Promise<PlatformKeyRecord | null>;
  list(appId: string | null): Promise<PlatformKeyRecord[]>;
  /** Moves a key from one status to another (compare-and-set; to ACTIVE records `nowMs` as activatedAt); false when it is not in `from`. */
  setStatus(serial: string, from: PlatformKeyRecord['status'], to: PlatformKeyRecord['status'], nowMs: number): Promise<boolean>;
}

export interface OrderRepo {
  /** Inserts the order and its payment options; a duplicate (merchant_no, request_no_key) throws DuplicateRequestError. */
  insert(o: OrderRecord): Promise<void>;
  get(paymentOrderNo: string): Promise<OrderRecord | null>;
  /**
   * The orders among `paymentOrderNos` that exist (any order; unknown numbers are left out), in a
   * few statements. `onlySelectedOption`: an order with a selected pair gets only that option
   * (marked `onlySelectedOption`), one without gets them all.
   */
  getMany(paymentOrderNos: readonly string[], opts?: { onlySelectedOption?: boolean }): Promise<OrderRecord[]>;
  /** The order's version alone (one indexed read), or null for an unknown order. */
  version(paymentOrderNo: string): Promise<number | null>;
  /** The order's cashier token alone (one indexed read), or null for an unknown order. */
  cashierToken(paymentOrderNo: string): Promise<string | null>;
  findByRequest(merchantNo: string, requestNoKey: string): Promise<OrderRecord | null>;
  /** Writes the mutable state; false when `expectedVersion` is stale (someone else changed it). */
  saveState(o: OrderRecord, expectedVersion: number): Promise<boolean>;
  /**
   * Orders in `status` whose deadline is at or before `nowSeconds`, oldest first; an order with a
   * deposit address on one of `scannedNetworks` only once that network's scan has caught up with
   * a pass that started at or after the deadline (money mined before it has then been seen).
   */
  listOverdue(status: 'PENDING' | 'PAYING', nowSeconds: number, limit: number, scannedNetworks: readonly string[]): Promise<string[]>;
  /**
   * Whether the order has a deposit address on one of `scannedNetworks` whose scan has not caught
   * up with a pass started at or after the order's deadline (listOverdue leaves such orders out):
   * asked again as the order is closed, since a scan that went back (a reorganisation) since the
   * order was listed means the money may be in the blocks it reads again.
   */
  awaitsScan(paymentOrderNo: string, scannedNetworks: readonly string[]): Promise<boolean>;
}

export interface PaymentRepo {
  /** Inserts or updates a transfer keyed by (network, tx hash, log index). */
  upsert(p: PaymentRecord): Promise<void>;
  /** The same for several transfers (distinct keys), in as few statements as the driver allows. */
  upsertMany(ps: readonly PaymentRecord[]): Promise<void>;
  listByOrder(paymentOrderNo: string): Promise<PaymentRecord[]>;
  /** The transfers of several orders (each order's in listByOrder's order), in a few statements. */
  listByOrders(paymentOrderNos: readonly string[]): Promise<PaymentRecord[]>;
  /** Transfers on `network` not final yet (status SEEN): their confirmations and blocks are re-checked. */
  listUnfinal(network: string): Promise<PaymentRecord[]>;
  /** Sets the confirmations of the network's SEEN transfers at or below `head` to head - block + 1, in one statement. */
  refreshConfirmations(network: string, head: number, nowMs: number): Promise<void>;
  /** Every transfer recorded to one of `addresses` (lower-case) on `network`, any status. */
  listByAddresses(network: string, addresses: readonly string[]): Promise<PaymentRecord[]>;
}

/** A due notification with what its sender needs to choose it (destination, application). */
export interface DueNotification {
  notifyId: string;
  series: number;
  attemptNo: number;
  /** Non-null when an earlier attempt's lease ran out without an outcome (a crash). */
  leaseOwner: string | null;
  notifyUrl: string;
  appId: string;
  destination: string;
}

export interface AttemptResult {
  outcome: 'DELIVERED' | 'FAILED' | 'INTERRUPTED';
  finishedAt: number;
  httpStatus: number | null;
  latencyMs: number | null;
  responseHead: string | null;
  errorKind: AttemptErrorKind | null;
  error: string | null;
}

export interface NotificationRepo {
  insert(n: NotificationRecord): Promise<void>;
  get(notifyId: string): Promise<NotificationRecord | null>;
  listByOrder(paymentOrderNo: string): Promise<NotificationRecord[]>;
  /** PENDING notifications due at `nowMs` (including expired leases), earliest first; none of `skipDestinations` nor of the applications `skipApps`. */
  listDue(nowMs: number, limit: number, skipDestinations: readonly string[], skipApps?: readonly string[]): Promise<DueNotification[]>;
  /** The same for one destination (host:port): what a freed slot there can take. */
  listDueAt(destination: string, nowMs: number, limit: number, skipApps?: readonly string[]): Promise<DueNotification[]>;
  /**
   * Takes the lease for attempt `attemptNo + 1` if nobody changed the row since it was listed:
   * stamps notify_time on the first attempt and pushes next_attempt_at to the lease's end.
   * Resolves to the claimed row, or null when someone else changed it first.
   */
  claim(n: Pick<DueNotification, 'notifyId' | 'series' | 'attemptNo'>, owner: string, nowMs: number, leaseUntil: number): Promise<NotificationRecord | null>;
  /** Stores an attempt's effect on the notification, if `owner` still holds that attempt. */
  settle(
    notifyId: string,
    guard: { owner: string; series: number; attemptNo: number },
    next: { status: 'PENDING' | 'DELIVERED' | 'FAILED'; attempts: number; nextAttemptAt: number; deliveredAt: number | null },
  ): Promise<boolean>;
  /**
   * A receiver's SUCCESS to a sender whose lease ran out (another sender may hold the notification
   * now): DELIVERED at `deliveredAt`, the lease cleared, if it is still PENDING in `series`.
   */
  deliveredLate(notifyId: string, series: number, deliveredAt: number): Promise<boolean>;
  /** Starts a new attempt series now; false when the notification does not exist. */
  resend(notifyId: string, nowMs: number): Promise<boolean>;
  insertAttempt(a: NotificationAttemptRecord): Promise<void>;
  /**
   * Records the attempt's outcome (an INTERRUPTED one only over IN_FLIGHT, any other also over
   * INTERRUPTED); the outcome it replaced, or null when it changed nothing.
   */
  finishAttempt(notifyId: string, attemptNo: number, result: AttemptResult): Promise<'IN_FLIGHT' | 'INTERRUPTED' | null>;
  listAttempts(notifyId: string): Promise<NotificationAttemptRecord[]>;
  /** For operators: PENDING notifications (all, and those due at `nowMs` waiting for a sender), the oldest due one's due time, and FAILED ones. */
  backlog(nowMs: number): Promise<{ pending: number; due: number; oldestDueAt: number | null; failed: number }>;
}

/** Sends one notification envelope; never throws for a receiver's or network's failure. */
export interface NotificationSender {
  /** An aborted send (the gateway is stopping) answers errorKind INTERRUPTED. */
  send(url: string, body: string, signal?: AbortSignal): Promise<SendResult>;
}

/** What use cases log; pino's Logger fits. */
export interface EventLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface SendResult {
  delivered: boolean;
  httpStatus: number | null;
  latencyMs: number;
  responseHead: string | null;
  errorKind: AttemptErrorKind | null;
  error: string | null;
}

/** Told after a transaction that wrote notifications commits, so delivery need not wait for a poll. */
export interface OutboxSignal {
  notify(): void;
}

export interface DepositAddressRepo {
  /** Stores the address unless the (order, network, currency) has one; resolves to the stored one. */
  insertOrGet(d: DepositAddressRecord): Promise<DepositAddressRecord>;
  get(paymentOrderNo: string, network: string, currency: string): Promise<DepositAddressRecord | null>;
  findByAddress(network: string, address: string): Promise<DepositAddressRecord[]>;
  /**
   * Addresses to watch on `network`: of orders still open, or closed less than the watch period
   * ago (plan left out: ''). By address, a page at a time when `page` is given (the addresses
   * after `after`, at most `limit`), so a scan of many open orders holds one page in memory;
   * `nativeOnly` keeps the native-coin options' addresses only.
   */
  listWatched(network: string, nowSeconds: number, page?: { after: string | null; limit: number } | null, nativeOnly?: boolean): Promise<DepositAddressRecord[]>;
  /** Those of `addresses` (lower case) that listWatched would list, as it lists them (plan ''), in no particular order. */
  watchedAmong(network: string, nowSeconds: number, addresses: readonly string[]): Promise<DepositAddressRecord[]>;
  /** When the oldest address listWatched would list was handed out (ms), or null when none is watched. */
  oldestWatched(network: string, nowSeconds: number): Promise<number | null>;
}

/** Where a network's scan stands, and who scans it (one instance at a time, by lease). */
export interface ChainCursor {
  network: string;
  /** The first block not scanned yet; null before the first scan. */
  nextBlock: number | null;
  /** The hash of block nextBlock - 1 as the scan that covered it saw it; null when unknown. */
  scannedHash: string | null;
  /** Until when (ms) the last complete pass covered the chain, native balances included; null when unknown (never, or since a rewind). */
  caughtUpAt: number | null;
  leaseOwner: string | null;
  leaseUntil: number;
}

export interface ChainCursorRepo {
  /** Takes (or renews) the network's scan lease; the cursor when it is ours, null when another instance holds it. */
  lease(network: string, owner: string, nowMs: number, leaseUntil: number): Promise<ChainCursor | null>;
  /**
   * Extends a lease `owner` has held without a break: false once it ran out, even if nobody took
   * it since, or another instance took it and gave it back (a pass that outlived its lease may
   * hold what it read before another scan wrote newer facts).
   */
  renew(network: string, owner: string, nowMs: number, leaseUntil: number): Promise<boolean>;
  /**
   * Moves the cursor (with the hash of block nextBlock - 1 as scanned, or null), if `owner` still
   * holds the lease; with `caughtUpAt` (a pass reached the head: the earlier of its start and the
   * head block's time), records that too.
   */
  advance(network: string, owner: string, nextBlock: number, scannedHash: string | null, caughtUpAt: number | null): Promise<boolean>;
  /**
   * Sends the cursor back to `nextBlock` (a counted transfer left the chain: blocks since may hold
   * it again), forgetting the scanned hash and the caught-up time (the blocks from there are
   * unread again), if `owner` still holds the lease.
   */
  rewind(network: string, owner: string, nextBlock: number): Promise<boolean>;
  /** Records that a pass covering the chain until `atMs` reached the head (nothing new to scan), if `owner` still holds the lease. */
  caughtUp(network: string, owner: string, atMs: number): Promise<boolean>;
  /** Until when (ms) the scan of each network has covered the chain; null for a network not caught up since its cursor was (re)set. */
  caughtUpTimes(networks: readonly string[]): Promise<Map<string, number | null>>;
  /** Gives the network's scan lease back if `owner` holds it (a stopping instance: another one, or its restart, scans at once). */
  /** Lets the scan lease go, if `owner` holds it; whether it did. */
  release(network: string, owner: string, nowMs: number): Promise<boolean>;
}

/** An ERC-20 Transfer to a watched address, as a block shows it. Addresses lower-case. */
export interface ChainTransfer {
  txHash: string;
  logIndex: number;
  blockNumber: number;
  blockHash: string;
  token: string;
  to: string;
  amount: bigint;
}

/** A block by number and hash. */
export interface Block {
  number: number;
  hash: string;
}

/** What one tokenTransfers call read, and how far the chain it read it from went. */
export interface TransferRead {
  transfers: ChainTransfer[];
  /** null when no recipient was asked about (an empty list). */
  through: Block | null;
}

/** Reading one network's chain (JSON-RPC, with failover between endpoints). */
export interface ChainReader {
  /** The latest block's number, hash and timestamp (Unix seconds), as the endpoint sees it. */
  head(): Promise<{ number: number; hash: string; timestamp: number }>;
  /** The canonical block hash at `number`, or null beyond the head. */
  blockHash(number: number): Promise<string | null>;
  /** The timestamp (Unix seconds) of the canonical block at `number`, or null beyond the head. */
  blockTimestamp(number: number): Promise<number | null>;
  /**
   * Transfer logs of `tokens` to `recipients` (to anyone when `recipients` is null) in
   * [fromBlock, toBlock]; ranges are split as the provider requires. `through` is the last block the answer covers and its hash, as the
   * endpoint that answered saw it: toBlock, or less when that endpoint had not reached toBlock
   * yet (a lagging node behind a load balancer). Its number may be below fromBlock (nothing covered).
   */
  tokenTransfers(tokens: readonly string[], recipients: readonly string[] | null, fromBlock: number, toBlock: number): Promise<TransferRead>;
  /** Native-coin balances of `addresses` at `blockNumber`, in the same order (batched reads). */
  balances(addresses: readonly string[], blockNumber: number): Promise<bigint[]>;
  /**
   * The transactions that carry native coin in the blocks after `after` up to `to`, read with
   * their transactions: hash and recipient in lower case, value in wei, in chain order. Throws
   * unless those blocks chain from `after` to `to` by their hashes (either is no longer
   * canonical, or the endpoint is on another fork or has not reached `to`). Value sent by a
   * contract (an internal transfer) has no transaction of its own and is not listed.
   */
  valueTransfers(after: Block, to: Block): Promise<ValueTransfer[]>;
  /**
   * Where the transaction `hash` was mined, as the endpoint's receipt says (its block and whether
   * it succeeded); null when the endpoint has no receipt of it (never mined, or not on the chain
   * the endpoint follows).
   */
  transactionBlock(hash: string): Promise<{ block: Block; success: boolean } | null>;
}

/** A transaction that sends native coin to `to` (ChainReader.valueTransfers). */
export interface ValueTransfer {
  hash: string;
  to: string;
  value: bigint;
  /** The block that mined it. */
  block: number;
}

/** Computes the deposit address a settlement plan commits to (CREATE2 of the network's factory). */
export interface DepositAddressDeriver {
  /**
   * null when the network offers no deposit addresses (no factory configured, or a factory that
   * does not match). Throws a RangeError for a plan the factory could never pay out (a receiver
   * it refuses): its address would strand every payment.
   */
  addressFor(plan: SettlementPlan, network: NetworkDeployment): string | null;
  /**
   * false when the network (or, given `token`, that token of it: a contract, null for the native
   * coin) is known not to offer deposit addresses although it is configured.
   */
  available?(network: NetworkDeployment, token?: string | null): boolean;
}

/** A settlement row as the query and the notifications show it (§11 `settlements`). */
export interface SettlementView {
  settlement: SettlementRecord;
  payouts: PayoutRecord[];
}

export interface SettlementRepo {
  /** Records that an order is to be settled, unless it already is (idempotent per order). */
  insertDue(s: Pick<SettlementRecord, 'paymentOrderNo' | 'network' | 'currency' | 'address'>, nowMs: number): Promise<boolean>;
  /**
   * Forgets an order's settlement that no transaction carries yet (DUE); false when there is none
   * in that status. For an order that closed with nothing of its own to settle: the settlement
   * scheduled when it was PAID, before a reorganisation took the payment away.
   */
  dropDue(paymentOrderNo: string): Promise<boolean>;
  /**
   * A settlement waiting after a failed attempt (DUE, attempts > 0, next attempt later than
   * `nowMs`) becomes due at `nowMs`; true when it did. Only that column moves: a failed attempt
   * recorded meanwhile by another instance keeps its count and error.
   */
  dueNow(paymentOrderNo: string, nowMs: number): Promise<boolean>;
  get(paymentOrderNo: string): Promise<SettlementRecord | null>;
  /** DUE settlements of `network` whose next attempt is due, oldest first. */
  listDue(network: string, nowMs: number, limit: number): Promise<SettlementRecord[]>;
  listByTx(txId: string): Promise<SettlementRecord[]>;
  /**
   * Writes status, tx, distributed amount, attempts and error of one settlement; with `expected`,
   * only while its stored status is that one. Whether a row was written.
   */
  update(s: SettlementRecord, expected?: SettlementRecord['status']): Promise<boolean>;
  /** Replaces an order's payouts. */
  setPayouts(paymentOrderNo: string, payouts: readonly PayoutRecord[]): Promise<void>;
  view(paymentOrderNo: string): Promise<SettlementView | null>;
  /** Inserts a transaction row; false when the (network, relayer, nonce) is taken. */
  insertTx(t: SettlementTxRecord): Promise<boolean>;
  updateTx(t: SettlementTxRecord): Promise<void>;
  getTx(id: string): Promise<SettlementTxRecord | null>;
  /** SIGNED and SENT transactions of `network`, lowest nonce first. */
  listOpenTxs(network: string): Promise<SettlementTxRecord[]>;
  /** Forgets the nonce of a closed (REVERTED, DROPPED) transaction: the chain never used it, and it is to be used again. */
  releaseNonce(network: string, relayer: string, nonce: number): Promise<boolean>;
  /** Settlements of `network` recorded SETTLED whose order is still PAID (its completion was refused once). */
  listSettledButPaid(network: string, limit: number): Promise<SettlementRecord[]>;
  /**
   * Settlements of `addresses` (lower-case) on `network` that move money out: what final (SETTLED)
   * ones paid out from each address, and the addresses whose settlement is in flight (SENT: its
   * transaction may have moved the money already).
   */
  outflowsFrom(network: string, addresses: readonly string[]): Promise<{ distributed: Map<string, bigint>; settling: Set<string> }>;
  /**
   * Gives up every open transaction of `networks` (DROPPED), makes their orders due again and
   * forgets every nonce recorded there: for dev chains that start afresh.
   */
  dropOpen(networks: readonly string[], nowMs: number): Promise<void>;
  /**
   * For operators: settlements not settled yet (DUE: waiting for a transaction; SENT: in one not
   * final yet), per network; `deferred`: the DUE ones waiting after a failed attempt.
   */
  backlog(): Promise<{ network: string; status: 'DUE' | 'SENT'; count: number; deferred: number }[]>;
}

export interface FeeQuote {
  maxFeePerGas: bigint;
  maxPriorityFeePerGas: bigint;
}

/** What a mined settlement transaction did, from its receipt and the factory's events. */
export interface SettlementReceipt {
  hash: string;
  blockNumber: number;
  blockHash: string;
  success: boolean;
  gasUsed: bigint;
  /**
   * `Distribution` events: the balance each order's forwarder distributed (lower-case hex). What
   * each receiver got follows from it and the plan (`distribute` of domain/settlement-plan.ts).
   */
  distributions: { orderRef: string; forwarder: string; balance: bigint }[];
  /** `Skipped` events of a batch: the plan was distributed already (by anyone) or held nothing. */
  skipped: { orderRef: string; forwarder: string; reason: 'DISTRIBUTED' | 'EMPTY' }[];
}

/**
 * The relayer's view of one network (PROTOCOL §15a): reads, and transactions signed locally with
 * the operator's key and broadcast as raw transactions, so the hash is known before sending.
 */
export interface SettlementChain {
  /** The relayer account (checksummed). */
  readonly relayer: string;
  head(): Promise<number>;
  blockHash(number: number): Promise<string | null>;
  relayerBalance(): Promise<bigint>;
  /** An account's nonce (default: the relayer's) in the latest block and counting its pending transactions. */
  nonces(account?: string): Promise<{ latest: number; pending: number }>;
  fees(): Promise<FeeQuote>;
  /** What the forwarder address holds of the plan's token (or native coin). */
  held(plan: SettlementPlan, address: string): Promise<bigint>;
  distributed(plan: SettlementPlan): Promise<boolean>;
  /** Gas for settling `plans` in one transaction, or why it would revert; a failure to ask (RPC) throws. */
  estimate(plans: readonly SettlementPlan[]): Promise<{ ok: true; gas: bigint } | { ok: false; error: string }>;
  sign(plans: readonly SettlementPlan[], tx: { nonce: number; gas: bigint; fees: FeeQuote }): Promise<{ hash: string; raw: string }>;
  /** Sends a signed transaction; a node that already has it is not an error. */
  broadcast(raw: string): Promise<{ ok: true } | { ok: false; error: string }>;
  /** Whether the node knows the transaction (pending or mined). */
  known(hash: string): Promise<boolean>;
  receipt(hash: string): Promise<SettlementReceipt | null>;
  /**
   * The transaction that distributed `plan` from its forwarder `forwarder`, searched from
   * `fromBlock` to the head in ranges providers accept: reconciliation when the database does
   * not know it.
   */
  findDistribution(plan: SettlementPlan, forwarder: string, fromBlock: number): Promise<SettlementReceipt | null>;
  orderRef(paymentOrderNo: string): string;
}

/** Named leases: one holder at a time; a crashed holder's lease runs out (ADR 0001). */
export interface LeaseRepo {
  /** Takes or renews `name` for `owner` until `leaseUntil`; false when someone else holds it. */
  acquire(name: string, owner: string, nowMs: number, leaseUntil: number): Promise<boolean>;
  /**
   * Extends a lease `owner` has held without a break: false once it ran out, even if nobody took
   * it since (a pass that outlived it may hold rows another holder has written since).
   */
  renew(name: string, owner: string, nowMs: number, leaseUntil: number): Promise<boolean>;
  /** Lets `name` go, if `owner` holds it; whether it did. */
  release(name: string, owner: string): Promise<boolean>;
}

export interface NonceRepo {
  /** Records a nonce; false when it is already remembered and unexpired (a replay). */
  remember(appId: string, nonce: string, expiresAtMs: number, nowMs: number): Promise<boolean>;
  prune(nowMs: number): Promise<number>;
}

export interface StoreTx {
  merchants: MerchantRepo;
  applications: ApplicationRepo;
  platformKeys: PlatformKeyRepo;
  orders: OrderRepo;
  payments: PaymentRepo;
  notifications: NotificationRepo;
  depositAddresses: DepositAddressRepo;
  chainCursors: ChainCursorRepo;
  nonces: NonceRepo;
  settlements: SettlementRepo;
  leases: LeaseRepo;
}

export interface Store extends StoreTx {
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
}

/** One line of the console's order list. */
export interface OrderSummary {
  paymentOrderNo: string;
  merchantNo: string;
  requestNo: string;
  edition: Edition;
  payStatus: PayStatus;
  payException: string | null;
  closeReason: string | null;
  pricingAmountWire: string;
  pricingCurrency: string;
  selectedNetwork: string | null;
  selectedCurrency: string | null;
  createdAt: number;
  expireTime: number;
}

/** One notification whose attempts are all used, for the console's list of those to look at. */
export interface FailedNotification {
  notifyId: string;
  paymentOrderNo: string;
  notifyType: string;
  sequence: number;
  attempts: number;
  destination: string;
  createdAt: number;
  /** When its last attempt failed and it was given up (ms). */
  failedAt: number;
  /** What its last attempt ended with (null: no attempt in the log). */
  lastErrorKind: AttemptErrorKind | null;
  lastHttpStatus: number | null;
  /** The head of the last attempt's error: its first FAILED_ERROR_CHARS characters, then "…" when there are more. */
  lastError: string | null;
}

/** How much of a failed notification's last error the overview reads (errors run to 500, a page lists 50). */
export const FAILED_ERROR_CHARS = 100;

/** Reads for the operator console (PROTOCOL §16): lists no use case needs, each a page at a time. */
export interface OperatorReads {
  /** Newest first (payment_order_no begins with the creation time), those before `before` when given. */
  recentOrders(filter: { merchantNo?: string; status?: PayStatus; before?: string }, limit: number): Promise<OrderSummary[]>;
  /** Merchant numbers in order, those after `after` when given. */
  merchantNos(after: string | null, limit: number): Promise<string[]>;
  /** FAILED notifications, the one given up last first. */
  failedNotifications(limit: number): Promise<FailedNotification[]>;
  /** The payment_order_no of the merchant's order with this request_no_key (the lower-cased request_no), or null. */
  orderNoByRequest(merchantNo: string, requestNoKey: string): Promise<string | null>;
  /** Every network's scan cursor (a network never scanned has none). */
  chainCursors(): Promise<ChainCursor[]>;
}

export class DuplicateRequestError extends Error {
  constructor() {
    super('an order with this request_no already exists for the merchant');
  }
}

/** The order's payment_order_no was drawn already (another order holds it): draw another one. */
export class OrderNumberTakenError extends Error {
  constructor() {
    super('an order with this payment_order_no already exists');
  }
}

/** Encrypts platform private keys at rest with the operator's master key. */
export interface KeyVault {
  seal(plaintext: string, context: string): string;
  open(sealed: string, context: string): string;
}

/**
 * What operators watch (a Prometheus adapter serves it on /metrics). Called after the fact is
 * committed; never throws. Use cases take it optionally and do nothing without it.
 */
export interface Metrics {
  /** A new order was stored (not a repeat of an earlier request). */
  orderCreated(edition: Edition): void;
  /** `count` (default 1) transfers entered `status` (first seen, final, reverted): once per status, not per confirmation or rescan. */
  paymentObserved(network: string, status: PaymentStatus, count?: number): void;
  /** An order's status changed to `status`. */
  transition(status: PayStatus): void;
  /** A notification attempt finished (errorKind null when delivered). */
  notificationAttempt(outcome: AttemptResult['outcome'], errorKind: AttemptErrorKind | null): void;
  /** A scan pass of `network`: the chain head it saw and the last block scanned (null: nothing new this pass). */
  chainScanned(network: string, head: number, scannedTo: number | null): void;
  /** A scan pass of `network` took its lease (`held`) or found it held by another instance, whose chain figures this one's then are not. */
  chainLease(network: string, held: boolean): void;
  /** A scan pass of `network` caught up, covering the chain until `atMs` (also recorded on its cursor). */
  chainCaughtUp(network: string, atMs: number): void;
  /** A scan pass of `network` failed (its RPC endpoints down or refusing, the database out of reach). */
  chainScanFailed(network: string): void;
  /** The relayer's gas balance, read by a settlement pass; `low` when it would not pay for ten settlements. */
  relayerBalance(network: string, balanceWei: bigint, low: boolean): void;
  /** A settlement pass of `network` took its lease (`held`) or found it held by another instance, whose relayer figures this one's then are not. */
  settlementLease(network: string, held: boolean): void;
  /** Orders put into a settlement transaction. */
  settlementSent(network: string, orders: number): void;
  /** A settlement transaction became final: the orders it distributed, and the gas the relayer paid for it (0 for a distribution adopted from someone else's transaction). */
  settlementFinal(network: string, orders: number, gasUsed: bigint): void;
}

export const noMetrics: Metrics = {
  orderCreated: () => undefined,
  paymentObserved: () => undefined,
  transition: () => undefined,
  notificationAttempt: () => undefined,
  chainScanned: () => undefined,
  chainLease: () => undefined,
  chainCaughtUp: () => undefined,
  chainScanFailed: () => undefined,
  relayerBalance: () => undefined,
  settlementLease: () => undefined,
  settlementSent: () => undefined,
  settlementFinal: () => undefined,
};
