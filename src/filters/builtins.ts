// The built-in filter plugins, and the one place the core imports from plugins/ (STYLE: "nothing in
// src imports from plugins/ except the list of built-ins"). It owns their long-lived parts (JWT
// providers with their key sets and verification caches), kept across reloads, and builds each
// route's filter list when a snapshot is compiled.

import type { Logger } from 'pino';
import type { GatewayMetrics } from '../admin/metrics.js';
import type { RouteConfig, RoutesConfig } from '../config/types.js';
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

export class BuiltinFilters {
  readonly #jwt: JwtProviderRegistry;
  readonly #jwtEvents: JwtEvents;

  constructor(metrics: GatewayMetrics, log: Logger, jwtOptions: JwtRegistryOptions = {}) {
    this.#jwtEvents = new JwtEventLog(metrics, log);
    this.#jwt = new JwtProviderRegistry(this.#jwtEvents, jwtOptions);
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
    return filters;
  }

  /** Keeps what the live routes file uses (call after a swap, and after a failed reload). */
  retain(routes: RoutesConfig | null): void {
    this.#jwt.retain(routes?.jwtProviders ?? []);
  }

  stop(): void {
    this.#jwt.stopAll();
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
