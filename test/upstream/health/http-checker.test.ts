import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { HealthCheckConfig } from '../../../src/config/types.js';
import { type EjectionRecord, Endpoint } from '../../../src/upstream/endpoint.js';
import type { HealthEvents } from '../../../src/upstream/health/checker.js';
import { HttpHealthChecker } from '../../../src/upstream/health/http-checker.js';
import { PoolMember } from '../../../src/upstream/member.js';
import { closedPort, TestUpstream, type UpstreamBehaviour } from '../../helpers/upstream.js';

// Real sockets, real timers, time scaled down: checks every ~100 ms. Every wait is a poll with a
// generous deadline, and every "nothing more happens" is measured over several intervals, so a
// slow machine makes the tests slower, not red.

const DEADLINE_MS = 10_000;

function healthConfig(overrides: Partial<HealthCheckConfig> = {}): HealthCheckConfig {
  return {
    path: '/healthz',
    intervalMs: 100,
    timeoutMs: 200,
    unhealthyThreshold: 3,
    healthyThreshold: 2,
    ...overrides,
  };
}

async function waitFor(what: string, condition: () => boolean, deadlineMs = DEADLINE_MS): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const status = (code: number): UpstreamBehaviour => (_req, res) => {
  res.writeHead(code, { 'content-type': 'text/plain' });
  res.end(code === 204 || code === 304 ? undefined : `status ${code}\n`);
};

type Event =
  | { kind: 'unhealthy'; endpoint: Endpoint; record: EjectionRecord }
  | { kind: 'healthy'; endpoint: Endpoint }
  | { kind: 'restoredEarly'; endpoint: Endpoint };

class RecordingEvents implements HealthEvents {
  readonly events: Event[] = [];
  unhealthy(endpoint: Endpoint, record: EjectionRecord): void {
    this.events.push({ kind: 'unhealthy', endpoint, record });
  }
  healthy(endpoint: Endpoint): void {
    this.events.push({ kind: 'healthy', endpoint });
  }
  restoredEarly(endpoint: Endpoint): void {
    this.events.push({ kind: 'restoredEarly', endpoint });
  }
  get kinds(): string[] {
    return this.events.map((e) => e.kind);
  }
}

