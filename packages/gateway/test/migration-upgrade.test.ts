// Upgrades of a database an older release filled: for every schema version before the latest, on
// every database kind of this run, the rows that release wrote (in its own columns, by SQL) read
// back through today's store unchanged in meaning once the gateway has migrated the database.
import { Migrator, sql, type Kysely } from 'kysely';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../src/adapters/db/database.js';
import { MIGRATIONS, migrateToLatest } from '../src/adapters/db/migrations.js';
import { operatorReads } from '../src/adapters/db/operator-reads.js';
import { createStore } from '../src/adapters/db/store.js';
import type { PlatformKeyRecord } from '../src/app/ports.js';
import type { NotificationAttemptRecord, NotificationRecord, OrderRecord, PaymentRecord, SettlementRecord } from '../src/app/records.js';
import { createTestDatabase, DATABASE_KINDS, PG_BASE_URL, type TestDatabase } from './databases.js';

const NAMES = Object.keys(MIGRATIONS);
const T = Date.UTC(2026, 10, 20, 9, 30, 0); // ms
const S = T / 1000; // s
const WALLET = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
const CA = '0x90F79bf6EB2c4f870365E51cEf8bA6b2a2Aa3E6F';
const USDT = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
const hash = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;
const addr = (n: number) => `0x${n.toString(16).padStart(40, '0')}`;
const pem = (s: string) => `-----BEGIN PUBLIC KEY-----\n${s}\n-----END PUBLIC KEY-----\n`;

/** Inserts a row by SQL, leaving out the columns given as undefined (those the version lacks). */
async function insert(k: Kysely<unknown>, table: string, row: Record<string, unknown>): Promise<void> {
  const cols = Object.keys(row).filter((c) => row[c] !== undefined);
  await sql`insert into ${sql.table(table)} (${sql.join(cols.map((c) => sql.ref(c)))}) values (${sql.join(cols.map((c) => row[c]))})`.execute(k);
}

// ---- what an older release wrote --------------------------------------------------------------

interface OrderSpec {
  no: string;
  requestNo: string;
  edition: 'standard' | 'pro';
  status: OrderRecord['state']['status'];
  exception: OrderRecord['state']['exception'];
  closeReason: OrderRecord['state']['closeReason'];
  pricing: { currency: string; amount: bigint; wire: string; precision: number; usdRate: string | null };
  selected: { network: '2' | '4'; currency: string } | null;
  seen: bigint;
  final: bigint;
  payTime: number;
  completedTime: number;
  closedTime: number;
  sequence: number;
  version: number;
  divideDetail: unknown;
}

const usdtOption = (split: OrderRecord['options'][number]['split'] = null): OrderRecord['options'][number] => ({
  network: '4',
  currency: 'USDT',
  contract: USDT,
  decimals: 6,
  precision: 2,
  amount: 1050n,
  amountBase: 10_500_000n,
  fee: 1_000_000n,
  usdRate: '1',
  split,
});
const ethOption: OrderRecord['options'][number] = {
  network: '2',
  currency: 'ETH',
  contract: null,
  decimals: 18,
  precision: 2,
  amount: 1050n,
  amountBase: 3_500_000_000_000_000n,
  fee: 333_333_333_333_333n,
  usdRate: '3000.5',
  split: null,
};
const SPLIT = { seller: { address: WALLET, amount: 2_000_000n }, merchant: 7_500_000n, others: [{ address: CA, amount: 1_000_000n }] };

