// Passive outlier detection (Envoy's `outlier_detection`, field by field): endpoints that answer
// 5xx, or fail at the connection level, several times in a row are ejected from their pool for a
// while, longer each time they come back and fail again.
//
// Optionally (`successRate`), each interval also ejects endpoints whose share of non-5xx answers
// is far below the pool's (Envoy's mean − 1.9 σ rule).
//
// The request path only records: `record` bumps a few counters on the endpoint and, at the moment a
// counter reaches its threshold, queues a decision. Decisions run in a microtask, after the
// request's own callbacks and before any other I/O (so no later request can pick the endpoint),
// and on the `interval` sweep, which also restores endpoints whose ejection is over.
// Cost per request: two integer updates and a compare; per sweep: O(endpoints of the pool).

import type { OutlierDetectionConfig, SuccessRateConfig } from '../../config/types.js';
import type { EjectionReason, EjectionRecord, Endpoint } from '../endpoint.js';
import type { PoolMember } from '../member.js';
import type { AttemptOutcome, FailureKind } from '../outcome.js';

/** Where ejections and returns are reported (log lines and metrics; see src/admin/upstream-events.ts). */
export interface OutlierEvents {
  ejected(endpoint: Endpoint, record: EjectionRecord): void;
  /** An ejection ended: its time was up, or an active check passed (reported by the checker). */
  restored(endpoint: Endpoint, after: EjectionRecord | null): void;
  /** A threshold was crossed but ejecting would have exceeded maxEjectionPercent. */
  ejectionCapped(endpoint: Endpoint, reason: EjectionReason, detail: string, ejected: number, total: number): void;
}

/**
 * The seam the pool and the proxy use; a null object when `outlierDetection: off`, so callers
 * never branch on "enabled".
 */
export interface OutlierDetector {
  record(endpoint: Endpoint, outcome: AttemptOutcome): void;
  /** Starts the sweep over the pool's members as they are at each tick; `onChange` after every ejection or return. */
  start(members: () => readonly PoolMember[], onChange: () => void): void;
  stop(): void;
}

/** The detector of `outlierDetection: off`: records nothing, ejects nothing. */
export const NULL_OUTLIER_DETECTOR: OutlierDetector = Object.freeze({
  record(): void {},
  start(): void {},
  stop(): void {},
});

// The client went away: says nothing about the endpoint either way.
const CLIENT_CLOSED = 499;

function isGatewayFailure(outcome: AttemptOutcome): boolean {
  return outcome.failure !== null || outcome.status === 502 || outcome.status === 503 || outcome.status === 504;
}

/** Endpoints that count for maxEjectionPercent (not draining), and how many are ejected. */
function census(members: readonly PoolMember[]): { total: number; ejected: number } {
  let total = 0;
  let ejected = 0;
  for (const m of members) {
    if (m.endpoint.draining) continue;
    total++;
    if (m.endpoint.passive.ejectedUntil !== null) ejected++;
  }
  return { total, ejected };
}

const FAILURE_WORDS: Readonly<Record<FailureKind, string>> = {
  'connect-failure': 'connect failure',
  reset: 'reset',
  timeout: 'timeout',
  protocol: 'invalid response',
};

export class ConsecutiveFailureDetector implements OutlierDetector {
  readonly #config: OutlierDetectionConfig;
  readonly #events: OutlierEvents;
  readonly #now: () => number;
  #members: () => readonly PoolMember[] = () => [];
  #onChange: () => void = () => {};
  #timer: NodeJS.Timeout | null = null;
  #decisionQueued = false;
  #running = false;

  constructor(config: OutlierDetectionConfig, events: OutlierEvents, now: () => number = Date.now) {
    this.#config = config;
    this.#events = events;
    this.#now = now;
  }

  record(endpoint: Endpoint, outcome: AttemptOutcome): void {
    const status = outcome.status;
    if (status === CLIENT_CLOSED && outcome.failure === null) return;
    const p = endpoint.passive;
    p.windowRequests++;
    if (status < 500) {
      p.windowSuccesses++;
      p.consecutive5xx = 0;
      p.consecutiveGatewayFailures = 0;
      return;
    }
    // Envoy (errors not split by origin): a connection failure is answered 502/504 by the gateway
    // and counts as a 5xx too, so consecutive5xx sees every failure and the gateway-failure
    // counter only the subset that points at the endpoint rather than the application.
    p.lastFailureStatus = p.consecutive5xx === 0 || p.lastFailureStatus === status ? status : -1;
    p.consecutive5xx++;
    if (isGatewayFailure(outcome)) {
      p.lastFailureKind = outcome.failure;
      p.lastGatewayFailureStatus = status;
      p.consecutiveGatewayFailures++;
    } else {
      p.consecutiveGatewayFailures = 0;
    }
    if (
      !p.pendingDecision && p.ejectedUntil === null
      && (p.consecutive5xx >= this.#config.consecutive5xx || p.consecutiveGatewayFailures >= this.#config.consecutiveGatewayFailures)
    ) {
      p.pendingDecision = true;
      this.#queueDecision();
    }
  }

