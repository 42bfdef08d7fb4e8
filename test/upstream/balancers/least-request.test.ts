import { describe, expect, it } from 'vitest';
import { LeastRequestBalancer } from '../../../src/upstream/balancers/least-request.js';
import type { Balancer } from '../../../src/upstream/balancers/types.js';
import type { TestEndpoint } from './support.js';
import {
  binomialTolerance,
  CTX,
  countOf,
  endpoints,
  forbiddenRandom,
  scriptedRandom,
  subset,
  tally,
} from './support.js';

/**
 * Discrete-time load: every tick `arrivals` requests are picked and each holds its endpoint for
 * `latency[i]` ticks (inFlight up while it runs). Returns picks per address.
 */
function simulate(
  balancer: Balancer<TestEndpoint>,
  all: TestEndpoint[],
  latency: readonly number[],
  ticks: number,
  arrivals: number,
): Map<string, number> {
  const finishes = all.map((): number[] => []); // per endpoint, in order (fixed latency)
  const next = all.map(() => 0);
  const picks = new Map<string, number>();
  for (let tick = 0; tick < ticks; tick++) {
    all.forEach((endpoint, i) => {
      const queue = finishes[i]!;
      while (next[i]! < queue.length && queue[next[i]!]! <= tick) {
        next[i]!++;
        endpoint.inFlight--;
      }
    });
    for (let k = 0; k < arrivals; k++) {
      const chosen = balancer.pick(all, CTX);
      const i = all.indexOf(chosen);
      chosen.inFlight++;
      finishes[i]!.push(tick + latency[i]!);
      picks.set(chosen.address, (picks.get(chosen.address) ?? 0) + 1);
    }
  }
  return picks;
}

