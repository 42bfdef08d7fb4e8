import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayYaml, simpleRoutes, writeConfig, writeRoutes } from '../helpers/gateway.js';
import { spawnGateway } from '../helpers/process.js';
import { TestUpstream } from '../helpers/upstream.js';

// The process helper reads bound ports and reload events from the JSON log lines.
const LOGGED = { log: { level: 'info', accessLog: false } };

/** Polls GET /x until the answering upstream names itself `want` (or the time is up): the last answer. */
async function answerWithin(port: number, want: string, ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  let seen = '';
  while (Date.now() < deadline && seen !== want) {
    seen = await (await request(`http://127.0.0.1:${port}/x`)).body.text();
    if (seen !== want) await sleep(100);
  }
  return seen;
}

function whoAmI(name: string) {
  return new TestUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(name);
  });
}

describe('hot reload and drain (real process, real signals)', () => {
  let a: TestUpstream;
  let b: TestUpstream;
  let c: TestUpstream;

  beforeAll(async () => {
    [a, b, c] = await Promise.all([whoAmI('a').start(), whoAmI('b').start(), whoAmI('c').start()]);
  });

  afterAll(async () => {
    await Promise.all([a.stop(), b.stop(), c.stop()]);
  });

  it('takes 20 SIGHUPs under steady concurrent load without failing a request, then follows the new file', async () => {
    const files = await writeConfig(gatewayYaml(LOGGED), simpleRoutes([a.url]));
    const gw = await spawnGateway(files.gatewayFile);
    const agent = new Agent({ connections: 32 });
    const outcomes = { ok: 0, failed: [] as string[] };
    let running = true;
    const worker = async (): Promise<void> => {
      while (running) {
        try {
          const res = await request(`http://127.0.0.1:${gw.port}/x`, { dispatcher: agent });
          const text = await res.body.text();
          if (res.statusCode === 200) outcomes.ok++;
          else outcomes.failed.push(`${res.statusCode} ${text}`);
        } catch (err) {
          outcomes.failed.push(String(err));
        }
      }
    };
    try {
      const workers = Array.from({ length: 16 }, worker);
      // Alternate between pools that share nothing, share one endpoint, and change weights, so
      // every reload adds, keeps and drains endpoints while requests are in flight.
      const variants = [
        simpleRoutes([b.url]),
        simpleRoutes([a.url, b.url], {}, { balancer: 'round-robin' }),
        simpleRoutes([c.url, a.url]),
        simpleRoutes([a.url]),
      ];
      for (let i = 0; i < 20; i++) {
        await writeRoutes(files, variants[i % variants.length]!);
        gw.child.kill('SIGHUP');
        await sleep(100);
      }
      await writeRoutes(files, simpleRoutes([c.url]));
      gw.child.kill('SIGHUP');
      await sleep(500);
      running = false;
      await Promise.all(workers);
      expect(outcomes.failed).toEqual([]);
      expect(outcomes.ok).toBeGreaterThan(200);

      const after = await Promise.all(Array.from({ length: 10 }, async () => {
        const res = await request(`http://127.0.0.1:${gw.port}/x`);
        return res.body.text();
      }));
      expect(new Set(after)).toEqual(new Set(['c']));
      const reloads = gw.lines.filter((l) => l.includes('"event":"reload"')).length;
      expect(reloads).toBeGreaterThanOrEqual(2); // the first load, plus coalesced reloads
      const metrics = await (await request(`http://127.0.0.1:${gw.adminPort}/metrics`)).body.text();
      expect(metrics).toContain('gateway_config_reloads_total{result="failure"} 0');
    } finally {
      running = false;
      gw.child.kill('SIGTERM');
      await gw.exited;
      await agent.close();
      await rm(files.dir, { recursive: true, force: true });
    }
  });

  it('keeps serving the old routes when the new file is invalid, and says where the error is', async () => {
    const files = await writeConfig(gatewayYaml(LOGGED), simpleRoutes([a.url]));
    const gw = await spawnGateway(files.gatewayFile);
    try {
      await writeRoutes(files, 'upstreams:\n  pool:\n    targets: [{ url: "http://127.0.0.1:1" }]\nroutes:\n  - name: main\n    prefix: /\n    upstream: nope\n');
      gw.child.kill('SIGHUP');
      const line = JSON.parse(await gw.waitForLine(/reload failed/)) as { msg: string };
      expect(line.msg).toMatch(/routes\.yaml:7:15: routes\[0\]\.upstream: unknown upstream "nope"/);
      const res = await request(`http://127.0.0.1:${gw.port}/x`);
      expect(await res.body.text()).toBe('a');
      const metrics = await (await request(`http://127.0.0.1:${gw.adminPort}/metrics`)).body.text();
      expect(metrics).toContain('gateway_config_reloads_total{result="failure"} 1');

      // POST /reload reports the same errors as JSON with 422, and the old snapshot keeps serving.
      const reload = await request(`http://127.0.0.1:${gw.adminPort}/reload`, { method: 'POST' });
      expect(reload.statusCode).toBe(422);
      const body = await reload.body.json() as { result: string; errors: { line: number; path: string }[] };
      expect(body.result).toBe('failure');
      expect(body.errors[0]).toMatchObject({ line: 7, path: 'routes[0].upstream' });

      await writeRoutes(files, simpleRoutes([b.url]));
      const ok = await request(`http://127.0.0.1:${gw.adminPort}/reload`, { method: 'POST' });
      expect(ok.statusCode).toBe(200);
      expect(await ok.body.json()).toMatchObject({ result: 'success' });
      expect(await (await request(`http://127.0.0.1:${gw.port}/x`)).body.text()).toBe('b');
    } finally {
      gw.child.kill('SIGTERM');
      await gw.exited;
      await rm(files.dir, { recursive: true, force: true });
    }
  });

  it('drains on SIGTERM: readyz 503, the in-flight 2 s request completes, exit 0, pid file removed', async () => {
    const slow = await new TestUpstream((_req, res) => setTimeout(() => res.end('done'), 2000)).start();
    const files = await writeConfig(gatewayYaml({ ...LOGGED, pidFile: 'gateway.pid' }), simpleRoutes([slow.url]));
    const pidFile = join(files.dir, 'gateway.pid');
    const gw = await spawnGateway(files.gatewayFile);
    try {
      expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(gw.child.pid));
      const inFlight = request(`http://127.0.0.1:${gw.port}/slow`).then(async (r) => ({ status: r.statusCode, body: await r.body.text() }));
      // SIGTERM only once the request is in flight at the upstream, however loaded the machine is.
      while (slow.seen.length === 0) await sleep(20);
      gw.child.kill('SIGTERM');
      await gw.waitForLine(/"event":"draining"/);
      const ready = await request(`http://127.0.0.1:${gw.adminPort}/readyz`);
      expect(ready.statusCode).toBe(503);
      await ready.body.dump();
      await expect(request(`http://127.0.0.1:${gw.port}/new`, { dispatcher: new Agent() })).rejects.toThrow();
      expect(await inFlight).toEqual({ status: 200, body: 'done' });
      expect(await gw.exited).toBe(0);
      expect(existsSync(pidFile)).toBe(false);
    } finally {
      gw.child.kill('SIGKILL');
      await slow.stop();
      await rm(files.dir, { recursive: true, force: true });
    }
  });

  it('serves a request queued on a busy keep-alive connection during the drain, with Connection: close', async () => {
    const slow = await new TestUpstream((req, res) => setTimeout(() => res.end(`done ${req.url}`), req.url === '/first' ? 1500 : 0)).start();
    const files = await writeConfig(gatewayYaml(LOGGED), simpleRoutes([slow.url]));
    const gw = await spawnGateway(files.gatewayFile);
    try {
      const socket = connect(gw.port, '127.0.0.1');
      let received = '';
      socket.on('data', (d: Buffer) => { received += d.toString('latin1'); });
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      socket.write('GET /first HTTP/1.1\r\nHost: x\r\n\r\n');
      while (slow.seen.length === 0) await sleep(20);
      gw.child.kill('SIGTERM');
      await gw.waitForLine(/"event":"draining"/);
      // Pipelined behind the in-flight request: the connection is busy, so the drain must not cut it.
      socket.write('GET /second HTTP/1.1\r\nHost: x\r\n\r\n');
      await closed;
      const responses = received.split(/(?=HTTP\/1\.1 )/);
      expect(responses).toHaveLength(2);
      expect(responses[0]).toMatch(/^HTTP\/1\.1 200[\s\S]*done \/first$/);
      expect(responses[1]).toMatch(/^HTTP\/1\.1 200[\s\S]*\r\nConnection: close\r\n[\s\S]*done \/second$/i);
      expect(await gw.exited).toBe(0);
    } finally {
      gw.child.kill('SIGKILL');
      await slow.stop();
      await rm(files.dir, { recursive: true, force: true });
    }
  });

  it('reloads on file change with --watch, including an atomic rename', async () => {
    const files = await writeConfig(gatewayYaml(LOGGED), simpleRoutes([a.url]));
    const gw = await spawnGateway(files.gatewayFile, ['--watch']);
    try {
      const { rename, writeFile } = await import('node:fs/promises');
      const { stringify } = await import('yaml');
      const tmp = join(files.dir, '.routes.yaml.tmp');
      await writeFile(tmp, stringify(simpleRoutes([b.url])));
      await rename(tmp, files.routesFile);
      expect(await answerWithin(gw.port, 'b', 5000)).toBe('b');
    } finally {
      gw.child.kill('SIGTERM');
      await gw.exited;
      await rm(files.dir, { recursive: true, force: true });
    }
  });

  it('reloads with --watch when a Kubernetes ConfigMap volume swaps its ..data symlink', async () => {
    // The layout kubelet writes: routes.yaml -> ..data/routes.yaml, ..data -> ..<timestamp>/, and
    // an update is a new timestamped folder plus an atomic rename of a new ..data link over the old.
    const { mkdir, mkdtemp, rename, symlink, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { stringify } = await import('yaml');
    const dir = await mkdtemp(join(tmpdir(), 'gw-configmap-'));
    const version = async (name: string, routes: Record<string, unknown>): Promise<void> => {
      await mkdir(join(dir, name));
      await writeFile(join(dir, name, 'routes.yaml'), stringify(routes));
      await writeFile(join(dir, name, 'gateway.yaml'), stringify(gatewayYaml(LOGGED)));
    };
    await version('..2026_11_23_01_00_00.1', simpleRoutes([a.url]));
    await symlink('..2026_11_23_01_00_00.1', join(dir, '..data'));
    await symlink('..data/routes.yaml', join(dir, 'routes.yaml'));
    await symlink('..data/gateway.yaml', join(dir, 'gateway.yaml'));
    const gw = await spawnGateway(join(dir, 'gateway.yaml'), ['--watch']);
    try {
      expect(await (await request(`http://127.0.0.1:${gw.port}/x`)).body.text()).toBe('a');
      await version('..2026_11_23_01_05_00.2', simpleRoutes([b.url]));
      await symlink('..2026_11_23_01_05_00.2', join(dir, '..data_tmp'));
      await rename(join(dir, '..data_tmp'), join(dir, '..data'));
      expect(await answerWithin(gw.port, 'b', 5000)).toBe('b');
    } finally {
      gw.child.kill('SIGTERM');
      await gw.exited;
      await rm(dir, { recursive: true, force: true });
    }
  });
});

