// Payments on a real EVM node (issue 4): anvil with the forwarder factory and a 6-decimal USDT,
// the gateway's Polygon (4) mapped to it. An order is created through the signed API, the pair
// chosen on the cashier API, tokens sent to the deposit address from a funded account, and the
// chain scan drives the order to PAYING and PAID; a reorganisation reverts a counted payment.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Address } from 'viem';
import { mainnetDeployment } from '../src/domain/catalogue.js';
import { DATABASE_KINDS } from './databases.js';
import { startTestChain, type TestChain } from './evm-chain.js';
import { api, orderBody, startTestGateway, type TestGateway } from './harness.js';

const FEE_ADDRESS = '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65';
const CONFIRMATIONS = 3;

describe.each(DATABASE_KINDS)('payments on anvil (%s)', (kind) => {
  let chain: TestChain;
  let usdt: Address;
  let t: TestGateway;

  beforeAll(async () => {
    chain = await startTestChain();
    const { node, factory } = chain;
    usdt = await chain.deployToken({ name: 'Tether USD (test)', symbol: 'USDT', decimals: 6 });
    const base = mainnetDeployment();
    const deployment = {
      networks: base.networks.map((n) =>
        n.id === '4'
          ? {
              ...n,
              chainId: node.chainId,
              chain: { rpcUrls: [node.rpcUrl], confirmations: CONFIRMATIONS, factory: factory.factory, forwarder: factory.implementation, feeAddress: FEE_ADDRESS },
              currencies: n.currencies.map((c) => (c.code === 'USDT' ? { ...c, contract: usdt } : c)),
            }
          : n,
      ),
    };
    t = await startTestGateway({ kind, config: { deployment } });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await chain?.stop();
  });

  const rpc = (method: string, params: unknown[] = []) => chain.relayer.public.request({ method: method as never, params: params as never });
  const mine = (blocks: number) => rpc('anvil_mine', [`0x${blocks.toString(16)}`]);

  async function orderWithAddress(amount = '10.50'): Promise<{ paymentOrderNo: string; requestNo: string; address: Address }> {
    const body = orderBody(t.merchant, t.clock, { total_amount: amount, notify_url: 'https://merchant.example/sparkpay/notify' });
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });
    expect(res.json.code).toBe(0);
    const cashier = new URL(String(res.json.data!.cashier_url));
    const paymentOrderNo = String(res.json.data!.payment_order_no);
    const chosen = await fetch(`${t.baseUrl}/cashier/api/orders/${paymentOrderNo}/select?t=${cashier.searchParams.get('t')}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ network: '4', currency: 'USDT' }),
    });
    expect(chosen.status).toBe(200);
    return { paymentOrderNo, requestNo: String(body.request_no), address: ((await chosen.json()) as { address: Address }).address };
  }

  const pay = async (to: Address, amount: bigint) => (await chain.pay(usdt, to, amount)).transactionHash;

  const query = async (requestNo: string) =>
    (await api(t.baseUrl, { path: `/v4/pay/orders/${t.merchant.merchantNo}/${requestNo}`, merchant: t.merchant, clock: t.clock })).json.data as Record<string, unknown>;

  it('sees the transfer, counts confirmations and marks the order PAID once final, with its notification written', async () => {
    const { paymentOrderNo, requestNo, address } = await orderWithAddress();
    await t.gateway.scanChain('4');
    const tx = await pay(address, 10_500_000n);
    const seen = await t.gateway.scanChain('4');
    expect(seen.transfers).toBe(1);
    expect(await query(requestNo)).toMatchObject({ pay_status: 'PAYING', payments: [{ network: '4', currency: 'USDT', amount: '10.5', tx_hash: tx, confirmations: 1, status: 'SEEN' }] });
    await mine(CONFIRMATIONS - 1);
    await t.gateway.scanChain('4');
    const paid = await query(requestNo);
    expect(paid).toMatchObject({ pay_status: 'PAID', real_pay_amount: '10.5', payments: [{ tx_hash: tx, confirmations: CONFIRMATIONS, status: 'FINAL' }] });
    const notes = await t.gateway.store.notifications.listByOrder(paymentOrderNo);
    expect(notes.map((n) => n.notifyType)).toEqual(['ORDER_PAID']);
    // Scanning again changes nothing: the transfer is stored once.
    await mine(2);
    await t.gateway.scanChain('4');
    expect(((await query(requestNo)).payments as unknown[]).length).toBe(1);
  });

  it('completes an order from two transfers, and records a short one as PAYING until the rest arrives', async () => {
    const { requestNo, address } = await orderWithAddress('20');
    await pay(address, 5_000_000n);
    await mine(CONFIRMATIONS);
    await t.gateway.scanChain('4');
    expect(await query(requestNo)).toMatchObject({ pay_status: 'PAYING' });
    await pay(address, 15_000_000n);
    await mine(CONFIRMATIONS);
    await t.gateway.scanChain('4');
    const done = await query(requestNo);
    expect(done).toMatchObject({ pay_status: 'PAID', real_pay_amount: '20' });
    expect((done.payments as unknown[]).length).toBe(2);
  });

  it('reverts a counted payment whose block left the chain, and counts it once when it is mined again', async () => {
    const { paymentOrderNo, requestNo, address } = await orderWithAddress('7');
    await t.gateway.scanChain('4');
    const snapshot = (await rpc('evm_snapshot')) as unknown as string;
    const tx = await pay(address, 7_000_000n);
    await t.gateway.scanChain('4');
    expect(await query(requestNo)).toMatchObject({ pay_status: 'PAYING', payments: [{ tx_hash: tx, status: 'SEEN' }] });
    // The block with the transfer is dropped and replaced by empty blocks.
    await rpc('evm_revert', [snapshot]);
    await mine(2);
    await t.gateway.scanChain('4');
    const reverted = await query(requestNo);
    expect(reverted).toMatchObject({ pay_status: 'PENDING', pay_exception: 'REVERTED', payments: [{ tx_hash: tx, status: 'REVERTED' }] });
    const notes = await t.gateway.store.notifications.listByOrder(paymentOrderNo);
    expect(notes.map((n) => n.notifyType)).toContain('ORDER_EXCEPTION');
    // The payer sends again (a new transaction): it counts, the reverted one does not.
    await pay(address, 7_000_000n);
    await mine(CONFIRMATIONS);
    await t.gateway.scanChain('4');
    const again = await query(requestNo);
    expect(again).toMatchObject({ pay_status: 'PAID', real_pay_amount: '7' });
  });
});
