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
  /** Forgotten endpoints whose close (which waits for their requests) has not finished. */
  readonly #closing = new Set<Endpoint>();
  /** Off for the first configuration: at start every endpoint is new, so none is warming. */
  #warmNewEndpoints = false;

  /** Returns the endpoint for this pool and origin, creating it when new. */
  acquire(upstream: UpstreamConfig, url: string): Endpoint {
    // Connection-level options are part of the identity: changing them needs a new undici Pool.
    const key = `${upstream.name}|${url}|${upstream.timeouts.connectMs}|${upstream.maxConnectionsPerEndpoint}`;
    let endpoint = this.#live.get(key);
    // Dropped by a reload or discovery and listed again before it closed: it carries on.
    if (endpoint !== undefined) endpoint.draining = false;
    if (endpoint === undefined) {
      endpoint = new Endpoint(upstream.name, url, key, {
        connectTimeoutMs: upstream.timeouts.connectMs,
        maxConnections: upstream.maxConnectionsPerEndpoint,
        keepAliveTimeoutMs: UPSTREAM_KEEP_ALIVE_MS,
      });
      if (this.#warmNewEndpoints) endpoint.warmingSince = performance.now();
      this.#live.set(key, endpoint);
    }
    return endpoint;
  }

  /** From now on, endpoints created by a reload or discovery start warming (slow start). */
  warmNewEndpoints(): void {
    this.#warmNewEndpoints = true;
  }

  /**
   * Marks draining every endpoint the current snapshot does not list, and forgets and returns
   * those that no replaced snapshot still serving requests lists either: nothing can pick them
   * any more, so the caller closes them (undici lets their requests in flight finish).
   */
  collect(current: ReadonlySet<Endpoint>, stillReachable: ReadonlySet<Endpoint>): Endpoint[] {
    const unreachable: Endpoint[] = [];
    for (const [key, endpoint] of this.#live) {
      if (current.has(endpoint)) continue;
      endpoint.draining = true;
      if (!stillReachable.has(endpoint)) {
        this.#live.delete(key);
        unreachable.push(endpoint);
      }
    }
    return unreachable;
  }

  /** Closes a forgotten endpoint, keeping it in `draining()` until its last request ended. */
  retire(endpoint: Endpoint): Promise<void> {
    this.#closing.add(endpoint);
    return endpoint.close().finally(() => this.#closing.delete(endpoint));
  }

  /** Endpoints no snapshot lists any more that may still be finishing requests. */
  draining(): Endpoint[] {
    const out = [...this.#closing];
    for (const endpoint of this.#live.values()) if (endpoint.draining) out.push(endpoint);
    return out;
  }

  async closeAll(): Promise<void> {
    const all = [...this.#live.values()];
    this.#live.clear();
    await Promise.all(all.map((e) => e.close()));
  }
}