const ORDERS: OrderSpec[] = [
  { no: 'P20261120093000000001', requestNo: 'R-pending', edition: 'standard', status: 'PENDING', exception: null, closeReason: null, pricing: { currency: 'USD', amount: 1050n, wire: '10.5', precision: 2, usdRate: '1' }, selected: null, seen: 0n, final: 0n, payTime: 0, completedTime: 0, closedTime: 0, sequence: 0, version: 1, divideDetail: null },
  { no: 'P20261120093000000002', requestNo: 'R-paying', edition: 'standard', status: 'PAYING', exception: null, closeReason: null, pricing: { currency: 'USD', amount: 1050n, wire: '10.50', precision: 2, usdRate: '1' }, selected: { network: '4', currency: 'USDT' }, seen: 5_000_000n, final: 0n, payTime: 0, completedTime: 0, closedTime: 0, sequence: 0, version: 3, divideDetail: null },
  { no: 'P20261120093000000003', requestNo: 'R-paid', edition: 'standard', status: 'PAID', exception: 'OVERPAID', closeReason: null, pricing: { currency: 'HKD', amount: 8190n, wire: '81.9', precision: 2, usdRate: '0.1282' }, selected: { network: '4', currency: 'USDT' }, seen: 11_000_000n, final: 11_000_000n, payTime: S + 60, completedTime: 0, closedTime: 0, sequence: 1, version: 5, divideDetail: null },
  { no: 'P20261120093000000004', requestNo: 'R-completed', edition: 'pro', status: 'COMPLETED', exception: null, closeReason: null, pricing: { currency: 'USD', amount: 1050n, wire: '10.5', precision: 2, usdRate: '1' }, selected: { network: '4', currency: 'USDT' }, seen: 10_500_000n, final: 10_500_000n, payTime: S + 60, completedTime: S + 120, closedTime: 0, sequence: 2, version: 7, divideDetail: { seller: { address: WALLET, amount: '2' }, others: [{ address: CA, amount: '1' }] } },
  { no: 'P20261120093000000005', requestNo: 'R-expired', edition: 'standard', status: 'CLOSED', exception: 'UNDERPAID', closeReason: 'EXPIRED', pricing: { currency: 'USD', amount: 1050n, wire: '10.5', precision: 2, usdRate: '1' }, selected: { network: '2', currency: 'ETH' }, seen: 1_000_000_000_000_000n, final: 1_000_000_000_000_000n, payTime: 0, completedTime: 0, closedTime: S + 900, sequence: 1, version: 4, divideDetail: null },
  { no: 'P20261120093000000006', requestNo: 'R-closed', edition: 'standard', status: 'CLOSED', exception: null, closeReason: 'MERCHANT_CLOSED', pricing: { currency: 'USD', amount: 1050n, wire: '10.5', precision: 2, usdRate: '1' }, selected: null, seen: 0n, final: 0n, payTime: 0, completedTime: 0, closedTime: S + 30, sequence: 1, version: 2, divideDetail: null },
  { no: 'P20261120093000000007', requestNo: 'R-reverted', edition: 'standard', status: 'PAID', exception: 'REVERTED', closeReason: null, pricing: { currency: 'USD', amount: 1050n, wire: '10.5', precision: 2, usdRate: '1' }, selected: { network: '4', currency: 'USDT' }, seen: 10_500_000n, final: 10_500_000n, payTime: S + 60, completedTime: 0, closedTime: 0, sequence: 2, version: 6, divideDetail: null },
  { no: 'P20261120093000000008', requestNo: 'R-alone', edition: 'standard', status: 'PAID', exception: null, closeReason: null, pricing: { currency: 'USD', amount: 1050n, wire: '10.5', precision: 2, usdRate: '1' }, selected: { network: '4', currency: 'USDT' }, seen: 10_500_000n, final: 10_500_000n, payTime: S + 60, completedTime: 0, closedTime: 0, sequence: 1, version: 4, divideDetail: null },
];

const optionsOf = (o: OrderSpec) => (o.edition === 'pro' ? [usdtOption(SPLIT)] : [ethOption, usdtOption()]);

const MERCHANT = 'M000000000000001';
const APP = '000000000000001';
const OTHER_APP = '000000000000002';
const KEYS: PlatformKeyRecord[] = [
  { serial: 'D0', appId: null, publicKeyPem: pem('d0'), privateKeyEnc: 'sealed:d0', status: 'ACTIVE', createdAt: T },
  { serial: 'A1', appId: APP, publicKeyPem: pem('a1'), privateKeyEnc: 'sealed:a1', status: 'RETIRED', createdAt: T + 1 },
  { serial: 'A2', appId: APP, publicKeyPem: pem('a2'), privateKeyEnc: 'sealed:a2', status: 'ACTIVE', createdAt: T + 2, activatedAt: T + 5_000 },
  { serial: 'A3', appId: APP, publicKeyPem: pem('a3'), privateKeyEnc: 'sealed:a3', status: 'NEXT', createdAt: T + 3 },
  { serial: 'B1', appId: OTHER_APP, publicKeyPem: pem('b1'), privateKeyEnc: 'sealed:b1', status: 'ACTIVE', createdAt: T + 4 },
];

