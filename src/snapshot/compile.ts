import type { GatewayConfig, RouteConfig, RoutesConfig, TargetConfig, UpstreamConfig } from '../config/types.js';
import type { RequestFilter } from '../filters/filter.js';
import { canonicalHeaderName } from '../proxy/headers.js';
import { GatewayError } from '../errors.js';
import { PathRewriter } from '../router/rewrite.js';
import { RouteTable } from '../router/table.js';
import type { EndpointRegistry } from '../upstream/registry.js';
import type { DiscoveryProvider } from '../upstream/discovery/provider.js';
import { type HealthEvents, NULL_HEALTH_CHECKER, NULL_HEALTH_EVENTS } from '../upstream/health/checker.js';
import { HttpHealthChecker } from '../upstream/health/http-checker.js';
import { PoolMember } from '../upstream/member.js';
import { ConsecutiveFailureDetector, NULL_OUTLIER_DETECTOR, type OutlierEvents } from '../upstream/outlier/detector.js';
import { type PoolEvents, UpstreamPool } from '../upstream/pool.js';
import { type CompiledRoute, Snapshot } from './snapshot.js';

/** Everything that reports upstream events (log lines, metrics). */
export type UpstreamEvents = OutlierEvents & PoolEvents & HealthEvents;

const SILENT_EVENTS: UpstreamEvents = {
  ...NULL_HEALTH_EVENTS,
  ejected(): void {},
  restored(): void {},
  ejectionCapped(): void {},
  panicChanged(): void {},
  membersChanged(): void {},
};

export interface CompileParts {
  /** The live provider of a `discovery:` pool (kept across reloads by the gateway). */
  readonly discoveryFor?: (upstream: UpstreamConfig) => DiscoveryProvider;
  readonly events?: UpstreamEvents;
  /** Called after discovery changed a live pool's members, to close endpoints nobody lists. */
  readonly onMembersReplaced?: () => void;
  /**
   * Builds a route's filters (JWT auth, ...). Every caller that serves traffic passes it; without
   * it routes get no filters, which only suits callers that never forward (explain, tests).
   */
  readonly filtersFor?: (route: RouteConfig) => readonly RequestFilter[];
}

/**
 * Builds a whole new snapshot from validated config. Endpoints come from the registry, so an
 * endpoint that survives a reload is the same object with the same connections and state. Nothing
 * here touches the running snapshot: a failure leaves it serving. Timers (outlier sweeps, health
 * checks, discovery subscriptions) start only when the snapshot goes live.
 */
export function compileSnapshot(
  gateway: GatewayConfig,
  routes: RoutesConfig,
  version: string,
  registry: EndpointRegistry,
  parts: CompileParts = {},
): Snapshot {
  const events = parts.events ?? SILENT_EVENTS;
  const pools = new Map<string, UpstreamPool>();
  for (const upstream of routes.upstreams) {
    const memberFor = (t: TargetConfig): PoolMember => new PoolMember(registry.acquire(upstream, t.url), t.weight);
    const discovery = upstream.targets === null ? discoveryFor(upstream, parts) : null;
    const targets = discovery === null ? (upstream.targets ?? []) : discovery.current();
    pools.set(upstream.name, new UpstreamPool(upstream, targets.map(memberFor), {
      outlier: upstream.outlierDetection === null ? NULL_OUTLIER_DETECTOR : new ConsecutiveFailureDetector(upstream.outlierDetection, events),
      health: upstream.healthCheck === null ? NULL_HEALTH_CHECKER : new HttpHealthChecker(upstream.name, upstream.healthCheck, events),
      discovery,
      memberFor,
      onMembersReplaced: parts.onMembersReplaced,
      events,
    }));
  }

  const compiled: CompiledRoute[] = routes.routes.map((route) => {
    if (route.upstream === null) {
      throw new GatewayError('GW_ERR_CONFIG_UNSUPPORTED', [`route "${route.name}": split`]);
    }
    const pool = pools.get(route.upstream);
    if (pool === undefined) {
      // The loader already refuses unknown upstreams; this guards compile against a bypassed loader.
      throw new GatewayError('GW_ERR_CONFIG_INVALID', [`route "${route.name}" names unknown upstream "${route.upstream}"`]);
    }
    const filters = parts.filtersFor?.(route) ?? [];
    return Object.freeze({
      config: route,
      name: route.name,
      pool,
      rewriter: new PathRewriter(route.prefix, route.stripPrefix, route.rewritePrefix),
      requestTimeoutMs: route.timeouts.requestMs ?? pool.config.timeouts.requestMs,
      filters: Object.freeze(filters),
      ownedRequestHeaders: ownedHeaders(filters),
    });
  });

  return new Snapshot({
    version,
    gateway,
    routesConfig: routes,
    routes: Object.freeze(compiled),
    table: new RouteTable(compiled),
    pools,
  });
}

function ownedHeaders(filters: readonly RequestFilter[]): ReadonlySet<string> | null {
  const names = filters.flatMap((f) => f.ownedRequestHeaders ?? []);
  return names.length === 0 ? null : new Set(names.map(canonicalHeaderName));
}

function discoveryFor(upstream: UpstreamConfig, parts: CompileParts): DiscoveryProvider {
  if (parts.discoveryFor === undefined) {
    // Only a caller that runs pools (the gateway) supplies providers; explain never resolves.
    throw new GatewayError('GW_ERR_CONFIG_INVALID', [`upstream "${upstream.name}" uses discovery, which this caller does not run`]);
  }
  return parts.discoveryFor(upstream);
}
