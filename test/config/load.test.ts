import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ADMIN_DEFAULTS,
  GATEWAY_DEFAULTS,
  LIMITS_DEFAULTS,
  LISTENER_DEFAULTS,
  LOG_DEFAULTS,
  OUTLIER_DETECTION_DEFAULTS,
  RETRY_DEFAULTS,
  ROUTE_DEFAULTS,
  TARGET_DEFAULTS,
  UPSTREAM_DEFAULTS,
  UPSTREAM_TIMEOUT_DEFAULTS,
} from '../../src/config/defaults.js';
import { loadConfig, loadGatewayConfig, loadRoutesConfig } from '../../src/config/load.js';
import { displayPath } from '../../src/config/source.js';
import { parseDuration, parsePercent, parseSize } from '../../src/config/units.js';
import { issuesOf, linesOf, MINIMAL_GATEWAY, MINIMAL_ROUTES, writeFile, writeFiles } from './fixtures.js';

describe('defaults', () => {
  it('fills every gateway.yaml default from defaults.ts', async () => {
    const config = await loadGatewayConfig(writeFile('gateway.yaml', MINIMAL_GATEWAY));
    expect(config.listeners).toEqual([
      { name: 'public', address: LISTENER_DEFAULTS.address, port: 8080, redirectToHttps: LISTENER_DEFAULTS.redirectToHttps, tls: null },
    ]);
    expect(config.admin).toEqual({ address: ADMIN_DEFAULTS.address, port: ADMIN_DEFAULTS.port });
    expect(config.redis).toBeNull();
    expect(config.workers).toBe(GATEWAY_DEFAULTS.workers);
    expect(config.trustedProxies).toEqual(GATEWAY_DEFAULTS.trustedProxies);
    expect(config.limits).toEqual({
      maxHeaderSize: parseSize(LIMITS_DEFAULTS.maxHeaderSize),
      maxHeaderCount: LIMITS_DEFAULTS.maxHeaderCount,
      bodyLimit: parseSize(LIMITS_DEFAULTS.bodyLimit),
      headersTimeoutMs: parseDuration(LIMITS_DEFAULTS.headersTimeout),
      requestTimeoutMs: parseDuration(LIMITS_DEFAULTS.requestTimeout),
      keepAliveTimeoutMs: parseDuration(LIMITS_DEFAULTS.keepAliveTimeout),
      shutdownTimeoutMs: parseDuration(LIMITS_DEFAULTS.shutdownTimeout),
    });
    expect(config.log).toEqual({ level: LOG_DEFAULTS.level, accessLog: LOG_DEFAULTS.accessLog, accessLogSamplePercent: 100 });
    expect(config.pidFile).toBeNull();
  });

  it('uses the values the SPEC gives (spot check in plain numbers)', async () => {
    const config = await loadGatewayConfig(writeFile('gateway.yaml', MINIMAL_GATEWAY));
    expect(config.limits).toEqual({
      maxHeaderSize: 16 * 1024,
      maxHeaderCount: 100,
      bodyLimit: 10 * 1024 * 1024,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 60_000,
      keepAliveTimeoutMs: 65_000,
      shutdownTimeoutMs: 30_000,
    });
    expect(config.admin).toEqual({ address: '127.0.0.1', port: 9901 });
  });

  it('fills every upstream and route default from defaults.ts', async () => {
    const routes = await loadRoutesConfig(writeFile('routes.yaml', MINIMAL_ROUTES));
    expect(routes.upstreams).toEqual([
      {
        name: 'users',
        targets: [{ url: 'http://127.0.0.1:9001', weight: TARGET_DEFAULTS.weight }],
        discovery: null,
        balancer: UPSTREAM_DEFAULTS.balancer,
        hashOn: null,
        outlierDetection: {
          consecutive5xx: OUTLIER_DETECTION_DEFAULTS.consecutive5xx,
          consecutiveGatewayFailures: OUTLIER_DETECTION_DEFAULTS.consecutiveGatewayFailures,
          intervalMs: parseDuration(OUTLIER_DETECTION_DEFAULTS.interval),
          baseEjectionTimeMs: parseDuration(OUTLIER_DETECTION_DEFAULTS.baseEjectionTime),
          maxEjectionTimeMs: parseDuration(OUTLIER_DETECTION_DEFAULTS.maxEjectionTime),
          maxEjectionPercent: parsePercent(OUTLIER_DETECTION_DEFAULTS.maxEjectionPercent),
          successRate: null,
        },
        healthCheck: null,
        panicThresholdPercent: parsePercent(UPSTREAM_DEFAULTS.panicThreshold),
        timeouts: {
          connectMs: parseDuration(UPSTREAM_TIMEOUT_DEFAULTS.connect),
          requestMs: parseDuration(UPSTREAM_TIMEOUT_DEFAULTS.request),
        },
        retries: { attempts: RETRY_DEFAULTS.attempts, on: [...RETRY_DEFAULTS.on], budgetPercent: parsePercent(RETRY_DEFAULTS.budget), perTryTimeoutMs: null },
        maxConnectionsPerEndpoint: UPSTREAM_DEFAULTS.maxConnectionsPerEndpoint,
        maxPendingRequests: UPSTREAM_DEFAULTS.maxPendingRequests,
        slowStart: null,
      },
    ]);
    expect(routes.jwtProviders).toEqual([]);
    expect(routes.rateLimits).toEqual([]);
    expect(routes.routes).toEqual([
      {
        name: 'users',
        index: 0,
        prefix: '/',
        host: ROUTE_DEFAULTS.host,
        methods: ROUTE_DEFAULTS.methods,
        match: null,
        upstream: 'users',
        split: null,
        stripPrefix: ROUTE_DEFAULTS.stripPrefix,
        rewritePrefix: ROUTE_DEFAULTS.rewritePrefix,
        auth: null,
        rateLimit: ROUTE_DEFAULTS.rateLimit,
        websocket: ROUTE_DEFAULTS.websocket,
        timeouts: { requestMs: null },
        mirror: null,
        headers: { request: null, response: null },
        cors: null,
        fault: null,
      },
    ]);
  });

  it('keeps the defaults the SPEC states for outlier detection, panic threshold and retries', () => {
    expect(OUTLIER_DETECTION_DEFAULTS).toEqual({
      consecutive5xx: 5,
      consecutiveGatewayFailures: 5,
      interval: '10s',
      baseEjectionTime: '30s',
      maxEjectionTime: '300s',
      maxEjectionPercent: 50,
      successRate: null,
    });
    expect(UPSTREAM_DEFAULTS.panicThreshold).toBe('50%');
    expect(UPSTREAM_DEFAULTS.balancer).toBe('least-request');
    expect(RETRY_DEFAULTS).toEqual({ attempts: 1, on: ['connect-failure'], budget: '20%' });
  });
});

