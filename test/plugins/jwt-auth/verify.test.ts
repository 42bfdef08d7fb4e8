import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CryptoKey, exportJWK, importJWK, type JWK, type JWTPayload, SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JwtProviderConfig } from '../../../src/config/types.js';
import { JwtProvider, type JwtProviderOptions, JwtProviderRegistry, type Verification } from '../../../plugins/jwt-auth/index.js';
import { makeKey, mint, nowS, TestJwksServer, type TestKey } from '../../helpers/jwks.js';
import { ISSUER, providerConfig, recorder } from './support.js';

// Every check a token goes through, against real keys served by a real JWKS endpoint (and a
// jwksFile for the symmetric case). Tokens are minted with jose as an issuer would.

let jwks: TestJwksServer;
let dir: string;
let rs: TestKey; // RS256, alg and use published
let rsBare: TestKey; // RSA without alg/use: serves RS256 and PS256
let ps: TestKey;
let es: TestKey;
let ed: TestKey;
let encKey: TestKey; // use: enc — never for signatures
let stranger: TestKey; // same kid as rs, other key material: a forger's
const live: JwtProvider[] = [];
const registries: JwtProviderRegistry[] = [];

beforeAll(async () => {
  jwks = await TestJwksServer.start();
  dir = await mkdtemp(join(tmpdir(), 'jwt-verify-'));
  [rs, rsBare, ps, es, ed, encKey, stranger] = await Promise.all([
    makeKey('RS256', 'rs-1'),
    makeKey('RS256', 'rs-bare', { bareJwk: true }),
    makeKey('PS256', 'ps-1'),
    makeKey('ES256', 'es-1'),
    makeKey('EdDSA', 'ed-1'),
    makeKey('ES256', 'es-enc', { jwk: { use: 'enc' } }),
    makeKey('RS256', 'rs-1'),
  ]);
  jwks.setKeys([rs.jwk, rsBare.jwk, ps.jwk, es.jwk, ed.jwk, encKey.jwk]);
});

afterEach(() => {
  for (const p of live.splice(0)) p.stop();
  for (const r of registries.splice(0)) r.stopAll();
});

afterAll(async () => {
  await jwks.close();
  await rm(dir, { recursive: true, force: true });
});

async function provider(overrides: Partial<JwtProviderConfig> = {}, options: JwtProviderOptions = {}): Promise<JwtProvider> {
  const p = new JwtProvider(providerConfig({ jwksUri: jwks.url, ...overrides }), recorder().events, options);
  live.push(p);
  p.start();
  await p.ready();
  return p;
}

let files = 0;
/** A jwksFile provider, loaded through the registry as the gateway loads it. */
async function fileProvider(keys: readonly JWK[], overrides: Partial<JwtProviderConfig> = {}): Promise<JwtProvider> {
  const file = join(dir, `jwks-${++files}.json`);
  await writeFile(file, JSON.stringify({ keys }));
  const registry = new JwtProviderRegistry(recorder().events);
  registries.push(registry);
  const config = providerConfig({ jwksFile: file, ...overrides });
  await registry.prepare([config]);
  return registry.get(config);
}

const claims = (extra: JWTPayload = {}): JWTPayload => ({ iss: ISSUER, aud: 'api', sub: 'alice', iat: nowS(), exp: nowS() + 300, ...extra });

async function verify(p: JwtProvider, token: string): Promise<Verification> {
  return p.verify(token);
}

async function expectFailure(p: JwtProvider, token: string, result: string, reason?: RegExp): Promise<void> {
  const v = await verify(p, token);
  expect(v.ok, `expected ${result}`).toBe(false);
  if (v.ok) return;
  expect(v.result).toBe(result);
  if (reason !== undefined) expect(v.reason).toMatch(reason);
}

