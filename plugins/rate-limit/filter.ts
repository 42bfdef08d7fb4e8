// The per-route `rateLimit: [policy, ...]` filter: builds each policy's key for the request, has
// the store decide all of them at once (all must allow), and answers per SPEC §4: on every
// response of the route `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` for the
// most restrictive policy (fewest remaining); when refused, 429 with `Retry-After`.
//
// Cost per request: one key string per policy, one store call (synchronous in-process, one share
// of a batched script call on Redis), three header values, one counter increment per policy.

import { GatewayError } from '../../src/errors.js';
import { type FilterContext, RATE_LIMIT_DECISION, type RequestFilter } from '../../src/filters/filter.js';
import type { RateLimitPolicyConfig } from '../../src/config/types.js';
import type { DecisionCounter, RateLimitEvents } from './events.js';
import { type GcraParams, gcraParams, type PolicyState } from './gcra.js';
import { type KeySource, PolicyKey } from './keys.js';
import type { RateLimitStore, Verdict } from './store.js';

export const RATE_LIMIT_FILTER_NAME = 'rate-limit';

/** A policy as one route's filter uses it, built once per snapshot. */
interface CompiledPolicy {
  readonly name: string;
  readonly limit: number;
  /** RateLimit-Limit while Redis decides: written once, not per response. */
  readonly limitHeader: string;
  readonly key: PolicyKey;
  readonly allowed: DecisionCounter;
  readonly limited: DecisionCounter;
  readonly storeError: DecisionCounter;
}

export interface RateLimitFilter extends RequestFilter {
  readonly name: typeof RATE_LIMIT_FILTER_NAME;
  readonly policies: readonly string[];
}

export function createRateLimitFilter(
  policies: readonly RateLimitPolicyConfig[],
  store: RateLimitStore,
  keyPrefix: string,
  events: RateLimitEvents,
): RateLimitFilter {
  if (policies.length === 0) throw new Error('a rate-limit filter needs at least one policy');
  const compiled: CompiledPolicy[] = policies.map((p) => ({
    name: p.name,
    limit: p.limit,
    limitHeader: String(p.limit),
    key: new PolicyKey(keyPrefix, p.name, p.key),
    allowed: events.decisionCounter(p.name, 'allowed'),
    limited: events.decisionCounter(p.name, 'limited'),
    storeError: events.decisionCounter(p.name, 'store_error'),
  }));
  const params: readonly GcraParams[] = Object.freeze(policies.map(gcraParams));

  const conclude = (ctx: FilterContext, verdict: Verdict): GatewayError | null => {
    if (verdict.kind === 'store_error') {
      for (const p of compiled) p.storeError.inc();
      ctx.attributes.set(RATE_LIMIT_DECISION, 'store_error');
      return verdict.allow ? null : new GatewayError('GW_ERR_RATELIMIT_UNAVAILABLE');
    }
    const states = verdict.states;
    let tightest = 0;
    let all = true;
    let retryAfterMs = 0;
    for (let i = 0; i < states.length; i++) {
      const state: PolicyState = states[i]!;
      if (state.remaining < states[tightest]!.remaining) tightest = i;
      if (state.allowed) {
        compiled[i]!.allowed.inc();
      } else {
        all = false;
        compiled[i]!.limited.inc();
        if (state.retryAfterMs > retryAfterMs) retryAfterMs = state.retryAfterMs;
      }
    }
    const state = states[tightest]!;
    const headers = ctx.responseHeaders;
    // While Redis is away each instance enforces limit / N: the header says what applies here.
    const policy = compiled[tightest]!;
    headers['ratelimit-limit'] = verdict.instances <= 1 ? policy.limitHeader : String(Math.max(1, Math.floor(policy.limit / verdict.instances)));
    headers['ratelimit-remaining'] = String(state.remaining);
    headers['ratelimit-reset'] = String(Math.ceil(state.resetMs / 1000));
    if (all) {
      ctx.attributes.set(RATE_LIMIT_DECISION, 'allowed');
      return null;
    }
    // Whole seconds, rounded up: a client that waits exactly this long is let through.
    headers['retry-after'] = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
    ctx.attributes.set(RATE_LIMIT_DECISION, 'limited');
    return new GatewayError('GW_ERR_RATELIMIT_LIMITED');
  };

  return {
    name: RATE_LIMIT_FILTER_NAME,
    policies: compiled.map((p) => p.name),
    apply(ctx: FilterContext): GatewayError | null | Promise<GatewayError | null> {
      const source: KeySource = { headers: ctx.req.headers, clientIp: ctx.clientIp, routeName: ctx.routeName, claims: ctx.claims };
      const keys = new Array<string>(compiled.length);
      for (let i = 0; i < compiled.length; i++) keys[i] = compiled[i]!.key.keyOf(source);
      const verdict = store.decide(params, keys);
      return verdict instanceof Promise ? verdict.then((v) => conclude(ctx, v)) : conclude(ctx, verdict);
    },
  };
}
