// Settlements, the relayer's transactions, payouts and named leases, identical on SQLite and
// PostgreSQL. The unique (network, relayer, nonce) index is what keeps two senders from ever
// using one nonce: the second insert loses and its sender backs off.
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { NetworkId } from '../../domain/catalogue.js';
import type { CompiledCache } from './compiled-cache.js';
import type { LeaseRepo, SettlementRepo } from '../../app/ports.js';
import type { SettlementRecord, SettlementStatus, SettlementTxRecord, SettlementTxStatus } from '../../app/records.js';
import { isUniqueViolation } from './database.js';
import type { Database, SettlementsTable, SettlementTxsTable } from './schema.js';

type Q = Kysely<Database> | Transaction<Database>;

const num = (v: number | string | null): number | null => (v === null ? null : Number(v));

function rowToSettlement(r: Selectable<SettlementsTable>): SettlementRecord {
  return {
    paymentOrderNo: r.payment_order_no,
    network: r.network as NetworkId,
    currency: r.currency,
    address: r.address,
    status: r.status as SettlementStatus,
    txId: r.tx_id,
    txHash: r.tx_hash,
    distributed: r.distributed === null ? null : BigInt(r.distributed),
    attempts: Number(r.attempts),
    lastError: r.last_error,
    nextAttemptAt: Number(r.next_attempt_at),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    settledAt: num(r.settled_at),
    revertedTx: r.reverted_tx,
  };
}

function rowToTx(r: Selectable<SettlementTxsTable>): SettlementTxRecord {
  return {
    id: r.id,
    network: r.network as NetworkId,
    relayer: r.relayer,
    nonce: num(r.nonce),
    status: r.status as SettlementTxStatus,
    txHash: r.tx_hash,
    rawTx: r.raw_tx,
    hashes: JSON.parse(r.hashes) as string[],
    maxFeePerGas: BigInt(r.max_fee_per_gas),
    maxPriorityFeePerGas: BigInt(r.max_priority_fee_per_gas),
    gasLimit: BigInt(r.gas_limit),
    orderCount: Number(r.order_count),
    blockNumber: num(r.block_number),
    blockHash: r.block_hash,
    minedHash: r.mined_hash,
    gasUsed: r.gas_used === null ? null : BigInt(r.gas_used),
    createdAt: Number(r.created_at),
    sentAt: num(r.sent_at),
    updatedAt: Number(r.updated_at),
  };
}

function txToRow(t: SettlementTxRecord): SettlementTxsTable {
  return {
    id: t.id,
    network: t.network,
    relayer: t.relayer.toLowerCase(),
    nonce: t.nonce,
    status: t.status,
    tx_hash: t.txHash,
    raw_tx: t.rawTx,
    hashes: JSON.stringify(t.hashes),
    max_fee_per_gas: t.maxFeePerGas.toString(),
    max_priority_fee_per_gas: t.maxPriorityFeePerGas.toString(),
    gas_limit: t.gasLimit.toString(),
    order_count: t.orderCount,
    block_number: t.blockNumber,
    block_hash: t.blockHash,
    mined_hash: t.minedHash,
    gas_used: t.gasUsed === null ? null : t.gasUsed.toString(),
    created_at: t.createdAt,
    sent_at: t.sentAt,
    updated_at: t.updatedAt,
  };
}

