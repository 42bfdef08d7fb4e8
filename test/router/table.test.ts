import { describe, expect, it } from 'vitest';
import type { RouteConfig } from '../../src/config/types.js';
import { GatewayError } from '../../src/errors.js';
import { HEADER_REGEX_INPUT_LIMIT, MAX_HEADER_REGEX_LENGTH, RouteTable, parseQuery } from '../../src/router/table.js';
import type { RouteRequest } from '../../src/router/types.js';
import { buildTable, exact, outcome, present, regex, request, routeConfig, when } from './fixtures.js';
import type { RouteSpec, TestRoute } from './fixtures.js';

function configErrorOf(specs: RouteSpec[]): GatewayError {
  try {
    buildTable(specs);
  } catch (err) {
    if (err instanceof GatewayError) return err;
    throw err;
  }
  throw new Error('expected the table build to fail');
}

describe('RouteTable: prefixes', () => {
  const table = buildTable([
    { name: 'root', prefix: '/' },
    { name: 'api', prefix: '/api' },
    { name: 'users', prefix: '/api/users' },
  ]);

  it.each([
    ['/api/users', 'users'],
    ['/api/users/', 'users'],
    ['/api/users/42', 'users'],
    ['/api/users/42/orders', 'users'],
    ['/api/usersx', 'api'],
    ['/api/user', 'api'],
    ['/api', 'api'],
    ['/api/', 'api'],
    ['/apix', 'root'],
    ['/', 'root'],
    ['/other/path', 'root'],
  ])('%s -> %s (longest prefix, at a segment boundary)', (path, name) => {
    expect(outcome(table, request({ path }))).toBe(name);
  });

  it('does not match a prefix inside a segment', () => {
    const t = buildTable([{ name: 'users', prefix: '/api/users' }]);
    expect(outcome(t, request({ path: '/api/usersx' }))).toBe('not_found');
    expect(outcome(t, request({ path: '/api/users-admin/1' }))).toBe('not_found');
    expect(outcome(t, request({ path: '/api' }))).toBe('not_found');
  });

  it('treats a configured trailing slash as the same prefix', () => {
    const t = buildTable([{ name: 'users', prefix: '/api/users/' }]);
    expect(outcome(t, request({ path: '/api/users' }))).toBe('users');
    expect(outcome(t, request({ path: '/api/users/1' }))).toBe('users');
  });

  it('matches paths longer than every prefix', () => {
    const t = buildTable([{ name: 'a', prefix: '/a' }]);
    expect(outcome(t, request({ path: '/a/' + 'x/'.repeat(500) }))).toBe('a');
  });
});

