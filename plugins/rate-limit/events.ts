// What the rate-limit plugin reports, so the gateway can log and count it. The plugin never logs
// by itself. Decision counters are bound once per policy and snapshot (a prom-client child), so a
// decision costs one increment and no label lookup.

export type RateLimitDecision = 'allowed' | 'limited' | 'store_error';

/** Why a call to Redis failed: `timeout` (slower than commandTimeout), `connection` (not connected), `error` (Redis answered an error). */
export type StoreFailure = 'timeout' | 'connection' | 'error';

export interface DecisionCounter {
  inc(): void;
}

export interface RateLimitEvents {
  /** `gateway_ratelimit_decisions_total{policy,decision}`, bound once per policy. */
  decisionCounter(policy: string, decision: RateLimitDecision): DecisionCounter;
  /** One per call to Redis that got an answer: its round trip. */
  storeRoundTrip(seconds: number): void;
  /** One per call to Redis that failed. */
  storeError(reason: StoreFailure, detail: string): void;
  /** Redis became usable (`up`) or not; `reason` says why it went down. */
  storeState(up: boolean, reason: string | null, failureMode: string): void;
  /** The number of gateway instances seen heartbeating (the N of limit / N). */
  instances(count: number): void;
}

const NO_COUNTER: DecisionCounter = { inc(): void {} };

export const SILENT_RATE_LIMIT_EVENTS: RateLimitEvents = {
  decisionCounter: () => NO_COUNTER,
  storeRoundTrip(): void {},
  storeError(): void {},
  storeState(): void {},
  instances(): void {},
};
