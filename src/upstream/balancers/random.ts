// Weighted random: each pick draws an endpoint with probability weight / sum(weights) of the
// usable ones, independently of every other pick (uniform when all weights are equal).
// Cost per pick: one random draw, and then
//   - all weights equal: O(1) (an index, no scan);
//   - unequal, every endpoint usable: O(log candidates), binary search over prefix sums computed
//     once at construction;
//   - unequal, some ejected: O(candidates), one pass summing then one walking the weights (the
//     prefix sums of an arbitrary subset cannot be precomputed without per-subset state).
// No allocation. Stateless between picks, so it needs nothing to stay fair when the set changes.

import { EndpointIndex, throwNoCandidates } from './endpoint-index.js';
import type { RandomSource } from './random-source.js';
import { defaultRandom, randomIndex } from './random-source.js';
import type { BalancedEndpoint, Balancer, PickContext } from './types.js';

export class RandomBalancer<E extends BalancedEndpoint = BalancedEndpoint> implements Balancer<E> {
  readonly name = 'random';
  readonly #random: RandomSource;
  readonly #size: number;
  readonly #uniform: boolean;
  /** cumulative[i] = sum of the weights of endpoints 0..i, in build order. */
  readonly #cumulative: Float64Array;
  readonly #total: number;

  constructor(endpoints: readonly E[], random: RandomSource = defaultRandom) {
    const index = new EndpointIndex(this.name, endpoints);
    this.#random = random;
    this.#size = index.size;
    this.#uniform = index.uniformWeights;
    this.#total = index.totalWeight;
    this.#cumulative = new Float64Array(index.size);
    let running = 0;
    for (let i = 0; i < index.size; i++) {
      running += index.weights[i]!;
      this.#cumulative[i] = running;
    }
  }

  pick(candidates: readonly E[], _ctx?: PickContext): E {
    const n = candidates.length;
    if (n <= 1) return candidates[0] ?? throwNoCandidates();
    if (this.#uniform) return candidates[randomIndex(this.#random, n)]!; // index < n

    if (n === this.#size) {
      // Everything usable, so candidates[i] is endpoint i: find the first prefix sum above x.
      const cumulative = this.#cumulative;
      const x = this.#random() * this.#total;
      let lo = 0;
      let hi = n - 1; // the last one absorbs x rounding up to the total
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cumulative[mid]! <= x) lo = mid + 1;
        else hi = mid;
      }
      return candidates[lo]!; // lo ≤ n - 1
    }

    // A subset: the weights of the candidates themselves (fixed for this snapshot's members).
    let total = 0;
    for (let i = 0; i < n; i++) total += candidates[i]!.weight;
    let x = this.#random() * total;
    for (let i = 0; i < n - 1; i++) {
      const candidate = candidates[i]!;
      x -= candidate.weight;
      if (x < 0) return candidate;
    }
    return candidates[n - 1]!; // also absorbs floating-point rounding at the very top
  }
}
