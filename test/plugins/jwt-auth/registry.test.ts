import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JWTPayload } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { JwksFileError, JwtProviderRegistry, type JwtRegistryOptions } from '../../../plugins/jwt-auth/index.js';
import { makeKey, mint, nowS, TestJwksServer, type TestKey } from '../../helpers/jwks.js';
import { sleep } from '../../helpers/wait.js';
import { ISSUER, providerConfig, type Recorded, recorder } from './support.js';

// The registry's lifecycle across reloads, as the gateway drives it: prepare(new) → get → retain(live).

let server: TestJwksServer;
let dir: string;
let k1: TestKey;
let k2: TestKey;
let hs: TestKey;
const registries: JwtProviderRegistry[] = [];

beforeAll(async () => {
  server = await TestJwksServer.start();
  dir = await mkdtemp(join(tmpdir(), 'jwt-registry-'));
  [k1, k2, hs] = await Promise.all([makeKey('ES256', 'k1'), makeKey('RS256', 'k2'), makeKey('HS256', 'hs')]);
  server.setKeys([k1.jwk]);
});

afterEach(() => {
  for (const r of registries.splice(0)) r.stopAll();
  server.behaviour = 'serve';
});

afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

function registry(options: JwtRegistryOptions = {}): { reg: JwtProviderRegistry; rec: Recorded } {
  const rec = recorder();
  const reg = new JwtProviderRegistry(rec.events, options);
  registries.push(reg);
  return { reg, rec };
}

const claims = (extra: JWTPayload = {}): JWTPayload => ({ iss: ISSUER, aud: 'api', sub: 'alice', iat: nowS(), exp: nowS() + 300, ...extra });

async function writeJwks(name: string, content: unknown): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

describe('jwksUri providers', () => {
  it('prepare starts a new provider and waits for its first fetch', async () => {
    const { reg } = registry();
    const config = providerConfig({ name: 'main', jwksUri: server.url });
    await reg.prepare([config]);
    const p = reg.get(config);
    expect(p.keys.size).toBe(1);
    expect((await p.verify(await mint(k1, claims()))).ok).toBe(true);
  });

  it('waits for the first fetch only so long', async () => {
    server.behaviour = 'hang';
    const { reg } = registry({ firstFetchWaitMs: 300, fetchTimeoutMs: 2000 });
    const config = providerConfig({ name: 'slow', jwksUri: server.url });
    const t0 = performance.now();
    await reg.prepare([config]);
    expect(performance.now() - t0).toBeLessThan(1500);
    expect(reg.get(config).keys.size).toBe(0);
  });

  it('keeps a provider (keys, cache, loop) across reloads while its identity is unchanged', async () => {
    const { reg } = registry();
    const config = providerConfig({ name: 'main', jwksUri: server.url });
    await reg.prepare([config]);
    const p = reg.get(config);
    const token = await mint(k1, claims());
    await p.verify(token);
    const fetches = server.fetches;

    // A reload with an equal config (a new object, lists in another order).
    const same = providerConfig({ name: 'main', jwksUri: server.url, algorithms: ['EdDSA', 'ES256', 'RS256'] });
    await reg.prepare([same]);
    reg.retain([same]);
    expect(reg.get(same)).toBe(p);
    expect(server.fetches).toBe(fetches);
    expect(p.verify(token)).not.toBeInstanceOf(Promise);
  });

  it('replaces a provider whose identity changed, and retain stops the old one', async () => {
    const { reg } = registry();
    const before = providerConfig({ name: 'main', jwksUri: server.url, jwksCacheMaxAgeMs: 1000 });
    await reg.prepare([before]);
    const old = reg.get(before);
    for (const change of [{ algorithms: ['ES256' as const] }, { issuer: 'https://other/' }, { audiences: ['x'] }, { clockSkewMs: 1 }, { forwardClaims: { sub: 'x-sub' } }]) {
      const after = { ...before, ...change };
      await reg.prepare([after]);
      expect(reg.get(after), JSON.stringify(change)).not.toBe(old);
    }
    const after = { ...before, algorithms: ['ES256' as const] };
    reg.retain([after]);
    expect(() => reg.get(before)).toThrow(/not prepared/);
    // The old provider no longer fetches (its refresh was due at ~800 ms); the new one does.
    const fetchesOfNew = (): number => reg.get(after).fetches;
    const start = fetchesOfNew();
    const oldFetches = old.fetches;
    await sleep(1100);
    expect(old.fetches).toBe(oldFetches);
    expect(fetchesOfNew()).toBeGreaterThan(start);
  });

  it('stopAll stops every provider', async () => {
    const { reg } = registry();
    const config = providerConfig({ name: 'main', jwksUri: server.url, jwksCacheMaxAgeMs: 1000 });
    await reg.prepare([config]);
    const p = reg.get(config);
    reg.stopAll();
    const fetches = p.fetches;
    await sleep(1000);
    expect(p.fetches).toBe(fetches);
    expect(() => reg.get(config)).toThrow(/not prepared/);
  });
});

