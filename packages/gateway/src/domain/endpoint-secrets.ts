// RPC endpoint URLs are credentials: hosted providers put the API key in the path (".../v3/<key>")
// or the query, and a private node may take a user and password. The logs name an endpoint by
// its scheme and host only (`endpointLabel`), and every line written is scrubbed of what is
// secret in the configured URLs (`secretScrubber`), since libraries quote the whole URL in their
// error messages.

/** The URL as logs show it: scheme, host and port; "…" stands for a path, query or user left out. */
export function endpointLabel(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return '(an RPC endpoint)';
  }
  const hidden = u.username !== '' || u.password !== '' || (u.pathname !== '/' && u.pathname !== '') || u.search !== '' || u.hash !== '';
  return `${u.protocol}//${u.host}${hidden ? '/…' : ''}`;
}

/** Parts shorter than this are not taken for secrets (a path "/rpc" or "/v3" names no one). */
const MIN_SECRET_LENGTH = 8;

/** The secret parts of `url`: the URL itself, its user-info and password, long path segments and query values. */
export function urlSecrets(url: string): string[] {
  const out = new Set<string>([url]);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return [url];
  }
  out.add(u.href);
  const decoded = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  for (const part of [u.password, ...u.pathname.split('/'), ...[...u.searchParams.values()], u.hash.slice(1)]) {
    for (const s of [part, decoded(part)]) if (s.length >= MIN_SECRET_LENGTH) out.add(s);
  }
  // The user-info as a URL writes it, and a password however short (a short one alone would
  // match too much ordinary text to be replaced everywhere).
  if (u.username !== '' || u.password !== '') out.add(`${u.username}${u.password !== '' ? `:${u.password}` : ''}@`);
  for (const s of [u.password, decoded(u.password)]) if (s.length >= 4) out.add(s);
  return [...out];
}

/** Whether `url` holds more than it shows as an endpoint: a user-info, a long path segment or a query value. */
export function urlHasSecrets(url: string): boolean {
  return urlSecrets(url).some((part) => !url.startsWith(part) && !part.startsWith(url));
}

/**
 * A function that replaces every occurrence of the secret parts of `urls` (as written, and as
 * JSON escapes them) in a log line: a whole configured URL by its label, any other part by "…";
 * the identity when there is nothing to hide.
 */
export function secretScrubber(urls: readonly string[]): (line: string) => string {
  const replacement = new Map<string, string>();
  for (const url of urls) {
    const label = endpointLabel(url);
    const href = URL.canParse(url) ? new URL(url).href : url;
    for (const s of urlSecrets(url)) {
      // The URL as configured, or as WHATWG URL writes it back, is the endpoint: its label.
      const whole = s === url || s === href;
      for (const form of [s, JSON.stringify(s).slice(1, -1)]) if (form.length > 0 && !replacement.has(form)) replacement.set(form, whole ? label : '…');
    }
  }
  if (replacement.size === 0) return (line) => line;
  // Longest first: a whole URL goes before the key inside it.
  const list = [...replacement.keys()].sort((a, b) => b.length - a.length);
  const pattern = new RegExp(list.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  return (line) => (list.some((s) => line.includes(s)) ? line.replace(pattern, (m) => replacement.get(m) ?? '…') : line);
}
