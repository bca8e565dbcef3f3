// The payer's pair once money was seen in it (reviews of the cashier and of settlement): a payment
// a reorganisation took back is usually mined again, so another pair paid then is paid twice,
// and once the order was paid its settlement pays out from the chosen pair's address only (a
// switch left the money of the pair it was then paid in undistributed, the order COMPLETED). And
// an order short of its amount whose pair is no longer offered is not asked for the rest with no
// address to send it to.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway } from '../src/cli/gateway.js';
import { api, deploymentWithFactory, observeTransfer, orderBody, startTestGateway, type TestGateway } from './harness.js';

describe('the cashier once money was seen in the chosen pair', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ kind: 'sqlite', config: { deployment: deploymentWithFactory(['2', '4']) } });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
  });

  const newOrder = async () => {
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(t.merchant, t.clock), merchant: t.merchant, clock: t.clock });
    expect(res.json.code).toBe(0);
    return { no: String(res.json.data!.payment_order_no), token: new URL(String(res.json.data!.cashier_url)).searchParams.get('t')! };
  };
  const select = async (o: { no: string; token: string }, network: string) => {
    const r = await fetch(`${t.baseUrl}/cashier/api/orders/${o.no}/select?t=${encodeURIComponent(o.token)}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ network, currency: 'USDT' }) });
    return { status: r.status, body: (await r.json()) as { address?: string; message?: string } };
  };

  it('refuses another pair after the paid pair\'s payment left the chain, and the page offers none', async () => {
    const o = await newOrder();
    const x = await select(o, '4');
    const paid = await observeTransfer(t, { paymentOrderNo: o.no, amount: 10_500_000n, address: x.body.address! });
    expect(await t.gateway.store.settlements.get(o.no)).toMatchObject({ status: 'DUE', network: '4' });
    await observeTransfer(t, { ...paid, status: 'REVERTED', confirmations: 0 });
    expect((await t.gateway.store.orders.get(o.no))!.state.status).toBe('PENDING');
    const y = await select(o, '2');
    expect(y.status).toBe(409);
    expect(y.body.message).toMatch(/can no longer change/);
    // The same pair is still answered (its address, for a payer who checks the wallet and must send again).
    expect((await select(o, '4')).body.address).toBe(x.body.address);
    const html = await (await fetch(`${t.baseUrl}/cashier/${o.no}?t=${encodeURIComponent(o.token)}`)).text();
    expect(html).not.toContain('name="option"');
  });

  it('keeps the scheduled settlement\'s pair when money then arrives at another pair\'s address handed out earlier', async () => {
    const o = await newOrder();
    const y = await select(o, '2');
    const x = await select(o, '4');
    const paid = await observeTransfer(t, { paymentOrderNo: o.no, amount: 10_500_000n, address: x.body.address! });
    await observeTransfer(t, { ...paid, status: 'REVERTED', confirmations: 0 });
    const option = (await t.gateway.store.orders.get(o.no))!.options.find((p) => p.network === '2')!;
    await observeTransfer(t, { paymentOrderNo: o.no, network: '2', currency: 'USDT', amount: option.amountBase, address: y.body.address! });
    const order = (await t.gateway.store.orders.get(o.no))!;
    // Before: PAID on network 2 while the settlement still paid out network 4's (empty) address.
    expect(order).toMatchObject({ selectedNetwork: '4', state: { status: 'PENDING' } });
    expect(await t.gateway.store.settlements.get(o.no)).toMatchObject({ network: '4', address: x.body.address!.toLowerCase() });
  });

  it('does not ask an order short of its amount for the rest once its pair is no longer offered', async () => {
    const o = await newOrder();
    const x = await select(o, '4');
    await observeTransfer(t, { paymentOrderNo: o.no, amount: 5_000_000n, address: x.body.address! });
    // A start without network 4's USDT (taken off the configuration).
    const { deployment } = t.gateway.config;
    const config = { ...t.gateway.config, deployment: { ...deployment, networks: deployment.networks.map((n) => (n.id === '4' ? { ...n, currencies: n.currencies.filter((c) => c.code !== 'USDT') } : n)) } };
    const restarted = await createGateway({ config, clock: t.clock, logger: pino({ level: 'silent' }), workers: false });
    try {
      const base = await restarted.listen();
      const view = (await (await fetch(`${base}/cashier/api/orders/${o.no}?t=${encodeURIComponent(o.token)}`)).json()) as Record<string, unknown>;
      expect(view).toMatchObject({ payer_state: 'UNDERPAID', remaining: null, remaining_base: null, selected: { address: '', uri: '' } });
      const html = await (await fetch(`${base}/cashier/${o.no}?t=${encodeURIComponent(o.token)}`)).text();
      expect(html).not.toContain('id="pay"');
      expect(html).toContain('Payments in USDT on Polygon are not available at the moment: send nothing more, and contact the merchant.');
    } finally {
      await restarted.close();
    }
  });
});
