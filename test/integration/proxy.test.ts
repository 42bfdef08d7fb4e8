import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { type RunningGateway, simpleRoutes, startGateway } from '../helpers/gateway.js';
import { metricValue } from '../helpers/metrics.js';
import { TestUpstream, closedPort, echo } from '../helpers/upstream.js';

/** Sends raw bytes on a fresh connection and returns everything the gateway answered. */
function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', reject);
    socket.write(text);
    setTimeout(() => socket.end(), 500);
  });
}

interface Echo {
  method: string;
  url: string;
  headers: Record<string, string>;
  bodyLength: number;
}

describe('proxying', () => {
  let upstream: TestUpstream;
  let gw: RunningGateway;

  beforeAll(async () => {
    upstream = await new TestUpstream(echo).start();
    gw = await startGateway({
      upstreams: { pool: { targets: [{ url: upstream.url }] } },
      routes: [
        { name: 'users', prefix: '/api/users', upstream: 'pool', stripPrefix: true },
        { name: 'orders', prefix: '/api/orders', upstream: 'pool', rewritePrefix: '/v1/orders' },
        { name: 'readonly', prefix: '/ro', upstream: 'pool', methods: ['GET'] },
        { name: 'root', prefix: '/', upstream: 'pool' },
      ],
    }, { limits: { bodyLimit: '1kb' } });
  });

  afterAll(async () => {
    await gw.stop();
    await upstream.stop();
  });

  async function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
    const res = await request(`${gw.url}${path}`, { headers });
    return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
  }

  it('forwards the normalised, rewritten path and the query verbatim', async () => {
    const a = JSON.parse((await get('/api/users/42?x=%41&y')).body) as Echo;
    expect(a.url).toBe('/42?x=%41&y');
    const b = JSON.parse((await get('/api/orders/7')).body) as Echo;
    expect(b.url).toBe('/v1/orders/7');
    const c = JSON.parse((await get('/api/users')).body) as Echo;
    expect(c.url).toBe('/');
  });

  it.each([
    ['/%61pi/users/1', '/1'],
    ['/public/../api/users/1', '/1'],
    ['/public/%2e%2e/api/users/1', '/1'],
    ['//api//users/1', '/1'],
  ])('routes %s by its normalised form', async (raw, forwarded) => {
    const text = await rawRequest(gw.port, `GET ${raw} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(text.startsWith('HTTP/1.1 200')).toBe(true);
    expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).url).toBe(forwarded);
  });

  it.each(['/a%2fb', '/a%5Cb', '/a%00', '/a%252f', '/a%zz', '/..', '/a/../..'])('refuses %s with a JSON 400', async (path) => {
    const text = await rawRequest(gw.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(text.startsWith('HTTP/1.1 400')).toBe(true);
    const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { error: { code: string; status: number } };
    expect(body.error).toMatchObject({ status: 400, code: 'bad_request' });
  });

  it('answers 405 with Allow only when no route takes the method', async () => {
    // Here the catch-all `root` takes every method, so DELETE /ro/x goes there (SPEC: a route
    // that matches the method wins over a more specific one that does not).
    const viaRoot = await request(`${gw.url}/ro/x`, { method: 'DELETE' });
    await viaRoot.body.dump();
    expect(viaRoot.statusCode).toBe(200);
    const strict = await startGateway({
      upstreams: { pool: { targets: [{ url: upstream.url }] } },
      routes: [
        { name: 'readonly', prefix: '/ro', upstream: 'pool', methods: ['GET'] },
        { name: 'writes', prefix: '/ro/w', upstream: 'pool', methods: ['POST', 'PUT'] },
      ],
    });
    try {
      const res = await request(`${strict.url}/ro/w/x`, { method: 'DELETE' });
      expect(res.statusCode).toBe(405);
      expect(res.headers.allow).toBe('GET, HEAD, POST, PUT');
      expect((await res.body.json() as { error: { code: string } }).error.code).toBe('method_not_allowed');
      const missing = await request(`${strict.url}/elsewhere`);
      expect(missing.statusCode).toBe(404);
      expect((await missing.body.json() as { error: { code: string } }).error.code).toBe('route_not_found');
    } finally {
      await strict.stop();
    }
  });

  it('removes hop-by-hop and Connection-named headers, adds forwarding headers', async () => {
    const before = upstream.seen.length;
    const text = await rawRequest(gw.port, [
      'GET /api/users/h HTTP/1.1', 'Host: api.example.com', 'Connection: close, x-secret', 'X-Secret: 1',
      'Keep-Alive: timeout=5', 'Upgrade: h2c', 'TE: trailers', 'Proxy-Authorization: Basic abc',
      'X-Forwarded-For: 6.6.6.6', 'X-Forwarded-Host: evil', 'X-Request-Id: my-id.1', '', '',
    ].join('\r\n'));
    expect(text.startsWith('HTTP/1.1 200')).toBe(true);
    expect(text).toMatch(/x-request-id: my-id\.1/i);
    const seen = upstream.seen[before]!.headers;
    for (const h of ['x-secret', 'keep-alive', 'upgrade', 'te', 'proxy-authorization']) expect(seen[h]).toBeUndefined();
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-forwarded-host']).toBe('api.example.com');
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen.host).toBe('api.example.com');
    expect(seen['x-request-id']).toBe('my-id.1');
    expect(seen.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });

  it('passes a valid traceparent through and replaces an invalid request id', async () => {
    const before = upstream.seen.length;
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const res = await get('/x', { traceparent: tp, 'x-request-id': 'bad id with spaces' });
    expect(res.status).toBe(200);
    expect(upstream.seen[before]!.headers.traceparent).toBe(tp);
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers Expect: 100-continue itself and forwards the body', async () => {
    // undici refuses to send `expect` itself, so this goes over a raw socket.
    const text = await rawRequest(gw.port, 'POST /x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello');
    expect(text).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200/);
    expect(JSON.parse(text.slice(text.lastIndexOf('\r\n\r\n') + 4)).bodyLength).toBe(5);
  });

  it('refuses a declared body over bodyLimit with 413 before contacting the upstream', async () => {
    const before = upstream.seen.length;
    const res = await request(`${gw.url}/x`, { method: 'POST', body: Buffer.alloc(2048) });
    expect(res.statusCode).toBe(413);
    expect((await res.body.json() as { error: { code: string } }).error.code).toBe('payload_too_large');
    expect(upstream.seen.length).toBe(before);
  });

  it('closes the connection after refusing a request whose body it did not read', async () => {
    const refused = await rawRequest(gw.port, 'POST /%2f HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial');
    expect(refused).toMatch(/^HTTP\/1\.1 400/);
    expect(refused).toMatch(/\r\nconnection: close\r\n/i);
  });

  it('refuses a chunked body that grows over bodyLimit with 413', async () => {
    const chunk = Buffer.alloc(600).toString('hex').slice(0, 600);
    const text = await rawRequest(gw.port, `POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n${chunk}\r\n258\r\n${chunk}\r\n0\r\n\r\n`);
    expect(text.startsWith('HTTP/1.1 413')).toBe(true);
  });

  it('answers 431 for oversized headers', async () => {
    const text = await rawRequest(gw.port, `GET /x HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(text.startsWith('HTTP/1.1 431')).toBe(true);
    expect(text).toContain('"code":"headers_too_large"');
  });

  it('answers 400 when Host disagrees with an absolute-form target, and routes absolute-form by its host', async () => {
    const bad = await rawRequest(gw.port, 'GET http://a.example.com/x HTTP/1.1\r\nHost: b.example.com\r\nConnection: close\r\n\r\n');
    expect(bad.startsWith('HTTP/1.1 400')).toBe(true);
    const good = await rawRequest(gw.port, 'GET http://a.example.com/api/users/5 HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n');
    expect(good.startsWith('HTTP/1.1 200')).toBe(true);
  });

  it('counts requests by route, method and status', async () => {
    const before = await metricValue(gw.gateway, 'gateway_requests_total', { route: 'users', method: 'GET', status: '200' });
    await get('/api/users/m');
    expect(await metricValue(gw.gateway, 'gateway_requests_total', { route: 'users', method: 'GET', status: '200' })).toBe(before + 1);
    await request(`${gw.url}/x`, { method: 'PROPFIND' as 'GET' }).then((r) => r.body.dump());
    expect(await metricValue(gw.gateway, 'gateway_requests_total', { route: 'root', method: 'OTHER' })).toBeGreaterThanOrEqual(1);
  });
});

