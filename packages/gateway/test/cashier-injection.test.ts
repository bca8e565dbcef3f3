// The payer's cashier page (PROTOCOL §15) against hostile text from the merchant. Everything a
// merchant controls (merchant_order_desc, goods_info, merchant_order_no, business_info,
// extension, merchant_application_user_id, notify_url, redirect_url, and the merchant's name
// set by the operator) plus what the payer's browser sends (the `lang` query parameter,
// Accept-Language) is filled with generated HTML/JS injection payloads, and the page is checked:
//   1. over HTTP, each page (choosing, awaiting payment, paid) is parsed by a real HTML parser
//      (Chromium's DOMParser, which runs nothing) and must have exactly the element/attribute
//      skeleton of the same page for a benign order; the payload shows up only as the text or
//      quoted attribute value where the template puts it; no on* attribute, no style, no element
//      the template does not make; every href/src/action is one the template produces;
//   2. the nastiest orders are loaded and driven to paid in headless Chromium with traps
//      (window.__pwned, alert & co., CSP violation reports), once with the CSP the server sends
//      and once with it stripped: escaping must hold without the CSP too;
//   3. a redirect_url that is not an absolute http(s) URL is refused at creation (41000), and
//      one that slipped past creation never becomes a live link;
//   4. hostile `lang` values and Accept-Language headers never reach the HTML.
// The checker is shown to catch an unescaped value in a copy of a real page (and the browser
// traps to fire on it) at the end of the file.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchBrowser } from './cashier-browser.js';
import { fuzzOptions, runs } from './fuzz.js';
import { api, deploymentWithFactory, observeTransfer, orderBody, startTestGateway, type Merchant, type TestGateway } from './harness.js';

const LANGS = ['en', 'zh-CN'] as const;
type Lang = (typeof LANGS)[number];
type State = 'CHOOSE' | 'AWAITING' | 'PAID';
const TITLE: Record<Lang, (merchant: string) => string> = { en: (m) => `Pay ${m}`, 'zh-CN': (m) => `向 ${m} 付款` };
const ORDER_AMOUNT_BASE = 10_500_000n; // 10.50 USDT, 6 decimals

// ---------------------------------------------------------------------------------------------
// Hostile text

const FRAGMENTS = [
  '<script>window.__pwned=1</script>',
  '<script>alert(1)</script>',
  '"><img src=x onerror=window.__pwned=1>',
  "'><img src=x onerror=alert(1)>",
  '</title><script>window.__pwned=1</script>',
  '</textarea><svg onload=alert(1)>',
  '<svg/onload=window.__pwned=1>',
  '<svg><script>window.__pwned=1</script></svg>',
  'javascript:alert(1)',
  'JaVaScRiPt:window.__pwned=1',
  'data:text/html,<script>alert(1)</script>',
  '{{constructor.constructor("window.__pwned=1")()}}',
  '${alert(1)}',
  '</style><style>*{background:url(javascript:alert(1))}</style>',
  '<style>@import "//evil.example/x.css";</style>',
  '&#x3C;script&#x3E;window.__pwned=1&#x3C;/script&#x3E;',
  '&lt;img src=x onerror=alert(1)&gt;',
  '&amp;lt;',
  '&#60;',
  '&quot; onmouseover=&quot;alert(1)',
  '<!--',
  '-->',
  '<![CDATA[',
  ']]>',
  '<noscript><p title="</noscript><img src=x onerror=window.__pwned=1>">',
  '<a href="javascript:window.__pwned=1">x</a>',
  '<iframe srcdoc="<script>parent.__pwned=1</script>"></iframe>',
  '<base href="//evil.example/">',
  '<meta http-equiv="refresh" content="0;url=javascript:window.__pwned=1">',
  '<form action="javascript:alert(1)"><button>x</button></form>',
  '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
  '<template><script>alert(1)</script></template>',
  '" onmouseover="alert(1)" x="',
  "' onfocus='alert(1)' autofocus x='",
  '`-alert(1)-`',
  '<scr<script>ipt>window.__pwned=1</scr</script>ipt>',
  '<<script>>',
  '<img src=x:alert(alt) onerror=eval(src) alt=0>',
  '<x contenteditable onfocus=window.__pwned=1 autofocus>',
  '<object data="javascript:alert(1)"></object>',
  '<embed src="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">',
  '<link rel=stylesheet href=//evil.example/x.css>',
  '<plaintext>',
  '<xmp><script>alert(1)</script></xmp>',
  '<!DOCTYPE html>',
  '</body></html>',
  '</main><script>window.__pwned=1</script>',
  '"/><script>window.__pwned=1</script>',
  '</h1><h1 id="order-h">',
  'ethereum:0x0000000000000000000000000000000000000000@1/transfer?address=0x0&uint256=1',
  '%3Cscript%3Ealert(1)%3C/script%3E',
  '\\u003cscript\\u003e',
  '{merchant}',
  '{amount}',
  '$&',
  '$1',
  '\u202e',
  '\u202d',
  '\u2066',
  '\u200b',
  '\u200d',
  '\ufeff',
  '\u2028',
  '\u2029',
  '\r\n',
  '\r',
  '\t',
  '\x1b[31m',
  '\x7f',
  '\x85',
  '\x0b\x0c',
  '\ufffe',
] as const;

/** C0/C1 controls other than NUL (NUL is no text anyone shows; the API may refuse it). */
const controlArb = fc.integer({ min: 1, max: 0x9f }).filter((c) => c < 0x20 || c >= 0x7f).map((c) => String.fromCharCode(c));

const noNul = (s: string) => s.replace(/\0/g, '');
/** What checkName (merchant-admin.ts) refuses in a merchant name. */
const NAME_REFUSED = /[\p{Cc}\u2028\u2029\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]/gu;

/** Hostile text: injection fragments mixed with arbitrary Unicode and control characters. */
const payloadArb = fc
  .array(
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(...FRAGMENTS) },
      { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
      { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 20 }) },
      { weight: 1, arbitrary: controlArb },
    ),
    { minLength: 1, maxLength: 10 },
  )
  .map((parts) => noNul(parts.join('')));

const codePoints = (s: string) => [...s];

/** `marker` then the payload, repeated to the limit when `long`, cut to `limit` code points. */
function fit(marker: string, payload: string, limit: number, long: boolean): string {
  let text = payload.length ? payload : FRAGMENTS[0];
  if (long) while (codePoints(text).length < limit) text += payload || FRAGMENTS[0];
  return marker + codePoints(text).slice(0, limit - codePoints(marker).length).join('');
}

let markerCount = 0;
/** A unique plain-ASCII marker, to find where a field's text landed. */
const marker = (field: string) => `Zq${field}${++markerCount}qZ`;

