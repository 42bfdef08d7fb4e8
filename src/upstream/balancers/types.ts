/** What a balancer may read of an endpoint. The endpoint owns these numbers; balancers never write them. */
export interface BalancedEndpoint {
  /** Stable identity, `host:port`; unique within a pool (balancers key state by it, reject duplicates). */
  readonly address: string;
  /**
   * Relative share of traffic: a finite number > 0 (a balancer's constructor rejects anything else
   * with GW_ERR_CONFIG_INVALID). Fixed for the lifetime of a balancer — PoolMember weights are per
   * snapshot, and a snapshot builds new balancers — so balancers may precompute from it.
   */
  readonly weight: number;
  /** Requests currently outstanding on this endpoint. */
  readonly inFlight: number;
  /**
   * The endpoint's latency estimate (its `PeakEwma`, src/upstream/latency.ts), read by peak-ewma.
   * The endpoint feeds it; balancers only read it.
   */
  readonly latency: LatencyEstimate;
}

/** What the peak-ewma balancer reads of an endpoint's response times. */
export interface LatencyEstimate {
  /**
   * Expected response time in ms as of `nowMs` (the same monotonic clock the samples were stamped
   * with, performance.now()). Must be cheap, must not allocate, and must not change the estimate:
   * it is called twice per pick.
   */
  costMs(nowMs: number): number;
}

/** Per-request input some balancers use (consistent-hash); others ignore it. */
export interface PickContext {
  readonly hashKey: string | null;
}

/**
 * A balancing algorithm over one pool. It is built once per pool per snapshot, for the pool's full
 * endpoint list, and then asked to pick among the currently usable subset (ejected/unhealthy
 * endpoints filtered out by the pool). `candidates` is never empty and is always a subset of the
 * endpoints the balancer was built with, in the same relative order.
 */
export interface Balancer<E extends BalancedEndpoint = BalancedEndpoint> {
  readonly name: string;
  /**
   * Runs on every request: O(1) or O(candidates), no allocation. Throws GW_ERR_UPSTREAM_UNAVAILABLE
   * for an empty list, and GW_ERR_INTERNAL when a stateful balancer meets a candidate it was not
   * built with (both are caller bugs: the pool never asks with nothing usable).
   */
  pick(candidates: readonly E[], ctx: PickContext): E;
}
