import { createHash } from 'node:crypto';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminServer } from '../../src/admin/server.js';
import type { StatusReport } from '../../src/admin/status.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { TestUpstream, echo } from '../helpers/upstream.js';

describe('admin listener', () => {
  let ups: TestUpstream[];
  let gw: RunningGateway;

  beforeAll(async () => {
    ups = await Promise.all([0, 1].map(() => new TestUpstream(echo).start()));
    gw = await startGateway({
      upstreams: { users: { targets: [{ url: ups[0]!.url, weight: 2 }, { url: ups[1]!.url }], balancer: 'weighted-round-robin' } },
      routes: [{ name: 'users-api', prefix: '/api/users', upstream: 'users' }],
    }, { trustedProxies: ['10.0.0.0/8'] });
  });

  afterAll(async () => {
    await gw.stop();
    await Promise.all(ups.map((u) => u.stop()));
  });

  async function admin(path: string, method: 'GET' | 'POST' = 'GET'): Promise<{ status: number; type: string; body: string; headers: Record<string, unknown> }> {
    const res = await request(`${gw.adminUrl}${path}`, { method });
    return { status: res.statusCode, type: String(res.headers['content-type']), body: await res.body.text(), headers: res.headers };
  }

  it('answers /healthz and /readyz', async () => {
    expect((await admin('/healthz')).status).toBe(200);
    expect((await admin('/readyz')).status).toBe(200);
  });

  it('dumps the running config with version and loadedAt', async () => {
    const res = await admin('/config');
    const body = JSON.parse(res.body) as { version: string; loadedAt: string; routes: { name: string }[]; upstreams: { name: string }[] };
    expect(body.version).toMatch(/^[0-9a-f]{12}$/);
    expect(new Date(body.loadedAt).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(body.routes.map((r) => r.name)).toEqual(['users-api']);
    expect(body.upstreams.map((u) => u.name)).toEqual(['users']);
  });

  it('describes pools and endpoints in /upstreams as SPEC §5 shapes them', async () => {
    const res = await request(`${gw.url}/api/users/1`);
    await res.body.dump();
    const body = JSON.parse((await admin('/upstreams')).body) as { upstreams: { name: string; balancer: string; panic: boolean; endpoints: Record<string, unknown>[] }[] };
    const pool = body.upstreams[0]!;
    expect(pool).toMatchObject({ name: 'users', balancer: 'weighted-round-robin', panic: false });
    expect(pool.endpoints[0]).toEqual({
      address: ups[0]!.address,
      url: ups[0]!.url,
      weight: 2,
      state: 'healthy',
      ejections: 0,
      ejectedUntil: null,
      lastEjection: null,
      lastCheck: null,
      inFlight: 0,
      latencyEwmaMs: expect.any(Number),
    });
  });

  it('exposes every SPEC metric name in the Prometheus text format', async () => {
    const res = await request(`${gw.url}/api/users/2`);
    await res.body.dump();
    const text = await admin('/metrics');
    expect(text.type).toContain('text/plain');
    for (const name of ['gateway_requests_total', 'gateway_request_duration_seconds', 'gateway_upstream_requests_total',
      'gateway_upstream_request_duration_seconds', 'gateway_upstream_endpoints', 'gateway_outlier_ejections_total',
      'gateway_ratelimit_decisions_total', 'gateway_jwt_verifications_total', 'gateway_jwks_fetches_total',
      'gateway_config_reloads_total', 'gateway_config_last_reload_success_timestamp_seconds', 'process_cpu_user_seconds_total']) {
      expect(text.body, name).toContain(`# TYPE ${name} `);
    }
    expect(text.body).toMatch(/gateway_requests_total\{route="users-api",method="GET",status="200"\} \d+/);
    expect(text.body).toContain('gateway_upstream_endpoints{upstream="users",state="healthy"} 2');
    expect(text.body).toMatch(new RegExp(`gateway_upstream_requests_total\\{upstream="users",endpoint="${ups[0]!.address.replace(/\./g, '\\.')}",status="200"\\}`));
  });

  it('labels unmatched requests _unmatched', async () => {
    const res = await request(`${gw.url}/nothing-here`);
    await res.body.dump();
    expect(res.statusCode).toBe(404);
    expect((await admin('/metrics')).body).toMatch(/gateway_requests_total\{route="_unmatched",method="GET",status="404"\} \d+/);
  });

  it('serves the status page at / as one self-contained document under a strict CSP', async () => {
    const res = await admin('/');
    expect(res.status).toBe(200);
    expect(res.type).toBe('text/html; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-store');
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    // The inline script and style are allowed by their hashes, so those must match the document.
    const inline = (tag: string): string => {
      const match = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(res.body);
      expect(match, tag).not.toBeNull();
      return `'sha256-${createHash('sha256').update(match![1]!, 'utf8').digest('base64')}'`;
    };
    expect(csp).toContain(`script-src ${inline('script')}`);
    expect(csp).toContain(`style-src ${inline('style')}`);
    // Nothing is fetched from anywhere else.
    expect(res.body).not.toMatch(/https?:\/\/|\bsrc=|@import|url\(/i);
  });

  it('describes routes, pools and the last reload in /status', async () => {
    const hit = await request(`${gw.url}/api/users/3`);
    await hit.body.dump();
    const res = await admin('/status');
    expect(res.status).toBe(200);
    expect(res.type).toContain('application/json');
    expect(res.headers['cache-control']).toBe('no-store');
    const report = JSON.parse(res.body) as StatusReport;
    const config = JSON.parse((await admin('/config')).body) as { version: string; loadedAt: string };
    expect(report).toMatchObject({ version: config.version, loadedAt: config.loadedAt, lastReload: { result: 'success', version: config.version } });
    expect(Date.parse(report.generatedAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(report.routes).toHaveLength(1);
    const route = report.routes[0]!;
    expect(route).toMatchObject({ name: 'users-api', prefix: '/api/users', upstream: 'users' });
    expect(route.requests).toBeGreaterThanOrEqual(1);
    expect(route.latency.count).toBe(route.requests);
    expect(route.latency.counts).toHaveLength(route.latency.bounds.length);
    expect(report.pools.map((p) => p.name)).toEqual(['users']);
    expect(report.pools[0]!.endpoints.map((e) => [e.address, e.state, e.weight])).toEqual([[ups[0]!.address, 'healthy', 2], [ups[1]!.address, 'healthy', 1]]);
  });

  it('answers /status 404 when the server was given no status source', async () => {
    const app = createAdminServer({
      readiness: () => ({ ready: true, status: 'ready' }),
      metrics: async () => '',
      config: () => null,
      upstreams: () => ({ upstreams: [] }),
      reload: async () => ({ result: 'failure', errors: [] }),
    });
    try {
      expect((await app.inject({ url: '/status' })).statusCode).toBe(404);
      expect((await app.inject({ url: '/' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('reloads on POST /reload and reports an unchanged config', async () => {
    const res = await admin('/reload', 'POST');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ result: 'success', changed: false });
  });
});
