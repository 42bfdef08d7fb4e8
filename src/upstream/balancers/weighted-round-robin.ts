// Smooth weighted round robin (nginx's `ngx_http_upstream_get_peer`): on every pick each candidate's
// current weight grows by its weight, the largest current weight wins, and the winner gives back
// the total. Weights 5,1,1 give a a b a c a a: each endpoint's share is exact over every cycle of
// `sum(weights)` picks and spread through it, never sent as a burst. Through ejections and
// restores each endpoint keeps its lag behind its share (see `#scale`), so a change of the usable
// set neither bursts nor starves anyone.
// Cost per pick: one O(candidates) pass of typed-array arithmetic while every endpoint is usable;
// while some are ejected, one more pass first (positions and the usable total). No allocation.
// State: two numbers per endpoint it was built with, so it is bounded by the pool's endpoint list.
// Construction: O(endpoints × min(total weight, 1024)) for the random start.

import { EndpointIndex, throwNoCandidates } from './endpoint-index.js';
import type { RandomSource } from './random-source.js';
import { defaultRandom } from './random-source.js';
import type { BalancedEndpoint, Balancer, PickContext } from './types.js';

// Bound on the random start (see the constructor): up to this many picks are replayed when a
// balancer is built, O(MAX_START_PHASE × endpoints) once per pool per snapshot.
const MAX_START_PHASE = 1024;

export class WeightedRoundRobinBalancer<E extends BalancedEndpoint = BalancedEndpoint> implements Balancer<E> {
  readonly name = 'weighted-round-robin';
  readonly #index: EndpointIndex;
  /** nginx's `current_weight`, by build position: one slot per endpoint built with, never more. */
  readonly #current: Float64Array;
  /**
   * The total weight each current weight is expressed in: that of the usable set at the
   * endpoint's last pick (0 before its first).
   *
   * On a steady set, current = total × (picks owed − picks had): `current / total` is the
   * endpoint's lag behind its share, in picks, within a pick or two of zero. nginx keeps the raw
   * number when the set changes, which changes what it means: after weights 100,1,1 lose the
   * 100, a difference of 100 between the two light endpoints — one pick — becomes fifty picks in a
   * row for one of them at a total of 2. Rescaling to the new total keeps every lag as it was:
   *  - endpoints that stay keep their place in the rotation (no restart, which would hand the
   *    first picks to the heaviest endpoint and, if the set changed often, starve light ones);
   *  - an ejected endpoint keeps its lag while out and comes back with it: a pick or two either
   *    way, never a burst or a drought, and one that flaps faster than its turn comes round still
   *    gets its share;
   *  - each pick hands out entitlements summing to one pick and takes one back, so the lags of
   *    all endpoints, present or not, always sum to zero: every endpoint stays within a couple of
   *    picks of its exact share over the whole life of the balancer, however the set changes.
   */
  readonly #scale: Float64Array;

  constructor(endpoints: readonly E[], random: RandomSource = defaultRandom) {
    this.#index = new EndpointIndex(this.name, endpoints);
    this.#current = new Float64Array(endpoints.length);
    this.#scale = new Float64Array(endpoints.length);
    // Start at a random point of the cycle, as Envoy seeds its weighted round robin: from zero,
    // every worker process — and every pool rebuilt by a reload — would walk a a b a c a a in
    // lockstep, so each light endpoint would get all workers' requests at the same moments.
    // A source returning 0 starts at nginx's beginning.
    if (endpoints.length > 1) {
      const phase = Math.floor(random() * Math.min(this.#index.totalWeight, MAX_START_PHASE));
      for (let k = 0; k < phase; k++) this.pick(endpoints);
    }
  }

  pick(candidates: readonly E[], _ctx?: PickContext): E {
    const n = candidates.length;
    // One candidate: nothing to balance, and no lag moves (it is owed the one pick it gets).
    if (n <= 1) return candidates[0] ?? throwNoCandidates();

    const index = this.#index;
    const weights = index.weights;
    const current = this.#current;
    const scale = this.#scale;
    const full = n === index.size; // then candidates[i] is endpoint i
    let total = index.totalWeight;
    if (!full) {
      total = 0;
      for (let i = 0; i < n; i++) {
        total += weights[index.positionOf(candidates[i]!, i)]!;
      }
    }

    let best = 0; // build position of the winner
    let bestAt = 0; // its index in candidates
    let bestWeight = -Infinity;
    for (let i = 0; i < n; i++) {
      const position = full ? i : index.positionOf(candidates[i]!, i);
      const from = scale[position]!;
      if (from !== total) {
        // The usable set's total changed since this endpoint's last pick: same lag, new total.
        // (A change that keeps the total needs nothing: the lags are already in its units.)
        current[position] = from > 0 ? (current[position]! * total) / from : 0;
        scale[position] = total;
      }
      const cw = current[position]! + weights[position]!;
      current[position] = cw;
      // Strictly greater: ties go to the earlier endpoint, as in nginx (gives a a b a c a a).
      if (cw > bestWeight) {
        bestWeight = cw;
        best = position;
        bestAt = i;
      }
    }
    current[best] = current[best]! - total;
    return candidates[bestAt]!; // bestAt < n
  }
}
