// The small interface both stores implement (as @fastify/rate-limit's LocalStore and RedisStore
// do): decide one request's policies, all or nothing, and say how.

import type { GcraParams, PolicyState } from './gcra.js';

export type Verdict =
  /**
   * `states[i]` answers `params[i]`; the request passes when every state allows. `instances` is
   * the N the limits were divided by: 1 unless Redis is down and this gateway limits on its own.
   */
  | { readonly kind: 'decided'; readonly states: readonly PolicyState[]; readonly instances: number }
  /** The shared store failed and failureMode is `open` (allow) or `closed` (refuse with 503). */
  | { readonly kind: 'store_error'; readonly allow: boolean };

export interface RateLimitStore {
  /** `keys[i]` is counted by `params[i]`. Synchronous when the store is in-process. */
  decide(params: readonly GcraParams[], keys: readonly string[]): Verdict | Promise<Verdict>;
  /** False while a store that cannot decide would refuse requests (`failureMode: closed`, Redis down). */
  readonly ready: boolean;
  start(): void;
  stop(): Promise<void>;
}
