// The cashier page as HTML (PROTOCOL §15). Everything the payer needs is in this one response:
// the options as a plain form, the address, amount, QR code and status, so the page works
// before (or without) its script; the script only keeps it current. No inline script or style
// (the CSP forbids both), no request to any other origin.
import type { CashierOrderView } from '../../../app/cashier.js';
import { NETWORKS, parseNetworkId } from '../../../domain/catalogue.js';
import { esc, pageUrl, safeHttpUrl } from './html.js';
import { formatDecimal, formatDeadline, LANGUAGES, translator, type Language, type Translate } from './i18n.js';

export interface PageAssets {
  script: string;
  style: string;
}

export interface PageContext {
  view: CashierOrderView;
  token: string;
  lang: Language;
  assets: PageAssets;
  /** The QR code SVG of what to send now (the whole amount, or the remainder). */
  qr: string | null;
  /** A choice the payer made could not be applied. */
  selectFailed: boolean;
}

/** What the script compares with the JSON API's answer to know the page is stale. */
export function viewSignature(v: CashierOrderView): string {
  const payments = v.payments.map((p) => `${p.tx_hash}:${p.confirmations}:${p.status}`).join(',');
  // The pair, not the address: a closed order's page must not carry its address anywhere.
  const elsewhere = (v.elsewhere ?? []).map((e) => `${e.network}:${e.currency}:${e.amount}`).join(',');
  return [v.payer_state, v.selected ? `${v.selected.network}:${v.selected.currency}` : '', payments, v.remaining ?? '', v.pay_exception ?? '', elsewhere].join('|');
}

/** The payment request to show: the view's (for an underpaid order, the same address and the remainder). */
export function requestUri(v: CashierOrderView): string | null {
  return v.selected ? v.selected.uri : null;
}

/**
 * Text the merchant wrote, inside a sentence of ours: between FIRST STRONG ISOLATE and POP
 * DIRECTIONAL ISOLATE, so that its own direction (or a stray RIGHT-TO-LEFT OVERRIDE in it) does
 * not reorder the rest of the sentence. Elements that hold merchant text alone get dir="auto",
 * which isolates them the same way.
 */
const isolate = (text: string) => `\u2068${text}\u2069`;

const networkName = (id: string) => {
  const n = parseNetworkId(id);
  return n ? NETWORKS[n].name : id;
};

/** Time left as [d days] [h:]mm:ss (the script counts down in the same form). */
function countdown(v: CashierOrderView, t: Translate): string {
  const left = Math.max(0, v.expire_time - v.now);
  const dd = Math.floor(left / 86_400);
  const hh = Math.floor((left % 86_400) / 3600);
  const mm = Math.floor((left % 3600) / 60);
  const ss = left % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  if (dd > 0) return `${dd} ${t('days_unit')} ${two(hh)}:${two(mm)}:${two(ss)}`;
  return `${hh > 0 ? `${hh}:` : ''}${two(mm)}:${two(ss)}`;
}

function statusText(v: CashierOrderView, t: Translate, lang: Language): string {
  const currency = v.selected?.currency ?? '';
  switch (v.payer_state) {
    case 'CONFIRMING': {
      const pending = v.payments.filter((p) => p.status === 'SEEN');
      const m = v.selected?.confirmations_required;
      if (!pending.length || !m) return t('state_CONFIRMING_unknown');
      return t('state_CONFIRMING', { n: Math.min(m, Math.min(...pending.map((p) => p.confirmations))), m });
    }
    case 'UNDERPAID':
      return t('state_UNDERPAID', { received: formatDecimal(v.received?.final ?? '0', lang), currency });
    case 'CHOOSE':
    case 'AWAITING':
    case 'CLOSING':
    case 'PAID':
    case 'EXPIRED':
    case 'CLOSED':
      return t(`state_${v.payer_state}`);
    default: {
      const never: never = v.payer_state;
      return String(never);
    }
  }
}

/**
 * A payment as the payer can find it: its transaction (shortened in a sentence), or, for a
 * native-coin receipt whose transaction is not known (a `balance:<address>:<block>` key: sent by
 * a contract, or several transactions between two reads), the block it was seen in.
 */