/** Characters a valid URL may carry in its path/query (PROTOCOL §7; the gateway's RFC 3986 check). */
const URL_PIECES = [
  "';window.__pwned=1;//",
  'javascript:alert(1)',
  ';url=javascript:window.__pwned=1',
  '%22%3E%3Cscript%3Ealert(1)%3C/script%3E',
  "'-alert(1)-'",
  '?a=1&b=2',
  '&lt;x&gt;',
  '(alert)(1)',
  '*!$,',
  '@evil.example',
  ':',
  '/..',
  '/./',
  '%00',
  '%0d%0aSet-Cookie:x=1',
  '=',
  'data:text/html,x',
  '~_.-',
] as const;

const urlTailArb = fc.array(fc.constantFrom(...URL_PIECES), { minLength: 1, maxLength: 8 }).map((p) => p.join(''));
/** A hostile but valid absolute URL (at most 512 characters, at most one '#'). */
const hostileUrl = (m: string, tail: string, fragment: string) => {
  const url = `https://shop.example/${m}/${tail}${fragment ? `#${fragment}` : ''}`;
  return url.length <= 512 ? url : url.slice(0, 512).replace(/%[0-9A-Fa-f]?$/, '');
};

// ---------------------------------------------------------------------------------------------
// The DOM as a real HTML parser sees it

interface DomNode {
  k: 'el' | 'text' | 'comment' | 'doctype' | 'other';
  depth: number;
  /** Ancestors as tag#id, e.g. html>body>main#cashier>section#summary>h1#order-h (for text: the parent's path). */
  path: string;
  ns?: string | null;
  tag?: string;
  id?: string | null;
  attrs?: [string, string][];
  text?: string;
}

/** Runs in Chromium: every node under `root` in document order (template contents included). */
const DUMP = `(root) => {
  const out = [];
  const label = (n) => n.localName + (n.getAttribute && n.getAttribute('id') !== null ? '#' + n.getAttribute('id') : '');
  const walk = (node, depth, path) => {
    for (const c of Array.from(node.childNodes)) {
      if (c.nodeType === 1) {
        const p = path ? path + '>' + label(c) : label(c);
        out.push({ k: 'el', depth, path: p, ns: c.namespaceURI, tag: c.localName, id: c.getAttribute('id'), attrs: Array.from(c.attributes).map((a) => [a.name, a.value]) });
        walk(c.localName === 'template' && c.content ? c.content : c, depth + 1, p);
      } else if (c.nodeType === 3) out.push({ k: 'text', depth, path, text: c.data });
      else if (c.nodeType === 8) out.push({ k: 'comment', depth, path, text: c.data });
      else if (c.nodeType === 10) out.push({ k: 'doctype', depth, path, text: c.name });
      else out.push({ k: 'other', depth, path, text: String(c.nodeType) });
    }
  };
  walk(root, 0, '');
  return out;
}`;

/** Parses `html` with DOMParser in a blank page: no script runs, nothing is fetched. */
const parseHtml = (parser: Page, html: string): Promise<DomNode[]> =>
  parser.evaluate(`(${DUMP})(new DOMParser().parseFromString(${JSON.stringify(html)}, 'text/html'))`) as Promise<DomNode[]>;

/** Elements (and comments) with their depth and attribute names: what a payload must never change. */
function skeleton(nodes: DomNode[]): string[] {
  return nodes
    .filter((n) => n.k !== 'text')
    .map((n) => (n.k === 'el' ? `${n.depth} ${n.ns?.endsWith('/svg') ? 'svg:' : ''}${n.tag}[${n.attrs!.map(([a]) => a).sort().join(',')}]` : `${n.depth} #${n.k}`));
}

const el = (nodes: DomNode[], pred: (n: DomNode) => boolean) => nodes.filter((n) => n.k === 'el' && pred(n));
const attr = (n: DomNode, name: string) => n.attrs?.find(([a]) => a === name)?.[1] ?? null;
/** The text of an element: its text descendants. */
const textOf = (nodes: DomNode[], path: string) =>
  nodes
    .filter((n) => n.k === 'text' && (n.path === path || n.path.startsWith(`${path}>`)))
    .map((n) => n.text)
    .join('');

/** What the HTML parser makes of a text (CR and CRLF become LF; nothing else changes). */
const parsed = (s: string) => s.replace(/\r\n?/g, '\n');

const ALLOWED_TAGS = new Set(['html', 'head', 'meta', 'link', 'title', 'script', 'body', 'main', 'header', 'p', 'span', 'strong', 'nav', 'a', 'section', 'h1', 'h2', 'dl', 'dt', 'dd', 'time', 'form', 'ul', 'li', 'button', 'code', 'div', 'figure', 'svg', 'path', 'noscript']);
const FORBIDDEN_ATTRS = new Set(['style', 'srcdoc', 'formaction', 'srcset', 'background', 'poster', 'xlink:href', 'ping', 'autofocus', 'contenteditable', 'action', 'src', 'href', 'data', 'content', 'http-equiv']);
const ASSET_JS = /^\/cashier\/assets\/cashier\.[0-9a-f]{12}\.js$/;
const ASSET_CSS = /^\/cashier\/assets\/cashier\.[0-9a-f]{12}\.css$/;
const EIP681 = /^ethereum:0x[0-9a-fA-F]{40}@\d+(\/transfer\?address=0x[0-9a-fA-F]{40}&uint256=\d+|\?value=\d+)$/;

interface PageExpectation {
  no: string;
  token: string;
  state: State;
  /** The merchant_order_desc sent (rendered in h1#order-h). */
  desc: string;
  /** The merchant's name as stored. */
  name: string;
  /** The order's redirect_url (a link only once paid). */
  redirect: string | null;
  /** Markers of the rendered fields, and of fields that must appear nowhere on the page. */
  markers: { desc?: string; name?: string; redirect?: string; hidden: string[] };
  /** The benign page's skeleton in the same state and language. */
  reference?: string[];
  /** The hostile values as sent: one with a character of markup must never appear raw in the HTML. */
  values?: string[];
}

/**
 * Everything wrong with a page (empty when it is safe): elements or attributes a payload made,
 * a URL the template does not produce, a payload in the wrong place or not exactly where it belongs.
 */