export function settlementRepo(q: Q, cache: CompiledCache): SettlementRepo {
  const get = async (paymentOrderNo: string) => {
    const r = await q.selectFrom('settlements').selectAll().where('payment_order_no', '=', paymentOrderNo).executeTakeFirst();
    return r ? rowToSettlement(r) : null;
  };
  return {
    get,
    async insertDue(s, nowMs) {
      const r = await q
        .insertInto('settlements')
        .values({
          payment_order_no: s.paymentOrderNo,
          network: s.network,
          currency: s.currency,
          address: s.address.toLowerCase(),
          status: 'DUE',
          tx_id: null,
          tx_hash: null,
          distributed: null,
          attempts: 0,
          last_error: null,
          next_attempt_at: nowMs,
          created_at: nowMs,
          updated_at: nowMs,
          settled_at: null,
          reverted_tx: null,
        })
        .onConflict((oc) => oc.column('payment_order_no').doNothing())
        .executeTakeFirst();
      return (r.numInsertedOrUpdatedRows ?? 0n) > 0n;
    },
    async dropDue(paymentOrderNo) {
      const r = await q.deleteFrom('settlements').where('payment_order_no', '=', paymentOrderNo).where('status', '=', 'DUE').executeTakeFirst();
      return r.numDeletedRows > 0n;
    },
    async dueNow(paymentOrderNo, nowMs) {
      const r = await q
        .updateTable('settlements')
        .set({ next_attempt_at: nowMs, updated_at: nowMs })
        .where('payment_order_no', '=', paymentOrderNo)
        .where('status', '=', 'DUE')
        .where('attempts', '>', 0)
        .where('next_attempt_at', '>', nowMs)
        .executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },
    async listDue(network, nowMs, limit) {
      const { rows } = await cache.run(q, 'settlements.listDue', [network, 'DUE', nowMs, limit], () =>
        q
          .selectFrom('settlements')
          .selectAll()
          .where('network', '=', network)
          .where('status', '=', 'DUE')
          .where('next_attempt_at', '<=', nowMs)
          .orderBy('next_attempt_at')
          .orderBy('payment_order_no')
          .limit(limit),
      );
      return rows.map(rowToSettlement);
    },
    async listByTx(txId) {
      const rows = await q.selectFrom('settlements').selectAll().where('tx_id', '=', txId).orderBy('payment_order_no').execute();
      return rows.map(rowToSettlement);
    },
    async update(s, expected) {
      let query = q
        .updateTable('settlements')
        .set({
          status: s.status,
          tx_id: s.txId,
          tx_hash: s.txHash,
          distributed: s.distributed === null ? null : s.distributed.toString(),
          attempts: s.attempts,
          // Often an RPC node's text: PostgreSQL refuses U+0000 in text (the whole update, every pass).
          last_error: s.lastError === null ? null : s.lastError.replaceAll('\u0000', '\ufffd'),
          next_attempt_at: s.nextAttemptAt,
          updated_at: s.updatedAt,
          settled_at: s.settledAt,
          reverted_tx: s.revertedTx,
        })
        .where('payment_order_no', '=', s.paymentOrderNo);
      if (expected !== undefined) query = query.where('status', '=', expected);
      const r = await query.executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },
    async setPayouts(paymentOrderNo, payouts) {
      await q.deleteFrom('settlement_payouts').where('payment_order_no', '=', paymentOrderNo).execute();
      if (payouts.length === 0) return;
      await q
        .insertInto('settlement_payouts')
        .values(payouts.map((p) => ({ payment_order_no: paymentOrderNo, idx: p.idx, role: p.role, address: p.address, amount: p.amount.toString() })))
        .execute();
    },
    async view(paymentOrderNo) {
      const settlement = await get(paymentOrderNo);
      if (!settlement) return null;
      const rows = await q.selectFrom('settlement_payouts').selectAll().where('payment_order_no', '=', paymentOrderNo).orderBy('idx').execute();
      return {
        settlement,
        payouts: rows.map((r) => ({ paymentOrderNo: r.payment_order_no, idx: Number(r.idx), role: r.role, address: r.address, amount: BigInt(r.amount) })),
      };
    },
    async insertTx(t) {
      try {
        await q.insertInto('settlement_txs').values(txToRow(t)).execute();
        return true;
      } catch (err) {
        if (isUniqueViolation(err)) return false;
        throw err;
      }
    },
    async updateTx(t) {
      const { id, ...rest } = txToRow(t);
      await q.updateTable('settlement_txs').set(rest).where('id', '=', id).execute();
    },
    async getTx(id) {
      const r = await q.selectFrom('settlement_txs').selectAll().where('id', '=', id).executeTakeFirst();
      return r ? rowToTx(r) : null;
    },
    async listOpenTxs(network) {
      const { rows } = await cache.run(q, 'settlements.listOpenTxs', [network, 'SIGNED', 'SENT'], () =>
        q.selectFrom('settlement_txs').selectAll().where('network', '=', network).where('status', 'in', ['SIGNED', 'SENT']).orderBy('nonce').orderBy('created_at'),
      );
      return rows.map(rowToTx);
    },
    async outflowsFrom(network, addresses) {
      const distributed = new Map<string, bigint>();
      const settling = new Set<string>();
      for (let i = 0; i < addresses.length; i += 500) {
        const rows = await q
          .selectFrom('settlements')
          .select(['address', 'status', 'distributed'])
          .where('network', '=', network)
          .where('status', 'in', ['SENT', 'SETTLED'])
          .where('address', 'in', addresses.slice(i, i + 500) as string[])
          .execute();
        for (const r of rows) {
          if (r.status === 'SENT') settling.add(r.address);
          else distributed.set(r.address, (distributed.get(r.address) ?? 0n) + BigInt(r.distributed ?? '0'));
        }
      }
      return { distributed, settling };
    },
    async releaseNonce(network, relayer, nonce) {
      const r = await q
        .updateTable('settlement_txs')
        .set({ nonce: null })
        .where('network', '=', network)
        .where('relayer', '=', relayer.toLowerCase())
        .where('nonce', '=', nonce)
        .where('status', 'in', ['REVERTED', 'DROPPED'])
        .executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },
    async listSettledButPaid(network, limit) {
      const { rows } = await cache.run(q, 'settlements.listSettledButPaid', [network, 'SETTLED', 'PAID', limit], () =>
        q
          .selectFrom('settlements as s')
          .innerJoin('orders as o', 'o.payment_order_no', 's.payment_order_no')
          .selectAll('s')
          .where('s.network', '=', network)
          .where('s.status', '=', 'SETTLED')
          .where('o.pay_status', '=', 'PAID')
          .limit(limit),
      );
      return rows.map(rowToSettlement);
    },
    async backlog() {
      const rows = await q
        .selectFrom('settlements')
        .select((eb) => [
          'network',
          'status',
          eb.fn.countAll<number | string>().as('n'),
          eb.fn.sum<number | string | null>(eb.case().when('attempts', '>', 0).then(1).else(0).end()).as('deferred'),
        ])
        .where('status', 'in', ['DUE', 'SENT'])
        .groupBy(['network', 'status'])
        .execute();
      return rows.map((r) => ({ network: r.network, status: r.status as 'DUE' | 'SENT', count: Number(r.n), deferred: r.status === 'DUE' ? Number(r.deferred ?? 0) : 0 }));
    },
    async dropOpen(networks, nowMs) {
      if (networks.length === 0) return;
      await q
        .updateTable('settlements')
        .set({ status: 'DUE', tx_id: null, tx_hash: null, next_attempt_at: nowMs, updated_at: nowMs })
        .where('network', 'in', [...networks])
        .where('status', '=', 'SENT')
        .execute();
      await q.updateTable('settlement_txs').set({ status: 'DROPPED', updated_at: nowMs }).where('network', 'in', [...networks]).where('status', 'in', ['SIGNED', 'SENT']).execute();
      // The chains start again from nonce 0: no nonce of theirs is taken any more.
      await q.updateTable('settlement_txs').set({ nonce: null }).where('network', 'in', [...networks]).execute();
    },
  };
}

