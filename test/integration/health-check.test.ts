import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { metricValue } from '../helpers/metrics.js';
import { endpointView, useTestbed } from '../helpers/testbed.js';
import { echo, type UpstreamBehaviour } from '../helpers/upstream.js';
import { until } from '../helpers/wait.js';

// Active health checks through the running gateway: states in /upstreams, metrics, traffic.

/** Health answers `healthStatus`; everything else is `apiStatus`. */
function split(state: { healthStatus: number; apiStatus: number }): UpstreamBehaviour {
  return (req, res, body) => {
    if (req.url === '/healthz') {
      res.writeHead(state.healthStatus);
      res.end();
    } else if (state.apiStatus === 200) {
      echo(req, res, body);
    } else {
      res.writeHead(state.apiStatus);
      res.end();
    }
  };
}

describe('active health checks', () => {
  const bed = useTestbed();

  it('takes an endpoint failing its checks out of the pool, explains it, and brings it back when they pass', async () => {
    const state = { healthStatus: 500, apiStatus: 200 };
    const ups = await bed.upstreams(2);
    const sick = ups[1];
    sick.behaviour = split(state);
    const gw = await bed.gatewayOver(ups, {
      balancer: 'round-robin',
      healthCheck: { path: '/healthz', interval: '100ms', timeout: '500ms', unhealthyThreshold: 2, healthyThreshold: 2 },
    });
    const view = await until('unhealthy', async () => {
      const e = await endpointView(gw, sick.address);
      return e.state === 'unhealthy' ? e : null;
    }, 8000);
    expect(view.lastEjection).toMatchObject({ reason: 'active_health_check', detail: '2 failed checks in a row: status 500', durationMs: null, number: 1 });
    expect(view.lastCheck).toBe('status 500');
    expect(await metricValue(gw.gateway, 'gateway_outlier_ejections_total', { endpoint: sick.address, reason: 'active_health_check' })).toBe(1);
    expect(await metricValue(gw.gateway, 'gateway_upstream_endpoints', { upstream: 'pool', state: 'unhealthy' })).toBe(1);

    const apiHits = (): number => sick.seen.filter((s) => s.url !== '/healthz').length;
    const before = apiHits();
    for (let i = 0; i < 20; i++) await (await request(`${gw.url}/api`)).body.dump();
    expect(apiHits()).toBe(before);

    state.healthStatus = 200;
    await until('healthy again', async () => (await endpointView(gw, sick.address)).state === 'healthy', 8000);
    for (let i = 0; i < 20; i++) await (await request(`${gw.url}/api`)).body.dump();
    expect(apiHits()).toBeGreaterThan(before);
  });

  it('returns a passively ejected endpoint early when a check passes', async () => {
    const state = { healthStatus: 200, apiStatus: 500 };
    const ups = await bed.upstreams(3);
    const flaky = ups[0];
    flaky.behaviour = split(state);
    const gw = await bed.gatewayOver(ups, {
      balancer: 'round-robin',
      retries: { attempts: 0 },
      outlierDetection: { consecutive5xx: 2, interval: '100ms', baseEjectionTime: '60s' },
      healthCheck: { path: '/healthz', interval: '200ms', timeout: '500ms' },
    });
    await until('ejected', async () => {
      await (await request(`${gw.url}/api`)).body.dump();
      return (await endpointView(gw, flaky.address)).state === 'ejected';
    }, 8000);
    state.apiStatus = 200;
    // A 60 s ejection, ended by the next passing check (≤ 200 ms + jitter).
    const back = await until('back early', async () => {
      const e = await endpointView(gw, flaky.address);
      return e.state === 'healthy' ? e : null;
    }, 3000);
    expect(back.lastEjection).toMatchObject({ reason: 'consecutive_5xx', number: 1, durationMs: 60_000 });
  });
});
