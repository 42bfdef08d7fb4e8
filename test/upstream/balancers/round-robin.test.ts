import { describe, expect, it } from 'vitest';
import { RoundRobinBalancer } from '../../../src/upstream/balancers/round-robin.js';
import { CTX, countOf, endpoints, scriptedRandom, seededRandom, sequence, subset, tally } from './support.js';

describe('RoundRobinBalancer', () => {
  it('spreads 3000 picks over 3 endpoints exactly evenly', () => {
    const all = endpoints('abc');
    const balancer = new RoundRobinBalancer(all);
    const counts = tally(() => balancer.pick(all, CTX), 3000);
    for (const address of 'abc') expect(countOf(counts, address)).toBe(1000);
  });

  it('rotates in list order and ignores weights', () => {
    const all = endpoints('abc', [5, 1, 1]);
    const balancer = new RoundRobinBalancer(all, scriptedRandom([0]));
    expect(sequence(() => balancer.pick(all, CTX), 7)).toBe('abcabca');
  });

  it('starts the rotation at a random endpoint, so workers and reloads do not all hit the first', () => {
    const all = endpoints('abcd');
    expect(sequence(() => new RoundRobinBalancer(all, scriptedRandom([0.5])).pick(all, CTX), 1)).toBe('c');
    expect(sequence(() => new RoundRobinBalancer(all, scriptedRandom([0.99])).pick(all, CTX), 1)).toBe('d');
  });

  it('keeps the rotation when an endpoint is ejected and restored', () => {
    const all = endpoints('abcd');
    const balancer = new RoundRobinBalancer(all, scriptedRandom([0]));
    expect(sequence(() => balancer.pick(all, CTX), 2)).toBe('ab');
    // c ejected right after b: the next usable after b is d, then the rotation wraps.
    const withoutC = subset(all, 'abd');
    expect(sequence(() => balancer.pick(withoutC, CTX), 4)).toBe('dabd');
    // c restored after d: the rotation continues at a, and c takes its turn after b.
    expect(sequence(() => balancer.pick(all, CTX), 5)).toBe('abcda');
    // The last picked (a) ejected: b comes next, nothing skipped.
    const withoutA = subset(all, 'bcd');
    expect(sequence(() => balancer.pick(withoutA, CTX), 3)).toBe('bcd');
  });

  it('never repeats an endpoint and serves every usable one once per round while the set changes', () => {
    const all = endpoints('abcdefgh');
    const random = seededRandom(42);
    const balancer = new RoundRobinBalancer(all);
    let previous: string | null = null;
    for (let phase = 0; phase < 500; phase++) {
      let usable = all.filter(() => random() < 0.6);
      if (usable.length < 2) usable = all.slice(0, 2);
      // Within a phase: each round of usable.length picks serves each usable endpoint once…
      const firstRound = sequence(() => balancer.pick(usable, CTX), usable.length);
      const order = usable.map((e) => e.address).join('');
      expect([...firstRound].sort().join('')).toBe(order);
      // …in list order (a rotation of it), and never the same endpoint twice in a row, not even
      // across the change.
      expect(order + order).toContain(firstRound);
      const picks = previous === null ? firstRound : previous + firstRound;
      for (let i = 1; i < picks.length; i++) expect(picks[i]).not.toBe(picks[i - 1]);
      previous = firstRound.at(-1) ?? null;
    }
  });

  it('returns a single candidate', () => {
    const all = endpoints('abc');
    const balancer = new RoundRobinBalancer(all);
    const only = all[1]!;
    for (let i = 0; i < 3; i++) expect(balancer.pick([only], CTX)).toBe(only);
  });

  it('builds over an empty endpoint list (discovery not resolved yet)', () => {
    expect(() => new RoundRobinBalancer([])).not.toThrow();
  });

  it('fails loudly on an empty candidate list and on an endpoint it was not built with', () => {
    const all = endpoints('abc');
    const balancer = new RoundRobinBalancer(all);
    expect(() => balancer.pick([], CTX)).toThrow(expect.objectContaining({ code: 'GW_ERR_UPSTREAM_UNAVAILABLE' }));
    const stranger = endpoints('z')[0]!;
    expect(() => balancer.pick([all[0]!, stranger], CTX)).toThrow(expect.objectContaining({ code: 'GW_ERR_INTERNAL' }));
  });
});