describe('signatures and algorithms', () => {
  it('verifies RS256, PS256, ES256 and EdDSA tokens against the fetched keys', async () => {
    const p = await provider({ algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'] });
    for (const key of [rs, ps, es, ed]) {
      const v = await verify(p, await mint(key, claims({ sub: key.kid })));
      expect(v.ok, key.alg).toBe(true);
      if (v.ok) expect(v.subject).toBe(key.kid);
    }
    expect(p.signatureChecks).toBe(4);
  });

  it('verifies HS256 with an oct key from a jwksFile, when HS256 is listed', async () => {
    const hs = await makeKey('HS256', 'hs-1');
    const p = await fileProvider([hs.jwk], { algorithms: ['HS256'] });
    expect((await verify(p, await mint(hs, claims()))).ok).toBe(true);
  });

  it('refuses an algorithm not in the allow-list before any signature check', async () => {
    const p = await provider({ algorithms: ['RS256'] });
    await expectFailure(p, await mint(es, claims()), 'invalid_signature', /ES256.*not allowed/);
    expect(p.signatureChecks).toBe(0);
  });

  it('never accepts alg none', async () => {
    const p = await provider({ algorithms: ['RS256', 'ES256', 'EdDSA', 'HS256'] });
    const unsigned = new UnsecuredJWT(claims()).encode();
    await expectFailure(p, unsigned, 'invalid_signature', /"none" is not allowed/);
    // The same with a kid of a real key in the header.
    const [, payload] = unsigned.split('.');
    const header = Buffer.from(JSON.stringify({ alg: 'none', kid: rs.kid })).toString('base64url');
    await expectFailure(p, `${header}.${payload}.`, 'invalid_signature', /not allowed/);
    expect(p.signatureChecks).toBe(0);
  });

  it('never accepts HS256 signed with an RSA public key as the secret (alg confusion)', async () => {
    // The forger knows the public key: they use its bytes as the HMAC secret, name its kid.
    const secrets = [new TextEncoder().encode(JSON.stringify(rs.jwk)), Buffer.from(rs.jwk.n!, 'base64url')];
    const fetched = await provider({ algorithms: ['RS256', 'HS256'] });
    const file = await fileProvider([rs.jwk, (await makeKey('HS256', 'hs-1')).jwk], { algorithms: ['RS256', 'HS256'] });
    for (const secret of secrets) {
      const forged = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: rs.kid }).sign(secret);
      await expectFailure(fetched, forged, 'invalid_signature', /not usable with HS256/);
      await expectFailure(file, forged, 'invalid_signature', /not usable with HS256/);
      // Without a kid, an RSA key is still no candidate for HS256.
      const noKid = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256' }).sign(secret);
      await expectFailure(fetched, noKid, 'unknown_kid');
      await expectFailure(file, noKid, 'invalid_signature');
    }
    expect(fetched.signatureChecks).toBe(0);
  });

  it('drops oct keys from a fetched JWKS, so HS256 can never pass with a jwksUri', async () => {
    const hs = await makeKey('HS256', 'hs-remote');
    const server = await TestJwksServer.start();
    try {
      server.setKeys([rs.jwk, hs.jwk]);
      const rec = recorder();
      const p = new JwtProvider(providerConfig({ jwksUri: server.url, algorithms: ['RS256', 'HS256'] }), rec.events);
      live.push(p);
      p.start();
      await p.ready();
      expect(p.keys.entries.map((k) => k.kid)).toEqual(['rs-1']);
      expect(rec.rejected).toEqual([{ provider: 'main', kid: 'hs-remote', reason: expect.stringMatching(/symmetric/) }]);
      await expectFailure(p, await mint(hs, claims()), 'unknown_kid');
    } finally {
      await server.close();
    }
  });

  it("respects a key's alg: an RS256 key does not verify PS256, an alg-less RSA key serves both", async () => {
    const p = await provider({ algorithms: ['RS256', 'PS256'] });
    // The same key material, used for PS256 under each key's kid.
    const asPs = async (key: TestKey): Promise<string> => {
      const pss = await importJWK({ ...(await exportJWK(key.privateKey as CryptoKey)), alg: 'PS256' }, 'PS256');
      return new SignJWT(claims()).setProtectedHeader({ alg: 'PS256', kid: key.kid }).sign(pss);
    };
    await expectFailure(p, await asPs(rs), 'invalid_signature', /not usable with PS256/);
    expect((await verify(p, await asPs(rsBare))).ok).toBe(true);
    expect((await verify(p, await mint(rsBare, claims()))).ok).toBe(true);
  });

  it("respects a key's use: an encryption key verifies nothing", async () => {
    const p = await provider();
    expect(p.keys.entries.map((k) => k.kid)).not.toContain('es-enc');
    await expectFailure(p, await mint(encKey, claims()), 'unknown_kid');
  });

  it('refuses a signature made with another key under a known kid', async () => {
    const p = await provider();
    await expectFailure(p, await mint(stranger, claims()), 'invalid_signature');
    expect(p.signatureChecks).toBe(1);
  });

  it('verifies a token without kid against the keys of its alg', async () => {
    const p = await provider();
    expect((await verify(p, await mint(es, claims(), { header: { kid: undefined } }))).ok).toBe(true);
    expect((await verify(p, await mint(ed, claims(), { header: { kid: undefined } }))).ok).toBe(true);
    await expectFailure(p, await mint(stranger, claims(), { header: { kid: undefined } }), 'invalid_signature');
  });

  it('reports tokens that are not compact JWS as malformed', async () => {
    const p = await provider();
    const good = await mint(rs, claims());
    const [h, pl, sig] = good.split('.') as [string, string, string];
    const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
    const cases = [
      'abc',
      'a.b.c',
      `${h}.${pl}`,
      `${b64('not json')}.${pl}.${sig}`,
      `${h}.${b64('not json')}.${sig}`,
      `${h}.${b64([1, 2])}.${sig}`,
      `${b64({ alg: 'RS256', kid: 7 })}.${pl}.${sig}`,
      `${b64({ kid: 'rs-1' })}.${pl}.${sig}`,
    ];
    for (const token of cases) await expectFailure(p, token, 'malformed');
    expect(p.signatureChecks).toBe(0);
  });
});

