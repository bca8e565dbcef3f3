// The Kysely implementation of the store ports, identical on SQLite and PostgreSQL.
import { sql, type ExpressionBuilder, type Kysely, type OnConflictDatabase, type OnConflictTables, type Transaction } from 'kysely';
import type { NetworkId } from '../../domain/catalogue.js';
import {
  DuplicateRequestError,
  OrderNumberTakenError,
  type ApplicationRecord,
  type ApplicationRepo,
  type MerchantPatch,
  type MerchantRecord,
  type MerchantRepo,
  type NonceRepo,
  type OrderRepo,
  type PaymentRepo,
  type PlatformKeyRecord,
  type PlatformKeyRepo,
  type Store,
  type StoreTx,
} from '../../app/ports.js';
import { chainCursorRepo } from './chain-cursor-store.js';
import { depositAddressRepo } from './deposit-address-store.js';
import { leaseRepo, settlementRepo } from './settlement-store.js';
import { notificationRepo } from './notification-store.js';
import { CompiledCache } from './compiled-cache.js';
import { GroupCommit } from './group-commit.js';
import { isOrderNumberViolation, isUniqueViolation, type Db } from './database.js';
import { optionToRow, orderToRow, paymentToRow, pushPaymentValues, rowToOption, rowToOrder, rowToPayment, stateColumns } from './order-rows.js';
import type { Database } from './schema.js';
import type { OrderOptionRecord, OrderRecord, PaymentRecord } from '../../app/records.js';

type Q = Kysely<Database> | Transaction<Database>;

/** Values in one IN list: far under every driver's bound-parameter limit. */
const IN_CHUNK = 500;
/** Rows per multi-row upsert of payments (13 parameters each). */
const UPSERT_CHUNK = 200;

const caches = new WeakMap<Store, CompiledCache>();

/** The statements a store compiled once (for the tests). */
export function compiledShapesOf(store: Store): { reused: string[]; refused: string[] } | null {
  return caches.get(store)?.shapes() ?? null;
}

export function createStore(db: Db): Store {
  const cache = new CompiledCache();
  const group = db.dialect === 'sqlite' ? new GroupCommit(db.kysely) : null;
  const store: Store = {
    ...repos(db.kysely, cache),
    transaction: (fn) =>
      group ? group.run((trx) => fn(repos(trx, cache))) : db.kysely.transaction().execute((trx) => fn(repos(trx, cache))),
  };
  caches.set(store, cache);
  return store;
}

function repos(q: Q, cache: CompiledCache): StoreTx {
  return {
    merchants: merchantRepo(q, cache),
    applications: applicationRepo(q, cache),
    platformKeys: platformKeyRepo(q),
    orders: orderRepo(q, cache),
    payments: paymentRepo(q, cache),
    notifications: notificationRepo(q, cache),
    depositAddresses: depositAddressRepo(q, cache),
    chainCursors: chainCursorRepo(q, cache),
    nonces: nonceRepo(q, cache),
    settlements: settlementRepo(q, cache),
    leases: leaseRepo(q, cache),
  };
}

