// Settlement exactly once across crashes and instances (issue 5, PROTOCOL §15a), with real
// processes (`sparkpay start` from the built dist), a real anvil and a JSON-RPC proxy in front of
// it:
// - a gateway killed with SIGKILL after its settlement transaction reached the node and before it
//   heard back (so before it could record it as sent) is restarted: it finds the transaction it
//   recorded before broadcasting, follows it to finality, completes the orders, nobody paid twice;
// - two gateways on one PostgreSQL database settle 100 orders, one of them killed midway: every
//   order settled once, no relayer nonce used twice, no transaction wasted.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/cli/config.js';
import { parseEventLogs, type Address } from 'viem';
import { forwarderFactoryAbi } from '../src/adapters/chain/evm/contract-artifacts.js';
import { orderRef } from '../src/adapters/chain/evm/forwarder-plan.js';
import { devnetAccount } from '../src/adapters/devnet/devnet.js';
import { DATABASE_KINDS, PG_BASE_URL, type DatabaseKind } from './databases.js';
import { minedReceipt } from '../src/adapters/chain/evm/clients.js';
import { freshAddress, startTestChain, type TestChain } from './evm-chain.js';
import { FEE_ADDRESS, mine, placeOrder, polygonOnTestChain, queryOrder, type PlacedOrder } from './chain-setup.js';
import { ManualClock, startTestGateway, TEST_MASTER_KEY, WALLET, type TestGateway } from './harness.js';
import { assertGatewayBuilt, freePort, startGatewayProcess, stopProcess, waitHealthy, type GatewayProcess } from './processes.js';
import { startRpcProxy, type RpcProxy } from './rpc-proxy.js';
import { waitUntil } from './wait.js';

const CONFIRMATIONS = 2;
const USDT = 1_000_000n;
const RELAYER = devnetAccount(7);

/** The child gateways run on the system clock; the orders are made on it too. */
class RealClock extends ManualClock {
  override nowMs(): number {
    return Date.now();
  }
  override seconds(): number {
    return Math.floor(Date.now() / 1000);
  }
}

interface Rig {
  chain: TestChain;
  usdt: Address;
  proxy: RpcProxy;
  /** In-process gateway (workers off) on the same database: makes, pays and queries the orders. */
  t: TestGateway;
  spawnGateway(name: string): Promise<GatewayProcess>;
  /** Pays every order in full and scans until they are PAID. */
  payAll(orders: readonly PlacedOrder[], amount: bigint): Promise<void>;
  distributionsOf(paymentOrderNo: string): Promise<number>;
  close(): Promise<void>;
}

