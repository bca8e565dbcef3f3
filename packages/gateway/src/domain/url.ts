// Strict check of merchant-supplied URLs (PROTOCOL §7: notify_url 41001, redirect_url 41000):
// an absolute http:// or https:// URL with a host, at most 512 characters. Written by hand
// rather than with WHATWG `URL`, which repairs input (backslashes, spaces, "http:host") that a
// strict check must refuse.

export const MAX_URL_LENGTH = 512;

/**
 * The destination of a URL for per-destination limits: lower-case host and port
 * ("shop.example:8443"; none for the scheme's default), the host without a trailing dot (a
 * fully qualified "shop.example." is the same receiver as "shop.example", and must not get a
 * second per-destination allowance), or '' when it does not parse.
 */
export function urlDestination(url: string): string {
  try {
    const { hostname, port } = new URL(url);
    const host = hostname.toLowerCase().replace(/\.$/, '');
    return port ? `${host}:${port}` : host;
  } catch {
    return '';
  }
}

const SCHEME = /^https?:\/\//i;
const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;
const IPV4 = /^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$/;
// Loose IPv6 literal shape: hex groups, colons, an optional trailing dotted IPv4.
const IPV6 = /^\[(?=.*:)[0-9A-Fa-f:]+(\.[0-9.]+)?\]$/;
// RFC 3986 path/query/fragment characters: unreserved, sub-delims, ":", "@", "/", "?" and
// percent-escapes; "#" once, handled by the caller.
const TAIL = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*$/;

function isHost(host: string): boolean {
  if (host.startsWith('[')) return IPV6.test(host);
  if (/^[0-9.]+$/.test(host)) return IPV4.test(host);
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  if (name.length === 0 || name.length > 253) return false;
  return name.split('.').every((l) => LABEL.test(l));
}

/**
 * Whether `s` is an absolute http(s) URL: scheme, "//", a host (DNS name, IPv4 or bracketed
 * IPv6) with an optional port 1-65535, then an optional path/query/fragment of RFC 3986
 * characters. No user-info ("https://a@b" is refused: it is a phishing shape for redirects),
 * no whitespace, no non-ASCII (send it percent-encoded).
 */
export function isValidHttpUrl(s: string): boolean {
  if (s.length > MAX_URL_LENGTH || !SCHEME.test(s)) return false;
  const rest = s.slice(s.indexOf('//') + 2);
  const end = rest.search(/[/?#]/);
  const authority = end === -1 ? rest : rest.slice(0, end);
  const tail = end === -1 ? '' : rest.slice(end);
  const portAt = authority.lastIndexOf(':');
  const hasPort = portAt !== -1 && !authority.slice(portAt).includes(']');
  const host = hasPort ? authority.slice(0, portAt) : authority;
  if (hasPort) {
    const port = authority.slice(portAt + 1);
    if (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) return false;
  }
  if (!isHost(host)) return false;
  const hash = tail.indexOf('#');
  const beforeFragment = hash === -1 ? tail : tail.slice(0, hash);
  const fragment = hash === -1 ? '' : tail.slice(hash + 1);
  return TAIL.test(beforeFragment) && TAIL.test(fragment) && readable(s);
}

/**
 * Whether a WHATWG parser (the notifier's, a browser's for the redirect) reads it: the shapes above
 * pass hosts no parser takes ("[:]", "[12345::]", a last label of digits or "0x…", bad punycode
 * "xn--a"), and such a notify_url was stored and its notifications failed eight times unread.
 */
function readable(s: string): boolean {
  if (!URL.canParse(s)) return false;
  const u = new URL(s);
  return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
}