describe('RouteTable: hosts', () => {
  it('prefers an exact host over a wildcard over none, even when the less specific has a longer prefix', () => {
    const t = buildTable([
      { name: 'any-long', prefix: '/api/users/admin' },
      { name: 'wild-long', host: '*.example.com', prefix: '/api/users' },
      { name: 'exact-short', host: 'api.example.com', prefix: '/' },
    ]);
    expect(outcome(t, request({ host: 'api.example.com', path: '/api/users/admin/1' }))).toBe('exact-short');
    expect(outcome(t, request({ host: 'www.example.com', path: '/api/users/admin/1' }))).toBe('wild-long');
    expect(outcome(t, request({ host: 'other.org', path: '/api/users/admin/1' }))).toBe('any-long');
    expect(outcome(t, request({ host: null, path: '/api/users/admin/1' }))).toBe('any-long');
  });

  it('prefers the longer wildcard suffix', () => {
    const t = buildTable([
      { name: 'short', host: '*.example.com', prefix: '/api' },
      { name: 'long', host: '*.eu.example.com', prefix: '/' },
    ]);
    expect(outcome(t, request({ host: 'a.eu.example.com', path: '/api/x' }))).toBe('long');
    expect(outcome(t, request({ host: 'a.us.example.com', path: '/api/x' }))).toBe('short');
    // `eu.example.com` is not under `*.eu.example.com`, but is under `*.example.com`
    expect(outcome(t, request({ host: 'eu.example.com', path: '/api/x' }))).toBe('short');
  });

  it('matches a wildcard at any depth but not the bare domain', () => {
    const t = buildTable([{ name: 'wild', host: '*.example.com' }]);
    expect(outcome(t, request({ host: 'a.example.com' }))).toBe('wild');
    expect(outcome(t, request({ host: 'a.b.example.com' }))).toBe('wild');
    expect(outcome(t, request({ host: 'example.com' }))).toBe('not_found');
    expect(outcome(t, request({ host: 'badexample.com' }))).toBe('not_found');
    expect(outcome(t, request({ host: null }))).toBe('not_found');
  });

  it('falls through to a less specific host when the more specific one has no route for the path', () => {
    const t = buildTable([
      { name: 'exact-users', host: 'api.example.com', prefix: '/users' },
      { name: 'any-orders', prefix: '/orders' },
    ]);
    expect(outcome(t, request({ host: 'api.example.com', path: '/orders/1' }))).toBe('any-orders');
    expect(outcome(t, request({ host: 'api.example.com', path: '/users/1' }))).toBe('exact-users');
  });

  it('normalises configured hosts: case, trailing dot', () => {
    const t = buildTable([
      { name: 'exact', host: 'API.Example.COM.' },
      { name: 'wild', host: '*.Example.ORG' },
    ]);
    expect(outcome(t, request({ host: 'api.example.com' }))).toBe('exact');
    expect(outcome(t, request({ host: 'x.example.org' }))).toBe('wild');
  });

  it('routes an IPv6 literal host', () => {
    const t = buildTable([{ name: 'v6', host: '[::1]' }]);
    expect(outcome(t, request({ host: '[::1]' }))).toBe('v6');
  });
});

