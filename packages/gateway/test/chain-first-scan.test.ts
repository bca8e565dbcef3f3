// The first scan of a network (issue 4, "nothing lost"): deposit addresses can be handed out
// while the network's node cannot be reached yet; the first scan that gets through must still
// find what was paid to them, however long ago, and not only the last `confirmations` blocks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Address } from 'viem';
import { FIRST_SCAN_MARGIN_SECONDS } from '../src/app/scan-chain.js';
import { DATABASE_KINDS } from './databases.js';
import { startTestChain, type TestChain } from './evm-chain.js';
import { deploymentOn, mine, placeOrder, queryOrder, rpc } from './chain-setup.js';
import { ManualClock, startTestGateway, type TestGateway } from './harness.js';

const CONFIRMATIONS = 3;
const HOUR = 3600;

describe.each(DATABASE_KINDS)('first scan of a network on anvil (%s)', (kind) => {
  let chain: TestChain;
  let t: TestGateway;
  let usdt: Address;
  /** The block the first scan must start from: the order is handed out half an hour after it. */
  let anchor: number;
  const timestamp = async (n: number) => Number(((await rpc(chain, 'eth_getBlockByNumber', [`0x${n.toString(16)}`, false])) as { timestamp: string }).timestamp);

  beforeAll(async () => {
    chain = await startTestChain();
    usdt = await chain.deployToken({ name: 'Tether USD (test)', symbol: 'USDT', decimals: 6 });
    // Ten blocks an hour apart: the scan has to find the right one by its time.
    await rpc(chain, 'anvil_mine', ['0xa', `0x${HOUR.toString(16)}`]);
    const config = deploymentOn(chain, {
      '4': { rpcUrls: [chain.node.rpcUrl], confirmations: CONFIRMATIONS, contracts: { USDT: usdt } },
      '2': { rpcUrls: [chain.node.rpcUrl], confirmations: CONFIRMATIONS, contracts: { USDT: usdt } },
    });
    anchor = Number(await rpc(chain, 'eth_blockNumber')) - 2;
    // The gateway's clock: half an hour after block `anchor`.
    t = await startTestGateway({ kind, config, clock: new ManualClock(((await timestamp(anchor)) + HOUR / 2) * 1000) });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await chain?.stop();
  });

  it('starts where the oldest watched deposit address was handed out, and finds a payment made long before', async () => {
    // The order is handed out half an hour after block `anchor`, and no scan runs for a long
    // time after: the node was unreachable, say.
    const order = await placeOrder(t, { amount: '5' });
    await chain.pay(usdt, order.address, 5_000_000n);
    await mine(chain, 20 * CONFIRMATIONS);
    t.clock.advance(HOUR);
    const r = await t.gateway.scanChain('4');
    expect(r.leased).toBe(true);
    // The last block at or before (handed out − margin): `anchor`, not head − confirmations.
    expect(HOUR / 2).toBeGreaterThan(FIRST_SCAN_MARGIN_SECONDS);
    expect(r.scanned?.from).toBe(anchor);
    expect(await queryOrder(t, order.requestNo)).toMatchObject({ pay_status: 'PAID', real_pay_amount: '5' });
  });

  it('with nothing watched yet, starts `confirmations` blocks below the head', async () => {
    const head = Number(await rpc(chain, 'eth_blockNumber'));
    const r = await t.gateway.scanChain('2');
    expect(r.scanned?.from).toBe(head - CONFIRMATIONS);
  });
});