function paymentLabel(txHash: string, t: Translate, inSentence: boolean): string {
  const native = /^balance:0x[0-9a-f]{40}:(\d+)$/.exec(txHash);
  if (native) return t(inSentence ? 'block_inline' : 'receipt_block', { block: native[1]! });
  return inSentence ? t('tx_inline', { tx: `${txHash.slice(0, 10)}…${txHash.slice(-8)}` }) : t('receipt_tx', { tx: txHash });
}

function statusSection(v: CashierOrderView, t: Translate, lang: Language): string {
  const notes: string[] = [];
  // Short of the amount, and the pair no longer offered (its token taken off, or the network's
  // nodes found not to match the configuration): no address is handed out, nothing is to be sent.
  if (v.payer_state === 'UNDERPAID' && v.selected && v.selected.address === '') notes.push(`<p id="unavailable" class="note">${esc(t('pair_unavailable', { currency: v.selected.currency, network: v.selected.network_name }))}</p>`);
  if (v.remaining !== null && v.selected) notes.push(`<p id="remaining" class="remaining">${esc(t('remaining', { remaining: formatDecimal(v.remaining, lang), currency: v.selected.currency, network: v.selected.network_name }))}</p>`);
  // Money the payer sent to an address of another pair (handed out before a switch): named, so it is not sent again.
  for (const e of v.elsewhere ?? []) notes.push(`<p class="note elsewhere">${esc(t('elsewhere', { amount: formatDecimal(e.amount, lang), currency: e.currency, network: networkName(e.network) }))}</p>`);
  // By how much, when the excess is in the pair shown (the merchant's record of it).
  if (v.pay_exception === 'OVERPAID') notes.push(`<p id="overpaid" class="note">${esc(v.excess !== null && v.selected ? t('overpaid_by', { excess: formatDecimal(v.excess, lang), currency: v.selected.currency }) : t('overpaid'))}</p>`);
  // PAID_LATE for money at another pair's address is that money, named above: not money that
  // came after the order closed (the payer may have sent it while it was open).
  if (v.pay_exception === 'PAID_LATE' && (v.elsewhere ?? []).length === 0) notes.push(`<p class="note">${esc(t('paid_late'))}</p>`);
  // Only while the reorganised payment is still missing: once it is mined again the note would invite a second payment.
  const reverted = v.payments.filter((p) => p.status === 'REVERTED');
  const stillReverted = reverted.length > 0 && (v.payer_state === 'AWAITING' || v.payer_state === 'UNDERPAID');
  // Named (amount, transaction), and the payer told to look in the wallet first: a dropped
  // transaction is mostly mined again, and sending again then pays twice.
  if (v.pay_exception === 'REVERTED' && !v.final && stillReverted && v.selected) {
    for (const p of reverted) notes.push(`<p class="note">${esc(t('reverted', { amount: formatDecimal(p.amount, lang), currency: v.selected.currency, tx: paymentLabel(p.tx_hash, t, true) }))}</p>`);
  }
  // Expired short: what did arrive is not lost (it is settled to the merchant's plan).
  const expiredPartial = v.payer_state === 'EXPIRED' && v.pay_exception === 'UNDERPAID' && v.received !== null && v.selected !== null;
  if (expiredPartial) notes.push(`<p class="note">${esc(t('expired_partial', { amount: formatDecimal(v.received!.final, lang), currency: v.selected!.currency }))}</p>`);
  // A receipt once paid: what arrived, where, and in which transactions (the payer's record).
  if (v.payer_state === 'PAID' && v.received && v.selected) {
    const txs = v.payments.filter((p) => p.status !== 'REVERTED').map((p) => `<li><code>${esc(paymentLabel(p.tx_hash, t, false))}</code></li>`);
    notes.push(`<p id="receipt" class="received">${esc(t('receipt', { amount: formatDecimal(v.received.final, lang), currency: v.selected.currency, network: v.selected.network_name }))}</p>${txs.length ? `<ul class="receipt-txs" role="list">${txs.join('')}</ul>` : ''}`);
  }
  // (Not after the expired-partial note, which says the same amount.)
  if (v.received && v.received.seen !== '0' && v.selected && v.payer_state !== 'PAID' && v.payer_state !== 'UNDERPAID' && !expiredPartial) {
    notes.push(`<p id="received" class="received">${esc(t('received_so_far', { amount: formatDecimal(v.received.seen, lang), currency: v.selected.currency }))}</p>`);
  }
  // Not a live region itself: the script says its changes through #announce (see renderPage).
  return `<section id="status" class="status state-${esc(v.payer_state.toLowerCase())}" aria-labelledby="status-h">
<h2 id="status-h">${esc(t('status'))}</h2><p id="status-text">${esc(statusText(v, t, lang))}</p>${notes.join('')}</section>`;
}