describe('outlierDetection', () => {
  it('successRate: {} turns success-rate detection on with Envoy\'s defaults', async () => {
    const file = writeFile('routes.yaml', MINIMAL_ROUTES.replace('targets:', 'outlierDetection: { successRate: { requestVolume: 20 } }\n    targets:'));
    expect((await loadRoutesConfig(file)).upstreams[0]?.outlierDetection?.successRate).toEqual({ minimumHosts: 5, requestVolume: 20, stdevFactor: 1.9 });
  });

  it('off disables it (a string in YAML 1.2)', async () => {
    const file = writeFile('routes.yaml', MINIMAL_ROUTES.replace('targets:', 'outlierDetection: off\n    targets:'));
    expect((await loadRoutesConfig(file)).upstreams[0]?.outlierDetection).toBeNull();
  });

  it('an object overrides single fields and keeps the other defaults', async () => {
    const file = writeFile('routes.yaml', MINIMAL_ROUTES.replace('targets:', 'outlierDetection: { consecutive5xx: 3, maxEjectionPercent: 25% }\n    targets:'));
    expect((await loadRoutesConfig(file)).upstreams[0]?.outlierDetection).toEqual({
      consecutive5xx: 3,
      consecutiveGatewayFailures: 5,
      intervalMs: 10_000,
      baseEjectionTimeMs: 30_000,
      maxEjectionTimeMs: 300_000,
      maxEjectionPercent: 25,
      successRate: null,
    });
  });
});

