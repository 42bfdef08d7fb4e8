// Peak EWMA (Finagle's `Balancers.p2cPeakEwma`, Linkerd's default): the power of two choices
// like least-request, but each of the two is scored by how long a new request would expect to
// take there — its latency estimate × (requests in flight + 1) — and the cheaper one wins. The
// estimate is the endpoint's PeakEwma (src/upstream/latency.ts): it jumps to any slow response at
// once and decays over ~10 s, and, while an endpoint gets no responses, slides towards 0 so an
// endpoint written off as slow is probed again (the header of latency.ts explains both).
// Cost per pick: O(1) — at most two random draws (three on a tie), one clock read, two
// `costMs` reads (one Math.exp each), no scan, no allocation.
//
// Least request balances in-flight counts, which only tells a slow endpoint apart once requests
// pile up on it; peak EWMA prefers the fast endpoint even at low concurrency, and still spreads
// load when the fast one's queue makes it the slower choice. An unmeasured endpoint costs
// DEFAULT_RTT_MS per request rather than 0, so a new endpoint is not sent a burst.
//
// Unequal weights: weight is read as capacity, so it divides the queue, not the latency:
//   cost = latency × (1 + inFlight / w),  w = weight / mean weight of the endpoints built with.
// With equal weights w = 1 and this is Finagle's latency × (inFlight + 1) exactly. Dividing the
// whole cost by weight instead would let the heavier endpoint win every idle comparison at equal
// latency (1 × L / 3 < 1 × L / 1), sending all low-concurrency traffic to the heaviest endpoint —
// the flaw least-request.ts avoids for the same reason. The latency estimate is already what that
// endpoint measurably delivers; its weight says how many requests it absorbs before a queue
// builds. Normalising by the mean keeps the score independent of the weights' scale (weights
// 1,3 and 10,30 balance alike). Equal scores (equal estimates and loads: an idle pool of
// unmeasured endpoints, say) are split at random in proportion to weight, as least-request does.

import { EndpointIndex } from './endpoint-index.js';
import type { RandomSource } from './random-source.js';
import { defaultRandom } from './random-source.js';
import { TwoChoicesBalancer } from './two-choices.js';
import type { BalancedEndpoint } from './types.js';

/**
 * Monotonic milliseconds, the clock the endpoints stamp their latency samples with. Injected so
 * simulations can drive time; it must not allocate.
 */
export type Clock = () => number;

/** performance.now(), called as a method (it throws when detached from `performance`). */
export const defaultClock: Clock = () => performance.now();

export class PeakEwmaBalancer<E extends BalancedEndpoint = BalancedEndpoint> extends TwoChoicesBalancer<E> {
  readonly name = 'peak-ewma';
  readonly #now: Clock;
  /** All weights equal: Finagle's score, ties split evenly. */
  readonly #uniform: boolean;
  /** Mean weight of the endpoints built with: weights are read relative to it. */
  readonly #meanWeight: number;

  constructor(endpoints: readonly E[], random: RandomSource = defaultRandom, now: Clock = defaultClock) {
    super(random);
    // Validates weights and addresses. Weights are then read from the candidates (fixed for the
    // snapshot this balancer belongs to), relative to the mean of the full list: not that of the
    // usable subset, so an ejection does not change how the others are scored.
    const index = new EndpointIndex(this.name, endpoints);
    this.#uniform = index.uniformWeights;
    this.#meanWeight = index.size > 0 ? index.totalWeight / index.size : 1;
    this.#now = now;
  }

  protected choose(a: E, b: E): E {
    const now = this.#now();
    if (this.#uniform) {
      const costA = a.latency.costMs(now) * (a.inFlight + 1);
      const costB = b.latency.costMs(now) * (b.inFlight + 1);
      if (costA !== costB) return costA < costB ? a : b;
      // Tie: a coin flip, not "the first", or endpoints earlier in the list would collect every
      // tie (all of them, while an idle pool is unmeasured).
      return this.random() < 0.5 ? a : b;
    }
    const mean = this.#meanWeight;
    const costA = a.latency.costMs(now) * (1 + (a.inFlight * mean) / a.weight);
    const costB = b.latency.costMs(now) * (1 + (b.inFlight * mean) / b.weight);
    if (costA !== costB) return costA < costB ? a : b;
    return this.splitTie(a, b);
  }
}
