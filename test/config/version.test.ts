import { describe, expect, it } from 'vitest';
import { loadRoutesConfig } from '../../src/config/load.js';
import { canonicalJson, configVersion } from '../../src/config/version.js';
import { writeFile, yaml } from './fixtures.js';

const BASE = yaml`
  upstreams:
    users:
      targets:
        - { url: http://127.0.0.1:9001, weight: 2 }
        - { url: http://127.0.0.1:9002 }
      timeouts: { connect: 2s }
  routes:
    - name: users
      prefix: /api/users
      upstream: users
      stripPrefix: true
`;

async function versionOf(text: string, env: Record<string, string> = {}): Promise<string> {
  return configVersion(await loadRoutesConfig(writeFile('routes.yaml', text), env));
}

describe('configVersion', () => {
  it('is 12 hex digits', async () => {
    expect(await versionOf(BASE)).toMatch(/^[0-9a-f]{12}$/);
  });

  it('does not change with comments, whitespace, key order, flow style or the file location', async () => {
    const base = await versionOf(BASE);
    const rewritten = yaml`
      # the same routes, written differently
      routes:
        - upstream: users     # pool
          stripPrefix: true
          prefix: /api/users/
          name: users
      upstreams:
        users:
          timeouts:
            connect: 2000ms
          targets:
            - weight: 2
              url: http://127.0.0.1:9001/
            - url: "http://127.0.0.1:9002"
              weight: 1
          balancer: least-request
          outlierDetection: {}
    `;
    expect(await versionOf(rewritten)).toBe(base);
  });

  it('does not change when an environment variable spells the same value', async () => {
    const base = await versionOf(BASE);
    const viaEnv = BASE.replace('prefix: /api/users', 'prefix: ${USERS_PREFIX}').replace('2s', '"${CONNECT_TIMEOUT:-2s}"');
    expect(await versionOf(viaEnv, { USERS_PREFIX: '/api/users' })).toBe(base);
  });

  it('changes when the meaning changes', async () => {
    const base = await versionOf(BASE);
    const changes = [
      BASE.replace('weight: 2', 'weight: 3'),
      BASE.replace('stripPrefix: true', 'stripPrefix: false'),
      BASE.replace('connect: 2s', 'connect: 3s'),
      BASE.replace('/api/users', '/api/people'),
      `${BASE}  - { name: extra, prefix: /x, upstream: users }\n`,
    ];
    const versions = await Promise.all(changes.map((text) => versionOf(text)));
    for (const version of versions) expect(version).not.toBe(base);
    expect(new Set(versions).size).toBe(changes.length);
  });

  it('changes with route order, which decides ties', async () => {
    const two = (a: string, b: string): string =>
      `upstreams: { u: { targets: [{ url: http://a }] } }\nroutes:\n  - { name: ${a}, prefix: /${a}, upstream: u }\n  - { name: ${b}, prefix: /${b}, upstream: u }\n`;
    expect(await versionOf(two('a', 'b'))).not.toBe(await versionOf(two('b', 'a')));
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every depth and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, 1], c: null } })).toBe('{"a":{"c":null,"d":[3,1]},"b":1}');
  });
});
