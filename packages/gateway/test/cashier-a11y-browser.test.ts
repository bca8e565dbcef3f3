// The cashier page as a screen reader user meets it, in Chromium (an accessibility review, WCAG
// 2.2 AA): what its live regions say while the order changes, and that copying says so.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser } from './cashier-browser.js';
import { api, deploymentWithFactory, observeTransfer, orderBody, startTestGateway, type TestGateway } from './harness.js';

const WAIT = { timeout: 15_000 };

/**
 * Records in the page what its live regions (role status or alert, aria-live) would have a screen
 * reader say: each new text of a region that was in the document before it changed. A region
 * taken out of the document and put back is a new one to the accessibility tree, whose text is
 * not announced: counted in `detached`. (In-page code as a string: the tests compile without the DOM library.)
 */
const LISTEN = `(() => {
  const heard = (window.__heard = []);
  window.__detached = 0;
  const norm = (e) => e.textContent.replace(/\\s+/g, ' ').trim();
  const regions = () => [...document.querySelectorAll('[role=status],[role=alert],[aria-live]')].filter((e) => e.getAttribute('aria-live') !== 'off');
  const known = new Map(regions().map((e) => [e, norm(e)]));
  new MutationObserver((records) => {
    for (const r of records) for (const n of r.removedNodes) for (const e of known.keys()) if (n === e || (n.contains && n.contains(e))) window.__detached += 1;
    for (const e of regions()) {
      const text = norm(e);
      if (!known.has(e)) known.set(e, text);
      else if (known.get(e) !== text) {
        known.set(e, text);
        if (text) heard.push(text);
      }
    }
  }).observe(document.body, { subtree: true, childList: true, characterData: true });
})()`;