describe('upstream failures', () => {
  it('maps refused, reset, garbage and timeout to 502/502/502/504 JSON without internal addresses', async () => {
    const refusedPort = await closedPort();
    const reset = await new TestUpstream((req) => req.socket.destroy()).start();
    const garbage = await new TestUpstream((req) => {
      req.socket.end('NOT HTTP AT ALL\r\n\r\n');
    }).start();
    const slow = await new TestUpstream((_req, res) => setTimeout(() => res.end('late'), 2000)).start();
    const gw = await startGateway({
      upstreams: {
        refused: { targets: [{ url: `http://127.0.0.1:${refusedPort}` }], retries: { attempts: 0 } },
        reset: { targets: [{ url: reset.url }], retries: { attempts: 0 } },
        garbage: { targets: [{ url: garbage.url }], retries: { attempts: 0 } },
        slow: { targets: [{ url: slow.url }], timeouts: { request: '200ms' } },
      },
      routes: ['refused', 'reset', 'garbage', 'slow'].map((name) => ({ name, prefix: `/${name}`, upstream: name })),
    });
    try {
      for (const [path, status, code] of [['/refused', 502, 'bad_gateway'], ['/reset', 502, 'bad_gateway'], ['/garbage', 502, 'bad_gateway'], ['/slow', 504, 'gateway_timeout']] as const) {
        const started = Date.now();
        const res = await request(`${gw.url}${path}`);
        const text = await res.body.text();
        expect(res.statusCode, path).toBe(status);
        expect(JSON.parse(text).error.code).toBe(code);
        expect(text).not.toContain('127.0.0.1');
        expect(Date.now() - started).toBeLessThan(1900);
      }
      expect(await metricValue(gw.gateway, 'gateway_upstream_requests_total', { upstream: 'refused', status: '502' })).toBe(1);
      expect(await metricValue(gw.gateway, 'gateway_upstream_requests_total', { upstream: 'slow', status: '504' })).toBe(1);
    } finally {
      await gw.stop();
      await Promise.all([reset.stop(), garbage.stop(), slow.stop()]);
    }
  });

  it('lets a route override its pool\'s request timeout', async () => {
    const slow = await new TestUpstream((_req, res) => setTimeout(() => res.end('late'), 1500)).start();
    const gw = await startGateway({
      upstreams: { slow: { targets: [{ url: slow.url }], timeouts: { request: '10s' } } },
      routes: [
        { name: 'hurried', prefix: '/hurried', upstream: 'slow', timeouts: { request: '200ms' } },
        { name: 'patient', prefix: '/patient', upstream: 'slow' },
      ],
    });
    try {
      const started = Date.now();
      const hurried = await request(`${gw.url}/hurried`);
      await hurried.body.dump();
      expect(hurried.statusCode).toBe(504);
      expect(Date.now() - started).toBeLessThan(1400);
      const patient = await request(`${gw.url}/patient`);
      expect(patient.statusCode).toBe(200);
      expect(await patient.body.text()).toBe('late');
    } finally {
      await gw.stop();
      await slow.stop();
    }
  });

  it('never sends a client GET to a 503 upstream more than attempts + 1 times', async () => {
    const failing = await new TestUpstream((_req, res) => {
      res.writeHead(503);
      res.end();
    }).start();
    const gw = await startGateway(simpleRoutes([failing.url], {}, { retries: { attempts: 2, on: ['503'] } }));
    try {
      const res = await request(`${gw.url}/x`);
      await res.body.dump();
      expect(res.statusCode).toBe(503);
      expect(failing.seen.length).toBe(3);
    } finally {
      await gw.stop();
      await failing.stop();
    }
  });

  it('retries a GET answered 503 on the other endpoint, and never retries a POST', async () => {
    const failing = await new TestUpstream((_req, res) => { res.writeHead(503); res.end('no'); }).start();
    const ok = await new TestUpstream(echo).start();
    const gw = await startGateway(simpleRoutes([failing.url, ok.url], {}, { balancer: 'round-robin', retries: { attempts: 1, on: ['503'] } }));
    try {
      for (let i = 0; i < 4; i++) {
        const res = await request(`${gw.url}/get`);
        await res.body.dump();
        expect(res.statusCode).toBe(200);
      }
      expect(ok.seen.length).toBe(4);
      const failedBefore = failing.seen.length;
      const okBefore = ok.seen.length;
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await request(`${gw.url}/post`, { method: 'POST', body: 'x' });
        await res.body.dump();
        statuses.push(res.statusCode);
      }
      // Every POST reached exactly one endpoint: the 503s came back to the client as they were.
      expect((failing.seen.length - failedBefore) + (ok.seen.length - okBefore)).toBe(4);
      expect(statuses.filter((st) => st === 503)).toHaveLength(failing.seen.length - failedBefore);
    } finally {
      await gw.stop();
      await Promise.all([failing.stop(), ok.stop()]);
    }
  });

  it('retries a connect failure on another endpoint, even for a POST with a body', async () => {
    const ok = await new TestUpstream(echo).start();
    const dead = await closedPort();
    const gw = await startGateway(simpleRoutes([`http://127.0.0.1:${dead}`, ok.url], {}, { balancer: 'round-robin' }));
    try {
      for (let i = 0; i < 4; i++) {
        const res = await request(`${gw.url}/x`, { method: 'POST', body: 'payload' });
        const body = await res.body.json() as Echo;
        expect(res.statusCode).toBe(200);
        expect(body.bodyLength).toBe(7);
      }
      expect(ok.seen.length).toBe(4);
    } finally {
      await gw.stop();
      await ok.stop();
    }
  });
});