function optionsForm(v: CashierOrderView, ctx: PageContext, t: Translate): string {
  const action = `/cashier/${encodeURIComponent(v.payment_order_no)}/select?t=${encodeURIComponent(ctx.token)}&lang=${ctx.lang}`;
  // Options on networks this gateway cannot take payments on are left out (the JSON API lists them all).
  const usable = v.options.filter((o) => v.available_networks.includes(o.network));
  const buttons = (usable.length ? usable : v.options).map((o) => {
    const chosen = v.selected?.network === o.network && v.selected.currency === o.currency;
    // An id per pair: the script gives the focus back to the same button after a refresh.
    return `<li><button type="submit" id="${esc(`option-${o.network}-${o.currency}`)}" name="option" value="${esc(`${o.network}:${o.currency}`)}" class="option${chosen ? ' chosen' : ''}"${chosen ? ' aria-current="true"' : ''} data-network="${esc(o.network)}" data-currency="${esc(o.currency)}">
<span class="opt-name">${esc(t('option_label', { currency: o.currency, network: networkName(o.network) }))}</span><span class="opt-amount">${esc(formatDecimal(o.amount, ctx.lang))} ${esc(o.currency)}</span>${chosen ? `<span class="opt-selected">${esc(t('option_selected'))}</span>` : ''}</button></li>`;
  });
  const hint = v.selected ? t('change_hint') : t('choose_hint');
  return `<form id="options" class="options" method="post" action="${esc(action)}">
<h2 id="options-h">${esc(t('choose_heading'))}</h2><p class="hint">${esc(hint)}</p>
<ul role="list" aria-labelledby="options-h">${buttons.join('')}</ul></form>`;
}

function paySection(v: CashierOrderView, ctx: PageContext, t: Translate): string {
  const s = v.selected!;
  const amount = v.remaining ?? s.amount;
  const warning = s.token_contract
    ? t('warning_token', { currency: s.currency, network: s.network_name, chain_id: s.chain_id, contract: s.token_contract })
    : t('warning_native', { currency: s.currency, network: s.network_name, chain_id: s.chain_id });
  const uri = requestUri(v);
  return `<section id="pay" class="pay" aria-labelledby="pay-h">
<h2 id="pay-h">${esc(t('pay_heading', { amount: formatDecimal(amount, ctx.lang), currency: s.currency }))}</h2>
<p id="warning" class="warning">${esc(warning)}</p>
<div class="field"><span class="label" id="network-label">${esc(t('network'))}</span><span id="network" aria-labelledby="network-label">${esc(s.network_name)} · ${esc(s.currency)}</span></div>
<div class="field"><span class="label" id="address-label">${esc(t('address'))}</span><code id="address" aria-labelledby="address-label">${esc(s.address)}</code>
<button type="button" id="copy-address" class="copy" data-copy="address" data-copied="${esc(t('copied'))}" aria-label="${esc(t('copy_address'))}">${esc(t('copy'))}</button></div>
<div class="field"><span class="label" id="amount-label">${esc(t('exact_amount'))}</span><span><code id="amount" aria-labelledby="amount-label">${esc(amount)}</code> ${esc(s.currency)}</span>
<button type="button" id="copy-amount" class="copy" data-copy="amount" data-copied="${esc(t('copied'))}" aria-label="${esc(t('copy_amount'))}">${esc(t('copy'))}</button></div>
${ctx.qr ? `<figure class="qr">${ctx.qr}</figure>` : ''}
${uri ? `<p><a id="wallet-link" class="wallet" href="${esc(uri)}">${esc(t('open_wallet'))}</a></p>` : ''}
</section>`;
}

