// POST /v4/pay/cashier and /v4/pro/pay/cashier (§7, §8): parse, check the merchant, plan
// (all business rules, in the pinned order), then store the order and its payment options in
// one transaction. The request_no reuse check (41023) needs a read only when the plan is
// refused or the insert hits the unique index, which keeps the common path to one write. request_no is the idempotency key: a repeat
// with an identical body (ignoring key order) returns the existing order; a different body
// is 41023; concurrent duplicates create one order (the unique index decides).
import { createHash } from 'node:crypto';
import { canonicalJson } from '@sparkpay/protocol';
import type { Deployment } from '../domain/catalogue.js';
import { parseCreateOrderRequest, type CreateOrderRequest } from '../domain/order-request.js';
import { checkMerchant, planOrder, requestNoKey, type OrderPlan } from '../domain/order-plan.js';
import type { RateTable } from '../domain/rates.js';
import type { AuthenticatedApp } from './authenticate.js';
import { createOrderData, type CreateOrderData } from './order-view.js';
import { DuplicateRequestError, nowSeconds, OrderNumberTakenError, type Clock, type Ids, type Metrics, type Store } from './ports.js';
import type { Edition, OrderRecord } from './records.js';
import { NonceGuard, ReplayedRequestError, replayFailure } from './nonce-guard.js';
import { fail, type Failure, type Result } from './result.js';

export interface CreateOrderDeps {
  store: Store;
  clock: Clock;
  ids: Ids;
  deployment: Deployment;
  rates: RateTable;
  publicUrl: string;
  metrics?: Metrics;
}

export async function createOrder(
  deps: CreateOrderDeps,
  app: AuthenticatedApp,
  edition: Edition,
  body: unknown,
  nonce: NonceGuard,
): Promise<Result<{ data: CreateOrderData }>> {
  const prepared = await prepareOrder(deps, app, edition, body);
  if (!prepared.ok) {
    // Refusals still remember the nonce first: a replay answers 40000 whatever the body says.
    if (!(await nonce.check())) return replayFailure();
    return prepared.repeat ? ((await repeatOf(deps, prepared.repeat)) ?? prepared) : prepared;
  }
  let order = prepared.order;
  for (let draw = 1; ; draw += 1) {
    try {
      await deps.store.transaction(async (tx) => {
        await nonce.checkIn(tx);
        await tx.orders.insert(order);
      });
      break;
    } catch (err) {
      if (err instanceof ReplayedRequestError) return replayFailure();
      // Another order drew the same number (the second's orders share 10 random digits): this one
      // draws again. It was a 50000, and the retry it asks for a replay of a spent nonce (40000).
      if (err instanceof OrderNumberTakenError && draw < ORDER_NUMBER_DRAWS) {
        nonce.rolledBack();
        order = { ...order, paymentOrderNo: deps.ids.paymentOrderNo(deps.clock.nowMs()) };
        continue;
      }
      if (!(err instanceof DuplicateRequestError)) throw err;
      nonce.rolledBack();
      if (!(await nonce.check())) return replayFailure();
      // A concurrent or earlier duplicate holds the request_no: answer as a repeat would.
      const repeat = await repeatOf(deps, prepared.repeat);
      if (repeat) return repeat;
      throw err;
    }
  }
  deps.metrics?.orderCreated(order.edition);
  return { ok: true, data: createOrderData(order, deps.publicUrl) };
}

/** Numbers an order creation draws at most (one taken already is drawn again). */
const ORDER_NUMBER_DRAWS = 5;

interface RepeatKey {
  merchantNo: string;
  requestNo: string;
  requestHash: string;
}

type Prepared = { ok: true; order: OrderRecord; repeat: RepeatKey } | (Failure & { repeat: RepeatKey | null });

