// The store conformance suite: every repository method of app/ports.ts, through the one Kysely
// adapter, on every database kind of this run (SQLite always, PostgreSQL when
// SPARKPAY_TEST_DATABASE_URL is set). Both databases must pass the same cases unchanged.
import { randomBytes } from 'node:crypto';
import type { Kysely, Migration } from 'kysely';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../src/adapters/db/database.js';
import { listTables, MIGRATIONS, migrateToLatest } from '../src/adapters/db/migrations.js';
import { compiledShapesOf, createStore } from '../src/adapters/db/store.js';
import {
  DuplicateRequestError,
  type ApplicationRecord,
  type MerchantRecord,
  type PlatformKeyRecord,
  type Store,
} from '../src/app/ports.js';
import { UNNAMED, type NotificationAttemptRecord, type NotificationRecord, type OrderRecord, type PaymentRecord, type SettlementTxRecord } from '../src/app/records.js';
import type { NetworkId } from '../src/domain/catalogue.js';
import { createTestDatabase, DATABASE_KINDS, PG_BASE_URL, type DatabaseKind, type TestDatabase } from './databases.js';

const WALLET = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
const SELLER = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC';
const OTHER = '0x90F79bf6EB2c4f870365E51cEf8bA6b2a2Aa3E6F';
const T0 = Date.UTC(2026, 10, 25, 12, 0, 0); // ms
const S0 = T0 / 1000; // s

const EXPECTED_TABLES = [
  'applications',
  'chain_cursors',
  'deposit_addresses',
  'leases',
  'merchant_networks',
  'merchants',
  'nonces',
  'notification_attempts',
  'notifications',
  'order_options',
  'orders',
  'payments',
  'platform_keys',
  'settlement_payouts',
  'settlement_txs',
  'settlements',
];

// ---- builders -------------------------------------------------------------------------------

const uid = () => randomBytes(5).toString('hex');
const digits = () => String(BigInt(`0x${randomBytes(6).toString('hex')}`)).padStart(15, '0');

function merchantRecord(over: Partial<MerchantRecord> = {}): MerchantRecord {
  return {
    merchantNo: `M${digits()}`,
    name: 'Café "Ümlaut" ✓',
    status: 'ACTIVE',
    onlinePayment: true,
    wallets: { '2': WALLET, '3': SELLER },
    caAddresses: { '2': OTHER },
    createdAt: T0,
    ...over,
  };
}

function applicationRecord(merchantNo: string, over: Partial<ApplicationRecord> = {}): ApplicationRecord {
  return {
    appId: digits(),
    merchantNo,
    merchantPublicKeyPem: `-----BEGIN PUBLIC KEY-----\n${uid()}\n-----END PUBLIC KEY-----\n`,
    status: 'ACTIVE',
    createdAt: T0,
    ...over,
  };
}

function platformKeyRecord(appId: string | null, over: Partial<PlatformKeyRecord> = {}): PlatformKeyRecord {
  return {
    serial: uid().toUpperCase(),
    appId,
    publicKeyPem: `-----BEGIN PUBLIC KEY-----\n${uid()}\n-----END PUBLIC KEY-----\n`,
    privateKeyEnc: `sealed:${uid()}`,
    status: 'ACTIVE',
    createdAt: T0,
    ...over,
  };
}

/** Every field set, amounts past 2^64, 18-decimal strings; `due` follows the selected option as the store derives it. */
function orderRecord(merchantNo: string, appId: string, over: Partial<OrderRecord> = {}): OrderRecord {
  const requestNo = `Req_${uid()}`;
  const o: OrderRecord = {
    paymentOrderNo: `P20261125120000${digits().slice(-10)}`,
    merchantNo,
    appId,
    edition: 'pro',
    requestNo,
    requestNoKey: requestNo.toLowerCase(),
    requestHash: randomBytes(32).toString('hex'),
    merchantOrderNo: 'shop-42',
    merchantOrderTime: S0 - 60,
    merchantOrderTimeout: S0 + 3600,
    merchantOrderDesc: 'Order "42" — café ✓ 🚀 \\ \n line two',
    goodsInfo: '{"sku":"A-1","qty":2}',
    merchantApplicationUserId: 'user-7',
    notifyUrl: 'https://shop.example/notify?x=1&y=2',
    redirectUrl: 'https://shop.example/done',
    businessInfo: 'opaque business info',
    extension: '{"k":"v"}',
    divideDetail: {
      seller_amount: '999999999999.999999999999999999',
      seller_addr: SELLER,
      merchant_amount: '0.000000000000000001',
      other_details: [{ receiver_addr: OTHER, amount: '1.5' }],
    },
    pricingCurrency: 'ETH',
    pricingAmount: 10n ** 30n, // 10^12 ETH at precision 18
    pricingAmountWire: '1000000000000.000000000000000000',
    pricingPrecision: 18,
    pricingUsdRate: '3000.123456789012345678901234567890123',
    orderTime: S0,
    state: {
      status: 'CLOSED',
      exception: 'UNDERPAID',
      closeReason: 'EXPIRED',
      expireTime: S0 + 3600,
      payTime: S0 + 10,
      completedTime: S0 + 20,
      closedTime: S0 + 3601,
      due: null,
      received: { seen: 10n ** 30n + 5n, final: 2n ** 64n + 1n },
    },
    selectedNetwork: '2',
    selectedCurrency: 'ETH',
    sequence: 3,
    cashierToken: 'A'.repeat(16) + uid(),
    watchUntil: S0 + 90_000,
    version: 4,
    createdAt: T0,
    updatedAt: T0 + 5,
    options: [
      {
        network: '2',
        currency: 'ETH',
        contract: null,
        decimals: 18,
        precision: 8,
        amount: 10n ** 20n + 7n,
        amountBase: 10n ** 30n + 123n,
        fee: 2n ** 70n,
        usdRate: '3000.123456789012345678',
        split: { seller: { address: SELLER, amount: 10n ** 29n }, merchant: 8n * 10n ** 29n + 123n, others: [{ address: OTHER, amount: 10n ** 29n }] },
      },
      {
        network: '2',
        currency: 'USDT',
        contract: '0xdac17f958d2ee523a2206206994597c13d831ec7',
        decimals: 6,
        precision: 6,
        amount: 10_500_000n,
        amountBase: 10_500_000n,
        fee: 52_500n,
        usdRate: null,
        split: null,
      },
      {
        network: '3',
        currency: 'USDT',
        contract: '0x55d398326f99059ff775485246999027b3197955',
        decimals: 18,
        precision: 6,
        amount: 10_500_000n,
        amountBase: 10_500_000_000_000_000_000n,
        fee: 0n,
        usdRate: '1',
        split: { seller: null, merchant: 10_500_000_000_000_000_000n, others: [] },
      },
    ],
    ...over,
  };
  return withDerivedDue(o);
}

/** The store derives `state.due` from the selected option; records built here agree with it. */
function withDerivedDue(o: OrderRecord): OrderRecord {
  const selected = o.options.find((x) => x.network === o.selectedNetwork && x.currency === o.selectedCurrency);
  return { ...o, state: { ...o.state, due: selected ? selected.amountBase : null } };
}

/** The smallest order: every nullable field null, nothing selected, no options. */
function bareOrder(merchantNo: string, appId: string, over: Partial<OrderRecord> = {}): OrderRecord {
  return orderRecord(merchantNo, appId, {
    edition: 'standard',
    merchantOrderNo: null,
    merchantOrderDesc: null,
    goodsInfo: null,
    merchantApplicationUserId: null,
    notifyUrl: null,
    redirectUrl: null,
    businessInfo: null,
    extension: null,
    divideDetail: null,
    pricingCurrency: 'USDT',
    pricingAmount: 1n,
    pricingAmountWire: '0.000001',
    pricingPrecision: 6,
    pricingUsdRate: null,
    state: { status: 'PENDING', exception: null, closeReason: null, expireTime: S0 + 1800, payTime: 0, completedTime: 0, closedTime: 0, due: null, received: { seen: 0n, final: 0n } },
    selectedNetwork: null,
    selectedCurrency: null,
    sequence: 0,
    watchUntil: 0,
    version: 0,
    options: [],
    ...over,
  });
}

function paymentRecord(paymentOrderNo: string, over: Partial<PaymentRecord> = {}): PaymentRecord {
  return {
    paymentOrderNo,
    network: '3',
    currency: 'USDT',
    txHash: `0x${randomBytes(32).toString('hex')}`,
    logIndex: 0,
    blockNumber: 40_000_000,
    blockHash: `0x${randomBytes(32).toString('hex')}`,
    address: WALLET,
    amount: 10n ** 30n + 1n,
    confirmations: 1,
    status: 'SEEN',
    chainTxHash: null,
    createdAt: T0 + 1000,
    updatedAt: T0 + 1000,
    ...over,
  };
}

function notificationRecord(paymentOrderNo: string, sequence: number, over: Partial<NotificationRecord> = {}): NotificationRecord {
  return {
    notifyId: `N${randomBytes(12).toString('hex')}`,
    paymentOrderNo,
    notifyType: 'ORDER_PAID',
    sequence,
    payload: JSON.stringify({ sequence, amount: '1000000000000000000000000000000', note: 'ü ✓' }),
    status: 'PENDING',
    attempts: 0,
    nextAttemptAt: T0 + sequence,
    createdAt: T0 + sequence,
    series: 1,
    attemptNo: 0,
    notifyTime: null,
    leaseOwner: null,
    deliveredAt: null,
    destination: 'merchant.example:8443',
    ...over,
  };
}

// ---- helpers --------------------------------------------------------------------------------

interface Fresh {
  tdb: TestDatabase;
  db: Db;
  store: Store;
  close(): Promise<void>;
}

async function freshStore(kind: DatabaseKind): Promise<Fresh> {
  const tdb = await createTestDatabase(kind);
  const db = await openDatabase({ url: tdb.url, poolSize: 4 });
  return {
    tdb,
    db,
    store: createStore(db),
    async close() {
      await db.close();
      await tdb.drop();
    },
  };
}

async function seedMerchant(store: Store): Promise<{ merchantNo: string; appId: string }> {
  const m = merchantRecord();
  await store.merchants.insert(m);
  const a = applicationRecord(m.merchantNo);
  await store.applications.insert(a);
  return { merchantNo: m.merchantNo, appId: a.appId };
}

async function countRows(db: Db, table: 'orders' | 'order_options' | 'payments' | 'merchant_networks', column: string, value: string): Promise<number> {
  const k = db.kysely as unknown as Kysely<Record<string, Record<string, string>>>;
  const r = await k.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).where(column, '=', value).executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Table → columns (name, nullability) in declaration order: what must match across databases. */
async function schemaShape(db: Db) {
  const tables = await db.kysely.introspection.getTables();
  return Object.fromEntries(
    tables
      .filter((t) => !t.name.startsWith('kysely_'))
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((t) => [t.name, t.columns.map((c) => `${c.name}${c.isNullable ? '?' : ''}`)]),
  );
}

