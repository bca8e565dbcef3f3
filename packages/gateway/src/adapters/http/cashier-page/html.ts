// HTML text and attribute escaping for the server-rendered cashier page. Everything that comes
// from an order (merchant name, description, URLs) goes through `esc`.

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function esc(value: string | number): string {
  return String(value).replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** The page's own URL for an order, language and extra query (the token travels in the query, as in cashier_url). */
export function pageUrl(paymentOrderNo: string, token: string, lang: string, extra = ''): string {
  return `/cashier/${encodeURIComponent(paymentOrderNo)}?t=${encodeURIComponent(token)}&lang=${encodeURIComponent(lang)}${extra}`;
}

/** Only absolute http(s) URLs are followed (creation already refuses others; this is defence in depth). */
export function safeHttpUrl(url: string | null): string | null {
  return url && /^https?:\/\//i.test(url) ? url : null;
}
