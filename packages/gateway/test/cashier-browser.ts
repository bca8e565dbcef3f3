// Headless Chromium (Debian's, through playwright-core) for the cashier page tests, a stand-in
// merchant site to land on after payment, and a record of what a page requested.
import { existsSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env.SPARKPAY_CHROMIUM ?? '/usr/bin/chromium';

export function launchBrowser(): Promise<Browser> {
  // Said plainly on a machine without it (a newcomer's first `npm test`), not as a launch failure.
  if (!existsSync(CHROMIUM)) throw new Error(`the cashier page tests need Chromium at ${CHROMIUM}: apt-get install -y chromium fonts-wqy-microhei, or set SPARKPAY_CHROMIUM to another binary`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

export const PHONE = { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 } as const;
export const DESKTOP = { viewport: { width: 1280, height: 800 } } as const;

const OUTPUT = fileURLToPath(new URL('../../../test-output/cashier/', import.meta.url));

/** Saves a full-page screenshot under test-output/cashier/ and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(OUTPUT, { recursive: true });
  const path = `${OUTPUT}${name.replace(/[^a-z0-9-]+/gi, '-')}.png`;
  await page.screenshot({ path, fullPage: true });
  return path;
}

export interface PageTraffic {
  urls: string[];
  /** Bytes of each response body, by URL, in order. */
  bodies: { url: string; bytes: number; type: string }[];
  /** Console errors (CSP violations are reported there). */
  errors: string[];
  /** Answers of 400 and above: "status url". */
  failed: string[];
  /** Top-level navigations. */
  navigations: string[];
}

export function recordTraffic(page: Page): PageTraffic {
  const traffic: PageTraffic = { urls: [], bodies: [], errors: [], failed: [], navigations: [] };
  page.on('request', (r) => traffic.urls.push(r.url()));
  page.on('response', (r) => {
    if (r.status() >= 400) traffic.failed.push(`${r.status()} ${r.url()}`);
    if (r.status() >= 300 && r.status() < 400) return;
    void r
      .body()
      .then((b) => traffic.bodies.push({ url: r.url(), bytes: b.length, type: r.request().resourceType() }))
      .catch(() => undefined);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') traffic.errors.push(m.text());
  });
  page.on('pageerror', (e) => traffic.errors.push(e.message));
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) traffic.navigations.push(f.url());
  });
  return traffic;
}

export interface MerchantSite {
  url: string;
  /** Paths requested so far (with their query). */
  visits: string[];
  /** The Referer header of each visit ('' when none): the cashier URL (and its token) must never appear. */
  referers: string[];
  close(): Promise<void>;
}

/** The merchant's own site: what redirect_url points to. */
export async function startMerchantSite(): Promise<MerchantSite> {
  const visits: string[] = [];
  const referers: string[] = [];
  const server: Server = createServer((req, res) => {
    visits.push(req.url ?? '');
    referers.push(req.headers.referer ?? '');
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><title>Shop</title><h1>Thank you for your order</h1>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    visits,
    referers,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
