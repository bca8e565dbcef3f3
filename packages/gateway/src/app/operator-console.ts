// What the operator console shows and does (PROTOCOL §3, §13, §16): the gateway at a glance
// (what waits, how far each chain is scanned, the newest orders, the notifications that gave
// up), one order with its notifications and their attempts, the merchants with their
// applications and live platform keys; and a notification resent by hand.
import { NETWORKS, type Deployment } from '../domain/catalogue.js';
import type { PayStatus } from '../domain/lifecycle-types.js';
import { liveKeys, type LiveKey } from './merchant-admin.js';
import { listOrderNotifications, resendNotification, type NotificationHistory, type ResendOutcome } from './notification-admin.js';
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
  const orders = page.slice(0, CONSOLE_PAGE);
  return { backlog, chains, orders, nextBefore: page.length > CONSOLE_PAGE ? orders[orders.length - 1]!.paymentOrderNo : null, failed };
}

export interface OrderPage {
  report: OrderReport;
  notifications: NotificationHistory[];
}

export async function consoleOrder(deps: ConsoleDeps, paymentOrderNo: string): Promise<OrderPage | null> {
  const report = await orderReport(deps.store, deps.deployment, paymentOrderNo, { allPayments: false });
  if (!report) return null;
  return { report, notifications: (await listOrderNotifications(deps.store, paymentOrderNo)) ?? [] };
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
      applications.push({ application, keys: (await liveKeys(deps, application.appId)) ?? [] });
    }
    merchants.push({ merchant, applications });
  }
  return { merchants, nextAfter: page.length > CONSOLE_PAGE ? numbers[numbers.length - 1]! : null };
}

export function consoleResend(deps: ConsoleDeps, notifyId: string): Promise<ResendOutcome> {
  return resendNotification(deps, notifyId);
}
