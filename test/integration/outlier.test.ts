import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import type { RunningGateway } from '../helpers/gateway.js';
import { LogCapture } from '../helpers/logs.js';
import { metricValue } from '../helpers/metrics.js';
import { endpointView, poolView, useTestbed } from '../helpers/testbed.js';
import { closedPort, echo, type UpstreamBehaviour } from '../helpers/upstream.js';
import { sleep, until } from '../helpers/wait.js';

// Passive outlier detection end to end: real gateway, real upstream servers, time scaled down by
// config (interval 100–200 ms, ejections of a few hundred ms), no fake timers.

const failing: UpstreamBehaviour = (_req, res) => {
  res.writeHead(500, { 'content-type': 'text/plain' });
  res.end('broken');
};

// Round-robin without retries: each request goes to exactly one endpoint, the next in turn, so a
// test knows which endpoint saw how many requests.
const roundRobinNoRetries = { balancer: 'round-robin', retries: { attempts: 0 } } as const;

async function get(gw: RunningGateway, path = '/'): Promise<{ status: number; body: string }> {
  const res = await request(`${gw.url}${path}`);
  return { status: res.statusCode, body: await res.body.text() };
}

describe('passive outlier detection', () => {
  const bed = useTestbed();

  it('ejects an endpoint answering 500 after exactly consecutive5xx failures, sends it nothing while ejected, and explains why', async () => {
    const ups = await bed.upstreams(3);
    const bad = ups[1];
    bad.behaviour = failing;
    const logs = new LogCapture();
    const gw = await bed.gatewayOver(ups, {
      ...roundRobinNoRetries,
      outlierDetection: { consecutive5xx: 3, interval: '100ms', baseEjectionTime: '30s', maxEjectionPercent: 50 },
    }, logs.logger);

    let serverErrors = 0;
    for (let i = 0; i < 60; i++) if ((await get(gw)).status === 500) serverErrors++;
    // Exactly three: the third failure queued the decision, which ran before the next request.
    expect(bad.seen).toHaveLength(3);
    expect(serverErrors).toBe(3);
    expect(ups[0].seen.length + ups[2].seen.length).toBe(57);

    const view = await endpointView(gw, bad.address);
    expect(view.state).toBe('ejected');
    expect(view.ejections).toBe(1);
    expect(view.lastEjection).toMatchObject({ reason: 'consecutive_5xx', detail: '3 consecutive 500', durationMs: 30_000, number: 1 });
    expect(Date.parse(view.ejectedUntil!) - Date.parse(view.lastEjection!.at)).toBe(30_000);

    expect(await metricValue(gw.gateway, 'gateway_outlier_ejections_total', { upstream: 'pool', endpoint: bad.address, reason: 'consecutive_5xx' })).toBe(1);
    expect(await metricValue(gw.gateway, 'gateway_upstream_endpoints', { upstream: 'pool', state: 'ejected' })).toBe(1);
    expect(await metricValue(gw.gateway, 'gateway_upstream_endpoints', { upstream: 'pool', state: 'healthy' })).toBe(2);

    const [line] = logs.events('endpoint_ejected');
    expect(line).toMatchObject({ upstream: 'pool', endpoint: bad.address, reason: 'consecutive_5xx', detail: '3 consecutive 500', ejection: 1, durationMs: 30_000 });
    expect(String(line!.msg)).toContain('ejection 1, for 30000ms');
  });

  it('ejects a closed port on consecutive gateway failures while retries keep clients whole', async () => {
    const ups = await bed.upstreams(2);
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const gw = await bed.gatewayOver([ups[0], dead, ups[1]], {
      balancer: 'round-robin',
      outlierDetection: { consecutiveGatewayFailures: 2, consecutive5xx: 100, interval: '100ms', baseEjectionTime: '30s' },
    });
    const statuses = [];
    for (let i = 0; i < 30; i++) statuses.push((await get(gw)).status);
    expect(statuses.every((s) => s === 200)).toBe(true);

    const deadAddress = dead.slice('http://'.length);
    const view = await endpointView(gw, deadAddress);
    expect(view.state).toBe('ejected');
    expect(view.lastEjection).toMatchObject({ reason: 'consecutive_gateway_failure', detail: '2 consecutive gateway failures (last: connect failure)' });
    expect(await metricValue(gw.gateway, 'gateway_upstream_requests_total', { endpoint: deadAddress })).toBe(2);
    expect(await metricValue(gw.gateway, 'gateway_outlier_ejections_total', { endpoint: deadAddress, reason: 'consecutive_gateway_failure' })).toBe(1);
  });

  it('returns an endpoint after its ejection time, and ejects it for twice as long when it fails again', async () => {
    const ups = await bed.upstreams(3);
    const bad = ups[2];
    bad.behaviour = failing;
    const gw = await bed.gatewayOver(ups, {
      ...roundRobinNoRetries,
      outlierDetection: { consecutive5xx: 2, interval: '200ms', baseEjectionTime: '500ms', maxEjectionTime: '10s' },
    });
    const first = await until('the first ejection', async () => {
      await get(gw);
      const e = await endpointView(gw, bad.address);
      return e.state === 'ejected' ? e : null;
    }, 10_000);
    expect(first.lastEjection).toMatchObject({ number: 1, durationMs: 500 });
    const seenWhenEjected = bad.seen.length;

    // Back after 500 ms (at the next 200 ms sweep): it gets traffic again, fails twice, and goes
    // out for 2 × 500 ms. Requests keep flowing so the failures come well within one interval.
    const second = await until('the second ejection', async () => {
      await get(gw);
      const e = await endpointView(gw, bad.address);
      return e.lastEjection?.number === 2 ? e : null;
    }, 10_000);
    expect(bad.seen.length).toBe(seenWhenEjected + 2);
    expect(second.lastEjection).toMatchObject({ reason: 'consecutive_5xx', number: 2, durationMs: 1000 });
    expect(second.ejections).toBe(2);
  });

  it('never ejects beyond maxEjectionPercent, counted as if the ejection had happened', async () => {
    const ups = await bed.upstreams(3);
    ups[0].behaviour = failing;
    ups[1].behaviour = failing;
    const logs = new LogCapture();
    const gw = await bed.gatewayOver(ups, {
      ...roundRobinNoRetries,
      panicThreshold: '0%',
      outlierDetection: { consecutive5xx: 2, interval: '100ms', baseEjectionTime: '30s', maxEjectionPercent: 34 },
    }, logs.logger);
    for (let i = 0; i < 60; i++) await get(gw);
    await sleep(250); // two sweeps: nothing more happens on the timer either
    const view = await poolView(gw);
    expect(view.endpoints.filter((e) => e.state === 'ejected')).toHaveLength(1); // 1 of 3 = 33 % ≤ 34 %; 2 of 3 = 67 %
    expect(await metricValue(gw.gateway, 'gateway_outlier_ejections_total', { upstream: 'pool' })).toBe(1);
    const capped = logs.events('ejection_capped');
    expect(capped.length).toBeGreaterThan(0);
    expect(capped[0]).toMatchObject({ ejected: 1, total: 3, reason: 'consecutive_5xx' });
  });

  it('enters panic when too few endpoints are usable: balances over all of them instead of answering 503', async () => {
    const ups = await bed.upstreams(2, failing);
    const logs = new LogCapture();
    const gw = await bed.gatewayOver(ups, {
      ...roundRobinNoRetries,
      panicThreshold: '50%',
      outlierDetection: { consecutive5xx: 2, interval: '100ms', baseEjectionTime: '30s', maxEjectionPercent: 100 },
    }, logs.logger);
    for (let i = 0; i < 10; i++) await get(gw);
    const view = await poolView(gw);
    expect(view.endpoints.every((e) => e.state === 'ejected')).toBe(true);
    expect(view.panic).toBe(true);
    expect(await metricValue(gw.gateway, 'gateway_upstream_panic', { upstream: 'pool' })).toBe(1);
    expect(logs.events('panic_started')[0]).toMatchObject({ upstream: 'pool', usable: 0, total: 2 });

    const seen = ups[0].seen.length + ups[1].seen.length;
    const answers = await Promise.all(Array.from({ length: 10 }, () => get(gw)));
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(500)); // the upstreams' own answers, not 503
    expect(ups[0].seen.length + ups[1].seen.length).toBe(seen + 10);
  });

  it('answers fast with JSON when every endpoint fails: 502 in panic, 503 upstream_unavailable without it', async () => {
    const dead = [`http://127.0.0.1:${await closedPort()}`, `http://127.0.0.1:${await closedPort()}`];
    for (const [panicThreshold, status, code] of [['50%', 502, 'bad_gateway'], ['0%', 503, 'upstream_unavailable']] as const) {
      const gw = await bed.gatewayOver(dead, {
        retries: { attempts: 1 },
        panicThreshold,
        outlierDetection: { consecutiveGatewayFailures: 1, interval: '100ms', baseEjectionTime: '30s', maxEjectionPercent: 100 },
      });
      for (let i = 0; i < 4; i++) await get(gw); // eject both
      const started = performance.now();
      const answers = await Promise.all(Array.from({ length: 20 }, () => get(gw)));
      expect(performance.now() - started).toBeLessThan(5000);
      for (const a of answers) {
        expect(a.status).toBe(status);
        expect(JSON.parse(a.body)).toMatchObject({ error: { status, code } });
      }
      await gw.stop();
    }
  });

  it('ejects an endpoint whose success rate is far below the pool mean (successRate)', async () => {
    const ups = await bed.upstreams(6);
    const flaky = ups[3];
    let n = 0;
    flaky.behaviour = (req, res, body) => (n++ % 2 === 0 ? failing(req, res, body) : echo(req, res, body));
    const gw = await bed.gatewayOver(ups, {
      ...roundRobinNoRetries,
      outlierDetection: { consecutive5xx: 1000, interval: '1s', baseEjectionTime: '30s', successRate: { minimumHosts: 5, requestVolume: 10 } },
    });
    const view = await until('a success-rate ejection', async () => {
      await Promise.all(Array.from({ length: 12 }, () => get(gw)));
      const e = await endpointView(gw, flaky.address);
      return e.state === 'ejected' ? e : null;
    }, 10_000);
    expect(view.lastEjection?.reason).toBe('success_rate');
    expect(view.lastEjection?.detail).toMatch(/^success rate 5\d\.\d% over \d+ requests, below \d+\.\d% \(pool mean \d+\.\d%\)$/);
    const others = (await poolView(gw)).endpoints.filter((e) => e.address !== flaky.address);
    expect(others.every((e) => e.state === 'healthy')).toBe(true);
  });
});
