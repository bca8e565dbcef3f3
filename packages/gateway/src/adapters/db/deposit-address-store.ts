// Deposit addresses, identical on SQLite and PostgreSQL. A concurrent second insert of the same
// (order, network, currency) loses on the primary key and reads the winner's row, so a pair
// always answers the same address.
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { NetworkId } from '../../domain/catalogue.js';
import type { DepositAddressRepo } from '../../app/ports.js';
import type { DepositAddressRecord } from '../../app/records.js';
import type { CompiledCache } from './compiled-cache.js';
import type { Database, DepositAddressesTable } from './schema.js';

type Q = Kysely<Database> | Transaction<Database>;

const WATCHED_AMONG_CHUNK = 500;
/** Orders whose deposit addresses are watched whatever their watch period. */
const WATCHED_STATUSES = ['PENDING', 'PAYING', 'PAID'] as const;
/** What a scan needs of a watched address: who is paid where (the plan JSON stays in the database). */
const WATCHED_COLUMNS = ['d.payment_order_no', 'd.network', 'd.currency', 'd.address', 'd.token', 'd.amount_base', 'd.created_at'] as const;

function rowToDeposit(r: Selectable<DepositAddressesTable>): DepositAddressRecord {
  return {
    paymentOrderNo: r.payment_order_no,
    network: r.network as NetworkId,
    currency: r.currency,
    address: r.address,
    token: r.token,
    amountBase: BigInt(r.amount_base),
    plan: r.plan,
    createdAt: Number(r.created_at),
  };
}

export function depositAddressRepo(q: Q, cache: CompiledCache): DepositAddressRepo {
  /** The deposit addresses on `network` of orders still open, or closed less than the watch period ago. */
  const watched = (network: string, nowSeconds: number) =>
    q
      .selectFrom('deposit_addresses as d')
      .innerJoin('orders as o', 'o.payment_order_no', 'd.payment_order_no')
      .where('d.network', '=', network)
      .where((eb) => eb.or([eb('o.pay_status', 'in', [...WATCHED_STATUSES]), eb('o.watch_until', '>=', nowSeconds)]));
  const get = async (paymentOrderNo: string, network: string, currency: string) => {
    const r = await q
      .selectFrom('deposit_addresses')
      .selectAll()
      .where('payment_order_no', '=', paymentOrderNo)
      .where('network', '=', network)
      .where('currency', '=', currency)
      .executeTakeFirst();
    return r ? rowToDeposit(r) : null;
  };
  return {
    get,
    async insertOrGet(d) {
      await q
        .insertInto('deposit_addresses')
        .values({
          payment_order_no: d.paymentOrderNo,
          network: d.network,
          currency: d.currency,
          address: d.address.toLowerCase(),
          token: d.token,
          amount_base: d.amountBase.toString(),
          plan: d.plan,
          created_at: d.createdAt,
        })
        .onConflict((oc) => oc.columns(['payment_order_no', 'network', 'currency']).doNothing())
        .execute();
      const stored = await get(d.paymentOrderNo, d.network, d.currency);
      if (!stored) throw new Error('deposit address vanished after insert');
      return stored;
    },
    async oldestWatched(network, nowSeconds) {
      const r = await watched(network, nowSeconds)
        .select((eb) => eb.fn.min('d.created_at').as('oldest'))
        .executeTakeFirst();
      return r?.oldest == null ? null : Number(r.oldest);
    },
    async listWatched(network, nowSeconds, page, nativeOnly) {
      // The plan JSON stays in the database: a scan needs only who is paid where, and with many
      // open orders the plans would dominate the watcher's memory.
      const build = () => {
        let query = watched(network, nowSeconds).select(WATCHED_COLUMNS);
        if (nativeOnly) query = query.where('d.token', 'is', null);
        if (page) {
          // Keyset paging on the (network, address) index; an address belongs to one plan, so to one row.
          if (page.after !== null) query = query.where('d.address', '>', page.after);
          query = query.orderBy('d.address').orderBy('d.payment_order_no').orderBy('d.currency').limit(page.limit);
        }
        return query;
      };
      // Compiled once per shape: a scan pass lists them on every network twice a second.
      const params: unknown[] = [network, ...WATCHED_STATUSES, nowSeconds];
      if (page && page.after !== null) params.push(page.after);
      if (page) params.push(page.limit);
      const { rows } = await cache.run(q, `depositAddresses.listWatched:${nativeOnly === true}:${page ? page.after !== null : 'all'}`, params, build);
      return rows.map((r) => rowToDeposit({ ...r, plan: '' }));
    },
    async watchedAmong(network, nowSeconds, addresses) {
      const out: DepositAddressRecord[] = [];
      // Chunks keep the IN list under every driver's bound-parameter limit; the (network, address) index finds each.
      for (let i = 0; i < addresses.length; i += WATCHED_AMONG_CHUNK) {
        const chunk = addresses.slice(i, i + WATCHED_AMONG_CHUNK) as string[];
        const rows = await watched(network, nowSeconds)
          .select(WATCHED_COLUMNS)
          .where('d.address', 'in', chunk)
          .execute();
        for (const r of rows) out.push(rowToDeposit({ ...r, plan: '' }));
      }
      return out;
    },
    async findByAddress(network, address) {
      const rows = await q.selectFrom('deposit_addresses').selectAll().where('network', '=', network).where('address', '=', address.toLowerCase()).execute();
      return rows.map(rowToDeposit);
    },
  };
}
