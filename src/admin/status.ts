import type { RouteConfig } from '../config/types.js';
import { type ConfigIssue, formatConfigIssue } from '../errors.js';
import type { ReloadResult } from '../snapshot/reloader.js';
import type { EjectionReason, EndpointState } from '../upstream/endpoint.js';
import type { UpstreamsDump } from './dumps.js';
import { UNMATCHED_ROUTE } from './metrics.js';

// GET /status, the data behind the status page (GET /). Built from plain data only — snapshot
// facts, the /upstreams dump and prom-client's JSON export — so a primary process can build the
// same report from metrics aggregated over its workers. Figures are cumulative: the page turns the
// difference between two polls into rates, error ratios and p99, so nothing here keeps history.

/** One entry of prom-client's `registry.getMetricsAsJSON()` (or AggregatorRegistry's), the fields read here. */
export interface MetricJson {
  readonly name: string;
  readonly values: readonly {
    readonly value: number;
    readonly labels: Readonly<Partial<Record<string, string | number>>>;
    /** Histograms: which series (`…_bucket`, `…_sum`, `…_count`). */
    readonly metricName?: string;
  }[];
}

export interface RouteSummary {
  readonly name: string;
  readonly prefix: string;
  readonly host: string | null;
  readonly methods: readonly string[] | null;
  readonly upstream: string | null;
  readonly split: readonly { readonly upstream: string; readonly weight: number }[] | null;
}

export interface LastReload {
  /** ISO time the reload ended. */
  readonly at: string;
  readonly result: 'success' | 'failure';
  readonly version?: string;
  readonly changed?: boolean;
  /** Formatted `FILE:LINE:COL: path: message`. */
  readonly errors?: readonly string[];
}

export interface StatusInput {
  readonly version: string | null;
  readonly loadedAt: string | null;
  readonly lastReload: LastReload | null;
  readonly routes: readonly RouteSummary[];
  readonly upstreams: UpstreamsDump;
  readonly metrics: readonly MetricJson[];
}

/** A histogram's cumulative bucket counts: `counts[i]` observations ≤ `bounds[i]`, `count` in all (+Inf). */
export interface LatencyBuckets {
  /** Upper bounds in seconds, ascending, without +Inf (JSON has no Infinity). */
  readonly bounds: readonly number[];
  readonly counts: readonly number[];
  readonly count: number;
  /** Seconds. */
  readonly sum: number;
}

/** Cumulative since the process started (or since the metrics were aggregated). */
export interface TrafficFigures {
  readonly requests: number;
  readonly errors5xx: number;
}

export interface RouteStatus extends RouteSummary, TrafficFigures {
  readonly latency: LatencyBuckets;
}

export interface EndpointStatus extends TrafficFigures {
  readonly address: string;
  readonly state: EndpointState;
  readonly weight: number;
  readonly inFlight: number;
  readonly latencyEwmaMs: number;
  readonly ejections: number;
  /** ISO; null unless ejected by outlier detection. */
  readonly ejectedUntil: string | null;
  /** Why it is out of use; null while healthy or draining (a past ejection is history, not state). */
  readonly ejection: { readonly reason: EjectionReason; readonly detail: string; readonly at: string } | null;
  /** The latest active health check result, e.g. "status 500". */
  readonly lastCheck: string | null;
}

export interface PoolStatus {
  readonly name: string;
  readonly balancer: string;
  readonly panic: boolean;
  readonly endpoints: readonly EndpointStatus[];
}

export interface StatusReport {
  /** ISO; the page counts ejection time left from it, so the browser's clock does not matter. */
  readonly generatedAt: string;
  readonly version: string | null;
  readonly loadedAt: string | null;
  readonly lastReload: LastReload | null;
  readonly routes: readonly RouteStatus[];
  /** Requests that matched no route. */
  readonly unmatched: TrafficFigures;
  readonly pools: readonly PoolStatus[];
}

const REQUESTS = 'gateway_requests_total';
const DURATION = 'gateway_request_duration_seconds';
const UPSTREAM_REQUESTS = 'gateway_upstream_requests_total';

export function routeSummaries(routes: readonly RouteConfig[]): RouteSummary[] {
  return routes.map((r) => ({
    name: r.name,
    prefix: r.prefix,
    host: r.host,
    methods: r.methods,
    upstream: r.upstream,
    split: r.split === null ? null : r.split.map((s) => ({ upstream: s.upstream, weight: s.weight })),
  }));
}

