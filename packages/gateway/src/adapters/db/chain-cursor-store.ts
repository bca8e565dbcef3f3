// The scan cursor of each network, and its lease: one instance scans a network at a time (the
// lease is a compare-and-set on the row, ADR 0001), and a crashed scanner's lease runs out.
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { ChainCursor, ChainCursorRepo } from '../../app/ports.js';
import type { CompiledCache } from './compiled-cache.js';
import type { ChainCursorsTable, Database } from './schema.js';

type Q = Kysely<Database> | Transaction<Database>;

/** A chain_cursors row as the port reads it (PostgreSQL answers bigint columns as strings). */
export function rowToCursor(r: Selectable<ChainCursorsTable>): ChainCursor {
  return {
    network: r.network,
    nextBlock: r.next_block === null ? null : Number(r.next_block),
    scannedHash: r.scanned_hash,
    caughtUpAt: r.caught_up_at === null ? null : Number(r.caught_up_at),
    leaseOwner: r.lease_owner,
    leaseUntil: Number(r.lease_until),
  };
}

// Every statement of a scan pass is compiled once (CompiledCache): an idle gateway runs them for
// every network twice a second.
export function chainCursorRepo(q: Q, cache: CompiledCache): ChainCursorRepo {
  return {
    async lease(network, owner, nowMs, leaseUntil) {
      await cache.run(q, 'chainCursors.create', [network, null, null, null, null, 0, nowMs], () =>
        q
          .insertInto('chain_cursors')
          .values({ network, next_block: null, scanned_hash: null, caught_up_at: null, lease_owner: null, lease_until: 0, updated_at: nowMs })
          .onConflict((oc) => oc.column('network').doNothing()),
      );
      const { rows } = await cache.run(q, 'chainCursors.lease', [owner, leaseUntil, nowMs, network, owner, nowMs], () =>
        q
          .updateTable('chain_cursors')
          .set({ lease_owner: owner, lease_until: leaseUntil, updated_at: nowMs })
          .where('network', '=', network)
          .where((eb) => eb.or([eb('lease_owner', '=', owner), eb('lease_owner', 'is', null), eb('lease_until', '<', nowMs)]))
          .returningAll(),
      );
      const r = rows[0];
      return r ? rowToCursor(r) : null;
    },
    async advance(network, owner, nextBlock, scannedHash, caughtUpAt) {
      const set = caughtUpAt === null ? { next_block: nextBlock, scanned_hash: scannedHash } : { next_block: nextBlock, scanned_hash: scannedHash, caught_up_at: caughtUpAt };
      const r = await cache.run(q, `chainCursors.advance:${caughtUpAt === null}`, [...Object.values(set), network, owner], () =>
        q.updateTable('chain_cursors').set(set).where('network', '=', network).where('lease_owner', '=', owner),
      );
      return (r.numAffectedRows ?? 0n) > 0n;
    },
    async renew(network, owner, nowMs, leaseUntil) {
      const r = await cache.run(q, 'chainCursors.renew', [leaseUntil, nowMs, network, owner, nowMs], () =>
        q.updateTable('chain_cursors').set({ lease_until: leaseUntil, updated_at: nowMs }).where('network', '=', network).where('lease_owner', '=', owner).where('lease_until', '>=', nowMs),
      );
      return (r.numAffectedRows ?? 0n) > 0n;
    },
    async rewind(network, owner, nextBlock) {
      const r = await q
        .updateTable('chain_cursors')
        .set({ next_block: nextBlock, scanned_hash: null, caught_up_at: null })
        .where('network', '=', network)
        .where('lease_owner', '=', owner)
        .where('next_block', '>', nextBlock)
        .executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },
    async caughtUp(network, owner, atMs) {
      const r = await cache.run(q, 'chainCursors.caughtUp', [atMs, network, owner], () =>
        q.updateTable('chain_cursors').set({ caught_up_at: atMs }).where('network', '=', network).where('lease_owner', '=', owner),
      );
      return (r.numAffectedRows ?? 0n) > 0n;
    },
    async caughtUpTimes(networks) {
      const out = new Map<string, number | null>(networks.map((n) => [n, null]));
      if (networks.length === 0) return out;
      const rows = await q.selectFrom('chain_cursors').select(['network', 'caught_up_at']).where('network', 'in', [...networks]).execute();
      for (const r of rows) out.set(r.network, r.caught_up_at === null ? null : Number(r.caught_up_at));
      return out;
    },
    async release(network, owner, nowMs) {
      const r = await q.updateTable('chain_cursors').set({ lease_owner: null, lease_until: 0, updated_at: nowMs }).where('network', '=', network).where('lease_owner', '=', owner).executeTakeFirst();
      return (r.numUpdatedRows ?? 0n) > 0n;
    },
  };
}

/**
 * Forgets where the networks' chains were scanned to, and who held the scan: for `sparkpay dev`,
 * whose local chains start again from block 0 on every run (a cursor of the previous run's chain
 * would keep the watcher waiting for the new one to catch up, and a lease of a killed run would
 * hold it off until it ran out).
 */
export async function resetChainCursors(q: Q, networks: readonly string[], nowMs: number): Promise<void> {
  if (networks.length === 0) return;
  await q.updateTable('chain_cursors').set({ next_block: null, scanned_hash: null, caught_up_at: null, lease_owner: null, lease_until: 0, updated_at: nowMs }).where('network', 'in', [...networks]).execute();
}
