import { describe, expect, it } from 'vitest';
import { loadGatewayConfig, loadRoutesConfig } from '../../src/config/load.js';
import { at, linesOf, writeFile, yaml } from './fixtures.js';

/** Problems other than "not supported yet": what these tests are about. */
async function semanticLines(load: Promise<unknown>): Promise<string[]> {
  return (await linesOf(load)).filter((line) => !line.endsWith('is not supported yet in this version'));
}

const POOLS = yaml`
  upstreams:
    users: { targets: [{ url: http://127.0.0.1:9001 }] }
    orders: { targets: [{ url: http://127.0.0.1:9002 }] }
`;

interface Fixture {
  readonly file: string;
  readonly text: string;
}

function fixture(name: string, text: string): Fixture {
  return { file: writeFile(name, text), text };
}

/** A routes file with the two POOLS and these routes (YAML list entries). */
function withRoutes(routes: string): Fixture {
  return fixture('routes.yaml', `${POOLS}routes:\n${routes}`);
}

/** A routes file with these upstreams (YAML map entries) and no routes. */
function withUpstreams(upstreams: string): Fixture {
  return fixture('routes.yaml', `upstreams:\n${upstreams.trimEnd().replace(/^/gm, '  ')}\nroutes: []\n`);
}

describe('references between sections', () => {
  it('a route upstream must name an existing upstream (the SPEC example)', async () => {
    const { file } = withRoutes('  - name: users-api\n    prefix: /api/users\n    upstream: userz\n');
    expect(await linesOf(loadRoutesConfig(file))).toEqual([`${file}:7:15: routes[0].upstream: unknown upstream "userz"`]);
  });

  it('split and mirror upstreams must exist', async () => {
    const { file, text } = withRoutes(
      yaml`
        - name: canary
          prefix: /
          split: [{ upstream: users, weight: 90 }, { upstream: users-v2, weight: 10 }]
          mirror: { upstream: shadow }
      `,
    );
    expect(await semanticLines(loadRoutesConfig(file))).toEqual([
      `${file}:${at(text, 'users-v2')}: routes[0].split[1].upstream: unknown upstream "users-v2"`,
      `${file}:${at(text, 'shadow')}: routes[0].mirror.upstream: unknown upstream "shadow"`,
    ]);
  });

  it('auth.jwt must name a provider and rateLimit entries must name policies', async () => {
    const { file, text } = withRoutes(
      yaml`
        - name: a
          prefix: /
          upstream: users
          auth: { jwt: main }
          rateLimit: [per-ip]
      `,
    );
    expect(await semanticLines(loadRoutesConfig(file))).toEqual([
      `${file}:${at(text, 'main')}: routes[0].auth.jwt: unknown JWT provider "main"`,
      `${file}:${at(text, 'per-ip')}: routes[0].rateLimit[0]: unknown rate limit "per-ip"`,
    ]);
  });
});

