import { describe, expect, it } from 'vitest';
import { compileRateLimitPolicy } from '../../../src/config/compile-policies.js';
import { IssueCollector } from '../../../src/config/issues.js';
import { parseConfigSource } from '../../../src/config/source.js';
import { type GcraParams, gcraParams, gcraProbe, gcraState, type PolicyState, scaledParams } from '../../../plugins/rate-limit/gcra.js';
import { LocalStore } from '../../../plugins/rate-limit/local-store.js';
import type { Verdict } from '../../../plugins/rate-limit/store.js';

// The GCRA reference arithmetic and the in-process store, on a clock the test moves by hand
// (integer microseconds), so every boundary can be hit exactly rather than approximately.

// Far from zero, so nothing passes by accident of a TAT of 0 reading as "absent".
const T0 = 1_700_000_000_000_000;

const params = (limit: number, windowMs: number, burst = limit): GcraParams => gcraParams({ limit, windowMs, burst });

class Clock {
  now = T0;
  advanceMs(ms: number): void {
    this.now += ms * 1000;
  }
  advanceUs(us: number): void {
    this.now += us;
  }
}

function rig(maxKeys?: number): { clock: Clock; store: LocalStore } {
  const clock = new Clock();
  return { clock, store: new LocalStore({ clock: () => clock.now, ...(maxKeys === undefined ? {} : { maxKeys }) }) };
}

function decided(verdict: Verdict): { states: readonly PolicyState[]; instances: number } {
  if (verdict.kind !== 'decided') throw new Error(`expected a decided verdict, got ${JSON.stringify(verdict)}`);
  return verdict;
}

/** One request counted by one policy. */
function one(store: LocalStore, p: GcraParams, key = 'k'): PolicyState {
  const state = decided(store.decide([p], [key])).states[0];
  if (state === undefined) throw new Error('no state for the only policy');
  return state;
}

/** Fires `n` requests at the same instant; how many got through. */
function volley(store: LocalStore, p: GcraParams, n: number, key = 'k'): number {
  let allowed = 0;
  for (let i = 0; i < n; i++) if (one(store, p, key).allowed) allowed++;
  return allowed;
}

describe('gcraParams', () => {
  it('period is window / limit and tolerance is period x burst, in microseconds', () => {
    expect(params(10, 1_000, 5)).toEqual({ periodUs: 100_000, toleranceUs: 500_000, spec: '100000 500000' });
    expect(params(50, 60_000)).toEqual({ periodUs: 1_200_000, toleranceUs: 60_000_000, spec: '1200000 60000000' });
  });

  it('a policy without burst gets burst = limit from the config compiler', () => {
    const text = 'rateLimits:\n  p:\n    key: ip\n    limit: 8\n    window: 1s\n';
    const issues = new IssueCollector(parseConfigSource('routes.yaml', text));
    const policy = compileRateLimitPolicy('p', { key: 'ip', limit: 8, window: '1s' }, issues);
    expect(issues.size).toBe(0);
    expect(policy.burst).toBe(8);
    const { store } = rig();
    expect(volley(store, gcraParams(policy), 9)).toBe(8);
  });
});

describe('burst', () => {
  it('burst B lets B requests through at once and refuses the B+1st', () => {
    for (const [limit, burst] of [[10, 5], [10, 1], [10, 10], [3, 7]] as const) {
      const { store } = rig();
      const p = params(limit, 1_000, burst);
      for (let i = 1; i <= burst; i++) expect(one(store, p)).toMatchObject({ allowed: true, remaining: burst - i });
      expect(one(store, p)).toMatchObject({ allowed: false, remaining: 0 });
    }
  });

  it('with the default burst (= limit) a whole window of requests may arrive at once, and no more', () => {
    const { store } = rig();
    expect(volley(store, params(100, 60_000), 150)).toBe(100);
  });

  it('a key that has been idle a full window is fully rested again', () => {
    const { clock, store } = rig();
    const p = params(10, 1_000, 4);
    expect(volley(store, p, 10)).toBe(4);
    // Idle much longer than needed: the burst must not grow beyond B by saving up.
    clock.advanceMs(10_000);
    expect(volley(store, p, 10)).toBe(4);
  });
});

describe('sustained rate', () => {
  it('after the burst, exactly one request per period, not a microsecond earlier', () => {
    const { clock, store } = rig();
    const p = params(10, 1_000, 3); // period 100 ms
    expect(volley(store, p, 3)).toBe(3);
    for (let i = 0; i < 5; i++) {
      clock.advanceUs(p.periodUs - 1);
      expect(one(store, p).allowed).toBe(false);
      clock.advanceUs(1);
      expect(one(store, p).allowed).toBe(true);
      expect(one(store, p).allowed).toBe(false);
    }
  });

  it('a client retrying every millisecond gets burst + limit per window over several windows', () => {
    for (const [limit, windowMs, burst] of [[10, 1_000, 3], [50, 1_000, 50], [7, 1_000, 2], [60, 60_000, 1]] as const) {
      const { clock, store } = rig();
      const p = params(limit, windowMs, burst);
      expect(volley(store, p, burst + 5)).toBe(burst);
      const windows = 3;
      const perWindow: number[] = [];
      for (let w = 0; w < windows; w++) {
        let allowed = 0;
        for (let ms = 0; ms < windowMs; ms++) {
          clock.advanceMs(1);
          if (one(store, p).allowed) allowed++;
        }
        perWindow.push(allowed);
      }
      expect(perWindow, `limit ${limit} per ${windowMs} ms, burst ${burst}`).toEqual(Array<number>(windows).fill(limit));
    }
  });
});

