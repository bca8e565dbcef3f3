// Shared steps of the tests that pay orders on anvil: a deployment mapping chosen network enums
// to the test chain, an order created through the signed API with its pair chosen on the cashier
// API, the signed query, and mining.
import { expect } from 'vitest';
import type { Address } from 'viem';
import { mainnetDeployment, type Deployment, type NetworkId } from '../src/domain/catalogue.js';
import type { TestChain } from './evm-chain.js';
import { api, orderBody, type TestGateway } from './harness.js';

export const FEE_ADDRESS = '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65';

export interface NetworkOnChain {
  rpcUrls: string[];
  confirmations: number;
  /** Token contracts by currency code (others keep their mainnet address, which holds nothing here). */
  contracts?: Record<string, Address>;
}

/** The mainnet deployment with `networks` mapped to the test chain; the others have no RPC URLs. */
export function deploymentOn(chain: TestChain, networks: Partial<Record<NetworkId, NetworkOnChain>>): { deployment: Deployment } {
  const base = mainnetDeployment();
  return {
    deployment: {
      ...base,
      networks: base.networks.map((n) => {
        const on = networks[n.id];
        if (!on) return n;
        return {
          ...n,
          chainId: chain.node.chainId,
          chain: { rpcUrls: on.rpcUrls, confirmations: on.confirmations, factory: chain.factory.factory, forwarder: chain.factory.implementation, feeAddress: FEE_ADDRESS },
          currencies: n.currencies.map((c) => (on.contracts?.[c.code] ? { ...c, contract: on.contracts[c.code]!.toLowerCase() } : c)),
        };
      }),
    },
  };
}

/**
 * Network 4 (Polygon) of a gateway configuration file (`networks['4']`) on the test chain: its
 * factory, USDT at `usdt`, read through `rpcUrl`, settled by the relayer key given.
 */
export function polygonOnTestChain(chain: TestChain, rpcUrl: string, usdt: Address, confirmations: number, relayerKey: string) {
  return {
    chain_id: chain.node.chainId,
    rpc_urls: [rpcUrl],
    confirmations,
    factory: chain.factory.factory,
    forwarder: chain.factory.implementation,
    fee_address: FEE_ADDRESS,
    currencies: { USDT: { contract: usdt } },
    relayer_key: relayerKey,
  };
}

export interface PlacedOrder {
  paymentOrderNo: string;
  requestNo: string;
  address: Address;
  amountBase: bigint;
  /** The cashier token (`t`), to choose again. */
  token: string;
}

/** An order through the signed API, then the (network, currency) chosen on the cashier API. */
export async function placeOrder(
  t: TestGateway,
  opts: { amount: string; currency?: string; network?: NetworkId; payCurrency?: string; overrides?: Record<string, unknown> },
): Promise<PlacedOrder> {
  const currency = opts.currency ?? 'USDT';
  const body = orderBody(t.merchant, t.clock, { total_amount: opts.amount, merchant_order_currency: currency, notify_url: 'https://merchant.example/sparkpay/notify', ...opts.overrides });
  const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });
  expect(res.json.code, res.json.message).toBe(0);
  const cashier = new URL(String(res.json.data!.cashier_url));
  const paymentOrderNo = String(res.json.data!.payment_order_no);
  const chosen = await fetch(`${t.baseUrl}/cashier/api/orders/${paymentOrderNo}/select?t=${cashier.searchParams.get('t')}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ network: opts.network ?? '4', currency: opts.payCurrency ?? currency }),
  });
  const selected = (await chosen.json()) as { address: Address; amount_base: string };
  expect(chosen.status, JSON.stringify(selected)).toBe(200);
  return { paymentOrderNo, requestNo: String(body.request_no), address: selected.address, amountBase: BigInt(selected.amount_base), token: cashier.searchParams.get('t')! };
}

export async function queryOrder(t: TestGateway, requestNo: string): Promise<Record<string, unknown>> {
  const res = await api(t.baseUrl, { path: `/v4/pay/orders/${t.merchant.merchantNo}/${requestNo}`, merchant: t.merchant, clock: t.clock });
  expect(res.json.code, res.json.message).toBe(0);
  return res.json.data as Record<string, unknown>;
}

export async function mine(chain: TestChain, blocks: number): Promise<void> {
  await chain.relayer.public.request({ method: 'anvil_mine' as never, params: [`0x${blocks.toString(16)}`] as never });
}

export async function rpc(chain: TestChain, method: string, params: unknown[] = []): Promise<unknown> {
  return chain.relayer.public.request({ method: method as never, params: params as never });
}

/**
 * Mines a block stamped with the gateway's (injected) clock when the chain's time is behind it.
 * The expiry closes an order only once a scan has covered the chain until its deadline, by the
 * head block's time: a test that moves the clock past a deadline moves the chain with it.
 */
export async function mineAtClock(chain: TestChain, clock: { seconds(): number }): Promise<void> {
  const latest = Number((await chain.relayer.public.getBlock({ blockTag: 'latest' })).timestamp);
  if (latest < clock.seconds()) await rpc(chain, 'evm_setNextBlockTimestamp', [`0x${clock.seconds().toString(16)}`]);
  await mine(chain, 1);
}

export async function notifyTypes(t: TestGateway, paymentOrderNo: string): Promise<string[]> {
  return (await t.gateway.store.notifications.listByOrder(paymentOrderNo)).map((n) => n.notifyType);
}
