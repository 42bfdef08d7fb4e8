import type { EjectionRecord, Endpoint } from '../endpoint.js';
import type { PoolMember } from '../member.js';

/**
 * Active health checking seam. A checker probes a pool's endpoints on its own jittered timer and
 * moves them between `healthy` and `unhealthy`, then calls `onChange` so the pool recomputes its
 * usable set; requests never wait on a probe. The implementation is HttpHealthChecker
 * (./http-checker.ts).
 */
export interface HealthChecker {
  /** Begins checking exactly these members; `onChange` is called after every state change. */
  start(members: readonly PoolMember[], onChange: () => void): void;
  /**
   * Replaces the checked set (DNS discovery added or removed endpoints): new endpoints start
   * being checked, removed ones stop, the others keep their schedules.
   */
  update(members: readonly PoolMember[]): void;
  /** Clears every timer and discards checks in flight; `onChange` is never called afterwards. */
  stop(): void;
}

/**
 * Where a checker reports what it changed, so the gateway can log and count it. Called after the
 * endpoint's state was updated and before `onChange`. Listeners must not throw: they run on the
 * checker's timer, where an exception is a crash like any other in a timer callback.
 */
export interface HealthEvents {
  /** `unhealthyThreshold` checks failed in a row; `record` is the ejection just recorded. */
  unhealthy(endpoint: Endpoint, record: EjectionRecord): void;
  /** `healthyThreshold` checks passed in a row after the endpoint was unhealthy. */
  healthy(endpoint: Endpoint): void;
  /** A passing check ended a passive (outlier) ejection before its time was up. */
  restoredEarly(endpoint: Endpoint): void;
}

export const NULL_HEALTH_EVENTS: HealthEvents = Object.freeze({
  unhealthy(): void {},
  healthy(): void {},
  restoredEarly(): void {},
});

/**
 * Used while no `healthCheck` is configured. It checks nothing, but it does return endpoints that
 * a previous snapshot's checker left unhealthy: a reload that removes `healthCheck` keeps the same
 * Endpoint objects, and with no checker left to pass them again they would stay out for good.
 * (Passive ejections are left alone; the outlier detector owns those.)
 */
export const NULL_HEALTH_CHECKER: HealthChecker = Object.freeze({
  start(members: readonly PoolMember[], onChange: () => void): void {
    if (clearActiveState(members)) onChange();
  },
  update(members: readonly PoolMember[]): void {
    // Nothing to call back: whoever changes a pool's members recomputes its usable set anyway.
    clearActiveState(members);
  },
  stop(): void {},
});

function clearActiveState(members: readonly PoolMember[]): boolean {
  let changed = false;
  for (const { endpoint } of members) {
    const active = endpoint.active;
    if (!active.healthy) changed = true;
    active.healthy = true;
    active.passesInRow = 0;
    active.failuresInRow = 0;
    active.lastResult = null;
  }
  return changed;
}
