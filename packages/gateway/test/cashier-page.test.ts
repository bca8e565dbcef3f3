// The hosted cashier page in a real browser (Debian's Chromium through playwright-core) against a
// real gateway on anvil: a payer opens cashier_url at phone and desktop sizes, in English and
// Chinese, picks a network, reads the address and amount from the page, pays from a funded
// account, watches the status reach paid without a reload and lands on the merchant's page.
// Also: an order expiring while open, a wrong token, an underpaid order topped up, the page
// without JavaScript, and the size and origin budget. Each step saves a screenshot under
// test-output/cashier/.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseUnits, type Address } from 'viem';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import { deploymentOn, mine, mineAtClock } from './chain-setup.js';
import { DESKTOP, launchBrowser, PHONE, recordTraffic, screenshot, startMerchantSite, type MerchantSite } from './cashier-browser.js';
import { startTestChain, type TestChain } from './evm-chain.js';
import { api, orderBody, startTestGateway, type TestGateway } from './harness.js';

// Browser globals inside page.evaluate callbacks (the tests compile without the DOM library).
declare const document: {
  documentElement: { scrollWidth: number; setAttribute(name: string, value: string): void; getAttribute(name: string): string | null };
  getElementById(id: string): { textContent: string | null } | null;
  activeElement: unknown;
};
declare const window: { innerWidth: number };
declare const navigator: { clipboard: { readText(): Promise<string> } };

const CONFIRMATIONS = 3;
const WAIT = { timeout: 15_000 };

