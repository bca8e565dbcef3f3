// A plan that passes eth_estimateGas but reverts when mined (a native-coin receiver contract that
// refuses the coin only in a real block: it looks at tx.gasprice, block.number, coinbase...) makes
// the whole batch it is in revert: the factory pays a batch's receivers together (ADR 0009). The
// estimate cannot find it, so after an on-chain revert the orders of that transaction are sent
// alone: the others settle, and the one that reverts again does so without dragging anyone else
// (each revert costs the relayer gas). Was: the same orders were batched together again after
// each backoff, and every one of those transactions reverted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SettlementChain, SettlementReceipt } from '../src/app/ports.js';
import { Settler } from '../src/app/settle.js';
import { api, deploymentWithFactory, observeTransfer, orderBody, startTestGateway, type TestGateway } from './harness.js';

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({ kind: 'sqlite', config: { deployment: deploymentWithFactory(['4']) } });
}, 60_000);
afterAll(async () => {
  await t?.close();
});

async function paidOnPolygon(): Promise<{ no: string; address: string }> {
  const body = orderBody(t.merchant, t.clock, { notify_url: 'https://merchant.example/sparkpay/notify' });
  const created = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });
  expect(created.json.code).toBe(0);
  const no = String(created.json.data!.payment_order_no);
  const token = new URL(String(created.json.data!.cashier_url)).searchParams.get('t')!;
  const chosen = await fetch(`${t.baseUrl}/cashier/api/orders/${no}/select?t=${encodeURIComponent(token)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ network: '4', currency: 'USDT' }),
  });
  expect(chosen.status).toBe(200);
  const address = ((await chosen.json()) as { address: string }).address.toLowerCase();
  await observeTransfer(t, { paymentOrderNo: no, amount: 10_500_000n, address });
  expect(await t.gateway.store.settlements.get(no)).toMatchObject({ status: 'DUE' });
  return { no, address };
}

describe('a batch that reverts on chain though its estimate passed', () => {
  it('is not sent again as a batch: its orders go alone, the others settle, the culprit reverts alone', async () => {
    const culprit = await paidOnPolygon();
    t.clock.advance(1);
    const honest = await paidOnPolygon();
    const ref = (n: string) => `0x${Buffer.from(n).toString('hex').padEnd(64, '0')}`;
    const signed = new Map<string, string[]>();
    const sent: string[][] = [];
    const chain: SettlementChain = {
      relayer: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
      head: async () => 5_000,
      blockHash: async () => `0x${'cd'.repeat(32)}`,
      relayerBalance: async () => 10n ** 20n,
      nonces: async () => ({ latest: sent.length, pending: sent.length }),
      fees: async () => ({ maxFeePerGas: 10n ** 9n, maxPriorityFeePerGas: 10n ** 8n }),
      held: async () => 10_500_000n,
      distributed: async () => false,
      estimate: async (plans) => ({ ok: true, gas: 100_000n * BigInt(plans.length) }),
      sign: async (plans) => {
        const hash = `0x${(signed.size + 1).toString(16).padStart(64, '0')}`;
        signed.set(hash, plans.map((p) => p.paymentOrderNo));
        return { hash, raw: `0x02${hash.slice(2)}` };
      },
      broadcast: async (raw) => {
        sent.push(signed.get(`0x${raw.slice(4)}`)!);
        return { ok: true };
      },
      known: async () => true,
      receipt: async (hash): Promise<SettlementReceipt | null> => {
        const orders = signed.get(hash);
        if (!orders) return null;
        const reverted = orders.includes(culprit.no);
        const addressOf = (n: string) => (n === culprit.no ? culprit.address : honest.address);
        return {
          hash,
          blockNumber: 4_000,
          blockHash: `0x${'cd'.repeat(32)}`,
          success: !reverted,
          gasUsed: 90_000n,
          distributions: reverted ? [] : orders.map((n) => ({ orderRef: ref(n), forwarder: addressOf(n), balance: 10_500_000n })),
          skipped: [],
        };
      },
      findDistribution: async () => null,
      orderRef: ref,
    };
    const settler = new Settler({
      store: t.gateway.store,
      clock: t.clock,
      ids: t.gateway.ids,
      chain,
      network: t.gateway.config.deployment.networks.find((n) => n.id === '4')!,
      log: t.gateway.logger,
      owner: 'review',
      leaseMs: 30_000,
      settings: { batchSize: 20, replaceAfterMs: 600_000, maxFeePerGas: 10n ** 12n, maxInFlight: 8, retryBaseMs: 1_000 },
    });
    for (let pass = 0; pass < 12; pass += 1) {
      await settler.settleOnce();
      t.clock.advance(3_600);
    }
    // The first transaction carried both and reverted; none after it carries both again.
    expect(sent[0]!.slice().sort()).toEqual([culprit.no, honest.no].sort());
    expect(sent.slice(1).filter((orders) => orders.length > 1)).toEqual([]);
    expect(await t.gateway.store.settlements.get(honest.no)).toMatchObject({ status: 'SETTLED' });
    expect(await t.gateway.store.settlements.get(culprit.no)).toMatchObject({ status: 'DUE' });
  });
});