describe('values as written', () => {
  it('reads retry conditions written as numbers or strings as one set', async () => {
    const file = writeFile('routes.yaml', MINIMAL_ROUTES.replace('targets:', 'retries: { attempts: 2, on: [connect-failure, 502, "502", 5xx], budget: 10 }\n    targets:'));
    expect((await loadRoutesConfig(file)).upstreams[0]?.retries).toEqual({ attempts: 2, on: ['connect-failure', '502', '5xx'], budgetPercent: 10, perTryTimeoutMs: null });
  });

  it('applies route timeouts over nothing else (null means the upstream decides)', async () => {
    const file = writeFile('routes.yaml', MINIMAL_ROUTES.replace('upstream: users', 'upstream: users\n    timeouts: { request: 5s }'));
    expect((await loadRoutesConfig(file)).routes[0]?.timeouts).toEqual({ requestMs: 5000 });
  });

  it('accepts JSON (it is YAML 1.2), including a $schema hint', async () => {
    const gateway = writeFile(
      'gateway.json',
      JSON.stringify({ $schema: './schema/gateway.schema.json', listeners: [{ name: 'public', port: 8080 }], limits: { bodyLimit: '1mb' } }, null, 2),
    );
    expect((await loadGatewayConfig(gateway)).limits.bodyLimit).toBe(1024 * 1024);
    const routes = writeFile('routes.json', '{\n  "routes": [\n    { "name": "a", "prefix": "/", "upstream": "nope" }\n  ]\n}\n');
    expect(await linesOf(loadRoutesConfig(routes))).toEqual([`${routes}:3:47: routes[0].upstream: unknown upstream "nope"`]);
  });
});

describe('relative paths', () => {
  it('are resolved against the folder of the file that names them', async () => {
    const folder = writeFiles({
      'etc/gateway.yaml': 'listeners: [{ name: public, port: 8080 }]\nroutesFile: ../routes/main.yaml\npidFile: run/gateway.pid\n',
      'routes/main.yaml': `${MINIMAL_ROUTES}`,
    });
    const gateway = await loadGatewayConfig(join(folder, 'etc/gateway.yaml'));
    expect(gateway.file).toBe(join(folder, 'etc/gateway.yaml'));
    expect(gateway.routesFile).toBe(join(folder, 'routes/main.yaml'));
    expect(gateway.pidFile).toBe(join(folder, 'etc/run/gateway.pid'));
    expect((await loadRoutesConfig(gateway.routesFile)).file).toBe(join(folder, 'routes/main.yaml'));
  });

  it('resolves TLS files relative to gateway.yaml, absolute paths as they are', async () => {
    const folder = writeFiles({
      'gateway.yaml':
        'listeners:\n  - { name: tls, port: 8443, tls: { certificates: [{ cert: tls/a.crt, key: /abs/a.key }], clientCa: tls/ca.pem } }\n',
    });
    const gateway = await loadGatewayConfig(join(folder, 'gateway.yaml'));
    expect(gateway.listeners[0]?.tls).toMatchObject({
      certificates: [{ cert: join(folder, 'tls/a.crt'), key: '/abs/a.key' }],
      clientCa: join(folder, 'tls/ca.pem'),
    });
  });

  it('routesFile defaults to routes.yaml next to gateway.yaml', async () => {
    const folder = writeFiles({ 'gateway.yaml': MINIMAL_GATEWAY, 'routes.yaml': MINIMAL_ROUTES });
    const { gateway, routes } = await loadConfig(join(folder, 'gateway.yaml'));
    expect(gateway.routesFile).toBe(join(folder, 'routes.yaml'));
    expect(routes.routes.map((r) => r.name)).toEqual(['users']);
  });
});

