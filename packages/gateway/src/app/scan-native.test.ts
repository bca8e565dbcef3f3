// The naming of native-coin receipts by their transaction (scan-native.ts), on a chain played by
// a fake reader: which transaction may name a receipt, and when a name is withdrawn.
import { describe, expect, it } from 'vitest';
import type { ChainReader, ValueTransfer } from './ports.js';
import type { TransferFact } from './record-payment.js';
import type { DepositAddressRecord, PaymentRecord } from './records.js';
import type { ScanDeps } from './scan-chain.js';
import { NAME_CHECK_TRIES, scanNative } from './scan-native.js';

const ADDRESS = `0x${'aa'.repeat(20)}`;
const hashOf = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;
const T = `0x${'11'.repeat(32)}`;
const deposit: DepositAddressRecord = { paymentOrderNo: 'P1', network: '4', currency: 'POL', address: ADDRESS, token: null, amountBase: 10n, plan: '{}', createdAt: 0 };

/** One network's native scan against `chain`, the stored rows kept in `rows`. */
function world(chain: { balance: bigint; transfers: ValueTransfer[]; receipt: (hash: string) => Promise<{ block: { number: number; hash: string }; success: boolean } | null> }) {
  const rows: PaymentRecord[] = [];
  const reader = {
    balances: async (addresses: readonly string[]) => addresses.map(() => chain.balance),
    blockHash: async (n: number) => hashOf(n),
    valueTransfers: async (after: { number: number }, to: { number: number }) => chain.transfers.filter((t) => t.block > after.number && t.block <= to.number),
    transactionBlock: (hash: string) => chain.receipt(hash),
  } as unknown as ChainReader;
  const deps = {
    store: {
      depositAddresses: { listWatched: async () => [deposit], watchedAmong: async () => [deposit] },
      payments: { listByAddresses: async () => rows.map((r) => ({ ...r })) },
      settlements: { outflowsFrom: async () => ({ distributed: new Map(), settling: new Set() }) },
    },
    reader,
    network: { id: '4', chain: { confirmations: 3 } },
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
  } as unknown as ScanDeps;
  /** A pass at head `n`: its facts stored as the payment port would (upsert by key, a name kept unless withdrawn). */
  const pass = async (n: number) => {
    const facts: TransferFact[] = [];
    const unfinal = rows.filter((r) => r.status === 'SEEN');
    const r = await scanNative(deps, { number: n, hash: hashOf(n) }, { nowMs: n * 1000, watchedAt: n, coversUntil: n * 1000 }, unfinal, (f) => facts.push(f));
    for (const f of facts) {
      const i = rows.findIndex((x) => x.txHash === f.txHash);
      const name = f.chainTxHash === '' ? null : (f.chainTxHash ?? (i >= 0 ? rows[i]!.chainTxHash : null));
      const row = { ...f, chainTxHash: name ?? null, createdAt: 0, updatedAt: 0 };
      if (i >= 0) rows[i] = row;
      else rows.push(row);
    }
    r.commit();
    return r;
  };
  /** A pass at 110, then T (block 119) pays 1 and a pass at 120 sees it: one receipt named T. */
  const paidByT = async () => {
    await pass(110);
    chain.balance = 1n;
    chain.transfers = [{ hash: T, to: ADDRESS, value: 1n, block: 119 }];
    await pass(120);
  };
  return { deps, rows, pass, paidByT };
}

