// The balancer factory: config name → algorithm. One file per algorithm (Traefik's layout); this
// file only chooses. Called once per pool per snapshot, never on a request.

import type { BalancerName } from '../../config/types.js';
import { GatewayError } from '../../errors.js';
import { LeastRequestBalancer } from './least-request.js';
import { RandomBalancer } from './random.js';
import type { RandomSource } from './random-source.js';
import { defaultRandom } from './random-source.js';
import { RoundRobinBalancer } from './round-robin.js';
import type { BalancedEndpoint, Balancer } from './types.js';
import { WeightedRoundRobinBalancer } from './weighted-round-robin.js';

export type { BalancedEndpoint, Balancer, PickContext } from './types.js';
export type { RandomSource } from './random-source.js';
export { defaultRandom } from './random-source.js';
export { LeastRequestBalancer } from './least-request.js';
export { RandomBalancer } from './random.js';
export { RoundRobinBalancer } from './round-robin.js';
export { WeightedRoundRobinBalancer } from './weighted-round-robin.js';

export interface BalancerOptions {
  /**
   * Randomness for every algorithm: the start of round-robin and weighted-round-robin, the draws of
   * least-request and random. Default `Math.random`.
   */
  readonly random?: RandomSource;
}

/**
 * Builds the balancer named in an upstream's config over the pool's full endpoint list.
 * Throws `GW_ERR_CONFIG_INVALID` for a weight that is not a finite number > 0 or an address listed
 * twice, and `GW_ERR_CONFIG_UNSUPPORTED` for an algorithm not implemented yet.
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
    case 'consistent-hash':
      throw new GatewayError('GW_ERR_CONFIG_UNSUPPORTED', [`balancer "${name}"`]);
    default: {
      // Unreachable for typed callers; guards a name that slipped past config validation.
      const unknown: never = name;
      throw new GatewayError('GW_ERR_CONFIG_INVALID', [`unknown balancer "${String(unknown)}"`]);
    }
  }
}