// ---- the suite ------------------------------------------------------------------------------

describe.each(DATABASE_KINDS)('store conformance on %s', (kind) => {
  let shared: Fresh;
  let store: Store;
  beforeAll(async () => {
    shared = await freshStore(kind);
    store = shared.store;
  });
  afterAll(async () => {
    await shared?.close();
  });

  describe('migrations', () => {
    it('creates exactly the gateway tables, and migrating again changes nothing', async () => {
      const f = await freshStore(kind);
      try {
        expect(await listTables(f.db.kysely as Kysely<unknown>)).toEqual(EXPECTED_TABLES);
        const shape = await schemaShape(f.db);
        const m = merchantRecord();
        await f.store.merchants.insert(m);

        await migrateToLatest(f.db.kysely as Kysely<unknown>);
        const reopened = await openDatabase({ url: f.tdb.url, poolSize: 2 });
        try {
          expect(await listTables(reopened.kysely as Kysely<unknown>)).toEqual(EXPECTED_TABLES);
          expect(await schemaShape(reopened)).toEqual(shape);
          expect(await createStore(reopened).merchants.get(m.merchantNo)).toEqual(m);
        } finally {
          await reopened.close();
        }
        const applied = await (f.db.kysely as unknown as Kysely<{ kysely_migration: { name: string } }>)
          .selectFrom('kysely_migration')
          .select('name')
          .execute();
        expect(applied.map((r) => r.name)).toEqual(['0001_init', '0002_notification_delivery', '0003_chain', '0004_payments_by_address', '0005_settlements', '0006_payments_by_address_dropped', '0007_chain_cursor_hash', '0008_chain_cursor_caught_up', '0009_platform_key_activated_at', '0010_payment_chain_tx_hash', '0011_order_pricing_usd_rate', '0012_settlement_reverted_tx', '0013_console_order_lists', '0014_settlement_reverted_tx_sent']);
      } finally {
        await f.close();
      }
    });

    it('applies an upgrade whole or not at all: a migration failing half-way leaves no table of the upgrade and no record, and the next start applies it', async () => {
      const tdb = await createTestDatabase(kind);
      const db = await openDatabase({ url: tdb.url, poolSize: 2, migrate: false });
      try {
        const k = db.kysely as Kysely<unknown>;
        const [first, second] = Object.keys(MIGRATIONS);
        // Two real migrations, then one that creates a table and fails, as a process killed
        // between two statements would leave it.
        const halfWay: Migration = {
          async up(d) {
            await d.schema.createTable('upgrade_half_way').addColumn('id', 'integer').execute();
            throw new Error('killed half-way');
          },
        };
        const failing = { [first!]: MIGRATIONS[first!]!, [second!]: MIGRATIONS[second!]!, '0003_half_way': halfWay };
        await expect(migrateToLatest(k, 'the test database', failing)).rejects.toThrow(/database migration 0003_half_way failed: Error: killed half-way/);
        expect(await listTables(k)).toEqual([]);
        const records = k as unknown as Kysely<{ kysely_migration: { name: string } }>;
        expect(await records.selectFrom('kysely_migration').select('name').execute()).toEqual([]);
        // The fixed release starts on the same database.
        await migrateToLatest(k);
        expect(await listTables(k)).toEqual(EXPECTED_TABLES);
        expect((await records.selectFrom('kysely_migration').select('name').execute()).map((r) => r.name)).toEqual(Object.keys(MIGRATIONS));
      } finally {
        await db.close();
        await tdb.drop();
      }
    });

    // The Migrator orders the applied migrations by the time it recorded for each, then checks
    // they are the first ones of the list: an upgrade made while the clock was ahead (then set
    // back, before the next upgrade) made every later start fail on "corrupted migrations".
    it('applies an upgrade, and starts after it, when the upgrade before was recorded by a clock that was ahead', async () => {
      const tdb = await createTestDatabase(kind);
      const db = await openDatabase({ url: tdb.url, poolSize: 2, migrate: false });
      try {
        const k = db.kysely as Kysely<unknown>;
        const names = Object.keys(MIGRATIONS);
        await migrateToLatest(k, 'the test database', Object.fromEntries(names.slice(0, 5).map((n) => [n, MIGRATIONS[n]!])));
        const records = k as unknown as Kysely<{ kysely_migration: { name: string; timestamp: string } }>;
        await records.updateTable('kysely_migration').set({ timestamp: new Date(Date.now() + 86_400_000).toISOString() }).execute();
        await migrateToLatest(k);
        // And every start after it.
        await migrateToLatest(k);
        expect((await records.selectFrom('kysely_migration').select('name').orderBy('name').execute()).map((r) => r.name)).toEqual(names);
        expect(await listTables(k)).toEqual(EXPECTED_TABLES);
      } finally {
        await db.close();
        await tdb.drop();
      }
    });

    // A downgrade: an older release started on a database a newer one upgraded.
    it('refuses a database a newer release upgraded, saying so and changing nothing', async () => {
      const tdb = await createTestDatabase(kind);
      const newer = await openDatabase({ url: tdb.url, poolSize: 2, migrate: false });
      try {
        const future: Migration = { up: async (d) => void (await d.schema.alterTable('merchants').addColumn('future', 'text').execute()) };
        await migrateToLatest(newer.kysely as Kysely<unknown>, 'the test database', { ...MIGRATIONS, '0099_from_a_newer_release': future });
        const m = merchantRecord();
        await createStore(newer).merchants.insert(m);

        const err = await openDatabase({ url: tdb.url, poolSize: 2 }).then(
          () => new Error('opened'),
          (e: unknown) => e as Error,
        );
        const name = kind === 'sqlite' ? `sqlite:${tdb.url}` : `postgres:${new URL(tdb.url).host}${new URL(tdb.url).pathname}`;
        expect(err.message).toBe(
          `the database ${name} was upgraded by a newer release of the gateway (its migration 0099_from_a_newer_release is unknown to this one): start that release or a newer one, or restore the backup taken before the upgrade; nothing was changed`,
        );
        const records = newer.kysely as unknown as Kysely<{ kysely_migration: { name: string } }>;
        expect((await records.selectFrom('kysely_migration').select('name').execute()).map((r) => r.name)).toEqual([...Object.keys(MIGRATIONS), '0099_from_a_newer_release']);
        expect(await createStore(newer).merchants.get(m.merchantNo)).toEqual(m);
      } finally {
        await newer.close();
        await tdb.drop();
      }
    });
  });

  describe('merchants', () => {
    it('inserts and reads back a merchant with its wallets and CA addresses per network', async () => {
      const m = merchantRecord({ status: 'INACTIVE', onlinePayment: false, wallets: { '2': WALLET, '5': SELLER }, caAddresses: { '2': OTHER, '4': SELLER } });
      await store.merchants.insert(m);
      expect(await store.merchants.get(m.merchantNo)).toEqual(m);
      expect(await store.merchants.get(`M${digits()}`)).toBeNull();
    });

    it('updates status, the online-payment switch and upserts wallets and CA addresses per network', async () => {
      const m = merchantRecord({ wallets: { '2': WALLET }, caAddresses: { '3': OTHER } });
      await store.merchants.insert(m);

      expect(await store.merchants.update(m.merchantNo, { status: 'INACTIVE', onlinePayment: false }, T0 + 1)).toBe(true);
      expect(await store.merchants.get(m.merchantNo)).toEqual({ ...m, status: 'INACTIVE', onlinePayment: false });

      // A wallet on a network that has only a CA address keeps the CA; a CA next to a wallet
      // keeps the wallet; a replaced wallet is replaced; a new network gets a row.
      const patch = { wallets: { '3': SELLER, '2': OTHER, '4': WALLET }, caAddresses: { '2': SELLER } } as const;
      expect(await store.merchants.update(m.merchantNo, patch, T0 + 2)).toBe(true);
      expect(await store.merchants.get(m.merchantNo)).toEqual({
        ...m,
        status: 'INACTIVE',
        onlinePayment: false,
        wallets: { '2': OTHER, '3': SELLER, '4': WALLET },
        caAddresses: { '2': SELLER, '3': OTHER },
      });

      expect(await store.merchants.update(m.merchantNo, { status: 'ACTIVE' }, T0 + 3)).toBe(true);
      expect((await store.merchants.get(m.merchantNo))?.status).toBe('ACTIVE');
      expect((await store.merchants.get(m.merchantNo))?.wallets).toEqual({ '2': OTHER, '3': SELLER, '4': WALLET });
      expect(await store.merchants.update(m.merchantNo, {}, T0 + 4)).toBe(true);
      // A key present with an undefined address is no change (the patch type allows it).
      expect(await store.merchants.update(m.merchantNo, { wallets: { '2': undefined }, caAddresses: { '5': undefined } }, T0 + 5)).toBe(true);
      expect(await store.merchants.get(m.merchantNo)).toEqual({
        ...m,
        onlinePayment: false,
        wallets: { '2': OTHER, '3': SELLER, '4': WALLET },
        caAddresses: { '2': SELLER, '3': OTHER },
      });
    });

    it('answers false when updating an unknown merchant and writes nothing', async () => {
      const merchantNo = `M${digits()}`;
      expect(await store.merchants.update(merchantNo, { status: 'INACTIVE', wallets: { '2': WALLET }, caAddresses: { '3': OTHER } }, T0)).toBe(false);
      expect(await store.merchants.get(merchantNo)).toBeNull();
      expect(await countRows(shared.db, 'merchant_networks', 'merchant_no', merchantNo)).toBe(0);
    });
  });

  describe('applications', () => {
    it('inserts, reads back and lists a merchant’s applications oldest first', async () => {
      const m = merchantRecord();
      const other = merchantRecord();
      await store.merchants.insert(m);
      await store.merchants.insert(other);
      const newer = applicationRecord(m.merchantNo, { createdAt: T0 + 20, status: 'DISABLED' });
      const older = applicationRecord(m.merchantNo, { createdAt: T0 + 10 });
      const foreign = applicationRecord(other.merchantNo);
      for (const a of [newer, older, foreign]) await store.applications.insert(a);

      expect(await store.applications.get(newer.appId)).toEqual(newer);
      expect(await store.applications.get(digits())).toBeNull();
      expect(await store.applications.listByMerchant(m.merchantNo)).toEqual([older, newer]);
      expect(await store.applications.listByMerchant(other.merchantNo)).toEqual([foreign]);
      expect(await store.applications.listByMerchant(`M${digits()}`)).toEqual([]);
    });

    it('lists applications made in the same millisecond in one order on every database (by AppID)', async () => {
      const m = merchantRecord();
      await store.merchants.insert(m);
      const twins = [applicationRecord(m.merchantNo, { createdAt: T0 + 30 }), applicationRecord(m.merchantNo, { createdAt: T0 + 30 }), applicationRecord(m.merchantNo, { createdAt: T0 + 30 })];
      for (const a of twins) await store.applications.insert(a);
      expect((await store.applications.listByMerchant(m.merchantNo)).map((a) => a.appId)).toEqual(twins.map((a) => a.appId).sort());
    });

    it('replaces an application\'s merchant public key, and answers false for an unknown application', async () => {
      const m = merchantRecord();
      await store.merchants.insert(m);
      const app = applicationRecord(m.merchantNo);
      const other = applicationRecord(m.merchantNo);
      await store.applications.insert(app);
      await store.applications.insert(other);
      expect(await store.applications.setMerchantKey(app.appId, 'NEW PEM', T0 + 50)).toBe(true);
      expect(await store.applications.get(app.appId)).toEqual({ ...app, merchantPublicKeyPem: 'NEW PEM' });
      expect(await store.applications.get(other.appId)).toEqual(other);
      expect(await store.applications.setMerchantKey(digits(), 'NEW PEM', T0 + 50)).toBe(false);
    });

    it('disables and enables an application, saying whether the status changed; false for an unknown application', async () => {
      const m = merchantRecord();
      await store.merchants.insert(m);
      const app = applicationRecord(m.merchantNo);
      const other = applicationRecord(m.merchantNo);
      await store.applications.insert(app);
      await store.applications.insert(other);
      expect(await store.applications.setStatus(app.appId, 'DISABLED', T0 + 50)).toBe(true);
      expect(await store.applications.get(app.appId)).toEqual({ ...app, status: 'DISABLED' });
      // Already disabled: nothing changes, and the answer says so.
      expect(await store.applications.setStatus(app.appId, 'DISABLED', T0 + 60)).toBe(false);
      expect(await store.applications.get(app.appId)).toEqual({ ...app, status: 'DISABLED' });
      expect(await store.applications.get(other.appId)).toEqual(other);
      expect(await store.applications.setStatus(app.appId, 'ACTIVE', T0 + 70)).toBe(true);
      expect(await store.applications.get(app.appId)).toEqual(app);
      expect(await store.applications.setStatus(app.appId, 'ACTIVE', T0 + 80)).toBe(false);
      expect(await store.applications.setStatus(digits(), 'DISABLED', T0 + 50)).toBe(false);
      // In a transaction too (the use case reads the status it set there).
      expect(await store.transaction((tx) => tx.applications.setStatus(other.appId, 'DISABLED', T0 + 90))).toBe(true);
      expect(await store.applications.listByMerchant(m.merchantNo)).toEqual(expect.arrayContaining([app, { ...other, status: 'DISABLED' }]));
    });
  });

  describe('platform keys', () => {
    it('picks the newest ACTIVE key per application, null being the platform default key', async () => {
      // Default keys are global: a database of its own keeps the case independent.
      const f = await freshStore(kind);
      try {
        const s = f.store;
        const { appId } = await seedMerchant(s);
        const { appId: otherApp } = await seedMerchant(s);
        const def1 = platformKeyRecord(null, { createdAt: T0 + 1 });
        const def2 = platformKeyRecord(null, { createdAt: T0 + 2 });
        const defRetired = platformKeyRecord(null, { createdAt: T0 + 3, status: 'RETIRED' });
        const app1 = platformKeyRecord(appId, { createdAt: T0 + 1 });
        const app2 = platformKeyRecord(appId, { createdAt: T0 + 5 });
        const appRetired = platformKeyRecord(appId, { createdAt: T0 + 9, status: 'RETIRED' });
        const otherKey = platformKeyRecord(otherApp, { createdAt: T0 + 100 });

        expect(await s.platformKeys.activeFor(null)).toBeNull();
        for (const k of [def2, app2, appRetired, def1, defRetired, app1, otherKey]) await s.platformKeys.insert(k);

        expect(await s.platformKeys.activeFor(null)).toEqual(def2);
        expect(await s.platformKeys.activeFor(appId)).toEqual(app2);
        expect(await s.platformKeys.activeFor(otherApp)).toEqual(otherKey);
        expect(await s.platformKeys.activeFor(digits())).toBeNull();

        expect(await s.platformKeys.get(appRetired.serial)).toEqual(appRetired);
        expect(await s.platformKeys.get('NO-SUCH-SERIAL')).toBeNull();

        expect(await s.platformKeys.list(null)).toEqual([def1, def2, defRetired]);
        expect(await s.platformKeys.list(appId)).toEqual([app1, app2, appRetired]);
        expect(await s.platformKeys.list(digits())).toEqual([]);

        // A NEXT key is listed but never signs until it is moved to ACTIVE (compare-and-set).
        const next = platformKeyRecord(appId, { createdAt: T0 + 20, status: 'NEXT' });
        await s.platformKeys.insert(next);
        expect(await s.platformKeys.get(next.serial)).toEqual(next);
        expect(await s.platformKeys.activeFor(appId)).toEqual(app2);
        expect(await s.platformKeys.list(appId)).toEqual([app1, app2, appRetired, next]);
        expect(await s.platformKeys.setStatus(next.serial, 'ACTIVE', 'RETIRED', T0 + 30)).toBe(false);
        expect(await s.platformKeys.setStatus(next.serial, 'NEXT', 'ACTIVE', T0 + 31)).toBe(true);
        expect(await s.platformKeys.setStatus(next.serial, 'NEXT', 'ACTIVE', T0 + 32)).toBe(false);
        expect(await s.platformKeys.activeFor(appId)).toEqual({ ...next, status: 'ACTIVE', activatedAt: T0 + 31 });
        expect(await s.platformKeys.setStatus(app2.serial, 'ACTIVE', 'RETIRED', T0 + 33)).toBe(true);
        expect((await s.platformKeys.get(app2.serial))!.status).toBe('RETIRED');
        expect(await s.platformKeys.activeFor(otherApp)).toEqual(otherKey);
        expect(await s.platformKeys.setStatus('NO-SUCH-SERIAL', 'ACTIVE', 'RETIRED', T0 + 34)).toBe(false);
      } finally {
        await f.close();
      }
    });
  });

  describe('orders', () => {
    it('round-trips every field exactly: bigints past 2^64, 18-decimal strings, JSON divide_detail', async () => {
      const { merchantNo, appId } = await seedMerchant(store);
      const o = orderRecord(merchantNo, appId);
      expect(o.state.due).toBe(10n ** 30n + 123n);
      await store.orders.insert(o);
      expect(await store.orders.get(o.paymentOrderNo)).toEqual(o);
      expect(await store.orders.findByRequest(merchantNo, o.requestNoKey)).toEqual(o);
    });

    it('round-trips an order whose optional fields are all null and that has no options', async () => {
      const { merchantNo, appId } = await seedMerchant(store);
      const o = bareOrder(merchantNo, appId);
      await store.orders.insert(o);
      expect(await store.orders.get(o.paymentOrderNo)).toEqual(o);
      expect(await store.orders.get('P00000000000000000000000000')).toBeNull();
    });

    it('finds an order by (merchant_no, request_no_key) only', async () => {
      const a = await seedMerchant(store);
      const b = await seedMerchant(store);
      const o = bareOrder(a.merchantNo, a.appId);
      await store.orders.insert(o);
      expect((await store.orders.findByRequest(a.merchantNo, o.requestNoKey))?.paymentOrderNo).toBe(o.paymentOrderNo);
      expect(await store.orders.findByRequest(b.merchantNo, o.requestNoKey)).toBeNull();
      expect(await store.orders.findByRequest(a.merchantNo, `${o.requestNoKey}x`)).toBeNull();
      // The key is what the caller normalised; the store compares it exactly.
      expect(await store.orders.findByRequest(a.merchantNo, o.requestNo)).toBeNull();
    });

    it('refuses a duplicate (merchant_no, request_no_key) with DuplicateRequestError and stores nothing of it', async () => {
      const a = await seedMerchant(store);
      const b = await seedMerchant(store);
      const first = orderRecord(a.merchantNo, a.appId);
      await store.orders.insert(first);
      const dup = orderRecord(a.merchantNo, a.appId, { requestNo: first.requestNo.toUpperCase(), requestNoKey: first.requestNoKey });

      await expect(store.orders.insert(dup)).rejects.toBeInstanceOf(DuplicateRequestError);
      await expect(store.transaction((tx) => tx.orders.insert(dup))).rejects.toBeInstanceOf(DuplicateRequestError);
      expect(await store.orders.get(dup.paymentOrderNo)).toBeNull();
      expect(await countRows(shared.db, 'orders', 'payment_order_no', dup.paymentOrderNo)).toBe(0);
      expect(await countRows(shared.db, 'order_options', 'payment_order_no', dup.paymentOrderNo)).toBe(0);
      expect(await store.orders.findByRequest(a.merchantNo, first.requestNoKey)).toEqual(first);

      // The same request_no of another merchant is another order.
      const elsewhere = orderRecord(b.merchantNo, b.appId, { requestNo: first.requestNo, requestNoKey: first.requestNoKey });
      await store.orders.insert(elsewhere);
      expect(await store.orders.get(elsewhere.paymentOrderNo)).toEqual(elsewhere);
    });

    it('lets exactly one of several concurrent duplicate inserts win', async () => {
      const { merchantNo, appId } = await seedMerchant(store);
      const template = orderRecord(merchantNo, appId);
      const racers = Array.from({ length: 6 }, () => ({ ...template, paymentOrderNo: orderRecord(merchantNo, appId).paymentOrderNo }));
      const results = await Promise.allSettled(racers.map((o) => store.transaction((tx) => tx.orders.insert(o))));
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      for (const r of lost) expect(r.reason).toBeInstanceOf(DuplicateRequestError);
      const stored = await store.orders.findByRequest(merchantNo, template.requestNoKey);
      expect(stored).not.toBeNull();
      for (const o of racers) {
        const expected = o.paymentOrderNo === stored!.paymentOrderNo ? template.options.length : 0;
        expect(await countRows(shared.db, 'order_options', 'payment_order_no', o.paymentOrderNo)).toBe(expected);
      }
    });

    it('saves the state only against the expected version; a stale version writes nothing', async () => {
      const { merchantNo, appId } = await seedMerchant(store);
      const o = bareOrder(merchantNo, appId, {
        options: orderRecord(merchantNo, appId).options,
      });
      await store.orders.insert(o);

      const paying = withDerivedDue({
        ...o,
        state: { ...o.state, status: 'PAYING', exception: 'UNDERPAID', received: { seen: 10n ** 30n, final: 2n ** 65n } },
        selectedNetwork: '2',
        selectedCurrency: 'ETH',
        sequence: 1,
        watchUntil: S0 + 100,
        version: 1,
        updatedAt: T0 + 50,
      });
      expect(await store.orders.saveState(paying, 0)).toBe(true);
      const saved = await store.orders.get(o.paymentOrderNo);
      expect(saved).toEqual(paying);
      expect(saved?.state.due).toBe(10n ** 30n + 123n);

      // Someone else saved version 1 first: this writer still expects version 0.
      const stale = { ...paying, state: { ...paying.state, status: 'CLOSED' as const, closeReason: 'EXPIRED' as const, closedTime: S0 + 9 }, version: 2, updatedAt: T0 + 99 };
      expect(await store.orders.saveState(stale, 0)).toBe(false);
      expect(await store.orders.get(o.paymentOrderNo)).toEqual(paying);

      const closed = { ...stale, version: 2 };
      expect(await store.orders.saveState(closed, 1)).toBe(true);
      expect(await store.orders.get(o.paymentOrderNo)).toEqual(closed);
      expect(await store.orders.saveState({ ...closed, paymentOrderNo: 'P00000000000000000000000000' }, 2)).toBe(false);
    });

    it('lists overdue orders of one status by deadline, oldest first, limited', async () => {
      // listOverdue looks at every order: a database of its own keeps the case independent.
      const f = await freshStore(kind);
      try {
        const s = f.store;
        const { merchantNo, appId } = await seedMerchant(s);
        const at = (status: OrderRecord['state']['status'], expireTime: number) => {
          const o = bareOrder(merchantNo, appId);
          return { ...o, state: { ...o.state, status, expireTime } };
        };
        const p300 = at('PENDING', S0 + 300);
        const p100 = at('PENDING', S0 + 100);
        const p200 = at('PENDING', S0 + 200);
        const p301 = at('PENDING', S0 + 301);
        const paying150 = at('PAYING', S0 + 150);
        const paying400 = at('PAYING', S0 + 400);
        const closed50 = at('CLOSED', S0 + 50);
        const paid60 = at('PAID', S0 + 60);
        for (const o of [p300, p100, p200, p301, paying150, paying400, closed50, paid60]) await s.orders.insert(o);

        expect(await s.orders.listOverdue('PENDING', S0 + 300, 10, [])).toEqual([p100, p200, p300].map((o) => o.paymentOrderNo));
        expect(await s.orders.listOverdue('PENDING', S0 + 300, 2, [])).toEqual([p100, p200].map((o) => o.paymentOrderNo));
        expect(await s.orders.listOverdue('PENDING', S0 + 99, 10, [])).toEqual([]);
        expect(await s.orders.listOverdue('PAYING', S0 + 300, 10, [])).toEqual([paying150.paymentOrderNo]);
        expect(await s.orders.listOverdue('PAYING', S0 + 1000, 10, [])).toEqual([paying150, paying400].map((o) => o.paymentOrderNo));
      } finally {
        await f.close();
      }
    });

    it('lists an overdue order with a deposit address on a scanned network only once a scan pass started at or after its deadline caught up', async () => {
      const f = await freshStore(kind);
      try {
        const s = f.store;
        const { merchantNo, appId } = await seedMerchant(s);
        const at = (expireTime: number, ...networks: NetworkId[]) => {
          const o = bareOrder(merchantNo, appId);
          return { order: { ...o, state: { ...o.state, expireTime } }, networks };
        };
        const none = at(S0 + 10);
        const on4 = at(S0 + 100, '4');
        const on4late = at(S0 + 200, '4');
        const on2 = at(S0 + 110, '2');
        const on2and4 = at(S0 + 120, '2', '4');
        for (const { order, networks } of [none, on4, on4late, on2, on2and4]) {
          await s.orders.insert(order);
          for (const network of networks) {
            const address = `0x${randomBytes(20).toString('hex')}`;
            await s.depositAddresses.insertOrGet({ paymentOrderNo: order.paymentOrderNo, network, currency: 'USDT', address, token: null, amountBase: 1n, plan: '{}', createdAt: S0 * 1000 });
          }
        }
        const overdue = async (scanned: string[]) => s.orders.listOverdue('PENDING', S0 + 1000, 10, scanned);
        const nos = (...xs: (typeof none)[]) => xs.map((x) => x.order.paymentOrderNo);
        // Nothing scanned by this gateway: the deadline alone decides.
        expect(await overdue([])).toEqual(nos(none, on4, on2, on2and4, on4late));
        // Network 4 scanned, but no pass has caught up yet: its orders wait; network 2 is not scanned.
        expect(await overdue(['4'])).toEqual(nos(none, on2));
        // A pass that started before a deadline covers nothing after it.
        expect(await s.chainCursors.lease('4', 'me', S0 * 1000, S0 * 1000 + 30_000)).not.toBeNull();
        expect(await s.chainCursors.advance('4', 'me', 10, null, (S0 + 99) * 1000)).toBe(true);
        expect(await overdue(['4'])).toEqual(nos(none, on2));
        // Caught up at the deadline second: money mined before it has been seen.
        expect(await s.chainCursors.caughtUp('4', 'me', (S0 + 120) * 1000)).toBe(true);
        expect(await overdue(['4'])).toEqual(nos(none, on4, on2, on2and4));
        // Both networks scanned: network 2 has no cursor yet, so its orders wait.
        expect(await overdue(['2', '4'])).toEqual(nos(none, on4));
        // A cursor that moves without catching up keeps the time of the last pass that did.
        expect(await s.chainCursors.advance('4', 'me', 20, null, null)).toBe(true);
        expect(await overdue(['4'])).toEqual(nos(none, on4, on2, on2and4));
        // Another instance's lease: its record is refused.
        expect(await s.chainCursors.caughtUp('4', 'other', (S0 + 500) * 1000)).toBe(false);
        expect(await overdue(['4'])).not.toContain(on4late.order.paymentOrderNo);
        // A rewind (a counted transfer left the chain) by the holder sends the cursor back and
        // forgets its hash and caught-up time: the orders wait again; never forward, never by another.
        expect(await s.chainCursors.advance('4', 'me', 30, `0x${'cd'.repeat(32)}`, (S0 + 120) * 1000)).toBe(true);
        expect(await s.chainCursors.rewind('4', 'other', 5)).toBe(false);
        expect(await s.chainCursors.rewind('4', 'me', 31)).toBe(false);
        expect(await s.chainCursors.rewind('4', 'me', 25)).toBe(true);
        expect(await s.chainCursors.lease('4', 'me', S0 * 1000, S0 * 1000 + 30_000)).toMatchObject({ nextBlock: 25, scannedHash: null });
        expect((await s.chainCursors.caughtUpTimes(['4'])).get('4')).toBeNull();
        expect(await overdue(['4'])).toEqual(nos(none, on2));
        // A renewal extends only a lease held without a break.
        const t0 = S0 * 1000;
        expect(await s.chainCursors.renew('4', 'me', t0 + 10_000, t0 + 40_000)).toBe(true);
        expect(await s.chainCursors.renew('4', 'other', t0 + 10_000, t0 + 40_000)).toBe(false);
        expect(await s.chainCursors.renew('4', 'me', t0 + 40_001, t0 + 70_000)).toBe(false);
        // Ran out, taken by another instance and given back: still no renewal (lease() takes it afresh).
        expect(await s.chainCursors.lease('4', 'other', t0 + 40_002, t0 + 70_000)).not.toBeNull();
        expect(await s.chainCursors.release('4', 'me', t0 + 40_003)).toBe(false);
        expect(await s.chainCursors.release('4', 'other', t0 + 40_003)).toBe(true);
        expect(await s.chainCursors.renew('4', 'me', t0 + 40_004, t0 + 70_000)).toBe(false);
        expect(await s.chainCursors.lease('4', 'me', t0 + 40_004, t0 + 70_000)).not.toBeNull();
        expect(await s.chainCursors.renew('4', 'me', t0 + 40_005, t0 + 70_005)).toBe(true);
      } finally {
        await f.close();
      }
    });
  });

  describe('deposit addresses', () => {
    it('finds the watched ones among given addresses exactly as listWatched lists them, in chunks, on that network only', async () => {
      const f = await freshStore(kind);
      try {
        const s = f.store;
        const { merchantNo, appId } = await seedMerchant(s);
        const now = S0 + 5000;
        const closed = (watchUntil: number) => {
          const o = bareOrder(merchantNo, appId, { watchUntil });
          return { ...o, state: { ...o.state, status: 'CLOSED' as const, closeReason: 'EXPIRED' as const, closedTime: S0 } };
        };
        const open = bareOrder(merchantNo, appId);
        const watching = closed(now);
        const past = closed(now - 1);
        const address = () => `0x${randomBytes(20).toString('hex')}`;
        const at: Record<string, string> = {};
        for (const [name, order, network, currency, token] of [
          ['open', open, '4', 'USDT', '0xc2132d05d31c914a87c6611c10748aeb04b58e8f'],
          ['openNative', open, '4', 'POL', null],
          ['watching', watching, '4', 'USDT', '0xc2132d05d31c914a87c6611c10748aeb04b58e8f'],
          ['past', past, '4', 'USDT', '0xc2132d05d31c914a87c6611c10748aeb04b58e8f'],
          ['elsewhere', open, '2', 'USDT', '0xdac17f958d2ee523a2206206994597c13d831ec7'],
        ] as const) {
          if (!(await s.orders.get(order.paymentOrderNo))) await s.orders.insert(order);
          at[name] = address();
          await s.depositAddresses.insertOrGet({ paymentOrderNo: order.paymentOrderNo, network, currency, address: at[name]!, token, amountBase: 7n, plan: '{"big":true}', createdAt: S0 * 1000 });
        }
        const strangers = Array.from({ length: 1200 }, address);
        // Asked in any order, with addresses nobody holds around them (more than one chunk).
        const asked = [...strangers.slice(0, 700), at.past!, at.elsewhere!, at.watching!, ...strangers.slice(700), at.open!, at.openNative!];
        const found = await s.depositAddresses.watchedAmong('4', now, asked);
        const listed = await s.depositAddresses.listWatched('4', now);
        const key = (d: { address: string }) => d.address;
        expect(found.map(key).sort()).toEqual([at.open!, at.openNative!, at.watching!].sort());
        expect([...found].sort((a, b) => key(a).localeCompare(key(b)))).toEqual([...listed].sort((a, b) => key(a).localeCompare(key(b))));
        expect(found.every((d) => d.plan === '')).toBe(true);
        expect(await s.depositAddresses.watchedAmong('4', now, [])).toEqual([]);
        // A second later the order closed at `now`'s watch period is no longer watched.
        expect((await s.depositAddresses.watchedAmong('4', now + 1, asked)).map(key).sort()).toEqual([at.open!, at.openNative!].sort());
      } finally {
        await f.close();
      }
    });
  });

  describe('compiled statements', () => {
    it('compiles each statement of the background passes once, and answers the same from the compiled SQL as from a fresh compile', async () => {
      const f = await freshStore(kind);
      try {
        const s = f.store;
        const { merchantNo, appId } = await seedMerchant(s);
        const order = bareOrder(merchantNo, appId);
        await s.orders.insert(order);
        const address = `0x${randomBytes(20).toString('hex')}`;
        await s.depositAddresses.insertOrGet({ paymentOrderNo: order.paymentOrderNo, network: '4', currency: 'USDT', address, token: '0xc2132d05d31c914a87c6611c10748aeb04b58e8f', amountBase: 1n, plan: '{}', createdAt: T0 });
        await s.payments.upsert(paymentRecord(order.paymentOrderNo, { network: '4', address, status: 'SEEN', blockNumber: 90, confirmations: 1 }));
        // One pass of each background worker, as it runs them: twice, the second from the compiled SQL.
        const pass = async (i: number) => [
          await s.chainCursors.lease('4', 'me', T0 + i, T0 + i + 30_000),
          await s.chainCursors.advance('4', 'me', 10 + i, null, null),
          await s.chainCursors.advance('4', 'me', 11 + i, `0x${'ab'.repeat(32)}`, T0 + i),
          await s.chainCursors.caughtUp('4', 'me', T0 + i),
          await s.chainCursors.caughtUp('4', 'other', T0 + i),
          await s.payments.listUnfinal('4'),
          await s.payments.refreshConfirmations('4', 100 + i, T0 + i),
          (await s.payments.listUnfinal('4')).map((p) => p.confirmations - i),
          await s.depositAddresses.listWatched('4', S0),
          await s.depositAddresses.listWatched('4', S0, null, true),
          await s.depositAddresses.listWatched('4', S0, { after: null, limit: 5 }),
          await s.depositAddresses.listWatched('4', S0, { after: '0x00', limit: 5 }),
          await s.depositAddresses.listWatched('4', S0, { after: address, limit: 5 }),
          await s.settlements.listDue('4', T0 + i, 10),
          await s.settlements.listOpenTxs('4'),
          await s.settlements.listSettledButPaid('4', 10),
          await s.leases.acquire('settle:4', 'me', T0 + i, T0 + i + 30_000),
          await s.leases.acquire('settle:4', 'other', T0 + i, T0 + i + 30_000),
          await s.nonces.prune(T0 + i),
        ];
        const first = await pass(0);
        const second = await pass(1);
        const strip = (v: unknown) => JSON.parse(JSON.stringify(v, (k, x: unknown) => (typeof x === 'bigint' ? x.toString() : k === 'updatedAt' || k === 'confirmations' || k === 'leaseUntil' || k === 'nextBlock' || k === 'scannedHash' || k === 'caughtUpAt' ? undefined : x))) as unknown;
        expect(strip(second)).toEqual(strip(first));
        expect(first[0]).toMatchObject({ network: '4', leaseOwner: 'me', leaseUntil: T0 + 30_000 });
        expect(second[0]).toMatchObject({ network: '4', leaseOwner: 'me', leaseUntil: T0 + 1 + 30_000, nextBlock: 11 });
        expect(first.slice(1, 5)).toEqual([true, true, true, false]);
        expect(first[7]).toEqual([11]);
        expect(second[7]).toEqual([11]);
        expect((first[8] as unknown[]).length).toBe(1);
        expect(first[11]).toEqual(first[8]);
        expect(first[12]).toEqual([]);
        expect(first.slice(16, 18)).toEqual([true, false]);
        const shapes = compiledShapesOf(s)!;
        expect(shapes.refused).toEqual([]);
        expect(shapes.reused).toEqual(
          expect.arrayContaining([
            'chainCursors.create', 'chainCursors.lease', 'chainCursors.advance:true', 'chainCursors.advance:false', 'chainCursors.caughtUp',
            'payments.listUnfinal', 'payments.refreshConfirmations',
            'depositAddresses.listWatched:false:all', 'depositAddresses.listWatched:true:all', 'depositAddresses.listWatched:false:false', 'depositAddresses.listWatched:false:true',
            'settlements.listDue', 'settlements.listOpenTxs', 'settlements.listSettledButPaid', 'leases.create', 'leases.acquire', 'nonces.prune',
          ]),
        );
      } finally {
        await f.close();
      }
    });
  });

  describe('payments', () => {
    it('upserts a transfer by (network, tx_hash, log_index): a repeat updates it, never adds a row', async () => {
      const { merchantNo, appId } = await seedMerchant(store);
      const o = orderRecord(merchantNo, appId);
      await store.orders.insert(o);
      const later = paymentRecord(o.paymentOrderNo, { blockNumber: 40_000_010, logIndex: 0 });
      const first = paymentRecord(o.paymentOrderNo, { logIndex: 7 });
      const sameTxNextLog = { ...paymentRecord(o.paymentOrderNo), txHash: first.txHash, logIndex: 8, amount: 5n };
      const sameTxOtherNetwork = { ...first, network: '2' as const, currency: 'USDT', blockNumber: 20_000_000, amount: 1n };
      for (const p of [later, first, sameTxNextLog, sameTxOtherNetwork]) await store.payments.upsert(p);
      expect(await store.payments.listByOrder(o.paymentOrderNo)).toEqual([sameTxOtherNetwork, first, sameTxNextLog, later]);

      const confirmed: PaymentRecord = { ...first, confirmations: 12, status: 'FINAL', blockNumber: 40_000_001, blockHash: `0x${'ab'.repeat(32)}`, updatedAt: T0 + 9000 };
      await store.payments.upsert(confirmed);
      await store.payments.upsert(confirmed);
      expect(await countRows(shared.db, 'payments', 'payment_order_no', o.paymentOrderNo)).toBe(4);
      const rows = await store.payments.listByOrder(o.paymentOrderNo);
      expect(rows).toHaveLength(4);
      expect(rows.find((p) => p.network === '3' && p.txHash === first.txHash && p.logIndex === 7)).toEqual({ ...confirmed, createdAt: first.createdAt });
      expect(rows.find((p) => p.network === '2')).toEqual(sameTxOtherNetwork);

      const reverted: PaymentRecord = { ...confirmed, status: 'REVERTED', confirmations: 0, updatedAt: T0 + 9999 };
      await store.payments.upsert(reverted);
      expect((await store.payments.listByOrder(o.paymentOrderNo)).filter((p) => p.txHash === first.txHash && p.network === '3' && p.logIndex === 7)).toEqual([
        { ...reverted, createdAt: first.createdAt },
      ]);
      expect(await store.payments.listByOrder('P00000000000000000000000000')).toEqual([]);
    });

    it('keeps a native receipt\'s transaction once named: an upsert without it (a later pass moving the row) does not clear it, one at a time or in bulk', async () => {
      const { merchantNo, appId } = await seedMerchant(store);
      const o = orderRecord(merchantNo, appId);
      await store.orders.insert(o);
      const key = `balance:${WALLET.toLowerCase()}:40000000`;
      const named = paymentRecord(o.paymentOrderNo, { network: '4', currency: 'POL', txHash: key, chainTxHash: `0x${'ef'.repeat(32)}` });
      const unnamed = paymentRecord(o.paymentOrderNo, { network: '4', currency: 'POL', txHash: `balance:${WALLET.toLowerCase()}:40000001` });
      await store.payments.upsertMany([named, unnamed]);
      await store.payments.upsert({ ...named, chainTxHash: null, confirmations: 5, updatedAt: T0 + 2000 });
      await store.payments.upsertMany([{ ...named, chainTxHash: null, confirmations: 9, status: 'FINAL', updatedAt: T0 + 3000 }]);
      const rows = await store.payments.listByOrder(o.paymentOrderNo);
      expect(rows.find((p) => p.txHash === key)).toEqual({ ...named, confirmations: 9, status: 'FINAL', updatedAt: T0 + 3000 });
      expect(rows.find((p) => p.txHash === unnamed.txHash)?.chainTxHash).toBeNull();
      // A name found later is taken.
      await store.payments.upsert({ ...unnamed, chainTxHash: `0x${'12'.repeat(32)}` });
      expect((await store.payments.listByOrder(o.paymentOrderNo)).find((p) => p.txHash === unnamed.txHash)?.chainTxHash).toBe(`0x${'12'.repeat(32)}`);
      // Withdrawn (UNNAMED, its transaction not final on the canonical chain): no name, one at a time or in bulk.
      await store.payments.upsert({ ...unnamed, chainTxHash: UNNAMED });
      await store.payments.upsertMany([{ ...named, chainTxHash: UNNAMED }]);
      const after = await store.payments.listByOrder(o.paymentOrderNo);
      expect(after.map((p) => p.chainTxHash)).toEqual([null, null]);
      // The bulk upsert is compiled once per chunk size: its parameters are its rows' values only.
      for (const i of [3, 4, 5]) await store.payments.upsertMany([paymentRecord(o.paymentOrderNo, { network: '4', currency: 'POL', txHash: `balance:${WALLET.toLowerCase()}:4000000${i}` })]);
      expect(compiledShapesOf(store)!.refused).not.toContain('payments.upsert:1');
      // A row first written withdrawn reads as unnamed too.
      const fresh = paymentRecord(o.paymentOrderNo, { network: '4', currency: 'POL', txHash: `balance:${WALLET.toLowerCase()}:40000002`, chainTxHash: UNNAMED });
      await store.payments.upsertMany([fresh]);
      expect((await store.payments.listByOrder(o.paymentOrderNo)).find((p) => p.txHash === fresh.txHash)?.chainTxHash).toBeNull();
    });
  });

  describe('cashier tokens', () => {
    it('reads an order’s cashier token alone, and null for an unknown order', async () => {
      const { merchantNo, appId } = await seedMerchant(store);
      const o = orderRecord(merchantNo, appId);
      await store.orders.insert(o);
      expect(await store.orders.cashierToken(o.paymentOrderNo)).toBe(o.cashierToken);
      expect(await store.orders.cashierToken('P00000000000000000000000000')).toBeNull();
    });
  });

  describe('payments in bulk', () => {
    it('upserts many transfers in one call exactly as one at a time: new rows inserted, known ones moved, identity kept', async () => {
      const { merchantNo, appId } = await seedMerchant(store);
      const o = orderRecord(merchantNo, appId);
      await store.orders.insert(o);
      const known = paymentRecord(o.paymentOrderNo, { logIndex: 1 });
      await store.payments.upsert(known);
      const many = Array.from({ length: 450 }, (_, i) => paymentRecord(o.paymentOrderNo, { logIndex: 100 + i, amount: 10n ** 30n + BigInt(i) }));
      const moved: PaymentRecord = { ...known, amount: 1n, currency: 'USDC', blockNumber: 40_000_099, blockHash: `0x${'cd'.repeat(32)}`, confirmations: 64, status: 'FINAL', createdAt: T0 + 5, updatedAt: T0 + 5 };
      await store.payments.upsertMany([...many, moved]);
      const rows = await store.payments.listByOrder(o.paymentOrderNo);
      expect(rows).toHaveLength(451);
      // The known transfer keeps its amount, currency and created_at; its block, confirmations and status move.
      expect(rows.find((p) => p.logIndex === 1 && p.txHash === known.txHash)).toEqual({ ...known, blockNumber: 40_000_099, blockHash: moved.blockHash, confirmations: 64, status: 'FINAL', updatedAt: T0 + 5 });
      for (const p of many) expect(rows.find((r) => r.txHash === p.txHash && r.logIndex === p.logIndex)).toEqual(p);
      await store.payments.upsertMany([]);
    });
  });

  describe('notifications', () => {
    it('inserts notifications and lists an order’s by sequence', async () => {
      const { merchantNo, appId } = await seedMerchant(store);
      const o = bareOrder(merchantNo, appId);
      const other = bareOrder(merchantNo, appId);
      await store.orders.insert(o);
      await store.orders.insert(other);
      const n2 = notificationRecord(o.paymentOrderNo, 2, { notifyType: 'ORDER_EXCEPTION', status: 'FAILED', attempts: 9 });
      const n1 = notificationRecord(o.paymentOrderNo, 1, { status: 'DELIVERED', attempts: 1 });
      const n3 = notificationRecord(o.paymentOrderNo, 3, { notifyType: 'ORDER_COMPLETED' });
      const foreign = notificationRecord(other.paymentOrderNo, 1, { notifyType: 'ORDER_CLOSED' });
      for (const n of [n2, foreign, n3, n1]) await store.notifications.insert(n);
      expect(await store.notifications.listByOrder(o.paymentOrderNo)).toEqual([n1, n2, n3]);
      expect(await store.notifications.listByOrder(other.paymentOrderNo)).toEqual([foreign]);
      await expect(store.notifications.insert({ ...n1, sequence: 4 })).rejects.toThrow();
      expect(await store.notifications.get(n2.notifyId)).toEqual(n2);
      expect(await store.notifications.get('Nnope')).toBeNull();
    });
  });

  describe('notification delivery', () => {
    // listDue sees every row of a database: each case has one of its own.
    let f: Fresh;
    let s: Store;
    let order: OrderRecord;
    beforeEach(async () => {
      f = await freshStore(kind);
      s = f.store;
      const { merchantNo, appId } = await seedMerchant(s);
      order = bareOrder(merchantNo, appId, { notifyUrl: 'https://merchant.example:8443/notify' });
      await s.orders.insert(order);
    });
    afterEach(async () => {
      await f.close();
    });
    const due = (n: NotificationRecord, over: { attemptNo?: number; series?: number } = {}) => ({ notifyId: n.notifyId, series: over.series ?? n.series, attemptNo: over.attemptNo ?? n.attemptNo });

    it('lists PENDING notifications due by then, earliest first, with the order’s URL and application', async () => {
      const late = notificationRecord(order.paymentOrderNo, 1, { nextAttemptAt: T0 + 500 });
      const early = notificationRecord(order.paymentOrderNo, 2, { nextAttemptAt: T0 + 100 });
      const delivered = notificationRecord(order.paymentOrderNo, 3, { nextAttemptAt: T0, status: 'DELIVERED' });
      const failed = notificationRecord(order.paymentOrderNo, 4, { nextAttemptAt: T0, status: 'FAILED' });
      const elsewhere = notificationRecord(order.paymentOrderNo, 5, { nextAttemptAt: T0 + 200, destination: 'other.example' });
      for (const n of [late, early, delivered, failed, elsewhere]) await s.notifications.insert(n);
      expect(await s.notifications.listDue(T0 + 99, 10, [])).toEqual([]);
      const all = await s.notifications.listDue(T0 + 500, 10, []);
      expect(all.map((d) => d.notifyId)).toEqual([early.notifyId, elsewhere.notifyId, late.notifyId]);
      expect(all[0]).toEqual({ notifyId: early.notifyId, series: 1, attemptNo: 0, leaseOwner: null, notifyUrl: order.notifyUrl, appId: order.appId, destination: 'merchant.example:8443' });
      expect((await s.notifications.listDue(T0 + 500, 2, [])).map((d) => d.notifyId)).toEqual([early.notifyId, elsewhere.notifyId]);
      expect((await s.notifications.listDue(T0 + 500, 10, ['merchant.example:8443'])).map((d) => d.notifyId)).toEqual([elsewhere.notifyId]);
      expect((await s.notifications.listDue(T0 + 500, 10, ['merchant.example:8443', 'other.example'])).map((d) => d.notifyId)).toEqual([]);
      // One destination only: what a freed slot there can take.
      expect((await s.notifications.listDueAt('merchant.example:8443', T0 + 500, 10)).map((d) => d.notifyId)).toEqual([early.notifyId, late.notifyId]);
      expect((await s.notifications.listDueAt('merchant.example:8443', T0 + 500, 1)).map((d) => d.notifyId)).toEqual([early.notifyId]);
      expect(await s.notifications.listDueAt('merchant.example:8443', T0 + 99, 10)).toEqual([]);
      expect((await s.notifications.listDueAt('other.example', T0 + 500, 10))[0]).toEqual({ notifyId: elsewhere.notifyId, series: 1, attemptNo: 0, leaseOwner: null, notifyUrl: order.notifyUrl, appId: order.appId, destination: 'other.example' });
    });

    it('counts the backlog for operators: pending, due by then (and the oldest due), failed; settlements DUE and SENT per network', async () => {
      expect(await s.notifications.backlog(T0)).toEqual({ pending: 0, due: 0, oldestDueAt: null, failed: 0 });
      const rows = [
        notificationRecord(order.paymentOrderNo, 1, { nextAttemptAt: T0 - 5_000 }),
        notificationRecord(order.paymentOrderNo, 2, { nextAttemptAt: T0 - 1_000 }),
        notificationRecord(order.paymentOrderNo, 3, { nextAttemptAt: T0 + 60_000 }),
        notificationRecord(order.paymentOrderNo, 4, { nextAttemptAt: T0 - 9_000, status: 'DELIVERED' }),
        notificationRecord(order.paymentOrderNo, 5, { nextAttemptAt: T0 - 9_000, status: 'FAILED' }),
      ];
      for (const n of rows) await s.notifications.insert(n);
      expect(await s.notifications.backlog(T0)).toEqual({ pending: 3, due: 2, oldestDueAt: T0 - 5_000, failed: 1 });
      expect(await s.settlements.backlog()).toEqual([]);
      await s.settlements.insertDue({ paymentOrderNo: order.paymentOrderNo, network: '4', currency: 'USDT', address: '0x00000000000000000000000000000000000000f1' }, T0);
      expect(await s.settlements.backlog()).toEqual([{ network: '4', status: 'DUE', count: 1, deferred: 0 }]);
      // Deferred after a failed attempt: counted as such too.
      const st = (await s.settlements.get(order.paymentOrderNo))!;
      await s.settlements.update({ ...st, attempts: 2, lastError: 'no', nextAttemptAt: T0 + 60_000 });
      expect(await s.settlements.backlog()).toEqual([{ network: '4', status: 'DUE', count: 1, deferred: 1 }]);
      // …and due again at once when asked (only then: not while due already, nor before any failure).
      expect(await s.settlements.dueNow(order.paymentOrderNo, T0)).toBe(true);
      expect(await s.settlements.get(order.paymentOrderNo)).toMatchObject({ attempts: 2, lastError: 'no', nextAttemptAt: T0 });
      expect(await s.settlements.dueNow(order.paymentOrderNo, T0)).toBe(false);
    });

    it('leases a notification to one claimant: the lease pushes it out of the due list until it runs out', async () => {
      const n = notificationRecord(order.paymentOrderNo, 1, { nextAttemptAt: T0 });
      await s.notifications.insert(n);
      const results = await Promise.all(['a', 'b', 'c', 'd', 'e', 'f'].map((owner) => s.transaction(async (tx) => (await tx.notifications.claim(due(n), owner, T0 + 1500, T0 + 16_500)) !== null)));
      expect(results.filter(Boolean)).toHaveLength(1);
      const owner = ['a', 'b', 'c', 'd', 'e', 'f'][results.indexOf(true)];
      const claimed = await s.notifications.get(n.notifyId);
      expect(claimed).toMatchObject({ leaseOwner: owner, attemptNo: 1, nextAttemptAt: T0 + 16_500, notifyTime: S0 + 1, status: 'PENDING', attempts: 0 });
      expect(await s.notifications.listDue(T0 + 16_499, 10, [])).toEqual([]);
      // The lease ran out without an outcome: due again, showing who held it.
      const again = await s.notifications.listDue(T0 + 16_500, 10, []);
      expect(again).toMatchObject([{ notifyId: n.notifyId, attemptNo: 1, leaseOwner: owner }]);
      // A claim with a stale attempt number loses; notify_time keeps the first attempt's time.
      expect(await s.notifications.claim(due(n), 'x', T0 + 20_000, T0 + 35_000)).toBeNull();
      const reclaimed = await s.notifications.claim(due(n, { attemptNo: 1 }), 'x', T0 + 20_000, T0 + 35_000);
      expect(reclaimed).toMatchObject({ leaseOwner: 'x', attemptNo: 2, notifyTime: S0 + 1, payload: n.payload });
      expect(await s.notifications.get(n.notifyId)).toEqual(reclaimed);
    });

    it('does not claim a notification before it is due, or one that is no longer PENDING', async () => {
      const future = notificationRecord(order.paymentOrderNo, 1, { nextAttemptAt: T0 + 10_000 });
      const done = notificationRecord(order.paymentOrderNo, 2, { nextAttemptAt: T0, status: 'DELIVERED' });
      for (const n of [future, done]) await s.notifications.insert(n);
      expect(await s.notifications.claim(due(future), 'a', T0, T0 + 15_000)).toBeNull();
      expect(await s.notifications.claim(due(done), 'a', T0, T0 + 15_000)).toBeNull();
      expect(await s.notifications.get(future.notifyId)).toEqual(future);
    });

    it('settles an attempt only for the lease holder of that attempt and series', async () => {
      const n = notificationRecord(order.paymentOrderNo, 1, { nextAttemptAt: T0 });
      await s.notifications.insert(n);
      expect(await s.notifications.claim(due(n), 'a', T0, T0 + 15_000)).not.toBeNull();
      const next = { status: 'PENDING' as const, attempts: 1, nextAttemptAt: T0 + 10_000, deliveredAt: null };
      expect(await s.notifications.settle(n.notifyId, { owner: 'b', series: 1, attemptNo: 1 }, next)).toBe(false);
      expect(await s.notifications.settle(n.notifyId, { owner: 'a', series: 1, attemptNo: 2 }, next)).toBe(false);
      expect(await s.notifications.settle(n.notifyId, { owner: 'a', series: 2, attemptNo: 1 }, next)).toBe(false);
      expect(await s.notifications.settle(n.notifyId, { owner: 'a', series: 1, attemptNo: 1 }, next)).toBe(true);
      expect(await s.notifications.get(n.notifyId)).toMatchObject({ status: 'PENDING', attempts: 1, nextAttemptAt: T0 + 10_000, leaseOwner: null, attemptNo: 1 });
      // Settled once: the lease is gone, a repeat changes nothing.
      expect(await s.notifications.settle(n.notifyId, { owner: 'a', series: 1, attemptNo: 1 }, { ...next, status: 'DELIVERED', deliveredAt: T0 })).toBe(false);
    });

    it('takes a late SUCCESS as delivered while the notification is PENDING in that series, whoever holds it now', async () => {
      const n = notificationRecord(order.paymentOrderNo, 1, { nextAttemptAt: T0 });
      await s.notifications.insert(n);
      // Sender a's lease ran out; b holds attempt 2.
      expect(await s.notifications.claim(due(n), 'a', T0, T0 + 15_000)).not.toBeNull();
      expect(await s.notifications.claim(due(n, { attemptNo: 1 }), 'b', T0 + 15_000, T0 + 30_000)).not.toBeNull();
      expect(await s.notifications.deliveredLate(n.notifyId, 2, T0 + 16_000)).toBe(false);
      expect(await s.notifications.deliveredLate(n.notifyId, 1, T0 + 16_000)).toBe(true);
      // The late attempt counts as the one that delivered it (it was 0 attempts).
      expect(await s.notifications.get(n.notifyId)).toMatchObject({ status: 'DELIVERED', deliveredAt: T0 + 16_000, leaseOwner: null, attempts: 1, attemptNo: 2 });
      // b's own outcome no longer settles it; nor does a second late answer change it.
      expect(await s.notifications.settle(n.notifyId, { owner: 'b', series: 1, attemptNo: 2 }, { status: 'PENDING', attempts: 1, nextAttemptAt: T0 + 40_000, deliveredAt: null })).toBe(false);
      expect(await s.notifications.deliveredLate(n.notifyId, 1, T0 + 17_000)).toBe(false);
      expect(await s.notifications.get(n.notifyId)).toMatchObject({ status: 'DELIVERED', deliveredAt: T0 + 16_000 });
    });

    it('starts a new attempt series on resend, which outdates an attempt in flight', async () => {
      const n = notificationRecord(order.paymentOrderNo, 1, { nextAttemptAt: T0, status: 'FAILED', attempts: 8, attemptNo: 8, notifyTime: S0 });
      await s.notifications.insert(n);
      expect(await s.notifications.resend(n.notifyId, T0 + 1000)).toBe(true);
      expect(await s.notifications.get(n.notifyId)).toEqual({ ...n, status: 'PENDING', attempts: 0, series: 2, nextAttemptAt: T0 + 1000 });
      expect(await s.notifications.claim(due(n, { series: 2 }), 'a', T0 + 1000, T0 + 16_000)).not.toBeNull();
      expect(await s.notifications.resend(n.notifyId, T0 + 2000)).toBe(true);
      expect(await s.notifications.settle(n.notifyId, { owner: 'a', series: 2, attemptNo: 9 }, { status: 'DELIVERED', attempts: 1, nextAttemptAt: T0, deliveredAt: T0 })).toBe(false);
      expect(await s.notifications.get(n.notifyId)).toMatchObject({ series: 3, status: 'PENDING', attempts: 0, attemptNo: 9, leaseOwner: null, nextAttemptAt: T0 + 2000 });
      expect(await s.notifications.resend('Nnope', T0)).toBe(false);
    });

    it('logs attempts by (notify_id, attempt number); an outcome is written once, and a real one replaces INTERRUPTED', async () => {
      const n = notificationRecord(order.paymentOrderNo, 1);
      await s.notifications.insert(n);
      const attempt = (attemptNo: number): NotificationAttemptRecord => ({
        notifyId: n.notifyId,
        attemptNo,
        series: 1,
        sender: 'host/1/abc',
        startedAt: T0 + attemptNo,
        finishedAt: null,
        outcome: 'IN_FLIGHT',
        httpStatus: null,
        latencyMs: null,
        responseHead: null,
        errorKind: null,
        error: null,
      });
      for (const a of [2, 1, 3]) await s.notifications.insertAttempt(attempt(a));
      await expect(s.notifications.insertAttempt(attempt(1))).rejects.toThrow();
      const failed = { outcome: 'FAILED' as const, finishedAt: T0 + 9, httpStatus: 500, latencyMs: 12, responseHead: 'oops ✗ ünïcode', errorKind: 'HTTP_STATUS' as const, error: 'HTTP 500' };
      await s.notifications.finishAttempt(n.notifyId, 1, failed);
      await s.notifications.finishAttempt(n.notifyId, 1, { ...failed, outcome: 'DELIVERED', httpStatus: 200, errorKind: null, error: null });
      const interrupted = { outcome: 'INTERRUPTED' as const, finishedAt: T0 + 20, httpStatus: null, latencyMs: null, responseHead: null, errorKind: 'INTERRUPTED' as const, error: 'sender stopped' };
      await s.notifications.finishAttempt(n.notifyId, 2, interrupted);
      await s.notifications.finishAttempt(n.notifyId, 2, { ...interrupted, outcome: 'DELIVERED', httpStatus: 200, errorKind: null, error: null, latencyMs: 30 });
      await s.notifications.finishAttempt(n.notifyId, 3, interrupted);
      await s.notifications.finishAttempt(n.notifyId, 3, { ...interrupted, error: 'again' });
      expect(await s.notifications.listAttempts(n.notifyId)).toEqual([
        { ...attempt(1), ...failed },
        { ...attempt(2), ...interrupted, outcome: 'DELIVERED', httpStatus: 200, errorKind: null, error: null, latencyMs: 30 },
        { ...attempt(3), ...interrupted },
      ]);
      expect(await s.notifications.listAttempts('Nnope')).toEqual([]);
    });
  });

  describe('settlements', () => {
    const txRecord = (over: Partial<SettlementTxRecord> = {}): SettlementTxRecord => ({
      id: `0x${randomBytes(32).toString('hex')}`,
      network: '4',
      relayer: '0xAbCdEf0000000000000000000000000000000001',
      nonce: 7,
      status: 'SIGNED',
      txHash: `0x${'aa'.repeat(32)}`,
      rawTx: '0x02f8',
      hashes: [`0x${'aa'.repeat(32)}`],
      maxFeePerGas: 123_456_789_012_345_678_901n,
      maxPriorityFeePerGas: 1_000_000_000n,
      gasLimit: 250_000n,
      orderCount: 1,
      blockNumber: null,
      blockHash: null,
      minedHash: null,
      gasUsed: null,
      createdAt: T0,
      sentAt: null,
      updatedAt: T0,
      ...over,
    });

    // The reason is often an RPC node's error text: with a U+0000 in it PostgreSQL refused the
    // whole update, every pass, and the settlement never moved again (a review of the storage layer).
    it('stores a reason holding U+0000 (from a node), the character replaced', async () => {
      const { merchantNo, appId } = await seedMerchant(store);
      const o = orderRecord(merchantNo, appId);
      await store.orders.insert(o);
      await store.settlements.insertDue({ paymentOrderNo: o.paymentOrderNo, network: '4', currency: 'USDT', address: '0xAB00000000000000000000000000000000000002' }, T0);
      const row = (await store.settlements.get(o.paymentOrderNo))!;
      expect(await store.settlements.update({ ...row, attempts: 1, lastError: 'execution reverted: \u0000\u0000bad', updatedAt: T0 + 1 })).toBe(true);
      expect((await store.settlements.get(o.paymentOrderNo))!.lastError).toBe('execution reverted: \ufffd\ufffdbad');
    });

    it('records a due settlement once per order, lists it when due, and round-trips its transaction and payouts exactly', async () => {
      const { merchantNo, appId } = await seedMerchant(store);
      const o = orderRecord(merchantNo, appId);
      await store.orders.insert(o);
      const due = { paymentOrderNo: o.paymentOrderNo, network: '4' as const, currency: 'USDT', address: '0xAB00000000000000000000000000000000000001' };
      expect(await store.settlements.insertDue(due, T0)).toBe(true);
      expect(await store.settlements.insertDue({ ...due, currency: 'USDC' }, T0 + 5)).toBe(false);
      const row = (await store.settlements.get(o.paymentOrderNo))!;
      expect(row).toMatchObject({ status: 'DUE', currency: 'USDT', address: due.address.toLowerCase(), attempts: 0, nextAttemptAt: T0, txId: null, revertedTx: null });
      // The transaction that reverted on chain is kept with it (the order goes alone until it settles).
      const reverted = `0x${'ee'.repeat(32)}`;
      await store.settlements.update({ ...row, revertedTx: reverted });
      expect((await store.settlements.get(o.paymentOrderNo))!.revertedTx).toBe(reverted);
      await store.settlements.update(row);
      expect((await store.settlements.listDue('4', T0, 1000)).map((s) => s.paymentOrderNo)).toContain(o.paymentOrderNo);
      expect((await store.settlements.listDue('4', T0 - 1, 1000)).map((s) => s.paymentOrderNo)).not.toContain(o.paymentOrderNo);

      const tx = txRecord();
      expect(await store.settlements.insertTx(tx)).toBe(true);
      expect(await store.settlements.getTx(tx.id)).toEqual({ ...tx, relayer: tx.relayer.toLowerCase() });
      await store.settlements.update({ ...row, status: 'SENT', txId: tx.id, txHash: tx.txHash, distributed: 10n ** 30n, updatedAt: T0 + 1 });
      expect(await store.settlements.listByTx(tx.id)).toEqual([{ ...row, status: 'SENT', txId: tx.id, txHash: tx.txHash, distributed: 10n ** 30n, updatedAt: T0 + 1 }]);
      const payouts = [
        { paymentOrderNo: o.paymentOrderNo, idx: 0, role: 'SELLER', address: '0x01', amount: 10n ** 29n },
        { paymentOrderNo: o.paymentOrderNo, idx: 2, role: 'FEE', address: '0x02', amount: 1n },
      ];
      await store.settlements.setPayouts(o.paymentOrderNo, payouts);
      await store.settlements.setPayouts(o.paymentOrderNo, payouts);
      expect((await store.settlements.view(o.paymentOrderNo))!.payouts).toEqual(payouts);
      expect(await store.settlements.listOpenTxs('4')).toContainEqual({ ...tx, relayer: tx.relayer.toLowerCase() });
      // Only final settlements count as paid out from their address.
      const address = due.address.toLowerCase();
      expect((await store.settlements.outflowsFrom('4', [address])).distributed).toEqual(new Map());
      expect((await store.settlements.outflowsFrom('4', [address, '0x00000000000000000000000000000000000000ff'])).settling).toEqual(new Set([address]));
      expect((await store.settlements.outflowsFrom('2', [address])).settling).toEqual(new Set());
      await store.settlements.update({ ...row, status: 'SETTLED', txId: tx.id, txHash: tx.txHash, distributed: 10n ** 30n, settledAt: T0 + 2, updatedAt: T0 + 2 });
      expect((await store.settlements.outflowsFrom('4', [address, '0x00000000000000000000000000000000000000ff'])).distributed).toEqual(new Map([[address, 10n ** 30n]]));
      expect((await store.settlements.outflowsFrom('2', [address])).distributed).toEqual(new Map());
      expect((await store.settlements.outflowsFrom('4', [address])).settling).toEqual(new Set());
      // Settled while the order was not PAID (a reorganisation): listed once it is PAID again.
      const listed = async () => (await store.settlements.listSettledButPaid('4', 1000)).map((x) => x.paymentOrderNo);
      expect(await listed()).not.toContain(o.paymentOrderNo);
      const cur = (await store.orders.get(o.paymentOrderNo))!;
      expect(await store.orders.saveState({ ...cur, state: { ...cur.state, status: 'PAID', payTime: S0 }, version: cur.version + 1 }, cur.version)).toBe(true);
      expect(await listed()).toContain(o.paymentOrderNo);
    });

    it('never gives one relayer nonce to two transactions, and forgets the open ones of a dev chain', async () => {
      const f = await freshStore(kind);
      try {
        const s = f.store.settlements;
        const a = txRecord({ nonce: 3 });
        expect(await s.insertTx(a)).toBe(true);
        expect(await s.insertTx(txRecord({ nonce: 3 }))).toBe(false);
        expect(await s.insertTx(txRecord({ nonce: 3, network: '2' }))).toBe(true);
        expect(await s.insertTx(txRecord({ nonce: null }))).toBe(true);
        expect(await s.insertTx(txRecord({ nonce: null }))).toBe(true);
        expect(await s.insertTx(txRecord({ nonce: 5, status: 'SENT' }))).toBe(true);
        expect(await s.insertTx(txRecord({ nonce: 9, status: 'FINAL' }))).toBe(true);
        expect((await s.listOpenTxs('4')).map((t) => t.nonce).sort()).toEqual([null, null, 3, 5].sort());
        // A closed transaction's nonce can be given up (the chain never used it); an open or final one's cannot.
        const reverted = txRecord({ nonce: 11, status: 'REVERTED' });
        expect(await s.insertTx(reverted)).toBe(true);
        expect(await s.releaseNonce('4', a.relayer, 5)).toBe(false);
        expect(await s.releaseNonce('4', a.relayer, 9)).toBe(false);
        expect(await s.releaseNonce('4', a.relayer, 11)).toBe(true);
        expect((await s.getTx(reverted.id))!.nonce).toBeNull();
        expect(await s.insertTx(txRecord({ nonce: 11 }))).toBe(true);
        await s.dropOpen(['4'], T0 + 10);
        expect(await s.listOpenTxs('4')).toEqual([]);
        expect((await s.getTx(a.id))!.status).toBe('DROPPED');
        expect(await s.listOpenTxs('2')).toHaveLength(1);
        // A fresh dev chain: every nonce of the network is free again, the final ones' too.
        expect(await s.insertTx(txRecord({ nonce: 9 }))).toBe(true);
        expect(await s.insertTx(txRecord({ nonce: 3, network: '2' }))).toBe(false);
      } finally {
        await f.close();
      }
    });

    it('hands a named lease to one holder at a time, and to another once it runs out or is released', async () => {
      const name = `settle:${uid()}`;
      expect(await store.leases.acquire(name, 'a', T0, T0 + 1000)).toBe(true);
      expect(await store.leases.acquire(name, 'b', T0 + 10, T0 + 1010)).toBe(false);
      expect(await store.leases.acquire(name, 'a', T0 + 500, T0 + 1500)).toBe(true);
      expect(await store.leases.acquire(name, 'b', T0 + 1501, T0 + 2500)).toBe(true);
      // A release says whether the caller held it (the stop logs a handover only then).
      expect(await store.leases.release(name, 'a')).toBe(false);
      expect(await store.leases.acquire(name, 'a', T0 + 1600, T0 + 2600)).toBe(false);
      expect(await store.leases.release(name, 'b')).toBe(true);
      expect(await store.leases.acquire(name, 'a', T0 + 1600, T0 + 2600)).toBe(true);
    });

    it('renews a lease only for a holder that never lost it: not once it ran out, taken or not', async () => {
      const name = `settle:${uid()}`;
      expect(await store.leases.acquire(name, 'a', T0, T0 + 1000)).toBe(true);
      expect(await store.leases.renew(name, 'a', T0 + 900, T0 + 1900)).toBe(true);
      expect(await store.leases.renew(name, 'b', T0 + 901, T0 + 1901)).toBe(false);
      // Ran out (nobody took it): no renewal; acquire takes it again.
      expect(await store.leases.renew(name, 'a', T0 + 1901, T0 + 2901)).toBe(false);
      // Taken by another since: no renewal for the one that lost it.
      expect(await store.leases.acquire(name, 'b', T0 + 1902, T0 + 2902)).toBe(true);
      expect(await store.leases.renew(name, 'a', T0 + 1903, T0 + 2903)).toBe(false);
      await store.leases.release(name, 'b');
      expect(await store.leases.renew(name, 'b', T0 + 1904, T0 + 2904)).toBe(false);
    });
  });

  describe('nonces', () => {
    it('remembers a nonce until it expires, revives it afterwards, and prunes only expired ones', async () => {
      // prune counts every expired nonce: a database of its own keeps the count exact.
      const f = await freshStore(kind);
      try {
        const n = f.store.nonces;
        const app = digits();
        const otherApp = digits();
        expect(await n.remember(app, 'n-1', T0 + 10_000, T0)).toBe(true);
        expect(await n.remember(app, 'n-1', T0 + 20_000, T0 + 5_000)).toBe(false);
        expect(await n.remember(otherApp, 'n-1', T0 + 10_000, T0)).toBe(true);
        // At the expiry instant the timestamp window still admits the request: still a replay.
        expect(await n.remember(app, 'n-1', T0 + 20_000, T0 + 10_000)).toBe(false);
        // Past it the nonce is revived with the new expiry.
        expect(await n.remember(app, 'n-1', T0 + 30_000, T0 + 10_001)).toBe(true);
        expect(await n.remember(app, 'n-1', T0 + 40_000, T0 + 29_000)).toBe(false);

        expect(await n.remember(app, 'n-2', T0 + 15_000, T0)).toBe(true);
        expect(await n.remember(app, 'n-3', T0 + 50_000, T0)).toBe(true);
        // Expired at T0+30_000: otherApp/n-1 (10_000) and n-2 (15_000); app/n-1 expires exactly then.
        expect(await n.prune(T0 + 30_000)).toBe(2);
        expect(await n.remember(app, 'n-1', T0 + 60_000, T0 + 20_000)).toBe(false);
        expect(await n.remember(app, 'n-3', T0 + 60_000, T0 + 20_000)).toBe(false);
        expect(await n.remember(otherApp, 'n-1', T0 + 60_000, T0 + 20_000)).toBe(true);
        expect(await n.prune(T0 + 30_000)).toBe(0);
        expect(await n.prune(T0 + 1_000_000)).toBe(3);
        expect(await n.remember(app, 'n-3', T0 + 2_000_000, T0 + 1_000_000)).toBe(true);
      } finally {
        await f.close();
      }
    });
  });

  describe('transactions', () => {
    it('rolls back every write made through the transaction’s repositories when the function throws', async () => {
      const existing = merchantRecord({ wallets: { '2': WALLET }, caAddresses: {} });
      await store.merchants.insert(existing);
      const m = merchantRecord();
      const a = applicationRecord(m.merchantNo);
      const k = platformKeyRecord(a.appId);
      const o = orderRecord(m.merchantNo, a.appId);
      const p = paymentRecord(o.paymentOrderNo);
      const note = notificationRecord(o.paymentOrderNo, 1);
      const nonceApp = digits();

      const boom = new Error('boom: roll it all back');
      await expect(
        store.transaction(async (tx) => {
          await tx.merchants.insert(m);
          expect(await tx.merchants.update(existing.merchantNo, { status: 'INACTIVE', wallets: { '2': OTHER, '3': SELLER }, caAddresses: { '2': SELLER } }, T0 + 1)).toBe(true);
          await tx.applications.insert(a);
          await tx.platformKeys.insert(k);
          await tx.orders.insert(o);
          expect(await tx.orders.saveState({ ...o, version: o.version + 1, sequence: 9 }, o.version)).toBe(true);
          await tx.payments.upsert(p);
          await tx.notifications.insert(note);
          expect(await tx.nonces.remember(nonceApp, 'tx-nonce', T0 + 10_000, T0)).toBe(true);
          // Visible inside the transaction…
          expect((await tx.orders.get(o.paymentOrderNo))?.sequence).toBe(9);
          expect(await tx.payments.listByOrder(o.paymentOrderNo)).toHaveLength(1);
          expect((await tx.merchants.get(existing.merchantNo))?.status).toBe('INACTIVE');
          throw boom;
        }),
      ).rejects.toBe(boom);

      // …and gone after the rollback.
      expect(await store.merchants.get(m.merchantNo)).toBeNull();
      expect(await store.merchants.get(existing.merchantNo)).toEqual(existing);
      expect(await countRows(shared.db, 'merchant_networks', 'merchant_no', m.merchantNo)).toBe(0);
      expect(await store.applications.get(a.appId)).toBeNull();
      expect(await store.platformKeys.get(k.serial)).toBeNull();
      expect(await store.orders.get(o.paymentOrderNo)).toBeNull();
      expect(await store.orders.findByRequest(m.merchantNo, o.requestNoKey)).toBeNull();
      expect(await countRows(shared.db, 'order_options', 'payment_order_no', o.paymentOrderNo)).toBe(0);
      expect(await store.payments.listByOrder(o.paymentOrderNo)).toEqual([]);
      expect(await store.notifications.listByOrder(o.paymentOrderNo)).toEqual([]);
      expect(await store.nonces.remember(nonceApp, 'tx-nonce', T0 + 10_000, T0)).toBe(true);
    });

    it('commits the writes of a transaction that returns, and returns its value', async () => {
      const m = merchantRecord();
      const a = applicationRecord(m.merchantNo);
      const result = await store.transaction(async (tx) => {
        await tx.merchants.insert(m);
        await tx.applications.insert(a);
        return 'done';
      });
      expect(result).toBe('done');
      expect(await store.merchants.get(m.merchantNo)).toEqual(m);
      expect(await store.applications.get(a.appId)).toEqual(a);
    });
  });
});

describe.runIf(PG_BASE_URL)('the same schema on SQLite and PostgreSQL', () => {
  it('has the same tables and columns (names, order and nullability) on both', async () => {
    const [lite, pg] = await Promise.all([freshStore('sqlite'), freshStore('postgres')]);
    try {
      expect(await listTables(pg.db.kysely as Kysely<unknown>)).toEqual(await listTables(lite.db.kysely as Kysely<unknown>));
      expect(await schemaShape(pg.db)).toEqual(await schemaShape(lite.db));
    } finally {
      await Promise.all([lite.close(), pg.close()]);
    }
  });
});