describe('trusted proxies', () => {
  it('believes X-Forwarded-* only from trustedProxies, and appends the peer', async () => {
    const upstream = await new TestUpstream(echo).start();
    const trusting = await startGateway(simpleRoutes([upstream.url]), { trustedProxies: ['127.0.0.0/8'] });
    const wary = await startGateway(simpleRoutes([upstream.url]), { trustedProxies: ['10.0.0.0/8'] });
    try {
      const headers = { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'shop.example.com', forwarded: 'for=203.0.113.7' };
      const viaTrusted = JSON.parse(await (await request(`${trusting.url}/a`, { headers })).body.text()) as Echo;
      expect(viaTrusted.headers['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
      expect(viaTrusted.headers['x-forwarded-proto']).toBe('https');
      expect(viaTrusted.headers['x-forwarded-host']).toBe('shop.example.com');
      expect(viaTrusted.headers.forwarded).toBe('for=203.0.113.7');

      const viaOther = JSON.parse(await (await request(`${wary.url}/a`, { headers })).body.text()) as Echo;
      expect(viaOther.headers['x-forwarded-for']).toBe('127.0.0.1');
      expect(viaOther.headers['x-forwarded-proto']).toBe('http');
      expect(viaOther.headers['x-forwarded-host']).toBe(`127.0.0.1:${wary.port}`);
      expect(viaOther.headers.forwarded).toBeUndefined();
    } finally {
      await trusting.stop();
      await wary.stop();
      await upstream.stop();
    }
  });
});

describe('connections to upstreams', () => {
  it('keeps connections alive across requests and never opens more than maxConnectionsPerEndpoint', async () => {
    let open = 0;
    let peak = 0;
    let accepted = 0;
    const upstream = new TestUpstream((_req, res) => setTimeout(() => res.end('ok'), 50));
    upstream.server.on('connection', (socket) => {
      accepted++;
      peak = Math.max(peak, ++open);
      socket.on('close', () => open--);
    });
    await upstream.start();
    const gw = await startGateway(simpleRoutes([upstream.url], {}, { maxConnectionsPerEndpoint: 2 }));
    try {
      const results = await Promise.all(Array.from({ length: 12 }, async () => {
        const res = await request(`${gw.url}/x`);
        await res.body.dump();
        return res.statusCode;
      }));
      expect(results.every((st) => st === 200)).toBe(true);
      expect(peak).toBe(2);
      for (let i = 0; i < 5; i++) await (await request(`${gw.url}/y`)).body.dump();
      expect(accepted).toBe(2); // keep-alive: the 17 requests shared the same two connections
    } finally {
      await gw.stop();
      await upstream.stop();
    }
  });
});

