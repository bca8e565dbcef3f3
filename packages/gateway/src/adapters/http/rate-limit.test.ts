import { describe, expect, it } from 'vitest';
import { clientKey, evictingOldest, MAX_BUCKETS, tokenBucket } from './rate-limit.js';

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

// Every per-address budget (refusals, the cashier's strangers, console sign-ins) is keyed by what
// a client sends from: a flood from 200,000 addresses must not hold 200,000 buckets.
describe('tokenBucket', () => {
  it(`keeps at most ${MAX_BUCKETS} buckets: past that the least recently seen goes, never all of them`, () => {
    const bucket = tokenBucket(1, 1);
    // Both spent (a fresh bucket would let them through again).
    for (const key of ['oldest', 'recent']) expect([bucket.take(key, 0), bucket.take(key, 0)]).toEqual([true, false]);
    for (let i = 0; i < MAX_BUCKETS - 2; i += 1) bucket.take(`client-${i}`, 0);
    // Full. Seen again: the most recent now, still spent.
    expect(bucket.take('recent', 0)).toBe(false);
    // One more client: the oldest bucket goes, only it.
    bucket.take('newcomer', 0);
    expect(bucket.take('recent', 0)).toBe(false);
    expect(bucket.take('oldest', 0)).toBe(true);
    // 200,000 more clients: every one of the earlier buckets went, none of them held memory.
    for (let i = 0; i < 200_000; i += 1) bucket.take(`flood-${i}`, 0);
    expect(bucket.take('recent', 0)).toBe(true);
  });
});

describe('evictingOldest', () => {
  it('always deletes the first entry in insertion order, across moves to the end, deletions by others, emptying and refilling', () => {
    const map = new Map<number, null>();
    const evict = evictingOldest(map);
    // A fixed pseudo-random walk (LCG): insert, move to the end, delete elsewhere, evict.
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) % n);
    for (let step = 0; step < 50_000; step += 1) {
      const op = rand(10);
      const key = rand(300);
      if (op < 4) map.set(key, null);
      else if (op < 6 && map.has(key)) {
        map.delete(key);
        map.set(key, null);
      } else if (op < 7) map.delete(key);
      else {
        const expected = [...map.keys()].slice(1);
        evict();
        expect([...map.keys()]).toEqual(expected);
      }
      // Emptied now and then: the walk starts again when there is something again.
      if (step % 5_000 === 4_999) while (map.size > 0) evict();
    }
  });
});
