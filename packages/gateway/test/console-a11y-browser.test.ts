// The operator console for keyboard and screen reader users, in Chromium (an accessibility
// review, WCAG 2.2 AA): error messages tied to their fields, form controls that can be seen,
// headings without gaps.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser } from './cashier-browser.js';
import { CONSOLE_TOKEN } from './console-client.js';
import { startTestGateway, type TestGateway } from './harness.js';

// In-page code as strings: the tests compile without the DOM library.
/** The text of the elements `id`'s aria-describedby names, and its aria-invalid. */
const described = (page: Page, id: string) =>
  page.evaluate(`(() => {
    const e = document.getElementById(${JSON.stringify(id)});
    const ids = (e.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
    return { invalid: e.getAttribute('aria-invalid'), description: ids.map((i) => document.getElementById(i)?.textContent ?? '').join(' ') };
  })()`) as Promise<{ invalid: string | null; description: string }>;

/** WCAG contrast of each form control's border against the background behind it (the nearest ancestor's with one). */
const CONTROL_BORDERS = `(() => {
  const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = (c) => { const [r, g, b] = rgb(c).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const behind = (e) => { for (let p = e.parentElement; p; p = p.parentElement) { const c = getComputedStyle(p).backgroundColor; if (rgb(c)[3] !== 0) return c; } return 'rgb(255, 255, 255)'; };
  return [...document.querySelectorAll('input:not([type=hidden]), select')].map((e) => {
    const [a, b] = [lum(getComputedStyle(e).borderTopColor), lum(behind(e))].sort((x, y) => y - x);
    return { id: e.id, ratio: Math.round(((a + 0.05) / (b + 0.05)) * 100) / 100 };
  });
})()`;

/** The levels of the page's headings, in order. */
const HEADING_LEVELS = `[...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].map((h) => Number(h.tagName[1]))`;

describe('the operator console for keyboard and screen reader users', { timeout: 60_000 }, () => {
  let t: TestGateway;
  let browser: Browser;
  beforeAll(async () => {
    [t, browser] = await Promise.all([startTestGateway({ config: { consoleToken: CONSOLE_TOKEN } }), launchBrowser()]);
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  async function signedIn(): Promise<Page> {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${t.baseUrl}/console/login`);
    await page.getByLabel('Console token').fill(CONSOLE_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    return page;
  }

  // The refusal was an alert at the top of the form, not tied to the field it is about (WCAG
  // 3.3.1, 1.3.1): back on the field, a screen reader said nothing of it.
  it('ties a refused sign-in and an order not found to their fields (aria-invalid, aria-describedby)', async () => {
    const page = await (await browser.newContext()).newPage();
    try {
      await page.goto(`${t.baseUrl}/console/login`);
      expect(await described(page, 'token')).toEqual({ invalid: null, description: '' });
      await page.getByLabel('Console token').fill('not-the-token-0123456789');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('alert').waitFor();
      expect(await described(page, 'token')).toEqual({ invalid: 'true', description: 'That is not the console token.' });
    } finally {
      await page.context().close();
    }
    const console = await signedIn();
    try {
      expect(await described(console, 'q')).toEqual({ invalid: null, description: '' });
      await console.getByLabel('Order').fill('P-NOT-AN-ORDER');
      await console.getByRole('button', { name: 'Open' }).click();
      await console.getByRole('alert').waitFor();
      expect(await described(console, 'q')).toEqual({ invalid: 'true', description: 'No order P-NOT-AN-ORDER' });
    } finally {
      await console.context().close();
    }
  });

  // The text fields' and the status menu's borders were #9aa0a6 on white, 2.6:1: the only sign of
  // where to type (WCAG 1.4.11 asks 3:1).
  it('draws form controls with a border of at least 3:1 against what is behind them', async () => {
    const page = await signedIn();
    try {
      const loginPage = await (await page.context().browser()!.newContext()).newPage();
      await loginPage.goto(`${t.baseUrl}/console/login`);
      const borders = [...((await loginPage.evaluate(CONTROL_BORDERS)) as { id: string; ratio: number }[]), ...((await page.evaluate(CONTROL_BORDERS)) as { id: string; ratio: number }[])];
      await loginPage.context().close();
      expect(borders.map((b) => b.id)).toEqual(['token', 'q', 'merchant', 'status']);
      for (const b of borders) expect(b.ratio, b.id).toBeGreaterThanOrEqual(3);
    } finally {
      await page.context().close();
    }
  });

  // The merchants page went from a merchant (h2) to its applications (h4): a screen reader's list
  // of headings showed a level missing (WCAG 1.3.1).
  it('has headings without a skipped level on every page', async () => {
    const page = await signedIn();
    try {
      for (const path of ['/console', '/console/merchants']) {
        await page.goto(`${t.baseUrl}${path}`);
        const levels = (await page.evaluate(HEADING_LEVELS)) as number[];
        expect(levels[0], path).toBe(1);
        levels.forEach((level, i) => {
          if (i > 0) expect(level - levels[i - 1]!, `${path}: h${levels[i - 1]} then h${level}`).toBeLessThanOrEqual(1);
        });
      }
    } finally {
      await page.context().close();
    }
  });
});