describe('retryAfterMs', () => {
  it('is exact: waiting it out passes, one millisecond less is still refused', () => {
    // Periods that are and are not whole milliseconds (333 333 µs, 142 857 µs).
    for (const [limit, windowMs, burst] of [[5, 1_000, 5], [3, 1_000, 3], [3, 1_000, 1], [10, 60_000, 2], [7, 1_000, 7]] as const) {
      const { clock, store } = rig();
      const p = params(limit, windowMs, burst);
      expect(volley(store, p, burst)).toBe(burst);
      // Some time passes mid-period, so the answer is not just one period.
      clock.advanceUs(12_345);
      const refused = one(store, p);
      expect(refused.allowed).toBe(false);
      expect(refused.retryAfterMs).toBeGreaterThan(0);
      expect(refused.retryAfterMs).toBe(Math.ceil((p.periodUs - 12_345) / 1000));
      clock.advanceMs(refused.retryAfterMs - 1);
      expect(one(store, p).allowed, `limit ${limit} per ${windowMs} ms, burst ${burst}: ${refused.retryAfterMs - 1} ms later`).toBe(false);
      clock.advanceMs(1);
      expect(one(store, p).allowed, `limit ${limit} per ${windowMs} ms, burst ${burst}: ${refused.retryAfterMs} ms later`).toBe(true);
    }
  });

  it('is 0 on every allowed request', () => {
    const { store } = rig();
    const p = params(5, 1_000);
    for (let i = 0; i < 5; i++) expect(one(store, p).retryAfterMs).toBe(0);
  });
});

describe('remaining and resetMs', () => {
  it('after k requests at rest: B - k remaining, full burst back after k periods', () => {
    const { store } = rig();
    const p = params(10, 1_000, 10); // period 100 ms
    for (let k = 1; k <= 10; k++) expect(one(store, p)).toEqual({ allowed: true, remaining: 10 - k, retryAfterMs: 0, resetMs: k * 100 });
  });

  it('recover one per period as time passes, and a refusal changes neither', () => {
    const { clock, store } = rig();
    const p = params(10, 1_000, 10);
    expect(volley(store, p, 10)).toBe(10);
    clock.advanceMs(250);
    // TAT is T0 + 1000 ms: 2.5 periods recovered, 2 usable; this request spends one.
    expect(one(store, p)).toEqual({ allowed: true, remaining: 1, retryAfterMs: 0, resetMs: 850 });
    expect(one(store, p)).toEqual({ allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 950 });
    expect(one(store, p)).toEqual({ allowed: false, remaining: 0, retryAfterMs: 50, resetMs: 950 });
    expect(one(store, p)).toEqual({ allowed: false, remaining: 0, retryAfterMs: 50, resetMs: 950 });
  });

  it('resetMs rounds up, so the burst is back when it says', () => {
    const { clock, store } = rig();
    const p = params(3, 1_000, 3); // period 333 333 µs
    expect(volley(store, p, 3)).toBe(3);
    const state = one(store, p);
    expect(state.resetMs).toBe(1000); // ceil(999 999 µs)
    clock.advanceMs(state.resetMs);
    expect(volley(store, p, 5)).toBe(3);
  });
});

describe('gcraProbe and gcraState', () => {
  it('a probe decides without writing: the caller keeps the old TAT unless it admits', () => {
    const p = params(10, 1_000, 2);
    const fresh = gcraProbe(undefined, T0, p);
    expect(fresh).toEqual({ allowed: true, tat: T0, nextTat: T0 + 100_000, retryAfterUs: 0 });
    // A stored TAT in the past reads as now: idle time does not bank budget.
    expect(gcraProbe(T0 - 5_000_000, T0, p)).toEqual(fresh);
    expect(gcraState(fresh, true, T0, p)).toEqual({ allowed: true, remaining: 1, retryAfterMs: 0, resetMs: 100 });
    expect(gcraState(fresh, false, T0, p)).toEqual({ allowed: true, remaining: 2, retryAfterMs: 0, resetMs: 0 });
    const full = gcraProbe(T0 + 200_000, T0, p);
    expect(full).toEqual({ allowed: false, tat: T0 + 200_000, nextTat: T0 + 300_000, retryAfterUs: 100_000 });
    expect(gcraState(full, false, T0, p)).toEqual({ allowed: false, remaining: 0, retryAfterMs: 100, resetMs: 200 });
  });
});

