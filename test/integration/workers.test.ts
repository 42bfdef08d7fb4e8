import { rm } from 'node:fs/promises';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayYaml, type TestGatewayFiles, writeConfig, writeRoutes } from '../helpers/gateway.js';
import { type GatewayProcess, spawnGateway } from '../helpers/process.js';
import { TestUpstream } from '../helpers/upstream.js';
import { until } from '../helpers/wait.js';

// `workers: 2` (SPEC §2, §3.1): a primary forks two worker processes that share the public
// listener; the primary owns the signals and the admin listener. Real processes, real sockets.

interface LogLine {
  readonly pid?: number;
  readonly event?: string;
  readonly msg?: string;
  readonly route?: string | null;
  readonly workerPids?: number[];
  readonly version?: string;
  readonly workerPid?: number;
}

function routesWith(upstreamUrl: string, routes: readonly Record<string, unknown>[]): Record<string, unknown> {
  return { upstreams: { api: { targets: [{ url: upstreamUrl }] } }, routes };
}

const parse = (line: string): LogLine => JSON.parse(line) as LogLine;

async function get(gw: GatewayProcess, path: string): Promise<number> {
  // A fresh connection per request: the primary deals connections out to the workers in turn.
  const res = await request(`http://127.0.0.1:${gw.port}${path}`, { headers: { connection: 'close' } });
  await res.body.dump();
  return res.statusCode;
}

async function admin(gw: GatewayProcess, path: string): Promise<{ status: number; text: string }> {
  const res = await request(`http://127.0.0.1:${gw.adminPort}${path}`);
  return { status: res.statusCode, text: await res.body.text() };
}

function metric(text: string, line: string): number {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? Number.NaN : Number(found.slice(found.lastIndexOf(' ') + 1));
}

/** Access-log lines so far for `route`, by the pid of the worker that served them. */
function servedBy(gw: GatewayProcess, route: string): Set<number> {
  return new Set(gw.lines.map(parse).filter((l) => l.msg === 'request' && l.route === route).map((l) => l.pid ?? 0));
}

