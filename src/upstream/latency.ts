// Peak EWMA of response latency (Finagle's `PeakEwma`, also Linkerd's): an average that jumps up
// to any sample above it at once and decays towards lower samples with time constant TAU, so a
// sudden slowdown is seen on its first slow response while a recovery needs a few fast ones.
// Time-based rather than per-sample weighting: the weight of the previous estimate is
// exp(-elapsed / TAU), so ten fast samples in one millisecond count for little, and a recovery
// takes about TAU of wall time however much traffic the endpoint gets.
//
// Reading decays too (Finagle's `Metric.get` folds in a zero sample): `costMs(now)` is the stored
// estimate × exp(-(now - last sample) / TAU), sliding towards 0 while no response arrives. Without
// it an endpoint that was slow once and then lost every comparison would keep its bad estimate
// forever, since only traffic can correct it; with it, its cost halves about every 7 s (TAU ln 2)
// until it wins a comparison again and the next response sets a fresh estimate. That is the probe:
// a slow endpoint still slow goes straight back to its peak (one request's worth of traffic), a
// recovered one gets its share back. Unlike Finagle, reading does not write: the decay is
// computed from the time since the last sample, so the estimate does not depend on how often
// balancers look at it (balancers never write endpoint state), and a sample after a silence
// blends with the undecayed estimate — the decay is an allowance for missing evidence, not
// evidence that the endpoint got faster.
//
// Cost: one Math.exp per sample and per read; no allocation.

import type { LatencyEstimate } from './balancers/types.js';

// Finagle's default decay time: ~10 s of memory.
export const TAU_MS = 10_000;

// The estimate of an endpoint never measured. Zero would make every new endpoint look infinitely
// fast and draw a burst; Linkerd starts unmeasured endpoints at a moderate default instead. It
// does not decay (there is no sample to age) until the first response replaces it.
export const DEFAULT_RTT_MS = 10;

export class PeakEwma implements LatencyEstimate {
  #costMs = DEFAULT_RTT_MS;
  /** performance.now() of the last sample; -1 before the first. */
  #stampMs = -1;

  /**
   * Folds in one attempt's duration, measured at `nowMs` (performance.now()). A duration that is
   * not a finite number ≥ 0 is ignored: one NaN would otherwise poison the estimate for good.
   */
  observe(rttMs: number, nowMs: number): void {
    if (!(rttMs >= 0) || rttMs === Number.POSITIVE_INFINITY) return;
    if (this.#stampMs < 0) {
      // First sample replaces the default outright.
      this.#costMs = rttMs;
    } else if (rttMs > this.#costMs) {
      // The peak: a slowdown counts in full at once.
      this.#costMs = rttMs;
    } else {
      const w = Math.exp(-Math.max(0, nowMs - this.#stampMs) / TAU_MS);
      this.#costMs = this.#costMs * w + rttMs * (1 - w);
    }
    this.#stampMs = nowMs;
  }

  /**
   * The estimate in ms as of `nowMs`, decayed towards 0 by the time since the last sample (see the
   * header); DEFAULT_RTT_MS before the first sample. Pure: reading changes nothing.
   */
  costMs(nowMs: number): number {
    if (this.#stampMs < 0) return this.#costMs;
    const elapsed = nowMs - this.#stampMs;
    return elapsed > 0 ? this.#costMs * Math.exp(-elapsed / TAU_MS) : this.#costMs;
  }

  /** The estimate in ms, without decay applied (what the last sample left). */
  get estimateMs(): number {
    return this.#costMs;
  }
}
