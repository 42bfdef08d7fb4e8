// The built-in filter plugins, and the one place the core imports from plugins/ (STYLE: "nothing in
// src imports from plugins/ except the list of built-ins"). It owns their long-lived parts (JWT
// providers with their key sets and verification caches, kept across reloads; the rate limiter's
// store, kept for the life of the process), and builds each route's filter list when a snapshot
// is compiled.

import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import type { GatewayMetrics } from '../admin/metrics.js';
import type { RedisConfig, RouteConfig, RoutesConfig } from '../config/types.js';
import {
  createJwtAuthFilter,
  type JwksFetchDetail,
  type JwksFetchResult,
  type JwtEvents,
  JwtProviderRegistry,
  type JwtRegistryOptions,
  type JwtVerificationResult,
  SILENT_JWT_EVENTS,
} from '../../plugins/jwt-auth/index.js';
// From the plugin's modules rather than its index, which also exports the Redis store: ioredis is
// loaded only when gateway.yaml has a redis block (see RateLimiter.create).
import type { DecisionCounter, RateLimitDecision, RateLimitEvents, StoreFailure } from '../../plugins/rate-limit/events.js';
import { describeKey, PolicyKey } from '../../plugins/rate-limit/keys.js';
import { RateLimiter, type RateLimiterOptions } from '../../plugins/rate-limit/limiter.js';
import type { RequestFilter } from './filter.js';

/** Reports the jwt-auth plugin's events as metrics and structured log lines. */
class JwtEventLog implements JwtEvents {
  readonly #metrics: GatewayMetrics;
  readonly #log: Logger;

  constructor(metrics: GatewayMetrics, log: Logger) {
    this.#metrics = metrics;
    this.#log = log;
  }

  verification(provider: string, result: JwtVerificationResult, reason: string | null): void {
    this.#metrics.jwtVerifications.labels(provider, result).inc();
    // Per request: only at debug, the reason never reaches the client (SPEC §4).
    if (reason !== null) this.#log.debug({ event: 'jwt_rejected', provider, result, reason }, `JWT refused (${result}): ${reason}`);
  }

  jwksFetch(provider: string, result: JwksFetchResult, detail: JwksFetchDetail): void {
    this.#metrics.jwksFetches.labels(provider, result).inc();
    const fields = { event: 'jwks_fetch', provider, result, ...detail };
    if (result === 'failure') this.#log.warn(fields, `${provider}: JWKS load failed (${detail.reason ?? 'unknown'}); keeping the ${detail.keys} keys in use`);
    else if (result === 'success') this.#log.info(fields, `${provider}: JWKS loaded, ${detail.keys} keys`);
  }

  keyRejected(provider: string, kid: string | null, reason: string): void {
    this.#log.warn({ event: 'jwks_key_rejected', provider, kid, reason }, `${provider}: key ${kid ?? '(no kid)'} not used: ${reason}`);
  }
}

/** Reports the rate-limit plugin's events as metrics and structured log lines. */
class RateLimitEventLog implements RateLimitEvents {
  readonly #metrics: GatewayMetrics;
  readonly #log: Logger;
  #lastErrorLog = 0;
  #suppressedErrors = 0;

  constructor(metrics: GatewayMetrics, log: Logger) {
    this.#metrics = metrics;
    this.#log = log;
  }

  decisionCounter(policy: string, decision: RateLimitDecision): DecisionCounter {
    return this.#metrics.ratelimitDecision(policy, decision);
  }

  storeRoundTrip(seconds: number): void {
    this.#metrics.ratelimitStoreDuration.observe(seconds);
  }

  storeError(reason: StoreFailure, detail: string): void {
    this.#metrics.ratelimitStoreErrors.labels(reason).inc();
    // A failing Redis fails every call: one line a second at most, with how many were folded in.
    const now = Date.now();
    if (now - this.#lastErrorLog < 1000) {
      this.#suppressedErrors++;
      return;
    }
    this.#log.warn({ event: 'ratelimit_store_error', reason, detail, suppressed: this.#suppressedErrors }, `rate-limit store ${reason}: ${detail}`);
    this.#lastErrorLog = now;
    this.#suppressedErrors = 0;
  }

  storeState(up: boolean, reason: string | null, failureMode: string): void {
    this.#metrics.ratelimitStoreUp.set(up ? 1 : 0);
    if (up) this.#log.info({ event: 'ratelimit_store_up' }, 'rate limiting through Redis');
    else this.#log.warn({ event: 'ratelimit_store_down', reason, failureMode }, `rate limiting without Redis (failureMode ${failureMode}): ${reason ?? 'unknown'}`);
  }

  instances(count: number): void {
    this.#metrics.ratelimitInstances.set(count);
    this.#log.info({ event: 'ratelimit_instances', instances: count }, `${count} gateway instance(s) share the rate-limit store`);
  }
}

export interface BuiltinFiltersOptions {
  /** gateway.yaml's `redis` block: null (or absent) for the in-process rate-limit store. */
  readonly redis?: RedisConfig | null;
  readonly jwt?: JwtRegistryOptions;
  readonly rateLimit?: RateLimiterOptions;
}

