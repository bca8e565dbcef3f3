// One set of migrations for SQLite and PostgreSQL. Only portable column types are used:
// text, integer, bigint (SQLite maps both integers to INTEGER). Money is text.
// Single-column text primary keys say notNull() explicitly: SQLite (unlike PostgreSQL) lets a
// non-INTEGER PRIMARY KEY column hold NULL, several times over.
import { Kysely, Migrator, sql, type Migration } from 'kysely';

const init: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('merchants')
      .addColumn('merchant_no', 'text', (c) => c.primaryKey().notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('online_payment', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('merchant_networks')
      .addColumn('merchant_no', 'text', (c) => c.notNull().references('merchants.merchant_no'))
      .addColumn('network', 'text', (c) => c.notNull())
      .addColumn('wallet_address', 'text')
      .addColumn('ca_address', 'text')
      .addPrimaryKeyConstraint('merchant_networks_pk', ['merchant_no', 'network'])
      .execute();
    await db.schema
      .createTable('applications')
      .addColumn('app_id', 'text', (c) => c.primaryKey().notNull())
      .addColumn('merchant_no', 'text', (c) => c.notNull().references('merchants.merchant_no'))
      .addColumn('merchant_public_key', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('platform_keys')
      .addColumn('serial', 'text', (c) => c.primaryKey().notNull())
      .addColumn('app_id', 'text', (c) => c.references('applications.app_id'))
      .addColumn('public_key', 'text', (c) => c.notNull())
      .addColumn('private_key_enc', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('platform_keys_app').on('platform_keys').columns(['app_id', 'status']).execute();
    await db.schema
      .createTable('nonces')
      .addColumn('app_id', 'text', (c) => c.notNull())
      .addColumn('nonce', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('nonces_pk', ['app_id', 'nonce'])
      .execute();
    await db.schema.createIndex('nonces_expiry').on('nonces').column('expires_at').execute();
    await db.schema
      .createTable('orders')
      .addColumn('payment_order_no', 'text', (c) => c.primaryKey().notNull())
      .addColumn('merchant_no', 'text', (c) => c.notNull().references('merchants.merchant_no'))
      .addColumn('app_id', 'text', (c) => c.notNull())
      .addColumn('edition', 'text', (c) => c.notNull())
      .addColumn('request_no', 'text', (c) => c.notNull())
      .addColumn('request_no_key', 'text', (c) => c.notNull())
      .addColumn('request_hash', 'text', (c) => c.notNull())
      .addColumn('merchant_order_no', 'text')
      .addColumn('merchant_order_time', 'bigint', (c) => c.notNull())
      .addColumn('merchant_order_timeout', 'bigint', (c) => c.notNull())
      .addColumn('expire_time', 'bigint', (c) => c.notNull())
      .addColumn('merchant_order_desc', 'text')
      .addColumn('goods_info', 'text')
      .addColumn('merchant_application_user_id', 'text')
      .addColumn('notify_url', 'text')
      .addColumn('redirect_url', 'text')
      .addColumn('business_info', 'text')
      .addColumn('extension', 'text')
      .addColumn('divide_detail', 'text')
      .addColumn('pricing_currency', 'text', (c) => c.notNull())
      .addColumn('pricing_amount', 'text', (c) => c.notNull())
      .addColumn('pricing_amount_wire', 'text', (c) => c.notNull())
      .addColumn('pricing_precision', 'integer', (c) => c.notNull())
      .addColumn('pay_status', 'text', (c) => c.notNull())
      .addColumn('pay_exception', 'text')
      .addColumn('close_reason', 'text')
      .addColumn('order_time', 'bigint', (c) => c.notNull())
      .addColumn('pay_time', 'bigint', (c) => c.notNull())
      .addColumn('completed_time', 'bigint', (c) => c.notNull())
      .addColumn('closed_time', 'bigint', (c) => c.notNull())
      .addColumn('selected_network', 'text')
      .addColumn('selected_currency', 'text')
      .addColumn('seen_amount', 'text', (c) => c.notNull())
      .addColumn('final_amount', 'text', (c) => c.notNull())
      .addColumn('sequence', 'integer', (c) => c.notNull())
      .addColumn('cashier_token', 'text', (c) => c.notNull())
      .addColumn('watch_until', 'bigint', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addUniqueConstraint('orders_request_no', ['merchant_no', 'request_no_key'])
      .execute();
    await db.schema.createIndex('orders_due').on('orders').columns(['pay_status', 'expire_time']).execute();
    await db.schema
      .createTable('order_options')
      .addColumn('payment_order_no', 'text', (c) => c.notNull().references('orders.payment_order_no'))
      .addColumn('network', 'text', (c) => c.notNull())
      .addColumn('currency', 'text', (c) => c.notNull())
      .addColumn('contract', 'text')
      .addColumn('decimals', 'integer', (c) => c.notNull())
      .addColumn('precision', 'integer', (c) => c.notNull())
      .addColumn('amount', 'text', (c) => c.notNull())
      .addColumn('amount_base', 'text', (c) => c.notNull())
      .addColumn('fee', 'text', (c) => c.notNull())
      .addColumn('usd_rate', 'text')
      .addColumn('split', 'text')
      .addPrimaryKeyConstraint('order_options_pk', ['payment_order_no', 'network', 'currency'])
      .execute();
    await db.schema
      .createTable('payments')
      .addColumn('payment_order_no', 'text', (c) => c.notNull().references('orders.payment_order_no'))
      .addColumn('network', 'text', (c) => c.notNull())
      .addColumn('currency', 'text', (c) => c.notNull())
      .addColumn('tx_hash', 'text', (c) => c.notNull())
      .addColumn('log_index', 'integer', (c) => c.notNull())
      .addColumn('block_number', 'bigint', (c) => c.notNull())
      .addColumn('block_hash', 'text', (c) => c.notNull())
      .addColumn('address', 'text', (c) => c.notNull())
      .addColumn('amount', 'text', (c) => c.notNull())
      .addColumn('confirmations', 'integer', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('payments_pk', ['network', 'tx_hash', 'log_index'])
      .execute();
    await db.schema.createIndex('payments_order').on('payments').column('payment_order_no').execute();
    await db.schema
      .createTable('notifications')
      .addColumn('notify_id', 'text', (c) => c.primaryKey().notNull())
      .addColumn('payment_order_no', 'text', (c) => c.notNull().references('orders.payment_order_no'))
      .addColumn('notify_type', 'text', (c) => c.notNull())
      .addColumn('sequence', 'integer', (c) => c.notNull())
      .addColumn('payload', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('notifications_due').on('notifications').columns(['status', 'next_attempt_at']).execute();
  },
};

// Delivery of notifications (issue 3): attempt series, leases, and the attempt log. SQLite
// adds one column per ALTER TABLE.
const notificationDelivery: Migration = {
  async up(db: Kysely<unknown>) {
    const add = (name: string, type: 'integer' | 'bigint' | 'text', notNullDefault?: number) =>
      db.schema
        .alterTable('notifications')
        .addColumn(name, type, (c) => (notNullDefault === undefined ? c : c.notNull().defaultTo(notNullDefault)))
        .execute();
    await add('series', 'integer', 1);
    await add('attempt_no', 'integer', 0);
    await add('notify_time', 'bigint');
    await add('lease_owner', 'text');
    await add('delivered_at', 'bigint');
    await db.schema.alterTable('notifications').addColumn('destination', 'text', (c) => c.notNull().defaultTo('')).execute();
    await db.schema
      .createTable('notification_attempts')
      .addColumn('notify_id', 'text', (c) => c.notNull().references('notifications.notify_id'))
      .addColumn('attempt_no', 'integer', (c) => c.notNull())
      .addColumn('series', 'integer', (c) => c.notNull())
      .addColumn('sender', 'text', (c) => c.notNull())
      .addColumn('started_at', 'bigint', (c) => c.notNull())
      .addColumn('finished_at', 'bigint')
      .addColumn('outcome', 'text', (c) => c.notNull())
      .addColumn('http_status', 'integer')
      .addColumn('latency_ms', 'integer')
      .addColumn('response_head', 'text')
      .addColumn('error_kind', 'text')
      .addColumn('error', 'text')
      .addPrimaryKeyConstraint('notification_attempts_pk', ['notify_id', 'attempt_no'])
      .execute();
    await db.schema.createIndex('notifications_order').on('notifications').column('payment_order_no').execute();
    // What a freed per-destination slot can take next.
    await db.schema.createIndex('notifications_destination_due').on('notifications').columns(['destination', 'status', 'next_attempt_at']).execute();
  },
};

// Deposit addresses (issue 4): one per (order, network, currency), found again by address;
// the scan cursor of each network.
const depositAddresses: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('deposit_addresses')
      .addColumn('payment_order_no', 'text', (c) => c.notNull().references('orders.payment_order_no'))
      .addColumn('network', 'text', (c) => c.notNull())
      .addColumn('currency', 'text', (c) => c.notNull())
      .addColumn('address', 'text', (c) => c.notNull())
      .addColumn('token', 'text')
      .addColumn('amount_base', 'text', (c) => c.notNull())
      .addColumn('plan', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('deposit_addresses_pk', ['payment_order_no', 'network', 'currency'])
      .execute();
    await db.schema.createIndex('deposit_addresses_address').on('deposit_addresses').columns(['network', 'address']).execute();
    // One row per network: where its scan stands and which instance scans it.
    await db.schema
      .createTable('chain_cursors')
      .addColumn('network', 'text', (c) => c.primaryKey().notNull())
      .addColumn('next_block', 'bigint')
      .addColumn('lease_owner', 'text')
      .addColumn('lease_until', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('payments_unfinal').on('payments').columns(['network', 'status']).execute();
  },
};

/** Native-coin detection reads the payments of the watched addresses every pass (issue 4). */
const paymentsByAddress: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.createIndex('payments_address').on('payments').columns(['network', 'address']).execute();
  },
};

// Settlement (issue 5): one row per order to settle, the relayer's transactions (recorded before
// they are broadcast), what each receiver got, and named leases (one relayer sender per network).
const settlements: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('settlements')
      .addColumn('payment_order_no', 'text', (c) => c.primaryKey().notNull().references('orders.payment_order_no'))
      .addColumn('network', 'text', (c) => c.notNull())
      .addColumn('currency', 'text', (c) => c.notNull())
      .addColumn('address', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('tx_id', 'text')
      .addColumn('tx_hash', 'text')
      .addColumn('distributed', 'text')
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('last_error', 'text')
      .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('settled_at', 'bigint')
      .execute();
    await db.schema.createIndex('settlements_due').on('settlements').columns(['network', 'status', 'next_attempt_at']).execute();
    await db.schema.createIndex('settlements_tx').on('settlements').columns(['tx_id']).execute();
    await db.schema
      .createTable('settlement_txs')
      .addColumn('id', 'text', (c) => c.primaryKey().notNull())
      .addColumn('network', 'text', (c) => c.notNull())
      .addColumn('relayer', 'text', (c) => c.notNull())
      .addColumn('nonce', 'bigint')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('tx_hash', 'text', (c) => c.notNull())
      .addColumn('raw_tx', 'text')
      .addColumn('hashes', 'text', (c) => c.notNull())
      .addColumn('max_fee_per_gas', 'text', (c) => c.notNull())
      .addColumn('max_priority_fee_per_gas', 'text', (c) => c.notNull())
      .addColumn('gas_limit', 'text', (c) => c.notNull())
      .addColumn('order_count', 'integer', (c) => c.notNull())
      .addColumn('block_number', 'bigint')
      .addColumn('block_hash', 'text')
      .addColumn('mined_hash', 'text')
      .addColumn('gas_used', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('sent_at', 'bigint')
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    // One transaction per relayer nonce: two senders can never both use one.
    await db.schema.createIndex('settlement_txs_nonce').on('settlement_txs').columns(['network', 'relayer', 'nonce']).unique().execute();
    await db.schema.createIndex('settlement_txs_open').on('settlement_txs').columns(['network', 'status']).execute();
    await db.schema
      .createTable('settlement_payouts')
      .addColumn('payment_order_no', 'text', (c) => c.notNull().references('orders.payment_order_no'))
      .addColumn('idx', 'integer', (c) => c.notNull())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('address', 'text', (c) => c.notNull())
      .addColumn('amount', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('settlement_payouts_pk', ['payment_order_no', 'idx'])
      .execute();
    await db.schema
      .createTable('leases')
      .addColumn('name', 'text', (c) => c.primaryKey().notNull())
      .addColumn('owner', 'text')
      .addColumn('lease_until', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
  },
};

/**
 * Native-coin detection finds an address's payments through its order (deposit_addresses →
 * payments_order) instead: the index by address cost every transfer written an index entry.
 */
const paymentsByAddressDropped: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.dropIndex('payments_address').execute();
  },
};

/**
 * The hash of the last block a scan covered, as the endpoint that answered its logs saw it: the
 * next pass compares it with the chain's, and a block that changed under the cursor (a
 * reorganisation, or logs read from another fork) sends the scan back (ADR 0007).
 */
const cursorHash: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('chain_cursors').addColumn('scanned_hash', 'text').execute();
  },
};

/**
 * When (gateway clock, ms) the last scan pass that reached the chain's head started: the expiry
 * worker closes an order with deposit addresses on a scanned network only once a pass that
 * started at or after its deadline has caught up, so money mined before the deadline but not
 * scanned yet is never taken for money after closure (ADR 0007). Null: not caught up since the
 * cursor was (re)set.
 */
const cursorCaughtUp: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('chain_cursors').addColumn('caught_up_at', 'bigint').execute();
  },
};