describe('routes', () => {
  it('names are unique', async () => {
    const { file } = withRoutes('  - { name: a, prefix: /a, upstream: users }\n  - { name: a, prefix: /b, upstream: users }\n');
    expect(await linesOf(loadRoutesConfig(file))).toEqual([`${file}:6:13: routes[1].name: duplicate route name "a" (also routes[0])`]);
  });

  it('set exactly one of upstream and split', async () => {
    const { file } = withRoutes(
      '  - { name: neither, prefix: /a }\n  - { name: both, prefix: /b, upstream: users, split: [{ upstream: users, weight: 1 }] }\n',
    );
    expect(await semanticLines(loadRoutesConfig(file))).toEqual([
      `${file}:5:5: routes[0]: set exactly one of upstream and split`,
      `${file}:6:5: routes[1]: set exactly one of upstream and split`,
    ]);
  });

  it('a split needs a weight above 0', async () => {
    const { file, text } = withRoutes('  - { name: a, prefix: /, split: [{ upstream: users, weight: 0 }] }\n');
    expect(await semanticLines(loadRoutesConfig(file))).toEqual([`${file}:${at(text, '[{', 'split')}: routes[0].split: at least one weight must be above 0`]);
  });

  it('stripPrefix and rewritePrefix exclude each other', async () => {
    const { file, text } = withRoutes('  - { name: a, prefix: /a, upstream: users, stripPrefix: true, rewritePrefix: /b }\n');
    expect(await linesOf(loadRoutesConfig(file))).toEqual([
      `${file}:${at(text, '/b')}: routes[0].rewritePrefix: stripPrefix and rewritePrefix cannot both be set`,
    ]);
    const fine = withRoutes('  - { name: a, prefix: /a, upstream: users, stripPrefix: false, rewritePrefix: /b/ }\n');
    expect((await loadRoutesConfig(fine.file)).routes[0]).toMatchObject({ stripPrefix: false, rewritePrefix: '/b' });
  });

  describe('prefix', () => {
    it.each([
      ['/api/users/', '/api/users'],
      ['/', '/'],
      ['/api/%75sers', '/api/users'],
      ['/caf%c3%a9', '/caf%C3%A9'],
      ['/a-b_c.d~e', '/a-b_c.d~e'],
    ])('%s is stored as %s, the form normalised request paths take', async (prefix, stored) => {
      const { file } = withRoutes(`  - { name: a, prefix: "${prefix}", upstream: users }\n`);
      expect((await loadRoutesConfig(file)).routes[0]?.prefix).toBe(stored);
    });

    it.each([
      ['/api?x=1', 'must not contain ? or # (a prefix matches the path only)'],
      ['/api#x', 'must not contain ? or # (a prefix matches the path only)'],
      ['/api/../admin', 'must not contain . or .. segments (request paths have them resolved)'],
      ['/api/./x', 'must not contain . or .. segments (request paths have them resolved)'],
      ['/api/%2e%2e/x', 'must not contain . or .. segments (request paths have them resolved)'],
      ['/api//x', 'must not contain // (request paths have repeated slashes merged)'],
      ['/a%2fb', 'must not contain an encoded / or \\ (%2f): requests containing one are refused'],
      ['/a%5Cb', 'must not contain an encoded / or \\ (%5C): requests containing one are refused'],
      ['/a%25b', 'must not contain %25: double-encoded requests are refused'],
      ['/a%zz', 'has invalid percent-encoding "%zz"'],
      ['/a b', 'must not contain spaces, control characters or \\'],
      ['api', 'expected a path starting with /'],
    ])('%s is refused: %s', async (prefix, message) => {
      const { file } = withRoutes(`  - { name: a, prefix: "${prefix}", upstream: users }\n`);
      expect(await linesOf(loadRoutesConfig(file))).toEqual([`${file}:5:24: routes[0].prefix: ${message}`]);
    });
  });

  describe('host', () => {
    it.each([
      ['API.Example.COM', 'api.example.com'],
      ['api.example.com.', 'api.example.com'],
      ['*.Example.com', '*.example.com'],
      ['10.0.0.1', '10.0.0.1'],
    ])('%s is stored as %s', async (host, stored) => {
      const { file } = withRoutes(`  - { name: a, prefix: /, host: "${host}", upstream: users }\n`);
      expect((await loadRoutesConfig(file)).routes[0]?.host).toBe(stored);
    });

    it.each([
      ['a.*.com', 'may use * only as the whole leftmost label, as in *.example.com'],
      ['*example.com', 'may use * only as the whole leftmost label, as in *.example.com'],
      ['api.example.com:8080', 'must be a host name without port (hosts are compared without port)'],
      ['bad host', '"bad host" is not a valid host name'],
      ['-a.com', '"-a.com" is not a valid host name'],
    ])('%s is refused', async (host, message) => {
      const { file } = withRoutes(`  - { name: a, prefix: /, host: "${host}", upstream: users }\n`);
      expect(await linesOf(loadRoutesConfig(file))).toEqual([`${file}:5:33: routes[0].host: ${message}`]);
    });
  });

  it('methods are upper-cased, deduplicated and must be standard', async () => {
    const ok = withRoutes('  - { name: a, prefix: /, methods: [get, Post, GET], upstream: users }\n');
    expect((await loadRoutesConfig(ok.file)).routes[0]?.methods).toEqual(['GET', 'POST']);
    const { file, text } = withRoutes('  - { name: a, prefix: /, methods: [GET, FETCH, PTCH], upstream: users }\n');
    const expected = 'expected one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH';
    expect(await linesOf(loadRoutesConfig(file))).toEqual([
      `${file}:${at(text, 'FETCH')}: routes[0].methods[1]: unknown method "FETCH": ${expected}`,
      `${file}:${at(text, 'PTCH')}: routes[0].methods[2]: unknown method "PTCH": ${expected} (did you mean "PATCH"?)`,
    ]);
  });

  it('match: header names are case-insensitive, each condition has one kind, regexes compile', async () => {
    const { file, text } = withRoutes(
      yaml`
        - name: a
          prefix: /
          upstream: users
          match:
            headers:
              X-Canary: { present: true, regex: v2 }
              x-canary: "1"
              x-version: { regex: "(" }
      `,
    );
    const lines = await semanticLines(loadRoutesConfig(file));
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe(`${file}:${at(text, '{ present')}: routes[0].match.headers.X-Canary: set exactly one of present and regex`);
    expect(lines[1]).toBe(`${file}:${at(text, 'x-canary')}: routes[0].match.headers.x-canary: header x-canary is listed twice (header names are case-insensitive)`);
    expect(lines[2]?.startsWith(`${file}:${at(text, '"("')}: routes[0].match.headers.x-version.regex: invalid regular expression: `)).toBe(true);
  });

  it('cors: origins are origins, and credentials are not allowed for *', async () => {
    const { file, text } = withRoutes(
      '  - { name: a, prefix: /, upstream: users, cors: { origins: ["*", "https://app.example.com/x"], credentials: true } }\n',
    );
    expect(await semanticLines(loadRoutesConfig(file))).toEqual([
      `${file}:${at(text, '"https://app')}: routes[0].cors.origins[1]: "https://app.example.com/x" is not an origin: expected * or scheme://host[:port] with no path, like https://app.example.com`,
      `${file}:${at(text, 'true')}: routes[0].cors.credentials: credentials cannot be allowed for origin *`,
    ]);
  });
});