describe('RouteTable: match conditions', () => {
  it('prefers more match conditions, each header or query entry counting one', () => {
    const t = buildTable([
      { name: 'plain', prefix: '/api' },
      { name: 'one', prefix: '/api', match: when({ headers: { 'x-canary': exact('true') } }) },
      { name: 'two', prefix: '/api', match: when({ headers: { 'x-canary': exact('true') }, query: { beta: '1' } }) },
    ]);
    const canary = { 'x-canary': 'true' };
    expect(outcome(t, request({ path: '/api', headers: canary, query: 'beta=1' }))).toBe('two');
    expect(outcome(t, request({ path: '/api', headers: canary }))).toBe('one');
    expect(outcome(t, request({ path: '/api' }))).toBe('plain');
  });

  it('drops a route whose conditions fail, falling to the next one', () => {
    const t = buildTable([
      { name: 'canary', prefix: '/api/users', match: when({ headers: { 'x-canary': exact('true') } }) },
      { name: 'api', prefix: '/api' },
    ]);
    expect(outcome(t, request({ path: '/api/users/1', headers: { 'x-canary': 'true' } }))).toBe('canary');
    expect(outcome(t, request({ path: '/api/users/1', headers: { 'x-canary': 'false' } }))).toBe('api');
    expect(outcome(t, request({ path: '/api/users/1' }))).toBe('api');
  });

  it('is 404 when the only route for the path has failing conditions', () => {
    const t = buildTable([{ name: 'canary', prefix: '/api', match: when({ headers: { 'x-canary': present } }) }]);
    expect(outcome(t, request({ path: '/api' }))).toBe('not_found');
  });

  it('prefers a longer prefix over more conditions', () => {
    const t = buildTable([
      { name: 'conditions', prefix: '/api', match: when({ headers: { a: present, b: present } }) },
      { name: 'longer', prefix: '/api/users' },
    ]);
    expect(outcome(t, request({ path: '/api/users', headers: { a: '1', b: '2' } }))).toBe('longer');
  });

  it('breaks the last tie by file order', () => {
    const t = buildTable([
      { name: 'first', prefix: '/api', match: when({ headers: { a: present } }) },
      { name: 'second', prefix: '/api', match: when({ query: { q: '1' } }) },
      { name: 'third', prefix: '/api' },
    ]);
    expect(outcome(t, request({ path: '/api', headers: { a: '' }, query: 'q=1' }))).toBe('first');
    expect(outcome(t, request({ path: '/api', query: 'q=1' }))).toBe('second');
  });

  it('uses the config index, not array order, as file order', () => {
    const t = new RouteTable<TestRoute>([
      { config: routeConfig({ name: 'later', index: 5, prefix: '/api' }) },
      { config: routeConfig({ name: 'earlier', index: 2, prefix: '/api' }) },
    ]);
    expect(outcome(t, request({ path: '/api' }))).toBe('earlier');
    expect(t.routes.map((r) => r.config.name)).toEqual(['earlier', 'later']);
  });

  describe('headers', () => {
    it('exact compares the value, case-sensitively', () => {
      const t = buildTable([{ name: 'r', match: when({ headers: { 'x-env': exact('Prod') } }) }]);
      expect(outcome(t, request({ headers: { 'x-env': 'Prod' } }))).toBe('r');
      expect(outcome(t, request({ headers: { 'x-env': 'prod' } }))).toBe('not_found');
      expect(outcome(t, request({ headers: { 'x-env': 'Prod2' } }))).toBe('not_found');
    });

    it('exact compares a repeated header as Node joins it, so an extra copy never makes it match', () => {
      const t = buildTable([{ name: 'r', match: when({ headers: { 'x-canary': exact('true') } }) }]);
      expect(outcome(t, request({ headers: { 'x-canary': 'true, true' } }))).toBe('not_found');
      expect(outcome(t, request({ headers: { 'x-canary': 'true, false' } }))).toBe('not_found');
      expect(outcome(t, request({ headers: { 'x-canary': ['true'] } }))).toBe('r');
    });

    it('present holds for any value, even empty, and fails when absent', () => {
      const t = buildTable([{ name: 'r', match: when({ headers: { 'x-debug': present } }) }]);
      expect(outcome(t, request({ headers: { 'x-debug': '' } }))).toBe('r');
      expect(outcome(t, request({ headers: { 'x-debug': 'anything' } }))).toBe('r');
      expect(outcome(t, request({ headers: {} }))).toBe('not_found');
    });

    it('compares header names case-insensitively (the config may spell them in any case)', () => {
      const t = buildTable([{ name: 'r', match: when({ headers: { 'X-Canary': exact('1') } }) }]);
      expect(outcome(t, request({ headers: { 'x-canary': '1' } }))).toBe('r');
    });

    it('does not see Object.prototype members as headers', () => {
      const t = buildTable([
        { name: 'proto', prefix: '/a', match: when({ headers: { constructor: present } }) },
        { name: 'other', prefix: '/' },
      ]);
      expect(outcome(t, request({ path: '/a' }))).toBe('other');
      expect(outcome(t, request({ path: '/a', headers: { constructor: 'x' } }))).toBe('proto');
    });

    it('regex searches the value (anchors are the pattern\'s business)', () => {
      const t = buildTable([{ name: 'r', match: when({ headers: { 'x-version': regex('^v2') } }) }]);
      expect(outcome(t, request({ headers: { 'x-version': 'v2.1' } }))).toBe('r');
      expect(outcome(t, request({ headers: { 'x-version': 'v1, v2' } }))).toBe('not_found');
      expect(outcome(t, request({ headers: {} }))).toBe('not_found');
      const unanchored = buildTable([{ name: 'r', match: when({ headers: { 'user-agent': regex('Mobile') } }) }]);
      expect(outcome(unanchored, request({ headers: { 'user-agent': 'Mozilla/5.0 (iPhone) Mobile/15E148' } }))).toBe('r');
    });

    it(`regex sees only the first ${HEADER_REGEX_INPUT_LIMIT} characters of a value`, () => {
      const t = buildTable([{ name: 'r', match: when({ headers: { 'x-long': regex('END') } }) }]);
      const inside = 'a'.repeat(HEADER_REGEX_INPUT_LIMIT - 3) + 'END';
      const beyond = 'a'.repeat(HEADER_REGEX_INPUT_LIMIT) + 'END';
      expect(outcome(t, request({ headers: { 'x-long': inside } }))).toBe('r');
      expect(outcome(t, request({ headers: { 'x-long': beyond } }))).toBe('not_found');
    });
  });

  describe('query', () => {
    const t = buildTable([
      { name: 'beta', prefix: '/api', match: when({ query: { beta: '1' } }) },
      { name: 'api', prefix: '/api' },
    ]);

    it.each([
      ['beta=1', 'beta'],
      ['x=2&beta=1&y', 'beta'],
      ['beta=%31', 'beta'],
      ['beta=1&beta=2', 'beta'],
      ['beta=2&beta=1', 'api'],
      ['beta=10', 'api'],
      ['beta', 'api'],
      ['Beta=1', 'api'],
      ['', 'api'],
    ])('?%s -> %s', (query, name) => {
      expect(outcome(t, request({ path: '/api', query }))).toBe(name);
    });

    it('decodes + as a space and percent-escapes in names and values', () => {
      const q = buildTable([{ name: 'r', match: when({ query: { 'a b': 'c d' } }) }]);
      expect(outcome(q, request({ query: 'a+b=c%20d' }))).toBe('r');
      expect(outcome(q, request({ query: 'a%20b=c+d' }))).toBe('r');
    });

    it('matches an empty expected value for ?flag and ?flag=', () => {
      const q = buildTable([{ name: 'r', match: when({ query: { flag: '' } }) }]);
      expect(outcome(q, request({ query: 'flag' }))).toBe('r');
      expect(outcome(q, request({ query: 'flag=' }))).toBe('r');
      expect(outcome(q, request({ query: 'other' }))).toBe('not_found');
    });
  });
});