/** Fills the database as a release whose last migration is NAMES[at] wrote it. */
async function fill(k: Kysely<unknown>, at: number): Promise<void> {
  const has = (migration: string) => NAMES.indexOf(migration) <= at;
  const since = <V>(migration: string, v: V): V | undefined => (has(migration) ? v : undefined);

  await insert(k, 'merchants', { merchant_no: MERCHANT, name: 'Café "Ümlaut" ✓', status: 'ACTIVE', online_payment: 1, created_at: T, updated_at: T });
  await insert(k, 'merchant_networks', { merchant_no: MERCHANT, network: '2', wallet_address: WALLET, ca_address: null });
  await insert(k, 'merchant_networks', { merchant_no: MERCHANT, network: '4', wallet_address: WALLET, ca_address: CA });
  await insert(k, 'merchants', { merchant_no: 'M000000000000002', name: 'Closed shop', status: 'INACTIVE', online_payment: 0, created_at: T, updated_at: T + 1 });
  await insert(k, 'applications', { app_id: APP, merchant_no: MERCHANT, merchant_public_key: pem('merchant'), status: 'ACTIVE', created_at: T, updated_at: T });
  await insert(k, 'applications', { app_id: OTHER_APP, merchant_no: MERCHANT, merchant_public_key: pem('other'), status: 'DISABLED', created_at: T + 1, updated_at: T + 2 });
  for (const key of KEYS) {
    await insert(k, 'platform_keys', {
      serial: key.serial,
      app_id: key.appId,
      public_key: key.publicKeyPem,
      private_key_enc: key.privateKeyEnc,
      status: key.status,
      created_at: key.createdAt,
      activated_at: since('0009_platform_key_activated_at', key.activatedAt ?? null),
    });
  }
  await insert(k, 'nonces', { app_id: APP, nonce: 'n-1', expires_at: T + 300_000 });

  for (const o of ORDERS) {
    await insert(k, 'orders', {
      payment_order_no: o.no,
      merchant_no: MERCHANT,
      app_id: APP,
      edition: o.edition,
      request_no: o.requestNo,
      request_no_key: o.requestNo.toLowerCase(),
      request_hash: `sha256:${o.requestNo}`,
      merchant_order_no: `MO-${o.requestNo}`,
      merchant_order_time: S,
      merchant_order_timeout: S + 900,
      expire_time: S + 900,
      merchant_order_desc: 'Two "coffees" — ☕☕',
      goods_info: '[{"name":"coffee","qty":2}]',
      merchant_application_user_id: 'user-1',
      notify_url: 'https://shop.example:8443/notify',
      redirect_url: 'https://shop.example/done',
      business_info: null,
      extension: '{"k":"v"}',
      divide_detail: o.divideDetail === null ? null : JSON.stringify(o.divideDetail),
      pricing_currency: o.pricing.currency,
      pricing_amount: o.pricing.amount.toString(),
      pricing_amount_wire: o.pricing.wire,
      pricing_precision: o.pricing.precision,
      pricing_usd_rate: since('0011_order_pricing_usd_rate', o.pricing.usdRate),
      pay_status: o.status,
      pay_exception: o.exception,
      close_reason: o.closeReason,
      order_time: S,
      pay_time: o.payTime,
      completed_time: o.completedTime,
      closed_time: o.closedTime,
      selected_network: o.selected?.network ?? null,
      selected_currency: o.selected?.currency ?? null,
      seen_amount: o.seen.toString(),
      final_amount: o.final.toString(),
      sequence: o.sequence,
      cashier_token: `ct-${o.requestNo}`,
      watch_until: S + 900 + 86_400,
      version: o.version,
      created_at: T,
      updated_at: T + o.version,
    });
    for (const opt of optionsOf(o)) {
      await insert(k, 'order_options', {
        payment_order_no: o.no,
        network: opt.network,
        currency: opt.currency,
        contract: opt.contract,
        decimals: opt.decimals,
        precision: opt.precision,
        amount: opt.amount.toString(),
        amount_base: opt.amountBase.toString(),
        fee: opt.fee.toString(),
        usd_rate: opt.usdRate,
        split: opt.split && JSON.stringify({ seller: { address: WALLET, amount: '2000000' }, merchant: '7500000', others: [{ address: CA, amount: '1000000' }] }),
      });
    }
  }

  for (const p of PAYMENTS) {
    await insert(k, 'payments', {
      payment_order_no: p.paymentOrderNo,
      network: p.network,
      currency: p.currency,
      tx_hash: p.txHash,
      log_index: p.logIndex,
      block_number: p.blockNumber,
      block_hash: p.blockHash,
      address: p.address,
      amount: p.amount.toString(),
      confirmations: p.confirmations,
      status: p.status,
      created_at: p.createdAt,
      updated_at: p.updatedAt,
      chain_tx_hash: since('0010_payment_chain_tx_hash', p.chainTxHash ?? null),
    });
  }

  for (const n of NOTIFICATIONS) {
    await insert(k, 'notifications', {
      notify_id: n.notifyId,
      payment_order_no: n.paymentOrderNo,
      notify_type: n.notifyType,
      sequence: n.sequence,
      payload: n.payload,
      status: n.status,
      attempts: n.attempts,
      next_attempt_at: n.nextAttemptAt,
      created_at: n.createdAt,
      series: since('0002_notification_delivery', n.series),
      attempt_no: since('0002_notification_delivery', n.attemptNo),
      notify_time: since('0002_notification_delivery', n.notifyTime),
      lease_owner: since('0002_notification_delivery', n.leaseOwner),
      delivered_at: since('0002_notification_delivery', n.deliveredAt),
      destination: since('0002_notification_delivery', n.destination),
    });
  }
  if (has('0002_notification_delivery')) {
    for (const a of ATTEMPTS) {
      await insert(k, 'notification_attempts', {
        notify_id: a.notifyId,
        attempt_no: a.attemptNo,
        series: a.series,
        sender: a.sender,
        started_at: a.startedAt,
        finished_at: a.finishedAt,
        outcome: a.outcome,
        http_status: a.httpStatus,
        latency_ms: a.latencyMs,
        response_head: a.responseHead,
        error_kind: a.errorKind,
        error: a.error,
      });
    }
  }

  if (has('0003_chain')) {
    for (const [i, o] of ORDERS.entries()) {
      if (!o.selected) continue;
      await insert(k, 'deposit_addresses', {
        payment_order_no: o.no,
        network: o.selected.network,
        currency: o.selected.currency,
        address: addr(0xd00 + i),
        token: o.selected.currency === 'USDT' ? USDT : null,
        amount_base: optionsOf(o).find((x) => x.network === o.selected!.network)!.amountBase.toString(),
        plan: `{"order":"${o.no}"}`,
        created_at: T + i,
      });
    }
    await insert(k, 'chain_cursors', {
      network: '4',
      next_block: 1_000,
      scanned_hash: since('0007_chain_cursor_hash', hash(999)),
      caught_up_at: since('0008_chain_cursor_caught_up', T + 60_000),
      lease_owner: 'host-a/123',
      lease_until: T + 90_000,
      updated_at: T + 60_000,
    });
  }

  if (has('0005_settlements')) {
    for (const st of SETTLEMENTS) {
      await insert(k, 'settlements', {
        payment_order_no: st.paymentOrderNo,
        network: st.network,
        currency: st.currency,
        address: st.address,
        status: st.status,
        tx_id: st.txId,
        tx_hash: st.txHash,
        distributed: st.distributed?.toString() ?? null,
        attempts: st.attempts,
        last_error: st.lastError,
        next_attempt_at: st.nextAttemptAt,
        created_at: st.createdAt,
        updated_at: st.updatedAt,
        settled_at: st.settledAt,
        reverted_tx: since('0012_settlement_reverted_tx', st.revertedTx),
      });
    }
    await insert(k, 'settlement_txs', { id: 'tx-final', network: '4', relayer: WALLET, nonce: 7, status: 'FINAL', tx_hash: hash(0x51), raw_tx: '0x02f8', hashes: JSON.stringify([hash(0x50), hash(0x51)]), max_fee_per_gas: '30000000000', max_priority_fee_per_gas: '1500000000', gas_limit: '210000', order_count: 1, block_number: 1_200, block_hash: hash(0xb1200), mined_hash: hash(0x51), gas_used: '150000', created_at: T + 200_000, sent_at: T + 200_001, updated_at: T + 260_000 });
    await insert(k, 'settlement_txs', { id: 'tx-alone', network: '4', relayer: WALLET, nonce: 9, status: 'SENT', tx_hash: hash(0x61), raw_tx: '0x02f9', hashes: JSON.stringify([hash(0x61)]), max_fee_per_gas: '30000000000', max_priority_fee_per_gas: '1500000000', gas_limit: '210000', order_count: 1, block_number: null, block_hash: null, mined_hash: null, gas_used: null, created_at: T + 400_000, sent_at: T + 400_001, updated_at: T + 400_001 });
    await insert(k, 'settlement_payouts', { payment_order_no: ORDERS[3]!.no, idx: 0, role: 'seller', address: WALLET.toLowerCase(), amount: '2000000' });
    await insert(k, 'settlement_payouts', { payment_order_no: ORDERS[3]!.no, idx: 1, role: 'merchant', address: WALLET.toLowerCase(), amount: '6500000' });
    await insert(k, 'leases', { name: 'settlement:4', owner: 'host-a/123', lease_until: T + 30_000, updated_at: T });
  }
}