describe('LeastRequestBalancer', () => {
  it('returns a single candidate without drawing', () => {
    const all = endpoints('abc');
    const balancer = new LeastRequestBalancer(all, forbiddenRandom);
    expect(balancer.pick(subset(all, 'b'), CTX)).toBe(all[1]);
  });

  it('with two candidates, sends to the less loaded without drawing', () => {
    const all = endpoints('ab');
    all[0]!.inFlight = 3;
    all[1]!.inFlight = 1;
    const balancer = new LeastRequestBalancer(all, forbiddenRandom);
    expect(balancer.pick(all, CTX)).toBe(all[1]);
    all[1]!.inFlight = 4;
    expect(balancer.pick(all, CTX)).toBe(all[0]);
  });

  it('breaks ties with a coin flip, not always the first (no herding)', () => {
    const all = endpoints('ab');
    expect(new LeastRequestBalancer(all, scriptedRandom([0.3])).pick(all, CTX)).toBe(all[0]);
    expect(new LeastRequestBalancer(all, scriptedRandom([0.7])).pick(all, CTX)).toBe(all[1]);

    const n = 20_000;
    const balancer = new LeastRequestBalancer(all);
    const counts = tally(() => balancer.pick(all, CTX), n);
    expect(Math.abs(countOf(counts, 'a') - n / 2)).toBeLessThanOrEqual(binomialTolerance(n, 0.5));
  });

  it('draws two distinct candidates: the second skips over the first', () => {
    const all = endpoints('abcd');
    all.forEach((e, i) => (e.inFlight = 3 - i)); // a 3, b 2, c 1, d 0: the lower of a pair wins
    // i = floor(0.5 × 4) = 2 (c); j = floor(0.5 × 3) = 1 (b): c beats b.
    expect(new LeastRequestBalancer(all, scriptedRandom([0.5, 0.5])).pick(all, CTX).address).toBe('c');
    // i = 2 (c); j = floor(0.7 × 3) = 2, not c itself but the next one, d: d beats c.
    expect(new LeastRequestBalancer(all, scriptedRandom([0.5, 0.7])).pick(all, CTX).address).toBe('d');
  });

  it('never picks the most loaded of three distinct loads, and picks the least loaded 2/3 of the time', () => {
    const all = endpoints('abc');
    all.forEach((e, i) => (e.inFlight = i)); // a 0, b 1, c 2
    const n = 30_000;
    const balancer = new LeastRequestBalancer(all);
    const counts = tally(() => balancer.pick(all, CTX), n);
    expect(countOf(counts, 'c')).toBe(0); // c could only win against itself
    // a wins whenever it is one of the two drawn: 2 of the 3 pairs.
    expect(Math.abs(countOf(counts, 'a') - (2 * n) / 3)).toBeLessThanOrEqual(binomialTolerance(n, 2 / 3));
  });

  it('sends nothing to an endpoint stuck at 10 in flight while two idle ones exist', () => {
    const all = endpoints('abc');
    all[1]!.inFlight = 10;
    const balancer = new LeastRequestBalancer(all);
    const counts = tally(() => balancer.pick(all, CTX), 3000);
    expect(countOf(counts, 'b')).toBe(0);
    expect(countOf(counts, 'a') + countOf(counts, 'c')).toBe(3000);
  });

  it('sends clearly less to a slow endpoint as in-flight counts rise and fall', () => {
    // c answers in 20 ticks, a and b in 2: by Little's law c accumulates in-flight requests ten
    // times faster per request. Round robin would give it a third; least request gives it about
    // 6 % (measured over many runs: 5.9–6.2 %), so "under 15 %" has a wide margin.
    const all = endpoints('abc');
    const picks = simulate(new LeastRequestBalancer(all), all, [2, 2, 20], 2000, 3);
    expect(countOf(picks, 'c') / 6000).toBeLessThan(0.15);
    expect(countOf(picks, 'a') / 6000).toBeGreaterThan(0.4);
    expect(countOf(picks, 'b') / 6000).toBeGreaterThan(0.4);
  });

  describe('with unequal weights', () => {
    it('compares inFlight / weight, without drawing for two candidates', () => {
      const all = endpoints('ab', [1, 3]);
      const balancer = new LeastRequestBalancer(all, forbiddenRandom);
      all[0]!.inFlight = 1;
      all[1]!.inFlight = 2; // 1/1 > 2/3: b
      expect(balancer.pick(all, CTX)).toBe(all[1]);
      all[1]!.inFlight = 4; // 1/1 < 4/3: a
      expect(balancer.pick(all, CTX)).toBe(all[0]);
    });

    it('splits ties in proportion to weight, so an idle pool still follows the weights', () => {
      const all = endpoints('ab', [1, 3]);
      all[0]!.inFlight = 1;
      all[1]!.inFlight = 3; // 1/1 = 3/3
      // a's share of the coin is 1 / (1 + 3).
      expect(new LeastRequestBalancer(all, scriptedRandom([0.2])).pick(all, CTX)).toBe(all[0]);
      expect(new LeastRequestBalancer(all, scriptedRandom([0.3])).pick(all, CTX)).toBe(all[1]);

      all[0]!.inFlight = 0;
      all[1]!.inFlight = 0;
      const n = 20_000;
      const balancer = new LeastRequestBalancer(all);
      const counts = tally(() => balancer.pick(all, CTX), n);
      expect(Math.abs(countOf(counts, 'b') - 0.75 * n)).toBeLessThanOrEqual(binomialTolerance(n, 0.75));
    });

    it('under load, holds in-flight requests in proportion to weight', () => {
      // Same latency everywhere: each endpoint's share of requests follows its share of in-flight
      // requests, which the inFlight / weight comparison keeps at 1:3 (measured: exactly 3.0).
      const all = endpoints('ab', [1, 3]);
      const picks = simulate(new LeastRequestBalancer(all), all, [5, 5], 2000, 4);
      const ratio = countOf(picks, 'b') / countOf(picks, 'a');
      expect(ratio).toBeGreaterThan(2.7);
      expect(ratio).toBeLessThan(3.3);
    });

    it('favours the heavier endpoint among more than two (the pair is drawn uniformly)', () => {
      // Weights 1,1,2: two uniform choices get c close to, not exactly, half (measured 47 %).
      const all = endpoints('abc', [1, 1, 2]);
      const picks = simulate(new LeastRequestBalancer(all), all, [5, 5, 5], 2000, 4);
      const c = countOf(picks, 'c') / 8000;
      expect(c).toBeGreaterThan(0.4);
      expect(c).toBeLessThan(0.55);
    });
  });

  it('fails loudly on an empty candidate list', () => {
    const balancer = new LeastRequestBalancer(endpoints('ab'));
    expect(() => balancer.pick([], CTX)).toThrow(expect.objectContaining({ code: 'GW_ERR_UPSTREAM_UNAVAILABLE' }));
  });
});
