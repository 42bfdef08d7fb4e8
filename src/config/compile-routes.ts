// routes.yaml (already schema-valid) → RoutesConfig. Routes are compiled last because they refer to
// the other sections by name: every reference must name an existing entry, reported where written.

import { dirname } from 'node:path';
import { compileJwtProvider, compileRateLimitPolicy } from './compile-policies.js';
import { compileUpstream } from './compile-upstreams.js';
import { AUTH_DEFAULTS, CORS_DEFAULTS, FAULT_ABORT_DEFAULTS, MIRROR_DEFAULTS, ROUTE_DEFAULTS } from './defaults.js';
import type { IssueCollector } from './issues.js';
import { checkRegex, normalizeHostPattern, normalizeMethod, normalizeOrigin, normalizePrefix } from './normalize.js';
import type { RouteEntry, RoutesFile } from './schema.js';
import { formatFieldPath, type FieldPath } from './source.js';
import type {
  CorsConfig,
  FaultConfig,
  HeaderMatch,
  HeaderRewriteConfig,
  RouteAuthConfig,
  RouteConfig,
  RouteMatchConfig,
  RoutesConfig,
} from './types.js';
import { parseDuration, parsePercent } from './units.js';

/** The names routes may refer to. */
interface KnownNames {
  readonly upstreams: ReadonlySet<string>;
  readonly jwtProviders: ReadonlySet<string>;
  readonly rateLimits: ReadonlySet<string>;
}

export function compileRoutesFile(raw: RoutesFile, file: string, issues: IssueCollector): RoutesConfig {
  const folder = dirname(file);
  const upstreams = Object.entries(raw.upstreams ?? {}).map(([name, entry]) => compileUpstream(name, entry, issues));
  const jwtProviders = Object.entries(raw.jwtProviders ?? {}).map(([name, entry]) => compileJwtProvider(name, entry, folder, issues));
  const rateLimits = Object.entries(raw.rateLimits ?? {}).map(([name, entry]) => compileRateLimitPolicy(name, entry, issues));
  const known: KnownNames = {
    upstreams: new Set(upstreams.map((u) => u.name)),
    jwtProviders: new Set(jwtProviders.map((p) => p.name)),
    rateLimits: new Set(rateLimits.map((p) => p.name)),
  };
  const firstIndexOfName = new Map<string, number>();
  const routes = raw.routes.map((entry, index) => {
    const first = firstIndexOfName.get(entry.name);
    if (first !== undefined) {
      issues.add(['routes', index, 'name'], `duplicate route name "${entry.name}" (also ${formatFieldPath(['routes', first])})`);
    } else {
      firstIndexOfName.set(entry.name, index);
    }
    return compileRoute(entry, index, known, issues);
  });
  return { file, upstreams, jwtProviders, rateLimits, routes };
}

function compileRoute(entry: RouteEntry, index: number, known: KnownNames, issues: IssueCollector): RouteConfig {
  const path: FieldPath = ['routes', index];
  const refer = (at: FieldPath, name: string, names: ReadonlySet<string>, what: string): void => {
    if (!names.has(name)) issues.add(at, `unknown ${what} "${name}"`);
  };

  if ((entry.upstream === undefined) === (entry.split === undefined)) issues.add(path, 'set exactly one of upstream and split');
  if (entry.upstream !== undefined) refer([...path, 'upstream'], entry.upstream, known.upstreams, 'upstream');
  entry.split?.forEach((share, i) => refer([...path, 'split', i, 'upstream'], share.upstream, known.upstreams, 'upstream'));
  if (entry.split !== undefined && entry.split.every((share) => share.weight === 0)) {
    issues.add([...path, 'split'], 'at least one weight must be above 0');
  }
  if (entry.mirror !== undefined) refer([...path, 'mirror', 'upstream'], entry.mirror.upstream, known.upstreams, 'upstream');
  entry.rateLimit?.forEach((policy, i) => refer([...path, 'rateLimit', i], policy, known.rateLimits, 'rate limit'));

  const stripPrefix = entry.stripPrefix ?? ROUTE_DEFAULTS.stripPrefix;
  const rewrite = entry.rewritePrefix ?? ROUTE_DEFAULTS.rewritePrefix;
  if (stripPrefix && rewrite !== null) issues.add([...path, 'rewritePrefix'], 'stripPrefix and rewritePrefix cannot both be set');

  const methods = entry.methods?.map((method, i) => issues.value([...path, 'methods', i], normalizeMethod(method), method));
  return {
    name: entry.name,
    index,
    prefix: issues.value([...path, 'prefix'], normalizePrefix(entry.prefix), entry.prefix),
    host: entry.host === undefined ? ROUTE_DEFAULTS.host : issues.value([...path, 'host'], normalizeHostPattern(entry.host), entry.host),
    methods: methods === undefined ? ROUTE_DEFAULTS.methods : [...new Set(methods)],
    match: entry.match === undefined ? null : compileMatch(entry.match, [...path, 'match'], issues),
    upstream: entry.upstream ?? null,
    split: entry.split?.map((share) => ({ upstream: share.upstream, weight: share.weight })) ?? null,
    stripPrefix,
    rewritePrefix: rewrite === null ? null : issues.value([...path, 'rewritePrefix'], normalizePrefix(rewrite), rewrite),
    auth: compileAuth(entry.auth, [...path, 'auth'], known, issues),
    rateLimit: entry.rateLimit ?? ROUTE_DEFAULTS.rateLimit,
    websocket: entry.websocket ?? ROUTE_DEFAULTS.websocket,
    timeouts: {
      requestMs: entry.timeouts?.request === undefined ? null : parseDuration(entry.timeouts.request),
    },
    mirror: entry.mirror === undefined ? null : { upstream: entry.mirror.upstream, percent: parsePercent(entry.mirror.percent ?? MIRROR_DEFAULTS.percent) },
    headers: {
      request: entry.headers?.request === undefined ? null : compileHeaderRewrite(entry.headers.request, [...path, 'headers', 'request'], issues),
      response: entry.headers?.response === undefined ? null : compileHeaderRewrite(entry.headers.response, [...path, 'headers', 'response'], issues),
    },
    cors: entry.cors === undefined ? null : compileCors(entry.cors, [...path, 'cors'], issues),
    fault: entry.fault === undefined ? null : compileFault(entry.fault),
  };
}