describe('upstreams', () => {
  it('set exactly one of targets and discovery', async () => {
    const { file, text } = withUpstreams(
      yaml`
        both:
          targets: [{ url: http://a }]
          discovery: { dns: { name: a.svc, port: 80 } }
        neither: {}
      `,
    );
    expect(await semanticLines(loadRoutesConfig(file))).toEqual([
      `${file}:${at(text, 'targets')}: upstreams.both: set exactly one of targets and discovery`,
      `${file}:${at(text, '{}')}: upstreams.neither: set exactly one of targets and discovery`,
    ]);
  });

  it('targets become canonical origins with the default port filled in', async () => {
    const { file } = withUpstreams('u:\n  targets: [{ url: http://Users.Internal }, { url: "https://10.0.0.1" }, { url: "http://[::1]:9001/" }]\n');
    expect((await loadRoutesConfig(file)).upstreams[0]?.targets).toEqual([
      { url: 'http://users.internal:80', weight: 1 },
      { url: 'https://10.0.0.1:443', weight: 1 },
      { url: 'http://[::1]:9001', weight: 1 },
    ]);
  });

  it.each([
    ['http://10.0.0.1:8080/api', 'must not have a path ("/api"): a target is an origin; change paths with the route\'s rewritePrefix'],
    ['ftp://10.0.0.1', 'must be an http:// or https:// URL, not ftp://'],
    ['10.0.0.1:8080', '"10.0.0.1:8080" is not a URL: expected http://host:port'],
    ['http://', '"http://" is not a URL: expected http://host:port'],
    ['http://user:pw@10.0.0.1', 'must not contain credentials'],
    ['http://10.0.0.1/?a=1', 'must not have a query or fragment'],
    ['http://10.0.0.1#x', 'must not have a query or fragment'],
  ])('target %s is refused', async (url, message) => {
    const { file } = withUpstreams(`u:\n  targets:\n    - url: "${url}"\n`);
    expect(await linesOf(loadRoutesConfig(file))).toEqual([`${file}:4:14: upstreams.u.targets[0].url: ${message}`]);
  });

  it('the same endpoint twice in a pool is an error', async () => {
    const { file } = withUpstreams('u:\n  targets:\n    - url: http://10.0.0.1\n    - url: http://10.0.0.1:80/\n');
    expect(await linesOf(loadRoutesConfig(file))).toEqual([
      `${file}:5:14: upstreams.u.targets[1].url: duplicate target http://10.0.0.1:80 (also upstreams.u.targets[0])`,
    ]);
  });

  it('consistent-hash requires hashOn, and hashOn requires consistent-hash', async () => {
    const { file, text } = withUpstreams('a: { targets: [{ url: http://a }], balancer: consistent-hash }\nb: { targets: [{ url: http://b }], hashOn: ip }\n');
    expect(await semanticLines(loadRoutesConfig(file))).toEqual([
      `${file}:${at(text, 'consistent-hash')}: upstreams.a.balancer: the consistent-hash balancer requires hashOn`,
      `${file}:${at(text, 'ip }')}: upstreams.b.hashOn: hashOn is only used by the consistent-hash balancer, not least-request`,
    ]);
  });

  it('slowStart is refused with consistent-hash, whose keys it would move', async () => {
    const { file, text } = withUpstreams('a: { targets: [{ url: http://a }], balancer: consistent-hash, hashOn: ip, slowStart: {} }\n');
    expect(await semanticLines(loadRoutesConfig(file))).toEqual([
      `${file}:${at(text, '{} }')}: upstreams.a.slowStart: slowStart does not apply to the consistent-hash balancer (it would move keys)`,
    ]);
  });

  it('rateLimits: keys parsed once (header names lower-cased), burst defaults to limit, and a rate finer than a microsecond is refused', async () => {
    const ok = fixture('routes.yaml', yaml`
      rateLimits:
        tenant: { key: [header:X-Tenant, route, jwt:sub], limit: 50, window: 10s }
        bursty: { key: ip, limit: 20, window: 1s, burst: 40 }
      routes: []
    `);
    expect((await loadRoutesConfig(ok.file)).rateLimits).toEqual([
      { name: 'tenant', key: [{ kind: 'header', name: 'x-tenant' }, { kind: 'route' }, { kind: 'jwt', claim: 'sub' }], limit: 50, windowMs: 10_000, burst: 50 },
      { name: 'bursty', key: [{ kind: 'ip' }], limit: 20, windowMs: 1000, burst: 40 },
    ]);
    const { file, text } = fixture('routes.yaml', 'rateLimits:\n  flood: { key: ip, limit: 5000, window: 1ms }\nroutes: []\n');
    expect(await linesOf(loadRoutesConfig(file))).toEqual([
      `${file}:${at(text, '5000')}: rateLimits.flood.limit: more than one request per microsecond (5000 per 1ms) cannot be enforced; use a longer window`,
    ]);
  });

  it('slowStart: {} takes Envoy\'s defaults', async () => {
    const { file } = withUpstreams('a: { targets: [{ url: http://a }], slowStart: { window: 1m } }\n');
    expect((await loadRoutesConfig(file)).upstreams[0]?.slowStart).toEqual({ windowMs: 60_000, aggression: 1, minWeightPercent: 10 });
  });

  it('baseEjectionTime must not exceed maxEjectionTime', async () => {
    const { file, text } = withUpstreams('u:\n  targets: [{ url: http://a }]\n  outlierDetection: { baseEjectionTime: 10m, maxEjectionTime: 5m }\n');
    expect(await linesOf(loadRoutesConfig(file))).toEqual([
      `${file}:${at(text, '10m')}: upstreams.u.outlierDetection.baseEjectionTime: must not exceed maxEjectionTime (5m)`,
    ]);
  });

  it('discovery: minRefresh <= maxRefresh, port rules by record type, server address', async () => {
    const { file, text } = withUpstreams(
      yaml`
        a:
          discovery: { dns: { name: a.svc }, minRefresh: 2m }
        b:
          discovery: { dns: { name: _http._tcp.b.svc, type: SRV, port: 80 }, server: "dns.local" }
        c:
          discovery: { dns: { name: c.svc, port: 80 }, server: "10.0.0.2" }
      `,
    );
    expect(await semanticLines(loadRoutesConfig(file))).toEqual([
      `${file}:${at(text, '{ name: a.svc }')}: upstreams.a.discovery.dns: missing required field "port" (type A records carry no port)`,
      `${file}:${at(text, '2m')}: upstreams.a.discovery.minRefresh: must not exceed maxRefresh (60s)`,
      `${file}:${at(text, '80', '_http')}: upstreams.b.discovery.dns.port: port is not used with type SRV: the records carry it`,
      `${file}:${at(text, '"dns.local"')}: upstreams.b.discovery.server: "dns.local" is not a DNS server address: expected an IP and optional port, like 127.0.0.1:5353 or [::1]:53`,
    ]);
  });
});

