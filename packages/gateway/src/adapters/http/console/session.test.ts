// The console's sessions: a cookie only this token issued, not run out; a new token ends them all.
import { describe, expect, it } from 'vitest';
import { ConsoleSessions, cookieValue, SESSION_SECONDS } from './session.js';

const TOKEN = 'console-token-for-tests-0123456789';
const NOW = 1_795_608_000;

describe('ConsoleSessions', () => {
  it('takes a cookie it issued until it runs out, and none after the token changed', () => {
    const cookie = new ConsoleSessions(TOKEN).issue(NOW);
    expect(new ConsoleSessions(TOKEN).verify(cookie, NOW + SESSION_SECONDS - 1)).toBe(NOW + SESSION_SECONDS);
    expect(new ConsoleSessions(TOKEN).verify(cookie, NOW + SESSION_SECONDS)).toBeNull();
    expect(new ConsoleSessions(`${TOKEN}-new`).verify(cookie, NOW)).toBeNull();
    // The anti-forgery value of a session is no cookie, and the other way round.
    const sessions = new ConsoleSessions(TOKEN);
    expect(sessions.verify(`${NOW + SESSION_SECONDS}.${sessions.csrf(NOW + SESSION_SECONDS)}`, NOW)).toBeNull();
    expect(sessions.csrfMatches(cookie.split('.')[1]!, NOW + SESSION_SECONDS)).toBe(false);
  });

  it('compares tokens whatever their length', () => {
    const sessions = new ConsoleSessions(TOKEN);
    for (const given of ['', 'x', TOKEN.slice(0, -1), `${TOKEN}x`, TOKEN.toUpperCase()]) expect(sessions.tokenMatches(given), given).toBe(false);
    expect(sessions.tokenMatches(TOKEN)).toBe(true);
  });

  it('reads its cookie among others', () => {
    expect(cookieValue('a=1; sparkpay_console=v.x; b=2', 'sparkpay_console')).toBe('v.x');
    expect(cookieValue('xsparkpay_console=v', 'sparkpay_console')).toBeUndefined();
    expect(cookieValue(undefined, 'sparkpay_console')).toBeUndefined();
  });
});