describe('RouteTable: methods', () => {
  const t = buildTable([
    { name: 'read', prefix: '/api/users', methods: ['GET'] },
    { name: 'write', prefix: '/api/users', methods: ['POST', 'PUT'] },
    { name: 'delete-admin', prefix: '/api/users', methods: ['DELETE'], match: when({ headers: { 'x-admin': present } }) },
  ]);

  it('routes by method', () => {
    expect(outcome(t, request({ method: 'GET', path: '/api/users/1' }))).toBe('read');
    expect(outcome(t, request({ method: 'PUT', path: '/api/users/1' }))).toBe('write');
  });

  it('serves HEAD on a GET route', () => {
    expect(outcome(t, request({ method: 'HEAD', path: '/api/users/1' }))).toBe('read');
  });

  it('answers 405 with the sorted union of the methods, HEAD included with GET', () => {
    const r = t.match(request({ method: 'PATCH', path: '/api/users/1' }));
    expect(r).toEqual({ kind: 'method_not_allowed', allow: ['GET', 'HEAD', 'POST', 'PUT'] });
  });

  it('counts in Allow only the routes whose match conditions hold', () => {
    const r = t.match(request({ method: 'PATCH', path: '/api/users/1', headers: { 'x-admin': '1' } }));
    expect(r).toEqual({ kind: 'method_not_allowed', allow: ['DELETE', 'GET', 'HEAD', 'POST', 'PUT'] });
  });

  it('is 404, not 405, when no route covers host and path', () => {
    expect(outcome(t, request({ method: 'PATCH', path: '/other' }))).toBe('not_found');
  });

  it('accepts every method on a route without methods', () => {
    const any = buildTable([{ name: 'any', prefix: '/' }]);
    for (const method of ['GET', 'HEAD', 'POST', 'DELETE', 'OPTIONS', 'PROPFIND']) {
      expect(outcome(any, request({ method }))).toBe('any');
    }
  });

  it('lets a less specific route that allows the method win over a more specific one that does not', () => {
    const mixed = buildTable([
      { name: 'exact-get', host: 'api.example.com', prefix: '/api/users', methods: ['GET'] },
      { name: 'any-post', prefix: '/api', methods: ['POST'] },
    ]);
    expect(outcome(mixed, request({ method: 'POST', host: 'api.example.com', path: '/api/users' }))).toBe('any-post');
    expect(mixed.match(request({ method: 'DELETE', host: 'api.example.com', path: '/api/users' }))).toEqual({
      kind: 'method_not_allowed',
      allow: ['GET', 'HEAD', 'POST'],
    });
  });

  it('upper-cases configured methods', () => {
    const lower = buildTable([{ name: 'r', methods: ['get'] }]);
    expect(outcome(lower, request({ method: 'GET' }))).toBe('r');
  });
});

