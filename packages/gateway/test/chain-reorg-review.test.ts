// Three ways a counted ERC-20 payment was lost on anvil (found by review, session of
// 2026-11-27): a reorganisation to a shorter chain that mines the transfer again below its old
// block; a block hash read from a load balancer's lagging node taken for a reorganisation; and a
// pass that outlived its lease writing what it read before over what the next holder found.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFunctionData, erc20Abi, type Address, type Hex } from 'viem';
import { createGateway, type Gateway } from '../src/cli/gateway.js';
import { minedReceipt } from '../src/adapters/chain/evm/clients.js';
import { startTestChain, type TestChain } from './evm-chain.js';
import { deploymentOn, mine, mineAtClock, placeOrder, queryOrder, rpc } from './chain-setup.js';
import { startTestGateway, type TestGateway } from './harness.js';
import { startRpcProxy, type RpcProxy } from './rpc-proxy.js';

const CONFIRMATIONS = 3;

describe('counted payments through reorganisations, lagging nodes and lost leases', { timeout: 60_000 }, () => {
  let chain: TestChain;
  let t: TestGateway;
  let proxy: RpcProxy;
  let usdt: Address;
  const others: Gateway[] = [];

  beforeAll(async () => {
    chain = await startTestChain();
    usdt = await chain.deployToken({ name: 'Tether USD (test)', symbol: 'USDT', decimals: 6 });
    proxy = await startRpcProxy(chain.node.rpcUrl);
    const config = deploymentOn(chain, {
      '2': { rpcUrls: [proxy.url], confirmations: CONFIRMATIONS, contracts: { USDT: usdt } },
      '4': { rpcUrls: [chain.node.rpcUrl], confirmations: CONFIRMATIONS, contracts: { USDT: usdt } },
    });
    t = await startTestGateway({ kind: 'sqlite', config });
  }, 60_000);
  afterAll(async () => {
    for (const g of others) await g.close();
    await t?.close();
    await proxy?.close();
    await chain?.stop();
  });

  /** A signed transfer, to be mined (and mined again after a revert) as the same transaction. */
  const signed = async (to: Address, amount: bigint): Promise<Hex> => {
    const request = await chain.payer.wallet.prepareTransactionRequest({ to: usdt, data: encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [to, amount] }) });
    return chain.payer.wallet.signTransaction(request);
  };
  const send = async (raw: Hex) => {
    const hash = await chain.payer.public.sendRawTransaction({ serializedTransaction: raw });
    const r = await minedReceipt(chain.payer, hash);
    return Number(r.blockNumber);
  };

  it('a reorganisation to a shorter chain that mines the transfer again below its old block: found again, the order paid, not expired', async () => {
    const o = await placeOrder(t, { amount: '7', network: '4' });
    await t.gateway.scanChain('4');
    const raw = await signed(o.address, 7_000_000n);
    const snap = (await rpc(chain, 'evm_snapshot')) as string;
    await mine(chain, 1);
    const first = await send(raw);
    await mine(chain, 1);
    await t.gateway.scanChain('4');
    expect(await queryOrder(t, o.requestNo)).toMatchObject({ pay_status: 'PAYING' });
    await rpc(chain, 'evm_revert', [snap]);
    const again = await send(raw);
    await mine(chain, 1);
    expect(again).toBe(first - 1);
    const pass = await t.gateway.scanChain('4');
    expect(pass.reverted).toBe(1);
    await mine(chain, CONFIRMATIONS);
    await t.gateway.scanChain('4');
    expect(await queryOrder(t, o.requestNo)).toMatchObject({ pay_status: 'PAID', payments: [{ block_number: again, status: 'FINAL' }] });
    const deadline = (await t.gateway.store.orders.get(o.paymentOrderNo))!.state.expireTime;
    t.clock.advance(deadline - t.clock.seconds() + 1);
    await mineAtClock(chain, t.clock);
    await t.gateway.scanChain('4');
    expect(await t.gateway.expireOrders()).toBe(0);
    expect(await queryOrder(t, o.requestNo)).toMatchObject({ pay_status: 'PAID' });
  });

  it('a block hash read from a node behind the one that gave the head is no reorganisation: the payment stays counted', async () => {
    const o = await placeOrder(t, { amount: '5', network: '2' });
    await t.gateway.scanChain('2');
    await mine(chain, 1);
    await chain.pay(usdt, o.address, 5_000_000n);
    await t.gateway.scanChain('2');
    expect(await queryOrder(t, o.requestNo)).toMatchObject({ pay_status: 'PAYING' });
    await mine(chain, 1);
    // The head from an up-to-date node; everything after it from one 2 blocks behind.
    proxy.afterCall('eth_getBlockByNumber', async () => {
      proxy.lag(2);
      proxy.logsLag(2);
    });
    const lagging = await t.gateway.scanChain('2');
    proxy.lag(0);
    proxy.logsLag(0);
    expect(lagging.reverted).toBe(0);
    expect(await queryOrder(t, o.requestNo)).toMatchObject({ pay_status: 'PAYING', payments: [{ status: 'SEEN' }] });
    await mine(chain, 5);
    await t.gateway.scanChain('2');
    expect(await queryOrder(t, o.requestNo)).toMatchObject({ pay_status: 'PAID' });
  });

  it('a pass that outlives its lease while another instance scans writes nothing more: the other one’s finding stands', async () => {
    const o = await placeOrder(t, { amount: '3', network: '2' });
    await t.gateway.scanChain('2');
    const raw = await signed(o.address, 3_000_000n);
    const snap = (await rpc(chain, 'evm_snapshot')) as string;
    await send(raw);
    await t.gateway.scanChain('2');
    expect(await queryOrder(t, o.requestNo)).toMatchObject({ pay_status: 'PAYING' });
    await rpc(chain, 'evm_revert', [snap]);
    await mine(chain, 2);
    const b = await createGateway({ config: t.gateway.config, clock: t.clock, logger: pino({ level: 'silent' }), workers: false });
    others.push(b);
    let bPass: Awaited<ReturnType<Gateway['scanChain']>> | null = null;
    proxy.afterCall('eth_getLogs', async () => {
      // This pass is slow: its lease runs out, the transfer is mined again, and B scans meanwhile.
      await send(raw);
      t.clock.advance(31);
      bPass = await b.scanChain('2');
    });
    const aPass = await t.gateway.scanChain('2');
    expect(bPass).toMatchObject({ leased: true });
    expect(aPass).toMatchObject({ leased: false });
    await mine(chain, 5);
    await b.scanChain('2');
    expect(await queryOrder(t, o.requestNo)).toMatchObject({ pay_status: 'PAID' });
  });
});
