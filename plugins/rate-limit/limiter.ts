// The rate limiter of one gateway process: its store (Redis when gateway.yaml has a `redis` block,
// in-process otherwise), created at start and kept for the life of the process since gateway.yaml
// is read once; and the factory of each route's filter, called when a snapshot is compiled.

import type { RateLimitPolicyConfig, RedisConfig } from '../../src/config/types.js';
import { SILENT_RATE_LIMIT_EVENTS, type RateLimitEvents } from './events.js';
import { createRateLimitFilter, type RateLimitFilter } from './filter.js';
import { LocalStore } from './local-store.js';
import type { RedisStoreOptions } from './redis-store.js';
import type { RateLimitStore } from './store.js';

export type RateLimiterOptions = Omit<RedisStoreOptions, 'config' | 'events'>;

export class RateLimiter {
  readonly store: RateLimitStore;
  readonly #keyPrefix: string;
  readonly #events: RateLimitEvents;

  /**
   * ioredis is loaded only when there is a `redis` block: merely importing it made a gateway
   * without Redis spend ~4 us more CPU per request (bench A/B; process.nextTick throughput halved
   * after start). Not pinned down why; its module does create a diagnostics_channel tracing channel.
   */
  static async create(redis: RedisConfig | null, events: RateLimitEvents = SILENT_RATE_LIMIT_EVENTS, options: RateLimiterOptions = {}): Promise<RateLimiter> {
    if (redis === null) return new RateLimiter(new LocalStore({ maxKeys: options.localMaxKeys }), '', events);
    const { RedisStore } = await import('./redis-store.js');
    return new RateLimiter(new RedisStore({ ...options, config: redis, events }), redis.keyPrefix, events);
  }

  constructor(store: RateLimitStore, keyPrefix: string, events: RateLimitEvents = SILENT_RATE_LIMIT_EVENTS) {
    this.store = store;
    this.#keyPrefix = keyPrefix;
    this.#events = events;
  }

  /** False only while Redis is down with `failureMode: closed`: every limited request would get 503. */
  get ready(): boolean {
    return this.store.ready;
  }

  start(): void {
    this.store.start();
  }

  stop(): Promise<void> {
    return this.store.stop();
  }

  /** The filter of a route that lists `policies` (in the route's order), built once per snapshot. */
  filterFor(policies: readonly RateLimitPolicyConfig[]): RateLimitFilter {
    return createRateLimitFilter(policies, this.store, this.#keyPrefix, this.#events);
  }
}