function successSection(v: CashierOrderView, t: Translate): string {
  const redirect = safeHttpUrl(v.redirect_url);
  const next = redirect
    ? // "Stay on this page" stops the script's redirect (WCAG 2.2.1: a time limit the payer can turn
      // off, e.g. to read the receipt); hidden until the script that honours it runs.
      `<p id="redirecting" data-stayed="${esc(t('stayed', { merchant: isolate(v.merchant_name) }))}">${esc(t('redirecting', { merchant: isolate(v.merchant_name) }))}</p>` +
      `<p class="actions"><a id="redirect" class="button" href="${esc(redirect)}" data-redirect="${esc(redirect)}" rel="noreferrer">${esc(t('back_to_merchant'))}</a> <button type="button" id="stay" hidden>${esc(t('stay'))}</button></p>`
    : `<p>${esc(t('success_close'))}</p>`;
  return `<section id="success" class="success" aria-labelledby="success-h"><h2 id="success-h">${esc(t('success_heading'))}</h2>${next}</section>`;
}

/** A way back to the shop from an order that ended without being paid (expired or closed): a plain link, no automatic redirect. */
function returnLink(v: CashierOrderView, t: Translate): string {
  const back = safeHttpUrl(v.redirect_url);
  return back ? `<p class="back"><a id="back-to-merchant" class="button" href="${esc(back)}" rel="noreferrer">${esc(t('back_to_merchant'))}</a></p>` : '';
}

function languageSwitch(ctx: PageContext, t: Translate): string {
  const links = LANGUAGES.map((lang) => {
    const name = translator(lang)('lang_name');
    return lang === ctx.lang
      ? `<a href="${esc(pageUrl(ctx.view.payment_order_no, ctx.token, lang))}" lang="${lang}" aria-current="true">${esc(name)}</a>`
      : `<a href="${esc(pageUrl(ctx.view.payment_order_no, ctx.token, lang))}" lang="${lang}" hreflang="${lang}">${esc(name)}</a>`;
  });
  return `<nav class="langs" aria-label="${esc(t('lang_switch'))}">${links.join('')}</nav>`;
}

/**
 * Where and what to send, while something is still to send: before any payment, or the
 * remainder. Once the whole amount is seen (confirming) or the order is final, it is hidden, so
 * nobody pays twice or pays a closed order.
 */
export function showPayment(v: CashierOrderView): boolean {
  // No address handed out (the pair is no longer offered, or nothing is to be sent): nothing to pay.
  if (!v.selected || v.selected.address === '') return false;
  return v.payer_state === 'AWAITING' || v.payer_state === 'UNDERPAID' || (v.payer_state === 'CONFIRMING' && v.remaining !== null);
}

