import { describe, expect, it } from 'vitest';
import { loadGatewayConfig, loadRoutesConfig } from '../../src/config/load.js';
import { issuesOf, linesOf, MINIMAL_GATEWAY, writeFile, yaml } from './fixtures.js';

describe('schema errors', () => {
  it('reports an unknown field at its key, with a suggestion when it is a likely typo', async () => {
    const file = writeFile(
      'routes.yaml',
      yaml`
        upstreams:
          users:
            targets: [{ url: http://127.0.0.1:9001 }]
        routes:
          - name: users
            prefix: /
            upstrem: users
            colour: blue
      `,
    );
    expect(await issuesOf(loadRoutesConfig(file))).toEqual([
      { file, line: 7, col: 5, path: 'routes[0].upstrem', message: 'unknown field "upstrem" (did you mean "upstream"?)' },
      { file, line: 8, col: 5, path: 'routes[0].colour', message: 'unknown field "colour"' },
    ]);
  });

  it('suggests across letter case', async () => {
    const file = writeFile('routes.yaml', 'routes:\n  - { name: a, prefix: /, upstream: u, stripprefix: true }\nupstreams: { u: { targets: [{ url: http://a }] } }\n');
    expect(await linesOf(loadRoutesConfig(file))).toEqual([
      `${file}:2:40: routes[0].stripprefix: unknown field "stripprefix" (did you mean "stripPrefix"?)`,
    ]);
  });

  it('reports wrong types in operator words, at the value', async () => {
    const file = writeFile(
      'gateway.yaml',
      yaml`
        listeners:
          - name: public
            port: eighty
        trustedProxies: 10.0.0.0/8
        log:
          accessLog: "yes"
      `,
    );
    expect(await linesOf(loadGatewayConfig(file))).toEqual([
      `${file}:3:11: listeners[0].port: expected a whole number, got the string "eighty"`,
      `${file}:4:17: trustedProxies: expected a list, got the string "10.0.0.0/8"`,
      `${file}:6:14: log.accessLog: expected true or false, got the string "yes"`,
    ]);
  });

  it('explains units, enums and bounds', async () => {
    const file = writeFile(
      'gateway.yaml',
      yaml`
        listeners:
          - { name: public, port: 70000 }
        limits:
          headersTimeout: 10
          bodyLimit: ten megabytes
          keepAliveTimeout: 2h
          shutdownTimeout: 1.5ms
        log:
          level: verbos
      `,
    );
    expect(await linesOf(loadGatewayConfig(file))).toEqual([
      `${file}:2:27: listeners[0].port: must be at most 65535`,
      `${file}:4:19: limits.headersTimeout: expected a duration like 250ms, 10s, 5m, 1h (a number needs a unit: ms, s, m or h)`,
      `${file}:5:14: limits.bodyLimit: expected a size like 512b, 16kb, 10mb, 1gb`,
      `${file}:6:21: limits.keepAliveTimeout: must be at most 1h`,
      `${file}:7:20: limits.shutdownTimeout: "1.5ms" is not a whole number of milliseconds`,
      `${file}:9:10: log.level: must be one of: fatal, error, warn, info, debug, trace, silent`,
    ]);
  });

  it('reports a missing required field on its parent', async () => {
    const file = writeFile('gateway.yaml', 'listeners:\n  - name: public\n');
    expect(await linesOf(loadGatewayConfig(file))).toEqual([`${file}:2:5: listeners[0]: missing required field "port"`]);
  });

  it('requires routes, so an empty routes file is never read as "no routes"', async () => {
    const file = writeFile('routes.yaml', '# truncated\n');
    expect(await linesOf(loadRoutesConfig(file))).toEqual([`${file}:1:1: missing required field "routes"`]);
  });

  it('reports a file that is not a mapping', async () => {
    const file = writeFile('gateway.yaml', '- a\n- b\n');
    expect(await linesOf(loadGatewayConfig(file))).toEqual([`${file}:1:1: expected an object, got a list`]);
  });

  it('reports a bad name at its key', async () => {
    const file = writeFile('routes.yaml', 'upstreams:\n  "my pool": { targets: [{ url: http://a }] }\nroutes: []\n');
    expect(await linesOf(loadRoutesConfig(file))).toEqual([
      `${file}:2:3: upstreams["my pool"]: invalid name "my pool": expected a name of up to 63 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    ]);
  });

  it('reports repeated list entries at the repeat', async () => {
    const file = writeFile('routes.yaml', 'routes:\n  - { name: a, prefix: /, upstream: u, rateLimit: [x, y, x] }\nupstreams: { u: { targets: [{ url: http://a }] } }\n');
    expect(await linesOf(loadRoutesConfig(file))).toEqual([`${file}:2:58: routes[0].rateLimit[2]: x is listed twice (also at [0])`]);
  });

  describe('values with several accepted forms report the form that was meant', () => {
    it('a misspelt word lists every form, with a suggestion', async () => {
      const file = writeFile('routes.yaml', 'upstreams:\n  u:\n    targets: [{ url: http://a }]\n    outlierDetection: of\nroutes: []\n');
      expect(await linesOf(loadRoutesConfig(file))).toEqual([
        `${file}:4:23: upstreams.u.outlierDetection: expected off, or an object of outlier detection settings (did you mean "off"?)`,
      ]);
    });

    it('an object reports its own fields, not that it is not "off"', async () => {
      const file = writeFile(
        'routes.yaml',
        yaml`
          upstreams:
            u:
              targets: [{ url: http://a }]
              outlierDetection:
                consecutive5xx: 0
                intervall: 5s
                maxEjectionPercent: 150%
          routes: []
        `,
      );
      expect(await linesOf(loadRoutesConfig(file))).toEqual([
        `${file}:5:23: upstreams.u.outlierDetection.consecutive5xx: must be at least 1`,
        `${file}:6:7: upstreams.u.outlierDetection.intervall: unknown field "intervall" (did you mean "interval"?)`,
        `${file}:7:27: upstreams.u.outlierDetection.maxEjectionPercent: expected a percentage like 50% or a number from 0 to 100`,
      ]);
    });

    it('each of several values sharing one schema is judged on its own', async () => {
      const file = writeFile(
        'routes.yaml',
        yaml`
          upstreams:
            a: { targets: [{ url: http://a }], outlierDetection: of }
            b: { targets: [{ url: http://b }], outlierDetection: { interval: 5x } }
            c: { targets: [{ url: http://c }], outlierDetection: off, panicThreshold: 101 }
          routes: []
        `,
      );
      expect(await linesOf(loadRoutesConfig(file))).toEqual([
        `${file}:2:56: upstreams.a.outlierDetection: expected off, or an object of outlier detection settings (did you mean "off"?)`,
        `${file}:3:68: upstreams.b.outlierDetection.interval: expected a duration like 250ms, 10s, 5m, 1h`,
        `${file}:4:77: upstreams.c.panicThreshold: must be at most 100`,
      ]);
    });

    it('workers: a number or auto', async () => {
      const file = writeFile('gateway.yaml', `${MINIMAL_GATEWAY}workers: autoo\n`);
      expect(await linesOf(loadGatewayConfig(file))).toEqual([
        `${file}:3:10: workers: expected a number of processes from 1 to 1024, or auto (did you mean "auto"?)`,
      ]);
      const zero = writeFile('gateway.yaml', `${MINIMAL_GATEWAY}workers: 0\n`);
      expect(await linesOf(loadGatewayConfig(zero))).toEqual([`${zero}:3:10: workers: must be at least 1`]);
    });

    it('a nullable value names both forms', async () => {
      const file = writeFile('gateway.yaml', `${MINIMAL_GATEWAY}pidFile: 42\n`);
      expect(await linesOf(loadGatewayConfig(file))).toEqual([`${file}:3:10: pidFile: expected a string or null`]);
    });
  });

  it('reports every problem of a file in one go, in file order', async () => {
    const file = writeFile(
      'routes.yaml',
      yaml`
        routes:
          - name: a
            prefix: api
            upstream: u
            websocket: yes
          - name: b
            prefix: /b
            upstream: u
            timeouts: { request: 5, read: 1s }
        upstreams:
          u: { targets: [{ url: http://a, weight: 0 }] }
      `,
    );
    expect(await linesOf(loadRoutesConfig(file))).toEqual([
      `${file}:3:13: routes[0].prefix: expected a path starting with /`,
      `${file}:5:16: routes[0].websocket: expected true or false, got the string "yes"`,
      `${file}:9:26: routes[1].timeouts.request: expected a duration like 250ms, 10s, 5m, 1h (a number needs a unit: ms, s, m or h)`,
      `${file}:9:29: routes[1].timeouts.read: unknown field "read"`,
      `${file}:11:43: upstreams.u.targets[0].weight: must be at least 1`,
    ]);
  });
});

describe('YAML syntax', () => {
  it('reports the first syntax error alone, not the cascade after it', async () => {
    const file = writeFile('gateway.yaml', 'listeners:\n  - { name: a, port: 1\nadmin:\n  port: 2\n');
    const issues = await issuesOf(loadGatewayConfig(file));
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ file, path: '' });
    expect(issues[0]?.message).toMatch(/^invalid YAML: /);
    expect(issues[0]?.line).toBeGreaterThan(0);
  });

  it('treats duplicate keys as errors, each at its position', async () => {
    const file = writeFile('gateway.yaml', `${MINIMAL_GATEWAY}log:\n  level: info\n  level: debug\nworkers: 1\nworkers: 1\n`);
    expect(await linesOf(loadGatewayConfig(file))).toEqual([
      `${file}:5:3: invalid YAML: map keys must be unique`,
      `${file}:7:1: invalid YAML: map keys must be unique`,
    ]);
  });

  it('treats YAML warnings (an unknown tag) as errors', async () => {
    const file = writeFile('gateway.yaml', `${MINIMAL_GATEWAY}pidFile: !path gateway.pid\n`);
    const issues = await issuesOf(loadGatewayConfig(file));
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ file, line: 3 });
    expect(issues[0]?.message).toContain('invalid YAML');
  });

  it('reads on and off as strings (YAML 1.2)', async () => {
    const file = writeFile('gateway.yaml', `${MINIMAL_GATEWAY}log: { accessLog: on }\n`);
    expect(await linesOf(loadGatewayConfig(file))).toEqual([`${file}:3:19: log.accessLog: expected true or false, got the string "on"`]);
  });
});
