import { afterEach, describe, expect, it } from 'vitest';
import type { OutlierDetectionConfig } from '../../../src/config/types.js';
import { Endpoint, type EjectionReason, type EjectionRecord } from '../../../src/upstream/endpoint.js';
import { PoolMember } from '../../../src/upstream/member.js';
import type { AttemptOutcome, FailureKind } from '../../../src/upstream/outcome.js';
import {
  ConsecutiveFailureDetector,
  NULL_OUTLIER_DETECTOR,
  type OutlierEvents,
} from '../../../src/upstream/outlier/detector.js';

const HOUR = 3_600_000;
const BASE = 30_000;

// The interval is an hour so the detector's own timer never fires during a test: every sweep
// below is called by hand, on a clock the test advances.
function outlierConfig(overrides: Partial<OutlierDetectionConfig> = {}): OutlierDetectionConfig {
  return {
    consecutive5xx: 5,
    consecutiveGatewayFailures: 5,
    intervalMs: HOUR,
    baseEjectionTimeMs: BASE,
    maxEjectionTimeMs: 300_000,
    maxEjectionPercent: 100,
    successRate: null,
    ...overrides,
  };
}

/** An answer the upstream itself sent. */
function answer(status: number): AttemptOutcome {
  return { status, failure: null, durationMs: 5 };
}

/** No HTTP answer: the gateway answers 504 for a timeout, 502 otherwise. */
function failure(kind: FailureKind): AttemptOutcome {
  return { status: kind === 'timeout' ? 504 : 502, failure: kind, durationMs: 5 };
}

/** Lets decisions queued as microtasks by `record` run. */
function flush(): Promise<void> {
  return new Promise((resolve) => queueMicrotask(resolve));
}

interface Capped {
  endpoint: Endpoint;
  reason: EjectionReason;
  detail: string;
  ejected: number;
  total: number;
}

class RecordingEvents implements OutlierEvents {
  readonly ejections: Array<{ endpoint: Endpoint; record: EjectionRecord }> = [];
  readonly restorations: Array<{ endpoint: Endpoint; after: EjectionRecord | null }> = [];
  readonly capped: Capped[] = [];

  ejected(endpoint: Endpoint, record: EjectionRecord): void {
    this.ejections.push({ endpoint, record });
  }

  restored(endpoint: Endpoint, after: EjectionRecord | null): void {
    this.restorations.push({ endpoint, after });
  }

  ejectionCapped(endpoint: Endpoint, reason: EjectionReason, detail: string, ejected: number, total: number): void {
    this.capped.push({ endpoint, reason, detail, ejected, total });
  }
}