describe('claims', () => {
  it('requires the issuer exactly', async () => {
    const p = await provider();
    for (const iss of ['https://id.example.com', 'https://ID.example.com/', 'https://id.example.com/x', undefined]) {
      await expectFailure(p, await mint(rs, claims({ iss })), 'invalid_claims', /iss/);
    }
    expect(p.signatureChecks).toBe(0); // another issuer's token is refused unverified
  });

  it('accepts any listed audience, as a string or in an array; refuses others or none', async () => {
    const p = await provider({ audiences: ['api', 'admin'] });
    for (const aud of ['api', 'admin', ['other', 'api']]) expect((await verify(p, await mint(rs, claims({ aud })))).ok, JSON.stringify(aud)).toBe(true);
    for (const aud of ['other', ['other', 'more'], undefined]) await expectFailure(p, await mint(rs, claims({ aud })), 'invalid_claims', /aud/);
  });

  it('does not check aud when audiences is []', async () => {
    const p = await provider({ audiences: [] });
    for (const aud of ['anything', ['x'], undefined]) expect((await verify(p, await mint(rs, claims({ aud })))).ok).toBe(true);
  });

  it('honours the clock skew on exp', async () => {
    const p = await provider({ clockSkewMs: 30_000 });
    expect((await verify(p, await mint(rs, claims({ exp: nowS() - 10 })))).ok).toBe(true);
    await expectFailure(p, await mint(rs, claims({ exp: nowS() - 40 })), 'expired');
    const strict = await provider({ clockSkewMs: 0 });
    await expectFailure(strict, await mint(rs, claims({ exp: nowS() - 1 })), 'expired');
  });

  it('honours the clock skew on nbf', async () => {
    const p = await provider({ clockSkewMs: 30_000 });
    expect((await verify(p, await mint(rs, claims({ nbf: nowS() + 20 })))).ok).toBe(true);
    await expectFailure(p, await mint(rs, claims({ nbf: nowS() + 40 })), 'invalid_claims', /nbf/);
  });

  it('refuses an iat in the future beyond the clock skew', async () => {
    const p = await provider({ clockSkewMs: 30_000 });
    expect((await verify(p, await mint(rs, claims({ iat: nowS() + 20 })))).ok).toBe(true);
    await expectFailure(p, await mint(rs, claims({ iat: nowS() + 40 })), 'invalid_claims', /iat/);
    await expectFailure(p, await mint(rs, claims({ iat: 'yesterday' as unknown as number })), 'invalid_claims', /iat/);
  });

  it('accepts a token without exp (the issuer decides; it is cached until its key goes)', async () => {
    const p = await provider();
    const v = await verify(p, await mint(rs, claims({ exp: undefined })));
    expect(v.ok).toBe(true);
    if (v.ok) expect(v.validUntilMs).toBe(Infinity);
  });
});

