import { type IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { RateLimitKeyPart, RateLimitPolicyConfig } from '../../../src/config/types.js';
import { GatewayError } from '../../../src/errors.js';
import { type FilterContext, RATE_LIMIT_DECISION } from '../../../src/filters/filter.js';
import { type RateLimitDecision, type RateLimitEvents, SILENT_RATE_LIMIT_EVENTS } from '../../../plugins/rate-limit/events.js';
import { createRateLimitFilter, RATE_LIMIT_FILTER_NAME, type RateLimitFilter } from '../../../plugins/rate-limit/filter.js';
import { type GcraParams, gcraParams } from '../../../plugins/rate-limit/gcra.js';
import { LocalStore } from '../../../plugins/rate-limit/local-store.js';
import type { RateLimitStore, Verdict } from '../../../plugins/rate-limit/store.js';

// The filter as the core runs it: a context per request, a real store behind it, and what the
// client would see (error, status, RateLimit-* and Retry-After) plus what is counted.

const T0 = 1_700_000_000_000_000;

class Clock {
  now = T0;
  advanceMs(ms: number): void {
    this.now += ms * 1000;
  }
}

function policy(name: string, limit: number, windowMs: number, burst = limit, key: RateLimitKeyPart[] = [{ kind: 'ip' }]): RateLimitPolicyConfig {
  return { name, key, limit, windowMs, burst };
}

function ctx(clientIp = '10.0.0.1', headers: IncomingHttpHeaders = {}): FilterContext {
  const req = new IncomingMessage(new Socket());
  req.headers = headers;
  return { req, requestId: 'req-1', clientIp, routeName: 'users', upstreamHeaders: {}, responseHeaders: {}, attributes: new Map(), claims: null };
}

/** Counts every decision counter increment, by `policy/decision`. */
class Recorder {
  readonly counts = new Map<string, number>();
  readonly bound: string[] = [];
  readonly events: RateLimitEvents = {
    ...SILENT_RATE_LIMIT_EVENTS,
    decisionCounter: (policyName: string, decision: RateLimitDecision) => {
      const label = `${policyName}/${decision}`;
      this.bound.push(label);
      return { inc: () => this.counts.set(label, (this.counts.get(label) ?? 0) + 1) };
    },
  };

  count(policyName: string, decision: RateLimitDecision): number {
    return this.counts.get(`${policyName}/${decision}`) ?? 0;
  }
}

/** A store that has lost its backend: answers every request with the failure mode's verdict. */
class FailedStore implements RateLimitStore {
  readonly ready: boolean;
  calls = 0;
  constructor(
    readonly allow: boolean,
    readonly async: boolean,
  ) {
    this.ready = allow;
  }
  decide(): Verdict | Promise<Verdict> {
    this.calls++;
    const verdict: Verdict = { kind: 'store_error', allow: this.allow };
    return this.async ? new Promise((resolve) => setImmediate(() => resolve(verdict))) : verdict;
  }
  start(): void {}
  async stop(): Promise<void> {}
}

/** What RedisStore does while Redis is away with failureMode local: the in-process store at limit / N. */
class DividedStore implements RateLimitStore {
  readonly ready = true;
  constructor(
    readonly local: LocalStore,
    readonly instances: number,
  ) {}
  decide(params: readonly GcraParams[], keys: readonly string[]): Promise<Verdict> {
    return Promise.resolve(this.local.decideScaled(params, keys, this.instances));
  }
  start(): void {}
  async stop(): Promise<void> {}
}

function rig(policies: RateLimitPolicyConfig[]): { clock: Clock; store: LocalStore; rec: Recorder; filter: RateLimitFilter } {
  const clock = new Clock();
  const store = new LocalStore({ clock: () => clock.now });
  const rec = new Recorder();
  return { clock, store, rec, filter: createRateLimitFilter(policies, store, 'gw:', rec.events) };
}

async function run(filter: RateLimitFilter, context: FilterContext = ctx()): Promise<{ ctx: FilterContext; error: GatewayError | null }> {
  const error = await filter.apply(context);
  return { ctx: context, error };
}

function expectLimited(error: GatewayError | null): void {
  expect(error).toBeInstanceOf(GatewayError);
  expect(error).toMatchObject({ code: 'GW_ERR_RATELIMIT_LIMITED', status: 429, publicCode: 'rate_limited' });
}

describe('an allowed request', () => {
  it('continues (null), with RateLimit-* headers and the decision recorded', async () => {
    const { filter, rec } = rig([policy('per-ip', 10, 1_000)]);
    const { ctx: c, error } = await run(filter);
    expect(error).toBeNull();
    expect(c.responseHeaders).toEqual({ 'ratelimit-limit': '10', 'ratelimit-remaining': '9', 'ratelimit-reset': '1' });
    expect(c.attributes.get(RATE_LIMIT_DECISION)).toBe('allowed');
    expect(c.upstreamHeaders).toEqual({});
    expect(rec.count('per-ip', 'allowed')).toBe(1);
  });

  it('is decided synchronously with an in-process store', () => {
    const { filter } = rig([policy('per-ip', 10, 1_000)]);
    expect(filter.apply(ctx())).toBeNull();
  });

  it('RateLimit-Reset is whole seconds, rounded up, until the full burst is back', async () => {
    const { filter } = rig([policy('per-ip', 3, 10_000)]); // period 3.33 s
    const first = await run(filter);
    expect(first.ctx.responseHeaders['ratelimit-reset']).toBe('4');
    const second = await run(filter);
    expect(second.ctx.responseHeaders['ratelimit-reset']).toBe('7');
    expect(second.ctx.responseHeaders['ratelimit-remaining']).toBe('1');
  });

  it('the filter names itself and its policies in route order', () => {
    const { filter } = rig([policy('b', 1, 1_000), policy('a', 1, 1_000)]);
    expect(filter.name).toBe(RATE_LIMIT_FILTER_NAME);
    expect(filter.policies).toEqual(['b', 'a']);
  });

  it('refuses to be built without a policy', () => {
    expect(() => createRateLimitFilter([], new LocalStore(), 'gw:', SILENT_RATE_LIMIT_EVENTS)).toThrow(/at least one policy/);
  });
});

describe('a refused request', () => {
  it('gets 429 rate_limited, Retry-After in whole seconds (at least 1) and remaining 0', async () => {
    const { filter } = rig([policy('per-ip', 5, 1_000)]);
    for (let i = 0; i < 5; i++) expect((await run(filter)).error).toBeNull();
    const { ctx: c, error } = await run(filter);
    expectLimited(error);
    // The next slot is 200 ms away: still a whole second, never 0.
    expect(c.responseHeaders['retry-after']).toBe('1');
    expect(c.responseHeaders['ratelimit-remaining']).toBe('0');
    expect(c.responseHeaders['ratelimit-limit']).toBe('5');
    expect(c.attributes.get(RATE_LIMIT_DECISION)).toBe('limited');
  });

  it('Retry-After rounds up: a client that waits exactly that long is let through', async () => {
    const { clock, filter } = rig([policy('per-ip', 1, 2_500)]);
    expect((await run(filter)).error).toBeNull();
    const refused = await run(filter);
    expectLimited(refused.error);
    const retryAfter = refused.ctx.responseHeaders['retry-after'];
    expect(retryAfter).toMatch(/^[1-9][0-9]*$/);
    expect(retryAfter).toBe('3');
    clock.advanceMs(Number(retryAfter) * 1000 - 600);
    expectLimited((await run(filter)).error);
    clock.advanceMs(600);
    const after = await run(filter);
    expect(after.error).toBeNull();
    expect(after.ctx.responseHeaders['retry-after']).toBeUndefined();
  });

  it('Retry-After is the longest wait among the policies that refused', async () => {
    const { filter } = rig([policy('short', 1, 1_000), policy('long', 1, 10_000)]);
    expect((await run(filter)).error).toBeNull();
    const { ctx: c, error } = await run(filter);
    expectLimited(error);
    expect(c.responseHeaders['retry-after']).toBe('10');
  });

  it('other clients are not affected', async () => {
    const { filter } = rig([policy('per-ip', 1, 60_000)]);
    expect((await run(filter, ctx('10.0.0.1'))).error).toBeNull();
    expectLimited((await run(filter, ctx('10.0.0.1'))).error);
    expect((await run(filter, ctx('10.0.0.2'))).error).toBeNull();
  });
});

describe('several policies', () => {
  it('the headers report the policy with fewest remaining, with its own limit', async () => {
    // After one request: wide has 99 of 100 left, narrow 9 of 10.
    const { filter } = rig([policy('wide', 100, 60_000), policy('narrow', 10, 60_000)]);
    const { ctx: c } = await run(filter);
    expect(c.responseHeaders).toMatchObject({ 'ratelimit-limit': '10', 'ratelimit-remaining': '9' });
  });

  it('fewest remaining wins even when that policy has the larger limit', async () => {
    // Burst 3 of a limit of 100: 2 remaining after one request, against the other policy's 9.
    const { filter } = rig([policy('per-minute', 10, 60_000), policy('burst-limited', 100, 60_000, 3)]);
    const first = await run(filter);
    expect(first.ctx.responseHeaders).toMatchObject({ 'ratelimit-limit': '100', 'ratelimit-remaining': '2', 'ratelimit-reset': '1' });
    await run(filter);
    await run(filter);
    const refused = await run(filter);
    expectLimited(refused.error);
    expect(refused.ctx.responseHeaders).toMatchObject({ 'ratelimit-limit': '100', 'ratelimit-remaining': '0' });
  });

  it('a request refused by one policy spends nothing from the other', async () => {
    const a = policy('a', 10, 60_000);
    const { filter, store } = rig([a, policy('b', 1, 60_000)]);
    expect((await run(filter)).error).toBeNull();
    for (let i = 0; i < 5; i++) expectLimited((await run(filter)).error);
    // Policy a alone, on the key the filter used, at the same instant (the clock has not moved):
    // only the first request was spent from it.
    const verdict = store.decide([gcraParams(a)], ['gw:a:{10.0.0.1}']);
    expect(verdict).toMatchObject({ kind: 'decided', states: [{ allowed: true, remaining: 8 }] });
  });

  it('decisions are counted per policy: each counts what it said', async () => {
    const { filter, rec } = rig([policy('a', 10, 60_000), policy('b', 2, 60_000)]);
    for (let i = 0; i < 5; i++) await run(filter);
    expect(rec.count('b', 'allowed')).toBe(2);
    expect(rec.count('b', 'limited')).toBe(3);
    // a allowed all five; it is b's refusal that sent three 429s.
    expect(rec.count('a', 'allowed')).toBe(5);
    expect(rec.count('a', 'limited')).toBe(0);
    expect(rec.count('a', 'store_error') + rec.count('b', 'store_error')).toBe(0);
  });

  it('counters are bound once per policy and decision when the filter is built, not per request', async () => {
    const { filter, rec } = rig([policy('a', 10, 60_000), policy('b', 2, 60_000)]);
    expect(rec.bound.sort()).toEqual(['a/allowed', 'a/limited', 'a/store_error', 'b/allowed', 'b/limited', 'b/store_error']);
    for (let i = 0; i < 3; i++) await run(filter);
    expect(rec.bound).toHaveLength(6);
  });
});

describe('store errors', () => {
  for (const async of [false, true]) {
    const how = async ? 'asynchronous' : 'synchronous';

    it(`failureMode open (${how}): the request continues, counted as store_error, without RateLimit-* headers`, async () => {
      const store = new FailedStore(true, async);
      const rec = new Recorder();
      const filter = createRateLimitFilter([policy('a', 1, 1_000), policy('b', 1, 1_000)], store, 'gw:', rec.events);
      const { ctx: c, error } = await run(filter);
      expect(error).toBeNull();
      expect(c.attributes.get(RATE_LIMIT_DECISION)).toBe('store_error');
      expect(c.responseHeaders).toEqual({});
      expect(rec.count('a', 'store_error')).toBe(1);
      expect(rec.count('b', 'store_error')).toBe(1);
      expect(rec.count('a', 'allowed')).toBe(0);
      expect(store.calls).toBe(1);
    });

    it(`failureMode closed (${how}): 503 ratelimit_unavailable, counted as store_error`, async () => {
      const store = new FailedStore(false, async);
      const rec = new Recorder();
      const filter = createRateLimitFilter([policy('a', 100, 1_000)], store, 'gw:', rec.events);
      const { ctx: c, error } = await run(filter);
      expect(error).toBeInstanceOf(GatewayError);
      expect(error).toMatchObject({ code: 'GW_ERR_RATELIMIT_UNAVAILABLE', status: 503, publicCode: 'ratelimit_unavailable' });
      expect(c.attributes.get(RATE_LIMIT_DECISION)).toBe('store_error');
      expect(c.responseHeaders['retry-after']).toBeUndefined();
      expect(rec.count('a', 'store_error')).toBe(1);
    });
  }
});

describe('limits divided among instances', () => {
  it('with instances: 3, RateLimit-Limit shows floor(limit / 3), and that many pass at once', async () => {
    const clock = new Clock();
    const rec = new Recorder();
    const filter = createRateLimitFilter([policy('per-ip', 50, 60_000)], new DividedStore(new LocalStore({ clock: () => clock.now }), 3), 'gw:', rec.events);
    const first = await run(filter);
    expect(first.error).toBeNull();
    expect(first.ctx.responseHeaders['ratelimit-limit']).toBe('16');
    expect(first.ctx.responseHeaders['ratelimit-remaining']).toBe('15');
    let allowed = 1;
    for (let i = 0; i < 30; i++) if ((await run(filter)).error === null) allowed++;
    expect(allowed).toBe(16);
    expect(rec.count('per-ip', 'limited')).toBe(15);
  });

  it('never shows a limit below 1', async () => {
    const filter = createRateLimitFilter([policy('per-ip', 2, 60_000)], new DividedStore(new LocalStore(), 5), 'gw:', SILENT_RATE_LIMIT_EVENTS);
    const { ctx: c, error } = await run(filter);
    expect(error).toBeNull();
    expect(c.responseHeaders['ratelimit-limit']).toBe('1');
  });
});
