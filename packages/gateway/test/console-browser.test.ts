// The operator console in headless Chromium: an operator signs in with the form, finds an
// order whose notification keeps failing, reads its attempts and resends it; on a phone-sized
// screen too. The page loads nothing but itself and its stylesheet, and breaks no policy.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DESKTOP, launchBrowser, PHONE, recordTraffic, screenshot } from './cashier-browser.js';
import { CONSOLE_TOKEN } from './console-client.js';
import { api, observeTransfer, orderBody, startTestGateway, type TestGateway } from './harness.js';
import { freePort } from './processes.js';
import { waitUntil } from './wait.js';

// Browser globals inside page.evaluate callbacks (the tests compile without the DOM library).
declare const document: { documentElement: { scrollWidth: number } };
declare const window: { innerWidth: number };

/**
 * The words of the page's table cells that are broken over two lines, but for long ones (hashes,
 * addresses, order numbers): a time cut as "00:40:4" / "7 UTC" reads as another time.
 */
const BROKEN_WORDS = `(() => {
  const broken = [];
  for (const cell of document.querySelectorAll('td')) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.data.matchAll(/\\S+/g)) {
        if (m[0].length >= 20) continue;
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        if (range.getClientRects().length > 1) broken.push(m[0]);
      }
    }
  }
  return broken;
})()`;

describe('the operator console in a browser', () => {
  let t: TestGateway;
  let browser: Browser;
  let paymentOrderNo: string;
  beforeAll(async () => {
    [t, browser] = await Promise.all([startTestGateway({ config: { consoleToken: CONSOLE_TOKEN, notifyAllowPrivate: true } }), launchBrowser()]);
    const body = orderBody(t.merchant, t.clock, { notify_url: `http://127.0.0.1:${await freePort()}/notify`, merchant_order_desc: 'Tea for <b>two</b>' });
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });
    paymentOrderNo = String(res.json.data!.payment_order_no);
    await observeTransfer(t, { paymentOrderNo, amount: 10_500_000n });
    await t.gateway.notifications.deliverDue({ scan: true });
    const [n] = await t.gateway.store.notifications.listByOrder(paymentOrderNo);
    await waitUntil('the first attempt', async () => (await t.gateway.store.notifications.listAttempts(n!.notifyId)).some((a) => a.outcome === 'FAILED'));
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  for (const [name, device] of [
    ['desktop', DESKTOP],
    ['phone', PHONE],
  ] as const) {
    it(`signs in, opens the order, reads the failed attempt and resends it (${name})`, async () => {
      const context = await browser.newContext(device);
      const page = await context.newPage();
      const traffic = recordTraffic(page);
      try {
        await page.goto(`${t.baseUrl}/console`);
        expect(page.url()).toBe(`${t.baseUrl}/console/login`);
        await page.getByLabel('Console token').fill('not-the-token-0123456789');
        await page.getByRole('button', { name: 'Sign in' }).click();
        await expect.poll(() => page.getByRole('alert').textContent()).toContain('That is not the console token');
        await page.getByLabel('Console token').fill(CONSOLE_TOKEN);
        await page.getByRole('button', { name: 'Sign in' }).click();
        await page.getByRole('heading', { name: 'Overview' }).waitFor();
        expect(page.url()).toBe(`${t.baseUrl}/console`);
        expect(await page.evaluate(BROKEN_WORDS)).toEqual([]);

        // As an operator may paste it: in lower case, with spaces around.
        await page.getByLabel('Order').fill(` ${paymentOrderNo.toLowerCase()}  `);
        await page.getByRole('button', { name: 'Open' }).click();
        await page.getByRole('heading', { name: `Order ${paymentOrderNo}` }).waitFor();
        // The merchant's text as text, not markup.
        expect(await page.locator('text=Tea for <b>two</b>').count()).toBe(1);
        const attempts = page.getByRole('table', { name: 'Attempts' });
        await expect.poll(() => attempts.textContent()).toContain('CONNECTION');
        await screenshot(page, `console-order-${name}`);
        expect(await page.evaluate(BROKEN_WORDS)).toEqual([]);
        // Nothing wider than the screen but the tables' own scrolling boxes.
        expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);

        await page.getByRole('button', { name: 'Resend' }).click();
        await expect.poll(() => page.getByRole('status').textContent()).toContain('resent: a new series of attempts is due now');
        const [n] = await t.gateway.store.notifications.listByOrder(paymentOrderNo);
        expect(n!.status).toBe('PENDING');

        await page.getByRole('link', { name: 'Merchants' }).click();
        await page.getByRole('heading', { name: 'Merchants' }).waitFor();
        expect(await page.textContent('main')).toContain(t.merchant.serial);
        await screenshot(page, `console-merchants-${name}`);
        expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);

        await page.getByRole('button', { name: 'Sign out' }).click();
        await page.getByRole('heading', { name: 'Sign in' }).waitFor();
        await page.goto(`${t.baseUrl}/console/merchants`);
        expect(page.url()).toBe(`${t.baseUrl}/console/login`);

        // The refused sign-in's 401 is the only error Chromium reports (no policy violation).
        expect(traffic.errors.filter((e) => !e.includes('401'))).toEqual([]);
        // Only the console's own pages and stylesheet (and the refused sign-in, answered 401).
        expect(traffic.urls.every((u) => u.startsWith(`${t.baseUrl}/console`))).toBe(true);
        expect(traffic.failed).toEqual([`401 ${t.baseUrl}/console/login`]);
      } finally {
        await context.close();
      }
    });
  }
});
