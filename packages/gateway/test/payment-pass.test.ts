// A scan pass's transfers applied in bulk (PaymentFacts.passObserved: a few hundred orders per
// transaction, read and written in a handful of statements) must decide every order exactly as
// the one-order path (transfersObserved) does, on both databases.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noMetrics, type Metrics, type StoreTx } from '../src/app/ports.js';
import { LeaseLostError, paymentFacts, PASS_ORDERS_PER_TRANSACTION, type TransferFact } from '../src/app/record-payment.js';
import { DATABASE_KINDS } from './databases.js';
import { api, deploymentWithFactory, orderBody, startTestGateway, WALLET, type TestGateway } from './harness.js';

const NOTIFY_URL = 'https://merchant.example/sparkpay/notify';
const UNKNOWN_TOKEN = '0x00000000000000000000000000000000000000aa';

let tx = 0;
function transfer(paymentOrderNo: string, amount: bigint, over: Partial<TransferFact> = {}): TransferFact {
  tx += 1;
  return {
    paymentOrderNo,
    network: '4',
    currency: 'USDT',
    txHash: `0x${tx.toString(16).padStart(64, 'b')}`,
    logIndex: tx % 7,
    blockNumber: 5000 + tx,
    blockHash: `0x${tx.toString(16).padStart(64, 'c')}`,
    address: WALLET.toLowerCase(),
    amount,
    confirmations: 64,
    status: 'FINAL',
    ...over,
  };
}

/** The transfers of scenario `k` (10.50 USDT due): what the order should become is the per-order path's answer. */
function scenario(k: number, no: string): TransferFact[] {
  switch (k % 7) {
    case 0: // exact, final
      return [transfer(no, 10_500_000n)];
    case 1: // two transfers complete it in one pass
      return [transfer(no, 5_000_000n), transfer(no, 5_500_000n)];
    case 2: // seen, not final
      return [transfer(no, 10_500_000n, { status: 'SEEN', confirmations: 3 })];
    case 3: // short, final
      return [transfer(no, 4_000_000n)];
    case 4: // over, final
      return [transfer(no, 12_000_000n)];
    case 5: // a token the order does not offer: recorded, not counted
      return [transfer(no, 10_500_000n, { currency: UNKNOWN_TOKEN })];
    default: // one final, one still confirming
      return [transfer(no, 6_000_000n), transfer(no, 4_500_000n, { status: 'SEEN', confirmations: 10 })];
  }
}

