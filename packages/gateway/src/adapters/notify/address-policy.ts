// Which addresses a notification may be sent to (PROTOCOL §13, outbound safety). In production
// a notify_url must reach the public Internet and nothing else: not the gateway's own host or
// network, nor addresses that only mean something locally. Refused: every range the IANA
// special-purpose address registries (IPv4 and IPv6, RFC 6890 and updates) do not mark globally
// reachable, IPv6 outside global unicast (2000::/3), and IPv4 addresses carried in IPv6 (mapped,
// NAT64, 6to4, Teredo) that would be refused as themselves. The check runs on the address
// actually connected to.
//
// The registries as used here (2024; a range they add later inside 2000::/3 or in IPv4 needs
// adding below):
// IPv4, not globally reachable, refused: 0.0.0.0/8 this network (RFC 791), 10.0.0.0/8,
// 172.16.0.0/12 and 192.168.0.0/16 private use (RFC 1918), 100.64.0.0/10 shared address space
// (RFC 6598), 127.0.0.0/8 loopback, 169.254.0.0/16 link-local (RFC 3927), 192.0.0.0/24 IETF
// protocol assignments (RFC 6890; in it 192.0.0.0/29 DS-Lite, .8 dummy, .170/.171 NAT64
// discovery), 192.0.2.0/24, 198.51.100.0/24 and 203.0.113.0/24 documentation (RFC 5737),
// 192.88.99.0/24 6to4 relay anycast (deprecated, RFC 7526), 198.18.0.0/15 benchmarking
// (RFC 2544), 240.0.0.0/4 reserved and 255.255.255.255 limited broadcast; and 224.0.0.0/4
// multicast (its own registry: never a TCP peer).
// IPv4, globally reachable, allowed: 192.31.196.0/24 AS112-v4 (RFC 7535), 192.52.193.0/24 AMT
// (RFC 7450), 192.175.48.0/24 AS112 direct delegation (RFC 7534).
// IPv6 outside 2000::/3, all refused (special or unallocated): ::/128 unspecified, ::1/128
// loopback, ::/96 IPv4-compatible (deprecated, RFC 4291), 64:ff9b:1::/48 local-use NAT64
// (RFC 8215), 100::/64 discard-only (RFC 6666), 5f00::/16 SRv6 SIDs (RFC 9602), fc00::/7 unique
// local (RFC 4193), fe80::/10 link-local, fec0::/10 site-local (deprecated, RFC 3879),
// ff00::/8 multicast; except ::ffff:0:0/96 mapped (a dual-stack socket connects to the IPv4
// address inside) and 64:ff9b::/96 NAT64 (RFC 6052: the translator connects to it), both judged
// by that IPv4 address.
// IPv6 inside 2000::/3, refused: 2001::/23 IETF protocol assignments (RFC 2928; in it 2001:2::/48
// benchmarking, RFC 5180, and 2001:10::/28 ORCHID, deprecated), 2001:db8::/32 (RFC 3849) and
// 3fff::/20 (RFC 9637) documentation. In 2001::/23, allowed: 2001:3::/32 AMT, 2001:4:112::/48
// AS112-v6, 2001:20::/28 ORCHIDv2 (RFC 7343), 2001:30::/28 DRIP entity tags (RFC 9374); and
// 2001::/32 Teredo and 2002::/16 6to4 (RFC 4380, RFC 3056) are judged by the IPv4 addresses
// inside (the registry calls neither globally reachable nor not).
// Departure from the registries: the service anycast addresses 192.0.0.9 and 2001:1::1 (PCP,
// RFC 7723), 192.0.0.10 and 2001:1::2 (TURN, RFC 8155) and 2001:1::3 (DNS-SD SRP, RFC 9665) are
// marked globally reachable but stay refused with the block around them: the nearest instance
// answers them, often the gateway network's own router or NAT, and a merchant's receiver is
// never there.
import { BlockList, isIP } from 'node:net';
import { ipv6Groups } from '../../domain/ipv6.js';

const refusedIpv4 = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // cloud metadata services live here
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  refusedIpv4.addSubnet(net, prefix, 'ipv4');
}

/** Refused inside global unicast (2000::/3), unless in `globalIpv6`. */
const refusedIpv6 = new BlockList();
for (const [net, prefix] of [
  ['2001::', 23],
  ['2001:db8::', 32],
  ['3fff::', 20],
] as const) {
  refusedIpv6.addSubnet(net, prefix, 'ipv6');
}
const globalIpv6 = new BlockList();
for (const [net, prefix] of [
  ['2001:3::', 32],
  ['2001:4:112::', 48],
  ['2001:20::', 28],
  ['2001:30::', 28],
] as const) {
  globalIpv6.addSubnet(net, prefix, 'ipv6');
}

function isBlockedIpv4(hi: number, lo: number): boolean {
  return refusedIpv4.check(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, 'ipv4');
}

function isBlockedIpv6(g: number[]): boolean {
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  // ::ffff:a.b.c.d (mapped), 64:ff9b::a.b.c.d (NAT64): the IPv4 address is what is reached.
  if (zeros(0, 5) && g[5] === 0xffff) return isBlockedIpv4(g[6]!, g[7]!);
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return isBlockedIpv4(g[6]!, g[7]!);
  // Outside global unicast nothing is reachable on the Internet (IPv4-compatible ::a.b.c.d included).
  if ((g[0]! & 0xe000) !== 0x2000) return true;
  // 2002:aabb:ccdd::/48 (6to4): the IPv4 address is the second and third groups.
  if (g[0] === 0x2002) return isBlockedIpv4(g[1]!, g[2]!);
  // 2001:0::/32 (Teredo): the server's IPv4 address in the third and fourth groups, the
  // client's (which a Teredo host sends to directly) inverted in the last two.
  if (g[0] === 0x2001 && g[1] === 0) return isBlockedIpv4(g[2]!, g[3]!) || isBlockedIpv4(g[6]! ^ 0xffff, g[7]! ^ 0xffff);
  const text = g.map((x) => x.toString(16)).join(':');
  return refusedIpv6.check(text, 'ipv6') && !globalIpv6.check(text, 'ipv6');
}

/** True for an address a production gateway must not send notifications to. Not an IP: true. */
export function isBlockedAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return refusedIpv4.check(address, 'ipv4');
  if (family !== 6) return true;
  const groups = ipv6Groups(address);
  return groups === null || isBlockedIpv6(groups);
}