describe('RSA key size', () => {
  it('refuses RSA keys under 2048 bits in a jwksFile at load, naming the file and the kid', async () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }) as JWK;
    const file = join(dir, 'small.json');
    await writeFile(file, JSON.stringify({ keys: [rs.jwk, { ...small, kid: 'tiny', alg: 'RS256', use: 'sig' }] }));
    const registry = new JwtProviderRegistry(recorder().events);
    registries.push(registry);
    const error = await registry.prepare([providerConfig({ jwksFile: file })]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain(file);
    expect((error as Error).message).toMatch(/"tiny".*1024 bits/);
  });

  it('drops RSA keys under 2048 bits from a fetched JWKS and reports them', async () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }) as JWK;
    const server = await TestJwksServer.start();
    try {
      server.setKeys([rs.jwk, { ...small, kid: 'tiny' }]);
      const rec = recorder();
      const p = new JwtProvider(providerConfig({ jwksUri: server.url }), rec.events);
      live.push(p);
      p.start();
      await p.ready();
      expect(p.keys.entries.map((k) => k.kid)).toEqual(['rs-1']);
      expect(rec.fetches.map((f) => f.result)).toEqual(['success']);
      expect(rec.rejected).toEqual([{ provider: 'main', kid: 'tiny', reason: expect.stringMatching(/1024 bits/) }]);
      // A token naming it is an unknown kid, answered 401 — never a 500 at request time.
      await expectFailure(p, await mint({ ...rs, kid: 'tiny' }, claims()), 'unknown_kid');
    } finally {
      await server.close();
    }
  });
});