/**
 * When a NEXT platform key became ACTIVE (ADR 0011): the key before it may still sign on other
 * instances for as long as they cache the signing key, so it retires only after that. Null for
 * keys created ACTIVE.
 */
const platformKeyActivatedAt: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('platform_keys').addColumn('activated_at', 'bigint').execute();
  },
};

/**
 * A native-coin receipt found by a balance read is keyed by a synthetic hash (`balance:…`); the
 * transaction that sent it, when one is known, is kept beside it to be shown as its `tx_hash`.
 */
const paymentChainTxHash: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('payments').addColumn('chain_tx_hash', 'text').execute();
  },
};

/**
 * The USD price of an order's pricing currency used at creation (PROTOCOL §14: the rates used for
 * an order are stored with it; each option already keeps its payment currency's). Null for the
 * orders created before.
 */
const orderPricingUsdRate: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('orders').addColumn('pricing_usd_rate', 'text').execute();
  },
};

/**
 * The transaction of a settlement that last reverted on chain (ADR 0009): the order goes alone
 * until it settles. Orders whose last error says so already (written before this column) keep it.
 */
const settlementRevertedTx: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('settlements').addColumn('reverted_tx', 'text').execute();
    await sql`update settlements set reverted_tx = substr(last_error, 24, 66) where status = 'DUE' and last_error like 'settlement transaction 0x% reverted%'`.execute(db);
  },
};

