// Per-application token bucket (§2: default 1,000 requests/s, bursts of 2,000). Kept in the
// memory of each instance: with N instances behind a balancer an application may reach N
// times the rate, which the operator sizes with SPARKPAY_RATE_LIMIT.
import { ipv6Groups } from '../../domain/ipv6.js';

export interface RateLimiter {
  /** True when the request may proceed. */
  take(key: string, nowMs: number): boolean;
  /** Returns the token a request took that turned out not to be the application's (a replay). */
  giveBack(key: string): void;
}

/** Clients (or applications, orders) a limiter keeps a bucket for at most: the least recently seen goes first. */
export const MAX_BUCKETS = 100_000;

/**
 * Deletes the oldest entry of `map` (its first in insertion order) each time it is called. A
 * map's first entry is found by walking from the start over the slots of entries deleted since
 * the map last rehashed: with an entry evicted (and one moved to the end) per request, at 100,000
 * entries that walk cost 120 µs a request and grew with the flood (found by a soak review). One
 * iterator kept across calls walks each slot once: every entry behind it was evicted by it or
 * moved (deleted, then set again at the end, ahead of it), so the next it yields is the oldest.
 */
export function evictingOldest<K>(map: Map<K, unknown>): () => void {
  let cursor = map.keys();
  return () => {
    let next = cursor.next();
    // An iterator that reached the end stays there: the map was empty, start again.
    if (next.done) next = (cursor = map.keys()).next();
    if (!next.done) map.delete(next.value);
  };
}

export function tokenBucket(ratePerSecond: number, burst = ratePerSecond * 2): RateLimiter {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const evictOldest = evictingOldest(buckets);
  return {
    take(key, nowMs) {
      let b = buckets.get(key);
      if (b) {
        // Most recently used last: the first key is the one to evict.
        buckets.delete(key);
        buckets.set(key, b);
      } else {
        // Full: the least recently used bucket goes (never all of them: that would be a reset anyone could trigger).
        if (buckets.size >= MAX_BUCKETS) evictOldest();
        b = { tokens: burst, at: nowMs };
        buckets.set(key, b);
      }
      // A clock set back refills nothing and is not a debt: the bucket went on from its later time
      // (a step back of an hour put it 3.6 million tokens below zero, an hour of 40011).
      b.tokens = Math.min(burst, b.tokens + (Math.max(0, nowMs - b.at) / 1000) * ratePerSecond);
      b.at = nowMs;
      if (b.tokens < 1) return false;
      b.tokens -= 1;
      return true;
    },
    giveBack(key) {
      const b = buckets.get(key);
      if (b) b.tokens = Math.min(burst, b.tokens + 1);
    },
  };
}

/**
 * The key of a client address in the per-address budgets: an IPv4 address as it is, an IPv6
 * address by its /64 (one host, or one customer of a provider, is given a /64 and may send from
 * any of its 2^64 addresses: per /128, a budget would bound nothing). An IPv4-mapped IPv6 address
 * is its IPv4 address.
 */
export function clientKey(address: string): string {
  const g = address.includes(':') ? ipv6Groups(address) : null;
  if (!g) return address;
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return `${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`;
  return `${g
    .slice(0, 4)
    .map((x) => x.toString(16))
    .join(':')}::/64`;
}
