import { describe, expect, it } from 'vitest';
import type { UpstreamsDump } from '../../src/admin/dumps.js';
import { GatewayMetrics, UNMATCHED_ROUTE } from '../../src/admin/metrics.js';
import { buildStatusReport, lastReloadOf, type RouteSummary, type StatusInput } from '../../src/admin/status.js';

const routes: RouteSummary[] = [
  { name: 'api', prefix: '/api', host: null, methods: null, upstream: 'pool', split: null },
  { name: 'web', prefix: '/', host: 'example.com', methods: ['GET'], upstream: null, split: [{ upstream: 'pool', weight: 9 }, { upstream: 'canary', weight: 1 }] },
  { name: 'quiet', prefix: '/quiet', host: null, methods: null, upstream: 'pool', split: null },
];

const upstreams: UpstreamsDump = {
  upstreams: [{
    name: 'pool',
    balancer: 'round-robin',
    panic: false,
    endpoints: [
      { address: '10.0.0.1:80', url: 'http://10.0.0.1:80', weight: 1, state: 'healthy', ejections: 1, ejectedUntil: null,
        // A past ejection: history, not the endpoint's state.
        lastEjection: { reason: 'consecutive_5xx', detail: '3 consecutive 500', at: '2025-01-01T00:00:00.000Z', durationMs: 30_000, number: 1 },
        lastCheck: null, inFlight: 2, latencyEwmaMs: 12.5 },
      { address: '10.0.0.2:80', url: 'http://10.0.0.2:80', weight: 3, state: 'ejected', ejections: 2, ejectedUntil: '2025-01-01T00:10:30.000Z',
        lastEjection: { reason: 'consecutive_gateway_failure', detail: '2 consecutive gateway failures (last: connect failure)', at: '2025-01-01T00:10:00.000Z', durationMs: 30_000, number: 2 },
        lastCheck: null, inFlight: 0, latencyEwmaMs: 0 },
      { address: '10.0.0.3:80', url: 'http://10.0.0.3:80', weight: 1, state: 'unhealthy', ejections: 1, ejectedUntil: null,
        lastEjection: { reason: 'active_health_check', detail: '3 failed checks in a row: status 500', at: '2025-01-01T00:09:00.000Z', durationMs: null, number: 1 },
        lastCheck: 'status 500', inFlight: 0, latencyEwmaMs: 3 },
    ],
  }],
};

async function metricsWithTraffic(): Promise<GatewayMetrics> {
  const m = new GatewayMetrics({ endpointStates: () => [], panicStates: () => [] });
  m.requests.inc({ route: 'api', method: 'GET', status: '200' }, 7);
  m.requests.inc({ route: 'api', method: 'POST', status: '201' }, 1);
  m.requests.inc({ route: 'api', method: 'GET', status: '502' }, 2);
  m.requests.inc({ route: 'api', method: 'GET', status: '404' }, 1);
  m.requests.inc({ route: 'web', method: 'GET', status: '503' }, 1);
  m.requests.inc({ route: UNMATCHED_ROUTE, method: 'GET', status: '404' }, 4);
  for (const seconds of [0.0005, 0.003, 0.003, 0.02, 0.2, 7]) m.requestDuration.observe({ route: 'api' }, seconds);
  m.requestDuration.observe({ route: 'web' }, 0.04);
  m.upstreamRequests.inc({ upstream: 'pool', endpoint: '10.0.0.1:80', status: '200' }, 5);
  m.upstreamRequests.inc({ upstream: 'pool', endpoint: '10.0.0.1:80', status: '500' }, 1);
  m.upstreamRequests.inc({ upstream: 'pool', endpoint: '10.0.0.2:80', status: '502' }, 2);
  // Another pool's endpoint with the same address: counted apart.
  m.upstreamRequests.inc({ upstream: 'canary', endpoint: '10.0.0.1:80', status: '200' }, 9);
  return m;
}

async function input(overrides: Partial<StatusInput> = {}): Promise<StatusInput> {
  const metrics = await metricsWithTraffic();
  return {
    version: 'abc123def456',
    loadedAt: '2025-01-01T00:00:00.000Z',
    lastReload: null,
    routes,
    upstreams,
    metrics: await metrics.registry.getMetricsAsJSON(),
    ...overrides,
  };
}