describe('RouteTable: build', () => {
  it.each<[string, RouteSpec, string]>([
    [
      'invalid regex',
      { name: 'r', match: when({ headers: { 'x-a': regex('(') } }) },
      'routes[0].match.headers.x-a.regex: invalid regular expression',
    ],
    [
      'regex too long',
      { name: 'r', match: when({ headers: { 'x-a': regex('a'.repeat(MAX_HEADER_REGEX_LENGTH + 1)) } }) },
      `longer than ${MAX_HEADER_REGEX_LENGTH}`,
    ],
    [
      'bad header name',
      { name: 'r', match: when({ headers: { 'x a': present } }) },
      'routes[0].match.headers.x a: not a header name',
    ],
    ['empty methods', { name: 'r', methods: [] }, 'routes[0].methods: empty list'],
    ['bad method', { name: 'r', methods: ['GE T'] }, 'routes[0].methods'],
    ['host with port', { name: 'r', host: 'api.example.com:8080' }, 'routes[0].host: must not include a port'],
    ['bad wildcard', { name: 'r', host: '*.*.example.com' }, 'routes[0].host'],
    ['bare wildcard', { name: 'r', host: '*' }, 'routes[0].host'],
    ['invalid prefix', { name: 'r', prefix: '/a/%2f' }, 'routes[0].prefix'],
    ['empty query name', { name: 'r', match: when({ query: { '': 'x' } }) }, 'routes[0].match.query'],
  ])('refuses %s with GW_ERR_CONFIG_INVALID', (_label, spec, message) => {
    const err = configErrorOf([spec]);
    expect(err.code).toBe('GW_ERR_CONFIG_INVALID');
    expect(err.message).toContain(message);
  });

  it('accepts a regex exactly at the length cap', () => {
    const atCap = regex('a'.repeat(MAX_HEADER_REGEX_LENGTH));
    expect(() => buildTable([{ name: 'r', match: when({ headers: { a: atCap } }) }])).not.toThrow();
  });

  it('refuses two routes with the same index', () => {
    const err = configErrorOf([
      { name: 'a', index: 1 },
      { name: 'b', index: 1 },
    ]);
    expect(err.code).toBe('GW_ERR_CONFIG_INVALID');
  });

  it('routes nothing when empty', () => {
    expect(outcome(buildTable([]), request())).toBe('not_found');
  });

  it('returns one prebuilt result object per route (the hot path allocates no result)', () => {
    const t = buildTable([{ name: 'a', prefix: '/a' }]);
    const r = request({ path: '/a/b' });
    expect(t.match(r)).toBe(t.match(r));
    expect(Object.isFrozen(t.match(r))).toBe(true);
    expect(t.match(request({ path: '/x' }))).toBe(t.match(request({ path: '/y' })));
  });
});

