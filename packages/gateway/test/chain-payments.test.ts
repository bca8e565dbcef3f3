// Payments on a real EVM node (issue 4): anvil with the forwarder factory and a 6-decimal USDT,
// the gateway's Polygon (4) mapped to it. An order is created through the signed API, the pair
// chosen on the cashier API, tokens sent to the deposit address from a funded account, and the
// chain scan drives the order to PAYING and PAID; a reorganisation reverts a counted payment, and
// one that brings a payment into blocks already scanned sends the scan back for it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFunctionData, erc20Abi, type Address } from 'viem';
import { mainnetDeployment } from '../src/domain/catalogue.js';
import { DATABASE_KINDS } from './databases.js';
import { minedReceipt } from '../src/adapters/chain/evm/clients.js';
import { startTestChain, type TestChain } from './evm-chain.js';
import { api, orderBody, startTestGateway, type TestGateway } from './harness.js';
import { openReceived, startReceiver, type Receiver } from './notify-receiver.js';

const FEE_ADDRESS = '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65';
const CONFIRMATIONS = 3;

describe.each(DATABASE_KINDS)('payments on anvil (%s)', (kind) => {
  let chain: TestChain;
  let usdt: Address;
  let t: TestGateway;
  let receiver: Receiver;

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
    receiver = await startReceiver();
    t = await startTestGateway({ kind, config: { deployment, notifyAllowPrivate: true } });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await chain?.stop();
    await receiver?.close();
  });

  const rpc = (method: string, params: unknown[] = []) => chain.relayer.public.request({ method: method as never, params: params as never });
  const mine = (blocks: number) => rpc('anvil_mine', [`0x${blocks.toString(16)}`]);

  async function orderWithAddress(amount = '10.50', notifyUrl = 'https://merchant.example/sparkpay/notify'): Promise<{ paymentOrderNo: string; requestNo: string; address: Address }> {
    const body = orderBody(t.merchant, t.clock, { total_amount: amount, notify_url: notifyUrl });
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

  it('sees the transfer, counts confirmations and marks the order PAID once final, and the notification is delivered', async () => {
    const { paymentOrderNo, requestNo, address } = await orderWithAddress('10.50', receiver.url);
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
    await t.gateway.notifications.deliverDue({ scan: true });
    const [delivered] = await receiver.waitFor(1);
    const { payload } = openReceived(delivered!, { merchantPrivateKey: t.merchant.privateKey, platformPublicKey: t.merchant.platformPublicKey });
    expect(payload).toMatchObject({ payment_order_no: paymentOrderNo, notify_type: 'ORDER_PAID', pay_status: 'PAID', payments: [{ tx_hash: tx, status: 'FINAL' }] });
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

  it('counts a payment mined before the deadline but scanned after it: the expiry waits for a scan pass that started past the deadline', async () => {
    const { paymentOrderNo, requestNo, address } = await orderWithAddress('3', receiver.url);
    expect((await t.gateway.scanChain('4')).caughtUp).toBe(true);
    const tx = await pay(address, 3_000_000n);
    // The deadline passes before the next pass: the scan that caught up started before it.
    const deadline = async (paymentOrderNo: string) => (await t.gateway.store.orders.get(paymentOrderNo))!.state.expireTime;
    t.clock.advance((await deadline(paymentOrderNo)) - t.clock.seconds());
    expect(await t.gateway.expireOrders()).toBe(0);
    expect(await query(requestNo)).toMatchObject({ pay_status: 'PENDING' });
    // The pass started at the deadline finds the transfer; the order waits while it confirms.
    expect(await t.gateway.scanChain('4')).toMatchObject({ transfers: 1, caughtUp: true });
    t.clock.advance(60);
    expect(await t.gateway.expireOrders()).toBe(0);
    await mine(CONFIRMATIONS - 1);
    await t.gateway.scanChain('4');
    expect(await t.gateway.expireOrders()).toBe(0);
    const paid = await query(requestNo);
    expect(paid).toMatchObject({ pay_status: 'PAID', closed_time: 0, payments: [{ tx_hash: tx, status: 'FINAL' }] });
    expect(paid.pay_exception).toBeUndefined();
    expect((await t.gateway.store.notifications.listByOrder(paymentOrderNo)).map((n) => n.notifyType)).toEqual(['ORDER_PAID']);
    // An order that nobody paid closes at the first expiry run after a pass past its deadline.
    const unpaid = await orderWithAddress('4');
    t.clock.advance((await deadline(unpaid.paymentOrderNo)) - t.clock.seconds() + 1);
    expect(await t.gateway.expireOrders()).toBe(0);
    await t.gateway.scanChain('4');
    expect(await t.gateway.expireOrders()).toBe(1);
    expect(await query(unpaid.requestNo)).toMatchObject({ pay_status: 'CLOSED', close_reason: 'EXPIRED' });
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

  it('finds a transfer that a reorganisation brings into blocks the scan had already passed', async () => {
    const { requestNo, address } = await orderWithAddress('4');
    await t.gateway.scanChain('4');
    const snapshot = (await rpc('evm_snapshot')) as unknown as string;
    // Two empty blocks are scanned: the cursor passes them.
    await mine(2);
    const passed = await t.gateway.scanChain('4');
    expect(passed.transfers).toBe(0);
    // They are replaced by a chain whose first new block holds the payment.
    await rpc('evm_revert', [snapshot]);
    const tx = await pay(address, 4_000_000n);
    await mine(2);
    const rescan = await t.gateway.scanChain('4');
    expect(rescan.scanned!.from).toBeLessThan(passed.scanned!.to);
    // Three blocks deep on the new chain: final at once.
    const found = await query(requestNo);
    expect(found).toMatchObject({ pay_status: 'PAID', real_pay_amount: '4', payments: [{ tx_hash: tx, status: 'FINAL', confirmations: CONFIRMATIONS }] });
    expect((found.payments as { block_number: number }[])[0]!.block_number).toBeLessThanOrEqual(passed.scanned!.to);
  });

  it('counts a transaction once when a reorganisation mines it again in another block', async () => {
    const { requestNo, address } = await orderWithAddress('3');
    await t.gateway.scanChain('4');
    const snapshot = (await rpc('evm_snapshot')) as unknown as string;
    // The payer signs once; the same signed bytes are mined, dropped by the reorg, and mined again.
    const request = await chain.payer.wallet.prepareTransactionRequest({
      to: usdt,
      data: encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [address, 3_000_000n] }),
    });
    const raw = await chain.payer.wallet.signTransaction(request);
    const first = await chain.payer.public.sendRawTransaction({ serializedTransaction: raw });
    await minedReceipt(chain.payer, first);
    await t.gateway.scanChain('4');
    const before = await query(requestNo);
    expect(before).toMatchObject({ pay_status: 'PAYING', payments: [{ tx_hash: first, status: 'SEEN' }] });
    const firstBlock = (before.payments as { block_number: number }[])[0]!.block_number;
    await rpc('evm_revert', [snapshot]);
    await mine(1);
    const again = await chain.payer.public.sendRawTransaction({ serializedTransaction: raw });
    expect(again).toBe(first);
    await minedReceipt(chain.payer, again);
    await mine(CONFIRMATIONS);
    await t.gateway.scanChain('4');
    await t.gateway.scanChain('4');
    const after = await query(requestNo);
    expect(after).toMatchObject({ pay_status: 'PAID', real_pay_amount: '3' });
    const payments = after.payments as { tx_hash: string; status: string; block_number: number }[];
    expect(payments).toHaveLength(1);
    expect(payments[0]).toMatchObject({ tx_hash: first, status: 'FINAL' });
    expect(payments[0]!.block_number).not.toBe(firstBlock);
  });

  // Last: it moves the chain's clock ten days ahead of the real one.
  it('keeps an overdue order open while the node’s newest block is older than the deadline (a node that stopped importing blocks still answers)', async () => {
    // The gateway's clock ten days ahead of the chain's, so that its head block predates the deadline.
    const chainNow = Number((await chain.relayer.public.getBlock({ blockTag: 'latest' })).timestamp);
    t.clock.advance(Math.max(0, chainNow + 10 * 86_400 - t.clock.seconds()));
    const { paymentOrderNo } = await orderWithAddress('5');
    const deadline = (await t.gateway.store.orders.get(paymentOrderNo))!.state.expireTime;
    t.clock.advance(deadline - t.clock.seconds() + 60);
    // The pass reaches the head, but that block is from before the deadline: money mined after it
    // and before the deadline may still come.
    expect(await t.gateway.scanChain('4')).toMatchObject({ caughtUp: true });
    expect(await t.gateway.expireOrders()).toBe(0);
    expect((await t.gateway.store.orders.get(paymentOrderNo))!.state.status).toBe('PENDING');
    // A block from after the deadline: everything before it has been scanned.
    await rpc('evm_setNextBlockTimestamp', [`0x${(deadline + 1).toString(16)}`]);
    await mine(1);
    await t.gateway.scanChain('4');
    expect(await t.gateway.expireOrders()).toBe(1);
    expect((await t.gateway.store.orders.get(paymentOrderNo))!.state).toMatchObject({ status: 'CLOSED', closeReason: 'EXPIRED' });
  });
});