function merchantRepo(q: Q, cache: CompiledCache): MerchantRepo {
  return {
    async insert(m) {
      await q
        .insertInto('merchants')
        .values({
          merchant_no: m.merchantNo,
          name: m.name,
          status: m.status,
          online_payment: m.onlinePayment ? 1 : 0,
          created_at: m.createdAt,
          updated_at: m.createdAt,
        })
        .execute();
      await writeNetworks(q, m.merchantNo, { wallets: m.wallets, caAddresses: m.caAddresses });
    },
    async get(merchantNo) {
      // One statement: the merchant with one row per configured network (or one row of nulls).
      const { rows } = await cache.run(q, 'merchant.get', [merchantNo], () =>
        q
          .selectFrom('merchants')
          .leftJoin('merchant_networks', 'merchant_networks.merchant_no', 'merchants.merchant_no')
          .select([
            'merchants.merchant_no',
            'merchants.name',
            'merchants.status',
            'merchants.online_payment',
            'merchants.created_at',
            'merchant_networks.network',
            'merchant_networks.wallet_address',
            'merchant_networks.ca_address',
          ])
          .where('merchants.merchant_no', '=', merchantNo),
      );
      const row = rows[0];
      if (!row) return null;
      const nets = rows.filter((r) => r.network !== null);
      const m: MerchantRecord = {
        merchantNo: row.merchant_no,
        name: row.name,
        status: row.status === 'INACTIVE' ? 'INACTIVE' : 'ACTIVE',
        onlinePayment: Number(row.online_payment) === 1,
        wallets: {},
        caAddresses: {},
        createdAt: Number(row.created_at),
      };
      for (const n of nets) {
        if (n.wallet_address) m.wallets[n.network as NetworkId] = n.wallet_address;
        if (n.ca_address) m.caAddresses[n.network as NetworkId] = n.ca_address;
      }
      return m;
    },
    async update(merchantNo, patch: MerchantPatch, nowMs) {
      const set: { updated_at: number; status?: string; online_payment?: number } = { updated_at: nowMs };
      if (patch.status) set.status = patch.status;
      if (patch.onlinePayment !== undefined) set.online_payment = patch.onlinePayment ? 1 : 0;
      const r = await q.updateTable('merchants').set(set).where('merchant_no', '=', merchantNo).executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) return false;
      await writeNetworks(q, merchantNo, patch);
      return true;
    },
  };
}

async function writeNetworks(q: Q, merchantNo: string, patch: Pick<MerchantPatch, 'wallets' | 'caAddresses'>) {
  // Keys whose value is undefined are absent (the patch types allow them): such a network
  // would otherwise become an `ON CONFLICT DO UPDATE SET` with nothing to set.
  const present = (r: Partial<Record<NetworkId, string>> | undefined) => Object.keys(r ?? {}).filter((n) => r?.[n as NetworkId] !== undefined);
  const networks = new Set<string>([...present(patch.wallets), ...present(patch.caAddresses)]);
  for (const network of networks) {
    const wallet = patch.wallets?.[network as NetworkId];
    const ca = patch.caAddresses?.[network as NetworkId];
    await q
      .insertInto('merchant_networks')
      .values({ merchant_no: merchantNo, network, wallet_address: wallet ?? null, ca_address: ca ?? null })
      .onConflict((oc) =>
        oc.columns(['merchant_no', 'network']).doUpdateSet({
          ...(wallet !== undefined ? { wallet_address: wallet } : {}),
          ...(ca !== undefined ? { ca_address: ca } : {}),
        }),
      )
      .execute();
  }
}

function applicationRepo(q: Q, cache: CompiledCache): ApplicationRepo {
  const toRecord = (r: Database['applications']): ApplicationRecord => ({
    appId: r.app_id,
    merchantNo: r.merchant_no,
    merchantPublicKeyPem: r.merchant_public_key,
    status: r.status === 'DISABLED' ? 'DISABLED' : 'ACTIVE',
    createdAt: Number(r.created_at),
  });
  return {
    async insert(a) {
      await q
        .insertInto('applications')
        .values({
          app_id: a.appId,
          merchant_no: a.merchantNo,
          merchant_public_key: a.merchantPublicKeyPem,
          status: a.status,
          created_at: a.createdAt,
          updated_at: a.createdAt,
        })
        .execute();
    },
    async get(appId) {
      const { rows } = await cache.run(q, 'application.get', [appId], () => q.selectFrom('applications').selectAll().where('app_id', '=', appId));
      return rows[0] ? toRecord(rows[0]) : null;
    },
    async listByMerchant(merchantNo) {
      const rows = await q.selectFrom('applications').selectAll().where('merchant_no', '=', merchantNo).orderBy('created_at').orderBy('app_id').execute();
      return rows.map(toRecord);
    },
    async setMerchantKey(appId, merchantPublicKeyPem, nowMs) {
      const r = await q.updateTable('applications').set({ merchant_public_key: merchantPublicKeyPem, updated_at: nowMs }).where('app_id', '=', appId).executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },
    async setStatus(appId, status, nowMs) {
      // Compare-and-set: "changed" is the database's word, also when two operators race.
      const r = await q.updateTable('applications').set({ status, updated_at: nowMs }).where('app_id', '=', appId).where('status', '<>', status).executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },
  };
}

