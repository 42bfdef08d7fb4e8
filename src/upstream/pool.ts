import type { SlowStartConfig, TargetConfig, UpstreamConfig } from '../config/types.js';
import type { Balancer, PickContext } from './balancers/types.js';
import { createBalancer } from './balancers/index.js';
import type { DiscoveryProvider } from './discovery/provider.js';
import { type HashKeySpec, parseHashOn } from './hash-key.js';
import type { PoolMember } from './member.js';
import type { OutlierDetector } from './outlier/detector.js';
import { NULL_OUTLIER_DETECTOR } from './outlier/detector.js';
import { type HealthChecker, NULL_HEALTH_CHECKER } from './health/checker.js';

// Envoy's min_retry_concurrency default: a quiet pool may still retry a few requests at once.
const MIN_RETRY_CONCURRENCY = 3;

// How many times the balancer is asked for an endpoint a request has not tried yet before the
// pool scans for one itself.
const RETRY_PICKS = 3;

/** What a pool reports about itself (log lines and metrics; see src/admin/upstream-events.ts). */
export interface PoolEvents {
  panicChanged(pool: string, panic: boolean, usable: number, total: number): void;
  membersChanged(pool: string, added: readonly string[], removed: readonly string[]): void;
}

const SILENT_POOL_EVENTS: PoolEvents = Object.freeze({ panicChanged(): void {}, membersChanged(): void {} });

export interface PoolParts {
  readonly outlier?: OutlierDetector;
  readonly health?: HealthChecker;
  /** Set for discovered pools: its changes replace the members while the pool is live. */
  readonly discovery?: DiscoveryProvider | null;
  /** Turns a discovered target into a member (the registry reuses known endpoints). */
  readonly memberFor?: (target: TargetConfig) => PoolMember;
  /** Called after discovery replaced the members, so endpoints nobody lists any more are closed. */
  readonly onMembersReplaced?: () => void;
  readonly events?: PoolEvents;
}

/**
 * One named pool (an `upstreams:` entry) as one snapshot sees it. The usable set is recomputed
 * when endpoint states change (timers, discovery), never per request: `pick` reads a prepared array.
 * Members change only through discovery, by replacing the member list and balancer together.
 */
export class UpstreamPool {
  readonly name: string;
  readonly config: UpstreamConfig;
  readonly outlier: OutlierDetector;
  readonly health: HealthChecker;
  /** What consistent-hash pools hash on; null for every other balancer. */
  readonly hashKey: HashKeySpec | null;
  readonly #discovery: DiscoveryProvider | null;
  readonly #memberFor: ((target: TargetConfig) => PoolMember) | null;
  readonly #onMembersReplaced: () => void;
  readonly #events: PoolEvents;
  #members: readonly PoolMember[];
  #balancer: Balancer<PoolMember>;
  #usable: readonly PoolMember[];
  #panic = false;
  #active = 0;
  #activeRetries = 0;
  #unsubscribe: (() => void) | null = null;

  constructor(config: UpstreamConfig, members: readonly PoolMember[], parts: PoolParts = {}) {
    this.name = config.name;
    this.config = config;
    this.outlier = parts.outlier ?? NULL_OUTLIER_DETECTOR;
    this.health = parts.health ?? NULL_HEALTH_CHECKER;
    this.#discovery = parts.discovery ?? null;
    this.#memberFor = parts.memberFor ?? null;
    this.#onMembersReplaced = parts.onMembersReplaced ?? (() => {});
    this.#events = parts.events ?? SILENT_POOL_EVENTS;
    this.hashKey = config.hashOn === null ? null : parseHashOn(config.hashOn);
    this.#members = members;
    this.#balancer = createBalancer(config.balancer, members);
    this.#usable = members;
    this.refresh();
  }

  get members(): readonly PoolMember[] {
    return this.#members;
  }

  get balancer(): Balancer<PoolMember> {
    return this.#balancer;
  }

  get panic(): boolean {
    return this.#panic;
  }

