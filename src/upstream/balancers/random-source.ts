// The one source of randomness every balancer draws from. Injected (default `Math.random`) so
// tests and simulations can replay a seeded sequence; balancers never call Math.random directly.

/**
 * Returns a uniformly distributed float in [0, 1), like `Math.random`. Called at most a few times
 * per pick and never for a single candidate; it must not allocate.
 */
export type RandomSource = () => number;

/** `Math.random`: V8's xorshift128+, fast, not cryptographic, which balancing does not need. */
export const defaultRandom: RandomSource = Math.random;

/**
 * `floor(random() * n)`, clamped to `n - 1` so a source that returns exactly 1 (Math.random never
 * does, a hand-written test source might) cannot index past the end. O(1). `n` must be ≥ 1.
 */
export function randomIndex(random: RandomSource, n: number): number {
  const i = Math.floor(random() * n);
  return i < n ? i : n - 1;
}
