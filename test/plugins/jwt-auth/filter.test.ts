import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JwtProviderConfig, RouteAuthConfig } from '../../../src/config/types.js';
import { GatewayError } from '../../../src/errors.js';
import type { FilterContext } from '../../../src/filters/filter.js';
import {
  bearerToken,
  createJwtAuthFilter,
  type JwtAuthFilter,
  type JwtProvider,
  JwtProviderRegistry,
  verifiedClaims,
} from '../../../plugins/jwt-auth/index.js';
import { makeKey, mint, nowS, type TestKey } from '../../helpers/jwks.js';
import { context, ISSUER, providerConfig, type Recorded, recorder, RequestSource } from './support.js';

// The filter as the core runs it: real requests (headers as a client sent them), the provider from
// a registry, the error and headers the core would send.

const MISSING = 'Bearer realm="gateway"';
const INVALID = 'Bearer realm="gateway", error="invalid_token"';
const FORBIDDEN = 'Bearer realm="gateway", error="insufficient_scope"';

let requests: RequestSource;
let dir: string;
let key: TestKey;
let other: TestKey;
let registry: JwtProviderRegistry;
let provider: JwtProvider;

const FORWARD = { sub: 'x-user-id', scope: 'x-user-scope', tenant: 'x-tenant', level: 'x-level', admin: 'x-admin', org: 'x-org', name: 'x-name', roles: 'x-roles', gone: 'x-gone' };

beforeAll(async () => {
  requests = await RequestSource.start();
  dir = await mkdtemp(join(tmpdir(), 'jwt-filter-'));
  [key, other] = await Promise.all([makeKey('ES256', 'k1'), makeKey('ES256', 'k1')]);
  const file = join(dir, 'jwks.json');
  await writeFile(file, JSON.stringify({ keys: [key.jwk] }));
  registry = new JwtProviderRegistry(recorder().events);
  const config: JwtProviderConfig = providerConfig({ jwksFile: file, forwardClaims: FORWARD });
  await registry.prepare([config]);
  provider = registry.get(config);
});

afterAll(async () => {
  registry.stopAll();
  await requests.close();
  await rm(dir, { recursive: true, force: true });
});

const claims = (extra: JWTPayload = {}): JWTPayload => ({ iss: ISSUER, aud: 'api', sub: 'alice', iat: nowS(), exp: nowS() + 300, ...extra });

function filter(require: RouteAuthConfig['require'] = {}): { f: JwtAuthFilter; rec: Recorded } {
  const rec = recorder();
  return { f: createJwtAuthFilter({ jwt: 'main', require }, provider, rec.events), rec };
}

async function run(f: JwtAuthFilter, headers: readonly (readonly [string, string])[]): Promise<{ ctx: FilterContext; error: GatewayError | null }> {
  const ctx = context(await requests.request(headers));
  return { ctx, error: await f.apply(ctx) };
}

const bearer = (token: string): [string, string][] => [['Authorization', `Bearer ${token}`]];

