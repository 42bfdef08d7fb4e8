import type { PoolMember } from '../member.js';

/**
 * Active health checking seam. A checker probes a pool's endpoints on its own jittered timer and
 * moves them between `healthy` and `unhealthy`, then calls `onChange` so the pool recomputes its
 * usable set; requests never wait on a probe.
 */
export interface HealthChecker {
  start(members: readonly PoolMember[], onChange: () => void): void;
  stop(): void;
}

/** Used while no `healthCheck` is configured (and until active checks are implemented). */
export const NULL_HEALTH_CHECKER: HealthChecker = Object.freeze({
  start(): void {},
  stop(): void {},
});