describe('workers: 2', () => {
  let upstream: TestUpstream;
  let files: TestGatewayFiles;
  let gw: GatewayProcess;
  let workerPids: number[];

  beforeAll(async () => {
    upstream = await new TestUpstream().start();
    files = await writeConfig(
      gatewayYaml({ workers: 2, log: { level: 'info', accessLog: true } }),
      routesWith(upstream.url, [{ name: 'old', prefix: '/old', upstream: 'api' }]),
    );
    gw = await spawnGateway(files.gatewayFile);
    const started = parse(gw.lines.find((l) => l.includes('"event":"started"'))!);
    workerPids = started.workerPids ?? [];
  }, 60_000);

  afterAll(async () => {
    if (gw.child.exitCode === null) {
      gw.child.kill('SIGKILL');
      await gw.exited;
    }
    await upstream.stop();
    await rm(files.dir, { recursive: true, force: true });
  });

  it('starts two workers behind one listener, and both serve', async () => {
    expect(workerPids).toHaveLength(2);
    expect(workerPids).not.toContain(gw.child.pid);
    for (let i = 0; i < 20; i++) expect(await get(gw, '/old/x')).toBe(200);
    await until('access-log lines from both workers', () => servedBy(gw, 'old').size === 2, 5_000);
    expect([...servedBy(gw, 'old')].sort()).toEqual([...workerPids].sort());
    expect((await admin(gw, '/readyz')).status).toBe(200);
  });

  it('sums the workers\' metrics on the primary\'s /metrics, counting a reload once', async () => {
    const before = metric((await admin(gw, '/metrics')).text, 'gateway_requests_total{route="old",method="GET",status="200"}');
    for (let i = 0; i < 10; i++) await get(gw, '/old/y');
    const after = (await admin(gw, '/metrics')).text;
    expect(metric(after, 'gateway_requests_total{route="old",method="GET",status="200"}') - before).toBe(10);
    expect(metric(after, 'gateway_config_reloads_total{result="success"}')).toBe(1);
    expect(after).toContain('process_cpu_seconds_total');
    const upstreams = JSON.parse((await admin(gw, '/upstreams')).text) as { workers: number; upstreams: { name: string }[] };
    expect(upstreams.workers).toBe(2);
    expect(upstreams.upstreams.map((u) => u.name)).toEqual(['api']);
    // The status page's data, from the combined metrics: every request of either worker counted.
    const status = JSON.parse((await admin(gw, '/status')).text) as { routes: { name: string; requests: number }[]; pools: { name: string }[] };
    expect(status.routes.find((r) => r.name === 'old')?.requests).toBe(metric(after, 'gateway_requests_total{route="old",method="GET",status="200"}'));
    expect(status.pools.map((p) => p.name)).toEqual(['api']);
    expect((await admin(gw, '/')).text).toContain('<html');
  });

  it('SIGHUP reaches every worker: all serve the new route, /config shows one version', async () => {
    await writeRoutes(files, routesWith(upstream.url, [{ name: 'old', prefix: '/old', upstream: 'api' }, { name: 'new', prefix: '/new', upstream: 'api' }]));
    gw.child.kill('SIGHUP');
    await until('the reload line', () => gw.lines.some((l) => l.includes('"event":"reload"') && l.includes('workers')), 10_000);
    for (let i = 0; i < 20; i++) expect(await get(gw, '/new/x')).toBe(200);
    await until('the new route served by both workers', () => servedBy(gw, 'new').size === 2, 5_000);
    const config = JSON.parse((await admin(gw, '/config')).text) as { version: string; workers: number; versionsByWorker?: unknown };
    expect(config.workers).toBe(2);
    expect(config.versionsByWorker).toBeUndefined();
    const reloadLine = parse(gw.lines.filter((l) => l.includes('"event":"reload"') && l.includes('workers')).at(-1)!);
    expect(config.version).toBe(reloadLine.version);
    expect(metric((await admin(gw, '/metrics')).text, 'gateway_config_reloads_total{result="success"}')).toBe(2);
  });

  it('a broken routes file changes no worker and counts one failed reload', async () => {
    const version = (JSON.parse((await admin(gw, '/config')).text) as { version: string }).version;
    await writeRoutes(files, 'upstreams: {}\nroutes:\n  - { name: broken, prefix: /b, upstream: nowhere }\n');
    const reload = await request(`http://127.0.0.1:${gw.adminPort}/reload`, { method: 'POST' });
    expect(reload.statusCode).toBe(422);
    const body = (await reload.body.json()) as { errors: { path: string }[] };
    expect(body.errors.map((e) => e.path)).toEqual(['routes[0].upstream']);
    expect((JSON.parse((await admin(gw, '/config')).text) as { version: string }).version).toBe(version);
    for (let i = 0; i < 6; i++) expect(await get(gw, '/new/z')).toBe(200);
    expect(metric((await admin(gw, '/metrics')).text, 'gateway_config_reloads_total{result="failure"}')).toBe(1);
  });

  it('replaces a killed worker and keeps serving', async () => {
    const victim = workerPids[0]!;
    process.kill(victim, 'SIGKILL');
    const replaced = await until('the replacement worker', () => gw.lines.map(parse).find((l) => l.event === 'worker_replaced'), 10_000);
    expect(gw.lines.map(parse).some((l) => l.event === 'worker_exited' && l.workerPid === victim)).toBe(true);
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push(await get(gw, '/new/after'));
    expect(statuses.every((s) => s === 200)).toBe(true);
    const replacement = replaced.workerPid;
    expect(replacement).not.toBe(victim);
    await until('the replacement serving', () => [...servedBy(gw, 'new')].some((pid) => pid !== victim && !workerPids.includes(pid)), 5_000);
    expect((await admin(gw, '/readyz')).status).toBe(200);
  });

  it('SIGTERM drains every worker and the primary exits 0', async () => {
    gw.child.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
    const stopped = gw.lines.map(parse).filter((l) => l.event === 'stopped');
    // Two workers and the primary.
    expect(stopped.length).toBeGreaterThanOrEqual(3);
  });
});
