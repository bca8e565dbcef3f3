// The operator console (PROTOCOL §3, §13, §16) over HTTP on a real gateway and database: who
// gets in, what the pages show (escaped), and the resend button with its anti-forgery check.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addPlatformKey } from '../src/app/merchant-admin.js';
import { mainnetDeployment } from '../src/domain/catalogue.js';
import { DATABASE_KINDS } from './databases.js';
import { api, observeTransfer, orderBody, startTestGateway, type TestGateway } from './harness.js';
import { CONSOLE_TOKEN, consoleClient, type ConsoleClient } from './console-client.js';
import { startReceiver } from './notify-receiver.js';
import { notificationLines } from '../src/cli/notify-views.js';
import { freePort } from './processes.js';
import { waitUntil } from './wait.js';

/** Where a closed port on this machine refuses at once: a receiver that never accepts. */
const deadUrl = async () => `http://127.0.0.1:${await freePort()}/notify`;

describe('the console when no token is configured', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway();
  });
  afterAll(async () => t?.close());

  it('is not served at all', async () => {
    for (const path of ['/console', '/console/login', '/console/merchants']) expect((await fetch(`${t.baseUrl}${path}`, { redirect: 'manual' })).status).toBe(404);
    const res = await fetch(`${t.baseUrl}/console/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=x' });
    expect(res.status).toBe(404);
  });
});

describe('the session cookie behind an https public URL', () => {
  it('is Secure, whatever the case of the scheme', async () => {
    // URL schemes are case-insensitive (RFC 3986 §3.1): public_url "HTTPS://…" is https too.
    for (const publicUrl of ['https://pay.example.com', 'HTTPS://pay.example.com']) {
      const t = await startTestGateway({ config: { consoleToken: CONSOLE_TOKEN, publicUrl } });
      try {
        const res = await consoleClient(t.baseUrl).signIn();
        expect(res.status, publicUrl).toBe(303);
        expect(res.headers.get('set-cookie'), publicUrl).toMatch(/; Secure$/);
      } finally {
        await t.close();
      }
    }
  });
});

describe.each(DATABASE_KINDS)('the console when its database fails on %s', (kind) => {
  it('answers a page saying so, under the request id of the logged error, and goes on serving', async () => {
    const t = await startTestGateway({ kind, config: { consoleToken: CONSOLE_TOKEN } });
    try {
      const c = consoleClient(t.baseUrl);
      await c.signIn();
      // A read the overview makes fails as it would with the database out of reach.
      await t.gateway.db.kysely.schema.dropTable('chain_cursors').execute();
      const res = await c.get('/console');
      expect(res.status).toBe(500);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      const html = await res.text();
      expect(html).toContain('database');
      expect(html).toContain(res.headers.get('sparkpay-request-id')!);
      expect(html).not.toContain('chain_cursors');
      expect((await c.get('/console/merchants')).status).toBe(200);
      // A body over the limit: the console's page too, not the API's JSON.
      const big = await c.post('/console/logout', { csrf: 'x'.repeat(70_000) });
      expect(big.status).toBe(413);
      expect(big.headers.get('content-type')).toBe('text/html; charset=utf-8');
    } finally {
      await t.close();
    }
  });
});

describe.each(DATABASE_KINDS)('the operator console on %s', (kind) => {
  let t: TestGateway;
  let c: ConsoleClient;
  beforeAll(async () => {
    // Polygon "served" (an RPC URL nobody answers; no workers run) so the chain table has a row.
    const deployment = { networks: mainnetDeployment().networks.map((n) => (n.id === '4' ? { ...n, chain: { ...n.chain, rpcUrls: ['http://127.0.0.1:9/'] } } : n)) };
    t = await startTestGateway({ kind, config: { consoleToken: CONSOLE_TOKEN, notifyAllowPrivate: true, deployment } });
    c = consoleClient(t.baseUrl);
  });
  afterAll(async () => t?.close());

  /** An order made a second after the one before (order numbers begin with the creation time). */
  async function order(overrides: Record<string, unknown> = {}, merchant = t.merchant): Promise<string> {
    t.clock.advance(1);
    const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(merchant, t.clock, overrides), merchant, clock: t.clock });
    expect(res.json.code).toBe(0);
    return String(res.json.data!.payment_order_no);
  }

  /** Sends the order's notification once more and waits for the attempt (the `n`th) to finish. */
  async function attempted(paymentOrderNo: string, n: number): Promise<void> {
    // Others may be due too (the resend case's): at least this one.
    expect(await t.gateway.notifications.deliverDue({ scan: true })).toBeGreaterThanOrEqual(1);
    const [notification] = await t.gateway.store.notifications.listByOrder(paymentOrderNo);
    await waitUntil(`attempt ${n} finished`, async () => {
      const attempts = await t.gateway.store.notifications.listAttempts(notification!.notifyId);
      return attempts.length >= n && attempts.every((a) => a.outcome !== 'IN_FLIGHT');
    });
  }

  it('sends a browser without a session to the sign-in page, which is served with a strict policy', async () => {
    for (const path of ['/console', '/console/merchants', '/console/orders/P1', '/console/find?q=P1']) {
      const res = await fetch(`${t.baseUrl}${path}`, { redirect: 'manual' });
      expect(res.status, path).toBe(303);
      expect(res.headers.get('location')).toBe('/console/login');
    }
    const login = await fetch(`${t.baseUrl}/console/login`);
    expect(login.status).toBe(200);
    expect(login.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(login.headers.get('content-security-policy')).not.toContain('script-src');
    expect(login.headers.get('x-frame-options')).toBe('DENY');
    expect(login.headers.get('cache-control')).toBe('no-store');
    expect(await login.text()).toContain('name="token"');
  });

  it('refuses a wrong token, and signs in with the right one: an HttpOnly, SameSite=Strict cookie for /console', async () => {
    const wrong = consoleClient(t.baseUrl);
    const refused = await wrong.signIn('console-token-for-tests-012345678X');
    expect(refused.status).toBe(401);
    expect(refused.headers.get('set-cookie')).toBeNull();
    expect(await refused.text()).toContain('That is not the console token');
    expect((await wrong.signIn('')).status).toBe(401);
    // The token as a script reads it from dev's token file (`curl --data-urlencode token@file`):
    // with its line break (a token has no whitespace of its own).
    expect((await consoleClient(t.baseUrl).signIn(`${CONSOLE_TOKEN}\n`)).status).toBe(303);

    const res = await c.signIn();
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/console');
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^sparkpay_console=\d+\.[A-Za-z0-9_-]{43}; Path=\/console; Max-Age=43200; HttpOnly; SameSite=Strict$/);
    // Plain HTTP public URL: no Secure flag (the browser would drop the cookie).
    expect(cookie).not.toContain('Secure');
    const overview = await c.get('/console');
    expect(overview.status).toBe(200);
    expect(await overview.text()).toContain('<h1>Overview</h1>');
    // Signed in, the sign-in page sends the browser on.
    expect((await c.get('/console/login')).status).toBe(303);
  });

  it('refuses a sign-in form in another encoding', async () => {
    const res = await c.post('/console/login', { token: CONSOLE_TOKEN }, { contentType: 'text/plain', cookie: null });
    expect(res.status).toBe(400);
    expect(res.headers.get('set-cookie')).toBeNull();
  });

  it('takes no cookie it did not issue, nor one that ran out', async () => {
    const forged = consoleClient(t.baseUrl);
    const [expires] = c.cookie!.split('=')[1]!.split('.');
    for (const value of [`${expires}.${'A'.repeat(43)}`, `${Number(expires) + 3600}.${c.cookie!.split('.')[1]}`, 'garbage', '']) {
      forged.cookie = `sparkpay_console=${value}`;
      expect((await forged.get('/console')).status, value).toBe(303);
    }
    const later = consoleClient(t.baseUrl);
    await later.signIn();
    t.clock.advance(12 * 3600 - 1);
    expect((await later.get('/console')).status).toBe(200);
    t.clock.advance(1);
    expect((await later.get('/console')).status).toBe(303);
    // c's session began at the same instant, earlier: sign in again for the other cases.
    await c.signIn();
  });

  it('lists the newest orders, filters them by merchant and status, and pages back', async () => {
    const mine = [await order(), await order(), await order()];
    const theirs = await order({}, t.otherMerchant);
    const html = await (await c.get('/console')).text();
    for (const no of [...mine, theirs]) expect(html).toContain(`href="/console/orders/${no}"`);
    // Newest first.
    expect(html.indexOf(theirs)).toBeLessThan(html.indexOf(mine[0]!));
    const filtered = await (await c.get(`/console?merchant=${t.otherMerchant.merchantNo}`)).text();
    expect(filtered).toContain(theirs);
    expect(filtered).not.toContain(mine[0]);
    const paid = await order();
    await observeTransfer(t, { paymentOrderNo: paid, amount: 10_500_000n });
    const onlyPaid = await (await c.get('/console?status=PAID')).text();
    expect(onlyPaid).toContain(paid);
    expect(onlyPaid).not.toContain(mine[1]);
    const older = await (await c.get(`/console?before=${mine[2]}`)).text();
    expect(older).toContain(mine[1]);
    expect(older).not.toContain(`/console/orders/${mine[2]}"`);
    expect(older).not.toContain(paid);
    // A status that is none: every order, not an error.
    expect((await c.get('/console?status=BOGUS')).status).toBe(200);
  });

  it('finds an order by its number, and says so when there is none', async () => {
    const no = await order();
    const found = await c.get(`/console/find?q=${no}`);
    expect(found.status).toBe(303);
    expect(found.headers.get('location')).toBe(`/console/orders/${no}`);
    const missing = await c.get('/console/find?q=P000');
    expect(missing.headers.get('location')).toBe('/console?missing=P000');
    expect(await (await c.get('/console?missing=P000')).text()).toContain('No order P000');
    expect((await c.get('/console/orders/P000')).status).toBe(404);
    expect((await c.get(`/console/orders/${'P'.repeat(65)}`)).status).toBe(404);
    // The overview with a trailing slash too: typed so, or sent so by a proxy whose location is
    // "/console/" (nginx answers "/console" with a redirect there).
    const slash = await c.get('/console/');
    expect(slash.status).toBe(200);
    expect(await slash.text()).toContain('<h1>Overview</h1>');
    expect((await fetch(`${t.baseUrl}/console/`, { redirect: 'manual' })).headers.get('location')).toBe('/console/login');
    const unknown = await c.get('/console/nothing-here');
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toContain('text/html');
  });

  it("finds an order by its number typed in lower case or with spaces around, and by a merchant's request_no in the merchant's filter", async () => {
    const requestNo = `Shop_${Date.now()}`;
    const no = await order({ request_no: requestNo });
    for (const typed of [no.toLowerCase(), `  ${no} `, `\t${no.toLowerCase()}\n`]) {
      const found = await c.get(`/console/find?q=${encodeURIComponent(typed)}`);
      expect(found.status, typed).toBe(303);
      expect(found.headers.get('location'), typed).toBe(`/console/orders/${no}`);
    }
    // The merchant's own number, in any case (request_no is case-insensitive, PROTOCOL §5), with
    // the merchant the overview is filtered by.
    const m = t.merchant.merchantNo;
    for (const typed of [requestNo, requestNo.toUpperCase(), ` ${requestNo.toLowerCase()} `]) {
      const found = await c.get(`/console/find?q=${encodeURIComponent(typed)}&merchant=${m}`);
      expect(found.headers.get('location'), typed).toBe(`/console/orders/${no}`);
    }
    // Without a merchant, or with another one, a request_no names no order: the overview says so, still filtered.
    expect((await c.get(`/console/find?q=${requestNo}`)).headers.get('location')).toBe(`/console?missing=${requestNo}`);
    const other = await c.get(`/console/find?q=${requestNo}&merchant=${t.otherMerchant.merchantNo}`);
    expect(other.headers.get('location')).toBe(`/console?merchant=${t.otherMerchant.merchantNo}&missing=${requestNo}`);
    const missing = await (await c.get(other.headers.get('location')!)).text();
    expect(missing).toContain(`No order ${requestNo}, nor a request_no ${requestNo} of merchant ${t.otherMerchant.merchantNo}`);
    // The search box of a merchant's overview searches that merchant's request numbers too.
    const filtered = await (await c.get(`/console?merchant=${m}`)).text();
    const search = filtered.slice(filtered.indexOf('action="/console/find"'), filtered.indexOf('</form>', filtered.indexOf('action="/console/find"')));
    expect(search).toContain(`<input type="hidden" name="merchant" value="${m}">`);
    expect(search).toContain('request_no');
  });

  it('lists the orders of one second by their time to the millisecond, and pages by whole seconds', async () => {
    // payment_order_no is P, the UTC time to the second, then random digits: by it alone the
    // orders of one second come in no particular order.
    const m = await t.addMerchant();
    const made = async (n: number): Promise<string[]> => {
      t.clock.advance(1);
      const nos: string[] = [];
      for (let i = 0; i < n; i += 1) {
        t.clock.ms += 7;
        const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(m, t.clock), merchant: m, clock: t.clock });
        nos.push(String(res.json.data!.payment_order_no));
      }
      return nos;
    };
    const listed = (html: string) => [...html.slice(html.indexOf('<h2>Orders</h2>'), html.indexOf('<h2>Failed notifications</h2>')).matchAll(/<td class="long"><a href="\/console\/orders\/(P\d+)">/g)].map((x) => x[1]!);
    const older = await made(3);
    const newer = await made(49);
    const first = await (await c.get(`/console?merchant=${m.merchantNo}`)).text();
    // Newest first, the one second's in the order they were made; a page ends with a whole
    // second (the 50th and the 51st order are of the same second: that second starts the next page).
    expect(listed(first)).toEqual([...newer].reverse());
    const next = /href="\/console\?([^"]+)">Older orders/.exec(first)![1]!.replaceAll('&amp;', '&');
    expect(listed(await (await c.get(`/console?${next}`)).text())).toEqual([...older].reverse());
    // A second with more orders than a page holds is cut: each page still in time order.
    const m2 = await t.addMerchant();
    const many: string[] = [];
    t.clock.advance(1);
    for (let i = 0; i < 51; i += 1) {
      t.clock.ms += 3;
      const res = await api(t.baseUrl, { path: '/v4/pay/cashier', body: orderBody(m2, t.clock), merchant: m2, clock: t.clock });
      many.push(String(res.json.data!.payment_order_no));
    }
    const full = await (await c.get(`/console?merchant=${m2.merchantNo}`)).text();
    const page = listed(full);
    expect(page).toHaveLength(50);
    expect(page).toEqual([...many].reverse().filter((no) => page.includes(no)));
    const rest = /href="\/console\?([^"]+)">Older orders/.exec(full)![1]!.replaceAll('&amp;', '&');
    expect(listed(await (await c.get(`/console?${rest}`)).text())).toHaveLength(1);
  });

  it('takes an identifier with a NUL character (%00, a paste gone wrong) as no identifier, as an over-long one, not as a database failure', async () => {
    // PostgreSQL cannot even look such text up: each of these was a 500 page saying the database
    // may be out of reach, with an error in the log.
    if (!c.cookie) await c.signIn();
    const no = await order();
    const nul = (s: string) => `${s}%00`;
    expect((await c.get(`/console/orders/${nul(no)}`)).status).toBe(404);
    const found = await c.get(`/console/find?q=${nul(no)}`);
    expect(found.status).toBe(303);
    expect(found.headers.get('location')).toMatch(/^\/console\?missing=/);
    for (const path of [`/console?merchant=${nul(t.merchant.merchantNo)}`, `/console?before=${nul(no)}`, `/console/merchants?after=${nul(t.merchant.merchantNo)}`]) {
      expect((await c.get(path)).status, path).toBe(200);
    }
    expect((await c.post(`/console/notifications/${nul('N000')}/resend`, { csrf: await c.csrf() })).status).toBe(404);
  });

  it("shows an order with the merchant's texts escaped, its pricing, transfers and notifications with their attempts", async () => {
    const evil = `<img src=x onerror="alert(1)">&'"`;
    const notifyUrl = `${await deadUrl()}?shop=1&amp=2`;
    const no = await order({ merchant_order_desc: evil, notify_url: notifyUrl, redirect_url: 'https://shop.example/back' });
    await observeTransfer(t, { paymentOrderNo: no, amount: 10_500_000n });
    await attempted(no, 1);
    const res = await c.get(`/console/orders/${no}`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;&#39;&quot;');
    expect(html).toContain('PAID');
    expect(html).toContain('10500000'); // the option's amount in base units
    expect(html).toContain('ORDER_PAID');
    expect(html).toMatch(/<td>FAILED<\/td>/); // the first attempt, refused
    expect(html).toContain('CONNECTION');
    expect(html).toContain(`action="/console/notifications/`);
    // The whole notify_url (the query answers only its host): what the operator tells the merchant after a 404.
    expect(html).toContain(`<dt>notify_url</dt><dd>${notifyUrl.replaceAll('&', '&amp;')}</dd>`);
    expect(html).toContain('<dt>redirect_url</dt><dd>https://shop.example/back</dd>');
    // Which instance made each attempt, as `notify list` says: with several instances, one whose
    // network cannot reach the receiver is told apart from a receiver that is down.
    const [n] = await t.gateway.store.notifications.listByOrder(no);
    const [attempt] = await t.gateway.store.notifications.listAttempts(n!.notifyId);
    expect(html).toContain('<th scope="col">sender</th>');
    expect(html).toContain(`<td>${attempt!.sender}</td>`);
    // The order's times (Unix seconds, 0 until reached: §7) in words, with the seconds beside.
    const created = Math.floor(t.clock.nowMs() / 1000);
    expect(html).toContain(`<dt>order_time</dt><dd>${new Date(created * 1000).toISOString().slice(0, 19).replace('T', ' ')} UTC (${created})</dd>`);
    expect(html).toContain('<dt>closed_time</dt><dd>not yet</dd>');
    // The merchant's own time may be any integer (§5), also one no date has: shown as sent.
    const far = await order({ merchant_order_time: Number.MAX_SAFE_INTEGER });
    const farPage = await c.get(`/console/orders/${far}`);
    expect(farPage.status).toBe(200);
    expect(await farPage.text()).toContain(`<dt>merchant_order_time</dt><dd>${Number.MAX_SAFE_INTEGER}</dd>`);
  });

  it("lists an order's largest transfers, not every one of a flood of dust", async () => {
    const no = await order();
    const payment = await observeTransfer(t, { paymentOrderNo: no, amount: 10_500_000n });
    // Anyone can send an order's deposit address transfers of one base unit.
    for (let i = 0; i < 60; i += 1) await observeTransfer(t, { paymentOrderNo: no, amount: 1n });
    const html = await (await c.get(`/console/orders/${no}`)).text();
    const transfers = html.slice(html.indexOf('<h2>Transfers</h2>'), html.indexOf('<h2>Settlement</h2>'));
    expect(transfers.match(/<tr>/g)!.length - 1).toBe(50);
    expect(transfers).toContain(payment.txHash);
    expect(transfers).toContain(`The 50 largest of 61 transfers (sparkpay order show ${no} lists every one)`);
  });

  it('resends a notification only from a form of the signed-in session', async () => {
    const no = await order({ notify_url: await deadUrl() });
    await observeTransfer(t, { paymentOrderNo: no, amount: 10_500_000n });
    const [n] = await t.gateway.store.notifications.listByOrder(no);
    const path = `/console/notifications/${n!.notifyId}/resend`;
    const before = await t.gateway.store.notifications.get(n!.notifyId);

    const noCsrf = await c.post(path, {});
    expect(noCsrf.status).toBe(403);
    const wrongCsrf = await c.post(path, { csrf: 'A'.repeat(43) });
    expect(wrongCsrf.status).toBe(403);
    const noSession = await c.post(path, { csrf: await c.csrf() }, { cookie: null });
    expect(noSession.status).toBe(401);
    expect(await t.gateway.store.notifications.get(n!.notifyId)).toEqual(before);

    const res = await c.post(path, { csrf: await c.csrf() });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`/console/orders/${no}?resent=${n!.notifyId}`);
    const after = await t.gateway.store.notifications.get(n!.notifyId);
    expect(after!.series).toBe(before!.series + 1);
    expect(after!.status).toBe('PENDING');
    expect(await (await c.get(res.headers.get('location')!)).text()).toContain(`Notification ${n!.notifyId} resent`);
    expect((await c.post('/console/notifications/N000/resend', { csrf: await c.csrf() })).status).toBe(404);
    // A link someone else made cannot have the page say that something was resent.
    for (const claim of ['N000', 'the refund was sent']) {
      const html = await (await c.get(`/console/orders/${no}?resent=${encodeURIComponent(claim)}`)).text();
      expect(html, claim).not.toContain('resent:');
    }
  });

  it('counts an attempt in flight in its series, in the words `notify list` uses', async () => {
    // Two refused attempts, a resend, then a receiver that takes the third and never answers.
    const receiver = await startReceiver((_req, i) => (i < 2 ? { status: 503 } : { action: 'hang' }));
    try {
      const no = await order({ notify_url: receiver.url });
      await observeTransfer(t, { paymentOrderNo: no, amount: 10_500_000n });
      await attempted(no, 1);
      t.clock.advance(60);
      await attempted(no, 2);
      const [n] = await t.gateway.store.notifications.listByOrder(no);
      expect((await c.post(`/console/notifications/${n!.notifyId}/resend`, { csrf: await c.csrf() })).status).toBe(303);
      expect(await t.gateway.notifications.deliverDue({ scan: true })).toBeGreaterThanOrEqual(1);
      await receiver.waitFor(3);
      const notification = (await t.gateway.store.notifications.get(n!.notifyId))!;
      const attempts = await t.gateway.store.notifications.listAttempts(n!.notifyId);
      expect(attempts.map((a) => [a.series, a.outcome])).toEqual([
        [1, 'FAILED'],
        [1, 'FAILED'],
        [2, 'IN_FLIGHT'],
      ]);
      // Not "3 in all, 0 in series 2": the series' counter counts only attempts that ended.
      const words = '3 in all, 1 in flight, 1 in series 2';
      const html = await (await c.get(`/console/orders/${no}`)).text();
      expect(html).toContain(`<dt>attempts</dt><dd>${words}</dd>`);
      expect(html).toContain('PENDING, an attempt is in flight');
      expect(notificationLines({ notification, attempts })[0]).toContain(`PENDING (attempt in flight)  (attempts: ${words})`);
    } finally {
      await receiver.close();
    }
  });

  it('lists notifications that used every attempt on the overview, each with why its last attempt failed', async () => {
    // A receiver that redirects: the error names where to (escaped, and only its head shown).
    const location = `https://shop.example/<script>alert(1)</script>${'x'.repeat(250)}`;
    const receiver = await startReceiver(() => ({ status: 302, headers: { location } }));
    try {
      const no = await order({ notify_url: receiver.url });
      await observeTransfer(t, { paymentOrderNo: no, amount: 10_500_000n });
      const [n] = await t.gateway.store.notifications.listByOrder(no);
      for (let i = 1; i <= 8; i += 1) {
        await attempted(no, i);
        t.clock.advance(2 * 3600);
      }
      expect((await t.gateway.store.notifications.get(n!.notifyId))!.status).toBe('FAILED');
      // c's session is older than the 16 hours the clock moved: it signs in again.
      expect((await c.get('/console')).status).toBe(303);
      await c.signIn();
      const html = await (await c.get('/console')).text();
      const failedSection = html.slice(html.indexOf('<h2>Failed notifications</h2>'));
      expect(failedSection).toContain(n!.notifyId);
      expect(failedSection).toContain(`/console/orders/${no}`);
      expect(html).toMatch(/failed \(all attempts used\)<\/dt><dd class="bad">[1-9]/);
      const row = failedSection.slice(failedSection.indexOf(n!.notifyId), failedSection.indexOf('</tr>', failedSection.indexOf(n!.notifyId)));
      expect(row).toContain('<td>REDIRECT</td><td class="num">302</td>');
      expect(row).toContain('redirect to https://shop.example/&lt;script&gt;alert(1)&lt;/script&gt;xxx');
      expect(row).toContain('xxx…</td>');
      expect(row).not.toContain('<script>');
      expect(row).not.toContain('x'.repeat(120));
      expect(failedSection).toContain('<th scope="col">last error</th>');
    } finally {
      await receiver.close();
    }
  });

  it("shows each network's scan and who scans it", async () => {
    await t.gateway.store.chainCursors.lease('4', 'instance-a', t.clock.nowMs(), t.clock.nowMs() + 30_000);
    const html = await (await c.get('/console')).text();
    const chains = html.slice(html.indexOf('<h2>Chains</h2>'), html.indexOf('<h2>Orders</h2>'));
    expect(chains).toContain('4 Polygon');
    expect(chains).toContain('instance-a');
    expect(chains).not.toContain('Ethereum');
  });

  it('lists merchants with their applications and live platform keys, and which key signs', async () => {
    const html = await (await c.get('/console/merchants')).text();
    for (const m of [t.merchant, t.otherMerchant]) {
      expect(html).toContain(m.merchantNo);
      expect(html).toContain(m.appId);
      expect(html).toContain(m.serial);
    }
    const pem = t.merchant.platformPublicKeyPem.trim().split('\n')[1]!;
    expect(html).toContain(pem);
    expect(html).toMatch(/<td>ACTIVE<\/td><td>yes<\/td>/);
  });

  it('says since when each live platform key signs: a key made ACTIVE signs since it was made, a NEXT key not yet', async () => {
    const m = await t.addMerchant();
    const deps = { store: t.gateway.store, clock: t.clock, ids: t.gateway.ids, platformKeys: t.gateway.platformKeys };
    t.clock.advance(60);
    const next = await addPlatformKey(deps, m.appId, false);
    if (!next.ok) throw new Error(next.message);
    const [first] = await t.gateway.store.platformKeys.list(m.appId);
    const stamp = (ms: number) => `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
    let after = null;
    let html = '';
    // The merchants page lists 50 a page, in merchant_no order.
    for (let page = 0; page < 10 && !html.includes(m.appId); page += 1) {
      html = await (await c.get(`/console/merchants${after ? `?after=${after}` : ''}`)).text();
      after = /merchants\?after=([A-Z0-9]+)/.exec(html)?.[1] ?? null;
    }
    // The cells' classes (how they wrap) aside.
    const app = html.slice(html.indexOf(m.appId)).replace(/<td class="[a-z]+">/g, '<td>');
    // The key dev and `app create` make is ACTIVE from its creation: it has signed since then.
    expect(app).toContain(`<td>${first!.serial}</td><td>ACTIVE</td><td>yes</td><td>${stamp(first!.createdAt)}</td><td>${stamp(first!.createdAt)}</td>`);
    expect(app).toContain(`<td>${next.value.key.serial}</td><td>NEXT</td><td>no</td><td>${stamp(next.value.key.createdAt)}</td><td>not yet</td>`);
  });

  it('limits sign-in attempts per address', async () => {
    const guesser = consoleClient(t.baseUrl);
    const statuses: number[] = [];
    for (let i = 0; i < 12; i += 1) statuses.push((await guesser.signIn(`wrong-token-${i}-0123456789`)).status);
    expect(statuses.slice(0, 8).every((s) => s === 401)).toBe(true);
    expect(statuses).toContain(429);
    // The right token too, until the budget refills.
    expect((await guesser.signIn()).status).toBe(429);
    t.clock.advance(60);
    expect((await guesser.signIn()).status).toBe(303);
  });

  it('signs out: the cookie is cleared', async () => {
    const s = consoleClient(t.baseUrl);
    await s.signIn();
    const res = await s.post('/console/logout', { csrf: await s.csrf() });
    expect(res.status).toBe(303);
    expect(res.headers.get('set-cookie')).toMatch(/^sparkpay_console=; Path=\/console; Max-Age=0;/);
  });
});
