// The server's short-lived cache of merchants and applications (adapters/db/directory-cache.ts):
// a change through the same store is seen at once, a change by someone else (another process,
// here a direct write) within the time to live, and concurrent reads share one database read.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../src/adapters/db/database.js';
import { withDirectoryCache } from '../src/adapters/db/directory-cache.js';
import { createStore } from '../src/adapters/db/store.js';
import type { MerchantRecord, Store } from '../src/app/ports.js';
import { DATABASE_KINDS } from './databases.js';
import { createTestDatabase, type TestDatabase } from './databases.js';
import { ManualClock, WALLET } from './harness.js';

let n = 0;
const merchant = (): MerchantRecord => {
  n += 1;
  return { merchantNo: `M${String(Date.now()).slice(-8)}${String(n).padStart(4, '0')}`, name: 'Cached', status: 'ACTIVE', onlinePayment: true, wallets: { '4': WALLET }, caAddresses: {}, createdAt: 1 };
};

describe.each(DATABASE_KINDS)('directory cache on %s', (kind) => {
  let tdb: TestDatabase;
  let db: Db;
  let raw: Store;
  let store: Store;
  let reads: string[];
  const clock = new ManualClock();
  beforeAll(async () => {
    tdb = await createTestDatabase(kind);
    db = await openDatabase({ url: tdb.url });
    const plain = createStore(db);
    reads = [];
    // Counts the reads that reach the database.
    raw = {
      ...plain,
      merchants: { ...plain.merchants, get: (no) => (reads.push(`m:${no}`), plain.merchants.get(no)) },
      applications: { ...plain.applications, get: (id) => (reads.push(`a:${id}`), plain.applications.get(id)) },
    };
    store = withDirectoryCache(raw, clock, { ttlMs: 1_000, maxEntries: 50 });
  });
  afterAll(async () => {
    await db?.close();
    await tdb?.drop();
  });

  const setStatusBehindItsBack = (no: string, status: string) => db.kysely.updateTable('merchants').set({ status }).where('merchant_no', '=', no).execute();

  it('answers repeated reads from memory until the time to live has passed; then reads again', async () => {
    const m = merchant();
    await store.merchants.insert(m);
    reads.length = 0;
    expect((await store.merchants.get(m.merchantNo))?.status).toBe('ACTIVE');
    expect((await store.merchants.get(m.merchantNo))?.status).toBe('ACTIVE');
    expect(reads).toEqual([`m:${m.merchantNo}`]);
    // Another process deactivates the merchant: seen once the second is up, not before.
    await setStatusBehindItsBack(m.merchantNo, 'INACTIVE');
    clock.advance(0.999);
    expect((await store.merchants.get(m.merchantNo))?.status).toBe('ACTIVE');
    clock.advance(0.002);
    expect((await store.merchants.get(m.merchantNo))?.status).toBe('INACTIVE');
    expect(reads).toHaveLength(2);
  });

  it('sees a change made through the same store at once, in a transaction or not', async () => {
    const m = merchant();
    await store.merchants.insert(m);
    expect((await store.merchants.get(m.merchantNo))?.onlinePayment).toBe(true);
    await store.merchants.update(m.merchantNo, { onlinePayment: false }, 2);
    expect((await store.merchants.get(m.merchantNo))?.onlinePayment).toBe(false);
    await store.transaction(async (tx) => {
      await tx.merchants.update(m.merchantNo, { status: 'INACTIVE' }, 3);
      // Read outside the transaction before it commits: the old row, which must not be kept.
      if (kind === 'postgres') expect((await store.merchants.get(m.merchantNo))?.status).toBe('ACTIVE');
    });
    expect((await store.merchants.get(m.merchantNo))?.status).toBe('INACTIVE');
  });

  it('keeps "no such application" too, and forgets it when this store creates it', async () => {
    const m = merchant();
    await store.merchants.insert(m);
    const appId = `9${String(Date.now()).slice(-9)}${n}`;
    reads.length = 0;
    expect(await store.applications.get(appId)).toBeNull();
    expect(await store.applications.get(appId)).toBeNull();
    expect(reads).toEqual([`a:${appId}`]);
    await store.applications.insert({ appId, merchantNo: m.merchantNo, merchantPublicKeyPem: 'PEM', status: 'ACTIVE', createdAt: 1 });
    expect(await store.applications.get(appId)).toMatchObject({ appId, status: 'ACTIVE' });
    // A merchant key replaced through this store is seen at once, in a transaction or not.
    expect(await store.applications.setMerchantKey(appId, 'PEM2', 2)).toBe(true);
    expect(await store.applications.get(appId)).toMatchObject({ merchantPublicKeyPem: 'PEM2' });
    await store.transaction((tx) => tx.applications.setMerchantKey(appId, 'PEM3', 3));
    expect(await store.applications.get(appId)).toMatchObject({ merchantPublicKeyPem: 'PEM3' });
    // So is an application disabled or enabled through it (sparkpay app disable, or a use case of this process).
    expect(await store.applications.setStatus(appId, 'DISABLED', 4)).toBe(true);
    expect(await store.applications.get(appId)).toMatchObject({ status: 'DISABLED' });
    await store.transaction((tx) => tx.applications.setStatus(appId, 'ACTIVE', 5));
    expect(await store.applications.get(appId)).toMatchObject({ status: 'ACTIVE' });
  });

  it('shares one database read among concurrent reads of a key, and keeps no failed read', async () => {
    const m = merchant();
    await store.merchants.insert(m);
    reads.length = 0;
    const all = await Promise.all(Array.from({ length: 10 }, () => store.merchants.get(m.merchantNo)));
    expect(all.every((x) => x?.merchantNo === m.merchantNo)).toBe(true);
    expect(reads).toHaveLength(1);

    let fail = true;
    const flaky = withDirectoryCache({ ...raw, merchants: { ...raw.merchants, get: async (no) => (fail ? Promise.reject(new Error('database gone')) : raw.merchants.get(no)) } }, clock);
    await expect(flaky.merchants.get(m.merchantNo)).rejects.toThrow('database gone');
    fail = false;
    expect((await flaky.merchants.get(m.merchantNo))?.merchantNo).toBe(m.merchantNo);
  });

  it('holds a bounded number of entries', async () => {
    clock.advance(2);
    reads.length = 0;
    for (let i = 0; i < 120; i += 1) await store.applications.get(`unknown-${i}`);
    // Still answers correctly after starting over, and reads again what it let go.
    expect(await store.applications.get('unknown-0')).toBeNull();
    expect(reads.filter((r) => r === 'a:unknown-0')).toHaveLength(2);
  });
});
