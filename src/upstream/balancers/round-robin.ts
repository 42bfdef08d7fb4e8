// Round robin: plain rotation over the usable endpoints, ignoring weights.
// Cost per pick: O(1) while every endpoint is usable; O(log candidates) while some are ejected
// (binary search by build position, each probe an O(1) position lookup). No allocation.
//
// The rotation follows build order rather than a bare counter modulo `candidates.length`: when an
// endpoint is ejected or restored, a counter modulo the new length jumps to an arbitrary place,
// serving one endpoint twice in a row and skipping another. Remembering the build position of the
// last pick and taking the next usable endpoint after it keeps the rotation exact through changes:
// every usable endpoint once per round, never the same one twice in a row while two are usable.

import { EndpointIndex, throwNoCandidates } from './endpoint-index.js';
import type { RandomSource } from './random-source.js';
import { defaultRandom, randomIndex } from './random-source.js';
import type { BalancedEndpoint, Balancer, PickContext } from './types.js';

export class RoundRobinBalancer<E extends BalancedEndpoint = BalancedEndpoint> implements Balancer<E> {
  readonly name = 'round-robin';
  readonly #index: EndpointIndex;
  /** Build position of the last endpoint picked. */
  #last: number;

  constructor(endpoints: readonly E[], random: RandomSource = defaultRandom) {
    this.#index = new EndpointIndex(this.name, endpoints);
    // Start at a random position (as Envoy does): otherwise every worker process, and every pool
    // rebuilt by a reload, sends its first requests to the same first endpoint at the same moment.
    this.#last = endpoints.length > 0 ? randomIndex(random, endpoints.length) - 1 : -1;
  }

  pick(candidates: readonly E[], _ctx?: PickContext): E {
    const n = candidates.length;
    if (n <= 1) return candidates[0] ?? throwNoCandidates();
    const size = this.#index.size;
    if (n === size) {
      // Everything usable: candidates[i] is endpoint i.
      const next = this.#last + 1 < size ? this.#last + 1 : 0;
      this.#last = next;
      return candidates[next]!; // next < size === n
    }
    // Some endpoints are out. Candidates are sorted by build position (pool contract), so the
    // first one after the last pick is found by binary search; none after it means wrap around.
    const last = this.#last;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#index.positionOf(candidates[mid]!, mid) <= last) lo = mid + 1;
      else hi = mid;
    }
    const at = lo < n ? lo : 0;
    const chosen = candidates[at]!; // at < n
    this.#last = this.#index.positionOf(chosen, at);
    return chosen;
  }
}
