import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeRoutes } from '../helpers/gateway.js';
import { makeKey, mint, nowS, type TestKey } from '../helpers/jwks.js';
import { LogCapture } from '../helpers/logs.js';
import { metricValue } from '../helpers/metrics.js';
import { useTestbed } from '../helpers/testbed.js';
import { sleep } from '../helpers/wait.js';

// Rate limiting through the running gateway on the in-process store (no `redis` block, the
// default `npm run demo` uses): SPEC §4's 429 and RateLimit-* headers, the keys of §3.2 and what a
// client cannot do to evade them, metrics and the access log. Redis-backed behaviour (several
// gateways, outages) is in rate-limit-redis.test.ts.

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

async function call(url: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await request(url, { headers });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

function routesOver(upstreamUrl: string, extra: Record<string, unknown>): Record<string, unknown> {
  return { upstreams: { api: { targets: [{ url: upstreamUrl }] } }, ...extra };
}

describe('rate limiting through the gateway (in-process store)', () => {
  const bed = useTestbed();

  it('answers 429 with Retry-After past the burst, and RateLimit-* headers on every response of the route', async () => {
    const upstream = await bed.upstream();
    const gw = await bed.gateway(routesOver(upstream.url, {
      rateLimits: { tight: { key: 'ip', limit: 3, window: '30s' } },
      routes: [
        { name: 'limited', prefix: '/limited', upstream: 'api', rateLimit: ['tight'] },
        { name: 'free', prefix: '/', upstream: 'api' },
      ],
    }));
    const answers: Answer[] = [];
    for (let i = 0; i < 4; i++) answers.push(await call(`${gw.url}/limited`));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 429]);
    expect(answers.map((a) => a.headers['ratelimit-limit'])).toEqual(['3', '3', '3', '3']);
    expect(answers.map((a) => a.headers['ratelimit-remaining'])).toEqual(['2', '1', '0', '0']);
    // One request costs window / limit = 10 s of the burst: the full burst is back 10, 20, 30 s later.
    expect(answers.map((a) => Number(a.headers['ratelimit-reset']))).toEqual([10, 20, 30, 30]);
    expect(answers.slice(0, 3).every((a) => a.headers['retry-after'] === undefined)).toBe(true);

    const refused = answers[3]!;
    expect(Number(refused.headers['retry-after'])).toBe(10);
    expect(refused.headers['content-type']).toMatch(/application\/json/);
    const body = JSON.parse(refused.body) as { error: { status: number; code: string; requestId: string } };
    expect(body.error).toMatchObject({ status: 429, code: 'rate_limited' });
    expect(body.error.requestId).toBe(refused.headers['x-request-id']);
    expect(upstream.seen).toHaveLength(3); // the refused request never reached the upstream

    // A route without rateLimit says nothing about limits.
    const free = await call(`${gw.url}/other`);
    expect(free.status).toBe(200);
    expect(free.headers['ratelimit-limit']).toBeUndefined();
  });

  it('Retry-After is accurate to the second: a client that waits it out gets through', async () => {
    const upstream = await bed.upstream();
    const gw = await bed.gateway(routesOver(upstream.url, {
      rateLimits: { second: { key: 'ip', limit: 2, window: '2s' } },
      routes: [{ name: 'main', prefix: '/', upstream: 'api', rateLimit: ['second'] }],
    }));
    expect((await call(gw.url)).status).toBe(200);
    expect((await call(gw.url)).status).toBe(200);
    const refused = await call(gw.url);
    expect(refused.status).toBe(429);
    const wait = Number(refused.headers['retry-after']);
    expect(wait).toBe(1); // 1 s per request; whole seconds, rounded up
    await sleep(wait * 1000);
    expect((await call(gw.url)).status).toBe(200);
  });

  it('a burst larger than the limit admits that many at once, then the sustained rate', async () => {
    const upstream = await bed.upstream();
    const gw = await bed.gateway(routesOver(upstream.url, {
      rateLimits: { bursty: { key: 'ip', limit: 1, window: '10s', burst: 5 } },
      routes: [{ name: 'main', prefix: '/', upstream: 'api', rateLimit: ['bursty'] }],
    }));
    const statuses = await Promise.all(Array.from({ length: 8 }, () => call(gw.url).then((a) => a.status)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(3);
  });

  it('counts by the client address as trustedProxies define it: an untrusted peer cannot evade with X-Forwarded-For', async () => {
    const upstream = await bed.upstream();
    const routes = routesOver(upstream.url, {
      rateLimits: { 'per-ip': { key: 'ip', limit: 2, window: '1m' } },
      routes: [{ name: 'main', prefix: '/', upstream: 'api', rateLimit: ['per-ip'] }],
    });
    const untrusted = await bed.gateway(routes);
    const spoofed = [];
    for (let i = 0; i < 4; i++) spoofed.push((await call(untrusted.url, { 'x-forwarded-for': `203.0.113.${i}` })).status);
    expect(spoofed).toEqual([200, 200, 429, 429]);

    // Behind a trusted proxy each forwarded client has a budget of its own.
    const behindProxy = await bed.gateway(routes, { trustedProxies: ['127.0.0.1'] });
    const clients = [];
    for (let i = 0; i < 4; i++) clients.push((await call(behindProxy.url, { 'x-forwarded-for': `203.0.113.${i}` })).status);
    expect(clients).toEqual([200, 200, 200, 200]);
    expect((await call(behindProxy.url, { 'x-forwarded-for': '203.0.113.0' })).status).toBe(200);
    expect((await call(behindProxy.url, { 'x-forwarded-for': '203.0.113.0' })).status).toBe(429);
  });

  it('header keys count each value apart, and a request without the header is counted by client IP, never unlimited', async () => {
    const upstream = await bed.upstream();
    const gw = await bed.gateway(routesOver(upstream.url, {
      rateLimits: { 'per-key': { key: 'header:X-Api-Key', limit: 1, window: '1m' } },
      routes: [{ name: 'main', prefix: '/', upstream: 'api', rateLimit: ['per-key'] }],
    }));
    expect((await call(gw.url, { 'x-api-key': 'alpha' })).status).toBe(200);
    expect((await call(gw.url, { 'x-api-key': 'alpha' })).status).toBe(429);
    expect((await call(gw.url, { 'x-api-key': 'beta' })).status).toBe(200);
    // No key: the client address's own budget (one request), not a shared "missing" bucket.
    expect((await call(gw.url)).status).toBe(200);
    expect((await call(gw.url)).status).toBe(429);
    // A key value spelled like the address does not share the address's budget.
    expect((await call(gw.url, { 'x-api-key': '127.0.0.1' })).status).toBe(200);
  });

  it('a policy is shared by the routes that list it unless its key includes route', async () => {
    const upstream = await bed.upstream();
    const gw = await bed.gateway(routesOver(upstream.url, {
      rateLimits: {
        shared: { key: 'ip', limit: 2, window: '1m' },
        'per-route': { key: ['route', 'ip'], limit: 2, window: '1m' },
      },
      routes: [
        { name: 'a', prefix: '/a', upstream: 'api', rateLimit: ['shared'] },
        { name: 'b', prefix: '/b', upstream: 'api', rateLimit: ['shared'] },
        { name: 'c', prefix: '/c', upstream: 'api', rateLimit: ['per-route'] },
        { name: 'd', prefix: '/d', upstream: 'api', rateLimit: ['per-route'] },
      ],
    }));
    const shared = [await call(`${gw.url}/a`), await call(`${gw.url}/b`), await call(`${gw.url}/a`)].map((a) => a.status);
    expect(shared).toEqual([200, 200, 429]);
    const perRoute = [await call(`${gw.url}/c`), await call(`${gw.url}/c`), await call(`${gw.url}/d`), await call(`${gw.url}/d`), await call(`${gw.url}/c`)].map((a) => a.status);
    expect(perRoute).toEqual([200, 200, 200, 200, 429]);
  });

  it('all policies of a route must allow; the most restrictive one is reported; a refused request spends nothing from the others', async () => {
    const upstream = await bed.upstream();
    const gw = await bed.gateway(routesOver(upstream.url, {
      rateLimits: {
        roomy: { key: 'ip', limit: 100, window: '1m' },
        strict: { key: 'ip', limit: 2, window: '1m' },
      },
      routes: [
        { name: 'both', prefix: '/both', upstream: 'api', rateLimit: ['roomy', 'strict'] },
        { name: 'roomy-only', prefix: '/roomy', upstream: 'api', rateLimit: ['roomy'] },
      ],
    }));
    const first = await call(`${gw.url}/both`);
    expect(first.headers['ratelimit-limit']).toBe('2');
    expect(first.headers['ratelimit-remaining']).toBe('1');
    await call(`${gw.url}/both`);
    for (let i = 0; i < 5; i++) expect((await call(`${gw.url}/both`)).status).toBe(429);
    // roomy was spent by the two admitted requests only, not by the five refused ones.
    const roomy = await call(`${gw.url}/roomy`);
    expect(roomy.headers['ratelimit-limit']).toBe('100');
    expect(roomy.headers['ratelimit-remaining']).toBe('97');
    expect(await metricValue(gw.gateway, 'gateway_ratelimit_decisions_total', { policy: 'strict', decision: 'limited' })).toBe(5);
    expect(await metricValue(gw.gateway, 'gateway_ratelimit_decisions_total', { policy: 'strict', decision: 'allowed' })).toBe(2);
    expect(await metricValue(gw.gateway, 'gateway_ratelimit_decisions_total', { policy: 'roomy', decision: 'allowed' })).toBe(8);
  });

  it('records the decision in the access log and keeps counting across a reload', async () => {
    const upstream = await bed.upstream();
    const logs = new LogCapture();
    const routes = routesOver(upstream.url, {
      rateLimits: { 'per-ip': { key: 'ip', limit: 2, window: '1m' } },
      routes: [{ name: 'main', prefix: '/', upstream: 'api', rateLimit: ['per-ip'] }],
    });
    const gw = await bed.gateway(routes, { log: { level: 'info', accessLog: true } }, logs.logger);
    await call(gw.url);
    await call(gw.url);
    await call(gw.url);
    expect(logs.requests().map((l) => [l.status, l.rateLimit])).toEqual([[200, 'allowed'], [200, 'allowed'], [429, 'limited']]);

    // A reload that changes other routes does not hand out a fresh budget.
    await writeRoutes(gw.files, { ...routes, routes: [...(routes.routes as object[]), { name: 'other', prefix: '/other', upstream: 'api' }] });
    expect((await gw.gateway.reload()).result).toBe('success');
    expect((await call(gw.url)).status).toBe(429);
  });

  describe('jwt:<claim> keys', () => {
    let dir: string;
    let key: TestKey;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'gw-rl-jwks-'));
      key = await makeKey('ES256', 'k1');
      await writeFile(join(dir, 'jwks.json'), JSON.stringify({ keys: [key.jwk] }));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('count each verified subject apart, and a token without the claim by client IP', async () => {
      const upstream = await bed.upstream();
      const gw = await bed.gateway(routesOver(upstream.url, {
        jwtProviders: { main: { issuer: 'https://id.example.test/', audiences: ['api'], jwksFile: join(dir, 'jwks.json'), algorithms: ['ES256'] } },
        rateLimits: { 'per-user': { key: 'jwt:sub', limit: 1, window: '1m' } },
        routes: [{ name: 'main', prefix: '/', upstream: 'api', auth: { jwt: 'main' }, rateLimit: ['per-user'] }],
      }));
      const token = (claims: Record<string, unknown>): Promise<string> =>
        mint(key, { iss: 'https://id.example.test/', aud: 'api', exp: nowS() + 600, ...claims });
      const alice = { authorization: `Bearer ${await token({ sub: 'alice' })}` };
      const bob = { authorization: `Bearer ${await token({ sub: 'bob' })}` };
      const anonymous = { authorization: `Bearer ${await token({})}` };
      expect((await call(gw.url, alice)).status).toBe(200);
      expect((await call(gw.url, alice)).status).toBe(429);
      expect((await call(gw.url, bob)).status).toBe(200);
      expect((await call(gw.url, anonymous)).status).toBe(200);
      expect((await call(gw.url, anonymous)).status).toBe(429);
      // Unauthenticated requests are refused by auth before they are counted.
      expect((await call(gw.url)).status).toBe(401);
    });
  });
});
