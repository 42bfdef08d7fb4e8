import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runValidate } from '../../src/cli/validate.js';
import { loadRoutesConfig } from '../../src/config/load.js';
import { configVersion } from '../../src/config/version.js';
import { MINIMAL_GATEWAY, MINIMAL_ROUTES, writeFiles, yaml } from './fixtures.js';

// `gateway validate` (SPEC §2) lives in src/cli/validate.ts; its test sits with the config tests
// because all it checks is how config problems reach the operator.

interface Run {
  readonly code: number;
  readonly stdout: string[];
  readonly stderr: string[];
}

async function validate(gatewayFile: string, env: Record<string, string> = {}): Promise<Run> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runValidate(gatewayFile, { stdout: (line) => stdout.push(line), stderr: (line) => stderr.push(line) }, env);
  return { code, stdout, stderr };
}

describe('gateway validate', () => {
  it('prints one ok line with the counts and the full version, exit 0', async () => {
    const routesText = yaml`
      upstreams:
        users: { targets: [{ url: http://127.0.0.1:9001 }] }
        orders: { targets: [{ url: http://127.0.0.1:9002 }] }
      routes:
        - { name: users, prefix: /users, upstream: users }
        - { name: orders, prefix: /orders, upstream: orders }
        - { name: all, prefix: /, upstream: users }
    `;
    const folder = writeFiles({ 'gateway.yaml': MINIMAL_GATEWAY, 'routes.yaml': routesText });
    const version = configVersion(await loadRoutesConfig(join(folder, 'routes.yaml'), {}));
    expect(version).toMatch(/^[0-9a-f]{12}$/);
    expect(await validate(join(folder, 'gateway.yaml'))).toEqual({ code: 0, stdout: [`ok: 3 routes, 2 upstreams, version ${version}`], stderr: [] });
  });

  it('says 1 route and 1 upstream in the singular', async () => {
    const folder = writeFiles({ 'gateway.yaml': MINIMAL_GATEWAY, 'routes.yaml': MINIMAL_ROUTES });
    const { stdout } = await validate(join(folder, 'gateway.yaml'));
    expect(stdout).toHaveLength(1);
    expect(stdout[0]).toMatch(/^ok: 1 route, 1 upstream, version [0-9a-f]{12}$/);
  });

  it('reports the SPEC example exactly: FILE:LINE:COL: field.path: message on stderr, exit 1', async () => {
    const folder = writeFiles({
      'gateway.yaml': MINIMAL_GATEWAY,
      'routes.yaml': yaml`
        upstreams:
          users:
            targets: [{ url: http://127.0.0.1:9001 }]
        routes:
          - name: users-api
            prefix: /api/users
            upstream: userz
      `,
    });
    expect(await validate(join(folder, 'gateway.yaml'))).toEqual({
      code: 1,
      stdout: [],
      stderr: [`${join(folder, 'routes.yaml')}:7:15: routes[0].upstream: unknown upstream "userz"`],
    });
  });

  it('prints every problem of both files, one per line', async () => {
    const folder = writeFiles({
      'gateway.yaml': 'listeners:\n  - { name: public, port: 8080 }\n  - { name: public, port: 8081 }\n',
      'routes.yaml': yaml`
        upstreams:
          users: { targets: [{ url: http://127.0.0.1:9001 }] }
        routes:
          - { name: a, prefix: /a, upstream: userz }
          - { name: b, prefix: "/b?x", upstream: users }
      `,
    });
    const { code, stdout, stderr } = await validate(join(folder, 'gateway.yaml'));
    expect(code).toBe(1);
    expect(stdout).toEqual([]);
    expect(stderr).toEqual([
      `${join(folder, 'gateway.yaml')}:3:13: listeners[1].name: duplicate listener name "public" (also listeners[0])`,
      `${join(folder, 'routes.yaml')}:4:38: routes[0].upstream: unknown upstream "userz"`,
      `${join(folder, 'routes.yaml')}:5:24: routes[1].prefix: must not contain ? or # (a prefix matches the path only)`,
    ]);
  });

  it('reports a schema problem in gateway.yaml and stops there when the routes file cannot be known', async () => {
    const folder = writeFiles({ 'gateway.yaml': `${MINIMAL_GATEWAY}limits: { bodyLimit: 10 }\n`, 'routes.yaml': MINIMAL_ROUTES });
    expect(await validate(join(folder, 'gateway.yaml'))).toEqual({
      code: 1,
      stdout: [],
      stderr: [
        `${join(folder, 'gateway.yaml')}:3:22: limits.bodyLimit: expected a size like 512b, 16kb, 10mb, 1gb (a number needs a unit: b, kb, mb or gb)`,
      ],
    });
  });

  it('reports an unreadable file without a position, exit 1', async () => {
    const missing = join(writeFiles({}), 'gateway.yaml');
    expect(await validate(missing)).toEqual({ code: 1, stdout: [], stderr: [`${missing}: cannot read file: no such file or directory`] });
  });

  it('reads environment references like the gateway would', async () => {
    const folder = writeFiles({ 'gateway.yaml': 'listeners:\n  - name: public\n    port: ${PORT}\n', 'routes.yaml': MINIMAL_ROUTES });
    expect((await validate(join(folder, 'gateway.yaml'), { PORT: '8080' })).code).toBe(0);
    expect(await validate(join(folder, 'gateway.yaml'), {})).toEqual({
      code: 1,
      stdout: [],
      stderr: [`${join(folder, 'gateway.yaml')}:3:11: listeners[0].port: environment variable PORT is not set (write \${PORT:-default} to give a default)`],
    });
  });

  it('loads the files the config names: a missing certificate and a broken jwksFile are problems, a jwksUri is not fetched', async () => {
    const gatewayText = `${MINIMAL_GATEWAY.replace('listeners:', 'listeners:\n  - { name: tls, port: 8443, tls: { certificates: [{ cert: tls/missing.crt, key: tls/missing.key }] } }')}`;
    const routesText = yaml`
      upstreams:
        users: { targets: [{ url: http://127.0.0.1:9001 }] }
      jwtProviders:
        local: { issuer: https://id.example.test/, jwksFile: jwks.json }
        remote: { issuer: https://id.example.test/, jwksUri: http://127.0.0.1:9/jwks.json }
      routes:
        - { name: users, prefix: /, upstream: users, auth: { jwt: local } }
    `;
    const folder = writeFiles({ 'gateway.yaml': gatewayText, 'routes.yaml': routesText, 'jwks.json': '{"keys": [' });
    const run = await validate(join(folder, 'gateway.yaml'));
    expect(run.code).toBe(1);
    expect(run.stdout).toEqual([]);
    expect(run.stderr.some((line) => line.includes('missing.crt'))).toBe(true);
    expect(run.stderr.some((line) => line.includes('jwks.json'))).toBe(true);
    expect(run.stderr.some((line) => line.includes('127.0.0.1:9'))).toBe(false);
  });
});