describe('ConsecutiveFailureDetector', () => {
  const endpoints: Endpoint[] = [];
  const detectors: ConsecutiveFailureDetector[] = [];
  let port = 9300;

  afterEach(async () => {
    for (const d of detectors.splice(0)) d.stop();
    await Promise.all(endpoints.splice(0).map((e) => e.close()));
  });

  function endpoint(): Endpoint {
    const url = `http://127.0.0.1:${port++}`;
    const e = new Endpoint('pool', url, `pool|${url}`, { connectTimeoutMs: 1000, maxConnections: 4, keepAliveTimeoutMs: 1000 });
    endpoints.push(e);
    return e;
  }

  interface Setup {
    detector: ConsecutiveFailureDetector;
    events: RecordingEvents;
    members: PoolMember[];
    eps: Endpoint[];
    clock: { now: number };
    changes: { count: number };
    /** Starts the detector over `members`. */
    start(): void;
  }

  function setup(n: number, overrides: Partial<OutlierDetectionConfig> = {}, started = true): Setup {
    const events = new RecordingEvents();
    const clock = { now: Date.now() };
    const detector = new ConsecutiveFailureDetector(outlierConfig(overrides), events, () => clock.now);
    detectors.push(detector);
    const eps = Array.from({ length: n }, () => endpoint());
    const members = eps.map((e) => new PoolMember(e, 1));
    const changes = { count: 0 };
    const start = (): void => detector.start(() => members, () => { changes.count++; });
    if (started) start();
    return { detector, events, members, eps, clock, changes, start };
  }

  function recordMany(d: { record(e: Endpoint, o: AttemptOutcome): void }, e: Endpoint, outcome: AttemptOutcome, times: number): void {
    for (let i = 0; i < times; i++) d.record(e, outcome);
  }

  describe('consecutive 5xx', () => {
    it('ejects at exactly consecutive5xx answers, not one fewer', async () => {
      const { detector, events, eps: [a] } = setup(1);
      recordMany(detector, a!, answer(500), 4);
      await flush();
      expect(a!.passive.consecutive5xx).toBe(4);
      expect(a!.passive.ejectedUntil).toBeNull();
      expect(events.ejections).toHaveLength(0);

      detector.record(a!, answer(500));
      expect(a!.passive.pendingDecision).toBe(true);
      expect(a!.passive.ejectedUntil).toBeNull(); // decided in a microtask, not inside record
      await flush();
      expect(events.ejections).toHaveLength(1);
      expect(a!.passive.ejectedUntil).not.toBeNull();
      expect(a!.passive.pendingDecision).toBe(false);
      expect(a!.state).toBe('ejected');
      expect(a!.usable).toBe(false);
    });

    it.each([200, 204, 301, 404, 429])('a %i in between resets the run', async (status) => {
      const { detector, events, eps: [a] } = setup(1);
      recordMany(detector, a!, answer(500), 4);
      detector.record(a!, answer(status));
      expect(a!.passive.consecutive5xx).toBe(0);
      expect(a!.passive.consecutiveGatewayFailures).toBe(0);
      recordMany(detector, a!, answer(500), 4);
      await flush();
      expect(events.ejections).toHaveLength(0);
      detector.record(a!, answer(500));
      await flush();
      expect(events.ejections).toHaveLength(1);
    });

    it('counts a 499 (client went away) for nothing', async () => {
      const { detector, events, eps: [a] } = setup(1);
      recordMany(detector, a!, answer(499), 20);
      expect(a!.passive.consecutive5xx).toBe(0);
      recordMany(detector, a!, answer(500), 4);
      detector.record(a!, answer(499)); // neither resets nor counts
      expect(a!.passive.consecutive5xx).toBe(4);
      await flush();
      expect(events.ejections).toHaveLength(0);
      detector.record(a!, answer(500));
      await flush();
      expect(events.ejections).toHaveLength(1);
      expect(events.ejections[0]!.record.detail).toBe('5 consecutive 500');
    });

    it('names the status when every failure of the run had it, "5xx" when they differed', async () => {
      const { detector, events, eps: [a, b] } = setup(2, { consecutiveGatewayFailures: 10 });
      recordMany(detector, a!, answer(502), 5);
      for (const s of [500, 503, 500, 500, 500]) detector.record(b!, answer(s));
      await flush();
      expect(events.ejections.map((e) => [e.endpoint, e.record.reason, e.record.detail])).toEqual([
        [a, 'consecutive_5xx', '5 consecutive 502'],
        [b, 'consecutive_5xx', '5 consecutive 5xx'],
      ]);
    });

    it('does not eject when a success arrives before the queued decision runs', async () => {
      const { detector, events, eps: [a] } = setup(1);
      recordMany(detector, a!, answer(500), 5);
      detector.record(a!, answer(200));
      await flush();
      expect(events.ejections).toHaveLength(0);
      expect(a!.passive.pendingDecision).toBe(false);
      expect(a!.passive.ejectedUntil).toBeNull();
    });
  });

  describe('gateway failures', () => {
    it.each<[FailureKind, string]>([
      ['connect-failure', 'connect failure'],
      ['reset', 'reset'],
      ['timeout', 'timeout'],
      ['protocol', 'invalid response'],
    ])('counts %s and names it as the last failure', async (kind, words) => {
      const { detector, events, eps: [a] } = setup(1, { consecutive5xx: 100, consecutiveGatewayFailures: 3 });
      recordMany(detector, a!, failure(kind), 2);
      await flush();
      expect(a!.passive.consecutiveGatewayFailures).toBe(2);
      expect(events.ejections).toHaveLength(0);
      detector.record(a!, failure(kind));
      await flush();
      expect(events.ejections).toHaveLength(1);
      expect(events.ejections[0]!.record.reason).toBe('consecutive_gateway_failure');
      expect(events.ejections[0]!.record.detail).toBe(`3 consecutive gateway failures (last: ${words})`);
    });

    it.each([502, 503, 504])('counts an upstream-sent %i as a gateway failure', async (status) => {
      const { detector, events, eps: [a] } = setup(1, { consecutive5xx: 100, consecutiveGatewayFailures: 3 });
      recordMany(detector, a!, answer(status), 3);
      await flush();
      expect(events.ejections.map((e) => e.record.detail)).toEqual([`3 consecutive gateway failures (last: ${status} answer)`]);
    });

    it('names the kind of the last failure of a mixed run', async () => {
      const { detector, events, eps: [a] } = setup(1, { consecutive5xx: 100, consecutiveGatewayFailures: 3 });
      detector.record(a!, failure('timeout'));
      detector.record(a!, failure('reset'));
      detector.record(a!, failure('connect-failure'));
      await flush();
      expect(events.ejections.map((e) => e.record.detail)).toEqual(['3 consecutive gateway failures (last: connect failure)']);
    });

    // Regression: the evidence read the 5xx run's shared status (-1 when mixed) instead of the last
    // gateway failure's, and said "last: -1 answer".
    it.each([
      ['a 500 before the run', [answer(500), answer(503), answer(503), answer(503)]],
      ['connect failures then an upstream 503', [failure('connect-failure'), failure('connect-failure'), answer(503)]],
      ['different upstream statuses', [answer(502), answer(504), answer(503)]],
    ])('names the status of the last upstream-sent failure after %s', async (_case, outcomes) => {
      const { detector, events, eps: [a] } = setup(1, { consecutive5xx: 10, consecutiveGatewayFailures: 3 });
      for (const outcome of outcomes) detector.record(a!, outcome);
      await flush();
      expect(events.ejections.map((e) => e.record.detail)).toEqual(['3 consecutive gateway failures (last: 503 answer)']);
    });

    it('does not count a 500 as a gateway failure: it resets that counter but not consecutive5xx', async () => {
      const { detector, events, eps: [a] } = setup(1, { consecutive5xx: 10, consecutiveGatewayFailures: 3 });
      detector.record(a!, failure('connect-failure'));
      detector.record(a!, answer(502));
      detector.record(a!, answer(500));
      expect(a!.passive.consecutiveGatewayFailures).toBe(0);
      expect(a!.passive.consecutive5xx).toBe(3);
      detector.record(a!, failure('connect-failure'));
      detector.record(a!, failure('connect-failure'));
      await flush();
      expect(a!.passive.consecutiveGatewayFailures).toBe(2);
      expect(a!.passive.consecutive5xx).toBe(5);
      expect(events.ejections).toHaveLength(0);

      detector.record(a!, failure('connect-failure'));
      await flush();
      expect(events.ejections.map((e) => [e.record.reason, e.record.detail])).toEqual([
        ['consecutive_gateway_failure', '3 consecutive gateway failures (last: connect failure)'],
      ]);
    });

    it('also counts gateway failures as 5xx', async () => {
      const { detector, events, eps: [a] } = setup(1, { consecutive5xx: 3, consecutiveGatewayFailures: 100 });
      recordMany(detector, a!, failure('connect-failure'), 3);
      await flush();
      expect(events.ejections.map((e) => [e.record.reason, e.record.detail])).toEqual([['consecutive_5xx', '3 consecutive 502']]);
    });

    it('prefers the gateway-failure reason when both counters cross', async () => {
      const { detector, events, eps: [a, b] } = setup(2);
      recordMany(detector, a!, failure('connect-failure'), 5);
      recordMany(detector, b!, answer(503), 5);
      await flush();
      expect(a!.passive.consecutive5xx).toBe(0);
      expect(a!.passive.consecutiveGatewayFailures).toBe(0);
      expect(events.ejections.map((e) => [e.endpoint, e.record.reason, e.record.detail])).toEqual([
        [a, 'consecutive_gateway_failure', '5 consecutive gateway failures (last: connect failure)'],
        [b, 'consecutive_gateway_failure', '5 consecutive gateway failures (last: 503 answer)'],
      ]);
    });
  });

  describe('ejection', () => {
    it('lasts n × base, capped at max, and is recorded on the endpoint', async () => {
      const { detector, events, eps: [a], clock, changes } = setup(1, { baseEjectionTimeMs: BASE, maxEjectionTimeMs: 75_000 });
      const expected = [30_000, 60_000, 75_000, 75_000];
      for (const [i, durationMs] of expected.entries()) {
        const at = clock.now;
        const changesBefore = changes.count;
        recordMany(detector, a!, answer(500), 5);
        await flush();
        expect(changes.count).toBe(changesBefore + 1);
        const ejection = events.ejections[i]!;
        expect(ejection.endpoint).toBe(a);
        expect(ejection.record).toEqual({ reason: 'consecutive_5xx', detail: '5 consecutive 500', at, durationMs, number: i + 1 });
        expect(a!.lastEjection).toBe(ejection.record);
        expect(a!.ejections).toBe(i + 1);
        expect(a!.passive.level).toBe(i + 1);
        expect(a!.passive.ejectedUntil).toBe(at + durationMs);
        expect(a!.ejectedUntil).toBe(at + durationMs);
        // back at once, and failing again right away
        clock.now += durationMs;
        detector.sweep();
        expect(a!.passive.ejectedUntil).toBeNull();
      }
      expect(events.ejections).toHaveLength(expected.length);
    });

    it('decides several endpoints crossing in the same turn together', async () => {
      const { detector, events, eps: [a, b, c] } = setup(3);
      recordMany(detector, a!, answer(500), 5);
      recordMany(detector, c!, answer(500), 5);
      await flush();
      expect(events.ejections.map((e) => e.endpoint)).toEqual([a, c]);
      expect(b!.usable).toBe(true);
    });

    it('does not eject an already-ejected endpoint again on late records of requests in flight', async () => {
      const { detector, events, eps: [a], clock } = setup(1);
      recordMany(detector, a!, answer(500), 5);
      await flush();
      const until = a!.passive.ejectedUntil;
      expect(until).toBe(clock.now + BASE);

      clock.now += 1000;
      recordMany(detector, a!, failure('reset'), 12);
      expect(a!.passive.pendingDecision).toBe(false);
      await flush();
      detector.sweep();
      expect(events.ejections).toHaveLength(1);
      expect(a!.ejections).toBe(1);
      expect(a!.passive.level).toBe(1);
      expect(a!.passive.ejectedUntil).toBe(until);

      // The late failures do not carry over: the endpoint returns with a clean run.
      clock.now = until!;
      detector.sweep();
      expect(a!.passive.ejectedUntil).toBeNull();
      expect(a!.passive.consecutive5xx).toBe(0);
      expect(a!.passive.consecutiveGatewayFailures).toBe(0);
      recordMany(detector, a!, answer(500), 4);
      await flush();
      expect(events.ejections).toHaveLength(1);
    });
  });

  describe('return', () => {
    it('restores at the sweep once ejectedUntil has passed, not before', async () => {
      const { detector, events, eps: [a], clock, changes } = setup(1);
      recordMany(detector, a!, answer(503), 5);
      await flush();
      const record = events.ejections[0]!.record;
      const until = a!.passive.ejectedUntil!;
      expect(changes.count).toBe(1);

      clock.now = until - 1;
      detector.sweep();
      expect(a!.passive.ejectedUntil).toBe(until);
      expect(events.restorations).toHaveLength(0);
      expect(changes.count).toBe(1);

      // Late records while ejected bump the counters; the return clears them.
      recordMany(detector, a!, answer(500), 3);
      clock.now = until;
      detector.sweep();
      expect(a!.passive.ejectedUntil).toBeNull();
      expect(a!.state).toBe('healthy');
      expect(a!.usable).toBe(true);
      expect(a!.passive.consecutive5xx).toBe(0);
      expect(a!.passive.consecutiveGatewayFailures).toBe(0);
      expect(a!.passive.healthySince).toBe(until);
      expect(a!.passive.level).toBe(1); // the multiplier survives the return
      expect(events.restorations).toEqual([{ endpoint: a, after: record }]);
      expect(changes.count).toBe(2);

      detector.sweep(); // nothing more to do
      expect(events.restorations).toHaveLength(1);
      expect(changes.count).toBe(2);
    });

    it('makes a re-ejection right after the return last 2 × base', async () => {
      const { detector, events, eps: [a], clock } = setup(1);
      recordMany(detector, a!, answer(500), 5);
      await flush();
      clock.now += BASE;
      detector.sweep();
      clock.now += HOUR - 1; // not yet a full interval back
      detector.sweep();
      expect(a!.passive.level).toBe(1);
      recordMany(detector, a!, answer(500), 5);
      await flush();
      expect(events.ejections.map((e) => e.record.durationMs)).toEqual([BASE, 2 * BASE]);
      expect(a!.passive.ejectedUntil).toBe(clock.now + 2 * BASE);
    });

    it('takes one step off the multiplier per full interval back without ejection', async () => {
      const { detector, events, eps: [a], clock } = setup(1);
      // Three ejections in a row: level 3.
      for (let i = 0; i < 3; i++) {
        recordMany(detector, a!, answer(500), 5);
        await flush();
        clock.now = a!.passive.ejectedUntil!;
        detector.sweep();
      }
      expect(events.ejections.map((e) => e.record.durationMs)).toEqual([BASE, 2 * BASE, 3 * BASE]);
      expect(a!.passive.level).toBe(3);
      const back = clock.now;

      clock.now = back + HOUR - 1;
      detector.sweep();
      expect(a!.passive.level).toBe(3);
      clock.now = back + HOUR;
      detector.sweep();
      expect(a!.passive.level).toBe(2);
      expect(a!.passive.healthySince).toBe(back + HOUR);
      clock.now = back + HOUR + HOUR / 2;
      detector.sweep();
      expect(a!.passive.level).toBe(2); // one step per interval, counted from the previous step
      clock.now = back + 2 * HOUR;
      detector.sweep();
      expect(a!.passive.level).toBe(1);

      // Two intervals back: the fourth ejection lasts 2 × base instead of 4 × base.
      recordMany(detector, a!, answer(500), 5);
      await flush();
      expect(events.ejections[3]!.record.durationMs).toBe(2 * BASE);
      expect(events.ejections[3]!.record.number).toBe(4);

      clock.now = a!.passive.ejectedUntil!;
      detector.sweep();
      for (let i = 1; i <= 3; i++) {
        clock.now += HOUR;
        detector.sweep();
      }
      expect(a!.passive.level).toBe(0); // never below zero

      recordMany(detector, a!, answer(500), 5);
      await flush();
      expect(events.ejections[4]!.record.durationMs).toBe(BASE);
    });
    it('does not take steps off while ejected: the count starts at the return', async () => {
      const { detector, events, eps: [a], clock } = setup(1, { baseEjectionTimeMs: 2 * HOUR, maxEjectionTimeMs: 10 * HOUR });
      const t0 = clock.now;
      recordMany(detector, a!, answer(500), 5);
      await flush();
      for (const t of [HOUR, 2 * HOUR - 1]) {
        clock.now = t0 + t;
        detector.sweep();
        expect(a!.passive.ejectedUntil).toBe(t0 + 2 * HOUR);
        expect(a!.passive.level).toBe(1);
      }
      clock.now = t0 + 2 * HOUR;
      detector.sweep();
      expect(events.restorations).toHaveLength(1);
      clock.now = t0 + 3 * HOUR - 1;
      detector.sweep();
      expect(a!.passive.level).toBe(1);
      clock.now = t0 + 3 * HOUR;
      detector.sweep();
      expect(a!.passive.level).toBe(0);
    });
  });

  describe('maxEjectionPercent', () => {
    it('at 50 % of 3 refuses the second ejection', async () => {
      const { detector, events, eps: [a, b, c] } = setup(3, { maxEjectionPercent: 50 });
      recordMany(detector, a!, answer(500), 5);
      await flush();
      expect(a!.passive.ejectedUntil).not.toBeNull();

      recordMany(detector, b!, answer(502), 5);
      await flush();
      expect(b!.passive.ejectedUntil).toBeNull();
      expect(b!.ejections).toBe(0);
      expect(b!.passive.level).toBe(0);
      expect(events.ejections.map((e) => e.endpoint)).toEqual([a]);
      expect(events.capped).toEqual([
        { endpoint: b, reason: 'consecutive_gateway_failure', detail: '5 consecutive gateway failures (last: 502 answer)', ejected: 1, total: 3 },
      ]);
      // The refused run is spent: it takes a new full run to be considered again.
      expect(b!.passive.consecutive5xx).toBe(0);
      expect(b!.passive.pendingDecision).toBe(false);
      recordMany(detector, b!, answer(502), 4);
      await flush();
      expect(events.capped).toHaveLength(1);
      expect(c!.usable).toBe(true);
    });

    it('at 50 % of 3 refuses the second of two crossing in the same turn', async () => {
      const { detector, events, eps: [a, b] } = setup(3, { maxEjectionPercent: 50 });
      recordMany(detector, a!, answer(500), 5);
      recordMany(detector, b!, answer(500), 5);
      await flush();
      expect(events.ejections.map((e) => e.endpoint)).toEqual([a]);
      expect(events.capped.map((c) => [c.endpoint, c.ejected, c.total])).toEqual([[b, 1, 3]]);
    });

    it('at 67 % of 3 allows the second ejection and refuses the third', async () => {
      const { detector, events, eps: [a, b, c] } = setup(3, { maxEjectionPercent: 67 });
      recordMany(detector, a!, answer(500), 5);
      await flush();
      recordMany(detector, b!, answer(500), 5);
      await flush();
      recordMany(detector, c!, answer(500), 5);
      await flush();
      expect(events.ejections.map((e) => e.endpoint)).toEqual([a, b]);
      expect(events.capped).toEqual([{ endpoint: c, reason: 'consecutive_5xx', detail: '5 consecutive 500', ejected: 2, total: 3 }]);
      expect(c!.usable).toBe(true);
    });

    it('allows an ejection again once an ejected endpoint returned', async () => {
      const { detector, events, eps: [a, b], clock } = setup(3, { maxEjectionPercent: 50 });
      recordMany(detector, a!, answer(500), 5);
      await flush();
      clock.now = a!.passive.ejectedUntil!;
      detector.sweep();
      recordMany(detector, b!, answer(500), 5);
      await flush();
      expect(events.ejections.map((e) => e.endpoint)).toEqual([a, b]);
      expect(events.capped).toHaveLength(0);
    });

    it('never ejects the only endpoint below 100 %', async () => {
      const { detector, events, eps: [a] } = setup(1, { maxEjectionPercent: 50 });
      recordMany(detector, a!, answer(500), 5);
      await flush();
      expect(a!.passive.ejectedUntil).toBeNull();
      expect(events.ejections).toHaveLength(0);
      expect(events.capped).toEqual([{ endpoint: a, reason: 'consecutive_5xx', detail: '5 consecutive 500', ejected: 0, total: 1 }]);
    });

    it('ejects the only endpoint at 100 %', async () => {
      const { detector, events, eps: [a] } = setup(1, { maxEjectionPercent: 100 });
      recordMany(detector, a!, answer(500), 5);
      await flush();
      expect(events.ejections).toHaveLength(1);
      expect(events.capped).toHaveLength(0);
    });

    it('does not count draining endpoints in the total, nor eject them', async () => {
      // 4 members, one draining: 2 of 3 is 67 % > 50 %. Counting the draining one would make it 2 of 4.
      const { detector, events, eps: [a, b, c, d] } = setup(4, { maxEjectionPercent: 50 });
      d!.draining = true;
      recordMany(detector, d!, answer(500), 5);
      await flush();
      expect(d!.passive.ejectedUntil).toBeNull();
      expect(events.ejections).toHaveLength(0);
      expect(events.capped).toHaveLength(0);

      recordMany(detector, a!, answer(500), 5);
      await flush();
      recordMany(detector, b!, answer(500), 5);
      await flush();
      expect(events.ejections.map((e) => e.endpoint)).toEqual([a]);
      expect(events.capped.map((x) => [x.endpoint, x.ejected, x.total])).toEqual([[b, 1, 3]]);
      expect(c!.usable).toBe(true);
    });
  });

  describe('success rate', () => {
    /** Records `requests` attempts on `e`, of which `failures` are 500s, spread so no run is long. */
    function traffic(detector: ConsecutiveFailureDetector, e: Endpoint, requests: number, failures: number): void {
      for (let i = 0; i < requests; i++) detector.record(e, answer(i < failures * 2 && i % 2 === 0 ? 500 : 200));
    }

    it('ejects at the sweep an endpoint below mean − stdevFactor × σ, with the numbers as evidence', async () => {
      const { detector, events, eps } = setup(6, { successRate: { minimumHosts: 5, requestVolume: 20, stdevFactor: 1.9 } });
      for (const e of eps.slice(0, 5)) traffic(detector, e, 40, 0);
      traffic(detector, eps[5]!, 40, 10); // 75 %
      await flush();
      expect(events.ejections).toEqual([]); // nothing crossed a consecutive threshold
      detector.sweep();
      expect(events.ejections).toHaveLength(1);
      expect(events.ejections[0]!.endpoint).toBe(eps[5]);
      expect(events.ejections[0]!.record).toMatchObject({ reason: 'success_rate', detail: 'success rate 75.0% over 40 requests, below 78.1% (pool mean 95.8%)' });
    });

    it('judges nothing with fewer than minimumHosts endpoints at requestVolume, and starts a new window each sweep', async () => {
      const { detector, events, eps } = setup(6, { successRate: { minimumHosts: 5, requestVolume: 20, stdevFactor: 1.9 } });
      for (const e of eps.slice(0, 3)) traffic(detector, e, 40, 0);
      traffic(detector, eps[3]!, 19, 0); // below the volume: 4 endpoints qualify
      traffic(detector, eps[4]!, 19, 0);
      traffic(detector, eps[5]!, 40, 10);
      detector.sweep();
      expect(events.ejections).toEqual([]);
      for (const e of eps.slice(0, 4)) traffic(detector, e, 19, 0); // the window restarted: 40 + 19 no longer adds up
      traffic(detector, eps[5]!, 20, 10);
      detector.sweep();
      expect(events.ejections).toEqual([]);
      expect(eps.every((e) => e.passive.windowRequests === 0)).toBe(true);
    });

    it('respects maxEjectionPercent', async () => {
      const { detector, events, eps } = setup(5, { maxEjectionPercent: 20, successRate: { minimumHosts: 5, requestVolume: 10, stdevFactor: 0.5 } });
      for (const e of eps.slice(0, 3)) traffic(detector, e, 20, 0);
      traffic(detector, eps[3]!, 20, 8);
      traffic(detector, eps[4]!, 20, 8);
      detector.sweep();
      expect(events.ejections).toHaveLength(1);
      expect(events.capped.map((c) => c.reason)).toEqual(['success_rate']);
    });
  });

  describe('lifecycle', () => {
    it('keeps a threshold crossed before start pending, and decides it at start', async () => {
      const { detector, events, eps: [a], start, changes, clock } = setup(1, {}, false);
      recordMany(detector, a!, answer(500), 5);
      await flush();
      expect(a!.passive.pendingDecision).toBe(true);
      expect(events.ejections).toHaveLength(0);
      detector.sweep(); // not running: does nothing
      expect(a!.passive.pendingDecision).toBe(true);
      expect(events.ejections).toHaveLength(0);

      start();
      expect(a!.passive.pendingDecision).toBe(false);
      expect(events.ejections).toHaveLength(1);
      expect(a!.passive.ejectedUntil).toBe(clock.now + BASE);
      expect(changes.count).toBe(1);
    });

    it('makes no decision after stop, and the next start decides what was left pending', async () => {
      const { detector, events, eps: [a, b], start, clock } = setup(2);
      recordMany(detector, a!, answer(500), 4);
      detector.stop();
      detector.record(a!, answer(500));
      await flush();
      expect(a!.passive.pendingDecision).toBe(true);
      expect(events.ejections).toHaveLength(0);

      // A decision already queued when the detector stops does not run either.
      detector.start(() => [], () => {});
      recordMany(detector, b!, answer(500), 5);
      detector.stop();
      await flush();
      expect(b!.passive.pendingDecision).toBe(true);
      expect(events.ejections).toHaveLength(0);

      // Neither does a sweep, nor a return.
      detector.sweep();
      expect(events.ejections).toHaveLength(0);

      clock.now += 1000;
      start();
      expect(events.ejections.map((e) => [e.endpoint, e.record.at])).toEqual([[a, clock.now], [b, clock.now]]);
      expect(a!.passive.pendingDecision).toBe(false);
      expect(b!.passive.pendingDecision).toBe(false);
    });

    it('does not restore after stop', async () => {
      const { detector, events, eps: [a], clock } = setup(1);
      recordMany(detector, a!, answer(500), 5);
      await flush();
      detector.stop();
      clock.now += 10 * BASE;
      detector.sweep();
      expect(a!.passive.ejectedUntil).not.toBeNull();
      expect(events.restorations).toHaveLength(0);
    });
  });

  describe('NULL_OUTLIER_DETECTOR', () => {
    it('records nothing and ejects nothing', async () => {
      const a = endpoint();
      let changes = 0;
      let membersRead = 0;
      NULL_OUTLIER_DETECTOR.start(() => {
        membersRead++;
        return [new PoolMember(a, 1)];
      }, () => { changes++; });
      recordMany(NULL_OUTLIER_DETECTOR, a, answer(500), 50);
      recordMany(NULL_OUTLIER_DETECTOR, a, failure('connect-failure'), 50);
      await flush();
      NULL_OUTLIER_DETECTOR.stop();
      expect(a.passive).toMatchObject({ consecutive5xx: 0, consecutiveGatewayFailures: 0, pendingDecision: false, ejectedUntil: null, level: 0 });
      expect(a.ejections).toBe(0);
      expect(a.usable).toBe(true);
      expect(changes).toBe(0);
      expect(membersRead).toBe(0);
      expect(Object.isFrozen(NULL_OUTLIER_DETECTOR)).toBe(true);
    });
  });
});
