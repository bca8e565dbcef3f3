// The check of a network's deployed factory against the configuration, on anvil: deposit
// addresses are refused on a network whose factory would not settle them.
import { createPublicClient, http, type Address, type PublicClient } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mainnetDeployment, type NetworkDeployment } from '../../../domain/catalogue.js';
import { settlementPlan } from '../../../domain/settlement-plan.js';
import { freshAddress, startTestChain, type TestChain } from '../../../../test/evm-chain.js';
import { CheckedDepositAddresses, checkFactory, checkNetwork, evmDepositAddresses } from './deposit-addresses.js';

let chain: TestChain;
let token: Address;
beforeAll(async () => {
  chain = await startTestChain();
  token = await chain.deployToken({ name: 'Tether USD', symbol: 'USDT', decimals: 6 });
});
afterAll(async () => {
  await chain?.stop();
});

const DEAD_RPC = 'http://127.0.0.1:9';
const client = (url: string) => createPublicClient({ transport: http(url, { retryCount: 0, timeout: 2_000 }), cacheTime: 0 });

function network(over: { factory?: string; forwarder?: string; rpcUrls?: string[] } = {}): NetworkDeployment {
  const base = mainnetDeployment().networks.find((n) => n.id === '4')!;
  return {
    ...base,
    chainId: chain.node.chainId,
    currencies: base.currencies.map((c) => (c.code === 'USDT' ? { ...c, contract: token.toLowerCase() } : c)).filter((c) => c.code !== 'USDC'),
    chain: {
      ...base.chain,
      rpcUrls: over.rpcUrls ?? [chain.node.rpcUrl],
      factory: over.factory ?? chain.factory.factory,
      forwarder: over.forwarder ?? chain.factory.implementation,
      feeAddress: freshAddress(),
    },
  };
}

const plan = () =>
  settlementPlan('P20260101000001', { network: '4', currency: 'USDT', contract: token.toLowerCase(), amountBase: 1_000_000n, fee: 10_000n, split: null }, freshAddress(), freshAddress());

describe('checkFactory', () => {
  it('is OK for the factory and the implementation it created', async () => {
    expect(await checkFactory(client(chain.node.rpcUrl), chain.factory.factory, chain.factory.implementation)).toEqual({ state: 'OK' });
  });

  it('is a MISMATCH for another forwarder, an address without code, or a contract that is not a factory', async () => {
    const c = client(chain.node.rpcUrl);
    const other = await checkFactory(c, chain.factory.factory, token);
    expect(other).toMatchObject({ state: 'MISMATCH', reason: expect.stringContaining('not the configured forwarder') });
    expect(await checkFactory(c, freshAddress(), chain.factory.implementation)).toMatchObject({ state: 'MISMATCH', reason: expect.stringContaining('no contract') });
    expect(await checkFactory(c, token, chain.factory.implementation)).toMatchObject({ state: 'MISMATCH', reason: expect.stringContaining('not a forwarder factory') });
  });

  it('stays UNCHECKED when no node answers', async () => {
    expect(await checkFactory(client(DEAD_RPC), chain.factory.factory, chain.factory.implementation)).toMatchObject({ state: 'UNCHECKED' });
  });
});

describe('CheckedDepositAddresses', () => {
  it('hands out the configured address while unchecked and once checked OK', async () => {
    const deposits = new CheckedDepositAddresses();
    const net = network();
    const p = plan();
    expect(evmDepositAddresses.addressFor(p, net)).toMatch(/^0x[0-9a-fA-F]{40}$/);
    expect(deposits.addressFor(p, net)).toBe(evmDepositAddresses.addressFor(p, net));
    expect(deposits.pending([net])).toBe(true);
    expect([...(await deposits.checkAll([net]))]).toEqual([['4', { state: 'OK' }]]);
    expect(deposits.pending([net])).toBe(false);
    expect(deposits.available(net)).toBe(true);
    expect(deposits.addressFor(p, net)).toBe(evmDepositAddresses.addressFor(p, net));
    // Known OK: not asked again.
    expect((await deposits.checkAll([net])).size).toBe(0);
  });

  it('refuses addresses on a mismatching network, keeps that through a node outage, and lifts it once the factory matches', async () => {
    const deposits = new CheckedDepositAddresses();
    const wrong = network({ forwarder: token });
    const changed = await deposits.checkAll([wrong]);
    expect(changed.get('4')).toMatchObject({ state: 'MISMATCH' });
    expect(deposits.available(wrong)).toBe(false);
    expect(deposits.addressFor(plan(), wrong)).toBeNull();
    // A node that does not answer changes nothing known.
    expect((await deposits.checkAll([wrong], () => [client(DEAD_RPC)])).size).toBe(0);
    expect(deposits.status('4').state).toBe('MISMATCH');
    // The operator fixes the configuration (or the node catches up): asked again, now OK.
    const fixed = network();
    expect([...(await deposits.checkAll([fixed]))]).toEqual([['4', { state: 'OK' }]]);
    expect(deposits.addressFor(plan(), fixed)).not.toBeNull();
  });

  it('leaves networks without nodes, factory or forwarder alone', async () => {
    const deposits = new CheckedDepositAddresses();
    const none = network({ rpcUrls: [] });
    expect((await deposits.checkAll([none])).size).toBe(0);
    expect(deposits.pending([none])).toBe(false);
    expect(deposits.available(none)).toBe(true);
  });
});

