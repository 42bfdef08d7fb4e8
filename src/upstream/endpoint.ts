import { Pool } from 'undici';
import { PeakEwma } from './latency.js';
import type { AttemptOutcome, FailureKind } from './outcome.js';

export type EndpointState = 'healthy' | 'ejected' | 'unhealthy' | 'draining';

/** Why an endpoint left the usable set; one name from config to metric label. */
export type EjectionReason = 'consecutive_5xx' | 'consecutive_gateway_failure' | 'success_rate' | 'active_health_check';

export interface EjectionRecord {
  readonly reason: EjectionReason;
  /** The evidence, e.g. "5 consecutive 502" or "3 failed checks in a row: status 500". */
  readonly detail: string;
  /** Epoch ms. */
  readonly at: number;
  /** How long the ejection lasts; null for `active_health_check` (until checks pass again). */
  readonly durationMs: number | null;
  /** Which ejection of this endpoint it is (1 for the first). */
  readonly number: number;
}

export interface EndpointOptions {
  readonly connectTimeoutMs: number;
  readonly maxConnections: number;
  readonly keepAliveTimeoutMs: number;
}

// Smoothing of the latency average shown in /upstreams: ~10 samples of memory, enough to show a
// trend without reacting to a single slow request.
const EWMA_ALPHA = 0.1;

/**
 * Passive outlier-detection state of one endpoint. The request path only bumps the counters; the
 * detector reads them, ejects and restores (src/upstream/outlier/detector.ts).
 */
export interface PassiveState {
  consecutive5xx: number;
  consecutiveGatewayFailures: number;
  /** The status every failure of the current run had, or -1 when they differed: the evidence. */
  lastFailureStatus: number;
  /** How the latest gateway failure happened; null when the upstream itself answered 502/503/504. */
  lastFailureKind: FailureKind | null;
  /** The status of the latest gateway failure (what the upstream or the gateway answered). */
  lastGatewayFailureStatus: number;
  /** Set when a counter reaches its threshold: the detector has a decision to make. */
  pendingDecision: boolean;
  /** Epoch ms at which the current ejection ends; null when not ejected. */
  ejectedUntil: number | null;
  /** Envoy's ejection multiplier: the next ejection lasts (level + 1) × base. Decays while healthy. */
  level: number;
  /** Epoch ms of the latest return or level decay, from which the next decay is counted. */
  healthySince: number;
  /** Attempts and non-5xx answers since the last sweep: the success-rate sample. */
  windowRequests: number;
  windowSuccesses: number;
}

/** Active health-check state of one endpoint (src/upstream/health/checker.ts). */
export interface ActiveState {
  /** False once `unhealthyThreshold` checks failed in a row, until `healthyThreshold` pass. */
  healthy: boolean;
  passesInRow: number;
  failuresInRow: number;
  /** The latest check's result, e.g. "status 500" or "timeout after 1000ms". */
  lastResult: string | null;
}

/**
 * One upstream address of one pool, with everything that must survive a reload: its undici Pool
 * (and so its keep-alive connections), in-flight count, latency estimates, and passive and active
 * health state. Weights are per snapshot and live on PoolMember, not here.
 */
export class Endpoint {
  readonly upstream: string;
  /** `host:port`, the `endpoint` metric label and the identity shown in /upstreams. */
  readonly address: string;
  /** Origin, e.g. http://10.0.0.11:8080. */
  readonly url: string;
  readonly dispatcher: Pool;
  /** Registry key: the same key in a new snapshot means the same Endpoint object is reused. */
  readonly key: string;
  readonly maxConnections: number;

  inFlight = 0;
  /** Ejections so far (passive and active), for /upstreams and the next ejection's number. */
  ejections = 0;
  lastEjection: EjectionRecord | null = null;
  latencyEwmaMs = 0;
  /** Peak-EWMA latency estimate (Finagle), read by the peak-ewma balancer. */
  readonly latency = new PeakEwma();
  readonly passive: PassiveState = {
    consecutive5xx: 0,
    consecutiveGatewayFailures: 0,
    lastFailureStatus: 0,
    lastFailureKind: null,
    lastGatewayFailureStatus: 0,
    pendingDecision: false,
    ejectedUntil: null,
    level: 0,
    healthySince: Date.now(),
    windowRequests: 0,
    windowSuccesses: 0,
  };

  readonly active: ActiveState = { healthy: true, passesInRow: 0, failuresInRow: 0, lastResult: null };
  /** Set when no snapshot's pool lists the endpoint any more; it closes once idle. */
  draining = false;
  /**
   * performance.now() when the endpoint joined a live pool or came back into use; pools with
   * `slowStart` ramp its share up from then. null: at its full share.
   */
  warmingSince: number | null = null;
  /** Whether it was usable at the last refresh of its pool, so a return can be seen. */
  wasUsable = true;

  constructor(upstream: string, url: string, key: string, options: EndpointOptions) {
    this.upstream = upstream;
    this.url = url;
    this.key = key;
    this.maxConnections = options.maxConnections;
    const parsed = new URL(url);
    this.address = `${parsed.hostname}:${parsed.port || (parsed.protocol === 'https:' ? '443' : '80')}`;
    this.dispatcher = new Pool(url, {
      connections: options.maxConnections,
      connectTimeout: options.connectTimeoutMs,
      keepAliveTimeout: options.keepAliveTimeoutMs,
      // One request per connection at a time: pipelining to arbitrary upstreams turns one slow
      // response into head-of-line blocking for unrelated clients.
      pipelining: 1,
    });
  }

  /** What /upstreams and gateway_upstream_endpoints show; a passive ejection names its reason. */
  get state(): EndpointState {
    if (this.draining) return 'draining';
    if (this.passive.ejectedUntil !== null) return 'ejected';
    if (!this.active.healthy) return 'unhealthy';
    return 'healthy';
  }

  /** True when the balancer may pick it outside panic mode. */
  get usable(): boolean {
    return !this.draining && this.passive.ejectedUntil === null && this.active.healthy;
  }

  get ejectedUntil(): number | null {
    return this.passive.ejectedUntil;
  }

  begin(): void {
    this.inFlight++;
  }

  end(outcome: AttemptOutcome): void {
    this.inFlight--;
    this.latency.observe(outcome.durationMs, performance.now());
    this.latencyEwmaMs = this.latencyEwmaMs === 0
      ? outcome.durationMs
      : this.latencyEwmaMs + EWMA_ALPHA * (outcome.durationMs - this.latencyEwmaMs);
  }

  /** Records an ejection (by the outlier detector or the health checker) and returns its record. */
  recordEjection(reason: EjectionReason, detail: string, at: number, durationMs: number | null): EjectionRecord {
    this.ejections++;
    const record: EjectionRecord = { reason, detail, at, durationMs, number: this.ejections };
    this.lastEjection = record;
    return record;
  }

  /** Closes once queued requests have finished (undici Pool.close waits for them). */
  async close(): Promise<void> {
    this.draining = true;
    await this.dispatcher.close();
  }
}