describe('the Authorization header', () => {
  it('no header, or another scheme: 401 with a bare challenge, counted as missing', async () => {
    const { f, rec } = filter();
    for (const headers of [[], [['Authorization', 'Basic dXNlcjpwYXNz']], [['Authorization', 'Token abc']], [['Authorization', 'Bearerabc']], [['Authorization', '']]] as [string, string][][]) {
      const { ctx, error } = await run(f, headers);
      expect(error).toBeInstanceOf(GatewayError);
      expect(error).toMatchObject({ code: 'GW_ERR_AUTH_UNAUTHORIZED', status: 401, publicCode: 'unauthorized' });
      expect(ctx.responseHeaders).toEqual({ 'www-authenticate': MISSING });
      expect(ctx.upstreamHeaders).toEqual({});
    }
    expect(rec.verifications.map((v) => v.result)).toEqual(['missing', 'missing', 'missing', 'missing', 'missing']);
  });

  it('takes the scheme in any case, and one or more spaces before the token', async () => {
    const { f } = filter();
    const token = await mint(key, claims());
    for (const value of [`Bearer ${token}`, `bearer ${token}`, `BEARER ${token}`, `bEaReR  ${token}`]) {
      expect((await run(f, [['Authorization', value]])).error, value.slice(0, 10)).toBeNull();
    }
    // Header name in any case too.
    expect((await run(f, [['AUTHORIZATION', `Bearer ${token}`]])).error).toBeNull();
  });

  it('two Authorization headers are an invalid token, even if both carry the same valid one', async () => {
    const { f, rec } = filter();
    const token = await mint(key, claims());
    for (const headers of [
      [['Authorization', `Bearer ${token}`], ['Authorization', `Bearer ${token}`]],
      [['authorization', `Bearer ${token}`], ['AUTHORIZATION', 'Basic eDp5']],
      [['Authorization', 'Basic eDp5'], ['Authorization', `Bearer ${token}`]],
    ] as [string, string][][]) {
      const { ctx, error } = await run(f, headers);
      // Node keeps only the first in req.headers: the filter counted rawHeaders.
      expect(typeof ctx.req.headers.authorization).toBe('string');
      expect(error).toMatchObject({ status: 401 });
      expect(ctx.responseHeaders['www-authenticate']).toBe(INVALID);
      expect(ctx.attributes.size).toBe(0);
    }
    expect(rec.verifications.map((v) => [v.result, v.reason])).toEqual(Array(3).fill(['malformed', 'more than one Authorization header']));
  });

  it('Bearer without a token, or with more than one, is an invalid token', async () => {
    const { f, rec } = filter();
    const token = await mint(key, claims());
    for (const value of ['Bearer', 'Bearer    ', `Bearer ${token} extra`, `Bearer ${token}\tx`]) {
      const { ctx, error } = await run(f, [['Authorization', value]]);
      expect(error).toMatchObject({ status: 401 });
      expect(ctx.responseHeaders['www-authenticate']).toBe(INVALID);
    }
    expect(rec.verifications.map((v) => v.result)).toEqual(['malformed', 'malformed', 'malformed', 'malformed']);
  });

  it('bearerToken reads the raw header list', () => {
    expect(bearerToken(['Host', 'x', 'Authorization', 'Bearer abc.def.ghi'])).toBe('abc.def.ghi');
    expect(bearerToken(['Host', 'x'])).toBeNull();
    expect(bearerToken(['authorization', 'Basic x'])).toBeNull();
    expect(bearerToken(['authorization', 'Bearer a', 'Authorization', 'Bearer a'])).toEqual({ reason: 'more than one Authorization header' });
    expect(bearerToken(['authorization', 'Bearer'])).toEqual({ reason: 'Bearer without a token' });
    expect(bearerToken(['authorization', 'Bearer a b'])).toEqual({ reason: 'more than one token after Bearer' });
  });
});

describe('refusals', () => {
  it('answers every invalid token with the same 401, whatever the reason, and reports the reason', async () => {
    const { f, rec } = filter();
    const tokens = [
      await mint(key, claims({ exp: nowS() - 3600 })), // expired
      await mint(other, claims()), // invalid_signature
      await mint(key, claims({ aud: 'elsewhere' })), // invalid_claims
      await mint({ ...key, kid: 'nobody' }, claims()), // unknown_kid
      'not-a-jwt', // malformed
    ];
    const outcomes = [];
    for (const token of tokens) {
      const { ctx, error } = await run(f, bearer(token));
      outcomes.push({ status: error?.status, code: error?.code, publicCode: error?.publicCode, message: error?.message, headers: ctx.responseHeaders });
      expect(ctx.upstreamHeaders).toEqual({});
      expect(verifiedClaims(ctx)).toBeUndefined();
    }
    for (const outcome of outcomes) {
      expect(outcome).toEqual({ status: 401, code: 'GW_ERR_AUTH_UNAUTHORIZED', publicCode: 'unauthorized', message: 'authentication required', headers: { 'www-authenticate': INVALID } });
    }
    expect(rec.verifications.map((v) => v.result)).toEqual(['expired', 'invalid_signature', 'invalid_claims', 'unknown_kid', 'malformed']);
    expect(rec.verifications.every((v) => typeof v.reason === 'string' && v.reason.length > 0)).toBe(true);
  });
});