describe('verification cache', () => {
  it('answers a verified token again synchronously, without calling jose', async () => {
    const p = await provider();
    const token = await mint(es, claims());
    const first = await p.verify(token);
    expect(first.ok).toBe(true);
    expect(p.signatureChecks).toBe(1);
    const second = p.verify(token);
    expect(second).not.toBeInstanceOf(Promise);
    expect(second).toBe(first);
    for (let i = 0; i < 1000; i++) p.verify(token);
    expect(p.signatureChecks).toBe(1);
  });

  it('keeps a cached token exactly as long as jose would accept it (exp plus the clock skew)', async () => {
    // [skew, first epoch second jose refuses]: jose accepts while floor(now) < exp + skew.
    for (const [skewMs, refusedFrom] of [[5000, 5], [1500, 2], [0, 0]] as const) {
      let clock = Date.now();
      const p = await provider({ clockSkewMs: skewMs }, { now: () => clock });
      const exp = Math.floor(clock / 1000) + 10;
      const token = await mint(rs, claims({ exp, sub: `skew-${skewMs}` }));
      expect((await p.verify(token)).ok).toBe(true);
      clock = (exp + refusedFrom) * 1000 - 1; // the last millisecond jose accepts
      expect(p.verify(token), `skew ${skewMs}`).toMatchObject({ ok: true });
      expect(p.signatureChecks).toBe(1);
      clock = (exp + refusedFrom) * 1000;
      expect(await p.verify(token), `skew ${skewMs}`).toMatchObject({ ok: false, result: 'expired' });
      expect(p.signatureChecks).toBe(2);
    }
  });

  it('drops cached tokens of a key that rotation removed, and keeps those of keys that stayed', async () => {
    const server = await TestJwksServer.start();
    try {
      const [a, b] = await Promise.all([makeKey('ES256', 'rot-a'), makeKey('ES256', 'rot-b')]);
      server.setKeys([a.jwk, b.jwk]);
      const p = new JwtProvider(providerConfig({ jwksUri: server.url, jwksCacheMaxAgeMs: 400 }), recorder().events);
      live.push(p);
      p.start();
      await p.ready();
      const ta = await mint(a, claims());
      const tb = await mint(b, claims());
      expect((await p.verify(ta)).ok).toBe(true);
      expect((await p.verify(tb)).ok).toBe(true);
      const keyB = p.keys.withKid('rot-b')![0];
      expect(p.signatureChecks).toBe(2);

      server.setKeys([b.jwk]); // a is rotated out
      await server.waitForFetches(2);
      await expect.poll(() => p.keys.size).toBe(1);
      expect(p.keys.withKid('rot-b')![0]).toBe(keyB); // unchanged key: same identity
      expect(p.verify(tb)).toMatchObject({ ok: true }); // still a cache hit
      expect(p.signatureChecks).toBe(2);
      expect(await p.verify(ta)).toMatchObject({ ok: false, result: 'unknown_kid' });
    } finally {
      await server.close();
    }
  });

  it('drops cached tokens when a jwksFile reload removes their key', async () => {
    const [a, b] = await Promise.all([makeKey('ES256', 'file-a'), makeKey('ES256', 'file-b')]);
    const file = join(dir, 'rotating.json');
    await writeFile(file, JSON.stringify({ keys: [a.jwk, b.jwk] }));
    const registry = new JwtProviderRegistry(recorder().events);
    registries.push(registry);
    const config = providerConfig({ jwksFile: file });
    await registry.prepare([config]);
    const p = registry.get(config);
    const ta = await mint(a, claims());
    const tb = await mint(b, claims());
    expect((await p.verify(ta)).ok).toBe(true);
    expect((await p.verify(tb)).ok).toBe(true);
    await writeFile(file, JSON.stringify({ keys: [b.jwk] }));
    await registry.prepare([config]);
    expect(registry.get(config)).toBe(p);
    expect(p.verify(tb)).toMatchObject({ ok: true });
    expect(await p.verify(ta)).toMatchObject({ ok: false, result: 'unknown_kid' });
    expect(p.signatureChecks).toBe(2);
  });

  it('is bounded, evicting the least recently used token', async () => {
    const p = await provider({}, { cacheSize: 4 });
    const tokens = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => mint(es, claims({ sub: `u${n}` }))));
    for (const t of tokens) expect((await p.verify(t)).ok).toBe(true);
    expect(p.cachedTokens).toBe(4);
    const checks = p.signatureChecks;
    expect(p.verify(tokens[5]!)).not.toBeInstanceOf(Promise); // recent: cached
    expect(p.verify(tokens[0]!)).toBeInstanceOf(Promise); // evicted: verified again
    await p.verify(tokens[0]!);
    expect(p.signatureChecks).toBe(checks + 2);
  });

  it('never answers from the cache for a token that only shares the cached one\'s signature', async () => {
    const p = await provider();
    const real = await mint(es, claims({ sub: 'victim' }));
    expect((await p.verify(real)).ok).toBe(true);
    // The attacker's header and payload, the victim's signature (so the same cache slot).
    const [, , signature] = real.split('.');
    const [h, pl] = (await mint(es, claims({ sub: 'attacker', admin: true }))).split('.');
    const spliced = `${h}.${pl}.${signature}`;
    expect(p.verify(spliced)).toBeInstanceOf(Promise);
    await expectFailure(p, spliced, 'invalid_signature');
    const again = p.verify(real); // still cached, still the victim's
    expect(again).toMatchObject({ ok: true, subject: 'victim' });
  });

  it('does not cache failures', async () => {
    const p = await provider();
    const token = await mint(stranger, claims());
    await expectFailure(p, token, 'invalid_signature');
    await expectFailure(p, token, 'invalid_signature');
    expect(p.signatureChecks).toBe(2);
    expect(p.cachedTokens).toBe(0);
  });
});
