// Least request by the power of two choices (Envoy's LEAST_REQUEST with its default choice_count
// of 2): draw two distinct candidates at random and send to the one with fewer requests in flight.
// Cost per pick: O(1) — at most two random draws (three on a tie), two reads of `inFlight`, no
// scan, no allocation.
//
// Why two random choices rather than the least loaded of all: a full scan costs O(candidates) on
// every request, and it herds — an endpoint that has just been restored or added shows 0 in
// flight to every worker process at once, and each sends it everything until its own count
// catches up. Two random choices already keep the most loaded endpoints out of almost every pick
// (Mitzenmacher's "power of two choices") while spreading the rest.
//
// Unequal weights: the candidate with the lower `inFlight / weight` wins — requests in flight per
// unit of weight, so an endpoint of weight 3 is "as loaded" as one of weight 1 with a third of its
// requests (nginx's least_conn compares the same ratio). The comparison is cross-multiplied
// (`a.inFlight * b.weight` vs `b.inFlight * a.weight`): no division, exact for integer counts.
// Envoy, when weights differ, leaves two choices for a weighted round robin over effective
// weights `weight / (inFlight + 1)`; scoring a pair by that instead would let the heavier endpoint
// win every idle comparison, sending all low-concurrency traffic to the heaviest endpoint. Here an
// idle (or otherwise tied) pair is split at random in proportion to weight, so light traffic still
// follows the weights (exactly so with two candidates; with more, the two are drawn uniformly and
// shares tend towards the weights without matching them exactly).

import { EndpointIndex } from './endpoint-index.js';
import type { RandomSource } from './random-source.js';
import { defaultRandom } from './random-source.js';
import { TwoChoicesBalancer } from './two-choices.js';
import type { BalancedEndpoint } from './types.js';

export class LeastRequestBalancer<E extends BalancedEndpoint = BalancedEndpoint> extends TwoChoicesBalancer<E> {
  readonly name = 'least-request';
  /** All weights equal: compare raw counts and split ties evenly. */
  readonly #uniform: boolean;

  constructor(endpoints: readonly E[], random: RandomSource = defaultRandom) {
    super(random);
    // Validates weights and addresses; only the uniformity flag is kept, weights are read from the
    // candidates (a PoolMember's weight is fixed for the snapshot this balancer belongs to).
    this.#uniform = new EndpointIndex(this.name, endpoints).uniformWeights;
  }

  protected choose(a: E, b: E): E {
    if (this.#uniform) {
      const difference = a.inFlight - b.inFlight;
      if (difference !== 0) return difference < 0 ? a : b;
      // Tie: a coin flip, not "the first", or endpoints earlier in the list would collect every
      // tie (all of them, whenever the pool is idle).
      return this.random() < 0.5 ? a : b;
    }
    const loadA = a.inFlight * b.weight; // a.inFlight / a.weight, scaled by a.weight * b.weight
    const loadB = b.inFlight * a.weight;
    if (loadA !== loadB) return loadA < loadB ? a : b;
    return this.splitTie(a, b);
  }
}
