import { describe, expect, it } from 'vitest';
import { WeightedRoundRobinBalancer } from '../../../src/upstream/balancers/weighted-round-robin.js';
import type { TestEndpoint } from './support.js';
import { CTX, endpoints, endpointsAt, occurrences, scriptedRandom, seededRandom, sequence, subset } from './support.js';

/** A start at nginx's beginning of the cycle (all current weights zero). */
const fromZero = (): number => 0;

/** Counts of `address` in every window of `size` consecutive picks: [min, max]. */
function windowRange(picks: string, address: string, size: number): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  for (let start = 0; start + size <= picks.length; start++) {
    const count = occurrences(picks.slice(start, start + size), address);
    min = Math.min(min, count);
    max = Math.max(max, count);
  }
  return [min, max];
}

function longestRun(picks: string, address: string): number {
  let longest = 0;
  let run = 0;
  for (const picked of picks) {
    run = picked === address ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  return longest;
}

describe('WeightedRoundRobinBalancer', () => {
  it('gives nginx\'s smooth sequence for weights 5,1,1: a a b a c a a, cycle after cycle', () => {
    const all = endpoints('abc', [5, 1, 1]);
    const balancer = new WeightedRoundRobinBalancer(all, fromZero);
    expect(sequence(() => balancer.pick(all, CTX), 21)).toBe('aabacaa'.repeat(3));
  });

  it('splits 3000 picks 1:3 exactly, one a in every four picks (no bursts)', () => {
    const all = endpoints('ab', [1, 3]);
    const balancer = new WeightedRoundRobinBalancer(all, fromZero);
    const picks = sequence(() => balancer.pick(all, CTX), 3000);
    expect(occurrences(picks, 'a')).toBe(750); // within ±5 % of 750, in fact exact
    expect(occurrences(picks, 'b')).toBe(2250);
    expect(windowRange(picks, 'a', 4)).toEqual([1, 1]);
  });

  it('starts at a random point of its cycle, so workers and reloads do not move in lockstep', () => {
    const all = endpoints('abc', [5, 1, 1]);
    // floor(0.45 × 7) = 3 picks into a a b a c a a.
    const balancer = new WeightedRoundRobinBalancer(all, scriptedRandom([0.45]));
    expect(sequence(() => balancer.pick(all, CTX), 14)).toBe('acaaaab' + 'acaaaab');
    // With the default source the cycle is as smooth and exact, wherever it starts.
    const anywhere = new WeightedRoundRobinBalancer(all);
    const picks = sequence(() => anywhere.pick(all, CTX), 700);
    expect([occurrences(picks, 'a'), occurrences(picks, 'b'), occurrences(picks, 'c')]).toEqual([500, 100, 100]);
    expect(longestRun(picks, 'b')).toBe(1);
  });

  it('is plain round robin when weights are equal', () => {
    const all = endpoints('abc', [2, 2, 2]);
    const balancer = new WeightedRoundRobinBalancer(all, fromZero);
    expect(sequence(() => balancer.pick(all, CTX), 9)).toBe('abcabcabc');
  });

  it('stays smooth while an endpoint is out and after it returns, whenever it leaves', () => {
    const weights = [5, 1, 1];
    for (const leaver of 'abc') {
      for (let before = 0; before < 14; before++) {
        for (let away = 1; away <= 20; away++) {
          const all = endpoints('abc', weights);
          const balancer = new WeightedRoundRobinBalancer(all, fromZero);
          const rest = all.filter((e) => e.address !== leaver);
          const restTotal = rest.reduce((sum, e) => sum + e.weight, 0);
          sequence(() => balancer.pick(all, CTX), before);

          // While it is out, every cycle of the others holds each of them its weight, ±1.
          const during = sequence(() => balancer.pick(rest, CTX), away);
          for (const e of during.length >= restTotal ? rest : []) {
            const [min, max] = windowRange(during, e.address, restTotal);
            expect(min).toBeGreaterThanOrEqual(e.weight - 1);
            expect(max).toBeLessThanOrEqual(e.weight + 1);
          }

          // After it returns: every cycle of 7 holds 5,1,1 give or take one, the light endpoints
          // never run twice in a row, and the returning one is served within two cycles.
          const after = sequence(() => balancer.pick(all, CTX), 70);
          for (const e of all) {
            const [min, max] = windowRange(after, e.address, 7);
            expect(min).toBeGreaterThanOrEqual(e.weight - 1);
            expect(max).toBeLessThanOrEqual(e.weight + 1);
            expect(Math.abs(occurrences(after, e.address) - e.weight * 10)).toBeLessThanOrEqual(1);
          }
          expect(longestRun(after, 'b')).toBe(1);
          expect(longestRun(after, 'c')).toBe(1);
          expect(after.indexOf(leaver)).toBeLessThan(14);
        }
      }
    }
  });

  // Regression: carrying nginx's raw current weights across a change turned one pick of
  // difference between the light endpoints (100 at a total of 102) into 50 picks in a row once
  // the heavy endpoint left (total 2).
  it('does not burst a light endpoint when the heavy one leaves', () => {
    for (let before = 0; before <= 102; before++) {
      const all = endpoints('abc', [100, 1, 1]);
      const balancer = new WeightedRoundRobinBalancer(all, fromZero);
      sequence(() => balancer.pick(all, CTX), before);
      const lights = subset(all, 'bc');
      const picks = sequence(() => balancer.pick(lights, CTX), 20);
      expect(longestRun(picks, 'b')).toBeLessThanOrEqual(2);
      expect(longestRun(picks, 'c')).toBeLessThanOrEqual(2);
      expect(Math.abs(occurrences(picks, 'b') - 10)).toBeLessThanOrEqual(1);
    }
  });

  it('gives an endpoint that flaps faster than its turn its exact share, and starves no one', () => {
    for (const period of [2, 3, 5]) {
      const all = endpoints('abcd', [5, 1, 1, 1]);
      const withoutD = subset(all, 'abc');
      const balancer = new WeightedRoundRobinBalancer(all, fromZero);
      const owed = new Map<string, number>();
      const got = new Map<string, number>();
      for (let i = 0; i < 8000; i++) {
        const usable = i % period === 0 ? withoutD : all;
        const total = usable.reduce((sum, e) => sum + e.weight, 0);
        for (const e of usable) owed.set(e.address, (owed.get(e.address) ?? 0) + e.weight / total);
        const picked = balancer.pick(usable, CTX).address;
        got.set(picked, (got.get(picked) ?? 0) + 1);
      }
      for (const address of 'abcd') {
        expect(Math.abs((got.get(address) ?? 0) - (owed.get(address) ?? 0))).toBeLessThanOrEqual(2);
      }
    }
  });

  it('keeps every endpoint within two picks of its exact share through any churn of the usable set', () => {
    const random = seededRandom(7);
    for (let run = 0; run < 40; run++) {
      const size = 2 + Math.floor(random() * 8);
      const all: TestEndpoint[] = endpointsAt(
        Array.from({ length: size }, (_, i) => `10.0.0.${i}:80`),
        Array.from({ length: size }, () => 1 + Math.floor(random() * random() * 100)),
      );
      const balancer = new WeightedRoundRobinBalancer(all, fromZero);
      const lag = new Map<TestEndpoint, number>(all.map((e) => [e, 0]));
      for (let phase = 0; phase < 50; phase++) {
        let usable = all.filter(() => random() < 0.7);
        if (usable.length < 2) usable = all.slice(0, 2);
        const total = usable.reduce((sum, e) => sum + e.weight, 0);
        const picks = 1 + Math.floor(random() * 150);
        for (let i = 0; i < picks; i++) {
          const picked = balancer.pick(usable, CTX);
          for (const e of usable) lag.set(e, lag.get(e)! + e.weight / total - (e === picked ? 1 : 0));
        }
        for (const value of lag.values()) expect(Math.abs(value)).toBeLessThan(2);
      }
    }
  });

  it('returns a single candidate without disturbing the rotation of the others', () => {
    const all = endpoints('abc', [5, 1, 1]);
    const balancer = new WeightedRoundRobinBalancer(all, fromZero);
    const c = subset(all, 'c');
    let picks = sequence(() => balancer.pick(all, CTX), 3);
    for (let i = 0; i < 5; i++) expect(balancer.pick(c, CTX)).toBe(c[0]);
    picks += sequence(() => balancer.pick(all, CTX), 4);
    expect(picks).toBe('aabacaa');
  });

  it('fails loudly on an empty candidate list and on an endpoint it was not built with', () => {
    const all = endpoints('abc');
    const balancer = new WeightedRoundRobinBalancer(all, fromZero);
    expect(() => balancer.pick([], CTX)).toThrow(expect.objectContaining({ code: 'GW_ERR_UPSTREAM_UNAVAILABLE' }));
    const stranger = endpoints('z')[0]!;
    expect(() => balancer.pick([all[0]!, stranger], CTX)).toThrow(expect.objectContaining({ code: 'GW_ERR_INTERNAL' }));
  });
});