export function leaseRepo(q: Q, cache: CompiledCache): LeaseRepo {
  return {
    async acquire(name, owner, nowMs, leaseUntil) {
      // Compiled once: the settlement worker takes its lease on every network twice a second.
      await cache.run(q, 'leases.create', [name, null, 0, nowMs], () =>
        q.insertInto('leases').values({ name, owner: null, lease_until: 0, updated_at: nowMs }).onConflict((oc) => oc.column('name').doNothing()),
      );
      const r = await cache.run(q, 'leases.acquire', [owner, leaseUntil, nowMs, name, owner, nowMs], () =>
        q
          .updateTable('leases')
          .set({ owner, lease_until: leaseUntil, updated_at: nowMs })
          .where('name', '=', name)
          .where((eb) => eb.or([eb('owner', '=', owner), eb('owner', 'is', null), eb('lease_until', '<', nowMs)])),
      );
      return (r.numAffectedRows ?? 0n) > 0n;
    },
    async renew(name, owner, nowMs, leaseUntil) {
      const r = await cache.run(q, 'leases.renew', [leaseUntil, nowMs, name, owner, nowMs], () =>
        q.updateTable('leases').set({ lease_until: leaseUntil, updated_at: nowMs }).where('name', '=', name).where('owner', '=', owner).where('lease_until', '>=', nowMs),
      );
      return (r.numAffectedRows ?? 0n) > 0n;
    },
    async release(name, owner) {
      const r = await q.updateTable('leases').set({ owner: null, lease_until: 0 }).where('name', '=', name).where('owner', '=', owner).executeTakeFirst();
      return (r.numUpdatedRows ?? 0n) > 0n;
    },
  };
}
