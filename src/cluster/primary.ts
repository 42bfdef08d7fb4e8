// The primary process of a `workers: N` gateway (node:cluster): it serves no traffic itself. It
// forks the workers, which share the public listeners (the primary hands each connection to the
// next worker, round-robin), serves the admin listener from their combined state, and owns the
// signals:
// - SIGHUP (and POST /reload, --watch): read the routes file once, validate it here, then have
//   every worker stage that same text; only when all staged it do all commit, otherwise all drop
//   it. Every worker serves one version, or none changes.
// - SIGTERM/SIGINT: /readyz turns 503 at once, every worker drains, then the primary exits.
// - A worker that dies is replaced, with a backoff when it keeps dying, on the current routes.

import cluster, { type Worker } from 'node:cluster';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { AggregatorRegistry, Counter, type MetricObjectWithValues, type MetricValue, Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { UpstreamsDump } from '../admin/dumps.js';
import { createAdminServer } from '../admin/server.js';
import { buildStatusReport, lastReloadOf, routeSummaries, type StatusReport } from '../admin/status.js';
import { loadRoutesConfig } from '../config/load.js';
import type { GatewayConfig, RouteConfig } from '../config/types.js';
import { ConfigError, type ConfigIssue, formatConfigIssue, GatewayError } from '../errors.js';
import type { BoundAddress } from '../gateway.js';
import type { ReloadResult } from '../snapshot/reloader.js';
import { type FromWorker, isGatewayMessage, type Readiness, type StageAnswer, type ToWorker, type WorkerCall } from './messages.js';
import { coalesced } from '../snapshot/coalesce.js';
import { mergeUpstreams } from './merge.js';

const CALL_TIMEOUT_MS = 5_000;
/** Staging may fetch JWKS and resolve DNS: the loader's own bounds apply, this is a backstop. */
const STAGE_TIMEOUT_MS = 60_000;
const RESTART_BASE_MS = 100;
const RESTART_MAX_MS = 10_000;
/** A worker that lived this long before dying starts the backoff over. */
const STABLE_AFTER_MS = 30_000;

interface PendingCall {
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** One forked worker and the calls waiting for its replies. */
class WorkerHandle {
  readonly worker: Worker;
  readonly forkedAt = Date.now();
  listeners: readonly BoundAddress[] = [];
  readonly #pending = new Map<number, PendingCall>();
  #nextId = 1;

  constructor(worker: Worker) {
    this.worker = worker;
  }

  get pid(): number | undefined {
    return this.worker.process.pid;
  }

  call<T>(call: WorkerCall, timeoutMs = CALL_TIMEOUT_MS): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`worker ${this.pid ?? '?'} did not answer ${call.op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      const message: ToWorker = { gw: 'call', id, call };
      this.worker.send(message);
    });
  }

  settle(message: FromWorker): void {
    if (message.gw !== 'reply') return;
    const pending = this.#pending.get(message.id);
    if (pending === undefined) return;
    this.#pending.delete(message.id);
    clearTimeout(pending.timer);
    if (message.ok) pending.resolve(message.value);
    else pending.reject(new Error(message.error));
  }

  failAll(reason: string): void {
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      pending.reject(new Error(reason));
      this.#pending.delete(id);
    }
  }
}

export interface PrimaryOptions {
  readonly configFile: string;
  readonly config: GatewayConfig;
  readonly workers: number;
  readonly log: Logger;
  readonly env?: NodeJS.ProcessEnv;
}

export class Primary {
  readonly #config: GatewayConfig;
  readonly #count: number;
  readonly #log: Logger;
  readonly #env: NodeJS.ProcessEnv;
  readonly #handles = new Map<number, WorkerHandle>();
  /** Failed reloads refused here before any worker saw them (validation): counted with the workers'. */
  readonly #registry = new Registry();
  readonly #reloadFailures = new Counter({
    name: 'gateway_config_reloads_total',
    help: 'Routes reloads by result (success or failure).',
    labelNames: ['result'] as const,
    registers: [this.#registry],
    aggregator: 'max',
  });
  /** The routes file's text every worker serves (the last committed one). */
  #routesText = '';
  #admin: FastifyInstance | null = null;
  #draining = false;
  #stopped: Promise<void> | null = null;
  #last: { readonly at: Date; readonly result: ReloadResult } | null = null;
  #consecutiveCrashes = 0;

  constructor(options: PrimaryOptions) {
    this.#config = options.config;
    this.#count = options.workers;
    this.#log = options.log;
    this.#env = options.env ?? process.env;
  }

  /** Validates the routes file, forks every worker and waits for all to listen, then opens the admin listener. */
  async start(): Promise<void> {
    const text = await this.#readRoutes();
    await loadRoutesConfig(this.#config.routesFile, this.#env, text);
    this.#routesText = text;
    const started = await Promise.all(Array.from({ length: this.#count }, () => this.#fork()));
    const admin = (this.#admin = createAdminServer({
      readiness: () => this.#readiness(),
      metrics: () => this.#metricsText(),
      config: () => this.#configReport(),
      upstreams: () => this.#upstreamsReport(),
      reload: () => this.reload('POST /reload'),
      status: () => this.#statusReport(),
    }));
    try {
      await admin.listen({ host: this.#config.admin.address, port: this.#config.admin.port });
    } catch (err) {
      throw new GatewayError('GW_ERR_LISTEN_FAILED', [`admin ${this.#config.admin.address}:${this.#config.admin.port}`, (err as Error).message], { cause: err });
    }
    if (this.#config.pidFile !== null) await writeFile(this.#config.pidFile, `${process.pid}\n`);
    this.#log.info({
      event: 'started',
      version: started[0]?.version ?? null,
      workers: this.#count,
      workerPids: [...this.#handles.values()].map((h) => h.pid),
      listeners: this.addresses(),
    }, `gateway started with ${this.#count} workers`);
  }

  /** The admin listener, then the public listeners as the first worker bound them. */
  addresses(): BoundAddress[] {
    const out: BoundAddress[] = [];
    const addr = this.#admin?.server.address();
    if (addr !== null && addr !== undefined && typeof addr === 'object') out.push({ name: 'admin', address: addr.address, port: addr.port });
    const first = [...this.#handles.values()][0];
    return [...out, ...(first?.listeners ?? [])];
  }

  get workerPids(): number[] {
    return [...this.#handles.values()].flatMap((h) => (h.pid === undefined ? [] : [h.pid]));
  }

  /** SIGHUP, --watch and POST /reload; bursts coalesce into one follow-up run, as in Reloader. */
  reload(reason: string): Promise<ReloadResult> {
    this.#log.info({ event: 'reload_requested', reason }, `reload requested by ${reason}`);
    return this.#reloadCoalesced();
  }

  readonly #reloadCoalesced = coalesced(() => this.#reloadAll());

  async #reloadAll(): Promise<ReloadResult> {
    let text: string;
    try {
      text = await this.#readRoutes();
      await loadRoutesConfig(this.#config.routesFile, this.#env, text);
    } catch (err) {
      return this.#failed(issuesOf(err, this.#config.routesFile));
    }
    const handles = [...this.#handles.values()];
    const answers = await Promise.all(handles.map((h) => h.call<StageAnswer>({ op: 'stage', text }, STAGE_TIMEOUT_MS).catch((err: unknown) => ({
      errors: [{ file: this.#config.routesFile, line: 0, col: 0, path: '', message: `worker ${h.pid ?? '?'}: ${err instanceof Error ? err.message : String(err)}` }],
    }))));
    const refused = answers.flatMap((a) => ('errors' in a ? a.errors : []));
    if (refused.length > 0) {
      await Promise.all(handles.map((h) => h.call({ op: 'abort' }).catch(() => null)));
      return this.#failed(dedupe(refused));
    }
    const results = await Promise.all(handles.map((h) => h.call<ReloadResult>({ op: 'commit' }).catch((err: unknown): ReloadResult => ({
      result: 'failure',
      errors: [{ file: this.#config.routesFile, line: 0, col: 0, path: '', message: `worker ${h.pid ?? '?'}: ${err instanceof Error ? err.message : String(err)}` }],
    }))));
    this.#routesText = text;
    const failure = results.find((r) => r.result === 'failure');
    // A worker lost between stage and commit is replaced on the committed text, so it converges.
    const result = failure ?? results[0] ?? { result: 'failure', errors: [] };
    this.#last = { at: new Date(), result };
    if (result.result === 'success') this.#log.info({ event: 'reload', version: result.version, changed: result.changed, workers: handles.length }, `configuration ${result.version} loaded in ${handles.length} workers`);
    return result;
  }

  #failed(errors: readonly ConfigIssue[]): ReloadResult {
    this.#reloadFailures.inc({ result: 'failure' });
    for (const issue of errors) this.#log.error({ event: 'reload_failed' }, `reload failed, previous configuration kept in every worker: ${formatConfigIssue(issue)}`);
    const result: ReloadResult = { result: 'failure', errors };
    this.#last = { at: new Date(), result };
    return result;
  }

  /** The last reload's outcome; null before the first. */
  get lastReload(): { readonly at: Date; readonly result: ReloadResult } | null {
    return this.#last;
  }

  #readRoutes(): Promise<string> {
    return readFile(this.#config.routesFile, 'utf8').catch((err: unknown) => {
      throw new ConfigError([{ file: this.#config.routesFile, line: 0, col: 0, path: '', message: `cannot read file: ${err instanceof Error ? err.message : String(err)}` }]);
    });
  }

  /** Forks one worker on the current routes text; resolves once it listens. */
  #fork(): Promise<{ version: string | null }> {
    const worker = cluster.fork();
    const handle = new WorkerHandle(worker);
    this.#handles.set(worker.id, handle);
    return new Promise((resolve, reject) => {
      worker.on('message', (message: unknown) => {
        if (!isGatewayMessage<FromWorker>(message)) return;
        if (message.gw === 'hello') {
          const init: ToWorker = { gw: 'init', routesText: this.#routesText };
          worker.send(init);
        } else if (message.gw === 'started') {
          handle.listeners = message.listeners;
          resolve({ version: message.version });
        } else if (message.gw === 'start_failed') {
          reject(new GatewayError('GW_ERR_CONFIG_INVALID', [`worker ${handle.pid ?? '?'}: ${message.message}`]));
        } else {
          handle.settle(message);
        }
      });
      worker.once('exit', (code, signal) => {
        this.#handles.delete(worker.id);
        handle.failAll(`worker ${handle.pid ?? '?'} exited`);
        reject(new Error(`worker ${handle.pid ?? '?'} exited before it started (code ${code}, signal ${signal ?? 'none'})`));
        this.#exited(handle, code, signal);
      });
    });
  }

  #exited(handle: WorkerHandle, code: number | null, signal: string | null): void {
    if (this.#draining) return;
    const lived = Date.now() - handle.forkedAt;
    this.#consecutiveCrashes = lived >= STABLE_AFTER_MS ? 1 : this.#consecutiveCrashes + 1;
    const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (this.#consecutiveCrashes - 1));
    this.#log.error({ event: 'worker_exited', workerPid: handle.pid, code, signal, restartInMs: delay },
      `worker ${handle.pid ?? '?'} exited (code ${code}, signal ${signal ?? 'none'}); replacing it in ${delay} ms`);
    setTimeout(() => {
      if (this.#draining) return;
      this.#fork().then(
        () => {
          const pid = [...this.#handles.values()].at(-1)?.pid;
          this.#log.info({ event: 'worker_replaced', workerPid: pid, replaced: handle.pid }, `worker ${pid ?? '?'} replaces ${handle.pid ?? '?'}`);
        },
        (err: unknown) => this.#log.error({ event: 'worker_start_failed', err }, 'a replacement worker failed to start'),
      );
    }, delay).unref();
  }

  async #readiness(): Promise<Readiness> {
    if (this.#draining) return { ready: false, status: 'draining' };
    const handles = [...this.#handles.values()];
    if (handles.length < this.#count) return { ready: false, status: 'workers_starting' };
    const answers = await Promise.all(handles.map((h) => h.call<Readiness>({ op: 'readiness' }).catch((): Readiness => ({ ready: false, status: 'worker_unresponsive' }))));
    return answers.find((a) => !a.ready) ?? { ready: true, status: 'ready' };
  }

  /** Every worker's registry and the primary's, summed (gauges by their own aggregators). */
  async #aggregatedMetrics(): Promise<Registry> {
    const perWorker = await Promise.all([...this.#handles.values()].map((h) => h.call<MetricObjectWithValues<MetricValue<string>>[]>({ op: 'metrics' }).catch(() => null)));
    const all = [...perWorker.filter((m): m is MetricObjectWithValues<MetricValue<string>>[] => m !== null), await this.#registry.getMetricsAsJSON()];
    return AggregatorRegistry.aggregate(all);
  }

  async #metricsText(): Promise<string> {
    return (await this.#aggregatedMetrics()).metrics();
  }

  /** The status page's data, from the combined metrics and pools and the first worker's routes. */
  async #statusReport(): Promise<StatusReport> {
    const [config, upstreams, metrics] = await Promise.all([this.#configReport(), this.#upstreamsReport(), this.#aggregatedMetrics()]);
    const dump = config as { version?: string; loadedAt?: string; routes?: RouteConfig[] } | null;
    return buildStatusReport({
      version: dump?.version ?? null,
      loadedAt: dump?.loadedAt ?? null,
      lastReload: lastReloadOf(this.#last),
      routes: routeSummaries(dump?.routes ?? []),
      // The merged view has the per-worker dump's shape (plus `workers` where they disagree).
      upstreams: upstreams as UpstreamsDump,
      metrics: await metrics.getMetricsAsJSON(),
    });
  }

  async #configReport(): Promise<object | null> {
    const reports = await Promise.all([...this.#handles.values()].map((h) => h.call<{ version?: string } | null>({ op: 'config' }).catch(() => null)));
    const first = reports.find((r) => r !== null);
    if (first === undefined || first === null) return null;
    const versions = [...new Set(reports.map((r) => r?.version ?? null))];
    return { ...first, workers: this.#count, ...(versions.length > 1 ? { versionsByWorker: versions } : {}) };
  }

  async #upstreamsReport(): Promise<object> {
    const handles = [...this.#handles.values()];
    const reports = await Promise.all(handles.map((h) => h.call<{ upstreams: unknown[] }>({ op: 'upstreams' }).then((r) => ({ pid: h.pid ?? 0, report: r })).catch(() => null)));
    return mergeUpstreams(reports.filter((r) => r !== null));
  }

  /** SIGTERM/SIGINT: /readyz 503, every worker drains, then the admin listener closes. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= this.#drain();
    return this.#stopped;
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    this.#log.info({ event: 'draining', workers: this.#handles.size }, 'draining every worker');
    const exits = [...this.#handles.values()].map((h) => new Promise<void>((resolve) => {
      if (h.worker.isDead()) {
        resolve();
        return;
      }
      h.worker.once('exit', () => resolve());
      h.worker.process.kill('SIGTERM');
    }));
    const deadline = setTimeout(() => {
      for (const h of this.#handles.values()) if (!h.worker.isDead()) h.worker.process.kill('SIGKILL');
    }, this.#config.limits.shutdownTimeoutMs + 5_000);
    await Promise.all(exits);
    clearTimeout(deadline);
    await this.#admin?.close();
    if (this.#config.pidFile !== null) await rm(this.#config.pidFile, { force: true });
    this.#log.info({ event: 'stopped' }, 'gateway stopped');
  }
}

function issuesOf(err: unknown, file: string): readonly ConfigIssue[] {
  if (err instanceof ConfigError) return err.issues;
  return [{ file, line: 0, col: 0, path: '', message: err instanceof Error ? err.message : String(err) }];
}

/** Every worker reports the same problem with the same text: say it once. */
function dedupe(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = formatConfigIssue(issue);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
