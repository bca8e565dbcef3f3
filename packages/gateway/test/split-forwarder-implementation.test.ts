// A split that pays the network's forwarder implementation could never be settled: the
// implementation refuses the native coin (DirectCall, every distribution of the plan reverts and
// the whole payment, the platform fee included, stays at the deposit address for good) and keeps
// any token sent to it (nothing can move it). Refused like the factory (41032) at creation, and
// no deposit address is computed for such a plan. Was: only the factory was refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evmDepositAddresses } from '../src/adapters/chain/evm/deposit-addresses.js';
import { settlementPlan } from '../src/domain/settlement-plan.js';
import { api, deploymentWithFactory, orderBody, startTestGateway, TEST_FORWARDER, type TestGateway } from './harness.js';

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({ kind: 'sqlite', config: { deployment: deploymentWithFactory(['4']) } });
}, 60_000);
afterAll(async () => {
  await t?.close();
});

describe('a split paying the forwarder implementation', () => {
  it('is refused at creation (41032)', async () => {
    for (const payee of [TEST_FORWARDER, TEST_FORWARDER.toLowerCase()]) {
      const body = orderBody(t.merchant, t.clock, { receive_network: '4', divide_detail: { seller_amount: '5.00', seller_addr: payee, merchant_amount: '5.50' } });
      const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });
      expect(res.json.code, res.text).toBe(41032);
    }
  });

  it('gets no deposit address', () => {
    const network = t.gateway.config.deployment.networks.find((n) => n.id === '4')!;
    const plan = settlementPlan('P1', { network: '4', currency: 'POL', contract: null, amountBase: 10n ** 18n, fee: 10n ** 16n, split: { seller: { address: TEST_FORWARDER, amount: 5n * 10n ** 17n }, merchant: 5n * 10n ** 17n, others: [] } }, '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65');
    expect(() => evmDepositAddresses.addressFor(plan, network)).toThrow(RangeError);
  });
});
