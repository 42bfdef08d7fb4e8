import type { GatewayConfig, RoutesConfig, UpstreamConfig } from '../config/types.js';
import { GatewayError } from '../errors.js';
import { PathRewriter } from '../router/rewrite.js';
import { RouteTable } from '../router/table.js';
import type { EndpointRegistry } from '../upstream/registry.js';
import { type DiscoveryProvider, StaticDiscovery } from '../upstream/discovery/provider.js';
import { PoolMember } from '../upstream/member.js';
import { UpstreamPool } from '../upstream/pool.js';
import { type CompiledRoute, Snapshot } from './snapshot.js';

/**
 * Builds a whole new snapshot from validated config. Endpoints come from the registry, so an
 * endpoint that survives a reload is the same object with the same connections and state. Nothing
 * here touches the running snapshot: a failure leaves it serving.
 */
export function compileSnapshot(
  gateway: GatewayConfig,
  routes: RoutesConfig,
  version: string,
  registry: EndpointRegistry,
): Snapshot {
  const pools = new Map<string, UpstreamPool>();
  for (const upstream of routes.upstreams) {
    const members = discoveryFor(upstream).current().map((t) => new PoolMember(registry.acquire(upstream, t.url), t.weight));
    pools.set(upstream.name, new UpstreamPool(upstream, members));
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
    return Object.freeze({
      config: route,
      name: route.name,
      pool,
      rewriter: new PathRewriter(route.prefix, route.stripPrefix, route.rewritePrefix),
      requestTimeoutMs: route.timeouts.requestMs ?? pool.config.timeouts.requestMs,
      filters: Object.freeze([]),
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

/** Where a pool's endpoints come from. DNS discovery plugs in here (the loader refuses it for now). */
function discoveryFor(upstream: UpstreamConfig): DiscoveryProvider {
  if (upstream.targets === null) {
    throw new GatewayError('GW_ERR_CONFIG_UNSUPPORTED', [`upstream "${upstream.name}": discovery`]);
  }
  return new StaticDiscovery(upstream.targets);
}