describe('cashier page for screen reader users, in Chromium', { timeout: 60_000 }, () => {
  let t: TestGateway;
  let browser: Browser;
  beforeAll(async () => {
    [t, browser] = await Promise.all([startTestGateway({ config: { deployment: deploymentWithFactory(['4'], { confirmations: 3 }) } }), launchBrowser()]);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  async function chosenOrder() {
    const body = orderBody(t.merchant, t.clock, { total_amount: '10.50' });
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });
    expect(res.json.code, res.json.message).toBe(0);
    const url = new URL(String(res.json.data!.cashier_url));
    const no = String(res.json.data!.payment_order_no);
    const token = url.searchParams.get('t')!;
    const chosen = await fetch(`${t.baseUrl}/cashier/api/orders/${no}/select?t=${token}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ network: '4', currency: 'USDT' }) });
    const address = String(((await chosen.json()) as { address: string }).address).toLowerCase();
    return { no, address, url: `${t.baseUrl}${url.pathname}${url.search}` };
  }
  const heard = (page: Page) => page.evaluate('window.__heard') as Promise<string[]>;
  const statusText = (page: Page) => page.evaluate('document.getElementById("status-text").textContent') as Promise<string>;

  // The status section was the live region, and the script swapped a new page in by replacing
  // all of <main> (the region too) and putting the old node back: out of the document and in
  // again, so its new text was never announced. And had it been, every confirmation (each new
  // block, up to every poll) was announced again, the whole section with it.
  it('announces each change of the order’s state once (payment seen, paid), not each confirmation nor the countdown', async () => {
    const order = await chosenOrder();
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await context.newPage();
    try {
      await page.goto(order.url);
      await page.evaluate(LISTEN);
      // The countdown ticks every second: nothing is said meanwhile.
      await page.waitForTimeout(2500);
      expect(await heard(page)).toEqual([]);

      const seen = await observeTransfer(t, { paymentOrderNo: order.no, amount: 10_500_000n, address: order.address, status: 'SEEN', confirmations: 1 });
      await expect.poll(() => statusText(page), WAIT).toBe('Payment seen: 1/3 confirmations.');
      await observeTransfer(t, { ...seen, confirmations: 2 });
      await expect.poll(() => statusText(page), WAIT).toBe('Payment seen: 2/3 confirmations.');
      await observeTransfer(t, { ...seen, confirmations: 3, status: 'FINAL' });
      await expect.poll(() => statusText(page), WAIT).toBe('Paid. Thank you!');

      const said = await heard(page);
      expect(said.filter((s) => s.includes('Payment seen: 1/3 confirmations.'))).toHaveLength(1);
      expect(said.filter((s) => s.includes('Paid. Thank you!'))).toHaveLength(1);
      expect(said.filter((s) => s.includes('2/3'))).toEqual([]);
      expect(await page.evaluate('window.__detached')).toBe(0);
    } finally {
      await context.close();
    }
  });

  // The focus stayed on a control only if the fresh page had it too: on the copy button when the
  // payment arrived (the address is no longer shown), it fell to the document's body, and a
  // keyboard or screen reader user started again from the top (WCAG 2.4.3).
  it('keeps the keyboard focus in the order’s status when the control it was on is no longer shown', async () => {
    const order = await chosenOrder();
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await context.newPage();
    try {
      await page.goto(order.url);
      await page.getByRole('button', { name: 'Copy the deposit address' }).focus();
      await observeTransfer(t, { paymentOrderNo: order.no, amount: 10_500_000n, address: order.address });
      await expect.poll(() => statusText(page), WAIT).toBe('Paid. Thank you!');
      expect(await page.evaluate('document.activeElement.id')).toBe('status-h');
    } finally {
      await context.close();
    }
  });

  // The paid page went to redirect_url after 3 s, by a meta refresh no script could call off: a
  // time limit the payer could not turn off (WCAG 2.2.1), e.g. to read or keep the receipt.
  it('lets the payer stay on the paid page instead of being sent back to the shop', async () => {
    const body = orderBody(t.merchant, t.clock, { total_amount: '10.50', redirect_url: 'https://shop.example/thanks' });
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });
    const url = new URL(String(res.json.data!.cashier_url));
    const no = String(res.json.data!.payment_order_no);
    const chosen = await fetch(`${t.baseUrl}/cashier/api/orders/${no}/select?t=${url.searchParams.get('t')}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ network: '4', currency: 'USDT' }) });
    const address = String(((await chosen.json()) as { address: string }).address).toLowerCase();
    await observeTransfer(t, { paymentOrderNo: no, amount: 10_500_000n, address });
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await context.newPage();
    const left: string[] = [];
    await page.route('https://shop.example/**', (route) => {
      left.push(route.request().url());
      return route.fulfill({ status: 200, contentType: 'text/html', body: '<title>Shop</title>' });
    });
    try {
      await page.goto(`${t.baseUrl}${url.pathname}${url.search}`);
      await page.evaluate(LISTEN);
      await page.getByRole('button', { name: 'Stay on this page' }).click();
      await expect.poll(() => heard(page), WAIT).toEqual(['You stay on this page. Return to \u2068Test Merchant\u2069 when you are ready.']);
      expect(await page.evaluate('document.activeElement.id')).toBe('redirect');
      await page.waitForTimeout(4500);
      expect(left).toEqual([]);
      expect(page.url()).toContain('/cashier/');
      expect(await page.getByRole('button', { name: 'Stay on this page' }).count()).toBe(0);
      // The way back is still there.
      await page.getByRole('link', { name: 'Return to the merchant' }).click();
      await expect.poll(() => left, WAIT).toEqual(['https://shop.example/thanks']);
    } finally {
      await context.close();
    }
  });

  // The copy buttons changed their own text and name to "Copied": not said by most screen
  // readers (a name change is not a status message, WCAG 4.1.3).
  it('says “Copied” when the address or the amount is copied', async () => {
    const order = await chosenOrder();
    const context = await browser.newContext({ locale: 'en-US' });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: t.baseUrl });
    const page = await context.newPage();
    try {
      await page.goto(order.url);
      await page.evaluate(LISTEN);
      await page.getByRole('button', { name: 'Copy the deposit address' }).click();
      await expect.poll(() => heard(page), WAIT).toEqual(['Copied']);
      // Once the button reads "Copy" again, a second copy is said again.
      await expect.poll(() => page.locator('#copy-address').textContent(), WAIT).toBe('Copy');
      await page.getByRole('button', { name: 'Copy the exact amount' }).click();
      await expect.poll(async () => (await heard(page)).filter((s) => s === 'Copied').length, WAIT).toBe(2);
    } finally {
      await context.close();
    }
  });
});
