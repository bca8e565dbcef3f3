// Which addresses a notification may be sent to (PROTOCOL §13, outbound safety). In production
// a notify_url must not reach the gateway's own host or network: loopback, private, link-local,
// shared (CGNAT), multicast, unspecified and reserved ranges are refused, for IPv4, IPv6 and
// IPv4 addresses embedded in IPv6 (mapped, compatible, NAT64, 6to4, Teredo). The check runs on
// the address actually connected to.
import { BlockList, isIP } from 'node:net';
import { ipv6Groups } from '../../domain/ipv6.js';

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // shared address space (carrier-grade NAT)
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local (cloud metadata services live here)
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and the limited broadcast address
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated, still routed by some)
  ['ff00::', 8], // multicast
  ['64:ff9b:1::', 48], // local-use NAT64
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

/** The IPv4 addresses carried inside an IPv6 one (mapped, compatible, NAT64, 6to4 or Teredo). */
function embeddedIpv4(address: string): string[] {
  const g = ipv6Groups(address);
  if (!g) return [];
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible), 64:ff9b::a.b.c.d (NAT64)
  if (zeros(0, 5) && (g[5] === 0xffff || g[5] === 0)) return [v4(g[6]!, g[7]!)];
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return [v4(g[6]!, g[7]!)];
  // 2002:aabb:ccdd::/48 (6to4): the IPv4 address is the second and third groups.
  if (g[0] === 0x2002) return [v4(g[1]!, g[2]!)];
  // 2001:0::/32 (Teredo): the server's IPv4 address in the third and fourth groups, the
  // client's (which a Teredo host sends to directly) inverted in the last two.
  if (g[0] === 0x2001 && g[1] === 0) return [v4(g[2]!, g[3]!), v4(g[6]! ^ 0xffff, g[7]! ^ 0xffff)];
  return [];
}

/** True for an address a production gateway must not send notifications to. Not an IP: true. */
export function isBlockedAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family !== 6) return true;
  if (embeddedIpv4(address).some((v4) => isIP(v4) === 4 && blocked.check(v4, 'ipv4'))) return true;
  return blocked.check(address, 'ipv6');
}
