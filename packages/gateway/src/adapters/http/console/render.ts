// The operator console's pages, rendered on the server: no script, one stylesheet from this
// origin. Every value that comes from the database (merchants' texts, receivers' answers, a
// node's error) goes through `esc`.
import type { MerchantEntry, OrderPage, Overview } from '../../../app/operator-console.js';
import { attemptsInWords, attemptView, notificationView } from '../../../app/operator-views.js';
import type { LiveKey } from '../../../app/merchant-admin.js';
import type { NotificationHistory } from '../../../app/notification-admin.js';
import { esc } from '../cashier-page/html.js';

const PAY_STATUSES = ['PENDING', 'PAYING', 'PAID', 'COMPLETED', 'CLOSED'] as const;

export interface Frame {
  style: string;
  /** The signed-in session's anti-forgery value; absent on the sign-in page. */
  csrf?: string;
  nowMs: number;
}

/** `2026-11-25 12:00:00 UTC` */
export function when(ms: number | null): string {
  if (ms === null) return '—';
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

function ago(ms: number, nowMs: number): string {
  const s = Math.max(0, Math.round((nowMs - ms) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

/**
 * The class of a table cell holding `text`, so that a narrow screen cuts no value into another-
 * looking one ("00:40:4" / "7 UTC", "M10000000000" / "1"): a time (`when`) stays on one line; a
 * word of 20 characters or more (a hash, an address, an order or notification number) may break
 * anywhere, in a column kept wide enough to read; shorter words break only between words.
 */
function cellClass(text: string): string {
  if (/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/.test(text)) return ' class="time"';
  return /\S{20}/.test(text) ? ' class="long"' : '';
}

const orderLink = (no: string) => `<a href="/console/orders/${encodeURIComponent(no)}">${esc(no)}</a>`;

function page(frame: Frame, title: string, body: string): string {
  const nav = frame.csrf
    ? `<nav><a href="/console">Overview</a><a href="/console/merchants">Merchants</a>` +
      `<form method="post" action="/console/logout"><input type="hidden" name="csrf" value="${esc(frame.csrf)}"><button type="submit">Sign out</button></form></nav>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><link rel="icon" href="data:,"><link rel="stylesheet" href="${esc(frame.style)}">
<title>${esc(title)} · SparkPay console</title></head>
<body><header><strong>SparkPay console</strong>${nav}</header><main>
${body}
</main></body></html>`;
}

/** `id`: for an error about one field, which names it in aria-describedby (see `invalid`). */
function notice(text: string | null, kind: 'ok' | 'error' = 'ok', id?: string): string {
  return text ? `<p${id ? ` id="${id}"` : ''} class="notice ${kind}" role="${kind === 'error' ? 'alert' : 'status'}">${esc(text)}</p>` : '';
}

/** A field's attributes when the error notice `id` is about it: a screen reader says it on the field too. */
const invalid = (id: string, when: boolean) => (when ? ` aria-invalid="true" aria-describedby="${id}"` : '');

/** A table of rows (objects with the same keys), every cell escaped; objects shown as JSON. */
function table(rows: readonly Record<string, unknown>[], caption: string): string {
  if (rows.length === 0) return `<p class="empty">${esc(caption)}: none</p>`;
  const keys = Object.keys(rows[0]!);
  const text = (v: unknown) => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  return `<div class="scroll"><table><caption>${esc(caption)}</caption><thead><tr>${keys.map((k) => `<th scope="col">${esc(k)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${keys.map((k) => `<td${cellClass(text(r[k]))}>${esc(text(r[k]))}</td>`).join('')}</tr>`)
    .join('')}</tbody></table></div>`;
}

export function renderLogin(frame: Frame, failed: string | null): string {
  return page(
    frame,
    'Sign in',
    `<h1>Sign in</h1>${notice(failed, 'error', 'token-error')}
<form method="post" action="/console/login" class="card">
<label for="token">Console token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus${invalid('token-error', failed !== null)}>
<button type="submit">Sign in</button>
<p class="hint">The console token is the operator's <code>console_token</code> (SPARKPAY_CONSOLE_TOKEN); development mode writes one into its data directory (<code>console.token</code>).</p>
</form>`,
  );
}

export function renderMessage(frame: Frame, title: string, text: string): string {
  return page(frame, title, `<h1>${esc(title)}</h1><p>${esc(text)}</p><p><a href="/console">Back to the overview</a></p>`);
}

export interface OverviewQuery {
  merchantNo: string;
  status: string;
  missing: string | null;
}

export function renderOverview(frame: Frame, o: Overview, q: OverviewQuery): string {
  const b = o.backlog;
  const chains = o.chains.map((c) => ({
    network: `${c.network} ${c.name}`,
    'next block': c.cursor?.nextBlock ?? 'not scanned yet',
    'caught up': c.cursor?.caughtUpAt != null ? `${when(c.cursor.caughtUpAt)} (${ago(c.cursor.caughtUpAt, frame.nowMs)})` : 'not yet',
    'scanned by': c.cursor && c.cursor.leaseOwner && c.cursor.leaseUntil > frame.nowMs ? c.cursor.leaseOwner : 'nobody now',
  }));
  const orders = o.orders
    .map(
      (s) =>
        `<tr><td${cellClass(s.paymentOrderNo)}>${orderLink(s.paymentOrderNo)}</td><td${cellClass(s.merchantNo)}>${esc(s.merchantNo)}</td><td${cellClass(s.requestNo)}>${esc(s.requestNo)}</td>` +
        `<td><span class="status s-${esc(s.payStatus.toLowerCase())}">${esc(s.payStatus)}</span>${s.payException ? ` ${esc(s.payException)}` : ''}${s.closeReason ? ` (${esc(s.closeReason)})` : ''}</td>` +
        `<td class="num">${esc(s.pricingAmountWire)} ${esc(s.pricingCurrency)}</td><td>${s.selectedNetwork ? `${esc(s.selectedCurrency ?? '')} on ${esc(s.selectedNetwork)}` : ''}</td><td class="time">${esc(when(s.createdAt))}</td></tr>`,
    )
    .join('');
  const more = new URLSearchParams();
  if (q.merchantNo) more.set('merchant', q.merchantNo);
  if (q.status) more.set('status', q.status);
  if (o.nextBefore) more.set('before', o.nextBefore);
  const failed = o.failed
    .map(
      (f) =>
        `<tr><td${cellClass(f.notifyId)}>${esc(f.notifyId)}</td><td${cellClass(f.paymentOrderNo)}>${orderLink(f.paymentOrderNo)}</td><td>${esc(f.notifyType)}</td><td class="num">${f.sequence}</td><td class="num">${f.attempts}</td><td${cellClass(f.destination)}>${esc(f.destination)}</td><td class="time">${esc(when(f.createdAt))}</td><td class="time">${esc(when(f.failedAt))}</td>` +
        `<td>${esc(f.lastErrorKind ?? '')}</td><td class="num">${f.lastHttpStatus ?? ''}</td><td${cellClass(f.lastError ?? '')}>${esc(f.lastError ?? '')}</td></tr>`,
    )
    .join('');
  return page(
    frame,
    'Overview',
    `<h1>Overview</h1>${q.missing !== null ? notice(`No order ${q.missing}${q.merchantNo ? `, nor a request_no ${q.missing} of merchant ${q.merchantNo}` : ''}`, 'error', 'q-error') : ''}
<form method="get" action="/console/find" class="inline"><label for="q">Order</label><input id="q" name="q" placeholder="payment_order_no" required${invalid('q-error', q.missing !== null)}>${
      q.merchantNo ? `<input type="hidden" name="merchant" value="${esc(q.merchantNo)}">` : ''
    }<button type="submit">Open</button>${q.merchantNo ? `<span class="hint">or a request_no of merchant ${esc(q.merchantNo)}</span>` : ''}</form>
<section><h2>Notifications</h2><dl class="figures">
<dt>waiting to be sent</dt><dd>${b.pending}</dd><dt>due now</dt><dd>${b.due}</dd>
<dt>oldest due since</dt><dd>${esc(b.oldestDueAt === null ? '—' : `${when(b.oldestDueAt)} (${ago(b.oldestDueAt, frame.nowMs)})`)}</dd>
<dt>failed (all attempts used)</dt><dd${b.failed > 0 ? ' class="bad"' : ''}>${b.failed}</dd></dl></section>
<section><h2>Chains</h2>${table(chains, 'Scan of each network')}</section>
<section><h2>Orders</h2>
<form method="get" action="/console" class="inline"><label for="merchant">Merchant</label><input id="merchant" name="merchant" value="${esc(q.merchantNo)}" placeholder="merchant_no">
<label for="status">Status</label><select id="status" name="status"><option value="">any</option>${PAY_STATUSES.map((s) => `<option${s === q.status ? ' selected' : ''}>${s}</option>`).join('')}</select>
<button type="submit">Filter</button></form>
${o.orders.length === 0 ? '<p class="empty">No orders</p>' : `<div class="scroll"><table><caption>Newest first</caption><thead><tr><th scope="col">payment_order_no</th><th scope="col">merchant</th><th scope="col">request_no</th><th scope="col">status</th><th scope="col">amount</th><th scope="col">paying in</th><th scope="col">created</th></tr></thead><tbody>${orders}</tbody></table></div>`}
${o.nextBefore ? `<p><a href="/console?${esc(more.toString())}">Older orders</a></p>` : ''}</section>
<section><h2>Failed notifications</h2>${
      o.failed.length === 0
        ? '<p class="empty">None</p>'
        : `<div class="scroll"><table><caption>The last given up first; resend one from its order's page</caption><thead><tr><th scope="col">notify_id</th><th scope="col">order</th><th scope="col">type</th><th scope="col">sequence</th><th scope="col">attempts</th><th scope="col">destination</th><th scope="col">created</th><th scope="col">given up</th><th scope="col">last error</th><th scope="col">HTTP status</th><th scope="col">detail</th></tr></thead><tbody>${failed}</tbody></table></div>`
    }</section>`,
  );
}

function notificationBlock(frame: Frame, h: NotificationHistory): string {
  const n = notificationView(h.notification);
  const state = n.status === 'PENDING' ? (n.in_flight ? 'PENDING, an attempt is in flight' : `PENDING, next attempt ${when(h.notification.nextAttemptAt)}`) : n.status;
  const attempts = h.attempts.map((a) => {
    const v = attemptView(a);
    // The sender says which instance made the attempt: one that cannot reach the receiver (its
    // egress, its resolver) is told apart from a receiver that is down.
    return { '#': v.attempt_no, series: v.series, started: when(a.startedAt), sender: v.sender, outcome: v.outcome, 'HTTP status': v.http_status, 'latency ms': v.latency_ms, error: [v.error_kind, v.error].filter(Boolean).join(': '), answer: v.response_head };
  });
  return `<section class="notification" id="n-${esc(n.notify_id)}"><h3>${esc(n.notify_type)} · sequence ${n.sequence}</h3>
<dl><dt>notify_id</dt><dd><code>${esc(n.notify_id)}</code></dd><dt>status</dt><dd>${esc(state)}</dd><dt>destination</dt><dd>${esc(n.destination)}</dd>
<dt>attempts</dt><dd>${esc(attemptsInWords(h.notification, h.attempts))}</dd><dt>delivered</dt><dd>${esc(when(h.notification.deliveredAt))}</dd></dl>
<form method="post" action="/console/notifications/${encodeURIComponent(n.notify_id)}/resend"><input type="hidden" name="csrf" value="${esc(frame.csrf ?? '')}"><button type="submit">Resend</button> <span class="hint">a new series of up to eight attempts, due now, with the same notify_id</span></form>
${table(attempts, 'Attempts')}</section>`;
}

/** The order's times, Unix seconds; those of its states are 0 until reached (PROTOCOL §7). */
const ORDER_TIMES = new Set(['order_time', 'pay_time', 'completed_time', 'closed_time', 'merchant_order_time', 'merchant_order_timeout', 'expire_time']);
const STATE_TIMES = new Set(['pay_time', 'completed_time', 'closed_time']);

/**
 * One value of the order's list: a time in words with its seconds beside, anything else as it is
 * (also a merchant's time past any date, which merchant_order_time may be: §5 bounds it by none).
 */
function orderValue(key: string, v: unknown): string {
  if (ORDER_TIMES.has(key) && typeof v === 'number') {
    if (v === 0 && STATE_TIMES.has(key)) return 'not yet';
    if (Number.isFinite(new Date(v * 1000).getTime())) return `${when(v * 1000)} (${v})`;
  }
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

export function renderOrder(frame: Frame, p: OrderPage, resent: string | null): string {
  const r = p.report;
  const scalars = Object.entries(r).filter(([k, v]) => !['settlements', 'settlement_state', 'options', 'payments', 'payment_options'].includes(k) && v !== '' && v !== null && !(Array.isArray(v) && v.length === 0));
  const transfers = (r.payments ?? []) as Record<string, unknown>[];
  const st = r.settlement_state;
  const settlement = st
    ? `<dl><dt>status</dt><dd>${esc(st.status)}</dd>${st.tx_hash ? `<dt>transaction</dt><dd><code>${esc(st.tx_hash)}</code></dd>` : ''}${st.attempts > 0 ? `<dt>failed attempts</dt><dd>${st.attempts}</dd>` : ''}${
        st.next_attempt_time !== null ? `<dt>next try</dt><dd>${esc(when(st.next_attempt_time * 1000))}</dd>` : ''
      }${st.last_error ? `<dt>last error</dt><dd>${esc(st.last_error)}</dd>` : ''}</dl>`
    : '<p class="empty">No settlement (the order is not paid, or nothing arrived)</p>';
  return page(
    frame,
    r.payment_order_no,
    `<h1>Order <code>${esc(r.payment_order_no)}</code></h1>${notice(resent !== null ? `Notification ${resent} resent: a new series of attempts is due now.` : null)}
<section><h2>Order</h2><dl>${scalars.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(orderValue(k, v))}</dd>`).join('')}</dl></section>
<section><h2>Payment options</h2>${table(r.options as unknown as Record<string, unknown>[], 'Amount, platform fee (base units) and USD rate of each pair')}</section>
<section><h2>Transfers</h2>${table(transfers, transfers.length < Number(r.payments_count) ? `The ${transfers.length} largest of ${String(r.payments_count)} transfers (sparkpay order show ${r.payment_order_no} lists every one)` : 'Every transfer seen to the order’s addresses')}</section>
<section><h2>Settlement</h2>${settlement}${table(r.settlements as unknown as Record<string, unknown>[], 'Payouts')}</section>
<section><h2>Notifications</h2>${p.notifications.length === 0 ? '<p class="empty">None</p>' : p.notifications.map((h) => notificationBlock(frame, h)).join('')}</section>`,
  );
}

export function renderMerchants(frame: Frame, merchants: MerchantEntry[], nextAfter: string | null): string {
  const blocks = merchants.map(({ merchant: m, applications }) => {
    const networks = [...new Set([...Object.keys(m.wallets), ...Object.keys(m.caAddresses)])].sort().map((n) => ({
      network: n,
      'external wallet': m.wallets[n as keyof typeof m.wallets] ?? '',
      'CA address': m.caAddresses[n as keyof typeof m.caAddresses] ?? '',
    }));
    const apps = applications
      .map(({ application: a, keys }) => {
        // A key made ACTIVE (the first of an application, `add-key --activate`) has no activation
        // time of its own: it is live since it was made, as `app retire-key` counts it.
        const activated = (k: LiveKey) => (k.key.status === 'ACTIVE' ? when(k.key.activatedAt ?? k.key.createdAt) : 'not yet');
        const rows = keys.map((k) => ({ serial: k.key.serial, status: k.key.status, signs: k.signing ? 'yes' : 'no', created: when(k.key.createdAt), activated: activated(k) }));
        const pems = keys.map((k) => `<details><summary>Public key ${esc(k.key.serial)}</summary><pre>${esc(k.key.publicKeyPem)}</pre></details>`).join('');
        return `<div class="app"><h3>Application <code>${esc(a.appId)}</code> · ${esc(a.status)}</h3><p class="hint">created ${esc(when(a.createdAt))}</p>${table(rows, 'Live platform keys (Sparkpay-Serial)')}${pems}</div>`;
      })
      .join('');
    return `<section class="merchant" id="m-${esc(m.merchantNo)}"><h2>${esc(m.name)} <code>${esc(m.merchantNo)}</code></h2>
<dl><dt>status</dt><dd>${esc(m.status)}</dd><dt>online payment</dt><dd>${m.onlinePayment ? 'on' : 'off'}</dd><dt>created</dt><dd>${esc(when(m.createdAt))}</dd></dl>
${table(networks, 'Addresses by network')}<p><a href="/console?merchant=${encodeURIComponent(m.merchantNo)}">Orders</a></p>${apps || '<p class="empty">No applications</p>'}</section>`;
  });
  return page(
    frame,
    'Merchants',
    `<h1>Merchants</h1>${blocks.join('') || '<p class="empty">No merchants</p>'}${nextAfter ? `<p><a href="/console/merchants?after=${encodeURIComponent(nextAfter)}">More merchants</a></p>` : ''}`,
  );
}
