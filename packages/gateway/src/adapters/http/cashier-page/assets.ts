// The page's script and stylesheet, served by the gateway itself (no CDN) under names that
// carry a hash of their content, so browsers may keep them for a year.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface Asset {
  /** The URL path, e.g. /cashier/assets/cashier.0123abcd.js */
  path: string;
  contentType: string;
  body: Buffer;
}

// From src/adapters/http/cashier-page/ and dist/adapters/http/cashier-page/ alike: packages/gateway/web/.
const WEB_DIR = new URL('../../../../web/', import.meta.url);

function load(file: string, contentType: string, under = '/cashier/assets/'): Asset {
  const body = readFileSync(new URL(file, WEB_DIR));
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 12);
  const dot = file.lastIndexOf('.');
  return { path: `${under}${file.slice(0, dot)}.${hash}${file.slice(dot)}`, contentType, body };
}

export interface CashierAssets {
  script: Asset;
  style: Asset;
  byPath: Map<string, Asset>;
}

let loaded: CashierAssets | null = null;

export function cashierAssets(): CashierAssets {
  if (!loaded) {
    const script = load('cashier.js', 'text/javascript; charset=utf-8');
    const style = load('cashier.css', 'text/css; charset=utf-8');
    loaded = { script, style, byPath: new Map([script, style].map((a) => [a.path, a])) };
  }
  return loaded;
}

let consoleStyle: Asset | null = null;

/** The operator console's stylesheet (the console has no script). */
export function consoleStylesheet(): Asset {
  consoleStyle ??= load('console.css', 'text/css; charset=utf-8', '/console/assets/');
  return consoleStyle;
}