describe('buildStatusReport', () => {
  it('carries cumulative requests, 5xx answers and latency buckets per route', async () => {
    const report = buildStatusReport(await input(), new Date('2025-01-01T00:10:05.000Z'));
    expect(report.generatedAt).toBe('2025-01-01T00:10:05.000Z');
    expect(report.version).toBe('abc123def456');
    expect(report.loadedAt).toBe('2025-01-01T00:00:00.000Z');
    expect(report.routes.map((r) => r.name)).toEqual(['api', 'web', 'quiet']);

    const [api, web, quiet] = report.routes;
    expect(api).toMatchObject({ name: 'api', prefix: '/api', host: null, upstream: 'pool', requests: 11, errors5xx: 2 });
    expect(web).toMatchObject({ requests: 1, errors5xx: 1, split: [{ upstream: 'pool', weight: 9 }, { upstream: 'canary', weight: 1 }], methods: ['GET'] });
    expect(quiet).toMatchObject({ requests: 0, errors5xx: 0 });
    expect(report.unmatched).toEqual({ requests: 4, errors5xx: 0 });

    // Cumulative counts per finite bound; +Inf is `count`.
    const latency = api!.latency;
    expect(latency.bounds).toEqual([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]);
    expect(latency.counts).toEqual([1, 1, 3, 3, 4, 4, 4, 5, 5, 5, 5, 5, 6, 6, 6]);
    expect(latency.count).toBe(6);
    expect(latency.sum).toBeCloseTo(7.2265, 6);
    expect(web!.latency.counts).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    // No observation yet: zeros over the same bounds, so the page can subtract reports.
    expect(quiet!.latency).toEqual({ bounds: latency.bounds, counts: latency.bounds.map(() => 0), count: 0, sum: 0 });

    // Plain JSON: what the primary process gets from workers, and what the page gets.
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
  });

  it('describes pools and endpoints: state, the reason of a current ejection, time it ends, figures', async () => {
    const report = buildStatusReport(await input());
    expect(report.pools).toHaveLength(1);
    const pool = report.pools[0]!;
    expect(pool).toMatchObject({ name: 'pool', balancer: 'round-robin', panic: false });
    const [healthy, ejected, unhealthy] = pool.endpoints;
    expect(healthy).toEqual({
      address: '10.0.0.1:80', state: 'healthy', weight: 1, inFlight: 2, latencyEwmaMs: 12.5, ejections: 1,
      ejectedUntil: null, ejection: null, lastCheck: null, requests: 6, errors5xx: 1,
    });
    expect(ejected).toMatchObject({
      address: '10.0.0.2:80', state: 'ejected', weight: 3, ejectedUntil: '2025-01-01T00:10:30.000Z', requests: 2, errors5xx: 2,
      ejection: { reason: 'consecutive_gateway_failure', detail: '2 consecutive gateway failures (last: connect failure)', at: '2025-01-01T00:10:00.000Z' },
    });
    expect(unhealthy).toMatchObject({
      state: 'unhealthy', ejectedUntil: null, lastCheck: 'status 500', requests: 0, errors5xx: 0,
      ejection: { reason: 'active_health_check', detail: '3 failed checks in a row: status 500' },
    });
  });

  it('reports the last reload, successful or not', async () => {
    const at = new Date('2025-01-01T00:05:00.000Z');
    expect(lastReloadOf(null)).toBeNull();
    expect(lastReloadOf({ at, result: { result: 'success', version: 'abc123def456', changed: true } }))
      .toEqual({ at: '2025-01-01T00:05:00.000Z', result: 'success', version: 'abc123def456', changed: true });
    const failure = lastReloadOf({
      at,
      result: { result: 'failure', errors: [{ file: '/etc/gw/routes.yaml', line: 4, col: 7, path: 'routes[0].upstream', message: 'unknown upstream "nope"' }] },
    });
    expect(failure).toMatchObject({ at: '2025-01-01T00:05:00.000Z', result: 'failure' });
    expect(failure!.errors).toHaveLength(1);
    expect(failure!.errors![0]).toContain('routes.yaml:4:7');
    expect(failure!.errors![0]).toContain('unknown upstream "nope"');

    const report = buildStatusReport(await input({ lastReload: failure }));
    expect(report.lastReload).toEqual(failure);
  });

  it('answers with empty sections before any configuration is loaded', () => {
    const report = buildStatusReport({ version: null, loadedAt: null, lastReload: null, routes: [], upstreams: { upstreams: [] }, metrics: [] });
    expect(report).toMatchObject({ version: null, loadedAt: null, lastReload: null, routes: [], pools: [], unmatched: { requests: 0, errors5xx: 0 } });
  });
});
