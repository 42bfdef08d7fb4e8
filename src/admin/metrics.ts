import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

// Every metric of the gateway, declared in one place (SPEC §5 names and labels are a contract).
// Label values never come unbounded from clients: routes, upstreams and endpoints come from
// config, methods are folded into a fixed set, statuses are numeric codes.

const STANDARD_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

export function methodLabel(method: string): string {
  return STANDARD_METHODS.has(method) ? method : 'OTHER';
}

/** Label for requests that matched no route. */
export const UNMATCHED_ROUTE = '_unmatched';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface EndpointStateCount {
  readonly upstream: string;
  readonly state: string;
  readonly count: number;
}

export interface PoolPanicState {
  readonly upstream: string;
  readonly panic: boolean;
}

/** Read at scrape time, so the request path never updates these gauges. */
export interface MetricSources {
  endpointStates(): readonly EndpointStateCount[];
  panicStates(): readonly PoolPanicState[];
}

/** One label combination of a counter, incremented on the request path. */
export interface CounterChild {
  inc(): void;
}

/**
 * Counter children the request path increments as plain numbers, added to their prom-client
 * counter when metrics are read (its collect hook). prom-client's own bound children hash and
 * validate their label values on every inc; this costs one addition. One child per label
 * combination, shared by every snapshot that asks for it.
 */
class DeferredChildren {
  readonly #children = new Map<string, DeferredChild>();

  child(labels: readonly string[]): CounterChild {
    const key = labels.join('\u0000');
    let child = this.#children.get(key);
    if (child === undefined) {
      child = new DeferredChild(labels);
      this.#children.set(key, child);
    }
    return child;
  }

  flushInto(counter: Counter<string>): void {
    for (const child of this.#children.values()) {
      if (child.pending === 0) continue;
      counter.labels(...child.labels).inc(child.pending);
      child.pending = 0;
    }
  }
}

class DeferredChild implements CounterChild {
  pending = 0;
  constructor(readonly labels: readonly string[]) {}

