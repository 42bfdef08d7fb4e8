// The balancer factory: config name → algorithm. One file per algorithm (Traefik's layout); this
// file only chooses. Called once per pool per snapshot, never on a request.

import type { BalancerName } from '../../config/types.js';
import { GatewayError } from '../../errors.js';
import { ConsistentHashBalancer } from './consistent-hash.js';
import { LeastRequestBalancer } from './least-request.js';
import type { Clock } from './peak-ewma.js';
import { defaultClock, PeakEwmaBalancer } from './peak-ewma.js';
import { RandomBalancer } from './random.js';
import type { RandomSource } from './random-source.js';
import { defaultRandom } from './random-source.js';
import { RoundRobinBalancer } from './round-robin.js';
import type { BalancedEndpoint, Balancer } from './types.js';
import { WeightedRoundRobinBalancer } from './weighted-round-robin.js';

export type { BalancedEndpoint, Balancer, LatencyEstimate, PickContext } from './types.js';
export type { RandomSource } from './random-source.js';
export { defaultRandom } from './random-source.js';
export { ConsistentHashBalancer, hash32, MAGLEV_TABLE_SIZE } from './consistent-hash.js';
export { LeastRequestBalancer } from './least-request.js';
export type { Clock } from './peak-ewma.js';
export { defaultClock, PeakEwmaBalancer } from './peak-ewma.js';
export { RandomBalancer } from './random.js';
export { RoundRobinBalancer } from './round-robin.js';
export { WeightedRoundRobinBalancer } from './weighted-round-robin.js';

export interface BalancerOptions {
  /**
   * Randomness for every algorithm: the start of round-robin and weighted-round-robin, the draws of
   * least-request, peak-ewma and random, consistent-hash's slot for a request without a key.
   * Default `Math.random`.
   */
  readonly random?: RandomSource;
  /**
   * Monotonic ms at which peak-ewma reads the latency estimates: the clock the endpoints stamp
   * their samples with. Default `performance.now()`.
   */
  readonly now?: Clock;
}

/**
 * Builds the balancer named in an upstream's config over the pool's full endpoint list.
 * Throws `GW_ERR_CONFIG_INVALID` for a weight that is not a finite number > 0, an address listed
 * twice, or a name outside BalancerName.
 */
export function createBalancer<E extends BalancedEndpoint>(
  name: BalancerName,
  endpoints: readonly E[],
  options: BalancerOptions = {},
): Balancer<E> {
  const random = options.random ?? defaultRandom;
  switch (name) {
    case 'round-robin':
      return new RoundRobinBalancer(endpoints, random);
    case 'weighted-round-robin':
      return new WeightedRoundRobinBalancer(endpoints, random);
    case 'least-request':
      return new LeastRequestBalancer(endpoints, random);
    case 'random':
      return new RandomBalancer(endpoints, random);
    case 'peak-ewma':
      return new PeakEwmaBalancer(endpoints, random, options.now ?? defaultClock);
    case 'consistent-hash':
      return new ConsistentHashBalancer(endpoints, random);
    default: {
      // Unreachable for typed callers; guards a name that slipped past config validation.
      const unknown: never = name;
      throw new GatewayError('GW_ERR_CONFIG_INVALID', [`unknown balancer "${String(unknown)}"`]);
    }
  }
}