async function startRig(kind: DatabaseKind): Promise<Rig> {
  assertGatewayBuilt();
  const chain = await startTestChain();
  const children: GatewayProcess[] = [];
  let proxy: RpcProxy | undefined;
  let t: TestGateway | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'sparkpay-settle-crash-'));
  const close = async () => {
    for (const c of children) await stopProcess(c, 'SIGKILL');
    await t?.close();
    await proxy?.close();
    await chain.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const usdt = await chain.deployToken({ name: 'Tether USD (test)', symbol: 'USDT', decimals: 6 });
    proxy = await startRpcProxy(chain.node.rpcUrl);
    const network = polygonOnTestChain(chain, proxy.url, usdt, CONFIRMATIONS, RELAYER.privateKey);
    writeFileSync(join(dataDir, 'config.json'), JSON.stringify({ chain_poll_ms: 100, settlement: { poll_ms: 100, lease_ms: 1_500 }, networks: { '4': network } }), { mode: 0o600 });
    const config = loadConfig('production', { SPARKPAY_DATA_DIR: dataDir, SPARKPAY_MASTER_KEY: TEST_MASTER_KEY });
    t = await startTestGateway({ kind, clock: new RealClock(), config: { deployment: config.deployment, relayers: config.relayers, settlement: config.settlement, chainPollMs: 100 } });
    const gw = t;
    return {
      chain,
      usdt,
      proxy,
      t: gw,
      async spawnGateway(name) {
        const child = startGatewayProcess({ name, port: await freePort(), env: { SPARKPAY_DATA_DIR: dataDir, SPARKPAY_DATABASE_URL: gw.db.url, SPARKPAY_MASTER_KEY: TEST_MASTER_KEY } });
        children.push(child);
        return child;
      },
      async payAll(orders, amount) {
        // The cursor starts at the head: a first scan looks back only `confirmations` blocks.
        await gw.gateway.scanChain('4');
        for (const o of orders) await chain.pay(usdt, o.address, amount);
        await gw.gateway.scanChain('4');
        await mine(chain, CONFIRMATIONS);
        await gw.gateway.scanChain('4');
        for (const o of orders) expect((await gw.gateway.store.orders.get(o.paymentOrderNo))!.state.status).toBe('PAID');
      },
      async distributionsOf(paymentOrderNo) {
        const logs = await chain.relayer.public.getLogs({ address: chain.factory.factory, fromBlock: 0n, toBlock: 'latest' });
        return parseEventLogs({ abi: forwarderFactoryAbi, logs, eventName: 'Distribution' }).filter((d) => d.args.orderRef === orderRef(paymentOrderNo)).length;
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

describe.each(DATABASE_KINDS)('settlement across a SIGKILL of the gateway (%s)', (kind) => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig(kind);
  }, 60_000);
  afterAll(async () => {
    await rig?.close();
  });

  it('records the transaction before it is broadcast, and after a kill in between completes the orders paying everyone once', async () => {
    const { chain, usdt, proxy, t } = rig;
    const sellers = [freshAddress(), freshAddress(), freshAddress()];
    const orders: PlacedOrder[] = [];
    for (const seller of sellers) {
      orders.push(await placeOrder(t, { amount: '10', overrides: { divide_detail: { seller_amount: '7', seller_addr: seller, merchant_amount: '3' } } }));
    }
    await rig.payAll(orders, 10n * USDT);
    const [walletBefore, feeBefore] = await Promise.all([chain.balanceOf(usdt, WALLET), chain.balanceOf(usdt, FEE_ADDRESS)]);

    // The first gateway dies the moment the node has its settlement transaction.
    const first = await rig.spawnGateway('first');
    let killed = false;
    proxy.afterCall('eth_sendRawTransaction', async () => {
      await stopProcess(first, 'SIGKILL');
      killed = true;
    });
    await waitUntil('the settlement transaction to reach the node and the gateway to be killed', () => killed, 20_000, () => first.output.join(''));
    expect(first.proc.signalCode).toBe('SIGKILL');

    // What the dead process left: the transaction recorded as SIGNED (never marked sent), its orders SENT.
    const settlements = await Promise.all(orders.map(async (o) => (await t.gateway.store.settlements.get(o.paymentOrderNo))!));
    expect(settlements.map((s) => s.status)).toEqual(['SENT', 'SENT', 'SENT']);
    const txId = settlements[0]!.txId!;
    expect(new Set(settlements.map((s) => s.txId))).toEqual(new Set([txId]));
    expect(await t.gateway.store.settlements.getTx(txId)).toMatchObject({ status: 'SIGNED', orderCount: 3 });
    // The chain has it (automine): the sellers are paid already.
    await minedReceipt(chain.relayer, txId as `0x${string}`);
    for (const seller of sellers) expect(await chain.balanceOf(usdt, seller)).toBe(7n * USDT);

    // A restarted process is another instance: it takes over once the dead one's lease runs out.
    const second = await rig.spawnGateway('second');
    await waitHealthy(second, 20_000);
    // Its start summary names the network it serves and the relayer account to keep funded.
    await waitUntil('the start summary', () => second.output.join('').includes('network 4'), 5_000);
    expect(second.output.join('')).toMatch(new RegExp(`network 4 +chain id ${chain.node.chainId}, 1 RPC endpoint, factory ${chain.factory.factory}, relayer ${RELAYER.address}`));
    await mine(chain, CONFIRMATIONS);
    for (const o of orders) {
      await waitUntil(`order ${o.paymentOrderNo} to complete`, async () => (await queryOrder(t, o.requestNo)).pay_status === 'COMPLETED', 20_000, () => second.output.join(''));
    }
    await stopProcess(second, 'SIGTERM');

    // Everyone paid exactly once.
    for (const seller of sellers) expect(await chain.balanceOf(usdt, seller)).toBe(7n * USDT);
    const fee = 100_000n; // the 0.10 USD minimum per order
    expect((await chain.balanceOf(usdt, WALLET)) - walletBefore).toBe(3n * (3n * USDT - fee));
    expect((await chain.balanceOf(usdt, FEE_ADDRESS)) - feeBefore).toBe(3n * fee);
    for (const o of orders) expect(await rig.distributionsOf(o.paymentOrderNo)).toBe(1);
    expect(await t.gateway.store.settlements.getTx(txId)).toMatchObject({ status: 'FINAL', minedHash: txId });
    // The relayer sent one transaction in all.
    expect(await chain.relayer.public.getTransactionCount({ address: RELAYER.address })).toBe(1);
    for (const o of orders) {
      const done = await queryOrder(t, o.requestNo);
      expect(done.settlements).toMatchObject([
        { role: 'SELLER', amount: '7', tx_hash: txId, status: 'SETTLED' },
        { role: 'MERCHANT', amount: '2.9', tx_hash: txId, status: 'SETTLED' },
        { role: 'FEE', amount: '0.1', tx_hash: txId, status: 'SETTLED' },
      ]);
    }
  });
});

