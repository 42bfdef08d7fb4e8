import type { BalancerName, GatewayConfig, RedisConfig } from '../config/types.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import type { EjectionReason, Endpoint, EndpointState } from '../upstream/endpoint.js';
import type { UpstreamPool } from '../upstream/pool.js';
import type { EndpointStateCount, PoolPanicState } from './metrics.js';

// URL-safe, so it survives URL serialisation unescaped.
const REDACTED = '***';

/** `redis://user:secret@host` → `redis://user:[redacted]@host`: URLs are the one place secrets hide here. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return url;
    parsed.password = REDACTED;
    return parsed.toString();
  } catch {
    return REDACTED;
  }
}

function redactRedis(redis: RedisConfig | null): RedisConfig | null {
  if (redis === null) return null;
  return {
    ...redis,
    url: redis.url === null ? null : redactUrl(redis.url),
    cluster: redis.cluster === null ? null : redis.cluster.map(redactUrl),
  };
}

function redactGateway(gateway: GatewayConfig): GatewayConfig {
  return { ...gateway, redis: redactRedis(gateway.redis) };
}

/** GET /config: the running snapshot's effective configuration. */
export function configDump(snapshot: Snapshot): object {
  const { file: _file, ...routes } = snapshot.routesConfig;
  return {
    version: snapshot.version,
    loadedAt: snapshot.loadedAt.toISOString(),
    gateway: redactGateway(snapshot.gateway),
    ...routes,
  };
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

// The GET /upstreams shapes (SPEC §5): plain JSON-safe data, times as ISO strings.

export interface EjectionDump {
  readonly reason: EjectionReason;
  readonly detail: string;
  readonly at: string;
  /** null for an active health check ejection: it lasts until checks pass. */
  readonly durationMs: number | null;
  readonly number: number;
}

export interface EndpointDump {
  readonly address: string;
  readonly url: string;
  readonly weight: number;
  readonly state: EndpointState;
  readonly ejections: number;
  readonly ejectedUntil: string | null;
  readonly lastEjection: EjectionDump | null;
  readonly lastCheck: string | null;
  readonly inFlight: number;
  readonly latencyEwmaMs: number;
}

export interface PoolDump {
  readonly name: string;
  readonly balancer: BalancerName;
  readonly panic: boolean;
  readonly endpoints: readonly EndpointDump[];
}

export interface UpstreamsDump {
  readonly upstreams: readonly PoolDump[];
}

/** GET /upstreams (SPEC §5). */
export function upstreamsDump(snapshot: Snapshot | null, draining: readonly Endpoint[] = []): UpstreamsDump {
  if (snapshot === null) return { upstreams: [] };
  const upstreams: PoolDump[] = [];
  for (const pool of snapshot.pools.values()) {
    upstreams.push({
      name: pool.name,
      balancer: pool.config.balancer,
      panic: pool.panic,
      endpoints: [
        ...pool.members.map((member) => endpointView(member.endpoint, member.weight)),
        // Weight 0: nothing new is sent to them.
        ...departed(pool, draining).map((e) => endpointView(e, 0)),
      ],
    });
  }
  return { upstreams };
}

/** The pool's endpoints that are no longer listed but still finishing requests. */
function departed(pool: UpstreamPool, draining: readonly Endpoint[]): Endpoint[] {
  return draining.filter((e) => e.upstream === pool.name && !pool.members.some((m) => m.endpoint === e));
}

function endpointView(e: Endpoint, weight: number): EndpointDump {
  return {
    address: e.address,
    url: e.url,
    weight,
    state: e.state,
    ejections: e.ejections,
    ejectedUntil: iso(e.ejectedUntil),
    lastEjection: e.lastEjection === null ? null : {
      reason: e.lastEjection.reason,
      detail: e.lastEjection.detail,
      at: new Date(e.lastEjection.at).toISOString(),
      durationMs: e.lastEjection.durationMs,
      number: e.lastEjection.number,
    },
    lastCheck: e.active.lastResult,
    inFlight: e.inFlight,
    latencyEwmaMs: Math.round(e.latencyEwmaMs * 1000) / 1000,
  };
}

/** Rows of gateway_upstream_panic, read at scrape time. */
export function panicStates(snapshot: Snapshot | null): PoolPanicState[] {
  if (snapshot === null) return [];
  return [...snapshot.pools.values()].map((pool) => ({ upstream: pool.name, panic: pool.panic }));
}

/** Rows of gateway_upstream_endpoints, read at scrape time. */
export function endpointStateCounts(snapshot: Snapshot | null, draining: readonly Endpoint[] = []): EndpointStateCount[] {
  if (snapshot === null) return [];
  const rows: EndpointStateCount[] = [];
  for (const pool of snapshot.pools.values()) {
    const counts = new Map<string, number>([['healthy', 0], ['ejected', 0], ['unhealthy', 0], ['draining', 0]]);
    for (const m of pool.members) counts.set(m.endpoint.state, (counts.get(m.endpoint.state) ?? 0) + 1);
    counts.set('draining', (counts.get('draining') ?? 0) + departed(pool, draining).length);
    for (const [state, count] of counts) rows.push({ upstream: pool.name, state, count });
  }
  return rows;
}