describe('on success', () => {
  it('is synchronous on a cache hit and costs no signature check', async () => {
    const { f } = filter();
    const token = await mint(key, claims({ sub: 'sync-user' }));
    const first = context(await requests.request(bearer(token)));
    const pending = f.apply(first);
    expect(pending).toBeInstanceOf(Promise);
    expect(await pending).toBeNull();
    const checks = provider.signatureChecks;
    const second = context(await requests.request(bearer(token)));
    const result = f.apply(second);
    expect(result).toBeNull(); // not a promise
    expect(provider.signatureChecks).toBe(checks);
    expect(second.attributes.get('jwt.sub')).toBe('sync-user');
  });

  it('forwards claims as upstream headers, typed as documented, and owns their names', async () => {
    const { f } = filter();
    expect(f.ownedRequestHeaders).toEqual(Object.values(FORWARD));
    const token = await mint(
      key,
      claims({
        sub: 'alice',
        scope: ['users:read', 'users:write'],
        tenant: 't-42',
        level: 3,
        admin: false,
        org: { id: 7, name: 'Acme' },
        name: 'José\nX',
        roles: ['a b', 'c'],
      }),
    );
    const { ctx, error } = await run(f, bearer(token));
    expect(error).toBeNull();
    expect(ctx.upstreamHeaders).toEqual({
      'x-user-id': 'alice',
      'x-user-scope': 'users:read users:write',
      'x-tenant': 't-42',
      'x-level': '3',
      'x-admin': 'false',
      'x-org': '{"id":7,"name":"Acme"}',
      'x-name': '"Jos\\u00e9\\nX"',
      'x-roles': '["a b","c"]',
    });
    expect(ctx.responseHeaders).toEqual({});
  });

  it('hands the subject to the access log and the claims to later filters', async () => {
    const { f } = filter();
    const token = await mint(key, claims({ sub: 'bob', plan: 'gold' }));
    const { ctx } = await run(f, bearer(token));
    expect(ctx.attributes.get('jwt.sub')).toBe('bob');
    const seen = verifiedClaims(ctx);
    expect(seen).toMatchObject({ sub: 'bob', plan: 'gold', iss: ISSUER });
    expect(Object.isFrozen(seen)).toBe(true);
    // A token without a string sub sets no subject.
    const { ctx: anonymous } = await run(f, bearer(await mint(key, claims({ sub: undefined }))));
    expect(anonymous.attributes.has('jwt.sub')).toBe(false);
    expect(verifiedClaims(anonymous)).toBeDefined();
  });

  it('refuses a route whose auth names another provider', () => {
    expect(() => createJwtAuthFilter({ jwt: 'other', require: {} }, provider, recorder().events)).toThrow(/other/);
  });
});

describe('require', () => {
  async function decide(require: RouteAuthConfig['require'], extra: JWTPayload): Promise<number | null> {
    const { f } = filter(require);
    const { error } = await run(f, bearer(await mint(key, claims({ sub: `r-${Math.random()}`, ...extra }))));
    return error === null ? null : error.status;
  }

  it('passes on equality, array membership, and a word of a space-delimited scope/scp', async () => {
    expect(await decide({ tenant: 't1' }, { tenant: 't1' })).toBeNull();
    expect(await decide({ groups: 'ops' }, { groups: ['dev', 'ops'] })).toBeNull();
    expect(await decide({ scope: 'users:read' }, { scope: 'openid users:read profile' })).toBeNull();
    expect(await decide({ scp: 'users:read' }, { scp: 'users:read' })).toBeNull();
    expect(await decide({ scp: 'users:read' }, { scp: ['users:read'] })).toBeNull();
    expect(await decide({ admin: 'true' }, { admin: true })).toBeNull();
    expect(await decide({ level: '3' }, { level: 3 })).toBeNull();
  });

  it('requires every entry of a list value, and every claim', async () => {
    expect(await decide({ scope: ['users:read', 'users:write'] }, { scope: 'users:write users:read' })).toBeNull();
    expect(await decide({ scope: ['users:read', 'users:write'] }, { scope: 'users:read' })).toBe(403);
    expect(await decide({ scope: 'users:read', tenant: 't1' }, { scope: 'users:read', tenant: 't2' })).toBe(403);
  });

  it('refuses near misses', async () => {
    expect(await decide({ scope: 'users:read' }, { scope: 'users:readwrite' })).toBe(403);
    expect(await decide({ scope: 'users:read' }, { scope: 'xusers:read' })).toBe(403);
    expect(await decide({ scope: 'users' }, { scope: 'users:read' })).toBe(403);
    expect(await decide({ role: 'admin' }, { role: 'admin user' })).toBe(403); // not a scope claim: no split
    expect(await decide({ tenant: 't1' }, {})).toBe(403);
    expect(await decide({ tenant: 't1' }, { tenant: { id: 't1' } })).toBe(403);
    expect(await decide({ tenant: 'T1' }, { tenant: 't1' })).toBe(403);
  });

  it('answers 403 with insufficient_scope, still tells the access log who it was, forwards nothing', async () => {
    const { f, rec } = filter({ scope: 'users:write' });
    const { ctx, error } = await run(f, bearer(await mint(key, claims({ sub: 'carol', scope: 'users:read' }))));
    expect(error).toMatchObject({ code: 'GW_ERR_AUTH_FORBIDDEN', status: 403, publicCode: 'forbidden' });
    expect(ctx.responseHeaders).toEqual({ 'www-authenticate': FORBIDDEN });
    expect(ctx.upstreamHeaders).toEqual({});
    expect(ctx.attributes.get('jwt.sub')).toBe('carol');
    expect(rec.verifications.map((v) => v.result)).toEqual(['ok']);
    expect(rec.denied).toEqual([{ provider: 'main', route: 'users', claim: 'scope' }]);
  });
});
