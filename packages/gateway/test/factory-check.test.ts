// A gateway whose configured forwarder is not the implementation its network's factory uses
// would hand out deposit addresses nobody can ever settle. With its workers on it asks the
// factory at start and then offers no address on that network (the other stays available).
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploymentOn } from './chain-setup.js';
import { startTestChain, type TestChain } from './evm-chain.js';
import { api, orderBody, startTestGateway, type TestGateway } from './harness.js';
import { waitUntil } from './wait.js';

describe('the factory check at start', () => {
  let chain: TestChain;
  let t: TestGateway;
  const lines: string[] = [];

  beforeAll(async () => {
    chain = await startTestChain();
    const usdt = await chain.deployToken({ name: 'Tether USD', symbol: 'USDT', decimals: 6 });
    const { deployment } = deploymentOn(chain, {
      '3': { rpcUrls: [chain.node.rpcUrl], confirmations: 2, contracts: { USDT: usdt } },
      '4': { rpcUrls: [chain.node.rpcUrl], confirmations: 2, contracts: { USDT: usdt } },
    });
    // Network 4 names the token as its forwarder: a configuration mistake.
    const wrong = { ...deployment, networks: deployment.networks.map((n) => (n.id === '4' ? { ...n, chain: { ...n.chain, forwarder: usdt } } : n)) };
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    t = await startTestGateway({ config: { deployment: wrong }, workers: true, logger: pino({ level: 'info' }, sink) });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await chain?.stop();
  });

  it('logs the mismatch and offers no deposit address on that network; the matching one still works', async () => {
    const logged = () => lines.map((l) => JSON.parse(l) as { level: number; network?: string; reason?: string; msg: string }).filter((l) => l.msg.includes('forwarder factory'));
    await waitUntil('both networks checked', () => logged().length >= 2);
    expect(logged()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ level: 50, network: '4', reason: expect.stringContaining('not the configured forwarder') }),
        expect.objectContaining({ level: 30, network: '3', msg: expect.stringContaining('it matches the configuration') }),
      ]),
    );

    const body = orderBody(t.merchant, t.clock, { total_amount: '10', merchant_order_currency: 'USDT', notify_url: 'https://merchant.example/notify' });
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });
    expect(res.json.code, res.json.message).toBe(0);
    const no = String(res.json.data!.payment_order_no);
    const token = new URL(String(res.json.data!.cashier_url)).searchParams.get('t')!;
    const view = (await (await fetch(`${t.baseUrl}/cashier/api/orders/${no}?t=${token}`)).json()) as { available_networks: string[] };
    expect(view.available_networks).toContain('3');
    expect(view.available_networks).not.toContain('4');
    const select = (network: string) =>
      fetch(`${t.baseUrl}/cashier/api/orders/${no}/select?t=${token}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ network, currency: 'USDT' }) });
    const refused = await select('4');
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ error: 'UNAVAILABLE' });
    const chosen = await select('3');
    expect(chosen.status).toBe(200);
  });
});