// ---- what they mean today -------------------------------------------------------------------------

const PAYMENTS: PaymentRecord[] = [
  { paymentOrderNo: ORDERS[1]!.no, network: '4', currency: 'USDT', txHash: hash(0x11), logIndex: 3, blockNumber: 995, blockHash: hash(0xb995), address: addr(0xd01), amount: 5_000_000n, confirmations: 5, status: 'SEEN', chainTxHash: null, createdAt: T + 10, updatedAt: T + 11 },
  { paymentOrderNo: ORDERS[2]!.no, network: '4', currency: 'USDT', txHash: hash(0x12), logIndex: 0, blockNumber: 900, blockHash: hash(0xb900), address: addr(0xd02), amount: 11_000_000n, confirmations: 64, status: 'FINAL', chainTxHash: null, createdAt: T + 20, updatedAt: T + 21 },
  { paymentOrderNo: ORDERS[3]!.no, network: '4', currency: 'USDT', txHash: hash(0x13), logIndex: 1, blockNumber: 901, blockHash: hash(0xb901), address: addr(0xd03), amount: 10_500_000n, confirmations: 64, status: 'FINAL', chainTxHash: null, createdAt: T + 30, updatedAt: T + 31 },
  { paymentOrderNo: ORDERS[3]!.no, network: '4', currency: 'USDT', txHash: hash(0x14), logIndex: 2, blockNumber: 902, blockHash: hash(0xb902), address: addr(0xd03), amount: 1n, confirmations: 0, status: 'REVERTED', chainTxHash: null, createdAt: T + 40, updatedAt: T + 41 },
  // A native receipt found by a balance read: keyed by its synthetic hash; named by its transaction since 0010.
  { paymentOrderNo: ORDERS[4]!.no, network: '2', currency: 'ETH', txHash: `balance:${addr(0xd04)}:880`, logIndex: 0, blockNumber: 880, blockHash: hash(0xb880), address: addr(0xd04), amount: 1_000_000_000_000_000n, confirmations: 12, status: 'FINAL', chainTxHash: hash(0x15), createdAt: T + 50, updatedAt: T + 51 },
];