function platformKeyRepo(q: Q): PlatformKeyRepo {
  const toRecord = (r: Database['platform_keys']): PlatformKeyRecord => ({
    serial: r.serial,
    appId: r.app_id,
    publicKeyPem: r.public_key,
    privateKeyEnc: r.private_key_enc,
    status: r.status === 'RETIRED' || r.status === 'NEXT' ? r.status : 'ACTIVE',
    createdAt: Number(r.created_at),
    ...(r.activated_at === null ? {} : { activatedAt: Number(r.activated_at) }),
  });
  const byApp = (appId: string | null) => {
    const base = q.selectFrom('platform_keys').selectAll();
    return appId === null ? base.where('app_id', 'is', null) : base.where('app_id', '=', appId);
  };
  return {
    async insert(k) {
      await q
        .insertInto('platform_keys')
        .values({
          serial: k.serial,
          app_id: k.appId,
          public_key: k.publicKeyPem,
          private_key_enc: k.privateKeyEnc,
          status: k.status,
          created_at: k.createdAt,
          activated_at: k.activatedAt ?? null,
        })
        .execute();
    },
    async activeFor(appId) {
      const r = await byApp(appId).where('status', '=', 'ACTIVE').orderBy('created_at', 'desc').orderBy('serial', 'desc').executeTakeFirst();
      return r ? toRecord(r) : null;
    },
    async get(serial) {
      const r = await q.selectFrom('platform_keys').selectAll().where('serial', '=', serial).executeTakeFirst();
      return r ? toRecord(r) : null;
    },
    async oldest() {
      const r = await q.selectFrom('platform_keys').selectAll().orderBy('created_at').orderBy('serial').limit(1).executeTakeFirst();
      return r ? toRecord(r) : null;
    },
    async list(appId) {
      return (await byApp(appId).orderBy('created_at').orderBy('serial').execute()).map(toRecord);
    },
    async setStatus(serial, from, to, nowMs) {
      const set = to === 'ACTIVE' ? { status: to, activated_at: nowMs } : { status: to };
      const r = await q.updateTable('platform_keys').set(set).where('serial', '=', serial).where('status', '=', from).executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },
  };
}

