import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadGatewayConfig, loadRoutesConfig } from '../../src/config/load.js';
import { UNSUPPORTED_FEATURES } from '../../src/config/unsupported.js';
import { at, atValue, linesOf, MINIMAL_GATEWAY, writeFile, yaml } from './fixtures.js';

const NOT_YET = 'is not supported yet in this version';

describe('features validated but not supported yet', () => {
  it('gateway.yaml has none left: redis, workers auto and TLS listeners load', async () => {
    const text = yaml`
      listeners:
        - { name: http, port: 8080 }
        - name: https
          port: 8443
          tls:
            certificates: [{ cert: a.crt, key: a.key }]
      redis:
        url: redis://127.0.0.1:6379
      workers: auto
    `;
    const file = writeFile('gateway.yaml', text);
    // Every gateway.yaml feature is supported now: the file loads.
    await expect(loadGatewayConfig(file)).resolves.toBeDefined();
  });

  it('are refused in the routes file at the field that uses them', async () => {
    const text = yaml`
      upstreams:
        users:
          targets: [{ url: http://127.0.0.1:9001 }]
          balancer: consistent-hash
          hashOn: cookie:session
        orders:
          discovery: { dns: { name: orders.svc, port: 8080 } }
          balancer: consistent-hash
          hashOn: jwt:sub
      jwtProviders:
        main: { issuer: https://id.example.com/, jwksUri: https://id.example.com/jwks }
      rateLimits:
        per-ip: { key: ip, limit: 10, window: 1s }
      routes:
        - name: everything
          prefix: /
          split: [{ upstream: users, weight: 1 }]
          auth: { jwt: main }
          rateLimit: [per-ip]
          match: { query: { beta: "1" } }
          mirror: { upstream: orders }
          headers: { request: { remove: [x-debug] } }
          cors: { origins: ["https://app.example.com"] }
          fault: { abort: { percent: 1 } }
          websocket: true
    `;
    const file = writeFile('routes.yaml', text);
    const route = (field: string): string => atValue(text, field, 'everything');
    expect(await linesOf(loadRoutesConfig(file))).toEqual([
      `${file}:${route('split')}: routes[0].split: traffic splitting (split) ${NOT_YET}`,
      `${file}:${route('match')}: routes[0].match: matching on headers and query (match) ${NOT_YET}`,
      `${file}:${route('mirror')}: routes[0].mirror: request mirroring (mirror) ${NOT_YET}`,
      `${file}:${route('headers')}: routes[0].headers: header rewriting (headers) ${NOT_YET}`,
      `${file}:${route('cors')}: routes[0].cors: CORS (cors) ${NOT_YET}`,
      `${file}:${route('fault')}: routes[0].fault: fault injection (fault) ${NOT_YET}`,
    ]);
  });

  it('leaves the supported spellings alone: workers 1, redis, auth none, empty lists and maps, websocket true and false', async () => {
    await expect(loadGatewayConfig(writeFile('gateway.yaml', `${MINIMAL_GATEWAY}workers: 1\nredis: null\n`))).resolves.toBeDefined();
    const routes = writeFile(
      'routes.yaml',
      yaml`
        upstreams:
          users: { targets: [{ url: http://a }], healthCheck: {}, balancer: consistent-hash, hashOn: header:x-user, retries: { attempts: 2 } }
          orders: { discovery: { dns: { name: orders.svc, port: 8080 } }, balancer: peak-ewma }
        jwtProviders: {}
        rateLimits: {}
        routes:
          - { name: a, prefix: /, upstream: users, auth: none, rateLimit: [], websocket: false }
          - { name: b, prefix: /ws, upstream: users, websocket: true }
      `,
    );
    await expect(loadRoutesConfig(routes)).resolves.toBeDefined();
  });

  it('are all listed in docs/configuration.md', () => {
    const docs = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    const section = docs.slice(docs.indexOf('## Not supported yet in this version'), docs.indexOf('## Reference'));
    for (const { feature } of UNSUPPORTED_FEATURES) expect(section).toContain(`- ${feature}`);
    expect(section.split('\n').filter((line) => line.startsWith('- '))).toHaveLength(UNSUPPORTED_FEATURES.length);
  });
});