const payload = (type: string, no: string) => JSON.stringify({ notify_type: type, payment_order_no: no, amount: '10.5' });
const NOTIFICATIONS: NotificationRecord[] = [
  { notifyId: 'N0001', paymentOrderNo: ORDERS[2]!.no, notifyType: 'ORDER_PAID', sequence: 1, payload: payload('ORDER_PAID', ORDERS[2]!.no), status: 'DELIVERED', attempts: 2, nextAttemptAt: T + 70_000, createdAt: T + 60_000, series: 1, attemptNo: 2, notifyTime: S + 60, leaseOwner: null, deliveredAt: T + 70_000, destination: 'shop.example:8443' },
  { notifyId: 'N0002', paymentOrderNo: ORDERS[4]!.no, notifyType: 'ORDER_CLOSED', sequence: 1, payload: payload('ORDER_CLOSED', ORDERS[4]!.no), status: 'FAILED', attempts: 8, nextAttemptAt: T + 999_000, createdAt: T + 900_000, series: 2, attemptNo: 9, notifyTime: S + 900, leaseOwner: null, deliveredAt: null, destination: 'shop.example:8443' },
  { notifyId: 'N0003', paymentOrderNo: ORDERS[3]!.no, notifyType: 'ORDER_COMPLETED', sequence: 2, payload: payload('ORDER_COMPLETED', ORDERS[3]!.no), status: 'PENDING', attempts: 0, nextAttemptAt: T + 135_000, createdAt: T + 120_000, series: 1, attemptNo: 1, notifyTime: S + 120, leaseOwner: 'host-a/123#1', deliveredAt: null, destination: 'shop.example:8443' },
  { notifyId: 'N0004', paymentOrderNo: ORDERS[6]!.no, notifyType: 'ORDER_EXCEPTION', sequence: 2, payload: payload('ORDER_EXCEPTION', ORDERS[6]!.no), status: 'PENDING', attempts: 0, nextAttemptAt: T + 150_000, createdAt: T + 150_000, series: 1, attemptNo: 0, notifyTime: null, leaseOwner: null, deliveredAt: null, destination: 'shop.example:8443' },
];

const attempt = (notifyId: string, attemptNo: number, series: number, over: Partial<NotificationAttemptRecord>): NotificationAttemptRecord => ({
  notifyId,
  attemptNo,
  series,
  sender: 'host-a/123',
  startedAt: T + attemptNo * 1_000,
  finishedAt: T + attemptNo * 1_000 + 40,
  outcome: 'FAILED',
  httpStatus: 503,
  latencyMs: 40,
  responseHead: 'busy',
  errorKind: 'HTTP_STATUS',
  error: 'answered 503',
  ...over,
});
const ATTEMPTS: NotificationAttemptRecord[] = [
  attempt('N0001', 1, 1, {}),
  attempt('N0001', 2, 1, { outcome: 'DELIVERED', httpStatus: 200, responseHead: 'SUCCESS', errorKind: null, error: null }),
  ...Array.from({ length: 8 }, (_, i) => attempt('N0002', i + 1, 1, { httpStatus: null, responseHead: null, errorKind: 'CONNECTION_REFUSED', error: 'connect ECONNREFUSED' })),
  attempt('N0002', 9, 2, { outcome: 'INTERRUPTED', httpStatus: null, latencyMs: null, responseHead: null, errorKind: 'INTERRUPTED', error: 'the gateway stopped' }),
  attempt('N0003', 1, 1, { finishedAt: null, outcome: 'IN_FLIGHT', httpStatus: null, latencyMs: null, responseHead: null, errorKind: null, error: null }),
];

