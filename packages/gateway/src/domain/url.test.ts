import { describe, expect, it } from 'vitest';
import { isValidHttpUrl, urlDestination } from './url.js';

describe('isValidHttpUrl', () => {
  it.each([
    'https://example.com',
    'http://example.com/',
    'HTTPS://Example.COM/notify',
    'https://shop.example.co.uk:8443/pay/notify?order=1&x=%20#frag',
    'http://localhost:3000/cb',
    'http://127.0.0.1/cb',
    'http://[::1]:8080/cb',
    'https://xn--fsqu00a.xn--3lr804guic/',
    'https://example.com./a',
    `https://example.com/${'a'.repeat(512 - 20)}`,
  ])('accepts %s', (u) => {
    expect(isValidHttpUrl(u)).toBe(true);
  });
  it.each([
    '',
    'example.com',
    '//example.com',
    'ftp://example.com',
    'javascript:alert(1)',
    'http:example.com',
    'http:/example.com',
    'http://',
    'http:///path',
    'http://exa mple.com',
    'http://example.com/a b',
    'http://example.com\\evil',
    ' http://example.com',
    'http://example.com ',
    'https://user:pw@example.com/',
    'https://example.com@evil.com/',
    'http://example.com:0/',
    'http://example.com:65536/',
    'http://example.com:abc/',
    'http://-example.com/',
    'http://example..com/',
    'http://999.1.1.1/',
    'http://例子.com/',
    'http://example.com/%zz',
    'http://example.com/#a#b',
    `https://example.com/${'a'.repeat(513 - 20)}`,
    // Shapes the checks above let through that no URL parser reads (the notifier could never POST to them).
    'http://[:]/cb',
    'http://[12345::]/cb',
    'http://[1:2:3:4:5:6:7:8:9]/',
    'http://foo.09/cb',
    'http://shop.example.123/cb',
    'http://xn--a/cb',
    'http://a.0x1/cb',
  ])('refuses %j', (u) => {
    expect(isValidHttpUrl(u)).toBe(false);
  });
});

describe('urlDestination', () => {
  it('names a receiver once: lower case, default ports left out, no trailing dot', () => {
    expect(urlDestination('https://Shop.Example/notify')).toBe('shop.example');
    expect(urlDestination('https://shop.example./notify')).toBe('shop.example');
    expect(urlDestination('https://shop.example:443/notify')).toBe('shop.example');
    expect(urlDestination('https://shop.example.:8443/notify')).toBe('shop.example:8443');
    expect(urlDestination('http://[::1]:8080/n')).toBe('[::1]:8080');
    expect(urlDestination('not a url')).toBe('');
  });
});
