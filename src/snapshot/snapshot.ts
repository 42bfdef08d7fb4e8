import type { GatewayConfig, RouteConfig, RoutesConfig } from '../config/types.js';
import type { RequestFilter } from '../filters/filter.js';
import type { PathRewriter } from '../router/rewrite.js';
import type { RouteTable } from '../router/table.js';
import type { Endpoint } from '../upstream/endpoint.js';
import type { UpstreamPool } from '../upstream/pool.js';

/** A route with everything the hot path needs, resolved once per snapshot. */
export interface CompiledRoute {
  readonly config: RouteConfig;
  readonly name: string;
  readonly pool: UpstreamPool;
  readonly rewriter: PathRewriter;
  /** Until the upstream's response headers arrive: route override, else the pool's. */
  readonly requestTimeoutMs: number;
  readonly filters: readonly RequestFilter[];
  /** Client copies of these headers are never forwarded (canonical names; null: none). */
  readonly ownedRequestHeaders: ReadonlySet<string> | null;
}

/**
 * Everything a request needs, immutable once built. A request pins one snapshot at its start and
 * finishes on it, whatever reloads happen meanwhile; `active` counts such requests so endpoints
 * removed by a reload are closed only when no request can still reach them.
 */
export class Snapshot {
  readonly version: string;
  readonly loadedAt: Date;
  readonly gateway: GatewayConfig;
  readonly routesConfig: RoutesConfig;
  readonly routes: readonly CompiledRoute[];
  readonly table: RouteTable<CompiledRoute>;
  readonly pools: ReadonlyMap<string, UpstreamPool>;

  #active = 0;
  #retired = false;
  #onIdle: (() => void) | null = null;

  constructor(init: {
    version: string;
    gateway: GatewayConfig;
    routesConfig: RoutesConfig;
    routes: readonly CompiledRoute[];
    table: RouteTable<CompiledRoute>;
    pools: ReadonlyMap<string, UpstreamPool>;
  }) {
    this.version = init.version;
    this.loadedAt = new Date();
    this.gateway = init.gateway;
    this.routesConfig = init.routesConfig;
    this.routes = init.routes;
    this.table = init.table;
    this.pools = init.pools;
  }

  /** The endpoints its pools list now (discovery may change them while the snapshot is live). */
  get endpoints(): Set<Endpoint> {
    const endpoints = new Set<Endpoint>();
    for (const pool of this.pools.values()) for (const m of pool.members) endpoints.add(m.endpoint);
    return endpoints;
  }

  /** Starts the pools' timers; called when this snapshot becomes the current one. */
  start(): void {
    for (const pool of this.pools.values()) pool.start();
  }

  /** Stops the pools' timers; called when this snapshot is replaced or the gateway stops. */
  stop(): void {
    for (const pool of this.pools.values()) pool.stop();
  }

  get active(): number {
    return this.#active;
  }

  acquire(): void {
    this.#active++;
  }

  release(): void {
    if (--this.#active === 0 && this.#retired) this.#fireIdle();
  }

  /** Marks the snapshot replaced; `onIdle` runs once its last request has finished. */
  retire(onIdle: () => void): void {
    this.#retired = true;
    this.#onIdle = onIdle;
    if (this.#active === 0) this.#fireIdle();
  }

  #fireIdle(): void {
    const cb = this.#onIdle;
    this.#onIdle = null;
    cb?.();
  }
}