describe('files', () => {
  it('a missing file is an issue without a position', async () => {
    const file = join(writeFiles({}), 'nope.yaml');
    expect(await issuesOf(loadGatewayConfig(file))).toEqual([
      { file, line: 0, col: 0, path: '', message: 'cannot read file: no such file or directory' },
    ]);
    expect(await linesOf(loadGatewayConfig(file))).toEqual([`${file}: cannot read file: no such file or directory`]);
  });

  it('shows files under the current directory relative to it, others absolute', () => {
    expect(displayPath('/srv/gw/config/routes.yaml', '/srv/gw')).toBe('config/routes.yaml');
    expect(displayPath('/etc/gw/routes.yaml', '/srv/gw')).toBe('/etc/gw/routes.yaml');
    expect(displayPath('/srv/gw-other/routes.yaml', '/srv/gw')).toBe('/srv/gw-other/routes.yaml');
    expect(displayPath(join(process.cwd(), 'config/gateway.yaml'))).toBe(join('config', 'gateway.yaml'));
  });

  it('loadConfig reports both files in one go when gateway.yaml names its routes file', async () => {
    const folder = writeFiles({
      'gateway.yaml': 'listeners: [{ name: a, port: 80, address: localhost }]\n',
      'routes.yaml': 'routes: [{ name: a, prefix: /, upstream: nope }]\n',
    });
    const lines = await linesOf(loadConfig(join(folder, 'gateway.yaml')));
    expect(lines).toEqual([
      `${join(folder, 'gateway.yaml')}:1:43: listeners[0].address: "localhost" is not an IP address: expected one like 0.0.0.0, 127.0.0.1 or ::`,
      `${join(folder, 'routes.yaml')}:1:42: routes[0].upstream: unknown upstream "nope"`,
    ]);
  });

  it('loadConfig stops at gateway.yaml when it cannot tell which routes file is meant', async () => {
    const folder = writeFiles({ 'gateway.yaml': 'listeners: []\nroutesFile: 7\n', 'routes.yaml': 'routes: 1\n' });
    const issues = await issuesOf(loadConfig(join(folder, 'gateway.yaml')));
    expect(issues.map((i) => i.file)).toEqual([join(folder, 'gateway.yaml'), join(folder, 'gateway.yaml')]);
  });
});

describe('the compiled config', () => {
  it('is deeply frozen', async () => {
    const { gateway, routes } = await loadConfig(writeFiles({ 'gateway.yaml': MINIMAL_GATEWAY, 'routes.yaml': MINIMAL_ROUTES }) + '/gateway.yaml');
    const everything: unknown[] = [gateway, routes];
    const seen = new Set<unknown>();
    while (everything.length > 0) {
      const value = everything.pop();
      if (value === null || typeof value !== 'object' || seen.has(value)) continue;
      seen.add(value);
      expect(Object.isFrozen(value)).toBe(true);
      everything.push(...Object.values(value));
    }
    expect(seen.size).toBeGreaterThan(20);
    expect(() => {
      (routes.routes[0] as { prefix: string }).prefix = '/x';
    }).toThrow(TypeError);
    expect(() => (routes.routes as unknown[]).push({})).toThrow(TypeError);
  });

  it('does not share the frozen defaults with anything an operator could change', async () => {
    const a = await loadGatewayConfig(writeFile('gateway.yaml', MINIMAL_GATEWAY));
    const b = await loadGatewayConfig(writeFile('gateway.yaml', `${MINIMAL_GATEWAY}trustedProxies: [10.0.0.0/8]\n`));
    expect(a.trustedProxies).toEqual([]);
    expect(b.trustedProxies).toEqual(['10.0.0.0/8']);
  });
});