describe('checkNetwork', () => {
  const clients = (n: NetworkDeployment) => n.chain.rpcUrls.map(client);

  it('is OK when every answering endpoint serves the configured chain and every token has the configured decimals', async () => {
    const net = network({ rpcUrls: [chain.node.rpcUrl, DEAD_RPC] });
    expect(await checkNetwork(clients(net), net)).toEqual({ state: 'OK', unanswered: 1 });
  });

  it('is a MISMATCH when an endpoint serves another chain id, whichever it is', async () => {
    const other = { ...network({ rpcUrls: [DEAD_RPC, chain.node.rpcUrl] }), chainId: 137 };
    expect(await checkNetwork(clients(other), other)).toMatchObject({ state: 'MISMATCH', reason: expect.stringContaining(`endpoint 2 of 2 serves chain id ${chain.node.chainId}, not the configured chain_id 137`) });
  });

  it('refuses a token whose decimals, code or interface differ, and only that token', async () => {
    const usdc18 = await chain.deployToken({ name: 'USD Coin', symbol: 'USDC', decimals: 18 });
    const base = network();
    const withUsdc = (contract: string): NetworkDeployment => ({ ...base, currencies: [...base.currencies, { code: 'USDC', contract: contract.toLowerCase(), decimals: 6, precision: 6 }] });
    const deposits = new CheckedDepositAddresses();
    const wrongDecimals = withUsdc(usdc18);
    const check = await checkNetwork(clients(wrongDecimals), wrongDecimals);
    expect(check).toEqual({ state: 'OK', refused: new Map([[usdc18.toLowerCase(), { reason: expect.stringContaining('has 18 decimals, not the configured 6'), absent: false }]]) });
    await deposits.checkAll([wrongDecimals]);
    expect(deposits.available(wrongDecimals)).toBe(true);
    expect(deposits.available(wrongDecimals, usdc18)).toBe(false);
    expect(deposits.available(wrongDecimals, token)).toBe(true);
    const usdcPlan = settlementPlan('P20260101000002', { network: '4', currency: 'USDC', contract: usdc18.toLowerCase(), amountBase: 1_000_000n, fee: 10_000n, split: null }, freshAddress(), freshAddress());
    expect(deposits.addressFor(usdcPlan, wrongDecimals)).toBeNull();
    expect(deposits.addressFor(plan(), wrongDecimals)).not.toBeNull();

    const noCode = withUsdc(freshAddress());
    const absent = await checkNetwork(clients(noCode), noCode);
    expect(absent.state === 'OK' && [...(absent.refused?.values() ?? [])]).toEqual([{ reason: expect.stringContaining('there is no contract at the USDC contract'), absent: true }]);
    const notToken = withUsdc(chain.factory.factory);
    const r = await checkNetwork(clients(notToken), notToken);
    expect(r.state === 'OK' && [...(r.refused?.values() ?? [])]).toEqual([{ reason: expect.stringContaining('does not answer decimals()'), absent: false }]);
  });

  it('leaves a network unchecked, not a token refused, when the node fails to answer decimals() (a 429, a timeout), and asks again', async () => {
    const net = network({ rpcUrls: [chain.node.rpcUrl] });
    const real = client(chain.node.rpcUrl);
    let failing = true;
    // The node answers everything but decimals(), which it fails as an overloaded provider does.
    const flaky = {
      ...real,
      getChainId: () => real.getChainId(),
      getCode: (a: Parameters<typeof real.getCode>[0]) => real.getCode(a),
      readContract: (a: Parameters<typeof real.readContract>[0]) => {
        if (failing && a.functionName === 'decimals') return Promise.reject(new Error('HTTP request failed. Status: 429 Too Many Requests'));
        return real.readContract(a);
      },
    } as unknown as PublicClient;
    const deposits = new CheckedDepositAddresses();
    await deposits.checkAll([net], () => [flaky]);
    expect(deposits.status('4')).toMatchObject({ state: 'UNCHECKED', reason: expect.stringContaining('429') });
    expect(deposits.available(net, token)).toBe(true);
    expect(deposits.pending([net])).toBe(true);
    failing = false;
    expect([...(await deposits.checkAll([net], () => [flaky]))]).toEqual([['4', { state: 'OK' }]]);
    expect(deposits.available(net, token)).toBe(true);
    expect(deposits.pending([net])).toBe(false);
  });

  it('asks again an endpoint that did not answer, and refuses the network once it shows another chain', async () => {
    const net = network({ rpcUrls: [chain.node.rpcUrl, DEAD_RPC] });
    const deposits = new CheckedDepositAddresses();
    expect([...(await deposits.checkAll([net]))]).toEqual([['4', { state: 'OK', unanswered: 1 }]]);
    expect(deposits.pending([net])).toBe(true);
    expect(deposits.available(net)).toBe(true);
    // The second endpoint comes up, serving another chain.
    const otherChain = { ...client(chain.node.rpcUrl), getChainId: async () => 1 } as unknown as PublicClient;
    const changed = await deposits.checkAll([net], () => [client(chain.node.rpcUrl), otherChain]);
    expect(changed.get('4')).toMatchObject({ state: 'MISMATCH', reason: expect.stringContaining('endpoint 2 of 2 serves chain id 1') });
    expect(deposits.available(net)).toBe(false);
  });
});
