import type { UpstreamConfig } from '../config/types.js';
import type { Balancer, PickContext } from './balancers/types.js';
import { createBalancer } from './balancers/index.js';
import type { PoolMember } from './member.js';
import type { OutlierDetector } from './outlier/detector.js';
import { NULL_OUTLIER_DETECTOR } from './outlier/detector.js';
import { type HealthChecker, NULL_HEALTH_CHECKER } from './health/checker.js';

// Envoy's min_retry_concurrency default: a quiet pool may still retry a few requests at once.
const MIN_RETRY_CONCURRENCY = 3;

/**
 * One named pool (an `upstreams:` entry) as one snapshot sees it. The usable set is recomputed
 * when endpoint states change (timers, discovery), never per request: `pick` reads a prepared array.
 */
export class UpstreamPool {
  readonly name: string;
  readonly config: UpstreamConfig;
  readonly members: readonly PoolMember[];
  readonly balancer: Balancer<PoolMember>;
  readonly outlier: OutlierDetector;
  readonly health: HealthChecker;
  #usable: readonly PoolMember[];
  #panic = false;
  #active = 0;
  #activeRetries = 0;

  constructor(
    config: UpstreamConfig,
    members: readonly PoolMember[],
    outlier: OutlierDetector = NULL_OUTLIER_DETECTOR,
    health: HealthChecker = NULL_HEALTH_CHECKER,
  ) {
    this.name = config.name;
    this.config = config;
    this.members = members;
    this.balancer = createBalancer(config.balancer, members);
    this.outlier = outlier;
    this.health = health;
    this.#usable = members;
    this.refresh();
  }

  /** Starts the pool's timers (outlier sweep, health probes) when its snapshot goes live. */
  start(): void {
    this.outlier.start();
    this.health.start(this.members, () => this.refresh());
  }

  /** Stops them when its snapshot is replaced: the next snapshot's pool takes over the endpoints. */
  stop(): void {
    this.outlier.stop();
    this.health.stop();
  }

  get panic(): boolean {
    return this.#panic;
  }

  /** Recomputes the usable set; call whenever an endpoint's state changed. */
  refresh(): void {
    const healthy = this.members.filter((m) => m.endpoint.state === 'healthy');
    const total = this.members.length;
    // Panic (Envoy): below the threshold share of usable endpoints, spreading over all of them
    // beats piling every request onto the few that remain or answering 503 to everyone.
    this.#panic = total > 0 && (healthy.length * 100) / total < this.config.panicThresholdPercent;
    this.#usable = this.#panic ? this.members.filter((m) => m.endpoint.state !== 'draining') : healthy;
  }

  requestStarted(): void {
    this.#active++;
  }

  retryStarted(): void {
    this.#activeRetries++;
  }

  requestFinished(wasRetried: boolean): void {
    this.#active--;
    if (wasRetried) this.#activeRetries--;
  }

  /**
   * Envoy's retry budget: retries in progress may be at most `budget` percent of the requests in
   * progress (never fewer than MIN_RETRY_CONCURRENCY), so a failing pool cannot multiply its load.
   */
  retryBudgetAllows(): boolean {
    const allowed = Math.max(MIN_RETRY_CONCURRENCY, (this.#active * this.config.retries.budgetPercent) / 100);
    return this.#activeRetries < allowed;
  }

  /** The member to send the next request to, or null when the pool has none usable (503). */
  pick(ctx: PickContext): PoolMember | null {
    const usable = this.#usable;
    if (usable.length === 0) return null;
    if (usable.length === 1) return usable[0] ?? null;
    return this.balancer.pick(usable, ctx);
  }
}
