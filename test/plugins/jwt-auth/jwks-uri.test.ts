import type { JWTPayload } from 'jose';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { JwtProviderConfig } from '../../../src/config/types.js';
import { createJwtAuthFilter, JwtProvider, type JwtProviderOptions } from '../../../plugins/jwt-auth/index.js';
import { makeKey, mint, nowS, TestJwksServer, type TestKey } from '../../helpers/jwks.js';
import { sleep } from '../../helpers/wait.js';
import { context, ISSUER, providerConfig, type Recorded, recorder, RequestSource } from './support.js';

// A provider with a jwksUri against a JWKS endpoint the test controls: background refresh, the
// single-flight refetch of an unknown kid and its cooldown, and every way the endpoint can fail
// while the last good keys keep working. Durations are scaled down (cache age 1 s, cooldown
// 200 ms) and bounds are generous, so a slow machine is slower, never red.

let server: TestJwksServer;
let requests: RequestSource;
let k1: TestKey;
let k2: TestKey;
let k3: TestKey;
const live: JwtProvider[] = [];

beforeAll(async () => {
  requests = await RequestSource.start();
  [k1, k2, k3] = await Promise.all([makeKey('ES256', 'k1'), makeKey('ES256', 'k2'), makeKey('EdDSA', 'k3')]);
});

beforeEach(async () => {
  server = await TestJwksServer.start();
  server.setKeys([k1.jwk]);
});

afterEach(async () => {
  for (const p of live.splice(0)) p.stop();
  await server.close();
});

afterAll(async () => {
  await requests.close();
});

const claims = (extra: JWTPayload = {}): JWTPayload => ({ iss: ISSUER, aud: 'api', sub: 'alice', iat: nowS(), exp: nowS() + 300, ...extra });

async function started(overrides: Partial<JwtProviderConfig> = {}, options: JwtProviderOptions = {}): Promise<{ p: JwtProvider; rec: Recorded }> {
  const rec = recorder();
  const p = new JwtProvider(providerConfig({ jwksUri: server.url, ...overrides }), rec.events, { fetchTimeoutMs: 1000, ...options });
  live.push(p);
  p.start();
  await p.ready();
  return { p, rec };
}

const kids = (p: JwtProvider): (string | null)[] => p.keys.entries.map((k) => k.kid);

describe('fetching', () => {
  it('fetches at start and refreshes in the background at ~80 % of jwksCacheMaxAge', async () => {
    const { p, rec } = await started({ jwksCacheMaxAgeMs: 1000 });
    expect(kids(p)).toEqual(['k1']);
    expect(rec.fetches[0]).toMatchObject({ result: 'success', detail: { trigger: 'initial', keys: 1, reason: null } });
    await server.waitForFetches(3, 5000);
    const [t0, t1, t2] = server.fetchTimes as [number, number, number];
    // 75 % .. 85 % of 1 s, plus timer and fetch latency.
    for (const gap of [t1 - t0, t2 - t1]) {
      expect(gap).toBeGreaterThanOrEqual(700);
      expect(gap).toBeLessThan(1000);
    }
    await expect.poll(() => rec.fetches.length).toBeGreaterThanOrEqual(3);
    expect(rec.fetches.slice(1, 3).map((f) => [f.result, f.detail.trigger])).toEqual([
      ['unchanged', 'refresh'],
      ['unchanged', 'refresh'],
    ]);
  });

  it('picks up a rotation at the next background refresh', async () => {
    const { p, rec } = await started({ jwksCacheMaxAgeMs: 1000 });
    server.setKeys([k1.jwk, k2.jwk]);
    await expect.poll(() => kids(p), { timeout: 3000 }).toEqual(['k1', 'k2']);
    expect(rec.fetches.at(-1)).toMatchObject({ result: 'success', detail: { trigger: 'refresh', keys: 2 } });
    expect((await p.verify(await mint(k2, claims()))).ok).toBe(true);
  });
});