describe('several policies on one request', () => {
  it('all or nothing: a request refused by policy B spends nothing from policy A', () => {
    const { store } = rig();
    const a = params(10, 1_000);
    const b = params(1, 1_000, 1);
    const both = (): readonly PolicyState[] => decided(store.decide([a, b], ['a', 'b'])).states;
    const first = both();
    expect(first.map((s) => [s.allowed, s.remaining])).toEqual([[true, 9], [true, 0]]);
    for (let i = 0; i < 5; i++) {
      const refused = both();
      expect(refused[1]).toMatchObject({ allowed: false, remaining: 0 });
      // A would have allowed, and still reports what it had before: 9, untouched.
      expect(refused[0]).toMatchObject({ allowed: true, remaining: 9, retryAfterMs: 0, resetMs: 100 });
    }
    // Asked alone, A confirms: only the first request was spent from it.
    expect(one(store, a, 'a')).toMatchObject({ allowed: true, remaining: 8 });
  });

  it('states come back in the order of the policies given', () => {
    const { store } = rig();
    const states = decided(store.decide([params(3, 1_000), params(7, 1_000), params(5, 1_000)], ['x', 'y', 'z'])).states;
    expect(states.map((s) => s.remaining)).toEqual([2, 6, 4]);
  });
});

describe('limits divided among N instances (failureMode: local)', () => {
  it('scaledParams with N = 1 changes nothing', () => {
    const p = params(50, 60_000);
    expect(scaledParams(p, 1)).toEqual(p);
    expect(scaledParams(p, 0)).toEqual(p);
  });

  it('N = 3 on limit 50 burst 50: 16 at once, then limit / 3 per window on average', () => {
    const { clock, store } = rig();
    const p = params(50, 60_000, 50);
    let allowed = 0;
    for (let i = 0; i < 50; i++) {
      const verdict = decided(store.decideScaled([p], ['k'], 3));
      expect(verdict.instances).toBe(3);
      if (verdict.states[0]?.allowed === true) allowed++;
    }
    expect(allowed).toBe(16);
    // One scaled period is 3 x 1.2 s, 16.7 per window: measured over three windows so the
    // fraction of a request left over from the burst does not show as a 17th in the first one.
    let later = 0;
    for (let s = 0; s < 180; s++) {
      clock.advanceMs(1_000);
      for (let i = 0; i < 3; i++) if (decided(store.decideScaled([p], ['k'], 3)).states[0]?.allowed === true) later++;
    }
    expect(later).toBe(50);
  });

  it('never less than one request at once when burst < N', () => {
    for (const [burst, n] of [[2, 3], [1, 5], [1, 2], [4, 100]] as const) {
      const { store } = rig();
      const p = params(10, 1_000, burst);
      const states = Array.from({ length: 5 }, () => decided(store.decideScaled([p], ['k'], n)).states[0]);
      expect(states.map((s) => s?.allowed), `burst ${burst}, N ${n}`).toEqual([true, false, false, false, false]);
    }
  });
});

describe('LRU bound', () => {
  it('5000 distinct keys into maxKeys 1000: size stays 1000, the recent keep their state, the oldest come back rested', () => {
    const { store } = rig(1000);
    const p = params(2, 60_000, 2);
    let largest = 0;
    for (let i = 0; i < 5000; i++) {
      expect(one(store, p, `key-${i}`)).toMatchObject({ allowed: true, remaining: 1 });
      largest = Math.max(largest, store.size);
    }
    expect(largest).toBe(1000);
    expect(store.size).toBe(1000);
    // Held now: key-4000 .. key-4999. Re-spending a held key evicts nobody.
    expect(one(store, p, 'key-4000')).toMatchObject({ allowed: true, remaining: 0 });
    expect(one(store, p, 'key-4999')).toMatchObject({ allowed: true, remaining: 0 });
    expect(one(store, p, 'key-4999')).toMatchObject({ allowed: false, remaining: 0 });
    // Evicted: forgotten state is a fully rested key, so it is as if never seen.
    expect(one(store, p, 'key-0')).toMatchObject({ allowed: true, remaining: 1 });
    expect(one(store, p, 'key-3999')).toMatchObject({ allowed: true, remaining: 1 });
    expect(store.size).toBe(1000);
  });

  it('spending from a key makes it the youngest, so it outlives keys first seen after it', () => {
    const { store } = rig(3);
    const p = params(5, 60_000);
    for (const key of ['a', 'b', 'c']) one(store, p, key);
    one(store, p, 'a'); // a is now the youngest: b is the oldest
    one(store, p, 'd'); // evicts b
    expect(one(store, p, 'a').remaining).toBe(2);
    expect(one(store, p, 'b').remaining).toBe(4);
    expect(store.size).toBe(3);
  });

  it('stop() forgets every key', async () => {
    const { store } = rig();
    const p = params(1, 60_000, 1);
    one(store, p);
    expect(store.size).toBe(1);
    await store.stop();
    expect(store.size).toBe(0);
    expect(one(store, p).allowed).toBe(true);
  });
});
