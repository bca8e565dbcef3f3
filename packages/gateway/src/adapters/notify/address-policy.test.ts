import { describe, expect, it } from 'vitest';
import { isBlockedAddress } from './address-policy.js';

describe('outbound address policy', () => {
  it.each([
    '127.0.0.1',
    '127.255.255.254',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.251',
    '239.255.255.250',
    '255.255.255.255',
    '::1',
    '::',
    'fe80::1',
    'fd12:3456::1',
    'fc00::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:10.0.0.1',
    '::ffff:a9fe:a9fe',
    '64:ff9b::a9fe:a9fe',
    '2002:c0a8:0101::1',
    // 6to4 whose IPv4 part ends in zero groups (the compressed form swallows them)
    '2002:a00::1',
    '2002:c0a8::',
    '2002:7f00:1::',
    '0:0:0:0:0:ffff:127.0.0.1',
    '0000:0000:0000:0000:0000:ffff:0a00:0001',
    '64:ff9b:0:0:0:0:7f00:1',
  ])('refuses %s', (address) => {
    expect(isBlockedAddress(address)).toBe(true);
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '172.15.255.255', '100.128.0.1', '192.169.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '2002:0808:0808::1', '2002:808:808::', '64:ff9b::808:808', '2a00:1450::200e'])(
    'allows the public address %s',
    (address) => {
      expect(isBlockedAddress(address)).toBe(false);
    },
  );

  // Teredo (2001::/32): the server's IPv4 address in groups 2-3, the client's, inverted, in 6-7.
  // A Teredo-capable host sends to the client's address directly (UDP), so a private one inside
  // reaches the gateway's network like 6to4 does.
  it.each([
    '2001:0:4136:e378:8000:63bf:80ff:fffe', // client 127.0.0.1
    '2001:0:4136:e378:8000:63bf:f5ff:fffe', // client 10.0.0.1
    '2001:0:4136:e378:8000:63bf:5601:5601', // client 169.254.169.254 (metadata)
    '2001:0:a00:1:8000:63bf:f7f7:f7f7', // server 10.0.0.1
  ])('refuses the Teredo address %s, which carries a refused IPv4 address', (address) => {
    expect(isBlockedAddress(address)).toBe(true);
  });

  it('allows a Teredo address whose server and client are public', () => {
    expect(isBlockedAddress('2001:0:4136:e378:8000:63bf:3fff:fdd2')).toBe(false);
  });

  it('refuses anything that is not an IP address', () => {
    expect(isBlockedAddress('localhost')).toBe(true);
    expect(isBlockedAddress('')).toBe(true);
    expect(isBlockedAddress('999.1.1.1')).toBe(true);
  });
});
