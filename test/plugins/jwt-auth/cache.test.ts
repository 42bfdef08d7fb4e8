import { describe, expect, it } from 'vitest';
import { LruCache } from '../../../plugins/jwt-auth/index.js';

describe('LruCache', () => {
  it('holds at most max entries, evicting the oldest', () => {
    const cache = new LruCache<string, number>(3);
    for (const [i, k] of ['a', 'b', 'c', 'd'].entries()) cache.set(k, i);
    expect(cache.size).toBe(3);
    expect(cache.get('a')).toBeUndefined();
    expect([cache.get('b'), cache.get('c'), cache.get('d')]).toEqual([1, 2, 3]);
  });

  it('never evicts an entry used within the last max/2 insertions', () => {
    const cache = new LruCache<number, number>(10);
    cache.set(0, 0);
    // Keep touching 0 while 100 other keys pass through.
    for (let i = 1; i <= 100; i++) {
      cache.set(i, i);
      expect(cache.get(0), `after ${i} insertions`).toBe(0);
    }
    expect(cache.size).toBe(10);
  });

  it('replaces the value of a key set again, and forgets deleted keys', () => {
    const cache = new LruCache<string, string>(2);
    cache.set('a', '1');
    cache.set('a', '2');
    expect(cache.size).toBe(1);
    expect(cache.get('a')).toBe('2');
    cache.delete('a');
    expect(cache.get('a')).toBeUndefined();
    cache.set('b', '3');
    cache.clear();
    expect(cache.size).toBe(0);
  });

  it('refuses a size that is not a positive integer', () => {
    expect(() => new LruCache(0)).toThrow(RangeError);
    expect(() => new LruCache(1.5)).toThrow(RangeError);
  });
});
