import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runExplain } from '../../src/cli/explain.js';
import { type TestGatewayFiles, gatewayYaml, writeConfig } from '../helpers/gateway.js';

describe('gateway explain', () => {
  let files: TestGatewayFiles;

  beforeAll(async () => {
    files = await writeConfig(gatewayYaml(), {
      upstreams: {
        users: { targets: [{ url: 'http://10.0.0.11:8080', weight: 2 }, { url: 'http://10.0.0.12:8080' }] },
        web: { targets: [{ url: 'http://10.0.0.20' }], balancer: 'round-robin' },
        orders: {
          discovery: { dns: { name: '_http._tcp.orders.svc', type: 'SRV' }, server: '127.0.0.1:5353' },
          balancer: 'consistent-hash',
          hashOn: 'header:x-user',
        },
      },
      routes: [
        { name: 'users-api', prefix: '/api/users', host: 'api.example.com', methods: ['GET', 'POST'], upstream: 'users', stripPrefix: true },
        { name: 'web', prefix: '/web', upstream: 'web', rewritePrefix: '/v2' },
        { name: 'orders', prefix: '/orders', upstream: 'orders' },
        { name: 'limited', prefix: '/limited', upstream: 'web', rateLimit: ['per-tenant', 'per-ip'] },
      ],
      rateLimits: {
        'per-tenant': { key: ['header:x-tenant', 'route'], limit: 50, window: '10s' },
        'per-ip': { key: 'ip', limit: 20, window: '1s', burst: 40 },
      },
    });
  });

  afterAll(async () => {
    await rm(files.dir, { recursive: true, force: true });
  });

  async function explain(method: string, url: string, headers: string[] = []): Promise<{ code: number; out: string }> {
    const lines: string[] = [];
    const code = await runExplain({ configFile: files.gatewayFile, method, url, headers, claims: [] }, {
      stdout: (l) => lines.push(l),
      stderr: (l) => lines.push(`ERR ${l}`),
    });
    return { code, out: lines.join('\n') };
  }

  it('names the chosen route, the rewritten path, the pool and its endpoints', async () => {
    const { code, out } = await explain('GET', 'http://api.example.com/api/users/42?x=1');
    expect(code).toBe(0);
    expect(out).toContain('result:  route "users-api"');
    expect(out).toContain('upstream path: /42?x=1');
    expect(out).toContain('pool:    users (least-request');
    expect(out).toContain('endpoint 10.0.0.11:8080 http://10.0.0.11:8080 weight 2');
    expect(out).toContain('auth:    none');
    expect(out).toContain('rateLimit: none');
  });

  it('names the DNS query of a discovered pool without resolving it, and the hash key the request carries', async () => {
    const withKey = await explain('GET', '/orders/7', ['x-user: alice']);
    expect(withKey.code).toBe(0);
    expect(withKey.out).toContain('endpoints: DNS SRV _http._tcp.orders.svc via 127.0.0.1:5353 (not resolved by explain)');
    expect(withKey.out).toContain('hash key (header:x-user): "alice"');
    const without = await explain('GET', '/orders/7');
    expect(without.out).toContain('hash key (header:x-user): none in this request: a random endpoint');
  });

  it('names each rate-limit policy with the key the request would be counted under, and the client-address fallback', async () => {
    const { code, out } = await explain('GET', '/limited/a', ['x-tenant: acme:eu']);
    expect(code).toBe(0);
    expect(out).toContain('rateLimit: per-tenant, per-ip (in-process store)');
    expect(out).toContain('  per-tenant: 50 per 10000ms, burst 50, key header:x-tenant + route -> per-tenant:{acme%3Aeu:limited}');
    expect(out).toContain('  per-ip: 20 per 1000ms, burst 40, key ip -> per-ip:{<client address>}');
    const without = await explain('GET', '/limited/a');
    expect(without.out).toContain('per-tenant:ip={<client address>} (no header:x-tenant in this request: counted by client address)');
  });

  it('uses the Host header of -H for a path-only URL', async () => {
    const { code, out } = await explain('POST', '/api/users', ['Host: API.example.com.']);
    expect(code).toBe(0);
    expect(out).toContain('upstream path: /');
  });

  it('explains a 404 and exits 1', async () => {
    const { code, out } = await explain('GET', 'http://other.example.com/api/users/1');
    expect(code).toBe(1);
    expect(out).toContain('404 route_not_found');
    expect(out).toMatch(/users-api: does not match — host api\.example\.com no/);
  });

  it('explains a 405 with Allow and exits 1', async () => {
    const { code, out } = await explain('DELETE', 'http://api.example.com/api/users/1');
    expect(code).toBe(1);
    expect(out).toContain('405 method_not_allowed — Allow: GET, HEAD, POST');
  });

  it('refuses an invalid path before routing', async () => {
    const { code, out } = await explain('GET', '/web/%2e%2e%2f');
    expect(code).toBe(1);
    expect(out).toContain('400 bad_request');
  });

  it('normalises before matching, as the proxy does', async () => {
    const { code, out } = await explain('GET', '/x/../web/%61');
    expect(code).toBe(0);
    expect(out).toContain('upstream path: /v2/a');
  });
});
