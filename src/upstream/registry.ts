import type { UpstreamConfig } from '../config/types.js';
import { Endpoint } from './endpoint.js';

// Upstream keep-alive kept below the common 60 s server default so the gateway, not the upstream,
// closes idle connections (avoids racing a request onto a socket the upstream is closing).
const UPSTREAM_KEEP_ALIVE_MS = 30_000;

/**
 * Owns every live Endpoint across snapshots. A compile asks for endpoints by identity; an
 * identity seen before gets the same object (same connections, counters, ejection state). After a
 * swap, endpoints no snapshot references any more are closed once the snapshots that might still
 * use them have finished their requests.
 */
export class EndpointRegistry {
  readonly #live = new Map<string, Endpoint>();

  /** Returns the endpoint for this pool and origin, creating it when new. */
  acquire(upstream: UpstreamConfig, url: string): Endpoint {
    // Connection-level options are part of the identity: changing them needs a new undici Pool.
    const key = `${upstream.name}|${url}|${upstream.timeouts.connectMs}|${upstream.maxConnectionsPerEndpoint}`;
    let endpoint = this.#live.get(key);
    if (endpoint === undefined) {
      endpoint = new Endpoint(upstream.name, url, key, {
        connectTimeoutMs: upstream.timeouts.connectMs,
        maxConnections: upstream.maxConnectionsPerEndpoint,
        keepAliveTimeoutMs: UPSTREAM_KEEP_ALIVE_MS,
      });
      this.#live.set(key, endpoint);
    }
    return endpoint;
  }

  /**
   * Forgets every endpoint not in `keep` and returns them, marked draining; the caller closes
   * them when no request can reach them any more.
   */
  release(keep: ReadonlySet<Endpoint>): Endpoint[] {
    const removed: Endpoint[] = [];
    for (const [key, endpoint] of this.#live) {
      if (!keep.has(endpoint)) {
        this.#live.delete(key);
        endpoint.state = 'draining';
        removed.push(endpoint);
      }
    }
    return removed;
  }

  async closeAll(): Promise<void> {
    const all = [...this.#live.values()];
    this.#live.clear();
    await Promise.all(all.map((e) => e.close()));
  }
}
