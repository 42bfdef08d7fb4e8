// The rate-limit plugin's public surface: what the gateway core wires in (the limiter, the events
// sink type) and what tests and benchmarks drive directly (the stores, the GCRA reference).

export { type DecisionCounter, type RateLimitDecision, type RateLimitEvents, SILENT_RATE_LIMIT_EVENTS, type StoreFailure } from './events.js';
export { createRateLimitFilter, RATE_LIMIT_FILTER_NAME, type RateLimitFilter } from './filter.js';
export { type GcraParams, gcraParams, gcraProbe, gcraState, type PolicyState, scaledParams } from './gcra.js';
export { describeKey, type KeySource, MAX_VALUE_LENGTH, PolicyKey } from './keys.js';
export { RateLimiter, type RateLimiterOptions } from './limiter.js';
export { DEFAULT_LOCAL_MAX_KEYS, LocalStore } from './local-store.js';
export { HEARTBEAT_INTERVAL_MS, HEARTBEAT_WINDOW_MS, MAX_BATCH, PROBE_INTERVAL_MS, RedisStore, type RedisStoreOptions } from './redis-store.js';
export { HEARTBEAT_SCRIPT, RATE_LIMIT_SCRIPT } from './script.js';
export type { RateLimitStore, Verdict } from './store.js';