/** Everything up to the write: parse, merchant checks, the plan, the new order record. */
async function prepareOrder(deps: CreateOrderDeps, app: AuthenticatedApp, edition: Edition, body: unknown): Promise<Prepared> {
  const parsed = parseCreateOrderRequest(body, edition);
  if (!parsed.ok) return { ...fail(parsed.code, parsed.message), repeat: null };
  const request = parsed.request;

  const merchant = await deps.store.merchants.get(request.merchantNo);
  const access = checkMerchant(merchant, app.merchantNo, request.merchantNo);
  if (!access.ok) return { ...fail(access.code, access.message), repeat: null };

  const repeat = { merchantNo: request.merchantNo, requestNo: request.requestNo, requestHash: hashRequest(edition, body) };
  const plan = planOrder(request, { merchant: access.merchant, deployment: deps.deployment, rates: deps.rates, nowSeconds: nowSeconds(deps.clock) });
  // A reused request_no answers before every later rule (§7 order), and a repeat of an
  // accepted request returns its order even if, say, its deadline has passed since.
  if (!plan.ok) return { ...fail(plan.code, plan.message), repeat };
  return { ok: true, order: newOrder(deps, app, request, plan.plan, repeat.requestHash), repeat };
}

/** The edition is part of the identity: the same body on the other endpoint is another request. */
function hashRequest(edition: Edition, body: unknown): string {
  return createHash('sha256').update(`${edition}\n${canonicalJson(body)}`).digest('hex');
}

async function repeatOf(deps: CreateOrderDeps, { merchantNo, requestNo, requestHash }: RepeatKey): Promise<Result<{ data: CreateOrderData }> | null> {
  const key = requestNoKey(requestNo);
  const existing = key === null ? null : await deps.store.orders.findByRequest(merchantNo, key);
  if (!existing) return null;
  if (existing.requestHash !== requestHash) {
    return fail(41023, 'request_no was already used for a different order (request_no is the idempotency key)');
  }
  return { ok: true, data: createOrderData(existing, deps.publicUrl) };
}

function newOrder(deps: CreateOrderDeps, app: AuthenticatedApp, request: CreateOrderRequest, plan: OrderPlan, requestHash: string): OrderRecord {
  const nowMs = deps.clock.nowMs();
  const r = plan;
  return {
    paymentOrderNo: deps.ids.paymentOrderNo(nowMs),
    merchantNo: r.merchantNo,
    appId: app.appId,
    edition: r.edition,
    requestNo: r.requestNo,
    requestNoKey: r.requestNoKey,
    requestHash,
    merchantOrderNo: r.merchantOrderNo,
    merchantOrderTime: r.merchantOrderTime,
    merchantOrderTimeout: r.merchantOrderTimeout ?? 0,
    merchantOrderDesc: r.merchantOrderDesc,
    goodsInfo: r.goodsInfo,
    merchantApplicationUserId: r.merchantApplicationUserId,
    notifyUrl: r.notifyUrl,
    redirectUrl: r.redirectUrl,
    businessInfo: r.businessInfo,
    extension: r.extension,
    divideDetail: plan.divideDetailWire,
    pricingCurrency: plan.pricing.currency,
    pricingAmount: plan.pricing.amount,
    pricingAmountWire: request.edition === 'pro' ? request.pricingAmount : request.totalAmount,
    pricingPrecision: plan.pricing.precision,
    pricingUsdRate: plan.pricing.usdRate,
    orderTime: Math.floor(nowMs / 1000),
    state: {
      status: 'PENDING',
      exception: null,
      closeReason: null,
      expireTime: plan.expireTime,
      payTime: 0,
      completedTime: 0,
      closedTime: 0,
      due: null,
      received: { seen: 0n, final: 0n },
    },
    selectedNetwork: null,
    selectedCurrency: null,
    sequence: 0,
    cashierToken: deps.ids.cashierToken(),
    watchUntil: 0,
    version: 0,
    createdAt: nowMs,
    updatedAt: nowMs,
    options: plan.options.map((o) => ({
      network: o.network,
      currency: o.currency,
      contract: o.contract,
      decimals: o.decimals,
      precision: o.precision,
      amount: o.amount,
      amountBase: o.amountBase,
      fee: o.fee,
      usdRate: o.usdRate,
      split: o.split ? { seller: o.split.seller, merchant: o.split.merchant, others: [...o.split.others] } : null,
    })),
  };
}
