// Shared by the balancer tests: plain endpoints, a seeded random source, counting, and the
// binomial tolerance that statistical assertions use.

import type { RandomSource } from '../../../src/upstream/balancers/random-source.js';
import type { BalancedEndpoint, LatencyEstimate, PickContext } from '../../../src/upstream/balancers/types.js';
import { PeakEwma } from '../../../src/upstream/latency.js';

/**
 * A plain endpoint whose inFlight and latency estimate a test may change. The estimate starts as
 * a fresh PeakEwma (DEFAULT_RTT_MS until a test feeds it samples); `fixedLatency` replaces it.
 */
export interface TestEndpoint extends BalancedEndpoint {
  inFlight: number;
  latency: LatencyEstimate;
}

/** A latency estimate a test sets directly: `costMs` returns `ms` whatever the time. */
export interface FixedLatency extends LatencyEstimate {
  ms: number;
}

export function fixedLatency(ms: number): FixedLatency {
  return {
    ms,
    costMs(): number {
      return this.ms;
    },
  };
}

export const CTX: PickContext = { hashKey: null };

/** Endpoints named by `names` ("a", "b", …) with the given weights (default 1 each). */
export function endpoints(names: string, weights?: readonly number[]): TestEndpoint[] {
  return [...names].map((name, i) => ({ address: name, weight: weights?.[i] ?? 1, inFlight: 0, latency: new PeakEwma() }));
}

/** Endpoints with the given addresses ("10.0.0.1:80", …) and weights (default 1 each). */
export function endpointsAt(addresses: readonly string[], weights?: readonly number[]): TestEndpoint[] {
  return addresses.map((address, i) => ({ address, weight: weights?.[i] ?? 1, inFlight: 0, latency: new PeakEwma() }));
}

/** The addresses picked, concatenated: "aabacaa". */
export function sequence(pick: () => BalancedEndpoint, count: number): string {
  let out = '';
  for (let i = 0; i < count; i++) out += pick().address;
  return out;
}

/** How many times each address was picked. */
export function tally(pick: () => BalancedEndpoint, count: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const address = pick().address;
    counts.set(address, (counts.get(address) ?? 0) + 1);
  }
  return counts;
}

export function countOf(counts: ReadonlyMap<string, number>, address: string): number {
  return counts.get(address) ?? 0;
}

/**
 * `sigmas` standard deviations of a binomial count (n draws, probability p). At 6 σ a two-sided
 * check fails by chance about twice in a billion runs, so statistical tests run on the default
 * Math.random source and still never flake.
 */
export function binomialTolerance(n: number, p: number, sigmas = 6): number {
  return sigmas * Math.sqrt(n * p * (1 - p));
}

/** mulberry32: a small deterministic PRNG for tests that need a reproducible sequence. */
export function seededRandom(seed: number): RandomSource {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Replays the given values, then fails: proves how many draws a pick makes. */
export function scriptedRandom(values: readonly number[]): RandomSource {
  let i = 0;
  return () => {
    const value = values[i++];
    if (value === undefined) throw new Error(`random source called ${i} times, scripted for ${values.length}`);
    return value;
  };
}

/** A source that must never be called. */
export const forbiddenRandom: RandomSource = () => {
  throw new Error('random source called');
};

/** The endpoints of `all` named in `names`, in list order: a usable subset as the pool passes it. */
export function subset<E extends BalancedEndpoint>(all: readonly E[], names: string): E[] {
  return all.filter((e) => names.includes(e.address));
}

/** How many times `address` appears in a picks string from `sequence`. */
export function occurrences(picks: string, address: string): number {
  let count = 0;
  for (const picked of picks) if (picked === address) count++;
  return count;
}
