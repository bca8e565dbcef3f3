// The cashier's JSON API (PROTOCOL §15) on a running gateway: the token is the credential, the
// payer chooses a (network, currency), the deposit address is the CREATE2 address committed to
// that option's settlement plan and stays the same for the same pair.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway } from '../src/cli/gateway.js';
import type { CurrencySpec } from '../src/domain/catalogue.js';
import { forwarderAddress, forwarderPlan } from '../src/adapters/chain/evm/forwarder-plan.js';
import { DATABASE_KINDS } from './databases.js';
import { api, deploymentWithFactory, observeTransfer, orderBody, startTestGateway, TEST_FACTORY, TEST_FEE_ADDRESS, TEST_FORWARDER, WALLET, type TestGateway } from './harness.js';

describe.each(DATABASE_KINDS)('cashier API on %s', (kind) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ kind, config: { deployment: deploymentWithFactory(['3', '4']) } });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function newOrder(): Promise<{ paymentOrderNo: string; token: string }> {
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(t.merchant, t.clock), merchant: t.merchant, clock: t.clock });
    expect(res.json.code).toBe(0);
    const url = new URL(String(res.json.data!.cashier_url));
    return { paymentOrderNo: String(res.json.data!.payment_order_no), token: url.searchParams.get('t')! };
  }

  const get = (no: string, token?: string) => fetch(`${t.baseUrl}/cashier/api/orders/${no}${token === undefined ? '' : `?t=${encodeURIComponent(token)}`}`);
  const select = (no: string, token: string, body: unknown, type = 'application/json') =>
    fetch(`${t.baseUrl}/cashier/api/orders/${no}/select?t=${encodeURIComponent(token)}`, { method: 'POST', headers: { 'content-type': type }, body: typeof body === 'string' ? body : JSON.stringify(body) });

  it('shows the order and its options to the holder of the token', async () => {
    const { paymentOrderNo, token } = await newOrder();
    const res = await get(paymentOrderNo, token);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ payment_order_no: paymentOrderNo, merchant_name: 'Test Merchant', pricing_amount: '10.50', pricing_currency: 'USDT', pay_status: 'PENDING', selected: null });
    expect(body.options).toEqual(expect.arrayContaining([{ network: '4', currency: 'USDT', amount: '10.5' }]));
  });

  it('answers a wrong, missing or other order’s token exactly like an unknown order', async () => {
    const a = await newOrder();
    const b = await newOrder();
    const answers = await Promise.all([get(a.paymentOrderNo, `${a.token.slice(0, -1)}${a.token.endsWith('x') ? 'y' : 'x'}`), get(a.paymentOrderNo), get(a.paymentOrderNo, b.token), get('P000000', a.token), select(a.paymentOrderNo, b.token, { network: '4', currency: 'USDT' })]);
    const bodies = await Promise.all(answers.map((r) => r.text()));
    expect(answers.map((r) => r.status)).toEqual([404, 404, 404, 404, 404]);
    expect(new Set(bodies).size).toBe(1);
  });

  it('gives the same deposit address for the same pair: the CREATE2 address of the committed plan', async () => {
    const { paymentOrderNo, token } = await newOrder();
    const first = await select(paymentOrderNo, token, { network: '4', currency: 'USDT' });
    expect(first.status).toBe(200);
    const chosen = (await first.json()) as Record<string, string>;
    expect(chosen).toMatchObject({ network: '4', currency: 'USDT', chain_id: 137, amount: '10.5', amount_base: '10500000', token_contract: '0xc2132D05D31c914a87C6611C10748AEb04B58e8F' });
    const again = (await (await select(paymentOrderNo, token, { network: 4, currency: 'USDT' })).json()) as Record<string, string>;
    expect(again.address).toBe(chosen.address);
    expect(chosen.uri).toBe(`ethereum:0xc2132D05D31c914a87C6611C10748AEb04B58e8F@137/transfer?address=${chosen.address}&uint256=10500000`);

    // The stored plan pays the merchant's wallet and the platform fee, summing to the amount due,
    // and the address is the factory's CREATE2 address for exactly that plan.
    const deposit = await t.gateway.store.depositAddresses.get(paymentOrderNo, '4', 'USDT');
    const plan = JSON.parse(deposit!.plan) as { receivers: { role: string; address: string; amount: string }[]; merchantIndex: number; token: string };
    expect(plan.receivers.map((r) => [r.role, r.address])).toEqual([
      ['MERCHANT', WALLET],
      ['FEE', TEST_FEE_ADDRESS],
    ]);
    expect(plan.receivers.reduce((s, r) => s + BigInt(r.amount), 0n)).toBe(10_500_000n);
    const expected = forwarderAddress(TEST_FACTORY, { implementation: TEST_FORWARDER }, forwarderPlan({ paymentOrderNo, token: plan.token, merchantIndex: plan.merchantIndex, receivers: plan.receivers.map((r) => ({ ...r, role: r.role as 'MERCHANT', amount: BigInt(r.amount) })) }));
    expect(chosen.address).toBe(expected);
    expect(deposit!.address).toBe(expected.toLowerCase());
    expect(await t.gateway.store.depositAddresses.findByAddress('4', expected)).toEqual([deposit]);

    const shown = (await (await get(paymentOrderNo, token)).json()) as { selected: Record<string, string> };
    expect(shown.selected).toEqual(chosen);
  });

  it('commits the merchant wallet as it is now, even one changed a moment ago by another process', async () => {
    const merchant = await t.addMerchant({ name: 'Wallet Rotating Merchant' });
    const create = async () => {
      const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(merchant, t.clock), merchant, clock: t.clock });
      expect(res.json.code).toBe(0);
      return { paymentOrderNo: String(res.json.data!.payment_order_no), token: new URL(String(res.json.data!.cashier_url)).searchParams.get('t')! };
    };
    const before = await create();
    // The API has just read the merchant (and may keep it for a second); now the CLI, another
    // process, replaces the Polygon wallet in the database.
    const replaced = '0x976EA74026E726554dB657fA54763abd0C3a0aa9';
    await t.gateway.db.kysely.updateTable('merchant_networks').set({ wallet_address: replaced }).where('merchant_no', '=', merchant.merchantNo).where('network', '=', '4').execute();
    expect((await select(before.paymentOrderNo, before.token, { network: '4', currency: 'USDT' })).status).toBe(200);
    const deposit = await t.gateway.store.depositAddresses.get(before.paymentOrderNo, '4', 'USDT');
    const plan = JSON.parse(deposit!.plan) as { receivers: { role: string; address: string }[] };
    expect(plan.receivers.find((r) => r.role === 'MERCHANT')?.address).toBe(replaced);
  });

  it('lets the payer change the pair while nothing is paid, and no longer once money was seen', async () => {
    const { paymentOrderNo, token } = await newOrder();
    const polygon = await select(paymentOrderNo, token, { network: '4', currency: 'USDT' });
    const bsc = await select(paymentOrderNo, token, { network: '3', currency: 'USDT' });
    expect([polygon.status, bsc.status]).toEqual([200, 200]);
    const onPolygon = (await polygon.json()) as Record<string, string>;
    const onBsc = (await bsc.json()) as Record<string, string>;
    expect(onBsc).toMatchObject({ chain_id: 56, amount: '10.5', amount_base: '10500000000000000000' });
    expect(onBsc.address).not.toBe(onPolygon.address);
    await observeTransfer(t, { paymentOrderNo, network: '3', currency: 'USDT', amount: 10n ** 18n, status: 'SEEN', confirmations: 1, address: onBsc.address });
    const back = await select(paymentOrderNo, token, { network: '4', currency: 'USDT' });
    expect(back.status).toBe(409);
    expect(((await back.json()) as { error: string }).error).toBe('NOT_SELECTABLE');
    const same = await select(paymentOrderNo, token, { network: '3', currency: 'USDT' });
    expect(same.status).toBe(200);
    expect(((await same.json()) as Record<string, string>).address).toBe(onBsc.address);
  });

  it('hands out the address and payment link only while something is still to send, as select answers them', async () => {
    const { paymentOrderNo, token } = await newOrder();
    const chosen = (await (await select(paymentOrderNo, token, { network: '4', currency: 'USDT' })).json()) as Record<string, string>;
    const view = async () => (await (await get(paymentOrderNo, token)).json()) as { payer_state: string; remaining: string | null; selected: Record<string, string> };
    const shown = async () => {
      const v = await view();
      return { state: v.payer_state, remaining: v.remaining, address: v.selected.address, uri: v.selected.uri, selects: (await select(paymentOrderNo, token, { network: '4', currency: 'USDT' })).status };
    };
    expect(await shown()).toEqual({ state: 'AWAITING', remaining: null, address: chosen.address, uri: chosen.uri, selects: 200 });
    const pay = (txByte: string, amount: bigint, status: 'SEEN' | 'FINAL') =>
      observeTransfer(t, { paymentOrderNo, amount, status, confirmations: status === 'FINAL' ? 64 : 1, address: chosen.address, txHash: `0x${txByte.repeat(32)}` });
    // Part of it seen: the rest goes to the same address.
    await pay('a1', 4_000_000n, 'SEEN');
    const part = await shown();
    expect(part).toMatchObject({ remaining: '6.5', address: chosen.address, selects: 200 });
    // The payment link and amount ask for the rest, as select answers them (they asked for the whole 10.5 again).
    expect(part.uri).toMatch(/&uint256=6500000$/);
    const reselected = (await (await select(paymentOrderNo, token, { network: '4', currency: 'USDT' })).json()) as Record<string, string>;
    expect((await view()).selected).toEqual(reselected);
    expect(reselected).toMatchObject({ amount: '6.5', amount_base: '6500000' });
    // The whole amount seen, not final yet: nothing more to send.
    await pay('a2', 6_500_000n, 'SEEN');
    expect(await shown()).toEqual({ state: 'CONFIRMING', remaining: null, address: '', uri: '', selects: 409 });
    // Paid: the same.
    await pay('a1', 4_000_000n, 'FINAL');
    await pay('a2', 6_500_000n, 'FINAL');
    expect(await shown()).toEqual({ state: 'PAID', remaining: null, address: '', uri: '', selects: 409 });
  });

  it('hands out no address past the deadline, even with money sent in time still confirming', async () => {
    const { paymentOrderNo, token } = await newOrder();
    const chosen = (await (await select(paymentOrderNo, token, { network: '4', currency: 'USDT' })).json()) as Record<string, string>;
    await observeTransfer(t, { paymentOrderNo, amount: 4_000_000n, status: 'SEEN', confirmations: 1, address: chosen.address });
    t.clock.advance(1801);
    const v = (await (await get(paymentOrderNo, token)).json()) as { selected: Record<string, string>; remaining: string | null };
    expect([v.selected.network, v.selected.address, v.selected.uri, v.remaining]).toEqual(['4', '', '', null]);
  });

  it("shows an order that ended short of its amount with the pair's whole amount due, not a remainder left to pay", async () => {
    const { paymentOrderNo, token } = await newOrder();
    const chosen = (await (await select(paymentOrderNo, token, { network: '4', currency: 'USDT' })).json()) as Record<string, string>;
    await observeTransfer(t, { paymentOrderNo, amount: 4_000_000n, status: 'FINAL', address: chosen.address });
    const view = async () => (await (await get(paymentOrderNo, token)).json()) as { payer_state: string; remaining: string | null; selected: Record<string, string> };
    const amounts = (v: Awaited<ReturnType<typeof view>>) => [v.payer_state, v.selected.amount, v.selected.amount_base, v.remaining];
    expect(amounts(await view())).toEqual(['UNDERPAID', '6.5', '6500000', '6.5']);
    // Past the deadline (closing), then closed: nothing is to be sent, so nothing is asked for.
    t.clock.advance(1801);
    expect(amounts(await view())).toEqual(['CLOSING', '10.5', '10500000', null]);
    await t.gateway.expireOrders();
    expect(amounts(await view())).toEqual(['EXPIRED', '10.5', '10500000', null]);
  });

  it('names the pairs the order can be paid in when asked for one it cannot', async () => {
    const { paymentOrderNo, token } = await newOrder();
    const res = await select(paymentOrderNo, token, { network: '4', currency: 'DOGE' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/^this order cannot be paid in DOGE on network 4; it can be paid in (USDT on [2-5](, )?)+$/);
  });

  it('lists at most 50 transfers, the largest, oldest first, and says how many there are: dust does not grow every poll nor hide the payment', async () => {
    const { paymentOrderNo, token } = await newOrder();
    const chosen = (await (await select(paymentOrderNo, token, { network: '4', currency: 'USDT' })).json()) as Record<string, string>;
    const dust = (i: number) => observeTransfer(t, { paymentOrderNo, amount: 1n + BigInt(i % 3), status: 'FINAL', address: chosen.address, blockNumber: 5000 + i, logIndex: 0 });
    for (let i = 0; i < 30; i += 1) await dust(i);
    const paid = await observeTransfer(t, { paymentOrderNo, amount: 10_500_000n, status: 'SEEN', confirmations: 1, address: chosen.address, blockNumber: 5030, logIndex: 0 });
    for (let i = 31; i < 70; i += 1) await dust(i);
    // Another pair's transfer is neither listed nor counted here.
    await observeTransfer(t, { paymentOrderNo, network: '3', currency: 'USDT', amount: 5n, status: 'FINAL', address: chosen.address });
    const v = (await (await get(paymentOrderNo, token)).json()) as { payments: { tx_hash: string; amount: string }[]; payments_count: number; payer_state: string };
    expect(v.payments_count).toBe(70);
    expect(v.payments).toHaveLength(50);
    expect(v.payments.map((p) => p.tx_hash)).toContain(paid.txHash);
    // The payment, the 23 three-unit and 23 two-unit transfers, and the 3 oldest of the 23 one-unit ones, oldest first.
    const stored = new Map((await t.gateway.store.payments.listByOrder(paymentOrderNo)).map((p) => [p.txHash, p.blockNumber]));
    const blocks = v.payments.map((p) => stored.get(p.tx_hash)!);
    expect(blocks).toEqual([...blocks].sort((a, b) => a - b));
    expect(v.payments.filter((p) => p.amount === '0.000003')).toHaveLength(23);
    expect(v.payments.filter((p) => p.amount === '0.000002')).toHaveLength(23);
    expect(v.payments.filter((p) => p.amount === '0.000001').map((p) => stored.get(p.tx_hash))).toEqual([5000, 5003, 5006]);
    expect(v.payer_state).toBe('CONFIRMING');
  });

  it.each([
    ['taken off the configuration (currencies: {"USDT": false})', (cs: readonly CurrencySpec[]) => cs.filter((c) => c.code !== 'USDT')],
    ['moved to another contract', (cs: readonly CurrencySpec[]) => cs.map((c) => (c.code === 'USDT' ? { ...c, contract: '0x00000000000000000000000000000000000000aa' } : c))],
    ['given other decimals', (cs: readonly CurrencySpec[]) => cs.map((c) => (c.code === 'USDT' ? { ...c, decimals: 18 } : c))],
  ])("does not offer an order's pair whose token a later start has %s: the scan watches only the configured contracts and would never see money sent in it", async (_how, change) => {
    const { paymentOrderNo, token } = await newOrder();
    // The payer chose that pair before the restart (its address handed out), and sent nothing yet.
    const chosen = (await (await select(paymentOrderNo, token, { network: '4', currency: 'USDT' })).json()) as { address: string };
    const { deployment } = t.gateway.config;
    const config = { ...t.gateway.config, deployment: { ...deployment, networks: deployment.networks.map((n) => (n.id === '4' ? { ...n, currencies: change(n.currencies) } : n)) } };
    const restarted = await createGateway({ config, clock: t.clock, logger: pino({ level: 'silent' }), workers: false });
    try {
      const base = await restarted.listen();
      const view = (await (await fetch(`${base}/cashier/api/orders/${paymentOrderNo}?t=${encodeURIComponent(token)}`)).json()) as { options: { network: string; currency: string }[]; available_networks: string[]; selected: unknown; payer_state: string };
      // Network 2 (no factory in this deployment) is listed and not selectable, as before.
      expect(view.options.map((o) => `${o.currency}@${o.network}`)).toEqual(['USDT@2', 'USDT@3']);
      expect(view.available_networks).toEqual(['3']);
      // The address chosen before is handed out no more (page, QR, wallet link): the payer chooses again.
      expect([view.selected, view.payer_state]).toEqual([null, 'CHOOSE']);
      expect(await (await fetch(`${base}/cashier/${paymentOrderNo}?t=${encodeURIComponent(token)}`)).text()).not.toContain(chosen.address);
      const refused = await fetch(`${base}/cashier/api/orders/${paymentOrderNo}/select?t=${encodeURIComponent(token)}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ network: '4', currency: 'USDT' }) });
      expect(refused.status).toBe(503);
      expect(((await refused.json()) as { error: string }).error).toBe('UNAVAILABLE');
      // The pair the configuration still has as it was is chosen as before.
      const other = await fetch(`${base}/cashier/api/orders/${paymentOrderNo}/select?t=${encodeURIComponent(token)}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ network: '3', currency: 'USDT' }) });
      expect(other.status).toBe(200);
    } finally {
      await restarted.close();
    }
  });

  it('does not offer a pair of an older order whose amount no settlement plan could hold (2^128 base units or more)', async () => {
    const { paymentOrderNo, token } = await newOrder();
    // As an order created before such pairs were left out at creation could hold it.
    await t.gateway.db.kysely.updateTable('order_options').set({ amount_base: (1n << 128n).toString() }).where('payment_order_no', '=', paymentOrderNo).where('network', '=', '3').execute();
    const view = (await (await get(paymentOrderNo, token)).json()) as { options: { network: string }[]; available_networks: string[] };
    expect(view.options.map((o) => o.network)).not.toContain('3');
    expect(view.available_networks).toEqual(['4']);
  });

  it.each([
    [{ network: '4', currency: 'DOGE' }, 'application/json', 400, 'BAD_REQUEST'],
    [{ network: '9', currency: 'USDT' }, 'application/json', 400, 'BAD_REQUEST'],
    ['{"network":', 'application/json', 400, 'BAD_REQUEST'],
    [{ network: '4', currency: 'USDT' }, 'text/plain', 400, 'BAD_REQUEST'],
    [{ network: '2', currency: 'USDT' }, 'application/json', 503, 'UNAVAILABLE'],
  ])('refuses %j (%s) with %i', async (body, type, status, error) => {
    const { paymentOrderNo, token } = await newOrder();
    const res = await select(paymentOrderNo, token, body, type);
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: string }).error).toBe(error);
    expect(await t.gateway.store.depositAddresses.get(paymentOrderNo, '4', 'USDT')).toBeNull();
  });
});
