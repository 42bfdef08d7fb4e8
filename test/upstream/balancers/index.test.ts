import { describe, expect, it } from 'vitest';
import type { BalancerName } from '../../../src/config/types.js';
import { GatewayError } from '../../../src/errors.js';
import {
  ConsistentHashBalancer,
  createBalancer,
  LeastRequestBalancer,
  PeakEwmaBalancer,
  RandomBalancer,
  RoundRobinBalancer,
  WeightedRoundRobinBalancer,
} from '../../../src/upstream/balancers/index.js';
import { CTX, endpoints, fixedLatency, forbiddenRandom, scriptedRandom, sequence } from './support.js';

function thrown(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    if (err instanceof GatewayError) return err;
    throw err;
  }
  throw new Error('expected a GatewayError');
}

describe('createBalancer', () => {
  it.each([
    ['round-robin', RoundRobinBalancer],
    ['weighted-round-robin', WeightedRoundRobinBalancer],
    ['least-request', LeastRequestBalancer],
    ['random', RandomBalancer],
    ['peak-ewma', PeakEwmaBalancer],
    ['consistent-hash', ConsistentHashBalancer],
  ] as const)('builds %s, named as in config, able to pick', (name, type) => {
    const all = endpoints('abc', [1, 2, 3]);
    const balancer = createBalancer(name, all);
    expect(balancer).toBeInstanceOf(type);
    expect(balancer.name).toBe(name);
    expect(all).toContain(balancer.pick(all, CTX));
    expect(balancer.pick([all[1]!], CTX)).toBe(all[1]);
  });

  it('builds consistent-hash keyed by the request\'s hash key', () => {
    const all = endpoints('abcd');
    const balancer = createBalancer('consistent-hash', all, { random: forbiddenRandom });
    const chosen = balancer.pick(all, { hashKey: '203.0.113.7' });
    for (let i = 0; i < 20; i++) expect(balancer.pick(all, { hashKey: '203.0.113.7' })).toBe(chosen);
  });

  it('refuses a name outside BalancerName (config validation bypassed)', () => {
    const err = thrown(() => createBalancer('fastest' as BalancerName, endpoints('ab')));
    expect(err.code).toBe('GW_ERR_CONFIG_INVALID');
  });

  it('passes the injected random source to the algorithms that draw', () => {
    const all = endpoints('abcd');
    // round-robin starts at floor(0.5 × 4) = c; random picks floor(0.3 × 4) = b.
    expect(sequence(() => createBalancer('round-robin', all, { random: scriptedRandom([0.5]) }).pick(all, CTX), 1)).toBe('c');
    expect(createBalancer('random', all, { random: scriptedRandom([0.3]) }).pick(all, CTX).address).toBe('b');
    // weighted-round-robin starts floor(0.3 × 7) = 2 picks into a a b a c a a: b comes next.
    const weighted = endpoints('abc', [5, 1, 1]);
    expect(createBalancer('weighted-round-robin', weighted, { random: scriptedRandom([0.3]) }).pick(weighted, CTX).address).toBe('b');
    all[3]!.inFlight = 5;
    // least-request draws i = floor(0.9 × 4) = 3 (d), j = floor(0 × 3) = 0 (a): a wins.
    expect(createBalancer('least-request', all, { random: scriptedRandom([0.9, 0]) }).pick(all, CTX).address).toBe('a');
    // peak-ewma draws the same pair (d, a) and, all latencies equal, a wins on d's 5 in flight.
    expect(createBalancer('peak-ewma', all, { random: scriptedRandom([0.9, 0]) }).pick(all, CTX).address).toBe('a');
    // consistent-hash without a key: a random slot; 0 is slot 0, whoever owns it.
    const hashed = createBalancer('consistent-hash', all, { random: scriptedRandom([0]) });
    expect(all).toContain(hashed.pick(all, CTX));
  });

  it('passes the injected clock to peak-ewma, which reads the estimates at that time', () => {
    const all = endpoints('ab');
    all[0]!.latency = { costMs: (now: number): number => (now < 1000 ? 1 : 100) }; // a slows down at t = 1 s
    all[1]!.latency = fixedLatency(10);
    let now = 0;
    const balancer = createBalancer('peak-ewma', all, { random: forbiddenRandom, now: () => now });
    expect(balancer.pick(all, CTX).address).toBe('a');
    now = 1000;
    expect(balancer.pick(all, CTX).address).toBe('b');
  });

  it.each(['round-robin', 'weighted-round-robin', 'least-request', 'random', 'peak-ewma', 'consistent-hash'] as const)(
    '%s accepts an empty endpoint list (discovery not resolved yet)',
    (name) => {
      expect(() => createBalancer(name, [])).not.toThrow();
    },
  );

  describe.each(['round-robin', 'weighted-round-robin', 'least-request', 'random', 'peak-ewma', 'consistent-hash'] as const)(
    '%s validates its endpoints when built, never on a request',
    (name) => {
      it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY])('rejects weight %s', (weight) => {
        const err = thrown(() => createBalancer(name, endpoints('ab', [1, weight])));
        expect(err.code).toBe('GW_ERR_CONFIG_INVALID');
        expect(err.message).toContain('endpoint b has weight');
      });

      it('rejects an address listed twice', () => {
        const twice = [...endpoints('ab'), ...endpoints('a')];
        const err = thrown(() => createBalancer(name, twice));
        expect(err.code).toBe('GW_ERR_CONFIG_INVALID');
        expect(err.message).toContain('endpoint a is listed more than once');
      });

      it('accepts fractional weights', () => {
        const all = endpoints('ab', [0.5, 1.5]);
        expect(all).toContain(createBalancer(name, all).pick(all, CTX));
      });
    },
  );
});