describe('unknown kid', () => {
  it('triggers one refetch, and the token verifies with the key it brought', async () => {
    const { p, rec } = await started({ jwksRefetchCooldownMs: 200 });
    await sleep(250); // past the cooldown of the initial fetch
    server.setKeys([k1.jwk, k2.jwk]);
    const v = await p.verify(await mint(k2, claims()));
    expect(v.ok).toBe(true);
    expect(server.fetches).toBe(2);
    expect(rec.fetches.at(-1)).toMatchObject({ result: 'success', detail: { trigger: 'unknown_kid' } });
  });

  it('200 concurrent requests with one new kid cause exactly one fetch, and all wait for it', async () => {
    const { p } = await started({ jwksRefetchCooldownMs: 200 });
    const rec = recorder();
    const filter = createJwtAuthFilter({ jwt: 'main', require: {} }, p, rec.events);
    // Distinct tokens (one per user), all signed with the new key: no help from the token cache.
    const tokens = await Promise.all(Array.from({ length: 200 }, (_, i) => mint(k2, claims({ sub: `user-${i}` }))));
    const reqs = await Promise.all(tokens.map((t) => requests.bearer(t)));
    await sleep(250);
    server.setKeys([k1.jwk, k2.jwk]);
    server.delayMs = 100; // the fetch is in flight while all 200 arrive
    const fetchesBefore = server.fetches;
    const verdicts = await Promise.all(reqs.map((req) => filter.apply(context(req))));
    expect(verdicts.every((v) => v === null)).toBe(true);
    expect(server.fetches - fetchesBefore).toBe(1);
    expect(rec.verifications.filter((v) => v.result === 'ok')).toHaveLength(200);
  });

  it('200 concurrent requests with a kid that never appears: one fetch, all unknown_kid; then nothing until the cooldown', async () => {
    const { p } = await started({ jwksRefetchCooldownMs: 1000 });
    const rec = recorder();
    const filter = createJwtAuthFilter({ jwt: 'main', require: {} }, p, rec.events);
    const ghost = { ...k2, kid: 'ghost' };
    // Every request is ready before the clock matters: three bursts of 200 distinct tokens.
    const bursts = await Promise.all(
      [0, 1, 2].map(async (b) => {
        const tokens = await Promise.all(Array.from({ length: 200 }, (_, i) => mint(ghost, claims({ sub: `u${b}-${i}` }))));
        return Promise.all(tokens.map((t) => requests.bearer(t)));
      }),
    );
    const burst = async (b: number): Promise<void> => {
      const ctxs = bursts[b]!.map((req) => context(req));
      const verdicts = await Promise.all(ctxs.map((ctx) => filter.apply(ctx)));
      expect(verdicts.every((v) => v?.status === 401)).toBe(true);
      expect(ctxs.every((ctx) => ctx.responseHeaders['www-authenticate'] === 'Bearer realm="gateway", error="invalid_token"')).toBe(true);
    };
    await sleep(1050); // past the cooldown of the initial fetch
    const before = server.fetches;
    await burst(0);
    expect(server.fetches - before).toBe(1);
    await burst(1); // within the cooldown: no fetch at all
    expect(server.fetches - before).toBe(1);
    await sleep(1050);
    await burst(2);
    expect(server.fetches - before).toBe(2);
    expect(rec.verifications.every((v) => v.result === 'unknown_kid')).toBe(true);
    expect(rec.verifications).toHaveLength(600);
  });

  it('counts the cooldown from any fetch: right after a fetch, an unknown kid fetches nothing', async () => {
    const { p } = await started({ jwksRefetchCooldownMs: 60_000 });
    server.setKeys([k1.jwk, k2.jwk]);
    expect(await p.verify(await mint(k2, claims()))).toMatchObject({ ok: false, result: 'unknown_kid' });
    expect(server.fetches).toBe(1);
  });

  it('waits for the refetch only so long, then fails as unknown_kid while the fetch carries on', async () => {
    const { p, rec } = await started({ jwksRefetchCooldownMs: 0 }, { unknownKidWaitMs: 300, fetchTimeoutMs: 1500 });
    server.behaviour = 'hang';
    const tokens = await Promise.all([1, 2, 3].map((n) => mint(k2, claims({ sub: `s${n}` }))));
    const t0 = performance.now();
    const results = await Promise.all(tokens.map((t) => p.verify(t)));
    const waited = performance.now() - t0;
    expect(results.map((r) => (r.ok ? 'ok' : r.result))).toEqual(['unknown_kid', 'unknown_kid', 'unknown_kid']);
    expect(waited).toBeGreaterThanOrEqual(250);
    expect(waited).toBeLessThan(1200);
    expect(server.fetches).toBe(2);
    // The fetch ends at its own timeout, as a failure; the key set is untouched.
    await expect.poll(() => rec.fetches.length, { timeout: 3000 }).toBe(2);
    expect(rec.fetches[1]).toMatchObject({ result: 'failure', detail: { trigger: 'unknown_kid', keys: 1, reason: 'timeout after 1500ms' } });
    expect(kids(p)).toEqual(['k1']);
  });

  it('does not let another issuer\'s token trigger a fetch', async () => {
    const { p } = await started({ jwksRefetchCooldownMs: 0 });
    expect(await p.verify(await mint(k2, claims({ iss: 'https://evil.example/' })))).toMatchObject({ ok: false, result: 'invalid_claims' });
    expect(server.fetches).toBe(1);
  });
});