export class BuiltinFilters {
  readonly #jwt: JwtProviderRegistry;
  readonly #jwtEvents: JwtEvents;
  readonly #redis: RedisConfig | null;
  readonly #rateLimitEvents: RateLimitEvents;
  readonly #rateLimitOptions: RateLimiterOptions;
  /** Created by start(): before it, no route can be given a rate-limit filter. */
  #rateLimiter: RateLimiter | null = null;
  #rateLimitsInUse = false;

  constructor(metrics: GatewayMetrics, log: Logger, options: BuiltinFiltersOptions = {}) {
    this.#jwtEvents = new JwtEventLog(metrics, log);
    this.#jwt = new JwtProviderRegistry(this.#jwtEvents, options.jwt ?? {});
    this.#redis = options.redis ?? null;
    this.#rateLimitEvents = new RateLimitEventLog(metrics, log);
    this.#rateLimitOptions = options.rateLimit ?? {};
  }

  /** Creates the rate-limit store and connects it (in the background: the gateway serves meanwhile, by failureMode). */
  async start(): Promise<void> {
    this.#rateLimiter ??= await RateLimiter.create(this.#redis, this.#rateLimitEvents, this.#rateLimitOptions);
    this.#rateLimiter.start();
  }

  /**
   * False while requests of rate-limited routes would get 503 (Redis down, failureMode closed),
   * if the live routes file has any.
   */
  get ready(): boolean {
    return (this.#rateLimiter?.ready ?? true) || !this.#rateLimitsInUse;
  }

  /**
   * Loads what the routes file's filters need before its snapshot is compiled: JWT key files are
   * (re)read, new JWKS endpoints fetched (bounded). Throws a ConfigError naming the file when a
   * key file is broken, which fails the reload.
   */
  prepare(routes: RoutesConfig): Promise<void> {
    return this.#jwt.prepare(routes.jwtProviders);
  }

  /** The filters of one route, in the order they run: authentication first. */
  filtersFor(route: RouteConfig, routes: RoutesConfig): RequestFilter[] {
    const filters: RequestFilter[] = [];
    if (route.auth !== null) {
      const auth = route.auth;
      const provider = routes.jwtProviders.find((p) => p.name === auth.jwt);
      // The loader refuses unknown providers; this guards compile against a bypassed loader.
      if (provider === undefined) throw new Error(`route "${route.name}" names unknown jwtProvider "${auth.jwt}"`);
      filters.push(createJwtAuthFilter(auth, this.#jwt.get(provider), this.#jwtEvents));
    }
    if (route.rateLimit.length > 0) {
      // After authentication, so `jwt:<claim>` keys read verified claims.
      const policies = route.rateLimit.map((name) => {
        const policy = routes.rateLimits.find((p) => p.name === name);
        if (policy === undefined) throw new Error(`route "${route.name}" names unknown rateLimit "${name}"`);
        return policy;
      });
      if (this.#rateLimiter === null) throw new Error('rate limits are compiled before the built-in filters were started');
      filters.push(this.#rateLimiter.filterFor(policies));
    }
    return filters;
  }

  /** Keeps what the live routes file uses (call after a swap, and after a failed reload). */
  retain(routes: RoutesConfig | null): void {
    this.#jwt.retain(routes?.jwtProviders ?? []);
    this.#rateLimitsInUse = routes?.routes.some((route) => route.rateLimit.length > 0) ?? false;
  }

  /** Stops JWKS refreshes and closes the rate-limit store. */
  async stop(): Promise<void> {
    this.#jwt.stopAll();
    await this.#rateLimiter?.stop();
  }
}

/**
 * `gateway validate`: loads every local key file the routes file names (jwksFile), as a reload
 * would, without fetching anything; throws the ConfigError naming the broken file.
 */
export async function checkKeyFiles(routes: RoutesConfig): Promise<void> {
  const registry = new JwtProviderRegistry(SILENT_JWT_EVENTS);
  try {
    await registry.prepare(routes.jwtProviders.filter((provider) => provider.jwksFile !== null));
  } finally {
    registry.stopAll();
  }
}

/**
 * `gateway explain`: one line per rate-limit policy of the route, with the key this request would
 * be counted under (the client address, unknown without a connection, shown as a placeholder).
 */
export function explainRateLimits(
  route: RouteConfig,
  routes: RoutesConfig,
  keyPrefix: string,
  request: { readonly headers: IncomingHttpHeaders; readonly claims: Readonly<Record<string, unknown>> | null },
): string[] {
  const source = { headers: request.headers, clientIp: '<client address>', routeName: route.name, claims: request.claims };
  return route.rateLimit.map((name) => {
    const policy = routes.rateLimits.find((p) => p.name === name);
    if (policy === undefined) return `  ${name}: unknown policy`;
    const key = new PolicyKey(keyPrefix, policy.name, policy.key);
    const missing = key.missingPart(source);
    const fallback = missing === null ? '' : ` (no ${missing} in this request: counted by client address)`;
    return `  ${name}: ${policy.limit} per ${policy.windowMs}ms, burst ${policy.burst}, key ${describeKey(policy.key)} -> ${key.keyOf(source)}${fallback}`;
  });
}