describe.runIf(PG_BASE_URL)('two gateways on one PostgreSQL database', () => {
  const ORDERS = 100;
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig('postgres');
  }, 60_000);
  afterAll(async () => {
    await rig?.close();
  });

  it('settle 100 orders, one gateway killed midway: every order settled once, every relayer nonce used once', async () => {
    const { chain, usdt, proxy, t } = rig;
    const orders: PlacedOrder[] = [];
    for (let i = 0; i < ORDERS; i += 1) orders.push(await placeOrder(t, { amount: '2' }));
    await rig.payAll(orders, 2n * USDT);
    const [walletBefore, feeBefore] = await Promise.all([chain.balanceOf(usdt, WALLET), chain.balanceOf(usdt, FEE_ADDRESS)]);

    const a = await rig.spawnGateway('a');
    const b = await rig.spawnGateway('b');
    await Promise.all([waitHealthy(a, 20_000), waitHealthy(b, 20_000)]);
    // The first settlement transaction sent kills its sender: the holder of the network's lease
    // (`host/pid/…`), before it hears back. The other must take over and finish its work.
    let victim: GatewayProcess | null = null;
    proxy.afterCall('eth_sendRawTransaction', async () => {
      const lease = await t.gateway.db.kysely.selectFrom('leases').select('owner').where('name', '=', 'settle:4').executeTakeFirstOrThrow();
      victim = [a, b].find((c) => lease.owner?.split('/')[1] === String(c.proc.pid)) ?? null;
      if (victim) await stopProcess(victim, 'SIGKILL');
    });
    const survivor = () => (victim === a ? b : a);
    // Blocks keep coming while they work.
    let mining = true;
    const miner = (async () => {
      while (mining) {
        await mine(chain, 1);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      await waitUntil(
        'all orders to complete',
        async () => {
          const statuses = await Promise.all(orders.map(async (o) => (await t.gateway.store.orders.get(o.paymentOrderNo))!.state.status));
          return statuses.every((s) => s === 'COMPLETED');
        },
        // About 12 s on a quiet machine; the survivor first waits for the dead one's lease to run
        // out, which a loaded CI machine stretches.
        120_000,
        () => survivor().output.join(''),
      );
    } finally {
      mining = false;
      await miner;
    }
    expect(victim).not.toBeNull();
    expect(victim!.proc.signalCode).toBe('SIGKILL');
    await stopProcess(survivor(), 'SIGTERM');

    for (const o of orders) expect(await rig.distributionsOf(o.paymentOrderNo)).toBe(1);
    const fee = 100_000n;
    expect((await chain.balanceOf(usdt, WALLET)) - walletBefore).toBe(BigInt(ORDERS) * (2n * USDT - fee));
    expect((await chain.balanceOf(usdt, FEE_ADDRESS)) - feeBefore).toBe(BigInt(ORDERS) * fee);
    // Every transaction the relayer signed is in the table once, and every one settled orders.
    const txs = await t.gateway.db.kysely.selectFrom('settlement_txs').selectAll().execute();
    const sentNonces = await chain.relayer.public.getTransactionCount({ address: RELAYER.address });
    expect(txs.filter((x) => x.status === 'FINAL').map((x) => Number(x.nonce)).sort((x, y) => x - y)).toEqual([...Array(sentNonces).keys()]);
    expect(txs.filter((x) => x.status === 'FINAL').reduce((n, x) => n + Number(x.order_count), 0)).toBe(ORDERS);
  }, 180_000);
});
