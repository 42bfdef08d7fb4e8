import { loadConfig } from '../config/load.js';
import { explainRateLimits } from '../filters/builtins.js';
import { configVersion } from '../config/version.js';
import { ConfigError, GatewayError, formatConfigIssue } from '../errors.js';
import { normalizePath, resolveRequestHost, splitTarget } from '../router/normalize.js';
import type { RouteCheck } from '../router/types.js';
import { compileSnapshot } from '../snapshot/compile.js';
import { StaticDiscovery } from '../upstream/discovery/provider.js';
import { hashKeyOf } from '../upstream/hash-key.js';
import { EndpointRegistry } from '../upstream/registry.js';

export interface ExplainInput {
  readonly configFile: string;
  readonly method: string;
  /** An absolute URL (`http://api.example.com/x?y`) or a path (`/x?y`, host then from -H Host). */
  readonly url: string;
  /** `name: value` strings, as given to -H. */
  readonly headers: readonly string[];
  /** `name=value` strings, as given to --claim. */
  readonly claims: readonly string[];
}

export interface ExplainOutput {
  stdout(line: string): void;
  stderr(line: string): void;
}

/** `--claim name=value` pairs, as the claims a verified token would carry. */
function claimsOf(pairs: readonly string[]): Record<string, string> {
  const claims: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new GatewayError('GW_ERR_CLI_USAGE', [`--claim expects name=value, got '${pair}'`]);
    claims[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return claims;
}

function parseHeaders(lines: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new GatewayError('GW_ERR_CLI_USAGE', [`-H expects 'name: value', got '${line}'`]);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return headers;
}

function describeCheck(check: RouteCheck): string {
  const parts = [
    `host ${check.host.rule ?? '(any)'} ${check.host.held ? 'ok' : 'no'}`,
    `prefix ${check.prefix.rule} ${check.prefix.held ? 'ok' : 'no'}`,
    `methods ${check.methods.rule === null ? '(any)' : check.methods.rule.join(',')} ${check.methods.held ? 'ok' : 'no'}`,
    ...check.conditions.map((c) => `${c.text} ${c.held ? 'ok' : `no (got ${c.actual === null ? 'nothing' : JSON.stringify(c.actual)})`}`),
  ];
  const verdict = check.matched ? 'MATCHES' : check.candidate ? 'wrong method' : 'does not match';
  return `  ${check.name}: ${verdict} — ${parts.join('; ')}`;
}

/**
 * `gateway explain` (SPEC §2): what the gateway would do with one request, from local files only.
 * Exit 0 when a route is chosen (even if auth would then refuse the request), 1 otherwise.
 */
export async function runExplain(input: ExplainInput, out: ExplainOutput): Promise<number> {
  let loaded;
  try {
    loaded = await loadConfig(input.configFile);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const issue of err.issues) out.stderr(formatConfigIssue(issue));
      return 1;
    }
    throw err;
  }
  const { gateway, routes } = loaded;
  const registry = new EndpointRegistry();
  try {
    // Explain reads local files only: discovered pools are named, not resolved.
    const snapshot = compileSnapshot(gateway, routes, configVersion(routes), registry, { discoveryFor: () => new StaticDiscovery([]) });
    const headers = parseHeaders(input.headers);
    const method = input.method.toUpperCase();

    let host: string | null;
    let path: string;
    let query: string;
    try {
      const split = splitTarget(input.url);
      host = resolveRequestHost(split.authority, headers.host);
      path = normalizePath(split.path);
      query = split.query;
    } catch (err) {
      if (!(err instanceof GatewayError)) throw err;
      out.stdout(`request: ${method} ${input.url}`);
      out.stdout(`result:  ${err.status} ${err.publicCode} — ${err.message} (refused before routing)`);
      return 1;
    }

    const explanation = snapshot.table.explain({ method, host, path, query, headers });
    out.stdout(`request: ${method} ${path}${query === '' ? '' : `?${query}`} host=${host ?? '(none)'}`);
    out.stdout(`config:  ${gateway.routesFile} version ${snapshot.version}`);
    out.stdout('routes:');
    for (const check of explanation.routes) out.stdout(describeCheck(check));

    const result = explanation.result;
    if (result.kind === 'not_found') {
      out.stdout(`result:  404 route_not_found — ${explanation.reason}`);
      return 1;
    }
    if (result.kind === 'method_not_allowed') {
      out.stdout(`result:  405 method_not_allowed — Allow: ${result.allow.join(', ')} — ${explanation.reason}`);
      return 1;
    }
    const route = result.route;
    const pool = route.pool;
    out.stdout(`result:  route "${route.name}" — ${explanation.reason}`);
    out.stdout(`upstream path: ${route.rewriter.rewrite(path)}${query === '' ? '' : `?${query}`}`);
    out.stdout(`pool:    ${pool.name} (${pool.config.balancer}, request timeout ${route.requestTimeoutMs}ms, connect timeout ${pool.config.timeouts.connectMs}ms)`);
    const discovery = pool.config.discovery;
    if (discovery !== null) {
      const { name, type, port } = discovery.dns;
      const via = discovery.server ?? 'the system resolver';
      out.stdout(`  endpoints: DNS ${type} ${name}${port === null ? '' : ` port ${port}`} via ${via} (not resolved by explain)`);
    } else {
      for (const m of pool.members) out.stdout(`  endpoint ${m.address} ${m.endpoint.url} weight ${m.weight}`);
    }
    if (pool.hashKey !== null) {
      // The client address is only known on a real connection.
      const key = pool.hashKey.kind === 'ip' ? 'the client address' : hashKeyOf(pool.hashKey, headers, '', claimsOf(input.claims));
      const shown = key === null ? 'none in this request: a random endpoint' : pool.hashKey.kind === 'ip' ? key : JSON.stringify(key);
      out.stdout(`  hash key (${pool.config.hashOn ?? ''}): ${shown}`);
    }
    const auth = route.config.auth;
    out.stdout(`auth:    ${auth === null ? 'none' : `jwt provider "${auth.jwt}", require ${JSON.stringify(auth.require)}`}`);
    out.stdout(`rateLimit: ${route.config.rateLimit.length === 0 ? 'none' : `${route.config.rateLimit.join(', ')} (${gateway.redis === null ? 'in-process store' : `Redis, failureMode ${gateway.redis.failureMode}`})`}`);
    for (const line of explainRateLimits(route.config, snapshot.routesConfig, gateway.redis?.keyPrefix ?? '', { headers, claims: route.config.auth === null ? null : claimsOf(input.claims) })) out.stdout(line);
    if (input.claims.length > 0) out.stdout(`claims:  ${input.claims.join(', ')} (used by auth, jwt: hash keys and jwt: rate-limit keys)`);
    return 0;
  } finally {
    await registry.closeAll();
  }
}