describe('HttpHealthChecker', () => {
  const upstreams: TestUpstream[] = [];
  const endpoints: Endpoint[] = [];
  const checkers: HttpHealthChecker[] = [];

  afterEach(async () => {
    for (const c of checkers.splice(0)) c.stop();
    await Promise.all(endpoints.splice(0).map((e) => e.close()));
    await Promise.all(upstreams.splice(0).map((u) => u.stop()));
  });

  async function upstream(behaviour: UpstreamBehaviour): Promise<TestUpstream> {
    const u = await new TestUpstream(behaviour).start();
    upstreams.push(u);
    return u;
  }

  function endpoint(url: string): Endpoint {
    const e = new Endpoint('svc', url, `svc|${url}`, { connectTimeoutMs: 1000, maxConnections: 4, keepAliveTimeoutMs: 1000 });
    endpoints.push(e);
    return e;
  }

  function member(url: string): PoolMember {
    return new PoolMember(endpoint(url), 1);
  }

  function checker(overrides: Partial<HealthCheckConfig> = {}, events: HealthEvents = new RecordingEvents()): HttpHealthChecker {
    const c = new HttpHealthChecker('svc', healthConfig(overrides), events);
    checkers.push(c);
    return c;
  }

  it('GETs the path with its own user-agent and the endpoint address as Host', async () => {
    const u = await upstream(status(200));
    const m = member(u.url);
    checker().start([m], () => {});
    await waitFor('a check', () => u.seen.length >= 1);
    const seen = u.seen[0]!;
    expect(seen.method).toBe('GET');
    expect(seen.url).toBe('/healthz');
    expect(seen.headers['user-agent']).toBe('gateway-health-check');
    expect(seen.headers.host).toBe(m.endpoint.address);
    expect(m.endpoint.inFlight).toBe(0); // not counted as traffic
  });

  it('marks an endpoint unhealthy after exactly unhealthyThreshold failed checks, once', async () => {
    const u = await upstream(status(500));
    const m = member(u.url);
    const events = new RecordingEvents();
    const seenAtChange: number[] = [];
    checker({}, events).start([m], () => seenAtChange.push(u.seen.length));

    await waitFor('the endpoint to turn unhealthy', () => seenAtChange.length > 0);
    expect(seenAtChange).toEqual([3]);
    const e = m.endpoint;
    expect(e.active.healthy).toBe(false);
    expect(e.state).toBe('unhealthy');
    expect(e.usable).toBe(false);
    expect(e.active.lastResult).toBe('status 500');
    expect(e.lastEjection).toMatchObject({
      reason: 'active_health_check',
      detail: '3 failed checks in a row: status 500',
      durationMs: null,
      number: 1,
    });
    expect(events.kinds).toEqual(['unhealthy']);
    expect(events.events[0]).toMatchObject({ endpoint: e, record: e.lastEjection });

    // Failing on does not eject again.
    await waitFor('more failed checks', () => u.seen.length >= 6);
    expect(e.ejections).toBe(1);
    expect(e.active.failuresInRow).toBeGreaterThanOrEqual(5);
    expect(seenAtChange).toEqual([3]);
    expect(events.kinds).toEqual(['unhealthy']);
  });

  it('brings an unhealthy endpoint back after healthyThreshold passes, calling onChange on each transition', async () => {
    let passesServed = 0;
    const u = await upstream(status(500));
    const m = member(u.url);
    const events = new RecordingEvents();
    const transitions: string[] = [];
    const passesAtChange: number[] = [];
    checker({ unhealthyThreshold: 2, healthyThreshold: 3 }, events).start([m], () => {
      transitions.push(m.endpoint.state);
      passesAtChange.push(passesServed);
    });

    await waitFor('unhealthy', () => transitions.length === 1);
    u.behaviour = (req, res, body) => {
      passesServed++;
      status(200)(req, res, body);
    };
    await waitFor('healthy again', () => transitions.length === 2);
    expect(transitions).toEqual(['unhealthy', 'healthy']);
    expect(passesAtChange).toEqual([0, 3]);
    expect(events.kinds).toEqual(['unhealthy', 'healthy']);
    expect(m.endpoint.active).toMatchObject({ healthy: true, failuresInRow: 0, lastResult: 'status 200' });

    // Passing on is not a transition.
    await waitFor('more passing checks', () => passesServed >= 6);
    expect(transitions).toEqual(['unhealthy', 'healthy']);

    // Nor is one failure, which resets the passes; the next threshold's worth is.
    u.behaviour = status(503);
    await waitFor('unhealthy again', () => transitions.length === 3);
    expect(m.endpoint.lastEjection).toMatchObject({ detail: '2 failed checks in a row: status 503', number: 2 });
    expect(events.kinds).toEqual(['unhealthy', 'healthy', 'unhealthy']);
  });

  it('counts a check without a complete answer within the timeout as failed, naming the timeout', async () => {
    // One endpoint never answers, one sends headers and then stalls the body.
    const silent = await upstream(() => {});
    const stalled = await upstream((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
    });
    const a = member(silent.url);
    const b = member(stalled.url);
    let changes = 0;
    const started = Date.now();
    checker({ unhealthyThreshold: 2, timeoutMs: 150 }).start([a, b], () => changes++);
    await waitFor('both unhealthy', () => changes === 2);
    // Two checks of 150 ms each, at least: a timeout is waited for, not guessed.
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    for (const m of [a, b]) {
      expect(m.endpoint.state).toBe('unhealthy');
      expect(m.endpoint.active.lastResult).toBe('timeout after 150ms');
      expect(m.endpoint.lastEjection?.detail).toBe('2 failed checks in a row: timeout after 150ms');
    }
  });

  it('counts a refused connection as failed', async () => {
    const m = member(`http://127.0.0.1:${await closedPort()}`);
    let changes = 0;
    checker({ unhealthyThreshold: 1 }).start([m], () => changes++);
    await waitFor('unhealthy', () => changes === 1);
    expect(m.endpoint.lastEjection?.detail).toBe('1 failed check in a row: connection refused');
  });

  it.each([301, 304, 404, 429, 500, 503])('fails a check answered %i', async (code) => {
    const u = await upstream((req, res, body) => {
      if (code === 301) res.setHeader('location', '/elsewhere');
      status(code)(req, res, body);
    });
    const m = member(u.url);
    let changes = 0;
    checker({ unhealthyThreshold: 1 }).start([m], () => changes++);
    await waitFor('unhealthy', () => changes === 1);
    expect(m.endpoint.lastEjection?.detail).toBe(`1 failed check in a row: status ${code}`);
    expect(u.seen.map((s) => s.url)).not.toContain('/elsewhere'); // redirects are not followed
  });

  it.each([200, 204, 299])('passes a check answered %i', async (code) => {
    const u = await upstream(status(code));
    const m = member(u.url);
    checker({ unhealthyThreshold: 1 }).start([m], () => {});
    await waitFor('three checks', () => m.endpoint.active.passesInRow >= 3);
    expect(m.endpoint.active).toMatchObject({ healthy: true, failuresInRow: 0, lastResult: `status ${code}` });
    expect(m.endpoint.ejections).toBe(0);
  });

  it('drains a large body and passes on its status', async () => {
    const big = Buffer.alloc(1024 * 1024, 'x');
    const u = await upstream((_req, res) => {
      res.writeHead(200, { 'content-length': String(big.length) });
      res.end(big);
    });
    const m = member(u.url);
    checker({ unhealthyThreshold: 1, timeoutMs: 2000 }).start([m], () => {});
    await waitFor('two checks', () => m.endpoint.active.passesInRow >= 2);
    expect(m.endpoint.state).toBe('healthy');
  });

  it('returns a passively ejected endpoint early on one passing check, keeping its level', async () => {
    const u = await upstream(status(200));
    const m = member(u.url);
    const e = m.endpoint;
    const before = Date.now();
    Object.assign(e.passive, { ejectedUntil: before + 60_000, consecutive5xx: 5, consecutiveGatewayFailures: 2, level: 2, healthySince: 0 });
    expect(e.state).toBe('ejected');
    const events = new RecordingEvents();
    let changes = 0;
    let seenAtChange = 0;
    checker({ healthyThreshold: 3 }, events).start([m], () => {
      changes++;
      seenAtChange = u.seen.length;
    });

    await waitFor('the ejection to end', () => changes === 1);
    expect(seenAtChange).toBe(1);
    expect(e.passive).toMatchObject({ ejectedUntil: null, consecutive5xx: 0, consecutiveGatewayFailures: 0, level: 2 });
    expect(e.passive.healthySince).toBeGreaterThanOrEqual(before);
    expect(e.state).toBe('healthy');
    expect(events.kinds).toEqual(['restoredEarly']);
  });

  it('leaves a passive ejection alone while checks fail', async () => {
    const u = await upstream(status(500));
    const m = member(u.url);
    const until = Date.now() + 60_000;
    m.endpoint.passive.ejectedUntil = until;
    m.endpoint.passive.consecutive5xx = 5;
    const events = new RecordingEvents();
    checker({ unhealthyThreshold: 100 }, events).start([m], () => {});
    await waitFor('three checks', () => u.seen.length >= 3);
    expect(m.endpoint.passive).toMatchObject({ ejectedUntil: until, consecutive5xx: 5 });
    expect(events.kinds).toEqual([]);
  });

  it('never has more than one check in flight per endpoint when answers take longer than the interval', async () => {
    let open = 0;
    let maxOpen = 0;
    const slow: UpstreamBehaviour = (_req, res) => {
      open++;
      maxOpen = Math.max(maxOpen, open);
      res.on('close', () => open--);
      setTimeout(() => status(200)(_req, res, Buffer.alloc(0)), 300);
    };
    const u = await upstream(slow);
    const m = member(u.url);
    checker({ intervalMs: 50, timeoutMs: 2000 }).start([m], () => {});
    await waitFor('four checks', () => m.endpoint.active.passesInRow >= 4);
    expect(maxOpen).toBe(1);
  });

  it('does not pile up checks on an endpoint that hangs past the timeout', async () => {
    const u = await upstream(() => {}); // never answers
    const m = member(u.url);
    const config = { intervalMs: 50, timeoutMs: 300, unhealthyThreshold: 100 };
    const started = Date.now();
    checker(config).start([m], () => {});
    await waitFor('three checks', () => u.seen.length >= 3);
    await sleep(600);
    const elapsed = Date.now() - started;
    // One check per timeout + interval at most (the first within one interval of starting);
    // piled up, there would be one per interval.
    const atMost = 1 + Math.ceil((elapsed - config.timeoutMs) / (config.timeoutMs + config.intervalMs * 0.9));
    expect(u.seen.length).toBeLessThanOrEqual(atMost);
    expect(m.endpoint.active.lastResult).toBe('timeout after 300ms');
  });

  it('spreads the first checks of a pool over one interval', async () => {
    // Drawn offsets: 0.1, 0.5 and 0.9 of the interval.
    const draws = [0.1, 0.5, 0.9];
    const random = () => draws.shift() ?? 0.5;
    const firstArrival: number[] = [];
    const us = await Promise.all([0, 1, 2].map((i) => upstream((req, res, body) => {
      firstArrival[i] ??= Date.now();
      status(200)(req, res, body);
    })));
    const c = new HttpHealthChecker('svc', healthConfig({ intervalMs: 600 }), undefined, { random });
    checkers.push(c);
    const started = Date.now();
    c.start(us.map((u) => member(u.url)), () => {});
    await waitFor('three first checks', () => firstArrival.filter((t) => t !== undefined).length === 3);
    const offsets = firstArrival.map((t) => t - started);
    expect(offsets[0]).toBeGreaterThanOrEqual(55);
    expect(offsets[1]).toBeGreaterThanOrEqual(295);
    expect(offsets[2]).toBeGreaterThanOrEqual(535);
  });

  it('stop() ends every check, and a check in flight changes nothing', async () => {
    let stopDuringCheck: (() => void) | null = null;
    let changesAtStop = -1;
    const a = await upstream((req, res, body) => {
      stopDuringCheck?.();
      setTimeout(() => status(500)(req, res, body), 50);
    });
    const b = await upstream(status(500));
    const ma = member(a.url);
    const mb = member(b.url);
    let changes = 0;
    const c = checker({ unhealthyThreshold: 1 });
    stopDuringCheck = () => {
      if (changesAtStop === -1) changesAtStop = changes;
      c.stop();
    };
    c.start([ma, mb], () => changes++);
    await waitFor('a check of a', () => a.seen.length >= 1);
    const seen = [a.seen.length, b.seen.length];
    await sleep(700);
    expect([a.seen.length, b.seen.length]).toEqual(seen);
    expect(ma.endpoint.state).toBe('healthy');
    expect(ma.endpoint.active.lastResult).toBeNull();
    // b may or may not have been checked before a; either way nothing changes after stop().
    expect(changes).toBe(changesAtStop);
    expect(c.running).toBe(false);
    expect(c.endpoints).toEqual([]);
  });

  it('update() starts checking new endpoints and stops removed ones without restarting the others', async () => {
    const a = await upstream(status(200));
    const b = await upstream(status(200));
    const ma = member(a.url);
    const mb = member(b.url);
    const c = checker({ timeoutMs: 2000 });
    c.start([ma], () => {});
    await waitFor('a check of a', () => a.seen.length >= 1);
    expect(b.seen.length).toBe(0);

    // Slow a down and update while a check of a is in flight: it completes and counts.
    let aborted = 0;
    let aPending = false;
    a.behaviour = (req, res, body) => {
      aPending = true;
      res.on('close', () => {
        if (!res.writableFinished) aborted++;
      });
      setTimeout(() => {
        aPending = false;
        status(200)(req, res, body);
      }, 400);
    };
    const passes = ma.endpoint.active.passesInRow;
    await waitFor('a slow check of a in flight', () => aPending);
    // A new PoolMember for the same Endpoint (a new snapshot) is the same endpoint.
    c.update([new PoolMember(ma.endpoint, 2), mb]);
    expect(new Set(c.endpoints)).toEqual(new Set([ma.endpoint, mb.endpoint]));
    await waitFor('the slow check to finish', () => ma.endpoint.active.passesInRow > passes);
    expect(aborted).toBe(0);
    await waitFor('a check of b', () => b.seen.length >= 1);

    // Removing a aborts its check in flight and ends its checks; b carries on.
    await waitFor('another check of a in flight', () => aPending);
    const passesBefore = ma.endpoint.active.passesInRow;
    c.update([mb]);
    expect(c.endpoints).toEqual([mb.endpoint]);
    const seenA = a.seen.length;
    const seenB = b.seen.length;
    await sleep(600);
    expect(a.seen.length).toBe(seenA);
    expect(b.seen.length).toBeGreaterThan(seenB);
    expect(aborted).toBe(1);
    expect(ma.endpoint.active.passesInRow).toBe(passesBefore);
  });

  it('carries on where a previous checker of the same endpoints stopped (a reload)', async () => {
    const u = await upstream(status(500));
    const m = member(u.url);
    const first = checker({ unhealthyThreshold: 1 });
    let changes = 0;
    first.start([m], () => changes++);
    await waitFor('unhealthy', () => changes === 1);
    first.stop();

    u.behaviour = status(200);
    const events = new RecordingEvents();
    const states: string[] = [];
    let passesAtChange = 0;
    const second = checker({ unhealthyThreshold: 1, healthyThreshold: 2 }, events);
    second.start([new PoolMember(m.endpoint, 1)], () => {
      states.push(m.endpoint.state);
      passesAtChange = m.endpoint.active.passesInRow;
    });
    expect(m.endpoint.state).toBe('unhealthy'); // not reset by a new checker
    await waitFor('healthy', () => states.length === 1);
    expect(states).toEqual(['healthy']);
    expect(passesAtChange).toBe(2);
    expect(events.kinds).toEqual(['healthy']);
    expect(changes).toBe(1); // the stopped checker's callback is never called again
  });

  it('starts new endpoints healthy, before any check', () => {
    const m = member('http://127.0.0.1:9');
    checker().start([m], () => {});
    expect(m.endpoint.state).toBe('healthy');
    expect(m.endpoint.usable).toBe(true);
  });
});