function inspectPage(nodes: DomNode[], exp: PageExpectation, rawHtml?: string): string[] {
  const problems: string[] = [];
  const pageUrl = (lang: string) => `/cashier/${exp.no}?t=${encodeURIComponent(exp.token)}&lang=${lang}`;
  const selectUrl = (lang: string) => `/cashier/${exp.no}/select?t=${encodeURIComponent(exp.token)}&lang=${lang}`;
  const paidWithRedirect = exp.state === 'PAID' && exp.redirect !== null;

  if (exp.reference) {
    const mine = skeleton(nodes);
    const at = mine.findIndex((s, i) => s !== exp.reference![i]);
    if (at !== -1 || mine.length !== exp.reference.length) {
      const i = at === -1 ? Math.min(mine.length, exp.reference.length) : at;
      problems.push(`structure differs from the benign page at node ${i}: ${mine[i] ?? '(end)'} instead of ${exp.reference[i] ?? '(end)'}`);
    }
  }
  const html = el(nodes, (n) => n.tag === 'html')[0];
  const lang = html ? attr(html, 'lang') : null;
  if (!LANGS.includes(lang as Lang)) problems.push(`<html lang=${JSON.stringify(lang)}>`);

  for (const n of nodes) {
    if (n.k === 'comment') problems.push(`comment at ${n.path}: ${JSON.stringify(n.text)}`);
    if (n.k === 'other') problems.push(`unexpected node type ${n.text} at ${n.path}`);
    if (n.k !== 'el') continue;
    const svgNs = n.ns === 'http://www.w3.org/2000/svg';
    if (!ALLOWED_TAGS.has(n.tag!) || svgNs !== (n.tag === 'svg' || n.tag === 'path')) problems.push(`element <${n.tag}> (${n.ns}) at ${n.path}`);
    for (const [name, value] of n.attrs!) {
      const where = `${n.path}[${name}=${JSON.stringify(value.slice(0, 80))}]`;
      if (/^on/i.test(name)) problems.push(`event handler attribute ${where}`);
      else if (name === 'lang' || name === 'hreflang') {
        if (!LANGS.includes(value as Lang)) problems.push(`language attribute ${where}`);
      } else if (FORBIDDEN_ATTRS.has(name)) {
        // URL-bearing attributes: only the template's own, with the values it produces.
        const ok =
          (n.tag === 'link' && name === 'href' && ((attr(n, 'rel') === 'icon' && value === 'data:,') || (attr(n, 'rel') === 'stylesheet' && ASSET_CSS.test(value)))) ||
          (n.tag === 'script' && name === 'src' && ASSET_JS.test(value)) ||
          (n.tag === 'form' && n.id === 'options' && name === 'action' && LANGS.some((l) => value === selectUrl(l))) ||
          (n.tag === 'a' && name === 'href' && n.id === 'wallet-link' && EIP681.test(value)) ||
          (n.tag === 'a' && name === 'href' && n.id === 'redirect' && paidWithRedirect && value === exp.redirect && /^https?:\/\//i.test(value)) ||
          (n.tag === 'a' && name === 'href' && n.id !== 'redirect' && n.id !== 'wallet-link' && LANGS.some((l) => value === pageUrl(l))) ||
          (n.tag === 'meta' && name === 'http-equiv' && value === 'refresh') ||
          (n.tag === 'meta' && name === 'content' && attr(n, 'http-equiv') === 'refresh' && (LANGS.some((l) => value === `10;url=${pageUrl(l)}`) || (paidWithRedirect && value === `3;url=${exp.redirect}`))) ||
          (n.tag === 'meta' && name === 'content' && attr(n, 'http-equiv') === null && ['width=device-width,initial-scale=1', 'no-referrer', 'noindex,nofollow'].includes(value));
        if (!ok) problems.push(`URL or forbidden attribute ${where}`);
        if (ok && ['href', 'src', 'action'].includes(name)) {
          const protocol = new URL(value, 'https://gateway.test/').protocol;
          const fine = protocol === 'https:' || protocol === 'http:' || (protocol === 'data:' && value === 'data:,') || (protocol === 'ethereum:' && n.id === 'wallet-link');
          if (!fine) problems.push(`${protocol} URL ${where}`);
        }
      } else if (name === 'data-redirect' && !(paidWithRedirect && n.id === 'redirect' && value === exp.redirect)) problems.push(`redirect target ${where}`);
    }
  }
  if (el(nodes, (n) => n.tag === 'script').length !== 1) problems.push(`${el(nodes, (n) => n.tag === 'script').length} script elements`);

  // Where each payload may be, exactly.
  const m = exp.markers;
  for (const n of nodes) {
    const places: [string, string][] = n.k === 'el' ? n.attrs!.map(([a, v]) => [`${n.path}[${a}]`, v]) : [[`${n.path}#${n.k}`, n.text ?? '']];
    for (const [place, value] of places) {
      if (m.desc && value.includes(m.desc) && !(n.k === 'text' && n.path.endsWith('h1#order-h'))) problems.push(`merchant_order_desc at ${place}`);
      // Paid with a redirect: "returning to <name>", and what it reads once the payer stays (data-stayed, the script's to show).
      const returning = paidWithRedirect && (n.k === 'text' ? n.path.endsWith('section#success>p#redirecting') : place.endsWith('section#success>p#redirecting[data-stayed]'));
      if (m.name && value.includes(m.name) && !returning && !(n.k === 'text' && />title$|strong#merchant-name$/.test(n.path))) {
        problems.push(`merchant name at ${place}`);
      }
      if (m.redirect && value.includes(m.redirect) && !(paidWithRedirect && ((n.id === 'redirect' && /\[(href|data-redirect)\]$/.test(place)) || (n.tag === 'meta' && place.endsWith('[content]'))))) {
        problems.push(`redirect_url at ${place}`);
      }
      for (const h of m.hidden) if (value.includes(h)) problems.push(`a field the payer is never shown (${h}) at ${place}`);
    }
  }
  const h1 = el(nodes, (n) => n.id === 'order-h')[0];
  if (!h1) problems.push('no h1#order-h');
  else if (textOf(nodes, h1.path) !== parsed(exp.desc)) problems.push(`h1#order-h reads ${JSON.stringify(textOf(nodes, h1.path).slice(0, 120))}`);
  const title = el(nodes, (n) => n.tag === 'title')[0];
  if (!title || (LANGS.includes(lang as Lang) && textOf(nodes, title.path) !== TITLE[lang as Lang](parsed(exp.name)))) problems.push(`title reads ${JSON.stringify(title ? textOf(nodes, title.path) : null)}`);
  const name = el(nodes, (n) => n.id === 'merchant-name')[0];
  if (!name || textOf(nodes, name.path) !== parsed(exp.name)) problems.push(`#merchant-name reads ${JSON.stringify(name ? textOf(nodes, name.path) : null)}`);
  if (paidWithRedirect && el(nodes, (n) => n.id === 'redirect').length !== 1) problems.push('no link back to the merchant on the paid page');

  if (rawHtml !== undefined) {
    for (const v of exp.values ?? []) if (/[<>"']/.test(v) && rawHtml.includes(v)) problems.push(`raw (unescaped) value in the HTML: ${JSON.stringify(v.slice(0, 80))}`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------

describe('cashier page against hostile merchant and payer input', { timeout: 90_000 }, () => {
  let t: TestGateway;
  let browser: Browser;
  let parserContext: BrowserContext;
  let parser: Page;

  beforeAll(async () => {
    [t, browser] = await Promise.all([startTestGateway({ config: { deployment: deploymentWithFactory(['4']) } }), launchBrowser()]);
    parserContext = await browser.newContext({ javaScriptEnabled: true, offline: true });
    parser = await parserContext.newPage();
  });
  afterAll(async () => {
    await parserContext?.close();
    await browser?.close();
    await t?.close();
  });

  interface Order {
    no: string;
    token: string;
    path: string;
  }

  async function createOrder(merchant: Merchant, fields: Record<string, unknown>): Promise<{ ok: true; order: Order } | { ok: false; code: number; message: string }> {
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(merchant, t.clock, fields), merchant, clock: t.clock });
    if (res.json.code !== 0) return { ok: false, code: res.json.code, message: res.json.message };
    const url = new URL(String(res.json.data!.cashier_url));
    return { ok: true, order: { no: String(res.json.data!.payment_order_no), token: url.searchParams.get('t')!, path: `${url.pathname}${url.search}` } };
  }

  async function mustCreate(merchant: Merchant, fields: Record<string, unknown>): Promise<Order> {
    const r = await createOrder(merchant, fields);
    if (!r.ok) throw new Error(`order refused: ${r.code} ${r.message}`);
    return r.order;
  }

  /** The payer's choice through the JSON API (as the page's script makes it). */
  async function select(o: Order): Promise<void> {
    const res = await fetch(`${t.baseUrl}/cashier/api/orders/${o.no}/select?t=${encodeURIComponent(o.token)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ network: '4', currency: 'USDT' }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
  }
  /** The whole amount arrives, final: the order is paid. */
  const pay = (o: Order) => observeTransfer(t, { paymentOrderNo: o.no, amount: ORDER_AMOUNT_BASE });

  async function fetchPage(o: Order, query = '', headers: Record<string, string> = {}): Promise<{ html: string; nodes: DomNode[]; lang: Lang }> {
    const res = await fetch(`${t.baseUrl}${o.path}${query}`, { headers, redirect: 'manual' });
    const html = await res.text();
    expect(res.status, html.slice(0, 200)).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    const nodes = await parseHtml(parser, html);
    const lang = attr(el(nodes, (n) => n.tag === 'html')[0]!, 'lang') as Lang;
    return { html, nodes, lang };
  }

  /** The JSON API as the payer's page reads it: JSON, with the texts exactly as sent, and nothing the payer is not shown. */
  async function checkJson(o: Order, exp: { desc: string; name: string; redirect: string | null; hidden: string[] }): Promise<void> {
    const res = await fetch(`${t.baseUrl}/cashier/api/orders/${o.no}?t=${encodeURIComponent(o.token)}`);
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json; charset=utf-8$/);
    const v = JSON.parse(text) as Record<string, unknown>;
    expect({ desc: v.merchant_order_desc, name: v.merchant_name, redirect: v.redirect_url }).toEqual({ desc: exp.desc, name: exp.name, redirect: exp.redirect });
    for (const h of exp.hidden) expect(text, `hidden field ${h} in the JSON API`).not.toContain(h);
  }

  // Benign pages, one per language and with/without a redirect: the skeleton every hostile page must have.
  const references = new Map<string, Promise<Record<State, string[]>>>();
  function reference(lang: Lang, withRedirect: boolean): Promise<Record<State, string[]>> {
    const key = `${lang}|${withRedirect}`;
    if (!references.has(key)) {
      references.set(
        key,
        (async () => {
          const o = await mustCreate(t.merchant, { merchant_order_desc: 'A benign mug', ...(withRedirect ? { redirect_url: 'https://shop.example/thanks?o=1' } : {}) });
          const q = `&lang=${lang}`;
          const choose = skeleton((await fetchPage(o, q)).nodes);
          await select(o);
          const awaiting = skeleton((await fetchPage(o, q)).nodes);
          await pay(o);
          const paid = skeleton((await fetchPage(o, q)).nodes);
          return { CHOOSE: choose, AWAITING: awaiting, PAID: paid };
        })(),
      );
    }
    return references.get(key)!;
  }

  it('the benign pages themselves pass the checker (no on* attribute, only the template’s URLs)', async () => {
    for (const lang of LANGS) {
      const o = await mustCreate(t.merchant, { merchant_order_desc: 'Blue <b>mug</b> & "saucer"', redirect_url: 'https://shop.example/thanks?o=1' });
      const ref = await reference(lang, true);
      const base = { no: o.no, token: o.token, desc: 'Blue <b>mug</b> & "saucer"', name: 'Test Merchant', redirect: 'https://shop.example/thanks?o=1', markers: { hidden: [] } };
      const states: [State, () => Promise<unknown>][] = [
        ['CHOOSE', () => select(o)],
        ['AWAITING', () => pay(o)],
        ['PAID', async () => undefined],
      ];
      for (const [state, next] of states) {
        const { nodes, lang: got } = await fetchPage(o, `&lang=${lang}`);
        expect(got).toBe(lang);
        expect(inspectPage(nodes, { ...base, state, reference: ref[state] }), state).toEqual([]);
        // The template has no event handler attribute at all: any on* on a hostile page came from a payload.
        expect(nodes.filter((n) => n.k === 'el' && n.attrs!.some(([a]) => /^on/i.test(a)))).toEqual([]);
        await next();
      }
    }
  });

  // ---------------------------------------------------------------------------------------------
  // 1. Generated hostile orders over HTTP, parsed

  const langArb = fc.record({
    query: fc.option(fc.oneof(fc.constantFrom('en', 'zh-CN', 'EN', 'zh-cn', 'zh'), payloadArb), { nil: undefined }),
    acceptLanguage: fc.option(fc.oneof(fc.constantFrom('zh-CN,zh;q=0.9', 'en-US', 'fr'), fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 120 }), fc.constantFrom(...FRAGMENTS.filter((f) => /^[\x20-\x7e]*$/.test(f)))), { nil: undefined }),
  });

  const orderArb = fc.record({
    desc: payloadArb,
    goods: payloadArb,
    orderNo: payloadArb,
    userId: payloadArb,
    business: payloadArb,
    extension: payloadArb,
    long: fc.boolean(),
    redirect: fc.option(fc.tuple(urlTailArb, fc.option(urlTailArb.map((s) => s.replace(/#/g, '')), { nil: undefined })), { nil: undefined }),
    notify: fc.option(urlTailArb, { nil: undefined }),
    lang: langArb,
  });

  const langQuery = (l: { query?: string }) => (l.query === undefined ? '' : `&lang=${encodeURIComponent(l.query)}`);
  const langHeaders = (l: { acceptLanguage?: string }): Record<string, string> => (l.acceptLanguage === undefined ? {} : { 'accept-language': l.acceptLanguage });

  it('1. any hostile text in any order field stays text on every page of the order, in the DOM a real parser builds', async () => {
    let accepted = 0;
    const refused: string[] = [];
    await fc.assert(
      fc.asyncProperty(orderArb, async (g) => {
        const mk = { desc: marker('desc'), goods: marker('goods'), orderNo: marker('ono'), userId: marker('uid'), business: marker('biz'), extension: marker('ext'), notify: marker('notify'), redirect: marker('redir') };
        const desc = fit(mk.desc, g.desc, 256, g.long);
        const redirect = g.redirect ? hostileUrl(mk.redirect, g.redirect[0], g.redirect[1] ?? '') : null;
        const fields: Record<string, string> = {
          merchant_order_desc: desc,
          goods_info: fit(mk.goods, g.goods, 1024, g.long),
          merchant_order_no: fit(mk.orderNo, g.orderNo, 64, g.long),
          merchant_application_user_id: fit(mk.userId, g.userId, 64, g.long),
          business_info: fit(mk.business, g.business, 1024, g.long),
          extension: fit(mk.extension, g.extension, 1024, g.long),
          ...(redirect ? { redirect_url: redirect } : {}),
          ...(g.notify ? { notify_url: `https://hooks.example/${mk.notify}/${g.notify}`.slice(0, 512) } : {}),
        };
        const created = await createOrder(t.merchant, fields);
        if (!created.ok) {
          // Whatever the API refuses never reaches a page; it must be a shape refusal, not a crash.
          expect([40009, 41000, 41001], created.message).toContain(created.code);
          refused.push(`${created.code} ${created.message}`);
          return;
        }
        accepted += 1;
        const o = created.order;
        const hidden = [mk.goods, mk.orderNo, mk.userId, mk.business, mk.extension, mk.notify];
        const expBase = { no: o.no, token: o.token, desc, name: 'Test Merchant', redirect, values: Object.values(fields) };
        const states: [State, () => Promise<unknown>][] = [
          ['CHOOSE', () => select(o)],
          ['AWAITING', () => pay(o)],
          ['PAID', async () => undefined],
        ];
        for (const [state, next] of states) {
          const { html, nodes, lang } = await fetchPage(o, langQuery(g.lang), langHeaders(g.lang));
          const ref = (await reference(LANGS.includes(lang) ? lang : 'en', redirect !== null))[state];
          const markers = { desc: mk.desc, name: undefined, redirect: redirect ? mk.redirect : undefined, hidden: state === 'PAID' || !redirect ? hidden : [...hidden, mk.redirect] };
          const problems = inspectPage(nodes, { ...expBase, state, markers, reference: ref }, html);
          expect(problems, `${state} page of ${JSON.stringify(fields)}`).toEqual([]);
          for (const h of [mk.goods, mk.orderNo, mk.userId, mk.business, mk.extension, mk.notify]) expect(html).not.toContain(h);
          await checkJson(o, { desc, name: 'Test Merchant', redirect: state === 'PAID' ? redirect : null, hidden });
          await next();
        }
      }),
      fuzzOptions(0, 60, { endOnFailure: true }),
    );
    // The generator is aimed at what the API accepts: most orders must get to the page.
    expect(accepted, refused.join('\n')).toBeGreaterThanOrEqual(runs(50));
  });

  it('1b. a hostile merchant name (set by the operator) stays text in the title, the header and the “returning to” line', async () => {
    await fc.assert(
      fc.asyncProperty(payloadArb, payloadArb, fc.constantFrom(...LANGS), async (namePayload, descPayload, lang) => {
        const mk = { name: marker('name'), desc: marker('desc') };
        // 1-128 UTF-16 units after trimming (the operator use case's rule): 64 code points always fit.
        // Control and bidi formatting characters are refused in a merchant name (checkName): the
        // name is tried with them first, then without.
        const raw = fit(mk.name, namePayload, 64, false);
        const wanted = raw.replace(NAME_REFUSED, '');
        if (wanted !== raw) await expect(t.addMerchant({ name: raw })).rejects.toThrow(/merchant name must not contain/);
        const merchant = await t.addMerchant({ name: wanted });
        const stored = (await t.gateway.store.merchants.get(merchant.merchantNo))!.name;
        const desc = fit(mk.desc, descPayload, 256, false);
        const redirect = 'https://shop.example/thanks?o=2';
        const o = await mustCreate(merchant, { merchant_order_desc: desc, redirect_url: redirect });
        const ref = await reference(lang, true);
        const expBase = { no: o.no, token: o.token, desc, name: stored, redirect, markers: { desc: mk.desc, name: mk.name, hidden: [] }, values: [stored, desc] };
        await select(o);
        await pay(o);
        for (const state of ['PAID'] as const) {
          const { html, nodes } = await fetchPage(o, `&lang=${lang}`);
          expect(inspectPage(nodes, { ...expBase, state, reference: ref[state] }, html), JSON.stringify(stored)).toEqual([]);
          // Both paragraphs of the success section: "returning to <name>" and the link back.
          const back = el(nodes, (n) => n.path.endsWith('section#success>p#redirecting'))[0]!;
          // The name sits between FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE: its own
          // direction, or a RIGHT-TO-LEFT OVERRIDE in it, cannot reorder the rest of the sentence.
          const isolated = `\u2068${parsed(stored)}\u2069`;
          expect(textOf(nodes, back.path)).toBe(lang === 'en' ? `Returning to ${isolated}…` : `正在返回 ${isolated}…`);
          expect(attr(back, 'data-stayed')).toBe(lang === 'en' ? `You stay on this page. Return to ${isolated} when you are ready.` : `您将留在此页面。准备好后再返回 ${isolated}。`);
          // Elements holding merchant text alone are isolated by dir="auto".
          for (const id of ['merchant-name', 'order-h']) expect(attr(el(nodes, (n) => n.id === id)[0]!, 'dir'), id).toBe('auto');
        }
        await checkJson(o, { desc, name: stored, redirect, hidden: [] });
      }),
      fuzzOptions(1, 6, { endOnFailure: true }),
    );
  });

  // ---------------------------------------------------------------------------------------------
  // 3. redirect_url

  const DANGEROUS_REDIRECTS = [
    'javascript:window.__pwned=1',
    'JAVASCRIPT:window.__pwned=1',
    ' javascript:window.__pwned=1',
    '\tjavascript:window.__pwned=1',
    'java\nscript:window.__pwned=1',
    'java\tscript:alert(1)',
    '\u0001javascript:alert(1)',
    'javascript://shop.example/%0aalert(1)',
    'data:text/html,<script>window.__pwned=1</script>',
    'data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==',
    'vbscript:msgbox(1)',
    'https:javascript:alert(1)',
    'https:/shop.example/',
    'https:\\\\evil.example/',
    '//evil.example/',
    '/\\evil.example/',
    'http://evil.example\\@shop.example/',
    'https://user@evil.example/',
    'https://shop.example/"><script>window.__pwned=1</script>',
    "https://shop.example/' onmouseover='alert(1)",
    'https://shop.example/ onmouseover=alert(1)',
    'https://shop.example/<svg/onload=alert(1)>',
    'https://shop.example/\u2028',
    'https://shop.example/\r\nLocation: javascript:alert(1)',
    'https://shop.example/#a#b',
    'https://',
    'https:// shop.example/',
    'file:///etc/passwd',
    'ftp://shop.example/',
    'blob:https://shop.example/0000',
    'ethereum:0x0000000000000000000000000000000000000000@1?value=1',
    'about:blank',
    'jav&#x09;ascript:alert(1)',
    'https://shop.example/' + 'a'.repeat(500),
  ];

  it.each(DANGEROUS_REDIRECTS.map((u) => [JSON.stringify(u).slice(0, 70), u]))('3. refuses redirect_url %s at creation (41000)', async (_label, url) => {
    const r = await createOrder(t.merchant, { redirect_url: url });
    expect(r.ok ? 0 : r.code).toBe(41000);
    const n = await createOrder(t.merchant, { notify_url: url });
    expect(n.ok ? 0 : n.code).toBe(41001);
  });

  it.each([
    ['total_amount', '10.50<script>window.__pwned=1</script>', 41013],
    ['total_amount', '10.50"', 41013],
    ['total_amount', '１０', 41013],
    ['merchant_order_currency', 'USDT"><img src=x onerror=alert(1)>', 41009],
    ['merchant_order_currency', '<svg onload=alert(1)>', 41009],
  ])('3. the other texts the page shows (amount %s = %j) are refused unless well-formed (%i)', async (field, value, code) => {
    const r = await createOrder(t.merchant, { [field]: value });
    expect(r.ok ? 0 : r.code).toBe(code);
  });

  it('3b. any redirect_url the API accepts is an absolute http(s) URL a browser resolves to http(s)', async () => {
    const schemes = fc.oneof(
      { weight: 1, arbitrary: fc.constantFrom('javascript:', 'JavaScript:', 'data:', 'vbscript:', 'http://', 'https://', 'HTTPS://', 'https:/', 'https:', '//', ' https://', '\thttps://', 'https:\\\\', 'ht\ntps://', 'https://\u0000') },
      { weight: 2, arbitrary: fc.constantFrom('https://shop.example/', 'http://127.0.0.1:8080/', 'HTTP://SHOP.EXAMPLE') },
    );
    const tailChar = fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(...URL_PIECES, ...'abc/.:;@!$&\'()*+,=?#-_~'.split('')) },
      { weight: 1, arbitrary: fc.constantFrom(...'%<>"`{}|\\^[] \t\n\r\u0000\u2028\u202e'.split('')) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 2 }) },
    );
    let acceptedCount = 0;
    await fc.assert(
      fc.asyncProperty(schemes, fc.array(tailChar, { maxLength: 12 }), async (scheme, tail) => {
        const url = scheme + tail.join('');
        const r = await createOrder(t.merchant, { redirect_url: url });
        if (!r.ok) {
          // 40009: a NUL character is refused as malformed text before the URL rules (§7 order).
          expect(r.code === 41000 || (r.code === 40009 && url.includes('\0')), `${r.code} ${r.message}`).toBe(true);
          return;
        }
        acceptedCount += 1;
        expect(url).toMatch(/^https?:\/\//i);
        const resolved = new URL(url, 'https://gateway.test/cashier/x');
        expect(['http:', 'https:']).toContain(resolved.protocol);
        // Printable ASCII only, none of the characters that end an attribute or a tag.
        expect([...url].filter((c) => c <= ' ' || c >= '\x7f' || '<>"`\\'.includes(c))).toEqual([]);
      }),
      fuzzOptions(3, 150),
    );
    expect(acceptedCount).toBeGreaterThan(20);
  });

  it('3c. a javascript:/data: redirect_url that got into the database anyway never becomes a link or a refresh target', async () => {
    for (const bad of ['javascript:window.__pwned=1', 'data:text/html,<script>window.__pwned=1</script>', ' https://shop.example/', '//evil.example/']) {
      const o = await mustCreate(t.merchant, { redirect_url: 'https://shop.example/ok' });
      await t.gateway.db.kysely.updateTable('orders').set({ redirect_url: bad }).where('payment_order_no', '=', o.no).execute();
      await select(o);
      await pay(o);
      const { html, nodes } = await fetchPage(o, '&lang=en');
      // Rendered as a paid page without a redirect (the success text only).
      const problems = inspectPage(nodes, { no: o.no, token: o.token, state: 'PAID', desc: 'Test order', name: 'Test Merchant', redirect: null, markers: { hidden: [] }, reference: (await reference('en', false)).PAID }, html);
      expect(problems, bad).toEqual([]);
      expect(html).not.toContain('http-equiv="refresh" content="3');
      expect(html).not.toMatch(/javascript:|data:text/i);
    }
  });

  // ---------------------------------------------------------------------------------------------
  // 4. lang and Accept-Language

  it('4. hostile ?lang= and Accept-Language values pick English or Chinese and never reach the page, the form action or the redirect', async () => {
    const hostileLang = fc.oneof(payloadArb, fc.constantFrom(...FRAGMENTS), fc.constantFrom('en"><script>window.__pwned=1</script>', 'zh-CN" onload="alert(1)', 'en&lang=<x>', 'zh-CN\r\nX: y', 'en%22%3E'));
    const headerArb = fc.oneof(
      fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 200 }),
      fc.constantFrom('"><script>window.__pwned=1</script>', 'zh-CN;q=1,"><svg onload=alert(1)>', 'zh-Hans"><img src=x onerror=alert(1)>;q=0.9', `${'en;q=0.1,'.repeat(60)}zh`, 'zh-CN;q=NaN,en;q=Infinity', '*;q=1, zh-CN;q=0.5'),
    );
    let o = await mustCreate(t.merchant, { merchant_order_desc: 'Language test' });
    let uses = 0;
    await fc.assert(
      fc.asyncProperty(fc.option(hostileLang, { nil: undefined }), fc.option(headerArb, { nil: undefined }), fc.boolean(), async (lang, header, twice) => {
        // Each order has its own request budget (30, refilled at 2/s of the gateway's clock).
        if (++uses % 8 === 0) o = await mustCreate(t.merchant, { merchant_order_desc: 'Language test' });
        const q = lang === undefined ? '' : `&lang=${encodeURIComponent(lang)}${twice ? `&lang=${encodeURIComponent(lang)}` : ''}&e=${encodeURIComponent(`x${lang}`)}`;
        const headers: Record<string, string> = header === undefined ? {} : { 'accept-language': header };
        const { html, nodes, lang: picked } = await fetchPage(o, q, headers);
        expect(LANGS).toContain(picked);
        const ref = (await reference(picked, false)).CHOOSE;
        const values = [lang, header].filter((v): v is string => v !== undefined && v.length > 3);
        expect(inspectPage(nodes, { no: o.no, token: o.token, state: 'CHOOSE', desc: 'Language test', name: 'Test Merchant', redirect: null, markers: { hidden: [] }, reference: ref, values }, html)).toEqual([]);
        // The no-script form's redirect names only a known language.
        const posted = await fetch(`${t.baseUrl}/cashier/${o.no}/select?t=${encodeURIComponent(o.token)}${q}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: 'option=9%3AUSDT', redirect: 'manual' });
        expect(posted.status).toBe(303);
        expect(posted.headers.get('location')).toMatch(new RegExp(`^/cashier/${o.no}\\?t=${encodeURIComponent(o.token)}&lang=(en|zh-CN)&e=1$`));
      }),
      fuzzOptions(4, 40),
    );
  });

  it('4b. hostile order numbers, tokens and queries get the one fixed 404 page, which reflects nothing', async () => {
    const o = await mustCreate(t.merchant, {});
    const reference404 = await (await fetch(`${t.baseUrl}/cashier/P000000?t=x`)).text();
    const paths = [
      `/cashier/%3Cscript%3Ewindow.__pwned%3D1%3C%2Fscript%3E?t=${o.token}`,
      `/cashier/${o.no}?t=%22%3E%3Cscript%3Ewindow.__pwned%3D1%3C%2Fscript%3E`,
      `/cashier/${o.no}?t=${o.token}%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E`,
      `/cashier/%22%20onload%3D%22alert(1)?t=${o.token}&lang=%3Csvg%20onload%3Dalert(1)%3E`,
      `/cashier/${o.no}%00?t=${o.token}`,
      `/cashier/${o.no}?t[]=${o.token}`,
    ];
    for (const p of paths) {
      t.clock.advance(1);
      const res = await fetch(`${t.baseUrl}${p}`);
      const html = await res.text();
      expect(res.status, p).toBe(404);
      expect(html, p).toBe(reference404);
      expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    }
  });

  // ---------------------------------------------------------------------------------------------
  // 2. The nastiest orders in a real browser, with and without the CSP

  interface Trapped {
    /** Anything that ran: dialogs, window.__pwned, the binding called from a payload. */
    executed: string[];
    /** CSP violations (securitypolicyviolation events and console reports). */
    csp: string[];
    errors: string[];
  }

  /** A browser context whose pages report any script a payload manages to run, and every CSP violation. */
  async function trappedContext(opts: { stripCsp: boolean; locale: string }): Promise<{ context: BrowserContext; trapped: Trapped }> {
    const context = await browser.newContext({ locale: opts.locale, viewport: { width: 800, height: 900 } });
    const trapped: Trapped = { executed: [], csp: [], errors: [] };
    await context.exposeBinding('__sparkpayTrap', (_source, kind: string, detail: string) => {
      (kind === 'csp' ? trapped.csp : trapped.executed).push(`${kind}: ${detail}`);
    });
    await context.addInitScript(`(() => {
      const report = (kind, detail) => { try { window.__sparkpayTrap(kind, String(detail)); } catch (e) { /* the page is going */ } };
      for (const f of ['alert', 'confirm', 'prompt', 'print']) window[f] = (m) => report('dialog', f + '(' + m + ')');
      Object.defineProperty(window, '__pwned', { configurable: false, get() { return undefined; }, set(v) { report('__pwned', v); } });
      document.addEventListener('securitypolicyviolation', (e) => report('csp', e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || '')), true);
    })();`);
    context.on('page', (p) => {
      p.on('dialog', (d) => {
        trapped.executed.push(`dialog: ${d.message()}`);
        void d.dismiss().catch(() => undefined);
      });
      p.on('console', (msg) => {
        if (/Content Security Policy|Refused to/i.test(msg.text())) trapped.csp.push(`console: ${msg.text()}`);
        else if (msg.type() === 'error') trapped.errors.push(msg.text());
      });
      p.on('pageerror', (e) => trapped.errors.push(e.message));
    });
    const origin = new URL(t.baseUrl).origin;
    // The merchant's site (where redirect_url points): a plain page, no network.
    await context.route(
      (url) => url.origin !== origin,
      (route) => route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: '<!doctype html><title>Shop</title><h1>Back at the shop</h1>' }),
    );
    if (opts.stripCsp) {
      await context.route(
        (url) => url.origin === origin,
        async (route) => {
          const res = await route.fetch();
          const headers = { ...res.headers() };
          delete headers['content-security-policy'];
          await route.fulfill({ response: res, headers });
        },
      );
    }
    return { context, trapped };
  }

  /** Every element of the live #cashier (after the script swapped content in): no on*, no element the template lacks. */
  async function liveProblems(page: Page, exp: { desc: string }): Promise<string[]> {
    const nodes = (await page.evaluate(`(${DUMP})(document)`)) as DomNode[];
    const problems: string[] = [];
    for (const n of nodes) {
      if (n.k === 'comment') problems.push(`comment at ${n.path}`);
      if (n.k !== 'el') continue;
      if (!ALLOWED_TAGS.has(n.tag!)) problems.push(`live element <${n.tag}> at ${n.path}`);
      for (const [a, v] of n.attrs!) if (!(n.tag === 'link' && a === 'href' && v === 'data:,') && (/^on/i.test(a) || a === 'style' || a === 'srcdoc' || /^\s*(javascript|data|vbscript):/i.test(v))) problems.push(`live attribute ${n.path}[${a}=${JSON.stringify(v.slice(0, 60))}]`);
    }
    const h1 = el(nodes, (n) => n.id === 'order-h')[0];
    if (!h1 || textOf(nodes, h1.path) !== parsed(exp.desc)) problems.push(`live h1 reads ${JSON.stringify(h1 ? textOf(nodes, h1.path).slice(0, 80) : null)}`);
    return problems;
  }

  const NASTY_DESC = [
    '</title><script>window.__pwned=1</script>"><img src=x onerror=window.__pwned=1>',
    '<noscript><p title="</noscript><img src=x onerror=window.__pwned=1>">',
    "'><svg/onload=window.__pwned=1><a href=javascript:window.__pwned=1>x</a>",
    '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
    '</main><iframe srcdoc="<script>parent.__pwned=1</script>"></iframe>{{constructor.constructor("window.__pwned=1")()}}\u202e',
  ].join('');
  const NASTY_NAME = '"><script>window.__pwned=1</script><img src=x onerror=alert(1)></title><svg onload=window.__pwned=1>';
  const NASTY_REDIRECT = "https://shop.example/x';window.__pwned=1;//?u=javascript:window.__pwned=1&v=;url=javascript:alert(1)&w=%22%3E%3Cscript%3Ealert(1)%3C/script%3E#'-alert(1)-'";

  it('2. the nastiest orders, chosen and paid in Chromium, run nothing: with the server’s CSP and with it stripped', { timeout: 90_000 }, async () => {
    const merchant = await t.addMerchant({ name: NASTY_NAME });
    const generated = fc.sample(payloadArb, fuzzOptions(2, 40)).sort((a, b) => b.length - a.length);
    const orders = [
      { desc: codePoints(NASTY_DESC).slice(0, 256).join(''), redirect: NASTY_REDIRECT, locale: 'en-US' },
      { desc: fit('', generated[0]!, 256, true), redirect: null, locale: 'zh-CN' },
      { desc: fit('', generated[1]!, 256, false), redirect: `https://shop.example/${URL_PIECES.slice(0, 6).join('')}`, locale: 'en-US' },
    ];
    const report: Record<string, Trapped & { live: string[] }> = {};
    for (const stripCsp of [false, true]) {
      await Promise.all(
        orders.map(async (spec, i) => {
          const o = await mustCreate(merchant, {
            merchant_order_desc: spec.desc,
            goods_info: NASTY_DESC,
            business_info: NASTY_DESC,
            extension: NASTY_DESC,
            merchant_order_no: codePoints(NASTY_NAME).slice(0, 64).join(''),
            ...(spec.redirect ? { redirect_url: spec.redirect } : {}),
          });
          const { context, trapped } = await trappedContext({ stripCsp, locale: spec.locale });
          // Findings are collected, not thrown at once, so a vulnerable page still reports what ran and what the CSP blocked.
          const live: string[] = [];
          report[`${stripCsp ? 'no CSP' : 'CSP'} #${i}`] = { ...trapped, live };
          try {
            const page = await context.newPage();
            const res = await page.goto(`${t.baseUrl}${o.path}`);
            expect(res!.status()).toBe(200);
            expect(res!.headers()['content-security-policy'] === undefined).toBe(stripCsp);
            live.push(...(await liveProblems(page, spec)));
            // Choosing goes through the script: the JSON API, then the page fetched again and swapped in with innerHTML.
            await page.locator('button[name="option"][value="4:USDT"]').click();
            await page.locator('#address').waitFor({ timeout: 15_000 });
            live.push(...(await liveProblems(page, spec)));
            await pay(o);
            if (spec.redirect) {
              // The poll sees the payment, swaps the paid page in, and the script (or the meta refresh) goes back to the merchant.
              await page.locator('#success').waitFor({ timeout: 15_000 }).catch(() => undefined);
              await page.waitForURL((u) => u.origin !== new URL(t.baseUrl).origin, { timeout: 15_000 });
              expect(page.url()).toBe(new URL(spec.redirect).href);
            } else {
              await page.locator('#success').waitFor({ timeout: 15_000 });
              live.push(...(await liveProblems(page, spec)));
            }
            // The JSON API opened as a document (it sends no nosniff or CSP of its own): shown as JSON, never as HTML.
            const json = await context.newPage();
            const answer = await json.goto(`${t.baseUrl}/cashier/api/orders/${o.no}?t=${encodeURIComponent(o.token)}`);
            expect(answer!.headers()['content-type']).toBe('application/json; charset=utf-8');
            expect(await json.evaluate('[document.contentType, document.querySelectorAll("img,svg,script,iframe,style").length]')).toEqual(['application/json', 0]);
          } catch (err) {
            live.push(`the payer's flow broke: ${String(err).slice(0, 300)}`);
          } finally {
            await context.close();
          }
        }),
      );
    }
    // Nothing ran anywhere; with the CSP on, nothing was even attempted (escaping, not the CSP, stopped it); the live DOM stayed the template's.
    const list = (pick: (r: Trapped & { live: string[] }) => string[]) => Object.entries(report).filter(([, r]) => pick(r).length).map(([k, r]) => `${k}: ${pick(r).join('; ')}`);
    expect({
      scriptFromAPayloadRan: list((r) => r.executed),
      payloadBlockedOnlyByTheCsp: list((r) => r.csp),
      liveDomProblems: list((r) => r.live),
      pageErrors: list((r) => r.errors),
    }).toEqual({ scriptFromAPayloadRan: [], payloadBlockedOnlyByTheCsp: [], liveDomProblems: [], pageErrors: [] });
  });

  // ---------------------------------------------------------------------------------------------
  // The checks can fail: an unescaped value in a copy of a real page (never in the source) is caught.

  const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

  it('the checker and the browser traps catch a deliberately unescaped value in a copy of the page', async () => {
    const mk = marker('desc');
    const desc = `${mk}<img src=x onerror=window.__pwned=1>`;
    const redirect = 'https://shop.example/thanks?o=9';
    const o = await mustCreate(t.merchant, { merchant_order_desc: desc, redirect_url: redirect });
    const exp = { no: o.no, token: o.token, state: 'CHOOSE' as const, desc, name: 'Test Merchant', redirect, markers: { desc: mk, hidden: [] }, values: [desc] };
    const { html, nodes, lang } = await fetchPage(o, '&lang=en');
    const ref = await reference(lang, true);
    expect(inspectPage(nodes, { ...exp, reference: ref.CHOOSE }, html)).toEqual([]);

    // 1. The description unescaped in the h1.
    expect(html).toContain(escapeHtml(desc));
    const tampered = html.replace(escapeHtml(desc), desc);
    const problems = inspectPage(await parseHtml(parser, tampered), { ...exp, reference: ref.CHOOSE }, tampered);
    expect(problems.join('\n')).toMatch(/structure differs/);
    expect(problems.join('\n')).toMatch(/element <img>/);
    expect(problems.join('\n')).toMatch(/event handler attribute/);
    expect(problems.join('\n')).toMatch(/raw \(unescaped\) value/);
    // 2. A quote breaking out of an attribute.
    const breakout = html.replace(`data-order="${o.no}"`, `data-order="${o.no}" onclick="window.__pwned=1"`);
    expect(inspectPage(await parseHtml(parser, breakout), { ...exp, reference: ref.CHOOSE }).join('\n')).toMatch(/event handler attribute/);

    // 3. A javascript: redirect link on the paid page.
    await select(o);
    await pay(o);
    const paid = await fetchPage(o, '&lang=en');
    const paidExp = { ...exp, state: 'PAID' as const, reference: ref.PAID };
    expect(inspectPage(paid.nodes, paidExp, paid.html)).toEqual([]);
    const jsLink = paid.html.replace(`href="${escapeHtml(redirect)}"`, 'href="javascript:window.__pwned=1"');
    expect(jsLink).not.toBe(paid.html);
    expect(inspectPage(await parseHtml(parser, jsLink), paidExp).join('\n')).toMatch(/URL or forbidden attribute .*a#redirect\[href="javascript:/);

    // 4. The browser traps fire on the tampered copy: it runs without the CSP, and the CSP's block is reported.
    for (const stripCsp of [true, false]) {
      const { context, trapped } = await trappedContext({ stripCsp, locale: 'en-US' });
      try {
        await context.route(`${t.baseUrl}${o.path}`, async (route) => {
          const res = await route.fetch();
          const headers = { ...res.headers() };
          if (stripCsp) delete headers['content-security-policy'];
          await route.fulfill({ status: 200, headers, body: tampered });
        });
        const page = await context.newPage();
        await page.goto(`${t.baseUrl}${o.path}`);
        await page.waitForLoadState('load');
        await page.waitForTimeout(200);
        if (stripCsp) {
          expect(trapped.executed.join('\n')).toMatch(/__pwned: 1/);
        } else {
          expect(trapped.executed).toEqual([]);
          expect(trapped.csp.join('\n')).toMatch(/script-src|Content Security Policy/);
        }
        expect((await liveProblems(page, { desc })).join('\n')).toMatch(/live element <img>/);
      } finally {
        await context.close();
      }
    }
  });
});