function orderRepo(q: Q, cache: CompiledCache): OrderRepo {
  const load = async (row: Database['orders'] | undefined) => {
    if (!row) return null;
    const opts = await q
      .selectFrom('order_options')
      .selectAll()
      .where('payment_order_no', '=', row.payment_order_no)
      .orderBy('network')
      .orderBy('currency')
      .execute();
    return rowToOrder(row, opts.map(rowToOption));
  };
  return {
    async insert(o) {
      const row = orderToRow(o);
      try {
        await cache.run(q, `orders.insert:${Object.keys(row).join()}`, Object.values(row), () => q.insertInto('orders').values(row));
      } catch (err) {
        if (isOrderNumberViolation(err)) throw new OrderNumberTakenError();
        if (isUniqueViolation(err)) throw new DuplicateRequestError();
        throw err;
      }
      if (o.options.length > 0) {
        const rows = o.options.map((opt) => optionToRow(o.paymentOrderNo, opt));
        const shape = `order_options.insert:${rows.length}:${Object.keys(rows[0]!).join()}`;
        await cache.run(q, shape, rows.flatMap((r) => Object.values(r)), () => q.insertInto('order_options').values(rows));
      }
    },
    async cashierToken(paymentOrderNo) {
      const r = await q.selectFrom('orders').select('cashier_token').where('payment_order_no', '=', paymentOrderNo).executeTakeFirst();
      return r ? r.cashier_token : null;
    },
    async get(paymentOrderNo) {
      return load(await q.selectFrom('orders').selectAll().where('payment_order_no', '=', paymentOrderNo).executeTakeFirst());
    },
    async version(paymentOrderNo) {
      const r = await q.selectFrom('orders').select('version').where('payment_order_no', '=', paymentOrderNo).executeTakeFirst();
      return r ? Number(r.version) : null;
    },
    async getMany(paymentOrderNos, opts = {}) {
      const out: OrderRecord[] = [];
      // Chunks keep the IN lists under every driver's bound-parameter limit.
      for (let i = 0; i < paymentOrderNos.length; i += IN_CHUNK) {
        const nos = paymentOrderNos.slice(i, i + IN_CHUNK) as string[];
        const { rows } = await cache.run(q, `orders.getMany:${nos.length}`, nos, () => q.selectFrom('orders').selectAll().where('payment_order_no', 'in', nos));
        if (rows.length === 0) continue;
        const { rows: optionRows } = opts.onlySelectedOption
          ? await cache.run(q, `order_options.getManySelected:${nos.length}`, nos, () =>
              q
                .selectFrom('order_options as oo')
                .innerJoin('orders as o', 'o.payment_order_no', 'oo.payment_order_no')
                .selectAll('oo')
                .where('oo.payment_order_no', 'in', nos)
                .where((eb) => eb.or([eb('o.selected_network', 'is', null), eb.and([eb('oo.network', '=', eb.ref('o.selected_network')), eb('oo.currency', '=', eb.ref('o.selected_currency'))])]))
                .orderBy('oo.payment_order_no')
                .orderBy('oo.network')
                .orderBy('oo.currency'),
            )
          : await cache.run(q, `order_options.getMany:${nos.length}`, nos, () =>
              q.selectFrom('order_options').selectAll().where('payment_order_no', 'in', nos).orderBy('payment_order_no').orderBy('network').orderBy('currency'),
            );
        const byOrder = new Map<string, OrderOptionRecord[]>();
        for (const r of optionRows) {
          const list = byOrder.get(r.payment_order_no);
          if (list) list.push(rowToOption(r));
          else byOrder.set(r.payment_order_no, [rowToOption(r)]);
        }
        for (const row of rows) {
          const order = rowToOrder(row, byOrder.get(row.payment_order_no) ?? []);
          if (opts.onlySelectedOption && row.selected_network !== null) order.onlySelectedOption = true;
          out.push(order);
        }
      }
      return out;
    },
    async findByRequest(merchantNo, requestNoKey) {
      return load(
        await q
          .selectFrom('orders')
          .selectAll()
          .where('merchant_no', '=', merchantNo)
          .where('request_no_key', '=', requestNoKey)
          .executeTakeFirst(),
      );
    },
    async saveState(o, expectedVersion) {
      const set = stateColumns(o);
      const r = await cache.run(q, 'orders.saveState', [...Object.values(set), o.paymentOrderNo, expectedVersion], () =>
        q.updateTable('orders').set(set).where('payment_order_no', '=', o.paymentOrderNo).where('version', '=', expectedVersion),
      );
      return Number(r.numAffectedRows ?? 0n) === 1;
    },
    async listOverdue(status, nowSeconds, limit, scannedNetworks) {
      let overdue = q.selectFrom('orders').select('payment_order_no').where('pay_status', '=', status).where('expire_time', '<=', nowSeconds);
      // A PAYING order with money still confirming waits (the lifecycle decides so): listing it
      // would let a full batch of such orders hold back every later one that can close.
      if (status === 'PAYING') overdue = overdue.whereRef('seen_amount', '=', 'final_amount');
      if (scannedNetworks.length > 0) overdue = overdue.where((eb) => eb.not(eb.exists(scanBehind(eb, scannedNetworks))));
      const rows = await overdue
        .orderBy('expire_time')
        .orderBy('payment_order_no')
        .limit(limit)
        .execute();
      return rows.map((r) => r.payment_order_no);
    },
    async awaitsScan(paymentOrderNo, scannedNetworks) {
      if (scannedNetworks.length === 0) return false;
      const row = await q
        .selectFrom('orders')
        .select('payment_order_no')
        .where('payment_order_no', '=', paymentOrderNo)
        .where((eb) => eb.exists(scanBehind(eb, scannedNetworks)))
        .executeTakeFirst();
      return row !== undefined;
    },
  };
}