/**
 * The console's order lists (PROTOCOL §16) page a merchant's orders, and the orders of a status,
 * newest first: without these, every order of the merchant or status was read and sorted for
 * each page of 50.
 */
const consoleOrderLists: Migration = {
  async up(db: Kysely<unknown>) {
    // If not there already: an operator with a large table may build them first, without
    // blocking writes (PostgreSQL's CREATE INDEX CONCURRENTLY, README "Upgrading").
    await db.schema.createIndex('orders_merchant_recent').ifNotExists().on('orders').columns(['merchant_no', 'payment_order_no']).execute();
    await db.schema.createIndex('orders_status_recent').ifNotExists().on('orders').columns(['pay_status', 'payment_order_no']).execute();
  },
};

/**
 * 0012 marked only the DUE settlements whose last error says their transaction reverted. The
 * release before it kept that error on an order sent alone after its revert (SENT), which 0012
 * left unmarked: dropped or replaced, that order joined a batch again, and reverted again alone it
 * was not taken for the culprit. Orders written since 0012 are marked already (the column is set
 * with the error), so this marks exactly those 0012 missed.
 */
const settlementRevertedTxSent: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`update settlements set reverted_tx = substr(last_error, 24, 66) where status = 'SENT' and reverted_tx is null and last_error like 'settlement transaction 0x% reverted%'`.execute(db);
  },
};