describe('jwksFile providers', () => {
  it('reads the file at prepare and again at every reload', async () => {
    const file = await writeJwks('reload.json', { keys: [k1.jwk] });
    const { reg, rec } = registry();
    const config = providerConfig({ jwksFile: file, algorithms: ['ES256', 'RS256'] });
    await reg.prepare([config]);
    const p = reg.get(config);
    expect(p.keys.entries.map((k) => k.kid)).toEqual(['k1']);
    await writeJwks('reload.json', { keys: [k1.jwk, k2.jwk] });
    await reg.prepare([config]);
    expect(reg.get(config)).toBe(p);
    expect(p.keys.entries.map((k) => k.kid)).toEqual(['k1', 'k2']);
    await reg.prepare([config]);
    expect(rec.fetches.map((f) => [f.result, f.detail.trigger])).toEqual([
      ['success', 'file'],
      ['success', 'file'],
      ['unchanged', 'file'],
    ]);
  });

  it('fails a reload on a broken file with an error naming it, and the running provider keeps its keys', async () => {
    const file = await writeJwks('broken.json', { keys: [k1.jwk] });
    const { reg, rec } = registry();
    const config = providerConfig({ jwksFile: file });
    await reg.prepare([config]);
    const p = reg.get(config);
    const token = await mint(k1, claims());

    const broken: [string, string | object, RegExp][] = [
      ['not JSON', '{"keys": [', /not JSON/],
      ['not a JWKS', { keys: {} }, /not a JWKS/],
      ['a key that does not import', { keys: [{ ...k1.jwk, x: 'AAAA' }] }, /key "k1": does not import for ES256/],
      ['no usable key', { keys: [hs.jwk] }, /no key usable with RS256, ES256, EdDSA/],
      ['a key without kty', { keys: [k1.jwk, { kid: 'odd' }] }, /keys\[1\]: key "odd": no "kty"/],
    ];
    for (const [label, content, message] of broken) {
      await writeJwks('broken.json', content);
      const error = await reg.prepare([config]).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error, label).toBeInstanceOf(JwksFileError);
      expect(error).toBeInstanceOf(ConfigError);
      const e = error as JwksFileError;
      expect(e.code).toBe('GW_ERR_CONFIG_INVALID');
      expect(e.files).toEqual([file]);
      expect(e.message).toContain(file);
      expect(e.message, label).toMatch(message);
      expect(e.message).toContain('jwtProviders.main');
      expect(p.keys.entries.map((k) => k.kid)).toEqual(['k1']);
      expect((await p.verify(token)).ok).toBe(true);
    }
    expect(rec.fetches.filter((f) => f.result === 'failure')).toHaveLength(broken.length);

    // A missing file too.
    const missing = providerConfig({ name: 'gone', jwksFile: join(dir, 'nope.json') });
    await expect(reg.prepare([config, missing])).rejects.toThrow(/nope\.json.*file not found/);
  });

  it('checks every file before changing any provider', async () => {
    const good = await writeJwks('good.json', { keys: [k1.jwk] });
    const other = await writeJwks('other.json', { keys: [k1.jwk] });
    const { reg } = registry();
    const a = providerConfig({ name: 'a', jwksFile: good, algorithms: ['ES256', 'RS256'] });
    const b = providerConfig({ name: 'b', jwksFile: other });
    await reg.prepare([a, b]);
    await writeJwks('good.json', { keys: [k1.jwk, k2.jwk] }); // fine on its own
    await writeJwks('other.json', 'garbage');
    await expect(reg.prepare([a, b])).rejects.toThrow(/other\.json/);
    expect(reg.get(a).keys.size).toBe(1); // not installed: the reload failed as a whole
  });

  it('accepts HS256 oct keys from a file, and refuses a secret shorter than the hash', async () => {
    const file = await writeJwks('hs.json', { keys: [hs.jwk] });
    const { reg } = registry();
    const config = providerConfig({ jwksFile: file, algorithms: ['HS256'] });
    await reg.prepare([config]);
    expect((await reg.get(config).verify(await mint(hs, claims()))).ok).toBe(true);
    await writeJwks('hs.json', { keys: [{ kty: 'oct', kid: 'short', k: Buffer.alloc(16, 7).toString('base64url') }] });
    await expect(reg.prepare([config])).rejects.toThrow(/key "short": secret of 128 bits is too short: HS256 needs 256 bits/);
  });

  it('throws for a provider it never prepared', () => {
    const { reg } = registry();
    expect(() => reg.get(providerConfig({ jwksUri: server.url }))).toThrow(/not prepared/);
  });
});
