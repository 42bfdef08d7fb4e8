import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { gatewayYaml, simpleRoutes, writeConfig } from '../helpers/gateway.js';

const MAIN = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
const run = promisify(execFile);

async function gateway(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [MAIN, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

// The built binary, as operators and CI pipelines call it.
describe('gateway CLI', () => {
  it('validate: one ok line and exit 0 for a good config', async () => {
    const files = await writeConfig(gatewayYaml(), simpleRoutes(['http://127.0.0.1:9']));
    try {
      const { code, stdout } = await gateway(['validate', '--config', files.gatewayFile]);
      expect(code).toBe(0);
      expect(stdout).toMatch(/^ok: 1 route, 1 upstream, version [0-9a-f]{12}\n$/);
    } finally {
      await rm(files.dir, { recursive: true, force: true });
    }
  });

  it('validate: FILE:LINE:COL: path: message per error on stderr and exit 1', async () => {
    const files = await writeConfig(gatewayYaml(), 'upstreams:\n  users:\n    targets: [{ url: http://127.0.0.1:9 }]\nroutes:\n  - name: a\n    prefix: /\n    upstream: userz\n    stripPrefx: true\n');
    try {
      const { code, stdout, stderr } = await gateway(['validate', '--config', files.gatewayFile]);
      expect(code).toBe(1);
      expect(stdout).toBe('');
      const lines = stderr.trim().split('\n');
      expect(lines.some((l) => /routes\.yaml:8:5: routes\[0\]\.stripPrefx: unknown field "stripPrefx"/.test(l))).toBe(true);
      for (const l of lines) expect(l).toMatch(/^\S+:\d+:\d+: \S+: .+/);
    } finally {
      await rm(files.dir, { recursive: true, force: true });
    }
  });

  it('explain: exit 0 when routed, 1 when not', async () => {
    const files = await writeConfig(gatewayYaml(), simpleRoutes(['http://127.0.0.1:9'], { prefix: '/api' }));
    try {
      expect((await gateway(['explain', '--config', files.gatewayFile, 'GET', '/api/x'])).code).toBe(0);
      expect((await gateway(['explain', '--config', files.gatewayFile, 'GET', '/other'])).code).toBe(1);
    } finally {
      await rm(files.dir, { recursive: true, force: true });
    }
  });

  it('exits 1 with the problem when the config cannot be loaded at start', async () => {
    const { code, stderr } = await gateway(['--config', '/nonexistent/gateway.yaml']);
    expect(code).toBe(1);
    expect(stderr).toContain('/nonexistent/gateway.yaml');
  });
});