describe('naming a native-coin receipt by its transaction', () => {
  it('never by a transaction in a block no later than a receipt counted already, even when the window reaches back to it', async () => {
    const chain = { balance: 0n, transfers: [] as ValueTransfer[], receipt: async () => null };
    const w = world(chain);
    await w.paidByT();
    expect(w.rows.map((r) => [r.amount, r.chainTxHash])).toEqual([[1n, T]]);
    // The window's start is put back to 110 (another instance scanned since, say): T is in it again.
    w.deps.nativeMemory!.through = { number: 110, hash: hashOf(110) };
    // 1 more arrives without a transaction (a contract's internal transfer), exactly T's value.
    chain.balance = 2n;
    await w.pass(125);
    expect(w.rows.map((r) => [r.amount, r.txHash, r.chainTxHash])).toEqual([
      [1n, `balance:${ADDRESS}:120`, T],
      [1n, `balance:${ADDRESS}:125`, null],
    ]);
  });

  it('moves the window\'s start only forward: a complete pass at a lower head (a lagging endpoint) leaves it', async () => {
    const chain = { balance: 0n, transfers: [] as ValueTransfer[], receipt: async () => null };
    const w = world(chain);
    await w.pass(120);
    expect(w.deps.nativeMemory!.through).toEqual({ number: 120, hash: hashOf(120) });
    const lagging = await w.pass(115);
    expect(lagging.complete).toBe(true);
    expect(w.deps.nativeMemory!.through).toEqual({ number: 120, hash: hashOf(120) });
  });

  it(`withdraws a name at finality only after its check failed in ${NAME_CHECK_TRIES} passes in a row (no receipt, or no answer); a check that succeeds meanwhile keeps it`, async () => {
    const answers: ('none' | 'throw' | 'ok')[] = [];
    const chain = {
      balance: 0n,
      transfers: [] as ValueTransfer[],
      receipt: async () => {
        const a = answers.shift() ?? 'ok';
        if (a === 'throw') throw new Error('timeout');
        return a === 'none' ? null : { block: { number: 119, hash: hashOf(119) }, success: true };
      },
    };
    const w = world(chain);
    await w.paidByT();
    // Final by balance from head 122 on (3 confirmations): a missing receipt, then no answer, then the receipt.
    answers.push('none', 'throw', 'ok');
    await w.pass(122);
    expect(w.rows[0]).toMatchObject({ status: 'SEEN', chainTxHash: T, confirmations: 3 });
    await w.pass(123);
    expect(w.rows[0]).toMatchObject({ status: 'SEEN', chainTxHash: T, confirmations: 4 });
    await w.pass(124);
    expect(w.rows[0]).toMatchObject({ status: 'FINAL', chainTxHash: T });

    // Another receipt whose transaction never has a receipt: withdrawn at the third failing pass.
    chain.balance = 2n;
    const U = `0x${'22'.repeat(32)}`;
    chain.transfers = [{ hash: U, to: ADDRESS, value: 1n, block: 129 }];
    await w.pass(130);
    expect(w.rows[1]).toMatchObject({ chainTxHash: U, status: 'SEEN' });
    answers.push('none', 'none', 'none');
    for (let n = 132; n < 132 + NAME_CHECK_TRIES - 1; n += 1) {
      await w.pass(n);
      expect(w.rows[1]).toMatchObject({ chainTxHash: U, status: 'SEEN' });
    }
    await w.pass(132 + NAME_CHECK_TRIES - 1);
    expect(w.rows[1]).toMatchObject({ chainTxHash: null, status: 'FINAL' });
  });

  it('forgets a failed check once its receipt is no longer waiting (reverted): the suspects do not grow with the chain\'s reorganisations', async () => {
    const chain = { balance: 0n, transfers: [] as ValueTransfer[], receipt: async () => null };
    const w = world(chain);
    await w.paidByT();
    await w.pass(122);
    expect(w.rows[0]).toMatchObject({ status: 'SEEN', chainTxHash: T });
    expect([...w.deps.nativeMemory!.suspects!.keys()]).toEqual([w.rows[0]!.txHash]);
    // The money leaves the canonical chain before the next check: the receipt is reverted.
    chain.balance = 0n;
    await w.pass(123);
    expect(w.rows[0]).toMatchObject({ status: 'REVERTED' });
    expect(w.deps.nativeMemory!.suspects!.size).toBe(0);
  });

  it('forgets a failed check once another instance has settled its receipt (the row is no longer SEEN)', async () => {
    const chain = { balance: 0n, transfers: [] as ValueTransfer[], receipt: async () => null };
    const w = world(chain);
    await w.paidByT();
    await w.pass(122);
    expect(w.deps.nativeMemory!.suspects!.size).toBe(1);
    // Another instance held the scan lease for a while and made the receipt final.
    w.rows[0] = { ...w.rows[0]!, status: 'FINAL' };
    await w.pass(130);
    expect(w.deps.nativeMemory!.suspects!.size).toBe(0);
  });

  it('withdraws a name whose transaction failed, or was mined beyond the final depth, or in a block no longer canonical', async () => {
    for (const receipt of [
      { block: { number: 119, hash: hashOf(119) }, success: false },
      { block: { number: 123, hash: hashOf(123) }, success: true },
      { block: { number: 119, hash: `0x${'ff'.repeat(32)}` }, success: true },
    ]) {
      const chain = { balance: 0n, transfers: [] as ValueTransfer[], receipt: async () => receipt };
      const w = world(chain);
      await w.paidByT();
      for (let i = 0; i < NAME_CHECK_TRIES; i += 1) await w.pass(122 + i);
      expect(w.rows[0], JSON.stringify(receipt)).toMatchObject({ status: 'FINAL', chainTxHash: null });
    }
  });
});
