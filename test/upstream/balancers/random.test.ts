import { describe, expect, it } from 'vitest';
import { RandomBalancer } from '../../../src/upstream/balancers/random.js';
import { binomialTolerance, CTX, countOf, endpoints, forbiddenRandom, scriptedRandom, subset, tally } from './support.js';

describe('RandomBalancer', () => {
  it('spreads uniformly when weights are equal (each within 6 σ, about ±3.5 %)', () => {
    const all = endpoints('abc');
    const n = 60_000;
    const balancer = new RandomBalancer(all);
    const counts = tally(() => balancer.pick(all, CTX), n);
    for (const address of 'abc') {
      expect(Math.abs(countOf(counts, address) - n / 3)).toBeLessThanOrEqual(binomialTolerance(n, 1 / 3));
      expect(Math.abs(countOf(counts, address) - n / 3)).toBeLessThanOrEqual(0.05 * (n / 3));
    }
  });

  it('splits 1:3 by weight (within 6 σ, about ±3.3 %)', () => {
    const all = endpoints('ab', [1, 3]);
    const n = 100_000;
    const balancer = new RandomBalancer(all);
    const counts = tally(() => balancer.pick(all, CTX), n);
    expect(Math.abs(countOf(counts, 'a') - n / 4)).toBeLessThanOrEqual(binomialTolerance(n, 1 / 4));
    expect(Math.abs(countOf(counts, 'a') - n / 4)).toBeLessThanOrEqual(0.05 * (n / 4));
  });

  it('splits by weight among the usable subset when some endpoints are out', () => {
    const all = endpoints('abcd', [2, 1, 5, 3]);
    const usable = subset(all, 'bd'); // 1:3
    const n = 100_000;
    const balancer = new RandomBalancer(all);
    const counts = tally(() => balancer.pick(usable, CTX), n);
    expect(countOf(counts, 'a') + countOf(counts, 'c')).toBe(0);
    expect(Math.abs(countOf(counts, 'b') - n / 4)).toBeLessThanOrEqual(binomialTolerance(n, 1 / 4));
  });

  it('maps the draw onto cumulative weights the same way for the whole set and for a subset', () => {
    // Weights 1,3 cover [0, 1) and [1, 4): a draw of 0.25 (x = 1.0) is b's first.
    const all = endpoints('abc', [1, 3, 4]);
    const ab = subset(all, 'ab');
    const whole = (r: number): string => new RandomBalancer(all, scriptedRandom([r])).pick(all, CTX).address;
    const part = (r: number): string => new RandomBalancer(all, scriptedRandom([r])).pick(ab, CTX).address;
    expect([0, 0.124, 0.125, 0.499, 0.5, 0.999999].map(whole).join('')).toBe('aabbcc');
    expect([0, 0.249, 0.25, 0.999999].map(part).join('')).toBe('aabb');
    // A source that returns 1 (Math.random never does) still yields the last endpoint.
    expect(whole(1)).toBe('c');
    expect(part(1)).toBe('b');
  });

  it('indexes directly when weights are equal, including a source returning 1', () => {
    const all = endpoints('abcd', [2, 2, 2, 2]);
    const pick = (r: number): string => new RandomBalancer(all, scriptedRandom([r])).pick(all, CTX).address;
    expect([0, 0.25, 0.5, 0.75, 1].map(pick).join('')).toBe('abcdd');
  });

  it('returns a single candidate without drawing', () => {
    const all = endpoints('abc', [1, 2, 3]);
    const balancer = new RandomBalancer(all, forbiddenRandom);
    expect(balancer.pick(subset(all, 'c'), CTX)).toBe(all[2]);
  });

  it('fails loudly on an empty candidate list', () => {
    const balancer = new RandomBalancer(endpoints('ab'));
    expect(() => balancer.pick([], CTX)).toThrow(expect.objectContaining({ code: 'GW_ERR_UPSTREAM_UNAVAILABLE' }));
  });
});