export const MIGRATIONS: Record<string, Migration> = {
  '0001_init': init,
  '0002_notification_delivery': notificationDelivery,
  '0003_chain': depositAddresses,
  '0004_payments_by_address': paymentsByAddress,
  '0005_settlements': settlements,
  '0006_payments_by_address_dropped': paymentsByAddressDropped,
  '0007_chain_cursor_hash': cursorHash,
  '0008_chain_cursor_caught_up': cursorCaughtUp,
  '0009_platform_key_activated_at': platformKeyActivatedAt,
  '0010_payment_chain_tx_hash': paymentChainTxHash,
  '0011_order_pricing_usd_rate': orderPricingUsdRate,
  '0012_settlement_reverted_tx': settlementRevertedTx,
  '0013_console_order_lists': consoleOrderLists,
  '0014_settlement_reverted_tx_sent': settlementRevertedTxSent,
};

/**
 * Applies the pending migrations in one transaction on both databases (the SQLite dialect says its
 * DDL is transactional: database.ts): all of them with their records, or none. `name`: the
 * database as a refusal names it (never with its password). `migrations`: the gateway's (tests
 * pass others).
 */
export async function migrateToLatest(db: Kysely<unknown>, name = 'the database', migrations: Record<string, Migration> = MIGRATIONS): Promise<void> {
  // Unordered: the Migrator otherwise orders the applied migrations by the wall-clock time it
  // recorded for each and refuses ("corrupted migrations") when that is not the list's order, as
  // after an upgrade made while the clock was ahead, then set back before the next one: every
  // start failed. The pending ones are still applied in name order; an applied one this release
  // does not know is still refused (a downgrade, below).
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations }, allowUnorderedMigrations: true });
  let { error, results } = await migrator.migrateToLatest();
  // PostgreSQL cancelled the upgrade to break a deadlock with another session's transaction (an
  // instance of the old release serving during a rolling upgrade wrote a table the upgrade alters
  // next, then waited for one it holds). The upgrade was rolled back whole: it is applied again.
  for (let retry = 0; error && isDeadlock(error) && retry < DEADLOCK_RETRIES; retry++) ({ error, results } = await migrator.migrateToLatest());
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    if (!failed) {
      // A downgrade: the Migrator refuses a record of migrations it does not know before running
      // any ("corrupted migrations"). The database is fine; this release is too old for it.
      const unknown = await newerMigrations(db, migrations);
      if (unknown.length > 0) {
        const which = unknown.length === 1 ? `its migration ${unknown[0]} is` : `its migrations ${unknown.join(', ')} are`;
        throw new Error(`${name} was upgraded by a newer release of the gateway (${which} unknown to this one): start that release or a newer one, or restore the backup taken before the upgrade; nothing was changed`, { cause: error });
      }
      // No migration ran: the database could not be reached or read at all (down, refused, a wrong
      // host or password), which is what the operator needs to hear.
      throw new Error(`cannot use ${name}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    throw new Error(`database migration ${failed} failed: ${String(error)}`, { cause: error });
  }
}

/** How many times an upgrade cancelled by a deadlock is applied again. */
const DEADLOCK_RETRIES = 3;

const isDeadlock = (err: unknown): boolean => (err as { code?: unknown } | null)?.code === '40P01';

/** The migrations the database records as applied that `migrations` does not hold (none when it cannot be read). */
async function newerMigrations(db: Kysely<unknown>, migrations: Record<string, Migration>): Promise<string[]> {
  try {
    const rows = await (db as Kysely<{ kysely_migration: { name: string } }>).selectFrom('kysely_migration').select('name').orderBy('name').execute();
    return rows.map((r) => r.name).filter((n) => !Object.hasOwn(migrations, n));
  } catch {
    return [];
  }
}

/** Used by the tests to prove the schema is identical on both databases. */
export async function listTables(db: Kysely<unknown>): Promise<string[]> {
  const tables = await db.introspection.getTables();
  return tables.map((t) => t.name).filter((n) => !n.startsWith('kysely_')).sort();
}

export { sql };
