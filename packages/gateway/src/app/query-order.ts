// GET /v4/pay/orders/{merchant_no}/{request_no} and its Pro twin (§11). Each path finds the
// orders of its own edition only, since their amount fields differ.
import { requestNoKey } from '../domain/order-plan.js';
import type { AuthenticatedApp } from './authenticate.js';
import { orderQueryData, type TokenDecimals } from './order-view.js';
import type { Store } from './ports.js';
import type { Edition } from './records.js';
import { checkMerchantAccess } from './request-fields.js';
import { fail, type Result } from './result.js';

export async function queryOrder(
  store: Store,
  app: AuthenticatedApp,
  edition: Edition,
  merchantNo: string,
  requestNo: string,
  tokens?: TokenDecimals,
): Promise<Result<{ data: Record<string, unknown> }>> {
  if (merchantNo.length > 64 || requestNo.length > 64) return fail(40009, 'merchant_no and request_no are at most 64 characters');
  const access = await checkMerchantAccess(store, app, merchantNo);
  if (!access.ok) return access;
  // A request_no no order can hold (U+0000 from a path segment, which PostgreSQL could not even
  // look up; a character whose lower case is ASCII) finds nothing.
  const key = requestNoKey(requestNo);
  if (key === null) return fail(43005);
  for (let attempt = 1; ; attempt += 1) {
    const order = await store.orders.findByRequest(merchantNo, key);
    if (!order || order.edition !== edition) return fail(43005);
    const payments = await store.payments.listByOrder(order.paymentOrderNo);
    const settlement = await store.settlements.view(order.paymentOrderNo);
    // The reads are separate statements: a change committed between them (a transfer, a state
    // change; each moves the order's version) could pair a status with payments it was not
    // decided from. Read again then, as the notification of that change shows it.
    if (attempt < QUERY_READS && (await store.orders.version(order.paymentOrderNo)) !== order.version) continue;
    return { ok: true, data: orderQueryData(order, payments, settlement, { tokens }) };
  }
}

/** Reads of an order that changed under the query before it answers the last one read. */
const QUERY_READS = 3;