describe('parseQuery', () => {
  it('keeps the first value of a repeated parameter and decodes', () => {
    const p = parseQuery('a=1&b&a=2&&c=%E2%82%AC&d=%zz&e=x+y');
    expect([...p]).toEqual([
      ['a', '1'],
      ['b', ''],
      ['c', '\u20ac'],
      ['d', '%zz'],
      ['e', 'x y'],
    ]);
  });
});

describe('RouteTable.explain', () => {
  const t = buildTable([
    { name: 'root', prefix: '/' },
    { name: 'users', host: 'api.example.com', prefix: '/api/users', methods: ['GET', 'POST'] },
    {
      name: 'users-canary',
      host: 'api.example.com',
      prefix: '/api/users',
      methods: ['GET'],
      match: when({ headers: { 'x-canary': exact('true') }, query: { beta: '1' } }),
    },
    { name: 'admin', host: 'admin.example.com', prefix: '/admin', methods: ['GET'], match: when({ headers: { 'x-admin': present } }) },
  ]);

  it('explains a match: every route in file order, and the deciding rule', () => {
    const e = t.explain(
      request({ host: 'api.example.com', path: '/api/users/1', headers: { 'x-canary': 'true' }, query: 'beta=1' }),
    );
    expect(e.winner).toBe('users-canary');
    expect(e.result.kind).toBe('matched');
    expect(e.reason).toBe('"users-canary" wins on match conditions: 2 against "users"\'s 0');
    expect(e.routes.map((r) => [r.name, r.matched])).toEqual([
      ['root', true],
      ['users', true],
      ['users-canary', true],
      ['admin', false],
    ]);
    const canary = e.routes[2];
    expect(canary?.host).toEqual({ rule: 'api.example.com', specificity: 'exact', held: true });
    expect(canary?.prefix).toEqual({ rule: '/api/users', held: true });
    expect(canary?.methods).toEqual({ rule: ['GET'], held: true });
    expect(canary?.conditions).toEqual([
      { source: 'header', name: 'x-canary', text: 'header x-canary = "true"', actual: 'true', held: true },
      { source: 'query', name: 'beta', text: 'query beta = "1"', actual: '1', held: true },
    ]);
    expect(e.routes[3]?.host.held).toBe(false);
  });

  it('names host specificity, prefix length and file order when they decide', () => {
    expect(t.explain(request({ host: 'api.example.com', path: '/api/users' })).reason).toBe(
      '"users" wins on host specificity: exact host "api.example.com" beats "root"\'s no host rule',
    );
    const p = buildTable([
      { name: 'short', prefix: '/a' },
      { name: 'long', prefix: '/a/b' },
      { name: 'long-again', prefix: '/a/b' },
    ]);
    expect(p.explain(request({ path: '/a/b/c' })).reason).toBe('"long" wins on file order: index 1 comes before "long-again"\'s 2');
    expect(p.explain(request({ path: '/a/x' })).reason).toBe('"short" is the only route whose host, prefix, methods and match conditions all hold');
    const w = buildTable([
      { name: 'short', host: '*.example.com' },
      { name: 'long', host: '*.eu.example.com' },
      { name: 'prefix', prefix: '/x' },
    ]);
    expect(w.explain(request({ host: 'a.eu.example.com', path: '/x' })).reason).toBe(
      '"long" wins on host specificity: wildcard "*.eu.example.com" is longer than "short"\'s "*.example.com"',
    );
  });

  it('explains a 404, naming routes whose conditions failed', () => {
    const admin = buildTable([
      { name: 'admin', host: 'admin.example.com', prefix: '/admin', match: when({ headers: { 'x-admin': present } }) },
    ]);
    const miss = admin.explain(request({ host: 'admin.example.com', path: '/admin/x' }));
    expect(miss.result).toEqual({ kind: 'not_found' });
    expect(miss.winner).toBeNull();
    expect(miss.reason).toBe(
      'no route matches host "admin.example.com" and path "/admin/x"; "admin" matched host and path but its match conditions failed',
    );
    expect(miss.routes[0]?.conditions).toEqual([
      { source: 'header', name: 'x-admin', text: 'header x-admin present', actual: null, held: false },
    ]);
    expect(miss.routes[0]?.candidate).toBe(false);
    const plain = admin.explain(request({ host: 'other.example.com', path: '/' }));
    expect(plain.reason).toBe('no route matches host "other.example.com" and path "/"');
    expect(plain.routes[0]?.host.held).toBe(false);
  });

  it('explains a 405 with its Allow list', () => {
    const noRoot = buildTable([
      { name: 'users', prefix: '/api/users', methods: ['GET', 'POST'] },
      { name: 'users-delete', prefix: '/api/users', methods: ['DELETE'] },
    ]);
    const e = noRoot.explain(request({ method: 'PATCH', path: '/api/users/1' }));
    expect(e.result).toEqual({ kind: 'method_not_allowed', allow: ['DELETE', 'GET', 'HEAD', 'POST'] });
    expect(e.winner).toBeNull();
    expect(e.reason).toBe(
      'routes "users", "users-delete" match host (none) and path "/api/users/1" but not method PATCH; Allow: DELETE, GET, HEAD, POST',
    );
    expect(e.routes.map((r) => [r.candidate, r.methods.held])).toEqual([
      [true, false],
      [true, false],
    ]);
  });

  it('shows a regex condition with its pattern', () => {
    const r = buildTable([{ name: 'v2', match: when({ headers: { 'x-version': regex('^v2') } }) }]);
    const e = r.explain(request({ headers: { 'x-version': 'v1' } }));
    expect(e.routes[0]?.conditions[0]).toEqual({
      source: 'header',
      name: 'x-version',
      text: 'header x-version ~ /^v2/',
      actual: 'v1',
      held: false,
    });
  });
});

