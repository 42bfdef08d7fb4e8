import type { JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJwtAuthFilter, JwtProvider } from '../../../plugins/jwt-auth/index.js';
import { makeKey, mint, nowS, TestJwksServer, type TestKey } from '../../helpers/jwks.js';
import { context, ISSUER, providerConfig, recorder, RequestSource } from './support.js';

// What a hot token costs compared with a cold one. The figures are printed (µs/op); the bounds
// asserted are an order of magnitude above what a laptop measures, so only a real regression
// (a signature check per hit, a promise per hit) turns this red.

let server: TestJwksServer;
let requests: RequestSource;
let es: TestKey;
let rs: TestKey;
let p: JwtProvider;

beforeAll(async () => {
  server = await TestJwksServer.start();
  requests = await RequestSource.start();
  [es, rs] = await Promise.all([makeKey('ES256', 'es'), makeKey('RS256', 'rs')]);
  server.setKeys([es.jwk, rs.jwk]);
  p = new JwtProvider(providerConfig({ jwksUri: server.url, forwardClaims: { sub: 'x-user-id', scope: 'x-user-scope' } }), recorder().events, {
    cacheSize: 20_000,
  });
  p.start();
  await p.ready();
});

afterAll(async () => {
  p.stop();
  await requests.close();
  await server.close();
});

const claims = (extra: JWTPayload = {}): JWTPayload => ({ iss: ISSUER, aud: 'api', sub: 'alice', scope: 'users:read users:write', iat: nowS(), exp: nowS() + 3600, ...extra });

describe('cost', () => {
  it('a cache hit is a Map lookup, not a signature check', async () => {
    const token = await mint(es, claims());
    await p.verify(token);
    const checks = p.signatureChecks;
    const N = 100_000;
    // Each request brings its own copy of the token (V8 caches a string's hash in the string).
    const bytes = Buffer.from(token, 'latin1');
    const fresh = (): string => bytes.toString('latin1');
    for (let i = 0; i < 10_000; i++) p.verify(fresh()); // warm-up
    const t0 = performance.now();
    for (let i = 0; i < N; i++) p.verify(fresh());
    const us = ((performance.now() - t0) * 1000) / N;
    console.log(`jwt-auth: provider.verify cache hit, fresh token string (${token.length} chars): ${us.toFixed(3)} µs/op (${N} ops)`);
    expect(p.signatureChecks).toBe(checks);
    expect(us).toBeLessThan(5);
  });

  it('a cache hit through the filter (header parse, require, headers, events) stays synchronous and cheap', async () => {
    const token = await mint(es, claims({ sub: 'filter' }));
    const filter = createJwtAuthFilter({ jwt: 'main', require: { scope: 'users:read' } }, p, { verification: () => {}, jwksFetch: () => {}, keyRejected: () => {} });
    const req = await requests.bearer(token);
    expect(await filter.apply(context(req))).toBeNull();
    const N = 100_000;
    const ctxs = Array.from({ length: 1000 }, () => context(req));
    for (let i = 0; i < 10_000; i++) filter.apply(ctxs[i % 1000]!);
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const result = filter.apply(ctxs[i % 1000]!);
      if (result !== null) throw new Error('refused');
    }
    const us = ((performance.now() - t0) * 1000) / N;
    console.log(`jwt-auth: filter.apply cache hit: ${us.toFixed(3)} µs/op (${N} ops)`);
    expect(us).toBeLessThan(20);
  });

  for (const [label, key] of [['ES256', () => es], ['RS256', () => rs]] as const) {
    it(`a cold ${label} verification (distinct tokens, each verified once)`, async () => {
      const N = 2000;
      const tokens = await Promise.all(Array.from({ length: N }, (_, i) => mint(key(), claims({ sub: `${label}-${i}` }))));
      for (const t of tokens.slice(0, 100)) await p.verify(t); // warm-up
      const checks = p.signatureChecks;
      const t0 = performance.now();
      for (const t of tokens.slice(100)) {
        const v = await p.verify(t);
        if (!v.ok) throw new Error(v.reason);
      }
      const us = ((performance.now() - t0) * 1000) / (N - 100);
      console.log(`jwt-auth: cold ${label} verify: ${us.toFixed(1)} µs/op (${N - 100} ops, sequential)`);
      expect(p.signatureChecks - checks).toBe(N - 100);
      expect(us).toBeLessThan(5000);
    });
  }
});
