import { writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { JWKS_PATH, makeKey, mint, nowS, TestJwksServer, type TestKey } from '../helpers/jwks.js';
import { writeRoutes } from '../helpers/gateway.js';
import { metricValue } from '../helpers/metrics.js';
import { LogCapture } from '../helpers/logs.js';
import { useTestbed } from '../helpers/testbed.js';
import { until } from '../helpers/wait.js';

// JWT authentication through the running gateway: SPEC §4's 401/403 shapes, claims forwarded with
// client copies removed, the metrics, and key material reloaded by SIGHUP (POST /reload here).

const ISSUER = 'https://id.example.test/';

interface Echoed {
  headers: Record<string, string | undefined>;
}

function routes(jwks: { uri?: string; file?: string }, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    upstreams: { api: { targets: [{ url: 'http://127.0.0.1:1' }] } },
    jwtProviders: {
      main: {
        issuer: ISSUER,
        audiences: ['api'],
        ...(jwks.uri !== undefined ? { jwksUri: jwks.uri } : { jwksFile: jwks.file }),
        algorithms: ['ES256', 'RS256'],
        forwardClaims: { sub: 'x-user-id', scope: 'x-user-scope' },
      },
    },
    routes: [
      { name: 'orders', prefix: '/orders', upstream: 'api', auth: { jwt: 'main', require: { scope: 'orders:read' } } },
      { name: 'public', prefix: '/', upstream: 'api' },
    ],
    ...extra,
  };
}

