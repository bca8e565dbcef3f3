// What the operator console shows and does (PROTOCOL §3, §13, §16): the gateway at a glance
// (what waits, how far each chain is scanned, the newest orders, the notifications that gave
// up), one order with its notifications and their attempts, the merchants with their
// applications and live platform keys; and a notification resent by hand.
import { NETWORKS, type Deployment } from '../domain/catalogue.js';
import type { PayStatus } from '../domain/lifecycle-types.js';
import { requestNoKey } from '../domain/order-plan.js';
import { liveKeysOf, type LiveKey } from './merchant-admin.js';
import { notificationHistories, type NotificationHistory } from './notification-admin.js';
import { orderReport, type OrderReport } from './operator-views.js';
import type { ApplicationRecord, ChainCursor, Clock, FailedNotification, MerchantRecord, OperatorReads, OrderSummary, OutboxSignal, Store } from './ports.js';

export const CONSOLE_PAGE = 50;

export interface ConsoleDeps {
  store: Store;
  reads: OperatorReads;
  clock: Clock;
  deployment: Deployment;
  outbox?: OutboxSignal;
}

export interface OrderFilter {
  merchantNo?: string;
  status?: PayStatus;
  before?: string;
}

export interface Overview {
  backlog: { pending: number; due: number; oldestDueAt: number | null; failed: number };
  /** Each configured network with an RPC endpoint, and its scan cursor (null: never scanned). */
  chains: { network: string; name: string; cursor: ChainCursor | null }[];
  /** Newest first: by the second of their payment_order_no, then by created_at (see wholeSeconds). */
  orders: OrderSummary[];
  /** The page after this one starts before this order number (null: no more). */
  nextBefore: string | null;
  failed: FailedNotification[];
}

export async function consoleOverview(deps: ConsoleDeps, filter: OrderFilter): Promise<Overview> {
  const [backlog, cursors, page, failed] = await Promise.all([
    deps.store.notifications.backlog(deps.clock.nowMs()),
    deps.reads.chainCursors(),
    deps.reads.recentOrders(filter, CONSOLE_PAGE + 1),
    deps.reads.failedNotifications(CONSOLE_PAGE),
  ]);
  const byNetwork = new Map(cursors.map((c) => [c.network, c]));
  const chains = deps.deployment.networks.filter((n) => n.chain.rpcUrls.length > 0).map((n) => ({ network: n.id, name: NETWORKS[n.id].name, cursor: byNetwork.get(n.id) ?? null }));
  return { backlog, chains, ...wholeSeconds(page), failed };
}

/** "P" and the UTC time to the second: what a payment_order_no's order says of when it was made (random digits follow). */
const secondOf = (paymentOrderNo: string) => paymentOrderNo.slice(0, 15);
const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * A page of the overview's orders from the index's page of CONSOLE_PAGE + 1 (by payment_order_no,
 * newest second first): each second's orders newest first by created_at (milliseconds), which no
 * index of orders holds (every index costs the creation of orders). A second the next page goes on
 * with is left to it whole, so that no order of a page is older than one of the next; unless the
 * page holds nothing else: a second with more orders than a page holds is cut where the numbers
 * cut it (each page in time order, not the orders across the cut).
 */
function wholeSeconds(page: readonly OrderSummary[]): Pick<Overview, 'orders' | 'nextBefore'> {
  let orders = page.slice(0, CONSOLE_PAGE);
  if (page.length <= CONSOLE_PAGE) return { orders: byTime(orders), nextBefore: null };
  const cut = secondOf(page[CONSOLE_PAGE]!.paymentOrderNo);
  const whole = orders.filter((o) => secondOf(o.paymentOrderNo) !== cut);
  if (whole.length > 0) orders = whole;
  // The next page starts below the lowest number shown (the index's order, not the time's).
  return { nextBefore: orders[orders.length - 1]!.paymentOrderNo, orders: byTime(orders) };
}

function byTime(orders: OrderSummary[]): OrderSummary[] {
  return orders.sort((a, b) => compare(secondOf(b.paymentOrderNo), secondOf(a.paymentOrderNo)) || b.createdAt - a.createdAt || compare(b.paymentOrderNo, a.paymentOrderNo));
}

/**
 * The order the console's search box names: a payment_order_no however it was typed ('p2026…':
 * its letter is upper case), else, when the overview is filtered by a merchant, the order the
 * merchant made with this request_no (in any case: lower-cased, it is the API's idempotency key).
 * `typed` comes trimmed. Its payment_order_no, or null.
 */
export async function consoleFind(deps: ConsoleDeps, typed: string, merchantNo: string | null): Promise<string | null> {
  const paymentOrderNo = typed.toUpperCase();
  if ((await deps.store.orders.version(paymentOrderNo)) !== null) return paymentOrderNo;
  if (!merchantNo) return null;
  const key = requestNoKey(typed);
  return key === null ? null : deps.reads.orderNoByRequest(merchantNo, key);
}

export interface OrderPage {
  report: OrderReport;
  notifications: NotificationHistory[];
}

export async function consoleOrder(deps: ConsoleDeps, paymentOrderNo: string): Promise<OrderPage | null> {
  const report = await orderReport(deps.store, deps.deployment, paymentOrderNo, { allPayments: false });
  if (!report) return null;
  return { report, notifications: await notificationHistories(deps.store, paymentOrderNo) };
}

export interface MerchantEntry {
  merchant: MerchantRecord;
  applications: { application: ApplicationRecord; keys: LiveKey[] }[];
}

export async function consoleMerchants(deps: ConsoleDeps, after: string | null): Promise<{ merchants: MerchantEntry[]; nextAfter: string | null }> {
  const page = await deps.reads.merchantNos(after, CONSOLE_PAGE + 1);
  const numbers = page.slice(0, CONSOLE_PAGE);
  const merchants: MerchantEntry[] = [];
  for (const merchantNo of numbers) {
    const merchant = await deps.store.merchants.get(merchantNo);
    if (!merchant) continue;
    const applications = [];
    for (const application of await deps.store.applications.listByMerchant(merchantNo)) {
      applications.push({ application, keys: await liveKeysOf(deps.store, application.appId) });
    }
    merchants.push({ merchant, applications });
  }
  return { merchants, nextAfter: page.length > CONSOLE_PAGE ? numbers[numbers.length - 1]! : null };
}
