// POST /v4/pay/orders/close (§12): closes a PENDING order; merchant closes do not notify (money
// at the address of another of its pairs makes it PAID_LATE, an exception that does).
import { requestNoKey } from '../domain/order-plan.js';
import type { AuthenticatedApp } from './authenticate.js';
import { checkMerchantAccess, readStringFields } from './request-fields.js';
import { transition, type TransitionDeps } from './order-transitions.js';
import { closingFact } from './record-payment.js';
import { fail, type Result } from './result.js';

export interface CloseOrderData {
  request_no: string;
  merchant_no: string;
  merchant_order_no: string;
  pay_status: 'CLOSED';
  closed_time: number;
}

export async function closeOrder(deps: TransitionDeps, app: AuthenticatedApp, body: unknown): Promise<Result<{ data: CloseOrderData }>> {
  const fields = readStringFields(body, ['request_no', 'merchant_no']);
  if (!fields.ok) return fields;
  const { request_no: requestNo, merchant_no: merchantNo } = fields.values;
  const access = await checkMerchantAccess(deps.store, app, merchantNo);
  if (!access.ok) return access;
  const key = requestNoKey(requestNo);
  const order = key === null ? null : await deps.store.orders.findByRequest(merchantNo, key);
  if (!order) return fail(43005);
  const outcome = await transition(deps, order.paymentOrderNo, (tx, current) => closingFact(tx, current, 'MERCHANT_CLOSE'));
  if (!outcome.ok) {
    switch (outcome.reason) {
      case 'ALREADY_CLOSED':
        return fail(43007);
      case 'NOT_FOUND':
        return fail(43005);
      case 'NOT_CLOSABLE':
      case 'INVALID_TRANSITION':
        return fail(43006, `This order cannot be closed: it is ${outcome.order?.state.status ?? 'not closable'}`);
      default: {
        const never: never = outcome.reason;
        throw new Error(`unhandled close outcome ${String(never)}`);
      }
    }
  }
  const o = outcome.order;
  return {
    ok: true,
    data: {
      request_no: o.requestNo,
      merchant_no: o.merchantNo,
      merchant_order_no: o.merchantOrderNo ?? '',
      pay_status: 'CLOSED',
      closed_time: o.state.closedTime,
    },
  };
}
