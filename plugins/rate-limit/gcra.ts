// GCRA (the generic cell rate algorithm, ITU-T I.371; what redis-cell and Stripe's limiter use):
// one number per key, the theoretical arrival time (TAT) of the next request if requests came
// exactly at the sustained rate. A request at `now` is allowed when
//   max(TAT, now) + period - tolerance <= now
// and then moves TAT to max(TAT, now) + period. With period = window / limit and
// tolerance = period x burst, `burst` requests pass at once and `limit` per window sustained.
// O(1) time and one stored number per key, unlike a sliding log; exact, unlike fixed windows.
//
// The Lua script (script.ts) runs this same arithmetic inside Redis; this file is the in-process
// store's copy and the reference the tests hold both to. Times are integer microseconds.

import type { RateLimitPolicyConfig } from '../../src/config/types.js';

/** A policy's GCRA parameters, computed once per snapshot. */
export interface GcraParams {
  /** Emission interval: window / limit, in microseconds (at least 1). */
  readonly periodUs: number;
  /** Delay variation tolerance: period x burst, in microseconds. */
  readonly toleranceUs: number;
  /** `"<period> <tolerance>"`: the policy as the Lua script reads it, written once, not per request. */
  readonly spec: string;
}

function params(periodUs: number, toleranceUs: number): GcraParams {
  return { periodUs, toleranceUs, spec: `${periodUs} ${toleranceUs}` };
}

export function gcraParams(policy: Pick<RateLimitPolicyConfig, 'limit' | 'windowMs' | 'burst'>): GcraParams {
  const periodUs = Math.max(1, Math.round((policy.windowMs * 1000) / policy.limit));
  return params(periodUs, periodUs * policy.burst);
}

/**
 * The parameters for one of N instances when the shared store is gone (`failureMode: local`):
 * limit / N and burst / N, never less than one request at once.
 */
export function scaledParams(base: GcraParams, instances: number): GcraParams {
  if (instances <= 1) return base;
  const periodUs = base.periodUs * instances;
  return params(periodUs, Math.max(base.toleranceUs, periodUs));
}

/** One policy's answer for one request. */
export interface PolicyState {
  readonly allowed: boolean;
  /** Requests that would be allowed right now, after this one. */
  readonly remaining: number;
  /** Until this policy would allow the request (0 when it does). */
  readonly retryAfterMs: number;
  /** Until the full burst is available again. */
  readonly resetMs: number;
}

/** What one policy would answer, without deciding: the caller writes `nextTat` only when all allow. */
export interface GcraProbe {
  readonly allowed: boolean;
  /** TAT after this request if it is let through. */
  readonly nextTat: number;
  /** TAT as it stands (at least now). */
  readonly tat: number;
  readonly retryAfterUs: number;
}

export function gcraProbe(storedTat: number | undefined, nowUs: number, params: GcraParams): GcraProbe {
  const tat = storedTat === undefined || storedTat < nowUs ? nowUs : storedTat;
  const nextTat = tat + params.periodUs;
  const allowAt = nextTat - params.toleranceUs;
  const allowed = allowAt <= nowUs;
  return { allowed, nextTat, tat, retryAfterUs: allowed ? 0 : allowAt - nowUs };
}

/** The state reported for a policy once the request's fate is known (`admitted`: TAT moved). */
export function gcraState(probe: GcraProbe, admitted: boolean, nowUs: number, params: GcraParams): PolicyState {
  const tat = admitted ? probe.nextTat : probe.tat;
  return {
    allowed: probe.allowed,
    remaining: Math.max(0, Math.floor((nowUs + params.toleranceUs - tat) / params.periodUs)),
    retryAfterMs: Math.ceil(probe.retryAfterUs / 1000),
    resetMs: Math.ceil((tat - nowUs) / 1000),
  };
}