const settlement = (o: OrderSpec, over: Partial<SettlementRecord>): SettlementRecord => ({
  paymentOrderNo: o.no,
  network: '4',
  currency: 'USDT',
  address: addr(0xd00 + ORDERS.indexOf(o)),
  status: 'DUE',
  txId: null,
  txHash: null,
  distributed: null,
  attempts: 0,
  lastError: null,
  nextAttemptAt: T + 60_000,
  createdAt: T + 60_000,
  updatedAt: T + 60_000,
  settledAt: null,
  revertedTx: null,
  ...over,
});
const REVERTED = `settlement transaction ${hash(0x71)} reverted on chain`;
const SETTLEMENTS: SettlementRecord[] = [
  // Due, never tried.
  settlement(ORDERS[2]!, {}),
  // Settled in a final transaction.
  settlement(ORDERS[3]!, { status: 'SETTLED', txId: 'tx-final', txHash: hash(0x51), distributed: 10_500_000n, attempts: 1, settledAt: T + 260_000, updatedAt: T + 260_000 }),
  // Due again after its transaction reverted on chain (written before 0012 said so by a column): it goes alone.
  settlement(ORDERS[6]!, { attempts: 1, lastError: REVERTED, nextAttemptAt: T + 330_000, updatedAt: T + 300_000, revertedTx: hash(0x71) }),
  // Deferred for another reason: no mark.
  settlement(ORDERS[4]!, { network: '2', currency: 'ETH', address: addr(0xd04), attempts: 3, lastError: 'estimate failed: execution reverted', nextAttemptAt: T + 500_000, updatedAt: T + 400_000 }),
  // After its revert, sent alone and in flight: the release before 0012 kept the reason while SENT.
  settlement(ORDERS[7]!, { status: 'SENT', txId: 'tx-alone', txHash: hash(0x61), distributed: 10_500_000n, attempts: 1, lastError: `settlement transaction ${hash(0x72)} reverted on chain`, nextAttemptAt: T + 330_000, updatedAt: T + 400_000, revertedTx: hash(0x72) }),
];

/** The order as today's store reads it, written by a release whose last migration is NAMES[at]. */
function expectedOrder(o: OrderSpec, at: number): OrderRecord {
  const options = optionsOf(o);
  const selected = o.selected ? options.find((x) => x.network === o.selected!.network && x.currency === o.selected!.currency)! : null;
  return {
    paymentOrderNo: o.no,
    merchantNo: MERCHANT,
    appId: APP,
    edition: o.edition,
    requestNo: o.requestNo,
    requestNoKey: o.requestNo.toLowerCase(),
    requestHash: `sha256:${o.requestNo}`,
    merchantOrderNo: `MO-${o.requestNo}`,
    merchantOrderTime: S,
    merchantOrderTimeout: S + 900,
    merchantOrderDesc: 'Two "coffees" — ☕☕',
    goodsInfo: '[{"name":"coffee","qty":2}]',
    merchantApplicationUserId: 'user-1',
    notifyUrl: 'https://shop.example:8443/notify',
    redirectUrl: 'https://shop.example/done',
    businessInfo: null,
    extension: '{"k":"v"}',
    divideDetail: o.divideDetail,
    pricingCurrency: o.pricing.currency,
    pricingAmount: o.pricing.amount,
    pricingAmountWire: o.pricing.wire,
    pricingPrecision: o.pricing.precision,
    // Orders made before 0011 did not keep the rate: unknown, never invented.
    pricingUsdRate: at >= NAMES.indexOf('0011_order_pricing_usd_rate') ? o.pricing.usdRate : null,
    orderTime: S,
    state: {
      status: o.status,
      exception: o.exception,
      closeReason: o.closeReason,
      expireTime: S + 900,
      payTime: o.payTime,
      completedTime: o.completedTime,
      closedTime: o.closedTime,
      due: selected?.amountBase ?? null,
      received: { seen: o.seen, final: o.final },
    },
    selectedNetwork: o.selected?.network ?? null,
    selectedCurrency: o.selected?.currency ?? null,
    sequence: o.sequence,
    cashierToken: `ct-${o.requestNo}`,
    watchUntil: S + 900 + 86_400,
    version: o.version,
    createdAt: T,
    updatedAt: T + o.version,
    options,
  };
}

// ---- the upgrades ---------------------------------------------------------------------------------

