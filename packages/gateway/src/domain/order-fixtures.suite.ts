// Shared builders for the order creation tests (excluded from the build like every *.suite.ts).
// The default scenario is a valid standard order of 10.50 USDT by an active merchant with
// wallets and CA addresses on every network, priced against the demo rates.

import type { Deployment, NetworkId } from './catalogue.js';
import { mainnetDeployment } from './catalogue.js';
import type { MerchantView } from './merchant.js';
import { checkMerchant } from './merchant.js';
import type { OrderPlan, PlanContext } from './order-plan.js';
import { planOrder } from './order-plan.js';
import type { Edition } from './order-request.js';
import { parseCreateOrderRequest } from './order-request.js';
import type { RateTable } from './rates.js';
import { DEMO_RATES } from './rates.js';
import type { Refusal } from './result.js';

export const NOW = 1_750_000_000;

/** EIP-55 examples (checksummed) and plain lower-case addresses. */
export const ADDR = {
  seller: '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed',
  other1: '0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359',
  other2: '0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB',
  ca: '0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb',
  wallet: '0xde709f2102306220921060314715629080e2fb77',
} as const;

/** A distinct lower-case address per index (no checksum needed). */
export function addressN(i: number): string {
  return `0x${(i + 1).toString(16).padStart(40, 'a')}`;
}

const ALL: readonly NetworkId[] = ['2', '3', '4', '5'];

export function merchant(overrides: Partial<MerchantView> = {}): MerchantView {
  return {
    merchantNo: 'M1001',
    status: 'ACTIVE',
    onlinePayment: true,
    wallets: Object.fromEntries(ALL.map((n) => [n, ADDR.wallet])),
    caAddresses: Object.fromEntries(ALL.map((n) => [n, ADDR.ca])),
    ...overrides,
  };
}

export function context(overrides: Partial<PlanContext> = {}): PlanContext {
  return { merchant: merchant(), deployment: mainnetDeployment(), rates: DEMO_RATES, nowSeconds: NOW, ...overrides };
}

export type Body = Record<string, unknown>;

export function standardBody(overrides: Body = {}): Body {
  return {
    merchant_no: 'M1001',
    request_no: 'REQ_0001',
    merchant_order_time: NOW - 10,
    total_amount: '10.50',
    merchant_order_currency: 'USDT',
    ...overrides,
  };
}

export function proBody(overrides: Body = {}): Body {
  return {
    merchant_no: 'M1001',
    request_no: 'PRO_0001',
    merchant_order_time: NOW - 10,
    pricing_currency: 'USD',
    pricing_amount: '10.50',
    ...overrides,
  };
}

/** A split of the default 10.50 total: 8.00 seller, 2.50 merchant. */
export function baseSplit(overrides: Body = {}): Body {
  return { seller_amount: '8.00', seller_addr: ADDR.seller, merchant_amount: '2.50', ...overrides };
}

export type Outcome = { ok: true; plan: OrderPlan } | Refusal;

/** Everything order creation does after authentication: parse, merchant checks, plan. */
export interface Scenario {
  edition: Edition;
  body: Body;
  merchant: MerchantView | null;
  appMerchantNo: string;
  deployment: Deployment;
  rates: RateTable;
}

export function scenario(edition: Edition = 'standard'): Scenario {
  return {
    edition,
    body: edition === 'standard' ? standardBody() : proBody(),
    merchant: merchant(),
    appMerchantNo: 'M1001',
    deployment: mainnetDeployment(),
    rates: DEMO_RATES,
  };
}

export function run(s: Scenario): Outcome {
  const parsed = parseCreateOrderRequest(s.body, s.edition);
  if (!parsed.ok) return parsed;
  const checked = checkMerchant(s.merchant, s.appMerchantNo, parsed.request.merchantNo);
  if (!checked.ok) return checked;
  return planOrder(parsed.request, context({ merchant: checked.merchant, deployment: s.deployment, rates: s.rates }));
}

/** Parse and plan one body against the default context (with overrides). */
export function plan(body: Body, edition: Edition = 'standard', ctx: Partial<PlanContext> = {}): Outcome {
  const parsed = parseCreateOrderRequest(body, edition);
  if (!parsed.ok) return parsed;
  return planOrder(parsed.request, context(ctx));
}

/** The error code of an outcome, or 0 on success (as on the wire). */
export function codeOf(o: Outcome): number {
  return o.ok ? 0 : o.code;
}

/** The plan of a successful outcome; fails the test with the refusal otherwise. */
export function planOf(o: Outcome): OrderPlan {
  if (!o.ok) throw new Error(`expected a plan, got ${o.code}: ${o.message}`);
  return o.plan;
}