export function renderPage(ctx: PageContext): string {
  const { view: v, lang } = ctx;
  const t = translator(lang);
  const open = !v.final;
  const showPay = showPayment(v);
  // Not once a payment in the chosen pair left the chain: it is usually mined again, and another
  // pair paid then is paid twice (select refuses it too).
  const showOptions = v.payer_state === 'CHOOSE' || (v.payer_state === 'AWAITING' && !v.payments.some((p) => p.status === 'REVERTED'));
  const redirect = v.payer_state === 'PAID' ? safeHttpUrl(v.redirect_url) : null;
  const deadline = new Date(v.expire_time * 1000).toISOString();
  const summary = [
    `<dt>${esc(t('amount_due'))}</dt><dd id="pricing">${esc(formatDecimal(v.pricing_amount, lang))} ${esc(v.pricing_currency)}</dd>`,
    `<dt>${esc(t('order_no'))}</dt><dd>${esc(v.payment_order_no)}</dd>`,
    open ? `<dt>${esc(t('deadline'))}</dt><dd><time id="deadline" datetime="${deadline}">${esc(formatDeadline(v.expire_time, lang))}</time></dd>` : '',
    open ? `<dt>${esc(t('time_left'))}</dt><dd><span id="countdown" data-seconds="${Math.max(0, v.expire_time - v.now)}" data-days="${esc(t('days_unit'))}">${countdown(v, t)}</span></dd>` : '',
  ].join('');
  // #announce is the page's one live region, empty when loaded: the script writes into it what
  // changed (a new state of the order, a copy made) and keeps that node when it swaps a fresh
  // page in (a region put in anew is a new one to screen readers, and its text is not said).
  return `<!doctype html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex,nofollow">
<link rel="icon" href="data:,">
<title>${esc(t('page_title', { merchant: v.merchant_name }))}</title>
<link rel="stylesheet" href="${esc(ctx.assets.style)}">
<script src="${esc(ctx.assets.script)}" defer></script>
${redirect ? `<noscript><meta http-equiv="refresh" content="3;url=${esc(redirect)}"></noscript>` : ''}${open ? `<noscript><meta http-equiv="refresh" content="10;url=${esc(pageUrl(v.payment_order_no, ctx.token, lang))}"></noscript>` : ''}
</head>
<body>
<main id="cashier" data-order="${esc(v.payment_order_no)}" data-state="${esc(v.payer_state)}" data-final="${v.final}" data-sig="${esc(viewSignature(v))}">
<p id="announce" class="visually-hidden" role="status"></p>
<header class="top"><p class="merchant"><span class="label">${esc(t('merchant'))}</span> <strong id="merchant-name" dir="auto">${esc(v.merchant_name)}</strong></p>${languageSwitch(ctx, t)}</header>
<section class="summary" aria-labelledby="order-h">
<h1 id="order-h" dir="auto">${esc(v.merchant_order_desc || t('order'))}</h1>
<dl>${summary}</dl>
</section>
${ctx.selectFailed ? `<p class="alert" role="alert">${esc(t('select_failed'))}</p>` : ''}
${statusSection(v, t, lang)}
${showPay ? paySection(v, ctx, t) : ''}
${showOptions ? optionsForm(v, ctx, t) : ''}
${v.payer_state === 'PAID' ? successSection(v, t) : ''}
${v.payer_state === 'EXPIRED' || v.payer_state === 'CLOSED' ? returnLink(v, t) : ''}
${open ? `<p class="refresh"><a id="refresh" href="${esc(pageUrl(v.payment_order_no, ctx.token, lang))}">${esc(t('refresh'))}</a></p>` : ''}
</main>
</body>
</html>
`;
}

/** One page for every unknown order and wrong token: it says nothing else, in both languages. */
/** A page of one message (no script): the 404 and the too-many answer. */
function messagePage(style: string, lang: string, title: string, main: string, head = ''): string {
  return `<!doctype html>
<html lang="${lang}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="referrer" content="no-referrer"><meta name="robots" content="noindex,nofollow">${head}<link rel="icon" href="data:,"><title>${esc(title)}</title><link rel="stylesheet" href="${esc(style)}"></head>
<body>${main}</body>
</html>
`;
}

export function renderNotFound(style: string): string {
  return messagePage(style, 'en', 'Not found · 未找到', '<main id="cashier" class="not-found"><h1>Not found</h1><p lang="zh-CN">未找到</p></main>');
}

/**
 * The answer when the order's (or the client's) request budget is spent: a page in the payer's
 * language that loads `again` by itself after a moment, instead of a dead end.
 */
export function renderTooMany(style: string, lang: Language, again: string): string {
  const t = translator(lang);
  const main = `<main id="cashier-wait" class="not-found"><h1>${esc(t('too_many_title'))}</h1><p>${esc(t('too_many_text'))}</p><p><a href="${esc(again)}">${esc(t('too_many_link'))}</a></p></main>`;
  return messagePage(style, lang === 'zh-CN' ? 'zh-CN' : 'en', t('too_many_title'), main, `<meta http-equiv="refresh" content="3;url=${esc(again)}">`);
}
