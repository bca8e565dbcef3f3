// A batch halved down to one plan whose estimate then fails (each plan passed alone a moment
// before: an endpoint whose answers do not add up, or a flaky one) is deferred — with its
// backoff, its reason in `order show` and the deferred gauge — instead of tried again on every
// pass unseen (a review of settlement). A fake relayer answers the estimates; the store is real.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SettlementChain } from '../src/app/ports.js';
import { Settler } from '../src/app/settle.js';
import { api, deploymentWithFactory, observeTransfer, orderBody, startTestGateway, type TestGateway } from './harness.js';

describe('a settlement batch halved to one plan that fails', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ kind: 'sqlite', config: { deployment: deploymentWithFactory(['4']) } });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
  });

  const paidOrder = async () => {
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(t.merchant, t.clock), merchant: t.merchant, clock: t.clock });
    const no = String(res.json.data!.payment_order_no);
    const token = new URL(String(res.json.data!.cashier_url)).searchParams.get('t')!;
    const chosen = (await (await fetch(`${t.baseUrl}/cashier/api/orders/${no}/select?t=${encodeURIComponent(token)}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ network: '4', currency: 'USDT' }) })).json()) as { address: string };
    await observeTransfer(t, { paymentOrderNo: no, amount: 10_500_000n, address: chosen.address });
    return no;
  };

  it('defers it, naming why', async () => {
    // a due a second before b: the due list, and so the halved batch, starts with a.
    const a = await paidOrder();
    t.clock.advance(1);
    const b = await paidOrder();
    const estimates: number[] = [];
    // Alone, each plan passes; any other estimate fails.
    const chain: SettlementChain = {
      relayer: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
      head: async () => 5_000,
      blockHash: async () => null,
      relayerBalance: async () => 10n ** 20n,
      nonces: async () => ({ latest: 0, pending: 0 }),
      fees: async () => ({ maxFeePerGas: 10n ** 9n, maxPriorityFeePerGas: 10n ** 8n }),
      held: async () => 10_500_000n,
      distributed: async () => false,
      estimate: async (plans) => {
        estimates.push(plans.length);
        return estimates.length === 2 || estimates.length === 3 ? { ok: true, gas: 100_000n } : { ok: false, error: 'execution reverted: the answers do not add up' };
      },
      sign: async () => ({ hash: `0x${'ab'.repeat(32)}`, raw: '0x02f8' }),
      broadcast: async () => ({ ok: true }),
      known: async () => true,
      receipt: async () => null,
      findDistribution: async () => null,
      orderRef: (n) => `0x${Buffer.from(n).toString('hex').padEnd(64, '0')}`,
    };
    const network = t.gateway.config.deployment.networks.find((n) => n.id === '4')!;
    const settler = new Settler({ store: t.gateway.store, clock: t.clock, ids: t.gateway.ids, chain, network, log: t.gateway.logger, owner: 'estimates', leaseMs: 30_000, settings: { batchSize: 20, replaceAfterMs: 60_000, maxFeePerGas: 10n ** 12n, maxInFlight: 8, retryBaseMs: 1_000 } });
    await settler.settleOnce();
    // The batch, each alone, the batch again, then the first alone after halving.
    expect(estimates).toEqual([2, 1, 1, 2, 1]);
    const deferred = (await t.gateway.store.settlements.get(a))!;
    expect(deferred).toMatchObject({ status: 'DUE', attempts: 1, lastError: expect.stringContaining('the answers do not add up') });
    expect(deferred.nextAttemptAt).toBeGreaterThan(t.clock.nowMs());
    expect(await t.gateway.store.settlements.get(b)).toMatchObject({ status: 'DUE', attempts: 0 });
  });
});
