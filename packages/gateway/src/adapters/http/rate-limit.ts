// Per-application token bucket (§2: default 1,000 requests/s, bursts of 2,000). Kept in the
// memory of each instance: with N instances behind a balancer an application may reach N
// times the rate, which the operator sizes with SPARKPAY_RATE_LIMIT.
export interface RateLimiter {
  /** True when the request may proceed. */
  take(key: string, nowMs: number): boolean;
  /** Returns the token a request took that turned out not to be the application's (a replay). */
  giveBack(key: string): void;
}

const MAX_BUCKETS = 100_000;

export function tokenBucket(ratePerSecond: number, burst = ratePerSecond * 2): RateLimiter {
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    take(key, nowMs) {
      let b = buckets.get(key);
      if (b) {
        // Most recently used last: the first key is the one to evict.
        buckets.delete(key);
        buckets.set(key, b);
      } else {
        // Full: the least recently used bucket goes (never all of them: that would be a reset anyone could trigger).
        if (buckets.size >= MAX_BUCKETS) buckets.delete(buckets.keys().next().value as string);
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
  if (!address.includes(':')) return address;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return mapped[1]!;
  const zoneless = address.split('%')[0]!.toLowerCase();
  const [head = '', tail = ''] = zoneless.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = zoneless.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
  const groups = zoneless.includes('::') ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => (g === '' ? '0' : g.replace(/^0+(?=.)/, '')))
    .join(':')}::/64`;
}