  /** Starts the pool's timers and discovery subscription when its snapshot goes live. */
  start(): void {
    const refresh = (): void => this.refresh();
    this.outlier.start(() => this.#members, refresh);
    this.health.start(this.#members, refresh);
    if (this.#discovery !== null) {
      this.#unsubscribe = this.#discovery.onChange((targets) => this.#replaceMembers(targets));
      // Discovery may have moved on between compile and going live.
      this.#replaceMembers(this.#discovery.current());
    }
  }

  /** Stops them when its snapshot is replaced: the next snapshot's pool takes over the endpoints. */
  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.outlier.stop();
    this.health.stop();
  }

  #replaceMembers(targets: readonly TargetConfig[]): void {
    if (this.#memberFor === null) return;
    const before = new Map(this.#members.map((m) => [m.endpoint.url, m]));
    const unchanged = targets.length === before.size && targets.every((t) => before.get(t.url)?.weight === t.weight);
    if (unchanged) return;
    const seen = new Set<string>();
    const members: PoolMember[] = [];
    for (const target of targets) {
      if (seen.has(target.url)) continue; // one endpoint per origin, whatever the answer repeats
      seen.add(target.url);
      members.push(this.#memberFor(target));
    }
    const added = members.filter((m) => !before.has(m.endpoint.url)).map((m) => m.address);
    const removed = [...before.values()].filter((m) => !seen.has(m.endpoint.url)).map((m) => m.address);
    // Balancer and members are swapped together, so a pick never sees one without the other.
    this.#balancer = createBalancer(this.config.balancer, members);
    this.#members = members;
    this.health.update(members);
    this.refresh();
    this.#events.membersChanged(this.name, added, removed);
    this.#onMembersReplaced();
  }

  /** Recomputes the usable set; call whenever an endpoint's state changed. */
  refresh(): void {
    const members = this.#members;
    const now = performance.now();
    for (const { endpoint } of members) {
      const usable = endpoint.usable;
      if (usable && !endpoint.wasUsable) endpoint.warmingSince = now; // back from an ejection or failed checks
      endpoint.wasUsable = usable;
    }
    const healthy = members.filter((m) => m.endpoint.usable);
    const live = members.filter((m) => !m.endpoint.draining);
    // Panic (Envoy): below the threshold share of usable endpoints, spreading over all of them
    // beats piling every request onto the few that remain or answering 503 to everyone.
    const panic = live.length > 0 && (healthy.length * 100) / live.length < this.config.panicThresholdPercent;
    if (panic !== this.#panic) this.#events.panicChanged(this.name, panic, healthy.length, live.length);
    this.#panic = panic;
    this.#usable = panic ? live : healthy;
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
   * Envoy's retry budget, measured against first tries: requests retrying may be at most `budget`
   * percent of the requests still on their first try (never fewer than MIN_RETRY_CONCURRENCY).
   * Envoy divides by all requests in progress, which lets a pool where everything fails reach
   * 1 + budget / (1 - budget) upstream hits per request (1.25 at 20 %); this keeps it at 1 + budget.
   * Counted as if the retry had started, so the share is never exceeded, not even by one.
   * `alreadyRetrying`: the request asking is among the retrying already (its second retry).
   */
  retryBudgetAllows(alreadyRetrying: boolean): boolean {
    const retrying = this.#activeRetries + (alreadyRetrying ? 0 : 1);
    const firstTries = this.#active - retrying;
    const allowed = Math.max(MIN_RETRY_CONCURRENCY, (firstTries * this.config.retries.budgetPercent) / 100);
    return retrying <= allowed;
  }

  /** The member to send the next request to, or null when the pool has none usable (503). */
  pick(ctx: PickContext): PoolMember | null {
    const usable = this.#usable;
    if (usable.length === 0) return null;
    if (usable.length === 1) return usable[0] ?? null;
    const chosen = this.#balancer.pick(usable, ctx);
    const slowStart = this.config.slowStart;
    if (slowStart === null || chosen.endpoint.warmingSince === null || this.#panic) return chosen;
    return this.#admitWarming(chosen, usable, slowStart);
  }

  /**
   * Slow start (Envoy's slow_start_config), for any balancer but consistent-hash: a warming
   * endpoint the balancer chose keeps the request with probability
   * max(minWeight, (age / window)^(1 / aggression)); otherwise it goes to another usable endpoint,
   * found by a scan from a random start. Costs one clock read and one draw per pick of a warming
   * endpoint; nothing for the others.
   */
  #admitWarming(chosen: PoolMember, usable: readonly PoolMember[], slowStart: SlowStartConfig): PoolMember {
    const endpoint = chosen.endpoint;
    const age = performance.now() - endpoint.warmingSince!; // checked by the caller
    if (age >= slowStart.windowMs) {
      endpoint.warmingSince = null;
      return chosen;
    }
    const share = Math.max(slowStart.minWeightPercent / 100, (age / slowStart.windowMs) ** (1 / slowStart.aggression));
    if (Math.random() < share) return chosen;
    const n = usable.length;
    const start = Math.floor(Math.random() * n);
    let fallback: PoolMember | null = null;
    for (let k = 0; k < n; k++) {
      const member = usable[(start + k) % n]!; // index < n
      if (member === chosen) continue;
      if (member.endpoint.warmingSince === null) return member;
      fallback ??= member;
    }
    return fallback ?? chosen;
  }

  /**
   * A member for a retry: one not in `tried` whenever the usable set has one (the balancer's
   * choice first, then a scan from a random start), else one already tried.
   */
  pickExcluding(ctx: PickContext, tried: readonly PoolMember[]): PoolMember | null {
    const usable = this.#usable;
    let candidate: PoolMember | null = null;
    for (let i = 0; i < RETRY_PICKS; i++) {
      candidate = this.pick(ctx);
      if (candidate === null || !tried.includes(candidate)) return candidate;
    }
    const n = usable.length;
    const start = Math.floor(Math.random() * n);
    for (let k = 0; k < n; k++) {
      const member = usable[(start + k) % n]!; // index < n
      if (!tried.includes(member)) return member;
    }
    return candidate;
  }

  /**
   * Circuit breaking (Envoy's max_pending_requests): true when `member` has no free connection
   * and the pool already has `maxPendingRequests` requests waiting for one. O(1) while the
   * endpoint has a free connection, O(members) otherwise.
   */
  overflows(member: PoolMember): boolean {
    const endpoint = member.endpoint;
    if (endpoint.inFlight < endpoint.maxConnections) return false;
    let pending = 0;
    for (const m of this.#members) {
      const waiting = m.endpoint.inFlight - m.endpoint.maxConnections;
      if (waiting > 0) pending += waiting;
    }
    return pending >= this.config.maxPendingRequests;
  }
}