/**
 * The deposit addresses of the order in the enclosing query (`orders`) on one of `networks` whose
 * scan has not caught up with a pass started at or after the order's deadline.
 */
function scanBehind(eb: ExpressionBuilder<Database, 'orders'>, networks: readonly string[]) {
  return eb
    .selectFrom('deposit_addresses as d')
    .leftJoin('chain_cursors as c', 'c.network', 'd.network')
    .select('d.network')
    .whereRef('d.payment_order_no', '=', 'orders.payment_order_no')
    .where('d.network', 'in', [...networks])
    .where((eb) => eb.or([eb('c.caught_up_at', 'is', null), eb('c.caught_up_at', '<', eb(eb.ref('orders.expire_time'), '*', 1000))]));
}

/**
 * A payment's chain_tx_hash on conflict: once known, a receipt's transaction stays (a fact built
 * without it changes nothing); '' (UNNAMED) withdraws it.
 */
const keptName = (eb: ExpressionBuilder<OnConflictDatabase<Database, 'payments'>, OnConflictTables<'payments'>>) =>
  eb
    .case()
    // A literal, not a parameter: the bulk statement's parameters are its rows' values (compiled once per chunk size).
    .when(eb.ref('excluded.chain_tx_hash'), '=', sql<string>`''`)
    .then(sql<string | null>`null`)
    .else(eb.fn.coalesce(eb.ref('excluded.chain_tx_hash'), eb.ref('payments.chain_tx_hash')))
    .end();

