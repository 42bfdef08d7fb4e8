import { Writable } from 'node:stream';
import pino from 'pino';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGateway, simpleRoutes, startGateway } from '../helpers/gateway.js';
import { LogCapture } from '../helpers/logs.js';
import { TestUpstream, closedPort, echo } from '../helpers/upstream.js';
import { until } from '../helpers/wait.js';

describe('access log', () => {
  const lines: Record<string, unknown>[] = [];
  let upstream: TestUpstream;
  let gw: RunningGateway;

  beforeAll(async () => {
    upstream = await new TestUpstream(echo).start();
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    gw = await startGateway(simpleRoutes([upstream.url], { prefix: '/api', stripPrefix: true }), { log: { level: 'info', accessLog: true } }, pino({ level: 'info' }, sink));
  });

  afterAll(async () => {
    await gw.stop();
    await upstream.stop();
  });

  it('writes one JSON line per request with the SPEC fields, and never a token', async () => {
    const res = await request(`${gw.url}/api/items?access_token=sekrit`, {
      method: 'POST',
      body: 'hello',
      headers: { authorization: 'Bearer sekrit.jwt.value', 'x-request-id': 'log-test-1', host: 'api.example.com' },
    });
    await res.body.dump();
    await new Promise((r) => setTimeout(r, 50));
    const line = lines.find((l) => l.requestId === 'log-test-1')!;
    expect(line).toMatchObject({
      clientIp: '127.0.0.1',
      method: 'POST',
      host: 'api.example.com',
      path: '/api/items',
      route: 'main',
      upstream: 'pool',
      endpoint: upstream.address,
      status: 200,
      bytesIn: 5,
      rateLimit: null,
      jwtSubject: null,
    });
    expect(line.time).toEqual(expect.any(Number));
    expect(line.bytesOut).toEqual(expect.any(Number));
    expect(line.durationMs).toEqual(expect.any(Number));
    expect(line.upstreamMs).toEqual(expect.any(Number));
    expect(JSON.stringify(lines)).not.toContain('sekrit');
  });

  it('logs refused requests too, with their status and error code', async () => {
    const res = await request(`${gw.url}/nowhere`, { headers: { 'x-request-id': 'log-test-2' } });
    await res.body.dump();
    await new Promise((r) => setTimeout(r, 50));
    expect(lines.find((l) => l.requestId === 'log-test-2')).toMatchObject({ status: 404, error: 'route_not_found', route: null, path: '/nowhere' });
  });
});

describe('access log trace ids and sampling', () => {
  it('carries the trace id sent upstream: the client\'s traceparent continued, or a started one', async () => {
    const upstream = await new TestUpstream(echo).start();
    const logs = new LogCapture();
    const gw = await startGateway(simpleRoutes([upstream.url]), { log: { level: 'info', accessLog: true } }, logs.logger);
    try {
      const continued = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      await (await request(`${gw.url}/a`, { headers: { traceparent: continued, tracestate: 'vendor=1' } })).body.dump();
      await (await request(`${gw.url}/b`)).body.dump();
      await (await request(`${gw.url}/nowhere%2f`, { headers: { traceparent: continued } })).body.dump();
      await until('three access-log lines', () => logs.requests().length === 3, 2_000);
      const [a, b, refused] = logs.requests();
      expect(upstream.seen[0]!.headers.traceparent).toBe(continued);
      expect(upstream.seen[0]!.headers.tracestate).toBe('vendor=1');
      expect(a!.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
      const started = String(upstream.seen[1]!.headers.traceparent);
      expect(started).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(b!.traceId).toBe(started.slice(3, 35));
      // Refused before any upstream: the client's trace id when it sent one.
      expect(refused).toMatchObject({ status: 400, traceId: '4bf92f3577b34da6a3ce929d0e0e4736' });
    } finally {
      await gw.stop();
      await upstream.stop();
    }
  });

  it('accessLogSample 0% writes no line for a success but still one for a 5xx', async () => {
    const upstream = await new TestUpstream(echo).start();
    const logs = new LogCapture();
    const gw = await startGateway(
      { upstreams: { pool: { targets: [{ url: upstream.url }] }, dead: { targets: [{ url: `http://127.0.0.1:${await closedPort()}` }] } },
        routes: [{ name: 'ok', prefix: '/ok', upstream: 'pool' }, { name: 'broken', prefix: '/broken', upstream: 'dead' }] },
      { log: { level: 'info', accessLog: true, accessLogSample: '0%' } },
      logs.logger,
    );
    try {
      for (let i = 0; i < 20; i++) await (await request(`${gw.url}/ok`)).body.dump();
      const failed = await request(`${gw.url}/broken`);
      await failed.body.dump();
      expect(failed.statusCode).toBe(502);
      await until('the 5xx line', () => logs.requests().length > 0, 2_000);
      expect(logs.requests().map((l) => [l.route, l.status])).toEqual([['broken', 502]]);
    } finally {
      await gw.stop();
      await upstream.stop();
    }
  });
});
