// The cashier page over plain HTTP (no browser): the essentials are in the first HTML response,
// the plain form chooses an option without script, the security headers, the one 404 page for
// every wrong token, the per-order budget of the JSON API, and bad input that never becomes a 500.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CASHIER_BURST, CASHIER_STRANGER_BURST } from '../src/adapters/http/cashier-api.js';
import { api, deploymentWithFactory, observeTransfer, orderBody, startTestGateway, type TestGateway } from './harness.js';

describe('cashier page over HTTP', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ config: { deployment: deploymentWithFactory(['3', '4'], { confirmations: 3 }) } });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function newOrder(overrides: Record<string, unknown> = {}): Promise<{ no: string; token: string; path: string }> {
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(t.merchant, t.clock, { merchant_order_desc: 'Blue <b>mug</b> & "saucer"', ...overrides }), merchant: t.merchant, clock: t.clock });
    expect(res.json.code, res.json.message).toBe(0);
    const url = new URL(String(res.json.data!.cashier_url));
    return { no: String(res.json.data!.payment_order_no), token: url.searchParams.get('t')!, path: `${url.pathname}${url.search}` };
  }
  const page = (path: string, headers: Record<string, string> = {}) => fetch(`${t.baseUrl}${path}`, { headers, redirect: 'manual' });
  const postForm = (no: string, token: string, body: string, type = 'application/x-www-form-urlencoded', lang = 'en') =>
    fetch(`${t.baseUrl}/cashier/${no}/select?t=${encodeURIComponent(token)}&lang=${lang}`, { method: 'POST', headers: { 'content-type': type }, body, redirect: 'manual' });

  it('renders the order and its options in the first response, with strict headers', async () => {
    const o = await newOrder();
    const res = await page(o.path);
    const html = await res.text();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(html).toContain('Test Merchant');
    expect(html).toContain('Blue &lt;b&gt;mug&lt;/b&gt; &amp; &quot;saucer&quot;');
    expect(html).not.toContain('<b>mug');
    expect(html).toContain('10.50 USDT');
    expect(html).toMatch(/<button type="submit" id="option-4-USDT" name="option" value="4:USDT"[^>]*>[\s\S]*?USDT on Polygon/);
    expect(html).toContain('id="countdown" data-seconds="1800" data-days="d">30:00<');
    // Three days ahead: the days apart, in the page's language.
    const long = await newOrder({ merchant_order_timeout: t.clock.seconds() + 3 * 86_400 - 1 });
    expect(await (await page(long.path)).text()).toContain('data-days="d">2 d 23:59:59<');
    expect(await (await page(`${long.path}&lang=zh-CN`)).text()).toContain('data-days="天">2 天 23:59:59<');
    // No inline script, style or event handler anywhere; scripts and styles from our origin only.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc="\/cashier\/assets\/)[^>]*>/);
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it('serves its script and stylesheet from its own origin, cacheable, and nothing else under /cashier/assets', async () => {
    const o = await newOrder();
    const html = await (await page(o.path)).text();
    const paths = [...html.matchAll(/(?:src|href)="(\/cashier\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(paths).toHaveLength(2);
    for (const p of paths) {
      const res = await page(p);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(res.headers.get('content-type')).toMatch(p.endsWith('.js') ? /^text\/javascript/ : /^text\/css/);
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(500);
    }
    expect((await page('/cashier/assets/cashier.js')).status).toBe(404);
    expect((await page('/cashier/assets/..%2F..%2Fpackage.json')).status).toBe(404);
  });

  it('chooses an option with the plain form, then shows the address, exact amount, QR code and warning', async () => {
    const o = await newOrder();
    const posted = await postForm(o.no, o.token, 'option=4%3AUSDT');
    expect(posted.status).toBe(303);
    expect(posted.headers.get('location')).toBe(`/cashier/${o.no}?t=${o.token}&lang=en`);
    const html = await (await page(posted.headers.get('location')!)).text();
    const chosen = (await (await fetch(`${t.baseUrl}/cashier/api/orders/${o.no}?t=${o.token}`)).json()) as { selected: { address: string; uri: string } };
    expect(html).toContain(`<code id="address" aria-labelledby="address-label">${chosen.selected.address}</code>`);
    expect(html).toContain('<code id="amount" aria-labelledby="amount-label">10.5</code> USDT');
    expect(html).toContain('Send only USDT on Polygon (chain ID 137), token contract 0xc2132D05D31c914a87C6611C10748AEb04B58e8F.');
    expect(html).toMatch(/<svg role="img" aria-label="QR code of the payment request for USDT on Polygon"[^>]*viewBox="0 0 \d+ \d+"/);
    expect(html).toContain(`href="${chosen.selected.uri.replace(/&/g, '&amp;')}"`);
    expect(html).toContain('Waiting for your payment.');
  });

  it('answers a wrong, missing or other order’s token with the same 404 page as an unknown order', async () => {
    const a = await newOrder();
    const b = await newOrder();
    const answers = await Promise.all([
      page(`/cashier/${a.no}?t=${a.token.slice(0, -1)}${a.token.endsWith('x') ? 'y' : 'x'}`),
      page(`/cashier/${a.no}`),
      page(`/cashier/${a.no}?t=${b.token}`),
      page(`/cashier/P000000?t=${a.token}`),
      page(`/cashier/${a.no}?t=${a.token}&t=${a.token}`),
      postForm(a.no, b.token, 'option=4%3AUSDT'),
    ]);
    const bodies = await Promise.all(answers.map((r) => r.text()));
    expect(answers.map((r) => r.status)).toEqual([404, 404, 404, 404, 404, 404]);
    expect(new Set(bodies).size).toBe(1);
    expect(bodies[0]).toContain('Not found');
    expect(bodies[0]).not.toMatch(/Test Merchant|USDT|10\.5|P\d{6,}/);
    expect(answers[0]!.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await t.gateway.store.depositAddresses.get(a.no, '4', 'USDT')).toBeNull();
  });

  it.each([
    ['option=9%3AUSDT', 'application/x-www-form-urlencoded'],
    ['option=4%3ADOGE', 'application/x-www-form-urlencoded'],
    ['option=', 'application/x-www-form-urlencoded'],
    ['nothing', 'application/x-www-form-urlencoded'],
    ['option=4%3AUSDT', 'text/plain'],
    ['%ff%fe=%zz', 'application/x-www-form-urlencoded'],
    ['option=2%3AUSDT', 'application/x-www-form-urlencoded'],
  ])('sends a bad choice %j (%s) back to the page with a notice, storing nothing', async (body, type) => {
    const o = await newOrder();
    const res = await postForm(o.no, o.token, body, type);
    expect(res.status).toBe(303);
    const location = res.headers.get('location')!;
    expect(location).toContain('&e=1');
    const html = await (await page(location)).text();
    expect(html).toContain('role="alert"');
    // Without JavaScript the page refreshes itself to its own address without the notice: shown once.
    const refresh = /<noscript><meta http-equiv="refresh" content="10;url=([^"]+)"><\/noscript>/.exec(html);
    expect(refresh?.[1]?.replaceAll('&amp;', '&')).toBe(location.replace('&e=1', ''));
    expect(await (await page(location.replace('&e=1', ''))).text()).not.toContain('role="alert"');
    expect(await t.gateway.store.depositAddresses.get(o.no, '4', 'USDT')).toBeNull();
  });

  it.each(['/cashier/%', '/cashier/%E0%A4%A', '/cashier/x?t[a]=1', '/cashier/x?lang[]=zh', '/cashier/' + 'P'.repeat(5000), '/cashier/api'])('answers the odd path %s without a 500', async (path) => {
    const res = await page(path);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  });

  it('speaks Chinese from Accept-Language or ?lang=, with a switch to the other language', async () => {
    const o = await newOrder();
    const zh = await (await page(o.path, { 'accept-language': 'zh-CN,zh;q=0.9' })).text();
    expect(zh).toContain('<html lang="zh-CN">');
    expect(zh).toContain('选择付款方式');
    expect(zh).toContain('Polygon 上的 USDT');
    expect(zh).toContain(`href="/cashier/${o.no}?t=${o.token}&amp;lang=en" lang="en" hreflang="en">English</a>`);
    const en = await (await page(`${o.path}&lang=en`, { 'accept-language': 'zh-CN' })).text();
    expect(en).toContain('Choose how to pay');
    expect(en).toContain('简体中文</a>');
  });

  it('names money that arrived at the address of another of the order\'s pairs, which does not count, in the page and the JSON API', async () => {
    const o = await newOrder({ total_amount: '10' });
    await postForm(o.no, o.token, 'option=4%3AUSDT');
    await observeTransfer(t, { paymentOrderNo: o.no, amount: 4_000_000n });
    // 2 USDT at an address handed out for BNB Smart Chain (18 decimals): not its whole amount, so it does not take the order over.
    await observeTransfer(t, { paymentOrderNo: o.no, network: '3', amount: 2n * 10n ** 18n });
    const html = await (await page(o.path)).text();
    expect(html).toContain('2 USDT arrived on BNB Smart Chain at an address this order no longer takes payment at: it does not count toward this order.');
    expect(html).toContain('Send the remaining 6 USDT on Polygon to the address below.');
    const json = (await (await fetch(`${t.baseUrl}/cashier/api/orders/${o.no}?t=${encodeURIComponent(o.token)}`)).json()) as { elsewhere: unknown };
    expect(json.elsewhere).toEqual([{ network: '3', currency: 'USDT', amount: '2' }]);
  });

  it('asks for the rest in whole units of the currency precision (an 18-decimal USDT paid 9.999999999999: 0.5, not 0.500000000001)', async () => {
    const o = await newOrder({ total_amount: '10.5' });
    await postForm(o.no, o.token, 'option=3%3AUSDT');
    await observeTransfer(t, { paymentOrderNo: o.no, network: '3', amount: 9_999_999_999_999n * 10n ** 6n });
    const json = (await (await fetch(`${t.baseUrl}/cashier/api/orders/${o.no}?t=${encodeURIComponent(o.token)}`)).json()) as { remaining: string; remaining_base: string; payer_state: string };
    expect(json).toMatchObject({ payer_state: 'UNDERPAID', remaining: '0.5', remaining_base: (5n * 10n ** 17n).toString() });
    expect(await (await page(o.path)).text()).toContain('Send the remaining 0.5 USDT on BNB Smart Chain to the address below.');
  });

  it('shows a receipt once paid: the amount, the network and every transaction', async () => {
    const o = await newOrder({ total_amount: '10' });
    await postForm(o.no, o.token, 'option=4%3AUSDT');
    const a = await observeTransfer(t, { paymentOrderNo: o.no, amount: 4_000_000n });
    const b = await observeTransfer(t, { paymentOrderNo: o.no, amount: 6_000_000n });
    const html = await (await page(o.path)).text();
    expect(html).toContain('Paid. Thank you!');
    expect(html).toContain('Received 10 USDT on Polygon.');
    for (const p of [a, b]) expect(html).toContain(`Transaction ${p.txHash}`);
    const zh = await (await page(`${o.path}&lang=zh-CN`)).text();
    expect(zh).toContain('已在 Polygon 上收到 10 USDT。');
  });

  it('names a payment a reorganisation took back, and tells the payer to look in the wallet before sending again', async () => {
    const o = await newOrder({ total_amount: '10' });
    await postForm(o.no, o.token, 'option=4%3AUSDT');
    const seen = await observeTransfer(t, { paymentOrderNo: o.no, amount: 10_000_000n, status: 'SEEN', confirmations: 1 });
    await observeTransfer(t, { ...seen, status: 'REVERTED', confirmations: 0 });
    const html = await (await page(o.path)).text();
    const tx = `${seen.txHash.slice(0, 10)}…${seen.txHash.slice(-8)}`;
    expect(html).toContain(`Your payment of 10 USDT (transaction ${tx}) left the chain in a reorganisation and does not count for now.`);
    expect(html).toContain('send again only if your wallet shows it failed or dropped');
  });

  it('shows the remainder of an underpaid order and an expired order without its address', async () => {
    const o = await newOrder({ total_amount: '10' });
    await postForm(o.no, o.token, 'option=4%3AUSDT');
    await observeTransfer(t, { paymentOrderNo: o.no, amount: 4_000_000n });
    const under = await (await page(o.path)).text();
    expect(under).toContain('Received 4 USDT, less than the amount due.');
    expect(under).toContain('Send the remaining 6 USDT on Polygon to the address below.');
    expect(under).toContain('<code id="amount" aria-labelledby="amount-label">6</code>');
    expect(under).toMatch(/uint256=6000000"/);

    const e = await newOrder();
    await postForm(e.no, e.token, 'option=4%3AUSDT');
    const { address } = (await t.gateway.store.depositAddresses.get(e.no, '4', 'USDT'))!;
    t.clock.advance(1801);
    // Past the deadline, before the expiry has closed it: the payer is told not to send anything,
    // and neither order shows an address, a remainder or a choice any more.
    for (const [x, text] of [[e, 'You can still pay with another'], [o, 'Send the remaining']] as const) {
      const closing = await (await page(x.path)).text();
      expect(closing).toContain('The payment deadline has passed: do not send anything now.');
      expect(closing).not.toContain('<svg');
      expect(closing).not.toContain('name="option"');
      expect(closing).not.toContain(text);
      const view = (await (await fetch(`${t.baseUrl}/cashier/api/orders/${x.no}?t=${x.token}`)).json()) as Record<string, unknown>;
      expect(view).toMatchObject({ payer_state: 'CLOSING', remaining: null, remaining_base: null, final: false, selected: { address: '', uri: '' } });
    }
    await t.gateway.expireOrders();
    const expired = await (await page(e.path)).text();
    expect(expired).toContain('This order expired before it was paid.');
    expect(expired.toLowerCase()).not.toContain(address.toLowerCase().slice(2));
    expect(expired).not.toContain('<svg');
    expect(expired).not.toContain('name="option"');
    expect(expired).not.toContain('held for the merchant');
    // The underpaid one expires too: what was sent is not lost, and the page says so.
    await t.gateway.expireOrders();
    const short = await (await page(o.path)).text();
    expect(short).toContain('This order expired before it was paid.');
    expect(short).toContain('The 4 USDT you sent is held for the merchant; contact them about it.');
    // Said once, not again as "received so far".
    expect(short).not.toContain('Received so far');
  });

  it('shows a merchant-closed order as closed, with no address or choice', async () => {
    const o = await newOrder();
    await postForm(o.no, o.token, 'option=4%3AUSDT');
    const { address } = (await t.gateway.store.depositAddresses.get(o.no, '4', 'USDT'))!;
    const order = (await t.gateway.store.orders.get(o.no))!;
    const closed = await api(t.baseUrl, { path: '/v4/pay/orders/close', body: { merchant_no: t.merchant.merchantNo, request_no: order.requestNo }, merchant: t.merchant, clock: t.clock });
    expect(closed.json.code, closed.json.message).toBe(0);
    const html = await (await page(o.path)).text();
    expect(html).toContain('The merchant closed this order. Do not send anything.');
    expect(html).toContain('data-final="true"');
    expect(html.toLowerCase()).not.toContain(address.toLowerCase().slice(2));
    expect(html).not.toContain('name="option"');
    expect(html).not.toContain('id="countdown"');
  });

  it('shows an overpaid order as paid, notes the excess, and names no redirect when the order has none', async () => {
    const o = await newOrder({ total_amount: '5' });
    await postForm(o.no, o.token, 'option=4%3AUSDT');
    await observeTransfer(t, { paymentOrderNo: o.no, amount: 7_000_000n });
    const res = await fetch(`${t.baseUrl}/cashier/api/orders/${o.no}?t=${o.token}`);
    expect(await res.json()).toMatchObject({ pay_status: 'PAID', pay_exception: 'OVERPAID', payer_state: 'PAID', final: true, remaining: null, excess: '2', redirect_url: null, payments: [{ amount: '7', confirmations: 64, status: 'FINAL' }] });
    const html = await (await page(o.path)).text();
    expect(html).toContain('Paid. Thank you!');
    expect(html).toContain('You sent 2 USDT more than the amount due; the merchant has a record of the excess.');
    expect(html).toContain('You can close this page.');
    expect(html).not.toContain('http-equiv="refresh"');
    expect(html).not.toContain('id="address"');
  });

  it('follows a payment through its confirmations in the JSON API and the page', async () => {
    const o = await newOrder({ total_amount: '3', redirect_url: 'https://shop.example/done?o=1' });
    await postForm(o.no, o.token, 'option=4%3AUSDT');
    const fact = await observeTransfer(t, { paymentOrderNo: o.no, amount: 3_000_000n, status: 'SEEN', confirmations: 1 });
    const json = async () => (await (await fetch(`${t.baseUrl}/cashier/api/orders/${o.no}?t=${o.token}`)).json()) as Record<string, unknown>;
    expect(await json()).toMatchObject({ payer_state: 'CONFIRMING', final: false, remaining: null, redirect_url: null, selected: { confirmations_required: 3, network_name: 'Polygon' }, payments: [{ tx_hash: fact.txHash, confirmations: 1, status: 'SEEN' }] });
    const seen = await (await page(o.path)).text();
    expect(seen).toContain('Payment seen: 1/3 confirmations.');
    // The whole amount is on its way: nothing more to send, so no address to send it to.
    expect(seen).not.toContain('id="address"');
    await observeTransfer(t, { ...fact, confirmations: 3, status: 'FINAL' });
    expect(await json()).toMatchObject({ payer_state: 'PAID', final: true, redirect_url: 'https://shop.example/done?o=1' });
    const paid = await (await page(o.path)).text();
    // Without script only: the script redirects itself, and the payer can stop it (Stay on this page).
    expect(paid).toContain('<noscript><meta http-equiv="refresh" content="3;url=https://shop.example/done?o=1"></noscript>');
    expect(paid).toContain('<button type="button" id="stay" hidden>Stay on this page</button>');
    expect(paid).toContain('href="https://shop.example/done?o=1" data-redirect="https://shop.example/done?o=1"');
  });

  it('shows a Pro order’s price and the converted amount of each choice', async () => {
    const res = await api(t.baseUrl, {
      path: '/v4/pro/pay/cashier',
      body: { merchant_no: t.merchant.merchantNo, request_no: `pro_${Date.now()}`, merchant_order_time: t.clock.seconds(), pricing_currency: 'USD', pricing_amount: '1234.50', merchant_order_desc: 'Pro' },
      merchant: t.merchant,
      clock: t.clock,
    });
    expect(res.json.code, res.json.message).toBe(0);
    const url = new URL(String(res.json.data!.cashier_url));
    const html = await (await page(`${url.pathname}${url.search}`)).text();
    expect(html).toContain('<dd id="pricing">1,234.50 USD</dd>');
    const options = res.json.data!.payment_options as { network: string; currency: string; amount: string }[];
    const polygonUsdt = options.find((p) => p.network === '4' && p.currency === 'USDT')!;
    expect(html).toMatch(new RegExp(`USDT on Polygon</span><span class="opt-amount">${polygonUsdt.amount.replace(/\B(?=(\d{3})+(?!\d))/g, ',').replace('.', '\\.')} USDT`));
    // Only networks this gateway takes payments on are offered (3 and 4 here).
    expect([...html.matchAll(/name="option" value="(\d):/g)].map((m) => m[1])).toEqual(expect.arrayContaining(['3', '4']));
    expect(html).not.toMatch(/name="option" value="[25]:/);
  });

  it('limits the JSON API per order: a burst is refused with 429, other orders are unaffected, time refills it', async () => {
    const a = await newOrder();
    const b = await newOrder();
    const get = (o: { no: string; token: string }) => fetch(`${t.baseUrl}/cashier/api/orders/${o.no}?t=${o.token}`);
    const statuses: number[] = [];
    for (let i = 0; i < CASHIER_BURST + 5; i++) statuses.push((await get(a)).status);
    expect(statuses.slice(0, CASHIER_BURST).every((s) => s === 200)).toBe(true);
    expect(statuses.slice(CASHIER_BURST)).toEqual([429, 429, 429, 429, 429]);
    const refused = await get(a);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await refused.json()).toMatchObject({ error: 'RATE_LIMITED' });
    expect((await get(b)).status).toBe(200);
    t.clock.advance(5);
    expect((await get(a)).status).toBe(200);
  });

  it('keeps a guesser from spending an order’s budget: wrong tokens draw on their own, per client', async () => {
    t.clock.advance(60);
    const o = await newOrder();
    const wrong = () => fetch(`${t.baseUrl}/cashier/api/orders/${o.no}?t=${'w'.repeat(32)}`);
    const statuses: number[] = [];
    for (let i = 0; i < CASHIER_STRANGER_BURST + 5; i++) statuses.push((await wrong()).status);
    expect(statuses.slice(0, CASHIER_STRANGER_BURST).every((s) => s === 404)).toBe(true);
    expect(statuses.slice(CASHIER_STRANGER_BURST)).toEqual([429, 429, 429, 429, 429]);
    // The payer, with the token, is not held up by it: the page and the API answer.
    expect((await fetch(`${t.baseUrl}/cashier/api/orders/${o.no}?t=${o.token}`)).status).toBe(200);
    expect((await page(o.path)).status).toBe(200);
    t.clock.advance(60);
  });

  it('gives the plain form and the page the same budget as the JSON API', async () => {
    t.clock.advance(60);
    const o = await newOrder();
    const statuses: number[] = [];
    for (let i = 0; i < CASHIER_BURST + 3; i++) statuses.push((await postForm(o.no, o.token, `option=${i % 2 ? '4' : '3'}%3AUSDT`)).status);
    expect(statuses.slice(0, CASHIER_BURST).every((s) => s === 303)).toBe(true);
    expect(statuses.slice(CASHIER_BURST)).toEqual([429, 429, 429]);
    const refused = await page(o.path, { 'accept-language': 'zh-CN' });
    expect(refused.status).toBe(429);
    // Not a dead end: a page in the payer's language that loads the order's page again by itself.
    expect(refused.headers.get('content-type')).toMatch(/^text\/html/);
    expect(refused.headers.get('retry-after')).toBe('3');
    const html = await refused.text();
    expect(html).toContain('此页面请求过于频繁');
    expect(html).toContain(`<meta http-equiv="refresh" content="3;url=/cashier/${o.no}?t=${encodeURIComponent(o.token)}&amp;lang=zh-CN">`);
    t.clock.advance(60);
  });

  it('hands out no address for a closed order, none after the deadline, and answers odd order numbers 404', async () => {
    t.clock.advance(60);
    const o = await newOrder();
    const select = (body: unknown) => fetch(`${t.baseUrl}/cashier/api/orders/${o.no}/select?t=${o.token}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await select({ network: '4', currency: 'USDT' })).status).toBe(200);
    // Past the deadline, before the expiry worker ran: no other pair is given an address.
    t.clock.advance(31 * 60);
    expect(await (await select({ network: '3', currency: 'USDT' })).json()).toMatchObject({ error: 'NOT_SELECTABLE', message: 'the payment deadline has passed' });
    await t.gateway.expireOrders();
    const closed = (await (await fetch(`${t.baseUrl}/cashier/api/orders/${o.no}?t=${o.token}`)).json()) as { pay_status: string; selected: { address: string; uri: string; currency: string } };
    expect(closed.pay_status).toBe('CLOSED');
    expect(closed.selected).toMatchObject({ currency: 'USDT', address: '', uri: '' });
    for (const odd of ['%00', 'P%00x', 'a'.repeat(65), '..%2F..%2Fetc']) {
      const res = await fetch(`${t.baseUrl}/cashier/api/orders/${odd}?t=${o.token}`);
      expect([404, 429]).toContain(res.status);
      expect((await fetch(`${t.baseUrl}/cashier/${odd}?t=${o.token}`)).status).not.toBe(500);
    }
    t.clock.advance(60);
  });
});

describe.each([
  ['a trusted proxy (trust_proxy: 127.0.0.1)', ['127.0.0.1'], 404],
  ['a peer that is not the trusted proxy (trust_proxy: 10.9.9.9)', ['10.9.9.9'], 429],
])('the cashier behind %s', (_what, trustProxy, otherClient) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ config: { trustProxy } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it(`answers another forwarded client ${otherClient} once one has spent its stranger budget (X-Forwarded-For believed only from the trusted proxy)`, async () => {
    const unknown = `${t.baseUrl}/cashier/api/orders/P000000000000000000000001?t=${'w'.repeat(32)}`;
    const from = async (client: string) => (await fetch(unknown, { headers: { 'x-forwarded-for': client } })).status;
    const first: number[] = [];
    for (let i = 0; i < CASHIER_STRANGER_BURST + 3; i++) first.push(await from('203.0.113.7'));
    expect(first.slice(CASHIER_STRANGER_BURST)).toEqual([429, 429, 429]);
    expect(await from('198.51.100.9')).toBe(otherClient);
  });
});