  start(members: () => readonly PoolMember[], onChange: () => void): void {
    this.#members = members;
    this.#onChange = onChange;
    this.#running = true;
    this.#timer = setInterval(() => this.sweep(), this.#config.intervalMs);
    this.#timer.unref();
    // Thresholds crossed while no detector was running (between a reload's swap and this start)
    // are decided now rather than at the first tick.
    this.sweep();
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #queueDecision(): void {
    if (this.#decisionQueued || !this.#running) return;
    this.#decisionQueued = true;
    queueMicrotask(() => {
      this.#decisionQueued = false;
      if (this.#running) this.#decide(this.#now());
    });
  }

  /** One interval tick: returns endpoints whose time is up, decays multipliers, decides pending ejections. */
  sweep(): void {
    if (!this.#running) return;
    const now = this.#now();
    let changed = false;
    for (const member of this.#members()) {
      const endpoint = member.endpoint;
      const p = endpoint.passive;
      if (p.ejectedUntil !== null) {
        if (p.ejectedUntil <= now) {
          p.ejectedUntil = null;
          p.healthySince = now;
          p.consecutive5xx = 0;
          p.consecutiveGatewayFailures = 0;
          changed = true;
          this.#events.restored(endpoint, endpoint.lastEjection);
        }
      } else if (p.level > 0 && now - p.healthySince >= this.#config.intervalMs) {
        // Envoy: each interval spent back in the pool without an ejection takes one step off the
        // multiplier, so an endpoint that failed once long ago is not punished like a flapping one.
        p.level--;
        p.healthySince = now;
      }
    }
    if (changed) this.#onChange();
    this.#decide(now);
    if (this.#config.successRate !== null) this.#judgeSuccessRates(this.#config.successRate, now);
  }

  /**
   * Envoy's success-rate detection, once per interval: among endpoints with at least
   * `requestVolume` attempts in the interval (and only when there are `minimumHosts` of them),
   * eject those whose success rate is below mean − stdevFactor × σ. O(endpoints).
   */
  #judgeSuccessRates(settings: SuccessRateConfig, now: number): void {
    const members = this.#members();
    const sampled: { endpoint: Endpoint; rate: number; requests: number }[] = [];
    for (const { endpoint } of members) {
      const p = endpoint.passive;
      if (p.windowRequests >= settings.requestVolume && p.ejectedUntil === null && !endpoint.draining) {
        sampled.push({ endpoint, rate: (p.windowSuccesses * 100) / p.windowRequests, requests: p.windowRequests });
      }
      p.windowRequests = 0;
      p.windowSuccesses = 0;
    }
    if (sampled.length < settings.minimumHosts) return;
    const mean = sampled.reduce((sum, s) => sum + s.rate, 0) / sampled.length;
    const variance = sampled.reduce((sum, s) => sum + (s.rate - mean) ** 2, 0) / sampled.length;
    const threshold = mean - settings.stdevFactor * Math.sqrt(variance);
    const { total, ejected: ejectedBefore } = census(members);
    let ejected = ejectedBefore;
    let changed = false;
    for (const s of sampled) {
      if (s.rate >= threshold) continue;
      const detail = `success rate ${s.rate.toFixed(1)}% over ${s.requests} requests, below ${threshold.toFixed(1)}% (pool mean ${mean.toFixed(1)}%)`;
      if ((ejected + 1) * 100 > this.#config.maxEjectionPercent * total) {
        this.#events.ejectionCapped(s.endpoint, 'success_rate', detail, ejected, total);
        continue;
      }
      this.#eject(s.endpoint, 'success_rate', detail, now);
      ejected++;
      changed = true;
    }
    if (changed) this.#onChange();
  }

  #eject(endpoint: Endpoint, reason: EjectionReason, detail: string, now: number): void {
    const p = endpoint.passive;
    p.level++;
    const durationMs = Math.min(this.#config.baseEjectionTimeMs * p.level, this.#config.maxEjectionTimeMs);
    p.ejectedUntil = now + durationMs;
    this.#events.ejected(endpoint, endpoint.recordEjection(reason, detail, now, durationMs));
  }

  #decide(now: number): void {
    const members = this.#members();
    const { total, ejected: ejectedBefore } = census(members);
    let ejected = ejectedBefore;
    let changed = false;
    for (const member of members) {
      const endpoint = member.endpoint;
      const p = endpoint.passive;
      if (!p.pendingDecision) continue;
      p.pendingDecision = false;
      if (p.ejectedUntil !== null || endpoint.draining) continue;
      const verdict = this.#verdict(p);
      if (verdict === null) continue; // a success reset the counters before the decision ran
      p.consecutive5xx = 0;
      p.consecutiveGatewayFailures = 0;
      // Counted as if the ejection had happened: 1 of 3 is 33 %, 2 of 3 is 67 %. Envoy compares
      // the share before ejecting, so at 50 % it ejects the second of three (and at 67 %, all three).
      if ((ejected + 1) * 100 > this.#config.maxEjectionPercent * total) {
        this.#events.ejectionCapped(endpoint, verdict.reason, verdict.detail, ejected, total);
        continue;
      }
      this.#eject(endpoint, verdict.reason, verdict.detail, now);
      ejected++;
      changed = true;
    }
    if (changed) this.#onChange();
  }

  #verdict(p: Endpoint['passive']): { reason: EjectionReason; detail: string } | null {
    // Gateway failures first: they are the more specific diagnosis of the same run.
    if (p.consecutiveGatewayFailures >= this.#config.consecutiveGatewayFailures) {
      const kind = p.lastFailureKind === null ? `${String(p.lastGatewayFailureStatus)} answer` : FAILURE_WORDS[p.lastFailureKind];
      return {
        reason: 'consecutive_gateway_failure',
        detail: `${p.consecutiveGatewayFailures} consecutive gateway failures (last: ${kind})`,
      };
    }
    if (p.consecutive5xx >= this.#config.consecutive5xx) {
      const statuses = p.lastFailureStatus > 0 ? String(p.lastFailureStatus) : '5xx';
      return { reason: 'consecutive_5xx', detail: `${p.consecutive5xx} consecutive ${statuses}` };
    }
    return null;
  }
}
