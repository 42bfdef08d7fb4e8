import type { BalancedEndpoint } from './balancers/types.js';
import type { Endpoint } from './endpoint.js';
import type { PeakEwma } from './latency.js';

/**
 * An endpoint as one snapshot sees it: the long-lived Endpoint plus this snapshot's weight.
 * Keeping the weight here lets a reload change weights without touching the live Endpoint that the
 * previous snapshot is still serving with.
 */
export class PoolMember implements BalancedEndpoint {
  readonly endpoint: Endpoint;
  readonly weight: number;
  readonly address: string;

  constructor(endpoint: Endpoint, weight: number) {
    this.endpoint = endpoint;
    this.weight = weight;
    this.address = endpoint.address;
  }

  get inFlight(): number {
    return this.endpoint.inFlight;
  }

  get latency(): PeakEwma {
    return this.endpoint.latency;
  }
}