describe('when the JWKS endpoint fails, the last good keys keep working', () => {
  async function expectKept(p: JwtProvider, rec: Recorded, reason: RegExp): Promise<void> {
    await expect.poll(() => rec.fetches.length, { timeout: 4000 }).toBeGreaterThanOrEqual(2);
    expect(rec.fetches[1]).toMatchObject({ result: 'failure', detail: { trigger: 'refresh', keys: 1 } });
    expect(rec.fetches[1]!.detail.reason).toMatch(reason);
    expect(kids(p)).toEqual(['k1']);
    expect((await p.verify(await mint(k1, claims({ sub: `after-${Math.random()}` })))).ok).toBe(true);
  }

  // Each case: a good first fetch, then the endpoint breaks before the first refresh (at ~800 ms).
  const breakages: [string, (s: TestJwksServer) => void, RegExp][] = [
    ['500', (s) => (s.behaviour = 'fail'), /HTTP status 500/],
    ['a hang (timeout)', (s) => (s.behaviour = 'hang'), /timeout after 500ms/],
    ['a slow answer (timeout)', (s) => (s.delayMs = 2000), /timeout after 500ms/],
    ['a body that is not JSON', (s) => s.setBody('<html>oops</html>', 'text/html'), /not JSON/],
    ['JSON that is not a JWKS', (s) => s.setBody('{"keys":"none"}'), /not a JWKS/],
    ['an empty key set', (s) => s.setBody('{"keys":[]}'), /no usable key/],
    ['keys that do not import', (s) => s.setKeys([{ ...k1.jwk, x: 'AAAA' }, { ...k2.jwk, crv: 'P-384' }, { kty: 'EC', kid: 'junk', crv: 'P-256' }]), /no usable key.*rejected/],
    ['a body above the size bound', (s) => s.setBody(JSON.stringify({ keys: [k1.jwk], pad: 'x'.repeat(600 * 1024) })), /exceeds 524288 bytes/],
  ];

  for (const [label, breakIt, reason] of breakages) {
    it(`on ${label}`, async () => {
      const { p, rec } = await started({ jwksCacheMaxAgeMs: 1000 }, { fetchTimeoutMs: 500 });
      const cached = await mint(k1, claims());
      expect((await p.verify(cached)).ok).toBe(true);
      breakIt(server);
      await expectKept(p, rec, reason);
      expect(p.verify(cached)).toMatchObject({ ok: true }); // cached tokens stay cached
    });
  }

  it('when the endpoint is gone altogether (connection refused), and retries with a backoff', async () => {
    const { p, rec } = await started({ jwksCacheMaxAgeMs: 1000 }, { retryBaseMs: 100 });
    await server.close();
    await expect.poll(() => rec.fetches.filter((f) => f.result === 'failure').length, { timeout: 4000 }).toBeGreaterThanOrEqual(3);
    expect(rec.fetches[1]!.detail.reason).toMatch(/connection refused/);
    expect(kids(p)).toEqual(['k1']);
    expect((await p.verify(await mint(k1, claims()))).ok).toBe(true);
    server = await TestJwksServer.start(); // for afterEach
  });

  it('keeps the good keys of a set and reports the broken ones', async () => {
    const { p, rec } = await started({ jwksCacheMaxAgeMs: 1000 });
    server.setKeys([k1.jwk, { ...k3.jwk, x: '!!' }, k2.jwk]);
    await expect.poll(() => kids(p), { timeout: 3000 }).toEqual(['k1', 'k2']);
    expect(rec.rejected).toEqual([{ provider: 'main', kid: 'k3', reason: expect.stringMatching(/does not import/) }]);
  });

  it('keeps a key it holds when the endpoint still lists its kid but the entry no longer imports', async () => {
    server.setKeys([k1.jwk, k3.jwk]);
    const { p, rec } = await started({ jwksCacheMaxAgeMs: 1000 });
    const held = p.keys.withKid('k1')![0];
    server.setKeys([{ ...k1.jwk, x: 'AAAA' }, k2.jwk]); // k1 broken, k2 new, k3 gone
    await expect.poll(() => [...kids(p)].sort(), { timeout: 3000 }).toEqual(['k1', 'k2']);
    expect(p.keys.withKid('k1')![0]).toBe(held);
    expect(rec.rejected.map((r) => r.kid)).toContain('k1');
    expect((await p.verify(await mint(k1, claims()))).ok).toBe(true);
  });

  it('goes live without keys when the first fetch fails, and recovers on the next one', async () => {
    server.behaviour = 'fail';
    const { p, rec } = await started({ jwksCacheMaxAgeMs: 1000, jwksRefetchCooldownMs: 0 }, { retryBaseMs: 100 });
    expect(p.keys.size).toBe(0);
    expect(rec.fetches[0]).toMatchObject({ result: 'failure', detail: { trigger: 'initial', keys: 0 } });
    expect(await p.verify(await mint(k1, claims()))).toMatchObject({ ok: false, result: 'unknown_kid' });
    server.behaviour = 'serve';
    await expect.poll(() => p.keys.size, { timeout: 3000 }).toBe(1);
    expect((await p.verify(await mint(k1, claims({ sub: 'later' })))).ok).toBe(true);
  });
});

describe('stop', () => {
  it('ends background fetching but keeps verifying with the keys it has', async () => {
    const { p } = await started({ jwksCacheMaxAgeMs: 1000, jwksRefetchCooldownMs: 0 });
    p.stop();
    const fetches = server.fetches;
    await sleep(1000);
    expect(server.fetches).toBe(fetches);
    expect((await p.verify(await mint(k1, claims()))).ok).toBe(true);
    expect(await p.verify(await mint(k2, claims()))).toMatchObject({ ok: false, result: 'unknown_kid' });
    expect(server.fetches).toBe(fetches);
  });
});
