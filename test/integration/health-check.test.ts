import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { type RunningGateway, simpleRoutes, startGateway } from '../helpers/gateway.js';
import { metricValue } from '../helpers/metrics.js';
import { echo, startUpstreams, type TestUpstream, type UpstreamBehaviour } from '../helpers/upstream.js';

// Active health checks through the running gateway: states in /upstreams, metrics, traffic.

interface EndpointView {
  address: string;
  state: string;
  ejections: number;
  lastCheck: string | null;
  lastEjection: { reason: string; detail: string; durationMs: number | null; number: number } | null;
}

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

async function endpoint(gw: RunningGateway, address: string): Promise<EndpointView> {
  const body = (await (await request(`${gw.adminUrl}/upstreams`)).body.json()) as { upstreams: { endpoints: EndpointView[] }[] };
  return body.upstreams[0]!.endpoints.find((e) => e.address === address)!;
}

async function until<T>(what: string, probe: () => Promise<T | null>, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('active health checks', () => {
  let gw: RunningGateway | null = null;
  let ups: TestUpstream[] = [];

  afterEach(async () => {
    await gw?.stop();
    gw = null;
    await Promise.all(ups.map((u) => u.stop()));
    ups = [];
  });

  it('takes an endpoint failing its checks out of the pool, explains it, and brings it back when they pass', async () => {
    const state = { healthStatus: 500, apiStatus: 200 };
    ups = await startUpstreams(2);
    const sick = ups[1]!;
    sick.behaviour = split(state);
    gw = await startGateway(simpleRoutes(ups.map((u) => u.url), {}, {
      balancer: 'round-robin',
      healthCheck: { path: '/healthz', interval: '100ms', timeout: '500ms', unhealthyThreshold: 2, healthyThreshold: 2 },
    }));
    const view = await until('unhealthy', async () => {
      const e = await endpoint(gw!, sick.address);
      return e.state === 'unhealthy' ? e : null;
    });
    expect(view.lastEjection).toMatchObject({ reason: 'active_health_check', detail: '2 failed checks in a row: status 500', durationMs: null, number: 1 });
    expect(view.lastCheck).toBe('status 500');
    expect(await metricValue(gw.gateway, 'gateway_outlier_ejections_total', { endpoint: sick.address, reason: 'active_health_check' })).toBe(1);
    expect(await metricValue(gw.gateway, 'gateway_upstream_endpoints', { upstream: 'pool', state: 'unhealthy' })).toBe(1);

    const apiHits = (): number => sick.seen.filter((s) => s.url !== '/healthz').length;
    const before = apiHits();
    for (let i = 0; i < 20; i++) await (await request(`${gw.url}/api`)).body.dump();
    expect(apiHits()).toBe(before);

    state.healthStatus = 200;
    await until('healthy again', async () => ((await endpoint(gw!, sick.address)).state === 'healthy' ? true : null));
    for (let i = 0; i < 20; i++) await (await request(`${gw.url}/api`)).body.dump();
    expect(apiHits()).toBeGreaterThan(before);
  });

  it('returns a passively ejected endpoint early when a check passes', async () => {
    const state = { healthStatus: 200, apiStatus: 500 };
    ups = await startUpstreams(3);
    const flaky = ups[0]!;
    flaky.behaviour = split(state);
    gw = await startGateway(simpleRoutes(ups.map((u) => u.url), {}, {
      balancer: 'round-robin',
      retries: { attempts: 0 },
      outlierDetection: { consecutive5xx: 2, interval: '100ms', baseEjectionTime: '60s' },
      healthCheck: { path: '/healthz', interval: '200ms', timeout: '500ms' },
    }));
    await until('ejected', async () => {
      await (await request(`${gw!.url}/api`)).body.dump();
      const e = await endpoint(gw!, flaky.address);
      return e.state === 'ejected' ? e : null;
    });
    state.apiStatus = 200;
    // A 60 s ejection, ended by the next passing check (≤ 200 ms + jitter).
    const back = await until('back early', async () => {
      const e = await endpoint(gw!, flaky.address);
      return e.state === 'healthy' ? e : null;
    }, 3000);
    expect(back.lastEjection).toMatchObject({ reason: 'consecutive_5xx', number: 1, durationMs: 60_000 });
  });
});
