import { describe, expect, it } from 'vitest';
import { expandEnv } from '../../src/config/env.js';
import { loadGatewayConfig, loadRoutesConfig } from '../../src/config/load.js';
import { linesOf, MINIMAL_ROUTES, writeFile, yaml } from './fixtures.js';

describe('expandEnv', () => {
  const env = { HOST: 'api.example.com', EMPTY: '', PORT: '8080' };

  it.each([
    ['plain text', 'plain text'],
    ['${HOST}', 'api.example.com'],
    ['https://${HOST}:${PORT}/x', 'https://api.example.com:8080/x'],
    ['${MISSING:-fallback}', 'fallback'],
    ['${EMPTY:-fallback}', 'fallback'],
    ['${HOST:-fallback}', 'api.example.com'],
    ['${MISSING:-}', ''],
    ['${EMPTY}', ''],
    ['$${HOST}', '${HOST}'],
    ['cost: $5 {x}', 'cost: $5 {x}'],
    ['${MISSING:-a:b-c}', 'a:b-c'],
  ])('expands %j to %j', (text, value) => {
    expect(expandEnv(text, env)).toMatchObject({ ok: true, value });
  });

  it('reports an unset variable without a default, at its ${', () => {
    expect(expandEnv('x-${NOPE}', env)).toEqual({
      ok: false,
      problems: [{ index: 2, message: 'environment variable NOPE is not set (write ${NOPE:-default} to give a default)' }],
    });
  });

  it('reports malformed references', () => {
    expect(expandEnv('${1X}', env)).toMatchObject({ ok: false, problems: [{ message: 'invalid variable reference "${1X}": expected ${NAME} or ${NAME:-default}' }] });
    expect(expandEnv('${HOST', env)).toMatchObject({ ok: false, problems: [{ index: 0, message: 'unterminated ${ (write $${ for a literal ${)' }] });
    expect(expandEnv('${A-b}', env)).toMatchObject({ ok: false });
  });

  it('never re-expands what a variable contains', () => {
    expect(expandEnv('${X}', { X: '${HOST}' })).toMatchObject({ ok: true, value: '${HOST}' });
  });
});

describe('environment interpolation in files', () => {
  it('applies to every string value and keeps the value types YAML would give', async () => {
    const file = writeFile(
      'gateway.yaml',
      yaml`
        listeners:
          - name: \${LISTENER_NAME}
            address: \${BIND:-0.0.0.0}
            port: \${PORT}
        admin:
          port: \${ADMIN_PORT:-9901}
        log:
          level: "\${LEVEL:-warn}"
          accessLog: \${ACCESS_LOG:-false}
        pidFile: \${PID_FILE:-}
      `,
    );
    const config = await loadGatewayConfig(file, { LISTENER_NAME: 'edge', PORT: '8081' });
    expect(config.listeners[0]).toMatchObject({ name: 'edge', address: '0.0.0.0', port: 8081 });
    expect(config.admin.port).toBe(9901);
    expect(config.log).toEqual({ level: 'warn', accessLog: false, accessLogSamplePercent: 100 });
    expect(config.pidFile).toBeNull();
  });

  it('keeps quoted values strings, so a quoted number is a type error', async () => {
    const file = writeFile('gateway.yaml', 'listeners:\n  - { name: a, port: "${PORT}" }\n');
    expect(await linesOf(loadGatewayConfig(file, { PORT: '80' }))).toEqual([`${file}:2:22: listeners[0].port: expected a whole number, got the string "80"`]);
  });

  it('reports an unset variable at its position, and not the schema complaint it would cause', async () => {
    const file = writeFile(
      'gateway.yaml',
      yaml`
        listeners:
          - name: public
            port: 8080
            address: \${BIND_ADDRESS}
        routesFile: routes-\${STAGE}.yaml
      `,
    );
    expect(await linesOf(loadGatewayConfig(file, {}))).toEqual([
      `${file}:4:14: listeners[0].address: environment variable BIND_ADDRESS is not set (write \${BIND_ADDRESS:-default} to give a default)`,
      `${file}:5:20: routesFile: environment variable STAGE is not set (write \${STAGE:-default} to give a default)`,
    ]);
  });

  it('turns $${ into a literal ${ and leaves map keys alone', async () => {
    const file = writeFile(
      'routes.yaml',
      yaml`
        upstreams:
          users:
            targets: [{ url: "http://\${UPSTREAM_HOST}:9001" }]
        routes:
          - name: literal
            prefix: /$\${x}
            upstream: users
      `,
    );
    const routes = await loadRoutesConfig(file, { UPSTREAM_HOST: '10.1.2.3' });
    expect(routes.upstreams[0]?.targets?.[0]?.url).toBe('http://10.1.2.3:9001');
    expect(routes.routes[0]?.prefix).toBe('/${x}');
  });

  it('uses the process environment by default', async () => {
    process.env['GW_TEST_ROUTE_NAME'] = 'from-process-env';
    try {
      const file = writeFile('routes.yaml', MINIMAL_ROUTES.replace('name: users', 'name: ${GW_TEST_ROUTE_NAME}'));
      expect((await loadRoutesConfig(file)).routes[0]?.name).toBe('from-process-env');
    } finally {
      delete process.env['GW_TEST_ROUTE_NAME'];
    }
  });
});