describe.each(DATABASE_KINDS)('upgrading a database an older release filled, on %s', (kind) => {
  let tdb: TestDatabase | undefined;
  let db: Db | undefined;
  afterEach(async () => {
    await db?.close();
    await tdb?.drop();
    db = tdb = undefined;
  });

  it.each(NAMES.slice(0, -1).map((name, at) => [name, at] as const))('from %s: every row reads back unchanged in meaning', async (name, at) => {
    tdb = await createTestDatabase(kind);
    db = await openDatabase({ url: tdb.url, poolSize: 2, migrate: false });
    const k = db.kysely as Kysely<unknown>;
    const { error } = await new Migrator({ db: k, provider: { getMigrations: async () => MIGRATIONS } }).migrateTo(name);
    expect(error).toBeUndefined();
    await fill(k, at);

    await migrateToLatest(k);

    const store = createStore(db);
    const has = (migration: string) => NAMES.indexOf(migration) <= at;
    expect(await store.merchants.get(MERCHANT)).toEqual({ merchantNo: MERCHANT, name: 'Café "Ümlaut" ✓', status: 'ACTIVE', onlinePayment: true, wallets: { '2': WALLET, '4': WALLET }, caAddresses: { '4': CA }, createdAt: T });
    expect(await store.merchants.get('M000000000000002')).toMatchObject({ status: 'INACTIVE', onlinePayment: false, wallets: {}, caAddresses: {} });
    expect(await store.applications.listByMerchant(MERCHANT)).toEqual([
      { appId: APP, merchantNo: MERCHANT, merchantPublicKeyPem: pem('merchant'), status: 'ACTIVE', createdAt: T },
      { appId: OTHER_APP, merchantNo: MERCHANT, merchantPublicKeyPem: pem('other'), status: 'DISABLED', createdAt: T + 1 },
    ]);
    // A key activated before 0009 has no activation time: read as created ACTIVE.
    const keys = KEYS.map((key) => (has('0009_platform_key_activated_at') ? key : { ...key, activatedAt: undefined }));
    for (const key of keys) expect(await store.platformKeys.get(key.serial)).toEqual(key);
    expect((await store.platformKeys.activeFor(APP))?.serial).toBe('A2');
    expect((await store.platformKeys.activeFor(null))?.serial).toBe('D0');
    expect(await store.nonces.remember(APP, 'n-1', T + 300_000, T + 1)).toBe(false);

    for (const o of ORDERS) {
      expect(await store.orders.get(o.no)).toEqual(expectedOrder(o, at));
      expect(await store.orders.findByRequest(MERCHANT, o.requestNo.toLowerCase())).toMatchObject({ paymentOrderNo: o.no });
    }
    for (const o of ORDERS) {
      const payments = PAYMENTS.filter((p) => p.paymentOrderNo === o.no).map((p) => (has('0010_payment_chain_tx_hash') ? p : { ...p, chainTxHash: null }));
      expect(await store.payments.listByOrder(o.no)).toEqual(payments);
    }
    expect((await store.payments.listUnfinal('4')).map((p) => p.txHash)).toEqual([hash(0x11)]);

    const DELIVERY_DEFAULTS = { series: 1, attemptNo: 0, notifyTime: null, leaseOwner: null, deliveredAt: null, destination: '' };
    for (const n of NOTIFICATIONS) {
      expect(await store.notifications.get(n.notifyId)).toEqual(has('0002_notification_delivery') ? n : { ...n, ...DELIVERY_DEFAULTS });
      expect(await store.notifications.listAttempts(n.notifyId)).toEqual(has('0002_notification_delivery') ? ATTEMPTS.filter((a) => a.notifyId === n.notifyId) : []);
    }
    expect(await store.notifications.backlog(T + 200_000)).toEqual({ pending: 2, due: 2, oldestDueAt: T + 135_000, failed: 1 });

    if (!has('0003_chain')) return;
    for (const [i, o] of ORDERS.entries()) {
      if (!o.selected) continue;
      expect(await store.depositAddresses.get(o.no, o.selected.network, o.selected.currency)).toEqual({
        paymentOrderNo: o.no,
        network: o.selected.network,
        currency: o.selected.currency,
        address: addr(0xd00 + i),
        token: o.selected.currency === 'USDT' ? USDT : null,
        amountBase: optionsOf(o).find((x) => x.network === o.selected!.network)!.amountBase,
        plan: `{"order":"${o.no}"}`,
        createdAt: T + i,
      });
    }
    expect((await store.depositAddresses.findByAddress('4', addr(0xd02))).map((d) => d.paymentOrderNo)).toEqual([ORDERS[2]!.no]);
    // A cursor from before 0007/0008 knows no scanned hash and has not caught up since: the scan
    // checks nothing it cannot, and no order is closed before a pass catches up.
    expect(await operatorReads(db.kysely).chainCursors()).toEqual([
      {
        network: '4',
        nextBlock: 1_000,
        scannedHash: has('0007_chain_cursor_hash') ? hash(999) : null,
        caughtUpAt: has('0008_chain_cursor_caught_up') ? T + 60_000 : null,
        leaseOwner: 'host-a/123',
        leaseUntil: T + 90_000,
      },
    ]);

    if (!has('0005_settlements')) return;
    for (const st of SETTLEMENTS) expect(await store.settlements.get(st.paymentOrderNo)).toEqual(st);
    expect((await store.settlements.view(ORDERS[3]!.no))?.payouts).toEqual([
      { paymentOrderNo: ORDERS[3]!.no, idx: 0, role: 'seller', address: WALLET.toLowerCase(), amount: 2_000_000n },
      { paymentOrderNo: ORDERS[3]!.no, idx: 1, role: 'merchant', address: WALLET.toLowerCase(), amount: 6_500_000n },
    ]);
    expect(await store.settlements.getTx('tx-final')).toMatchObject({ status: 'FINAL', nonce: 7, hashes: [hash(0x50), hash(0x51)], maxFeePerGas: 30_000_000_000n, gasUsed: 150_000n, blockNumber: 1_200 });
    expect((await store.settlements.listOpenTxs('4')).map((t) => t.id)).toEqual(['tx-alone']);
    expect((await store.settlements.listByTx('tx-alone')).map((s) => s.paymentOrderNo)).toEqual([ORDERS[7]!.no]);
    // The lease is held until it runs out, as before.
    expect(await store.leases.acquire('settlement:4', 'host-b/456', T + 1_000, T + 31_000)).toBe(false);
  }, 30_000);

  it("keeps the console's order indexes an operator built before the upgrade (README: built without blocking writes)", async () => {
    tdb = await createTestDatabase(kind);
    db = await openDatabase({ url: tdb.url, poolSize: 2, migrate: false });
    const k = db.kysely as Kysely<unknown>;
    expect((await new Migrator({ db: k, provider: { getMigrations: async () => MIGRATIONS } }).migrateTo('0012_settlement_reverted_tx')).error).toBeUndefined();
    await sql`create index orders_merchant_recent on orders (merchant_no, payment_order_no)`.execute(k);
    await sql`create index orders_status_recent on orders (pay_status, payment_order_no)`.execute(k);
    await migrateToLatest(k);
    const applied = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(k);
    expect(applied.rows.map((r) => r.name)).toEqual(NAMES);
  });
});

