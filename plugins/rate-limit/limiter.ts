// The rate limiter of one gateway process: its store (Redis when gateway.yaml has a `redis` block,
// in-process otherwise), created at start and kept for the life of the process since gateway.yaml
// is read once; and the factory of each route's filter, called when a snapshot is compiled.

import type { RateLimitPolicyConfig, RedisConfig } from '../../src/config/types.js';
import { SILENT_RATE_LIMIT_EVENTS, type RateLimitEvents } from './events.js';
import { createRateLimitFilter, type RateLimitFilter } from './filter.js';
import { LocalStore } from './local-store.js';
import { RedisStore, type RedisStoreOptions } from './redis-store.js';
import type { RateLimitStore } from './store.js';

export type RateLimiterOptions = Omit<RedisStoreOptions, 'config' | 'events'>;

export class RateLimiter {
  readonly store: RateLimitStore;
  readonly #keyPrefix: string;
  readonly #events: RateLimitEvents;

  constructor(redis: RedisConfig | null, events: RateLimitEvents = SILENT_RATE_LIMIT_EVENTS, options: RateLimiterOptions = {}) {
    this.#events = events;
    this.#keyPrefix = redis?.keyPrefix ?? '';
    this.store = redis === null
      ? new LocalStore({ maxKeys: options.localMaxKeys })
      : new RedisStore({ ...options, config: redis, events });
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