describe.each(DATABASE_KINDS)('a scan pass applied in bulk on %s', (kind) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ kind, config: { deployment: deploymentWithFactory(['4']) } });
  });
  afterAll(async () => {
    await t?.close();
  });

  /** `n` orders; the payer of every second one (even index) selected Polygon USDT on the cashier, the others' skipped it. */
  async function newOrders(n: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i += 1) {
      const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(t.merchant, t.clock, { notify_url: NOTIFY_URL }), merchant: t.merchant, clock: t.clock });
      expect(res.json.code).toBe(0);
      const no = String(res.json.data!.payment_order_no);
      if (i % 2 === 0) {
        const token = new URL(String(res.json.data!.cashier_url)).searchParams.get('t')!;
        const chosen = await fetch(`${t.baseUrl}/cashier/api/orders/${no}/select?t=${encodeURIComponent(token)}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ network: '4', currency: 'USDT' }) });
        expect(chosen.status).toBe(200);
      }
      out.push(no);
    }
    return out;
  }

  /** The payment port over the gateway's store, its transactions seen through `change` (a stand-in for another writer or a failure). */
  const factsWith = (opts: { change?: (tx: StoreTx) => StoreTx; metrics?: Metrics } = {}) => {
    const change = opts.change ?? ((tx: StoreTx) => tx);
    const store = { ...t.gateway.store, transaction: <T>(fn: (tx: StoreTx) => Promise<T>) => t.gateway.store.transaction((tx) => fn(change(tx))) };
    return paymentFacts({ store, clock: t.gateway.clock, ids: t.gateway.ids, metrics: opts.metrics });
  };

  /** Metrics that count payments observed (by network/status) and status changes (by status). */
  const counting = () => {
    const counts: Record<string, number> = {};
    const add = (k: string, n = 1) => (counts[k] = (counts[k] ?? 0) + n);
    const metrics: Metrics = { ...noMetrics, paymentObserved: (network, status, n) => add(`${network}/${status}`, n), transition: (status) => add(status) };
    return { counts, metrics };
  };

  /**
   * "Someone else" writes `victim`'s row once, between a transaction's read of it and its write
   * (on PostgreSQL another transaction can; here it is made to happen). `interloped` records it.
   */
  const interloping = (victim: string) => {
    const interloped: string[] = [];
    const change = (tx: StoreTx): StoreTx => ({
      ...tx,
      orders: {
        ...tx.orders,
        async saveState(o, expected) {
          if (o.paymentOrderNo === victim && interloped.length === 0) {
            const current = (await tx.orders.get(victim))!;
            expect(await tx.orders.saveState({ ...current, version: current.version + 1 }, current.version)).toBe(true);
            interloped.push(victim);
          }
          return tx.orders.saveState(o, expected);
        },
      },
    });
    return { change, interloped };
  };

  /** What can be seen of an order after the pass: its state columns, its transfers and its notifications. */
  async function snapshot(no: string) {
    const db = t.gateway.db.kysely;
    const o = await db
      .selectFrom('orders')
      .select(['pay_status', 'pay_exception', 'seen_amount', 'final_amount', 'sequence', 'version', 'selected_network', 'selected_currency'])
      .where('payment_order_no', '=', no)
      .executeTakeFirstOrThrow();
    const payments = await db.selectFrom('payments').select(['currency', 'amount', 'status', 'confirmations']).where('payment_order_no', '=', no).orderBy('amount').execute();
    const notes = await db.selectFrom('notifications').select(['notify_type', 'sequence', 'payload']).where('payment_order_no', '=', no).orderBy('sequence').orderBy('notify_type').execute();
    const settlements = await db.selectFrom('settlements').select('payment_order_no').where('payment_order_no', '=', no).execute();
    return {
      order: { ...o, sequence: Number(o.sequence), version: Number(o.version) },
      payments: payments.map((p) => ({ ...p, amount: String(p.amount), confirmations: Number(p.confirmations) })),
      notifications: notes.map((n) => `${n.notify_type}@${Number(n.sequence)}`),
      // Every option the order offers, as its notifications show them (the pass loads only the selected one).
      notifiedOptions: notes.map((n) => (JSON.parse(n.payload) as { payment_options: unknown[] }).payment_options),
      settlements: settlements.length,
    };
  }

  it('decides every order of a pass spanning two transactions as the one-order path does', async () => {
    const n = PASS_ORDERS_PER_TRANSACTION + 15;
    const bulk = await newOrders(n);
    const single = await newOrders(n);
    const facts = bulk.flatMap((no, i) => scenario(i, no));
    // The scanner's facts arrive in block order, not grouped by order.
    facts.sort((a, b) => (a.txHash < b.txHash ? 1 : -1));
    // Each path counts what it observed (the Metrics port): the counts must agree too.
    const recorder = () => {
      const { counts, metrics } = counting();
      return { counts, facts: factsWith({ metrics }) };
    };
    const a = recorder();
    const b = recorder();
    const outcomes = await a.facts.passObserved(facts);
    expect(outcomes).toHaveLength(n);
    for (const [i, no] of single.entries()) await b.facts.transfersObserved(scenario(i, no));
    expect(a.counts).toEqual(b.counts);
    expect(a.counts['4/FINAL']).toBeGreaterThan(n / 2);

    const firstSeen = [...new Set(facts.map((f) => f.paymentOrderNo))];
    for (const [j, outcome] of outcomes.entries()) {
      expect(outcome.ok).toBe(true);
      if (outcome.ok) expect(outcome.order.paymentOrderNo).toBe(firstSeen[j]);
    }
    const statuses = new Set<string>();
    for (let i = 0; i < n; i += 1) {
      const a = await snapshot(bulk[i]!);
      const b = await snapshot(single[i]!);
      expect({ i, ...a }).toEqual({ i, ...b });
      statuses.add(`${a.order.pay_status}/${a.order.pay_exception ?? ''}`);
    }
    // The scenarios reach every outcome they are meant to.
    expect([...statuses].sort()).toEqual(['PAID/', 'PAID/OVERPAID', 'PAYING/', 'PAYING/UNDERPAID', 'PENDING/'].sort());
    // Order 0 had its pair selected on the cashier (the pass loaded its selected option only),
    // order 7 had not (scenario 0 both): their notifications list every option all the same.
    for (const k of [0, 7]) {
      const s = await snapshot(bulk[k]!);
      expect(s.order.selected_network).toBe('4');
      expect(s.notifications).toEqual(['ORDER_PAID@1']);
      expect(s.notifiedOptions[0]!.length).toBeGreaterThan(1);
    }

    // Applying the same pass again changes nothing (a rescan after a crash).
    const before = await Promise.all(bulk.map(snapshot));
    const again = await t.gateway.payments.passObserved(facts);
    expect(again.every((o) => o.ok && !o.changed)).toBe(true);
    expect(await Promise.all(bulk.map(snapshot))).toEqual(before);
  });

  it('lets money in another pair take over when the pair\'s money leaves the chain, but not once a settlement of the pair is scheduled', async () => {
    const BSC = 10n ** 12n; // BNB Smart Chain's USDT has 18 decimals, Polygon's 6
    for (const path of ['pass', 'one order'] as const) {
      const apply = (facts: TransferFact[]) => (path === 'pass' ? t.gateway.payments.passObserved(facts) : t.gateway.payments.transfersObserved(facts));
      const nos = await newOrders(3);
      const open = nos[0]!;
      const settling = nos[2]!;
      // Open: 10.50 on Polygon still confirming, then 10.50 on BNB Smart Chain (counting for nothing).
      const seen = transfer(open, 10_500_000n, { status: 'SEEN', confirmations: 3 });
      await apply([seen]);
      await apply([transfer(open, 10_500_000n * BSC, { network: '3' })]);
      expect((await snapshot(open)).order).toMatchObject({ pay_status: 'PAYING', selected_network: '4' });
      await apply([{ ...seen, status: 'REVERTED', confirmations: 0 }]);
      expect((await snapshot(open)).order, path).toMatchObject({ pay_status: 'PAID', pay_exception: 'REVERTED', selected_network: '3', final_amount: (10_500_000n * BSC).toString() });
      // PAID on Polygon (its settlement scheduled), then money on BNB Smart Chain, then a reorg deeper
      // than the confirmations takes the Polygon payment: the order keeps its pair.
      const paid = transfer(settling, 10_500_000n);
      await apply([paid]);
      expect((await snapshot(settling)).settlements).toBe(1);
      await apply([transfer(settling, 10_500_000n * BSC, { network: '3' })]);
      await apply([{ ...paid, status: 'REVERTED', confirmations: 0 }]);
      expect((await snapshot(settling)).order, path).toMatchObject({ pay_status: 'PENDING', pay_exception: 'REVERTED', selected_network: '4', seen_amount: '0' });
    }
  });

  it('hands the order back to its pair when a payment a reorg dropped is mined again, over a little money at another pair\'s address', async () => {
    const BSC = 10n ** 12n;
    for (const path of ['pass', 'one order'] as const) {
      const apply = (facts: TransferFact[]) => (path === 'pass' ? t.gateway.payments.passObserved(facts) : t.gateway.payments.transfersObserved(facts));
      const no = (await newOrders(1))[0]!;
      const full = transfer(no, 10_500_000n, { status: 'SEEN', confirmations: 3 });
      await apply([full]);
      await apply([transfer(no, 1_000_000n * BSC, { network: '3' })]);
      // Dropped for a block: the 1 USDT on BNB Smart Chain is all there is.
      await apply([{ ...full, status: 'REVERTED', confirmations: 0 }]);
      expect((await snapshot(no)).order, path).toMatchObject({ pay_status: 'PAYING', selected_network: '3' });
      // Mined again in the next block: the whole amount is on Polygon again, which takes the order back.
      const again = { ...full, blockNumber: full.blockNumber + 1, blockHash: `0x${'d'.repeat(64)}` };
      await apply([{ ...again, status: 'SEEN', confirmations: 1 }]);
      expect((await snapshot(no)).order, path).toMatchObject({ pay_status: 'PAYING', selected_network: '4', seen_amount: '10500000' });
      await apply([{ ...again, status: 'FINAL', confirmations: 64 }]);
      expect((await snapshot(no)).order, path).toMatchObject({ pay_status: 'PAID', selected_network: '4', final_amount: '10500000' });
    }
  });

  it('stores nothing of a transaction whose fence says no (the scan lease lost during a write), alone or in bulk, and fails the pass', async () => {
    const [a, b] = await newOrders(2);
    const facts = [transfer(a!, 10_500_000n), transfer(b!, 10_500_000n)];
    let asked = 0;
    const no = async () => (asked += 1) < 0;
    await expect(t.gateway.payments.passObserved(facts, no)).rejects.toBeInstanceOf(LeaseLostError);
    // Asked once: the chunk's failure is not retried order by order.
    expect(asked).toBe(1);
    for (const order of [a!, b!]) expect((await snapshot(order)).payments).toEqual([]);
    // A fence that says yes stores them.
    const outcomes = await t.gateway.payments.passObserved(facts, async () => true);
    expect(outcomes.map((o) => (o.ok ? o.order.state.status : o.reason))).toEqual(['PAID', 'PAID']);
  });

  it('answers NOT_FOUND for an order that does not exist and stores nothing for it', async () => {
    const [no] = await newOrders(1);
    const ghost = 'P0000000000000000000000';
    const outcomes = await t.gateway.payments.passObserved([transfer(ghost, 1n), transfer(no!, 10_500_000n)]);
    expect(outcomes.map((o) => (o.ok ? o.order.state.status : o.reason))).toEqual(['NOT_FOUND', 'PAID']);
    expect(await t.gateway.db.kysely.selectFrom('payments').select('tx_hash').where('payment_order_no', '=', ghost).execute()).toEqual([]);
  });

  it('falls back to one order at a time when a chunk fails: an order that cannot be applied holds up only itself', async () => {
    const [good1, poison, good2] = await newOrders(3);
    // Writing the poisoned order's transfers always fails (in the chunk and alone).
    const payments = factsWith({
      change: (tx) => ({
        ...tx,
        payments: {
          ...tx.payments,
          async upsertMany(ps) {
            if (ps.some((p) => p.paymentOrderNo === poison)) throw new Error('cannot write this order');
            return tx.payments.upsertMany(ps);
          },
        },
      }),
    });
    await expect(payments.passObserved([transfer(good1!, 10_500_000n), transfer(poison!, 10_500_000n), transfer(good2!, 10_500_000n)])).rejects.toThrow('cannot write this order');
    expect((await snapshot(good1!)).order.pay_status).toBe('PAID');
    expect((await snapshot(good2!)).order.pay_status).toBe('PAID');
    expect(await snapshot(poison!)).toMatchObject({ order: { pay_status: 'PENDING' }, payments: [], notifications: [] });
  });

  it('counts each transfer once on the one-order path also when its first attempt met a concurrent change', async () => {
    const [victim] = await newOrders(1);
    const { change, interloped } = interloping(victim!);
    const { counts, metrics } = counting();
    const outcome = await factsWith({ change, metrics }).transfersObserved([transfer(victim!, 10_500_000n)]);
    expect(interloped).toEqual([victim]);
    expect(outcome.ok && outcome.order.state.status).toBe('PAID');
    // The transfer counted once, and the one status change it made.
    expect(counts).toEqual({ '4/FINAL': 1, PAID: 1 });
  });

  it('still flags a reorg hidden by new money when the order changed during the pass and is decided again', async () => {
    const [victim] = await newOrders(1);
    const counted = transfer(victim!, 3_000_000n, { status: 'SEEN', confirmations: 2 });
    await t.gateway.payments.passObserved([counted]);
    // The counted 3 USDT leave the chain while 5 USDT arrive: the totals go up, the loss is in
    // the rows only, and the first attempt (which wrote them) met a concurrent change.
    const { change, interloped } = interloping(victim!);
    await factsWith({ change }).passObserved([{ ...counted, status: 'REVERTED', confirmations: 0 }, transfer(victim!, 5_000_000n, { status: 'SEEN', confirmations: 1 })]);
    expect(interloped).toEqual([victim]);
    const v = await snapshot(victim!);
    expect(v.order).toMatchObject({ pay_status: 'PAYING', pay_exception: 'REVERTED', seen_amount: '5000000' });
    expect(v.notifications).toEqual(['ORDER_EXCEPTION@2']);
  });

  it('decides an order that someone else changed during the pass again, from its stored transfers', async () => {
    const [victim, other] = await newOrders(2);
    const { change, interloped } = interloping(victim!);
    const payments = factsWith({ change });
    const outcomes = await payments.passObserved([transfer(victim!, 10_500_000n), transfer(other!, 10_500_000n)]);
    expect(interloped).toEqual([victim]);
    expect(outcomes.map((o) => o.ok && o.changed && o.order.state.status)).toEqual(['PAID', 'PAID']);
    const v = await snapshot(victim!);
    // Created at version 0, its pair selected (1), the interloper's write, then the retried
    // decision: PAID once, notified once.
    expect(v.order).toMatchObject({ pay_status: 'PAID', final_amount: '10500000', version: 3, sequence: 1 });
    expect(v.notifications).toEqual(['ORDER_PAID@1']);
    expect(v.payments).toHaveLength(1);
    expect((await snapshot(other!)).order).toMatchObject({ pay_status: 'PAID', version: 1 });
  });
});
