import type { Logger } from 'pino';
import type { EjectionReason, EjectionRecord, Endpoint } from '../upstream/endpoint.js';
import type { TargetConfig } from '../config/types.js';
import type { DnsDiscoveryEvents } from '../upstream/discovery/dns.js';
import type { HealthEvents } from '../upstream/health/checker.js';
import type { OutlierEvents } from '../upstream/outlier/detector.js';
import type { PoolEvents } from '../upstream/pool.js';
import type { GatewayMetrics } from './metrics.js';

/**
 * Turns what pools, detectors, health checkers and discovery report into structured log lines
 * (`event` names one kind of line) and metrics. Every ejection is explained: endpoint, reason,
 * evidence, which ejection it is and how long it lasts.
 */
export class UpstreamEventLog implements OutlierEvents, PoolEvents, HealthEvents, DnsDiscoveryEvents {
  readonly #log: Logger;
  readonly #metrics: GatewayMetrics;

  constructor(log: Logger, metrics: GatewayMetrics) {
    this.#log = log;
    this.#metrics = metrics;
  }

  ejected(endpoint: Endpoint, record: EjectionRecord): void {
    this.#metrics.outlierEjections.labels(endpoint.upstream, endpoint.address, record.reason).inc();
    const lasting = record.durationMs === null ? 'until health checks pass' : `for ${record.durationMs}ms`;
    this.#log.warn(
      {
        event: 'endpoint_ejected',
        upstream: endpoint.upstream,
        endpoint: endpoint.address,
        reason: record.reason,
        detail: record.detail,
        ejection: record.number,
        durationMs: record.durationMs,
      },
      `${endpoint.upstream} ${endpoint.address} ejected (${record.reason}: ${record.detail}), ejection ${record.number}, ${lasting}`,
    );
  }

  restored(endpoint: Endpoint, after: EjectionRecord | null, why = 'ejection time over'): void {
    this.#log.info(
      { event: 'endpoint_restored', upstream: endpoint.upstream, endpoint: endpoint.address, reason: after?.reason ?? null, why },
      `${endpoint.upstream} ${endpoint.address} back in the pool (${why})`,
    );
  }

  unhealthy(endpoint: Endpoint, record: EjectionRecord): void {
    this.ejected(endpoint, record);
  }

  healthy(endpoint: Endpoint): void {
    this.#log.info(
      { event: 'endpoint_healthy', upstream: endpoint.upstream, endpoint: endpoint.address, lastCheck: endpoint.active.lastResult },
      `${endpoint.upstream} ${endpoint.address} passes its health checks again`,
    );
  }

  restoredEarly(endpoint: Endpoint): void {
    this.restored(endpoint, endpoint.lastEjection, 'a health check passed');
  }

  ejectionCapped(endpoint: Endpoint, reason: EjectionReason, detail: string, ejected: number, total: number): void {
    this.#log.warn(
      { event: 'ejection_capped', upstream: endpoint.upstream, endpoint: endpoint.address, reason, detail, ejected, total },
      `${endpoint.upstream} ${endpoint.address} not ejected (${reason}: ${detail}): ${ejected} of ${total} endpoints already ejected, maxEjectionPercent reached`,
    );
  }

  panicChanged(pool: string, panic: boolean, usable: number, total: number): void {
    const fields = { event: panic ? 'panic_started' : 'panic_ended', upstream: pool, usable, total };
    if (panic) this.#log.warn(fields, `${pool}: only ${usable} of ${total} endpoints usable, below panicThreshold: balancing over all of them`);
    else this.#log.info(fields, `${pool}: ${usable} of ${total} endpoints usable, panic mode over`);
  }

  resolved(upstream: string, targets: readonly TargetConfig[], ttlMs: number, changed: boolean): void {
    this.#metrics.discoveryResolutions.labels(upstream, 'success').inc();
    this.#log.debug({ event: 'dns_resolved', upstream, endpoints: targets.length, ttlMs, changed }, `${upstream}: DNS answered ${targets.length} endpoints`);
  }

  failed(upstream: string, reason: string, keptCount: number): void {
    this.#metrics.discoveryResolutions.labels(upstream, 'failure').inc();
    this.#log.warn(
      { event: 'dns_failed', upstream, reason, kept: keptCount },
      `${upstream}: DNS lookup failed (${reason}); keeping the last good ${keptCount} endpoints`,
    );
  }

  listenerFailed(upstream: string, error: unknown): void {
    this.#log.error({ event: 'discovery_update_failed', upstream, err: error }, `${upstream}: applying a DNS change failed`);
  }

  membersChanged(pool: string, added: readonly string[], removed: readonly string[]): void {
    this.#log.info({ event: 'endpoints_changed', upstream: pool, added, removed }, `${pool}: discovery added ${added.length}, removed ${removed.length} endpoints`);
  }
}
