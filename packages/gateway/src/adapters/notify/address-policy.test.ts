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
    // Server 65.54.227.120, client 8.8.8.8 (RFC 4380's own example has client 192.0.2.45: documentation, refused).
    expect(isBlockedAddress('2001:0:4136:e378:8000:63bf:f7f7:f7f7')).toBe(false);
  });

  it('refuses anything that is not an IP address', () => {
    expect(isBlockedAddress('localhost')).toBe(true);
    expect(isBlockedAddress('')).toBe(true);
    expect(isBlockedAddress('999.1.1.1')).toBe(true);
  });
});

// Every range of the IANA special-purpose address registries (see address-policy.ts for the list
// and where this policy departs from it), at its boundaries: the first and last address inside
// are refused, the nearest address outside on either side is allowed, or null when that
// neighbour lies in another refused range (whose own row tests it).
describe('outbound address policy at the boundaries of the special-purpose ranges', () => {
  const refusedRanges: [range: string, first: string, last: string, below: string | null, above: string | null][] = [
    ['0.0.0.0/8 (this network)', '0.0.0.0', '0.255.255.255', null, '1.0.0.0'],
    ['10.0.0.0/8 (private)', '10.0.0.0', '10.255.255.255', '9.255.255.255', '11.0.0.0'],
    ['100.64.0.0/10 (shared, CGNAT)', '100.64.0.0', '100.127.255.255', '100.63.255.255', '100.128.0.0'],
    ['127.0.0.0/8 (loopback)', '127.0.0.0', '127.255.255.255', '126.255.255.255', '128.0.0.0'],
    ['169.254.0.0/16 (link-local)', '169.254.0.0', '169.254.255.255', '169.253.255.255', '169.255.0.0'],
    ['172.16.0.0/12 (private)', '172.16.0.0', '172.31.255.255', '172.15.255.255', '172.32.0.0'],
    ['192.0.0.0/24 (IETF protocol assignments)', '192.0.0.0', '192.0.0.255', '191.255.255.255', '192.0.1.0'],
    ['192.0.2.0/24 (TEST-NET-1)', '192.0.2.0', '192.0.2.255', '192.0.1.255', '192.0.3.0'],
    ['192.88.99.0/24 (6to4 relay anycast)', '192.88.99.0', '192.88.99.255', '192.88.98.255', '192.88.100.0'],
    ['192.168.0.0/16 (private)', '192.168.0.0', '192.168.255.255', '192.167.255.255', '192.169.0.0'],
    ['198.18.0.0/15 (benchmarking)', '198.18.0.0', '198.19.255.255', '198.17.255.255', '198.20.0.0'],
    ['198.51.100.0/24 (TEST-NET-2)', '198.51.100.0', '198.51.100.255', '198.51.99.255', '198.51.101.0'],
    ['203.0.113.0/24 (TEST-NET-3)', '203.0.113.0', '203.0.113.255', '203.0.112.255', '203.0.114.0'],
    ['224.0.0.0/4 (multicast)', '224.0.0.0', '239.255.255.255', '223.255.255.255', null],
    ['240.0.0.0/4 (reserved, limited broadcast)', '240.0.0.0', '255.255.255.255', null, null],
    // IPv6 outside 2000::/3: special-purpose or unallocated, all of it refused (mapped and NAT64
    // addresses are judged by the IPv4 address inside, below).
    ['::/128 (unspecified)', '::', '::', null, null],
    ['::1/128 (loopback)', '::1', '::1', null, null],
    ['::/96 (IPv4-compatible, deprecated)', '::2', '::ffff:ffff', null, null],
    ['64:ff9b:1::/48 (local-use NAT64)', '64:ff9b:1::', '64:ff9b:1:ffff:ffff:ffff:ffff:ffff', null, null],
    ['100::/64 (discard-only)', '100::', '100::ffff:ffff:ffff:ffff', null, null],
    ['5f00::/16 (SRv6 SIDs)', '5f00::', '5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff', null, null],
    ['fc00::/7 (unique local)', 'fc00::', 'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', null, null],
    ['fe80::/10 (link-local)', 'fe80::', 'febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff', null, null],
    ['fec0::/10 (site-local, deprecated)', 'fec0::', 'feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', null, null],
    ['ff00::/8 (multicast)', 'ff00::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', null, null],
    ['reserved below 2000::/3', '::1:0:0:0', '1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', null, '2000::'],
    ['reserved above 2000::/3', '4000::', 'fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', null],
    // IPv6 inside 2000::/3.
    ['2001::/23 (IETF protocol assignments)', '2001::', '2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff', '2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '2001:200::'],
    ['2001:2::/48 (benchmarking)', '2001:2::', '2001:2:0:ffff:ffff:ffff:ffff:ffff', null, null],
    ['2001:10::/28 (ORCHID, deprecated)', '2001:10::', '2001:1f:ffff:ffff:ffff:ffff:ffff:ffff', null, '2001:20::'],
    ['2001:db8::/32 (documentation)', '2001:db8::', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', '2001:db7:ffff:ffff:ffff:ffff:ffff:ffff', '2001:db9::'],
    ['3fff::/20 (documentation)', '3fff::', '3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff', '3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '3fff:1000::'],
  ];
  it.each(refusedRanges)('%s: its ends refused, its neighbours allowed', (_range, first, last, below, above) => {
    expect({ first: isBlockedAddress(first), last: isBlockedAddress(last) }).toEqual({ first: true, last: true });
    if (below !== null) expect(isBlockedAddress(below), below).toBe(false);
    if (above !== null) expect(isBlockedAddress(above), above).toBe(false);
  });

  // Globally reachable ranges inside refused blocks or next to them: allowed, their neighbours refused.
  const allowedRanges: [range: string, first: string, last: string, below: string | null, above: string | null][] = [
    ['192.31.196.0/24 (AS112-v4)', '192.31.196.0', '192.31.196.255', null, null],
    ['192.52.193.0/24 (AMT)', '192.52.193.0', '192.52.193.255', null, null],
    ['192.175.48.0/24 (AS112 direct delegation)', '192.175.48.0', '192.175.48.255', null, null],
    ['2000::/3 (global unicast)', '2000::', '3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '4000::'],
    ['2001:3::/32 (AMT)', '2001:3::', '2001:3:ffff:ffff:ffff:ffff:ffff:ffff', '2001:2:ffff:ffff:ffff:ffff:ffff:ffff', '2001:4::'],
    ['2001:4:112::/48 (AS112-v6)', '2001:4:112::', '2001:4:112:ffff:ffff:ffff:ffff:ffff', '2001:4:111:ffff:ffff:ffff:ffff:ffff', '2001:4:113::'],
    ['2001:20::/28 (ORCHIDv2)', '2001:20::', '2001:2f:ffff:ffff:ffff:ffff:ffff:ffff', '2001:1f:ffff:ffff:ffff:ffff:ffff:ffff', null],
    ['2001:30::/28 (DRIP entity tags)', '2001:30::', '2001:3f:ffff:ffff:ffff:ffff:ffff:ffff', null, '2001:40::'],
    ['2620:4f:8000::/48 (AS112 direct delegation)', '2620:4f:8000::', '2620:4f:8000:ffff:ffff:ffff:ffff:ffff', null, null],
  ];
  it.each(allowedRanges)('%s: its ends allowed, its neighbours refused', (_range, first, last, below, above) => {
    expect({ first: isBlockedAddress(first), last: isBlockedAddress(last) }).toEqual({ first: false, last: false });
    if (below !== null) expect(isBlockedAddress(below), below).toBe(true);
    if (above !== null) expect(isBlockedAddress(above), above).toBe(true);
  });

  // Anycast addresses of services the nearest provider answers (often the gateway's own router
  // or NAT): marked globally reachable, refused with the block around them.
  it.each(['192.0.0.9', '192.0.0.10', '2001:1::1', '2001:1::2', '2001:1::3'])('refuses the service anycast address %s', (address) => {
    expect(isBlockedAddress(address)).toBe(true);
  });

  // An IPv4 address inside IPv6 is judged as itself: the ends of its range and one global address.
  const embeddings: [form: string, embed: (v4: string) => string][] = [
    ['::ffff:0:0/96 (mapped)', (v4) => `::ffff:${v4}`],
    ['64:ff9b::/96 (NAT64)', (v4) => `64:ff9b::${v4}`],
    ['2002::/16 (6to4)', (v4) => `2002:${hex(v4, 0)}:${hex(v4, 1)}::1`],
    ['2001::/32 (Teredo server)', (v4) => `2001:0:${hex(v4, 0)}:${hex(v4, 1)}:8000:63bf:f7f7:f7f7`],
    ['2001::/32 (Teredo client)', (v4) => `2001:0:4136:e378:8000:63bf:${inverted(v4, 0)}:${inverted(v4, 1)}`],
  ];
  const inside = ['0.0.0.0', '192.0.2.0', '192.0.2.255', '198.51.100.1', '203.0.113.255', '192.88.99.1', '255.255.255.255'];
  it.each(embeddings.flatMap(([form, embed]) => inside.map((v4) => [form, embed(v4), v4] as const)))('%s: refuses %s, which carries %s', (_form, address) => {
    expect(isBlockedAddress(address)).toBe(true);
  });
  it.each(embeddings.map(([form, embed]) => [form, embed('192.0.3.0')] as const))('%s: allows %s, which carries a public address', (_form, address) => {
    expect(isBlockedAddress(address)).toBe(false);
  });
  it('refuses NAT64 and 6to4 neighbours that carry no IPv4 address: reserved space', () => {
    expect(isBlockedAddress('64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff')).toBe(true);
    expect(isBlockedAddress('64:ff9b::1:0:0')).toBe(true);
    expect(isBlockedAddress('::fffe:ffff:ffff')).toBe(true);
    expect(isBlockedAddress('::1:0:0:0')).toBe(true);
  });
  it('refuses IPv4-compatible addresses even around a public IPv4 address (deprecated, not routed)', () => {
    expect(isBlockedAddress('::8.8.8.8')).toBe(true);
    expect(isBlockedAddress('::ffff:0:8.8.8.8')).toBe(true);
  });
});

/** The `i`th 16-bit half of a dotted IPv4 address, in hex. */
function hex(v4: string, i: number): string {
  const [a, b, c, d] = v4.split('.').map(Number) as [number, number, number, number];
  return (i === 0 ? (a << 8) | b : (c << 8) | d).toString(16);
}

/** The same, bits inverted (Teredo's client address). */
function inverted(v4: string, i: number): string {
  return (parseInt(hex(v4, i), 16) ^ 0xffff).toString(16);
}
