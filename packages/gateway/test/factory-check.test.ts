// A gateway whose configuration does not match its networks' chains would hand out deposit
// addresses nobody can ever settle, or count payments in the wrong unit. With its workers on it
// asks each network's nodes at start: a node of another chain id, or a factory whose forwarder is
// not the configured one, and the network offers no address; a token whose contract has other
// decimals than configured, and that token is not offered (the network's others are).
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploymentOn } from './chain-setup.js';
import { startTestChain, type TestChain } from './evm-chain.js';
import { api, orderBody, startTestGateway, type TestGateway } from './harness.js';
import { waitUntil } from './wait.js';

describe('the network check at start', () => {
  let chain: TestChain;
  let t: TestGateway;
  const lines: string[] = [];

  beforeAll(async () => {
    chain = await startTestChain();
    const usdt6 = await chain.deployToken({ name: 'Tether USD', symbol: 'USDT', decimals: 6 });
    const usdt18 = await chain.deployToken({ name: 'Tether USD (BSC)', symbol: 'USDT', decimals: 18 });
    const { deployment } = deploymentOn(chain, {
      '2': { rpcUrls: [chain.node.rpcUrl], confirmations: 2, contracts: { USDT: usdt6 } },
      // BNB Smart Chain's USDC has 18 decimals; the contract named for it has 6.
      '3': { rpcUrls: [chain.node.rpcUrl], confirmations: 2, contracts: { USDT: usdt18, USDC: usdt6 } },
      '4': { rpcUrls: [chain.node.rpcUrl], confirmations: 2, contracts: { USDT: usdt6 } },
      // Nothing listens on port 1: no node of network 5 answers.
      '5': { rpcUrls: ['http://127.0.0.1:1'], confirmations: 2, contracts: { USDT: usdt6 } },
    });
    // Network 4 names the token as its forwarder, network 2 the chain id of Ethereum mainnet: configuration mistakes.
    const wrong = {
      ...deployment,
      networks: deployment.networks.map((n) => (n.id === '4' ? { ...n, chain: { ...n.chain, forwarder: usdt6 } } : n.id === '2' ? { ...n, chainId: 1 } : n)),
    };
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

  it('logs each mismatch and offers no deposit address where the chain disagrees; what matches still works', async () => {
    type Line = { level: number; network?: string; contract?: string; reason?: string; msg: string };
    const logged = () => lines.map((l) => JSON.parse(l) as Line).filter((l) => l.network !== undefined && /configuration/.test(l.msg));
    await waitUntil('the four networks checked', () => new Set(logged().map((l) => l.network)).size >= 4);
    expect(logged()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ level: 50, network: '4', reason: expect.stringContaining('not the configured forwarder') }),
        expect.objectContaining({ level: 50, network: '2', reason: expect.stringContaining(`serves chain id ${chain.node.chainId}, not the configured chain_id 1`) }),
        expect.objectContaining({ level: 50, network: '3', reason: expect.stringContaining('has 6 decimals, not the configured 18') }),
        expect.objectContaining({ level: 30, network: '3', msg: expect.stringContaining('match the configuration') }),
        // An operator saw nothing at all for a network none of whose nodes answered.
        expect.objectContaining({ level: 40, network: '5', reason: expect.stringMatching(/./), msg: expect.stringContaining('no RPC endpoint of the network answered') }),
      ]),
    );
    expect(logged().filter((l) => l.network === '5')).toHaveLength(1);

    const body = orderBody(t.merchant, t.clock, { total_amount: '10', merchant_order_currency: 'USDT', notify_url: 'https://merchant.example/notify' });
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });
    expect(res.json.code, res.json.message).toBe(0);
    const no = String(res.json.data!.payment_order_no);
    const token = new URL(String(res.json.data!.cashier_url)).searchParams.get('t')!;
    const view = (await (await fetch(`${t.baseUrl}/cashier/api/orders/${no}?t=${token}`)).json()) as { available_networks: string[] };
    expect(view.available_networks).toContain('3');
    expect(view.available_networks).not.toContain('4');
    expect(view.available_networks).not.toContain('2');
    const select = (network: string, currency = 'USDT') =>
      fetch(`${t.baseUrl}/cashier/api/orders/${no}/select?t=${token}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ network, currency }) });
    for (const network of ['4', '2']) {
      const refused = await select(network);
      expect(refused.status).toBe(503);
      expect(await refused.json()).toMatchObject({ error: 'UNAVAILABLE', message: `payments on network ${network} are not available on this gateway` });
    }
    const chosen = await select('3');
    expect(chosen.status).toBe(200);

    // An order priced in USDC: not payable in it on network 3, whose USDC contract disagrees.
    const usdcBody = orderBody(t.merchant, t.clock, { total_amount: '10', merchant_order_currency: 'USDC', notify_url: 'https://merchant.example/notify' });
    const usdcOrder = await api(t.baseUrl, { path: '/v4/pay/cashier', body: usdcBody, merchant: t.merchant, clock: t.clock });
    expect(usdcOrder.json.code, usdcOrder.json.message).toBe(0);
    const usdcNo = String(usdcOrder.json.data!.payment_order_no);
    const usdcToken = new URL(String(usdcOrder.json.data!.cashier_url)).searchParams.get('t')!;
    // The cashier does not offer the refused pair, nor network 3, left without a currency for this order.
    const usdcView = (await (await fetch(`${t.baseUrl}/cashier/api/orders/${usdcNo}?t=${usdcToken}`)).json()) as { options: { network: string; currency: string }[]; available_networks: string[] };
    expect(usdcView.options).not.toContainEqual(expect.objectContaining({ network: '3', currency: 'USDC' }));
    expect(usdcView.available_networks).not.toContain('3');
    const usdc = await fetch(`${t.baseUrl}/cashier/api/orders/${usdcNo}/select?t=${usdcToken}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ network: '3', currency: 'USDC' }) });
    expect(usdc.status).toBe(503);
    expect(await usdc.json()).toMatchObject({ error: 'UNAVAILABLE', message: 'payments in USDC on network 3 are not available on this gateway' });
  });
});