describe('jwt providers', () => {
  it('set exactly one of jwksUri and jwksFile; jwksUri is http(s); one header per claim', async () => {
    const { file, text } = fixture(
      'routes.yaml',
      yaml`
        jwtProviders:
          both: { issuer: x, jwksUri: "https://id/jwks", jwksFile: jwks.json }
          neither: { issuer: x }
          bad: { issuer: x, jwksUri: "ftp://id/jwks", forwardClaims: { sub: X-User, uid: x-user } }
        routes: []
      `,
    );
    expect(await semanticLines(loadRoutesConfig(file))).toEqual([
      `${file}:${at(text, '{ issuer')}: jwtProviders.both: set exactly one of jwksUri and jwksFile`,
      `${file}:${at(text, '{ issuer', 'neither')}: jwtProviders.neither: set exactly one of jwksUri and jwksFile`,
      `${file}:${at(text, '"ftp')}: jwtProviders.bad.jwksUri: "ftp://id/jwks" is not an http:// or https:// URL`,
      `${file}:${at(text, 'x-user')}: jwtProviders.bad.forwardClaims.uid: header x-user already carries claim sub`,
    ]);
  });
});

describe('gateway.yaml', () => {
  it('listener names and ports are unique, the admin port included; port 0 may repeat', async () => {
    const file = writeFile(
      'gateway.yaml',
      yaml`
        listeners:
          - { name: a, port: 8080 }
          - { name: a, port: 8080 }
          - { name: b, port: 9901 }
          - { name: c, port: 0 }
          - { name: d, port: 0 }
      `,
    );
    expect(await linesOf(loadGatewayConfig(file))).toEqual([
      `${file}:3:13: listeners[1].name: duplicate listener name "a" (also listeners[0])`,
      `${file}:3:22: listeners[1].port: port 8080 is already used by listeners[0]`,
      `${file}:4:22: listeners[2].port: port 9901 is already used by the admin listener`,
    ]);
  });

  it('addresses are IP literals', async () => {
    const { file, text } = fixture('gateway.yaml', 'listeners:\n  - { name: a, port: 80, address: localhost }\nadmin: { address: "::1" }\n');
    expect(await linesOf(loadGatewayConfig(file))).toEqual([
      `${file}:${at(text, 'localhost')}: listeners[0].address: "localhost" is not an IP address: expected one like 0.0.0.0, 127.0.0.1 or ::`,
    ]);
  });

  it('trustedProxies are IP addresses or CIDR blocks', async () => {
    const { file, text } = fixture(
      'gateway.yaml',
      'listeners: [{ name: a, port: 80 }]\ntrustedProxies: [10.0.0.0/8, "::1", "fd00::/8", 192.168.1.7, 10.0.0.0/33, proxy.local, "1.2.3.4/8/1"]\n',
    );
    expect(await linesOf(loadGatewayConfig(file))).toEqual([
      `${file}:${at(text, '10.0.0.0/33')}: trustedProxies[4]: "10.0.0.0/33": the prefix length must be 0 to 32`,
      `${file}:${at(text, 'proxy.local')}: trustedProxies[5]: "proxy.local" is not an IP address or CIDR block (like 10.0.0.0/8 or ::1)`,
      `${file}:${at(text, '"1.2.3.4/8/1"')}: trustedProxies[6]: "1.2.3.4/8/1" is not an IP address or CIDR block (like 10.0.0.0/8 or ::1)`,
    ]);
  });

  it('redirectToHttps needs a TLS listener to redirect to', async () => {
    const { file, text } = fixture('gateway.yaml', 'listeners:\n  - { name: a, port: 80, redirectToHttps: true }\n');
    expect(await linesOf(loadGatewayConfig(file))).toEqual([
      `${file}:${at(text, 'true')}: listeners[0].redirectToHttps: needs a listener with tls to redirect to`,
    ]);
  });

  it('a TLS listener cannot redirect to itself', async () => {
    const { file, text } = fixture(
      'gateway.yaml',
      'listeners:\n  - { name: a, port: 443, redirectToHttps: true, tls: { certificates: [{ cert: a.crt, key: a.key }] } }\n',
    );
    expect(await semanticLines(loadGatewayConfig(file))).toEqual([
      `${file}:${at(text, 'true')}: listeners[0].redirectToHttps: a TLS listener cannot redirect to HTTPS: it would redirect to itself`,
    ]);
  });

  it('headersTimeout must not exceed requestTimeout (Node refuses to start otherwise), unless requestTimeout is off', async () => {
    const { file, text } = fixture('gateway.yaml', 'listeners: [{ name: a, port: 80 }]\nlimits: { headersTimeout: 2m }\n');
    expect(await linesOf(loadGatewayConfig(file))).toEqual([`${file}:${at(text, '2m')}: limits.headersTimeout: must not exceed limits.requestTimeout (60s)`]);
    const off = writeFile('gateway.yaml', 'listeners: [{ name: a, port: 80 }]\nlimits: { headersTimeout: 2m, requestTimeout: 0s }\n');
    expect((await loadGatewayConfig(off)).limits).toMatchObject({ headersTimeoutMs: 120_000, requestTimeoutMs: 0 });
  });

  it('redis: exactly one of url and cluster, with redis:// URLs', async () => {
    const { file, text } = fixture('gateway.yaml', 'listeners: [{ name: a, port: 80 }]\nredis: { url: "http://r:6379", cluster: ["redis://a:7000"] }\n');
    expect(await semanticLines(loadGatewayConfig(file))).toEqual([
      `${file}:${at(text, '{ url')}: redis: set exactly one of url and cluster`,
      `${file}:${at(text, '"http')}: redis.url: "http://r:6379" is not a Redis URL: expected redis://host:port or rediss://host:port`,
    ]);
  });
});