function paymentRepo(q: Q, cache: CompiledCache): PaymentRepo {
  return {
    async upsert(p) {
      const row = paymentToRow(p);
      await q
        .insertInto('payments')
        .values(row)
        .onConflict((oc) =>
          oc.columns(['network', 'tx_hash', 'log_index']).doUpdateSet({
            block_number: row.block_number,
            block_hash: row.block_hash,
            confirmations: row.confirmations,
            status: row.status,
            updated_at: row.updated_at,
            chain_tx_hash: keptName,
          }),
        )
        .execute();
    },
    async upsertMany(ps) {
      // One statement per chunk (14 parameters a row: far under every driver's limit), compiled
      // once per chunk size: a scan pass writes thousands of rows.
      for (let i = 0; i < ps.length; i += UPSERT_CHUNK) {
        const chunk = ps.slice(i, i + UPSERT_CHUNK);
        const params: unknown[] = [];
        for (const p of chunk) pushPaymentValues(params, p);
        await cache.run(q, `payments.upsert:${chunk.length}`, params, () =>
          q
            .insertInto('payments')
            .values(chunk.map(paymentToRow))
            .onConflict((oc) =>
              oc.columns(['network', 'tx_hash', 'log_index']).doUpdateSet((eb) => ({
                block_number: eb.ref('excluded.block_number'),
                block_hash: eb.ref('excluded.block_hash'),
                confirmations: eb.ref('excluded.confirmations'),
                status: eb.ref('excluded.status'),
                updated_at: eb.ref('excluded.updated_at'),
                chain_tx_hash: keptName(eb),
              })),
            ),
        );
      }
    },
    async refreshConfirmations(network, head, nowMs) {
      await cache.run(q, 'payments.refreshConfirmations', [head + 1, nowMs, network, 'SEEN', head, head + 1], () =>
        q
          .updateTable('payments')
          .set((eb) => ({ confirmations: eb(eb.val(head + 1), '-', eb.ref('block_number')), updated_at: nowMs }))
          .where('network', '=', network)
          .where('status', '=', 'SEEN')
          .where('block_number', '<=', head)
          // Rows already right (just written by this pass) are not rewritten.
          .where((eb) => eb('confirmations', '<>', eb(eb.val(head + 1), '-', eb.ref('block_number')))),
      );
    },
    async listUnfinal(network) {
      const { rows } = await cache.run(q, 'payments.listUnfinal', [network, 'SEEN'], () =>
        q.selectFrom('payments').selectAll().where('network', '=', network).where('status', '=', 'SEEN').orderBy('block_number'),
      );
      return rows.map(rowToPayment);
    },
    async listByAddresses(network, addresses) {
      const out: PaymentRecord[] = [];
      // Chunks keep the IN list under every driver's bound-parameter limit. A transfer to a
      // deposit address belongs to the address's order: found through the orders' index, so no
      // index by address has to be kept up on every transfer written.
      for (let i = 0; i < addresses.length; i += IN_CHUNK) {
        const chunk = addresses.slice(i, i + IN_CHUNK) as string[];
        const rows = await q
          .selectFrom('payments')
          .selectAll()
          .where('payment_order_no', 'in', (eb) => eb.selectFrom('deposit_addresses').select('payment_order_no').where('network', '=', network).where('address', 'in', chunk))
          .where('network', '=', network)
          .where('address', 'in', chunk)
          .orderBy('block_number')
          .orderBy('tx_hash')
          .execute();
        out.push(...rows.map(rowToPayment));
      }
      return out;
    },
    async listByOrders(paymentOrderNos) {
      const out: PaymentRecord[] = [];
      for (let i = 0; i < paymentOrderNos.length; i += IN_CHUNK) {
        const nos = paymentOrderNos.slice(i, i + IN_CHUNK) as string[];
        const { rows } = await cache.run(q, `payments.listByOrders:${nos.length}`, nos, () =>
          q.selectFrom('payments').selectAll().where('payment_order_no', 'in', nos).orderBy('payment_order_no').orderBy('block_number').orderBy('log_index'),
        );
        for (const r of rows) out.push(rowToPayment(r));
      }
      return out;
    },
    async listByOrder(paymentOrderNo) {
      const rows = await q
        .selectFrom('payments')
        .selectAll()
        .where('payment_order_no', '=', paymentOrderNo)
        .orderBy('block_number')
        .orderBy('log_index')
        .execute();
      return rows.map(rowToPayment);
    },
  };
}

function nonceRepo(q: Q, cache: CompiledCache): NonceRepo {
  return {
    async remember(appId, nonce, expiresAtMs, nowMs) {
      // A remembered nonce whose window has passed may be used again: it is revived, not a replay.
      const r = await cache.run(q, 'nonces.remember', [appId, nonce, expiresAtMs, expiresAtMs, nowMs], () =>
        q
          .insertInto('nonces')
          .values({ app_id: appId, nonce, expires_at: expiresAtMs })
          .onConflict((oc) =>
            oc
              .columns(['app_id', 'nonce'])
              .doUpdateSet({ expires_at: expiresAtMs })
              .where('nonces.expires_at', '<', nowMs),
          ),
      );
      return Number(r.numAffectedRows ?? 0n) > 0;
    },
    async prune(nowMs) {
      const r = await cache.run(q, 'nonces.prune', [nowMs], () => q.deleteFrom('nonces').where('expires_at', '<', nowMs));
      return Number(r.numAffectedRows ?? 0n);
    },
  };
}
