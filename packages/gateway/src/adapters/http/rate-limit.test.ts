import { describe, expect, it } from 'vitest';
import { clientKey, tokenBucket } from './rate-limit.js';

// Per-address budgets (the refusal budget, the cashier's strangers): an IPv6 client holds a /64
// and may send from any address in it; per /128 the budget bounded nothing (a review of the HTTP
// surface).
describe('clientKey', () => {
  it('keeps an IPv4 address, and names an IPv6 address by its /64 however it is written', () => {
    expect(clientKey('203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:DB8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(clientKey('')).toBe('');
  });

  it('one /64 shares one budget', () => {
    const bucket = tokenBucket(1, 2);
    const take = (ip: string) => bucket.take(clientKey(ip), 0);
    expect([take('2001:db8:1:2::1'), take('2001:db8:1:2::2'), take('2001:db8:1:2:ffff::3'), take('2001:db8:1:3::1')]).toEqual([true, true, false, true]);
  });
});