// A browser, a chain and a gateway share two cores with the rest of the suite: room to spare.
describe('cashier page in Chromium', { timeout: 60_000 }, () => {
  let chain: TestChain;
  let usdt: Address;
  let t: TestGateway;
  let browser: Browser;
  let shop: MerchantSite;

  beforeAll(async () => {
    [chain, browser, shop] = await Promise.all([startTestChain(), launchBrowser(), startMerchantSite()]);
    usdt = await chain.deployToken({ name: 'Tether USD (test)', symbol: 'USDT', decimals: 6 });
    const { deployment } = deploymentOn(chain, { '4': { rpcUrls: [chain.node.rpcUrl], confirmations: CONFIRMATIONS, contracts: { USDT: usdt } } });
    t = await startTestGateway({ config: { deployment } });
    // The first pass sets the cursor at the head: transfers from here on are seen.
    await t.gateway.scanChain('4');
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await chain?.stop();
    await shop?.close();
  });

  async function newOrder(overrides: Record<string, unknown> = {}): Promise<{ no: string; url: string; token: string }> {
    const body = orderBody(t.merchant, t.clock, { total_amount: '10.50', merchant_order_desc: 'Ceramic mug ×2', ...overrides });
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });
    expect(res.json.code, res.json.message).toBe(0);
    // The test gateway listens on a free port; cashier_url names the configured public URL.
    const cashier = new URL(String(res.json.data!.cashier_url));
    return { no: String(res.json.data!.payment_order_no), url: `${t.baseUrl}${cashier.pathname}${cashier.search}`, token: cashier.searchParams.get('t')! };
  }

  async function openPage(options: BrowserContextOptions) {
    const context = await browser.newContext(options);
    const page = await context.newPage();
    return { context, page, traffic: recordTraffic(page) };
  }

  const text = async (page: Page, selector: string) => ((await page.locator(selector).textContent()) ?? '').trim();
  const statusIs = (page: Page, expected: string) =>
    page.waitForFunction((s) => document.getElementById('status-text')?.textContent === s, expected, WAIT);
  const scan = () => t.gateway.scanChain('4');
  /** Marks the document, to prove later that no reload or navigation replaced it. */
  const mark = (page: Page) => page.evaluate(() => document.documentElement.setAttribute('data-test-mark', 'same document'));
  const marked = (page: Page) => page.evaluate(() => document.documentElement.getAttribute('data-test-mark'));
  const fitsWidth = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);

  it('a payer on a phone picks a network, pays what the page shows and lands on the merchant’s page without reloading', async () => {
    const order = await newOrder({ redirect_url: `${shop.url}/thanks?order=42` });
    const { context, page, traffic } = await openPage({ ...PHONE, locale: 'en-US' });
    await page.goto(order.url);
    expect(await text(page, '#merchant-name')).toBe('Test Merchant');
    expect(await text(page, '#order-h')).toBe('Ceramic mug ×2');
    expect(await text(page, '#pricing')).toBe('10.50 USDT');
    expect(await text(page, '#countdown')).toMatch(/^(30:00|29:5\d)$/);
    expect(await fitsWidth(page)).toBe(true);
    await screenshot(page, 'phone-en-1-options');

    await page.getByRole('button', { name: /USDT on Polygon/ }).click();
    await page.locator('#address').waitFor(WAIT);
    const address = (await text(page, '#address')) as Address;
    const amount = await text(page, '#amount');
    expect(address).toMatch(/^0x[0-9a-fA-F]{40}$/);
    expect(amount).toBe('10.5');
    expect(await text(page, '#warning')).toBe(
      `Send only USDT on Polygon (chain ID ${chain.node.chainId}), token contract ${await checksum(usdt)}. Anything sent on another network or in another token is lost.`,
    );
    expect(await page.locator('#pay svg[role="img"]').isVisible()).toBe(true);
    expect(await page.locator('#wallet-link').getAttribute('href')).toBe(`ethereum:${await checksum(usdt)}@${chain.node.chainId}/transfer?address=${address}&uint256=10500000`);
    expect(await fitsWidth(page)).toBe(true);
    await mark(page);
    await screenshot(page, 'phone-en-2-address');

    await chain.pay(usdt, address, parseUnits(amount, 6));
    await scan();
    await statusIs(page, `Payment seen: 1/${CONFIRMATIONS} confirmations.`);
    await screenshot(page, 'phone-en-3-seen');
    await mine(chain, CONFIRMATIONS - 1);
    await scan();
    await statusIs(page, 'Paid. Thank you!');
    expect(await page.locator('#address').count()).toBe(0);
    expect(await marked(page)).toBe('same document');
    await screenshot(page, 'phone-en-4-paid');

    await page.waitForURL(`${shop.url}/thanks?order=42`, WAIT);
    expect(shop.visits).toContain('/thanks?order=42');
    // The redirect carries no secret: exactly the merchant's URL, and no Referer naming the cashier URL.
    expect(page.url()).toBe(`${shop.url}/thanks?order=42`);
    expect(shop.referers[shop.visits.indexOf('/thanks?order=42')]).toBe('');
    // One load of the cashier page, then the merchant's: the status changed in place.
    expect(traffic.navigations.filter((u) => u.startsWith(t.baseUrl))).toEqual([order.url]);
    expect([...traffic.failed, ...traffic.errors]).toEqual([]);
    await screenshot(page, 'phone-en-5-merchant');
    await context.close();
  });

  it('the same in Chinese on a desktop, choosing with the keyboard and copying the address and amount', async () => {
    const order = await newOrder({ redirect_url: `${shop.url}/thanks?order=43` });
    const { context, page, traffic } = await openPage({ ...DESKTOP, locale: 'zh-CN' });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: t.baseUrl });
    await page.goto(order.url);
    expect(await page.getAttribute('html', 'lang')).toBe('zh-CN');
    expect(await text(page, '#options-h')).toBe('选择付款方式');
    expect(await text(page, '#status-text')).toBe('请选择币种和网络以查看收款地址。');

    // Keyboard only: Tab to the Polygon USDT option and press Enter.
    const target = page.getByRole('button', { name: /Polygon 上的 USDT/ });
    for (let i = 0; i < 30 && !(await target.evaluate((el) => el === document.activeElement)); i++) await page.keyboard.press('Tab');
    expect(await target.evaluate((el) => el === document.activeElement)).toBe(true);
    await page.keyboard.press('Enter');
    await page.locator('#address').waitFor(WAIT);
    expect(await text(page, '#pay-h')).toBe('请准确转账 10.5 USDT');
    expect(await text(page, '#warning')).toContain(`只能在 Polygon（链 ID ${chain.node.chainId}）上发送 USDT`);

    await page.getByRole('button', { name: '复制收款地址' }).click();
    const address = (await page.evaluate(() => navigator.clipboard.readText())) as Address;
    expect(address).toBe(await text(page, '#address'));
    await page.getByRole('button', { name: '复制准确金额' }).click();
    const amount = await page.evaluate(() => navigator.clipboard.readText());
    expect(amount).toBe('10.5');
    expect(await text(page, 'button[data-copy="amount"]')).toBe('已复制');
    await mark(page);
    await screenshot(page, 'desktop-zh-1-address');

    await chain.pay(usdt, address, parseUnits(amount, 6));
    await scan();
    await statusIs(page, `已检测到付款：1/${CONFIRMATIONS} 个确认。`);
    await screenshot(page, 'desktop-zh-2-seen');
    await mine(chain, CONFIRMATIONS - 1);
    await scan();
    await statusIs(page, '付款成功，谢谢！');
    expect(await text(page, '#success-h')).toBe('付款已收到');
    expect(await marked(page)).toBe('same document');
    await screenshot(page, 'desktop-zh-3-paid');
    await page.waitForURL(`${shop.url}/thanks?order=43`, WAIT);
    expect([...traffic.failed, ...traffic.errors]).toEqual([]);
    await context.close();
  });

  it('an order that expires while its page is open says so and stops showing the address', async () => {
    const order = await newOrder();
    const { context, page, traffic } = await openPage({ ...PHONE, locale: 'en-US' });
    await page.goto(order.url);
    await page.getByRole('button', { name: /USDT on Polygon/ }).click();
    await page.locator('#address').waitFor(WAIT);
    const address = await text(page, '#address');
    await mark(page);
    t.clock.advance(1801);
    // Past the deadline the open page stops inviting a payment, before the order is closed.
    await statusIs(page, 'The payment deadline has passed: do not send anything now. A payment already sent is being checked on the chain before the order closes.');
    expect(await page.locator('#pay, #options').count()).toBe(0);
    await mineAtClock(chain, t.clock);
    await t.gateway.scanChain('4');
    expect(await t.gateway.expireOrders()).toBe(1);
    await statusIs(page, 'This order expired before it was paid. Do not send anything; ask the merchant for a new order.');
    expect(await marked(page)).toBe('same document');
    for (const p of [page]) {
      const html = (await p.content()).toLowerCase();
      expect(html).not.toContain(address.toLowerCase().slice(2));
      expect(await p.locator('#pay, #options, svg, #countdown').count()).toBe(0);
    }
    await screenshot(page, 'phone-en-expired');
    // Opened afresh, the same.
    await page.reload();
    expect(await text(page, '#status-text')).toContain('This order expired');
    expect((await page.content()).toLowerCase()).not.toContain(address.toLowerCase().slice(2));
    expect([...traffic.failed, ...traffic.errors]).toEqual([]);
    await context.close();
  });

  it('past the deadline, the open page keeps its usual pace (one ask at the deadline, then every 2 s), not a request a second', async () => {
    const order = await newOrder();
    t.clock.advance(1801);
    const { context, page } = await openPage({ ...DESKTOP, locale: 'en-US' });
    const asked: number[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/cashier/api/')) asked.push(Date.now());
    });
    await page.goto(order.url);
    await statusIs(page, 'The payment deadline has passed: do not send anything now. A payment already sent is being checked on the chain before the order closes.');
    const from = Date.now();
    await page.waitForTimeout(6_500);
    // The countdown at 0 asked once at once; the 2 s polling goes on (and so does its 5 s wait
    // after a 429, which a request every second would cut short): 3-4 requests, not 6-7.
    const during = asked.filter((at) => at >= from).length;
    expect(during).toBeGreaterThanOrEqual(2);
    expect(during).toBeLessThanOrEqual(4);
    await context.close();
  });

  it('a wrong token gets a 404 page that reveals nothing', async () => {
    const order = await newOrder();
    const { context, page } = await openPage({ ...PHONE, locale: 'en-US' });
    const wrong = order.url.replace(`t=${order.token}`, `t=${order.token.slice(0, -1)}${order.token.endsWith('A') ? 'B' : 'A'}`);
    const res = await page.goto(wrong);
    expect(res?.status()).toBe(404);
    expect(await text(page, 'h1')).toBe('Not found');
    const html = await page.content();
    expect(html).not.toMatch(/Test Merchant|Ceramic|USDT|10\.5/);
    await screenshot(page, 'phone-wrong-token');
    const unknown = await page.goto(`${t.baseUrl}/cashier/P00000000000000000?t=${order.token}`);
    expect(unknown?.status()).toBe(404);
    expect(await page.content()).toBe(html);
    await context.close();
  });

  it('an underpaid order shows the remainder to send to the same address, on its network, then paid once topped up', async () => {
    const order = await newOrder({ total_amount: '10' });
    const { context, page, traffic } = await openPage({ ...PHONE, locale: 'en-US' });
    await page.goto(order.url);
    await page.getByRole('button', { name: /USDT on Polygon/ }).click();
    await page.locator('#address').waitFor(WAIT);
    const address = (await text(page, '#address')) as Address;
    expect(await text(page, '#amount')).toBe('10');
    await mark(page);
    // A keyboard user on the amount's copy button keeps the focus there when the page updates.
    await page.focus('#copy-amount');

    await chain.pay(usdt, address, parseUnits('4', 6));
    await mine(chain, CONFIRMATIONS - 1);
    await scan();
    await statusIs(page, 'Received 4 USDT, less than the amount due.');
    expect(await page.evaluate(() => (document.activeElement as { id?: string } | null)?.id)).toBe('copy-amount');
    expect(await text(page, '#remaining')).toBe('Send the remaining 6 USDT on Polygon to the address below.');
    expect(await text(page, '#address')).toBe(address);
    const rest = await text(page, '#amount');
    expect(rest).toBe('6');
    expect(await page.locator('#wallet-link').getAttribute('href')).toMatch(/uint256=6000000$/);
    await screenshot(page, 'phone-en-underpaid');

    await chain.pay(usdt, address, parseUnits(rest, 6));
    await mine(chain, CONFIRMATIONS - 1);
    await scan();
    await statusIs(page, 'Paid. Thank you!');
    // No redirect_url: our own success page, and the payer stays on it.
    expect(await text(page, '#success')).toContain('You can close this page.');
    expect(await marked(page)).toBe('same document');
    await screenshot(page, 'phone-en-topped-up-paid');
    expect([...traffic.failed, ...traffic.errors]).toEqual([]);
    await context.close();
  });

  it('works without JavaScript: the plain form chooses, the HTML carries address, amount and QR code, and a paid order redirects', async () => {
    const order = await newOrder({ redirect_url: `${shop.url}/thanks?order=44` });
    const { context, page } = await openPage({ ...PHONE, locale: 'en-US', javaScriptEnabled: false });
    await page.goto(order.url);
    await Promise.all([page.waitForURL(/lang=en$/, WAIT), page.getByRole('button', { name: /USDT on Polygon/ }).click()]);
    const address = (await text(page, '#address')) as Address;
    expect(await text(page, '#amount')).toBe('10.5');
    expect(await page.locator('#pay svg[role="img"]').isVisible()).toBe(true);
    await screenshot(page, 'phone-nojs-address');
    await chain.pay(usdt, address, parseUnits('10.5', 6));
    await mine(chain, CONFIRMATIONS - 1);
    await scan();
    await page.getByRole('link', { name: 'Refresh status' }).click();
    expect(await text(page, '#status-text')).toBe('Paid. Thank you!');
    await screenshot(page, 'phone-nojs-paid');
    await page.waitForURL(`${shop.url}/thanks?order=44`, WAIT);
    await context.close();
  });

  it('keeps within budget: first HTML under 50 KB, the whole page under 150 KB, every request to the gateway’s origin, no CSP violation', async () => {
    const order = await newOrder({ merchant_order_desc: '长'.repeat(256) });
    const first = await openPage({ ...PHONE, locale: 'en-US' });
    await first.page.goto(order.url);
    await first.page.getByRole('button', { name: /USDT on Polygon/ }).click();
    await first.page.locator('#address').waitFor(WAIT);
    await first.context.close();

    // A fresh browser profile opening the page with its heaviest content (the QR code), then polling a while.
    const { context, page, traffic } = await openPage({ ...PHONE, locale: 'en-US' });
    const res = await page.goto(order.url);
    const html = await res!.body();
    await page.waitForLoadState('networkidle');
    await page.waitForFunction(() => document.getElementById('countdown') !== null, undefined, WAIT);
    await new Promise((r) => setTimeout(r, 2500));
    await screenshot(page, 'phone-budget');
    const origin = new URL(t.baseUrl).origin;
    expect(html.length).toBeLessThan(50 * 1024);
    expect(traffic.urls.length).toBeGreaterThanOrEqual(3);
    expect(traffic.urls.filter((u) => new URL(u).origin !== origin)).toEqual([]);
    const total = traffic.bodies.reduce((s, b) => s + b.bytes, 0);
    expect(total).toBeLessThan(150 * 1024);
    writeFileSync(fileURLToPath(new URL('../../../test-output/cashier/budget.json', import.meta.url)), JSON.stringify({ html: html.length, total, responses: traffic.bodies }, null, 2));
    expect(traffic.bodies.map((b) => b.type)).toEqual(expect.arrayContaining(['document', 'script', 'stylesheet', 'fetch']));
    expect([...traffic.failed, ...traffic.errors]).toEqual([]);
    await context.close();
  });

  it('choosing a pair on a slow connection holds the choices and dims the shown address until the answer', async () => {
    const order = await newOrder();
    const { context, page } = await openPage({ ...PHONE, locale: 'en-US' });
    await page.goto(order.url);
    await page.getByRole('button', { name: /USDT on Polygon/ }).click();
    await page.locator('#address').waitFor(WAIT);
    // The select answer takes a second; the payer chooses again meanwhile.
    await page.route('**/cashier/api/orders/*/select?*', async (route) => {
      await new Promise((r) => setTimeout(r, 1_000));
      await route.continue();
    });
    await page.getByRole('button', { name: /USDT on Polygon/ }).click();
    expect(await page.locator('#cashier').getAttribute('class')).toMatch(/\bbusy\b/);
    expect(await page.locator('button.option').evaluateAll((bs) => bs.every((b) => (b as { disabled: boolean }).disabled))).toBe(true);
    expect(await page.locator('#pay').evaluate((el) => (globalThis as unknown as { getComputedStyle(e: unknown): { opacity: string } }).getComputedStyle(el).opacity)).toBe('0.3');
    await page.waitForFunction(() => !(globalThis as unknown as { document: { getElementById(id: string): { classList: { contains(c: string): boolean } } } }).document.getElementById('cashier').classList.contains('busy'), undefined, WAIT);
    expect(await page.locator('button.option').evaluateAll((bs) => bs.some((b) => (b as { disabled: boolean }).disabled))).toBe(false);
    expect(await text(page, '#amount')).toBe('10.5');
    await context.close();
  });
  it('a refresh refused with 429 leaves the page as it is, and the next one updates it', async () => {
    const order = await newOrder();
    const { context, page } = await openPage({ ...PHONE, locale: 'en-US' });
    await page.goto(order.url);
    await page.getByRole('button', { name: /USDT on Polygon/ }).click();
    await page.locator('#address').waitFor(WAIT);
    const address = (await text(page, '#address')) as Address;
    // The script's fetch of the page is refused (too many requests) the first two times.
    let refused = 0;
    await page.route(`**/cashier/${order.no}?*`, async (route) => {
      if (route.request().resourceType() === 'fetch' && refused < 2) {
        refused += 1;
        // Even a refusal that looks like the page (an element with the page's id) is not taken for it.
        return route.fulfill({ status: 429, contentType: 'text/html', body: '<!doctype html><main id="cashier"><h1>One moment</h1></main>' });
      }
      return route.continue();
    });
    await chain.pay(usdt, address, parseUnits('10.5', 6));
    await scan();
    // Right after the first refusal (the next poll is 2 s away): the page is still the order's.
    await expect.poll(() => refused, WAIT).toBeGreaterThan(0);
    await page.waitForTimeout(300);
    expect(await page.locator('h1', { hasText: 'One moment' }).count()).toBe(0);
    expect(await text(page, '#address')).toBe(address);
    await statusIs(page, `Payment seen: 1/${CONFIRMATIONS} confirmations.`);
    expect(refused).toBe(2);
    expect(await page.locator('#status').count()).toBe(1);
    expect(await page.locator('h1', { hasText: 'One moment' }).count()).toBe(0);
    await context.close();
  });
});

async function checksum(address: string): Promise<string> {
  const { getAddress } = await import('viem');
  return getAddress(address);
}