// Route choice checked against a direct transcription of SPEC §3.2 over many generated tables:
// the table's bucketed, pre-sorted search must reach exactly the decision of the plain rules.
describe('RouteTable: agrees with the SPEC rules on generated tables', () => {
  function rng(seed: number): () => number {
    let s = seed >>> 0;
    return () => {
      s = (s + 0x6d2b79f5) >>> 0;
      let t = s;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;

  const HOSTS = [null, null, 'a.example.com', 'b.example.com', '*.example.com', '*.a.example.com', '*.b.example.com'];
  const PREFIXES = ['/', '/api', '/api/users', '/api/usersx', '/x'];
  const METHODS: Array<string[] | null> = [null, null, ['GET'], ['POST'], ['GET', 'POST'], ['DELETE']];
  const REQ_HOSTS = [null, 'a.example.com', 'b.a.example.com', 'example.com', 'c.b.example.com', 'b.example.com', 'z.org'];
  const REQ_PATHS = ['/', '/api', '/api/', '/api/users', '/api/users/42', '/api/usersx', '/apix', '/x/y'];
  const REQ_METHODS = ['GET', 'HEAD', 'POST', 'DELETE', 'PUT'];

  function genMatch(r: () => number): RouteConfig['match'] {
    if (r() < 0.5) return null;
    const headers: Record<string, ReturnType<typeof exact>> = {};
    const query: Record<string, string> = {};
    if (r() < 0.5) headers['x-a'] = exact('1');
    if (r() < 0.5) headers['x-b'] = present;
    if (r() < 0.3) headers['x-c'] = regex('^v2');
    if (r() < 0.5) query['q'] = '1';
    return when({ headers, query });
  }

  function reference(routes: readonly RouteConfig[], req: RouteRequest): string {
    const hostOk = (c: RouteConfig): boolean =>
      c.host === null ||
      (req.host !== null && (c.host.startsWith('*.') ? req.host.endsWith(c.host.slice(1)) : req.host === c.host));
    const prefixOk = (c: RouteConfig): boolean =>
      c.prefix === '/' || req.path === c.prefix || req.path.startsWith(c.prefix + '/');
    const conditionsOk = (c: RouteConfig): boolean => {
      if (c.match === null) return true;
      for (const [name, m] of Object.entries(c.match.headers)) {
        const v = req.headers[name];
        if (typeof v !== 'string') return false;
        if (m.kind === 'exact' && v !== m.value) return false;
        if (m.kind === 'regex' && !new RegExp(m.pattern).test(v)) return false;
      }
      const params = new URLSearchParams(req.query);
      for (const [name, value] of Object.entries(c.match.query)) if (params.get(name) !== value) return false;
      return true;
    };
    const methods = (c: RouteConfig): string[] | null =>
      c.methods === null ? null : c.methods.includes('GET') ? [...c.methods, 'HEAD'] : [...c.methods];
    const count = (c: RouteConfig): number =>
      c.match === null ? 0 : Object.keys(c.match.headers).length + Object.keys(c.match.query).length;
    const hostRank = (c: RouteConfig): number => (c.host === null ? 1000 : c.host.startsWith('*.') ? 500 - c.host.length : 0);

    const candidates = routes.filter((c) => hostOk(c) && prefixOk(c) && conditionsOk(c));
    const matching = candidates.filter((c) => {
      const m = methods(c);
      return m === null || m.includes(req.method);
    });
    if (matching.length > 0) {
      matching.sort(
        (a, b) => hostRank(a) - hostRank(b) || b.prefix.length - a.prefix.length || count(b) - count(a) || a.index - b.index,
      );
      return (matching[0] as RouteConfig).name;
    }
    if (candidates.length > 0) {
      const allow = new Set<string>();
      for (const c of candidates) for (const m of methods(c) ?? []) allow.add(m);
      return `405 ${[...allow].sort().join(',')}`;
    }
    return 'not_found';
  }

  it('on 400 random tables x 40 requests', () => {
    const r = rng(20261122);
    let matched = 0;
    let notAllowed = 0;
    for (let n = 0; n < 400; n++) {
      const specs: RouteSpec[] = [];
      const size = 1 + Math.floor(r() * 8);
      for (let i = 0; i < size; i++) {
        specs.push({
          name: `r${i}`,
          host: pick(r, HOSTS),
          prefix: pick(r, PREFIXES),
          methods: pick(r, METHODS),
          match: genMatch(r),
        });
      }
      const table = buildTable(specs);
      const configs = table.routes.map((x) => x.config);
      for (let k = 0; k < 40; k++) {
        const headers: Record<string, string> = {};
        if (r() < 0.5) headers['x-a'] = pick(r, ['1', '2']);
        if (r() < 0.5) headers['x-b'] = '';
        if (r() < 0.5) headers['x-c'] = pick(r, ['v2', 'v1', 'xv2']);
        const req = request({
          method: pick(r, REQ_METHODS),
          host: pick(r, REQ_HOSTS),
          path: pick(r, REQ_PATHS),
          query: pick(r, ['', 'q=1', 'q=2', 'a=1&q=1', 'q=2&q=1']),
          headers,
        });
        const got = table.match(req);
        const actual =
          got.kind === 'matched'
            ? got.route.config.name
            : got.kind === 'method_not_allowed'
              ? `405 ${got.allow.join(',')}`
              : 'not_found';
        const expected = reference(configs, req);
        if (actual !== expected) {
          throw new Error(`table ${JSON.stringify(specs)}\nrequest ${JSON.stringify(req)}\ngot ${actual}, expected ${expected}`);
        }
        expect(outcome(table, req)).toBe(got.kind === 'matched' ? got.route.config.name : got.kind);
        if (got.kind === 'matched') matched++;
        else if (got.kind === 'method_not_allowed') notAllowed++;
      }
    }
    // The generator must exercise every outcome, or the comparison proves little.
    expect(matched).toBeGreaterThan(1000);
    expect(notAllowed).toBeGreaterThan(100);
  });
});