describe('JWT authentication through the gateway', () => {
  const bed = useTestbed();
  let jwks: TestJwksServer | null = null;
  let key: TestKey;

  afterEach(async () => {
    await jwks?.close();
    jwks = null;
  });

  async function setup(gatewayOverrides: Record<string, unknown> = {}, logs?: LogCapture): Promise<{ url: string; gw: Awaited<ReturnType<typeof bed.gateway>> }> {
    jwks = await TestJwksServer.start();
    key = await makeKey('ES256', 'k1');
    jwks.setKeys([key.jwk]);
    const upstream = await bed.upstream();
    const spec = routes({ uri: `${jwks.url}${JWKS_PATH}` });
    (spec.upstreams as { api: { targets: { url: string }[] } }).api.targets = [{ url: upstream.url }];
    const gw = await bed.gateway(spec, gatewayOverrides, logs?.logger);
    return { url: gw.url, gw };
  }

  const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    iss: ISSUER, aud: 'api', sub: 'alice', scope: 'orders:read orders:write', exp: nowS() + 600, ...extra,
  });

  async function call(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
    const res = await request(url, { headers });
    return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
  }

  it('answers 401 Bearer realm without a token, 401 invalid_token with one body whatever the reason, 403 when require fails', async () => {
    const { url, gw } = await setup();
    const missing = await call(`${url}/orders/1`);
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toBe('Bearer realm="gateway"');
    expect(JSON.parse(missing.body)).toMatchObject({ error: { status: 401, code: 'unauthorized' } });

    const other = await makeKey('ES256', 'k1'); // same kid, wrong key
    const invalid = [
      await mint(other, claims()), // bad signature
      await mint(key, claims({ exp: nowS() - 3600 })), // expired
      await mint(key, claims({ aud: 'billing' })), // wrong audience
      'not.a.jwt',
    ];
    const bodies = new Set<string>();
    for (const token of invalid) {
      const answer = await call(`${url}/orders/1`, { authorization: `Bearer ${token}` });
      expect(answer.status).toBe(401);
      expect(answer.headers['www-authenticate']).toBe('Bearer realm="gateway", error="invalid_token"');
      const body = JSON.parse(answer.body) as { error: Record<string, unknown> };
      delete body.error.requestId;
      bodies.add(JSON.stringify(body));
    }
    expect(bodies.size).toBe(1);

    const noScope = await call(`${url}/orders/1`, { authorization: `Bearer ${await mint(key, claims({ scope: 'profile' }))}` });
    expect(noScope.status).toBe(403);
    expect(JSON.parse(noScope.body)).toMatchObject({ error: { status: 403, code: 'forbidden' } });

    for (const [result, count] of [['missing', 1], ['invalid_signature', 1], ['expired', 1], ['invalid_claims', 1], ['malformed', 1], ['ok', 1]] as const) {
      expect(await metricValue(gw.gateway, 'gateway_jwt_verifications_total', { provider: 'main', result })).toBe(count);
    }
    expect(await metricValue(gw.gateway, 'gateway_jwks_fetches_total', { provider: 'main', result: 'success' })).toBe(1);
  });

  it('forwards verified claims and never a client copy of their headers, under any spelling', async () => {
    const logs = new LogCapture();
    const { url } = await setup({ log: { level: 'info', accessLog: true } }, logs);
    const good = await mint(key, claims());
    const answer = await call(`${url}/orders/1`, {
      authorization: `Bearer ${good}`,
      'x-user-id': 'mallory',
      'x_user_id': 'mallory',
      'X-User-Scope': 'admin',
    });
    expect(answer.status).toBe(200);
    const echoed = JSON.parse(answer.body) as Echoed;
    expect(echoed.headers['x-user-id']).toBe('alice');
    expect(echoed.headers.x_user_id).toBeUndefined();
    expect(echoed.headers['x-user-scope']).toBe('orders:read orders:write');
    await until('the access log line', () => logs.requests().some((l) => l.route === 'orders' && l.status === 200), 2000);
    const line = logs.requests().find((l) => l.route === 'orders' && l.status === 200)!;
    expect(line.jwtSubject).toBe('alice');
    expect(JSON.stringify(logs.lines)).not.toContain(good); // never the token

    // A route without auth forwards no claims and strips nothing it does not own.
    const open = JSON.parse((await call(`${url}/public`, { 'x-user-id': 'mallory' })).body) as Echoed;
    expect(open.headers['x-user-id']).toBe('mallory');
  });

  it('re-reads a jwksFile on reload: a rotated key works at once, and a broken file keeps the old keys', async () => {
    const upstream = await bed.upstream();
    const first = await makeKey('RS256', 'old');
    const second = await makeKey('RS256', 'new');
    const spec = routes({ file: 'jwks.json' });
    (spec.upstreams as { api: { targets: { url: string }[] } }).api.targets = [{ url: upstream.url }];
    // jwks.json is read relative to the routes file, and it does not exist yet.
    const gw = await bed.gateway(spec).catch((err: unknown) => err);
    expect(gw).toBeInstanceOf(Error); // no jwks.json yet: the first load fails, naming the file
    expect(String((gw as Error).message)).toMatch(/jwks\.json/);

    const running = await bed.gateway({ ...spec, jwtProviders: {} , routes: [{ name: 'public', prefix: '/', upstream: 'api' }] });
    const file = join(running.files.dir, 'jwks.json');
    await writeFile(file, JSON.stringify({ keys: [first.jwk] }));
    await writeRoutes(running.files, spec);
    expect((await running.gateway.reload()).result).toBe('success');
    const oldToken = await mint(first, claims());
    const newToken = await mint(second, claims());
    expect((await call(`${running.url}/orders/1`, { authorization: `Bearer ${oldToken}` })).status).toBe(200);
    expect((await call(`${running.url}/orders/1`, { authorization: `Bearer ${newToken}` })).status).toBe(401);

    await writeFile(file, JSON.stringify({ keys: [second.jwk] })); // rotation, routes file unchanged
    expect((await running.gateway.reload()).result).toBe('success');
    expect((await call(`${running.url}/orders/1`, { authorization: `Bearer ${newToken}` })).status).toBe(200);
    expect((await call(`${running.url}/orders/1`, { authorization: `Bearer ${oldToken}` })).status).toBe(401);

    await writeFile(file, '{"keys": [ broken');
    const failed = await running.gateway.reload();
    expect(failed.result).toBe('failure');
    expect(JSON.stringify(failed)).toContain('jwks.json');
    expect((await call(`${running.url}/orders/1`, { authorization: `Bearer ${newToken}` })).status).toBe(200);
  });

  // Regression: an exchange created after the client had left (during an uncached verify) never
  // saw its 'close', and held the upstream request and its connection until the 300 s body
  // timeout — which also kept the gateway from stopping.
  it('forwards nothing for a client that left while its token was being verified', async () => {
    jwks = await TestJwksServer.start();
    key = await makeKey('ES256', 'k1');
    jwks.setKeys([key.jwk]);
    const upstream = await bed.upstream((_req, res) => setTimeout(() => res.end('late'), 200));
    const spec = routes({ uri: `${jwks.url}${JWKS_PATH}` });
    (spec.upstreams as { api: { targets: { url: string }[] } }).api.targets = [{ url: upstream.url }];
    const gw = await bed.gateway(spec);
    const tokens = await Promise.all(Array.from({ length: 100 }, (_, i) => mint(key, claims({ sub: `user-${i}` }))));
    await Promise.all(tokens.map((token) => new Promise<void>((resolve) => {
      const socket = netConnect(gw.port, '127.0.0.1', () => {
        socket.write(`GET /orders/1 HTTP/1.1\r\nhost: a\r\nauthorization: Bearer ${token}\r\n\r\n`);
        socket.destroy();
        resolve();
      });
      socket.on('error', () => resolve());
    })));
    await until('no request left in flight', async () => {
      const body = (await (await request(`${gw.adminUrl}/upstreams`)).body.json()) as { upstreams: { endpoints: { inFlight: number }[] }[] };
      return body.upstreams.every((u) => u.endpoints.every((e) => e.inFlight === 0));
    }, 3000);
    const stopping = performance.now();
    await gw.stop();
    expect(performance.now() - stopping).toBeLessThan(2000);
  });
});