export function lastReloadOf(last: { readonly at: Date; readonly result: ReloadResult } | null): LastReload | null {
  if (last === null) return null;
  const at = last.at.toISOString();
  const r = last.result;
  return r.result === 'success'
    ? { at, result: 'success', version: r.version, changed: r.changed }
    : { at, result: 'failure', errors: r.errors.map((issue: ConfigIssue) => formatConfigIssue(issue)) };
}

export function buildStatusReport(input: StatusInput, now: Date = new Date()): StatusReport {
  const requests = trafficBy(input.metrics, REQUESTS, 'route');
  const latency = latencyBy(input.metrics, DURATION, 'route');
  const upstreamTraffic = trafficBy(input.metrics, UPSTREAM_REQUESTS, 'upstream', 'endpoint');
  return {
    generatedAt: now.toISOString(),
    version: input.version,
    loadedAt: input.loadedAt,
    lastReload: input.lastReload,
    routes: input.routes.map((route) => ({
      ...route,
      ...(requests.get(key(route.name)) ?? NO_TRAFFIC),
      latency: latency.get(route.name) ?? emptyLatency(latency),
    })),
    unmatched: requests.get(key(UNMATCHED_ROUTE)) ?? NO_TRAFFIC,
    pools: input.upstreams.upstreams.map((pool) => ({
      name: pool.name,
      balancer: pool.balancer,
      panic: pool.panic,
      endpoints: pool.endpoints.map((e) => ({
        address: e.address,
        state: e.state,
        weight: e.weight,
        inFlight: e.inFlight,
        latencyEwmaMs: e.latencyEwmaMs,
        ejections: e.ejections,
        ejectedUntil: e.ejectedUntil,
        ejection: (e.state === 'ejected' || e.state === 'unhealthy') && e.lastEjection !== null
          ? { reason: e.lastEjection.reason, detail: e.lastEjection.detail, at: e.lastEjection.at }
          : null,
        lastCheck: e.lastCheck,
        ...(upstreamTraffic.get(key(pool.name, e.address)) ?? NO_TRAFFIC),
      })),
    })),
  };
}

const NO_TRAFFIC: TrafficFigures = { requests: 0, errors5xx: 0 };

function key(...parts: readonly string[]): string {
  return parts.join('\u0000');
}

function label(labels: Readonly<Partial<Record<string, string | number>>>, name: string): string | undefined {
  const v = labels[name];
  return v === undefined ? undefined : String(v);
}

/** Requests and 5xx answers of a counter with a `status` label, summed per value of `by`. */
function trafficBy(metrics: readonly MetricJson[], name: string, ...by: readonly string[]): Map<string, TrafficFigures> {
  const out = new Map<string, { requests: number; errors5xx: number }>();
  for (const v of metrics.find((m) => m.name === name)?.values ?? []) {
    const parts = by.map((b) => label(v.labels, b));
    if (parts.some((p) => p === undefined)) continue;
    const k = key(...(parts as string[]));
    const figures = out.get(k) ?? { requests: 0, errors5xx: 0 };
    figures.requests += v.value;
    if (label(v.labels, 'status')?.startsWith('5') === true) figures.errors5xx += v.value;
    out.set(k, figures);
  }
  return out;
}

/** A histogram's series per value of `by`, as cumulative bucket counts. */
function latencyBy(metrics: readonly MetricJson[], name: string, by: string): Map<string, LatencyBuckets> {
  const series = new Map<string, { buckets: Map<number, number>; count: number; sum: number }>();
  for (const v of metrics.find((m) => m.name === name)?.values ?? []) {
    const group = label(v.labels, by);
    if (group === undefined) continue;
    let s = series.get(group);
    if (s === undefined) series.set(group, (s = { buckets: new Map(), count: 0, sum: 0 }));
    if (v.metricName === `${name}_sum`) s.sum += v.value;
    else if (v.metricName === `${name}_count`) s.count += v.value;
    else if (v.metricName === `${name}_bucket`) {
      const le = Number(label(v.labels, 'le'));
      // +Inf is the count, reported on its own.
      if (Number.isFinite(le)) s.buckets.set(le, (s.buckets.get(le) ?? 0) + v.value);
    }
  }
  const out = new Map<string, LatencyBuckets>();
  for (const [group, s] of series) {
    const bounds = [...s.buckets.keys()].sort((a, b) => a - b);
    out.set(group, { bounds, counts: bounds.map((b) => s.buckets.get(b) ?? 0), count: s.count, sum: s.sum });
  }
  return out;
}

/** A route with no observations yet: the same bounds as the others, so the page's columns line up. */
function emptyLatency(known: ReadonlyMap<string, LatencyBuckets>): LatencyBuckets {
  const bounds = known.values().next().value?.bounds ?? [];
  return { bounds, counts: bounds.map(() => 0), count: 0, sum: 0 };
}