  inc(): void {
    this.pending++;
  }
}

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly #ratelimitDecisionChildren = new DeferredChildren();

  readonly requests = new Counter({
    name: 'gateway_requests_total',
    help: 'Requests answered, by route, method and status.',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  });

  readonly requestDuration = new Histogram({
    name: 'gateway_request_duration_seconds',
    help: 'Time from receiving a request to the end of its response, by route.',
    labelNames: ['route'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly upstreamRequests = new Counter({
    name: 'gateway_upstream_requests_total',
    help: 'Upstream attempts by pool, endpoint and status (the status the gateway answered when the upstream gave no HTTP answer).',
    labelNames: ['upstream', 'endpoint', 'status'] as const,
    registers: [this.registry],
  });

  readonly upstreamDuration = new Histogram({
    name: 'gateway_upstream_request_duration_seconds',
    help: 'Time of one upstream attempt, from dispatch to the end of the response body, by pool.',
    labelNames: ['upstream'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly upstreamEndpoints: Gauge<'upstream' | 'state'>;

  readonly outlierEjections = new Counter({
    name: 'gateway_outlier_ejections_total',
    help: 'Endpoints ejected by outlier detection, by reason.',
    labelNames: ['upstream', 'endpoint', 'reason'] as const,
    registers: [this.registry],
  });

  readonly upstreamPanic: Gauge<'upstream'>;

  readonly discoveryResolutions = new Counter({
    name: 'gateway_discovery_resolutions_total',
    help: 'DNS resolutions of discovered pools by result: success, or failure (timeout, error or empty answer: the last good endpoints are kept).',
    labelNames: ['upstream', 'result'] as const,
    registers: [this.registry],
  });

  readonly overflows = new Counter({
    name: 'gateway_upstream_overflows_total',
    help: 'Requests refused with 503 upstream_overloaded because the pool had maxPendingRequests waiting for a connection.',
    labelNames: ['upstream'] as const,
    registers: [this.registry],
  });

  readonly ratelimitDecisions: Counter<'policy' | 'decision'> = new Counter({
    name: 'gateway_ratelimit_decisions_total',
    help: 'Rate-limit decisions by policy: allowed, limited or store_error.',
    labelNames: ['policy', 'decision'] as const,
    registers: [this.registry],
    collect: () => this.#ratelimitDecisionChildren.flushInto(this.ratelimitDecisions),
  });

  readonly ratelimitStoreUp = new Gauge({
    name: 'gateway_ratelimit_store_up',
    // With workers > 1, /metrics combines every worker's registry: any worker without Redis shows 0.
    aggregator: 'min',
    help: 'Whether rate-limit decisions go through Redis (1) or not (0: Redis down or slower than commandTimeout, failureMode applies).',
    // Registered only with a redis block (see the constructor): nothing to report without one.
    registers: [],
  });

  readonly ratelimitStoreDuration = new Histogram({
    name: 'gateway_ratelimit_store_duration_seconds',
    help: 'Round trip of one rate-limit script call to Redis (one call decides a batch of requests).',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    // Registered only with a redis block (see the constructor): nothing to report without one.
    registers: [],
  });

  readonly ratelimitStoreErrors = new Counter({
    name: 'gateway_ratelimit_store_errors_total',
    help: 'Calls to Redis that failed, by reason: timeout (slower than commandTimeout), connection (not connected) or error (Redis answered an error).',
    labelNames: ['reason'] as const,
    // Registered only with a redis block (see the constructor): nothing to report without one.
    registers: [],
  });

  readonly ratelimitInstances = new Gauge({
    name: 'gateway_ratelimit_instances',
    // With workers > 1, /metrics combines every worker's registry: every worker counts the same instances.
    aggregator: 'max',
    help: 'Gateway instances seen heartbeating into Redis within the last 30 s: the N of limit / N under failureMode local.',
    // Registered only with a redis block (see the constructor): nothing to report without one.
    registers: [],
  });

  readonly jwtVerifications = new Counter({
    name: 'gateway_jwt_verifications_total',
    help: 'JWT verifications by provider and result.',
    labelNames: ['provider', 'result'] as const,
    registers: [this.registry],
  });

  readonly jwksFetches = new Counter({
    name: 'gateway_jwks_fetches_total',
    help: 'JWKS fetches by provider and result.',
    labelNames: ['provider', 'result'] as const,
    registers: [this.registry],
  });

  readonly configReloads = new Counter({
    name: 'gateway_config_reloads_total',
    // With workers > 1, /metrics combines every worker's registry: every worker commits the same reloads: one per reload, not one per worker.
    aggregator: 'max',
    help: 'Routes reloads by result (success or failure).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly lastReloadSuccess = new Gauge({
    name: 'gateway_config_last_reload_success_timestamp_seconds',
    // With workers > 1, /metrics combines every worker's registry: a worker that missed a reload shows.
    aggregator: 'min',
    help: 'Unix time of the last successful load of the routes file.',
    registers: [this.registry],
  });

  /** gateway_ratelimit_decisions_total{policy,decision}, for the request path (one addition per inc). */
  ratelimitDecision(policy: string, decision: string): CounterChild {
    return this.#ratelimitDecisionChildren.child([policy, decision]);
  }

  constructor(sources: MetricSources, options: { readonly redis?: boolean } = {}) {
    if (options.redis === true) {
      for (const metric of [this.ratelimitStoreUp, this.ratelimitStoreDuration, this.ratelimitStoreErrors, this.ratelimitInstances]) this.registry.registerMetric(metric);
    }
    this.upstreamEndpoints = new Gauge({
      name: 'gateway_upstream_endpoints',
      // With workers > 1, /metrics combines every worker's registry: per worker; the most any worker sees.
      aggregator: 'max',
      help: 'Endpoints per pool and state (healthy, ejected, unhealthy, draining).',
      labelNames: ['upstream', 'state'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const row of sources.endpointStates()) this.set({ upstream: row.upstream, state: row.state }, row.count);
      },
    });
    this.upstreamPanic = new Gauge({
      name: 'gateway_upstream_panic',
      // With workers > 1, /metrics combines every worker's registry: any worker in panic shows 1.
      aggregator: 'max',
      help: 'Whether the pool is in panic mode (1): fewer than panicThreshold of its endpoints usable, so it balances over all of them.',
      labelNames: ['upstream'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const row of sources.panicStates()) this.set({ upstream: row.upstream }, row.panic ? 1 : 0);
      },
    });
    // Both reload outcomes exist from the start so rate() over them works before the first reload.
    this.configReloads.inc({ result: 'success' }, 0);
    this.configReloads.inc({ result: 'failure' }, 0);
    collectDefaultMetrics({ register: this.registry });
  }
}
