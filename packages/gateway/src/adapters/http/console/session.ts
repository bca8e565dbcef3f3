// Sign-in to the operator console: whoever gives the console token gets a session cookie
// (`expiry.mac`, an HMAC under a key derived from the token: nothing is stored, and a new token
// ends every session), HttpOnly, SameSite=Strict, scoped to /console. Every form that changes
// something carries a second MAC of the same session (CSRF), checked besides the cookie.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'sparkpay_console';
/** A session lasts 12 hours from sign-in. */
export const SESSION_SECONDS = 12 * 3600;

export class ConsoleSessions {
  private readonly key: Buffer;
  private readonly token: Buffer;

  constructor(token: string) {
    this.token = createHash('sha256').update(token).digest();
    this.key = createHash('sha256').update(`sparkpay console session\n${token}`).digest();
  }

  /** Whether `given` is the console token (compared in constant time, whatever its length). */
  tokenMatches(given: string): boolean {
    return timingSafeEqual(createHash('sha256').update(given).digest(), this.token);
  }

  /** A session's cookie value, valid until `nowSeconds + SESSION_SECONDS`. */
  issue(nowSeconds: number): string {
    const expires = nowSeconds + SESSION_SECONDS;
    return `${expires}.${this.mac('session', expires)}`;
  }

  /** The session's expiry when `cookie` is a session this token issued that has not run out, else null. */
  verify(cookie: string | undefined, nowSeconds: number): number | null {
    const m = /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(cookie ?? '');
    if (!m) return null;
    const expires = Number(m[1]);
    if (expires <= nowSeconds || expires > nowSeconds + SESSION_SECONDS) return null;
    return this.equal(m[2]!, this.mac('session', expires)) ? expires : null;
  }

  /** The anti-forgery value that the session's forms carry. */
  csrf(expires: number): string {
    return this.mac('csrf', expires);
  }

  csrfMatches(given: string | null, expires: number): boolean {
    return given !== null && this.equal(given, this.csrf(expires));
  }

  private mac(purpose: string, expires: number): string {
    return createHmac('sha256', this.key).update(`${purpose}\n${expires}`).digest('base64url');
  }

  private equal(a: string, b: string): boolean {
    const x = Buffer.from(a);
    const y = Buffer.from(b);
    return x.length === y.length && timingSafeEqual(x, y);
  }
}

/** The value of cookie `name` in a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