function compileAuth(raw: RouteEntry['auth'], path: FieldPath, known: KnownNames, issues: IssueCollector): RouteAuthConfig | null {
  if (raw === undefined || raw === 'none') return null;
  if (!known.jwtProviders.has(raw.jwt)) issues.add([...path, 'jwt'], `unknown JWT provider "${raw.jwt}"`);
  return { jwt: raw.jwt, require: raw.require ?? AUTH_DEFAULTS.require };
}

/** Header names compare case-insensitively, so two spellings of one name are one entry written twice. */
function lowerCaseKeys<V>(entries: Readonly<Record<string, V>>, path: FieldPath, issues: IssueCollector): Record<string, V> {
  const out: Record<string, V> = {};
  for (const [name, value] of Object.entries(entries)) {
    const lower = name.toLowerCase();
    if (lower in out) issues.add([...path, name], `header ${lower} is listed twice (header names are case-insensitive)`, 'key');
    out[lower] = value;
  }
  return out;
}

function compileMatch(raw: NonNullable<RouteEntry['match']>, path: FieldPath, issues: IssueCollector): RouteMatchConfig {
  const headers: Record<string, HeaderMatch> = {};
  const conditions = raw.headers ?? {};
  lowerCaseKeys(conditions, [...path, 'headers'], issues);
  for (const [name, condition] of Object.entries(conditions)) {
    const at: FieldPath = [...path, 'headers', name];
    const lower = name.toLowerCase();
    if (typeof condition === 'string') {
      headers[lower] = { kind: 'exact', value: condition };
    } else if ((condition.present === undefined) === (condition.regex === undefined)) {
      issues.add(at, 'set exactly one of present and regex');
    } else if (condition.regex !== undefined) {
      headers[lower] = { kind: 'regex', pattern: issues.value([...at, 'regex'], checkRegex(condition.regex), condition.regex) };
    } else {
      headers[lower] = { kind: 'present' };
    }
  }
  return { headers, query: { ...(raw.query ?? {}) } };
}

type HeaderRewriteEntry = NonNullable<NonNullable<RouteEntry['headers']>['request']>;

function compileHeaderRewrite(raw: HeaderRewriteEntry, path: FieldPath, issues: IssueCollector): HeaderRewriteConfig {
  return {
    set: lowerCaseKeys(raw.set ?? {}, [...path, 'set'], issues),
    remove: [...new Set((raw.remove ?? []).map((name) => name.toLowerCase()))],
  };
}

function compileCors(raw: NonNullable<RouteEntry['cors']>, path: FieldPath, issues: IssueCollector): CorsConfig {
  const origins = raw.origins.map((origin, i) => issues.value([...path, 'origins', i], normalizeOrigin(origin), origin));
  const credentials = raw.credentials ?? CORS_DEFAULTS.credentials;
  // Browsers refuse credentialed responses with `Access-Control-Allow-Origin: *`.
  if (credentials && origins.includes('*')) issues.add([...path, 'credentials'], 'credentials cannot be allowed for origin *');
  const methods = (raw.methods ?? CORS_DEFAULTS.methods).map((method, i) => issues.value([...path, 'methods', i], normalizeMethod(method), method));
  return {
    origins,
    methods: [...new Set(methods)],
    headers: [...new Set((raw.headers ?? CORS_DEFAULTS.headers).map((name) => name.toLowerCase()))],
    credentials,
    maxAgeMs: parseDuration(raw.maxAge ?? CORS_DEFAULTS.maxAge),
  };
}

function compileFault(raw: NonNullable<RouteEntry['fault']>): FaultConfig {
  return {
    delay: raw.delay === undefined ? null : { percent: parsePercent(raw.delay.percent), durationMs: parseDuration(raw.delay.duration) },
    abort: raw.abort === undefined ? null : { percent: parsePercent(raw.abort.percent), status: raw.abort.status ?? FAULT_ABORT_DEFAULTS.status },
  };
}
