import { Writable } from 'node:stream';
import pino from 'pino';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGateway, simpleRoutes, startGateway } from '../helpers/gateway.js';
import { TestUpstream, echo } from '../helpers/upstream.js';

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