// A rolling upgrade: the new release's instances start together on the PostgreSQL database the
// old ones still use, with migrations pending.
describe.runIf(PG_BASE_URL)('instances of a new release starting together on PostgreSQL with migrations pending', () => {
  const applied = async (db: Db) => (await (db.kysely as unknown as Kysely<{ kysely_migration: { name: string } }>).selectFrom('kysely_migration').select('name').execute()).map((r) => r.name).sort();
  const waiting = async (c: pg.Client, locktype: string) => Number((await c.query<{ n: string }>('select count(*) as n from pg_locks where locktype = $1 and not granted', [locktype])).rows[0]!.n);
  async function until(what: () => Promise<boolean>): Promise<void> {
    for (let i = 0; !(await what()); i++) {
      if (i > 400) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it('apply them once: the second waits for the first one\'s upgrade and finds it done', async () => {
    const tdb = await createTestDatabase('postgres');
    const old = await openDatabase({ url: tdb.url, poolSize: 1, migrate: false });
    // An old instance's reader holds the orders table: the first upgrade waits half-way, in its transaction.
    const reader = new pg.Client({ connectionString: tdb.url });
    await reader.connect();
    const opened: Db[] = [];
    try {
      const { error } = await new Migrator({ db: old.kysely as Kysely<unknown>, provider: { getMigrations: async () => MIGRATIONS } }).migrateTo('0010_payment_chain_tx_hash');
      expect(error).toBeUndefined();
      await reader.query('begin');
      await reader.query('select count(*) from orders');

      const first = openDatabase({ url: tdb.url, poolSize: 2 });
      await until(async () => (await waiting(reader, 'relation')) > 0);
      const second = openDatabase({ url: tdb.url, poolSize: 2 });
      // The second waits for the upgrade's lock (Kysely's advisory lock), not at a table the first
      // one is changing, where it would go on to apply the same migrations again and fail.
      await until(async () => (await waiting(reader, 'advisory')) > 0);
      expect(await waiting(reader, 'relation')).toBe(1);
      await reader.query('commit');

      opened.push(...(await Promise.all([first, second])));
      expect(await applied(opened[1]!)).toEqual(NAMES);
    } finally {
      await reader.end();
      for (const db of [old, ...opened]) await db.close();
      await tdb.drop();
    }
  }, 30_000);

  // An old instance's transaction that wrote a settlement and then completes its order, while the
  // upgrade holds the orders table and waits for the settlements one: PostgreSQL breaks the
  // deadlock by cancelling one of them.
  it('start although the upgrade met an old instance\'s transaction in a deadlock', async () => {
    const tdb = await createTestDatabase('postgres');
    const old = await openDatabase({ url: tdb.url, poolSize: 1, migrate: false });
    const writer = new pg.Client({ connectionString: tdb.url });
    const watcher = new pg.Client({ connectionString: tdb.url });
    await writer.connect();
    await watcher.connect();
    let db: Db | undefined;
    try {
      const { error } = await new Migrator({ db: old.kysely as Kysely<unknown>, provider: { getMigrations: async () => MIGRATIONS } }).migrateTo('0010_payment_chain_tx_hash');
      expect(error).toBeUndefined();
      await writer.query('begin');
      await writer.query("update settlements set attempts = attempts + 1 where payment_order_no = 'P1'");

      const opening = openDatabase({ url: tdb.url, poolSize: 2 }).then(
        (d) => (db = d),
        (e: unknown) => e as Error,
      );
      await until(async () => (await waiting(watcher, 'relation')) > 0);
      const completed = writer.query("update orders set version = version + 1 where payment_order_no = 'P1'").then(
        () => writer.query('commit'),
        async (e: unknown) => {
          await writer.query('rollback');
          return e;
        },
      );
      const [opened] = await Promise.all([opening, completed]);
      expect(opened).toBe(db);
      expect(await applied(db!)).toEqual(NAMES);
    } finally {
      await writer.end();
      await watcher.end();
      for (const d of [old, db]) await d?.close();
      await tdb.drop();
    }
  }, 30_000);
});
