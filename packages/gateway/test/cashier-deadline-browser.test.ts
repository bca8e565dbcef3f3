// The cashier page's deadline and countdown in Chromium, on payers' devices in other time zones
// and with their clocks set wrong (a review of the payer's view).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchBrowser } from './cashier-browser.js';
import { api, deploymentWithFactory, orderBody, startTestGateway, type TestGateway } from './harness.js';

describe('cashier page deadline in Chromium', { timeout: 60_000 }, () => {
  let t: TestGateway;
  let browser: Browser;
  beforeAll(async () => {
    [t, browser] = await Promise.all([startTestGateway({ config: { deployment: deploymentWithFactory(['4']) } }), launchBrowser()]);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  // The server writes the deadline in UTC and says so ("… UTC"); the script rewrote it in the
  // device's zone without naming the zone ("Nov 25, 2026, 4:30 AM"), so a payer could not tell
  // which clock the time was on (a phone set to the wrong zone, a payer abroad).
  it('names the time zone of the deadline it shows in the device’s zone, and counts down from the server’s time whatever the device clock says', async () => {
    // ManualClock starts at 2026-11-25 12:00 UTC: deadline 3 days, 1 h and 65 s later, 13:01:05 UTC on the 28th.
    const body = orderBody(t.merchant, t.clock, { merchant_order_timeout: t.clock.seconds() + 3 * 86_400 + 3600 + 65 });
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body, merchant: t.merchant, clock: t.clock });
    expect(res.json.code, res.json.message).toBe(0);
    const url = new URL(String(res.json.data!.cashier_url));
    const cases = [
      { locale: 'en-US', lang: 'en', timezoneId: 'America/Los_Angeles', device: '2020-01-01T00:00:00Z', time: '5:01', zone: /PST|GMT-8/, days: '3 d 01:01:0' },
      { locale: 'zh-CN', lang: 'zh-CN', timezoneId: 'Asia/Shanghai', device: '2031-06-01T00:00:00Z', time: '21:01', zone: /GMT\+8|CST/, days: '3 天 01:01:0' },
      { locale: 'en-GB', lang: 'en', timezoneId: 'UTC', device: '2026-11-25T11:59:00Z', time: '1:01', zone: /UTC|GMT/, days: '3 d 01:01:0' },
    ];
    for (const c of cases) {
      const context = await browser.newContext({ locale: c.locale, timezoneId: c.timezoneId });
      const page = await context.newPage();
      await page.clock.install({ time: new Date(c.device) });
      await page.goto(`${t.baseUrl}${url.pathname}${url.search}&lang=${c.lang}`);
      const deadline = ((await page.locator('#deadline').textContent()) ?? '').trim();
      expect(deadline, c.timezoneId).toContain(c.time);
      expect(deadline, c.timezoneId).toMatch(c.zone);
      expect(((await page.locator('#countdown').textContent()) ?? '').trim(), c.timezoneId).toContain(c.days);
      await context.close();
    }
  });
});
