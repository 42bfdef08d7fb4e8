import { writeFile, rm } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { GatewayMetrics } from './admin/metrics.js';
import { configDump, endpointStateCounts, panicStates, upstreamsDump } from './admin/dumps.js';
import { createAdminServer } from './admin/server.js';
import { buildStatusReport, lastReloadOf, routeSummaries, type StatusReport } from './admin/status.js';
import { UpstreamEventLog } from './admin/upstream-events.js';
import { BuiltinFilters } from './filters/builtins.js';
import type { GatewayConfig, ListenerTlsConfig } from './config/types.js';
import { ConfigError, GatewayError, formatConfigIssue } from './errors.js';
import { createLogger } from './logging.js';
import { HttpsRedirector } from './proxy/redirect.js';
import { TlsTerminator } from './tls/terminator.js';
import { ProxyEngine } from './proxy/engine.js';
import { createPublicListener } from './proxy/listener.js';
import { SnapshotHolder } from './snapshot/holder.js';
import { type ReloadResult, Reloader, type StagedReload } from './snapshot/reloader.js';
import { EndpointRegistry } from './upstream/registry.js';

export interface GatewayOptions {
  readonly config: GatewayConfig;
  /** Defaults to a pino logger writing JSON lines to stdout at `log.level`. */
  readonly logger?: Logger;
  readonly env?: NodeJS.ProcessEnv;
  /**
   * `worker`: one of several processes serving the same listeners (`workers` > 1). It starts no
   * admin listener and writes no pid file (the primary does both), and its routes come from the
   * primary (start's routesText, stageRoutes) rather than from SIGHUP.
   */
  readonly role?: 'standalone' | 'worker';
}

export interface BoundAddress {
  readonly name: string;
  readonly address: string;
  readonly port: number;
}

/**
 * The running gateway: public listeners, the admin listener, and the snapshot they serve. Signals
 * are wired by the CLI, not here, so tests can run several gateways in one process.
 */
export class Gateway {
  readonly config: GatewayConfig;
  readonly log: Logger;
  readonly metrics: GatewayMetrics;
  readonly holder = new SnapshotHolder();
  readonly #registry = new EndpointRegistry();
  readonly #reloader: Reloader;
  readonly #role: 'standalone' | 'worker';
  readonly #filters: BuiltinFilters;
  readonly #listeners: { name: string; app: FastifyInstance }[] = [];
  readonly #certificates: { tls: TlsTerminator; config: ListenerTlsConfig }[] = [];
  #admin: FastifyInstance | null = null;
  #engine: ProxyEngine | null = null;
  #draining = false;
  #stopped: Promise<void> | null = null;

  constructor(options: GatewayOptions) {
    this.config = options.config;
    this.#role = options.role ?? 'standalone';
    this.log = options.logger ?? createLogger(options.config.log.level, { pid: process.pid });
    this.metrics = new GatewayMetrics({
      endpointStates: () => endpointStateCounts(this.holder.current, this.#registry.draining()),
      panicStates: () => panicStates(this.holder.current),
    }, { redis: this.config.redis !== null });
    this.#reloader = new Reloader({
      gateway: this.config,
      holder: this.holder,
      registry: this.#registry,
      metrics: this.metrics,
      log: this.log,
      env: options.env,
      events: new UpstreamEventLog(this.log, this.metrics),
      filters: (this.#filters = new BuiltinFilters(this.metrics, this.log, { redis: this.config.redis })),
    });
  }

  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Loads the routes file (or `routesText`, its content as the primary read it) and starts
   * listening; throws ConfigError when the first load fails.
   */
  async start(options: { readonly routesText?: string } = {}): Promise<void> {
    // Redis connects in the background: until it answers, limits apply by failureMode.
    await this.#filters.start();
    const first = options.routesText === undefined ? await this.#reloader.reload() : (await this.#reloader.stage(options.routesText)).commit();
    if (first.result === 'failure') throw new ConfigError(first.errors);
    // Certificates are checked before anything listens: a bad one fails the start, naming its file.
    const terminators = await Promise.all(this.config.listeners.map((listener, i) => (listener.tls === null
      ? null
      : TlsTerminator.load(listener.tls, { path: `listeners[${i}].tls`, configFile: this.config.file }))));
    for (const t of terminators) for (const warning of t?.warnings ?? []) this.log.warn({ event: 'tls_warning' }, formatConfigIssue(warning));

    const engine = (this.#engine = new ProxyEngine({
      holder: this.holder,
      metrics: this.metrics,
      accessLog: this.config.log.accessLog ? this.log.child({ log: 'access' }) : null,
      accessLogSample: this.config.log.accessLogSamplePercent / 100,
      trustedProxies: this.config.trustedProxies,
      bodyLimit: this.config.limits.bodyLimit,
    }));

    if (this.#role === 'standalone') this.#admin = createAdminServer({
      readiness: () => this.readiness(),
      metrics: () => this.metrics.registry.metrics(),
      config: () => this.configReport(),
      upstreams: () => this.upstreamsReport(),
      reload: () => this.reload(),
      status: () => this.statusReport(),
    });
    if (this.#admin !== null) await this.#listen(this.#admin, 'admin', this.config.admin.address, this.config.admin.port);

    const firstTls = this.config.listeners.find((l) => l.tls !== null);
    const httpsPort = (): number => this.addresses().find((a) => a.name === firstTls?.name)?.port ?? firstTls?.port ?? 443;
    for (const [i, listener] of this.config.listeners.entries()) {
      const tls = terminators[i] ?? null;
      const app = createPublicListener(listener, this.config.limits, engine, (err) => this.log.error({ err }, 'internal error while handling a request'), {
        tls,
        redirect: listener.redirectToHttps ? new HttpsRedirector(httpsPort) : null,
      });
      await this.#listen(app, listener.name, listener.address, listener.port);
      this.#listeners.push({ name: listener.name, app });
      if (tls !== null && listener.tls !== null) this.#certificates.push({ tls, config: listener.tls });
    }
    if (this.#role === 'worker') {
      this.log.info({ event: 'worker_started', version: this.holder.current?.version, listeners: this.addresses() }, 'worker started');
      return;
    }
    if (this.config.pidFile !== null) await writeFile(this.config.pidFile, `${process.pid}\n`);
    this.log.info({ event: 'started', version: this.holder.current?.version, listeners: this.addresses() }, 'gateway started');
  }

  async #listen(app: FastifyInstance, name: string, host: string, port: number): Promise<void> {
    try {
      await app.listen({ host, port });
    } catch (err) {
      throw new GatewayError('GW_ERR_LISTEN_FAILED', [`${name} ${host}:${port}`, (err as Error).message], { cause: err });
    }
  }

  /**
   * SIGHUP and POST /reload: the routes file with its key material, and every TLS listener's
   * certificate files. A certificate that fails to load keeps the previous one (logged, counted
   * as a failed reload); the result reports the routes file, which reloads independently.
   */
  async reload(): Promise<ReloadResult> {
    const [routes] = await Promise.all([this.#reloader.reload(), this.reloadCertificates()]);
    return routes;
  }

  /** A worker's half of a reload the primary drives: stage the routes text it read (see Reloader.stage). */
  stageRoutes(text: string): Promise<StagedReload> {
    return this.#reloader.stage(text);
  }


  /** Every TLS listener's certificate files, re-read; a failure keeps the old ones (logged, counted). */
  async reloadCertificates(): Promise<void> {
    await Promise.all(this.#certificates.map(async ({ tls, config }) => {
      try {
        const result = await tls.reload(config);
        for (const warning of result.warnings) this.log.warn({ event: 'tls_warning' }, formatConfigIssue(warning));
        if (result.changed) this.log.info({ event: 'tls_reloaded' }, 'TLS certificates reloaded');
      } catch (err) {
        this.metrics.configReloads.inc({ result: 'failure' });
        const issues = err instanceof ConfigError ? err.issues.map(formatConfigIssue) : [String(err)];
        for (const issue of issues) this.log.error({ event: 'tls_reload_failed' }, `certificate reload failed, previous certificates kept: ${issue}`);
      }
    }));
  }

  /** GET /readyz of this process: a snapshot loaded, not draining, and no dependency missing. */
  readiness(): { ready: boolean; status: string } {
    const loaded = this.holder.current !== null;
    const dependencies = this.#filters.ready;
    const ready = loaded && !this.#draining && dependencies;
    return { ready, status: ready ? 'ready' : this.#draining ? 'draining' : !loaded ? 'loading' : 'ratelimit_store_unavailable' };
  }

  /** GET /upstreams of this process. */
  upstreamsReport(): object {
    return upstreamsDump(this.holder.current, this.#registry.draining());
  }

  /** GET /config of this process; null before the first load. */
  configReport(): object | null {
    const snapshot = this.holder.current;
    return snapshot === null ? null : configDump(snapshot);
  }

  /** GET /status: this process's figures, gathered as plain data for buildStatusReport. */
  async statusReport(): Promise<StatusReport> {
    const current = this.holder.current;
    return buildStatusReport({
      version: current?.version ?? null,
      loadedAt: current?.loadedAt.toISOString() ?? null,
      lastReload: lastReloadOf(this.#reloader.lastResult),
      routes: routeSummaries(current?.routesConfig.routes ?? []),
      upstreams: upstreamsDump(current, this.#registry.draining()),
      metrics: await this.metrics.registry.getMetricsAsJSON(),
    });
  }

  /** The addresses actually bound (port 0 in config means "any free port", handy for tests). */
  addresses(): BoundAddress[] {
    const out: BoundAddress[] = [];
    const add = (name: string, app: FastifyInstance | null): void => {
      const addr = app?.server.address();
      if (addr !== null && addr !== undefined && typeof addr === 'object') out.push({ name, address: addr.address, port: addr.port });
    };
    add('admin', this.#admin);
    for (const l of this.#listeners) add(l.name, l.app);
    return out;
  }

  /**
   * Graceful drain (SPEC §2): /readyz turns 503, public listeners stop accepting, in-flight
   * requests finish within shutdownTimeout, then everything closes. Idempotent.
   */
  stop(): Promise<void> {
    this.#stopped ??= this.#drain();
    return this.#stopped;
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    this.#engine?.startDraining();
    this.log.info({ event: 'draining' }, 'draining: no new connections, finishing in-flight requests');
    const closing = Promise.all(this.#listeners.map((l) => l.app.close()));
    // Keep-alive connections become idle as their last response ends; close each then, or a
    // client that keeps its connection open would hold the drain until keepAliveTimeout.
    const idleCloser = setInterval(() => {
      for (const l of this.#listeners) l.app.server.closeIdleConnections();
    }, 100);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.config.limits.shutdownTimeoutMs);
      timer.unref();
    });
    const outcome = await Promise.race([closing.then(() => 'closed' as const), timedOut]);
    clearTimeout(timer);
    clearInterval(idleCloser);
    if (outcome === 'timeout') {
      this.log.warn({ event: 'drain_timeout' }, 'shutdownTimeout reached: closing remaining connections');
      for (const l of this.#listeners) l.app.server.closeAllConnections();
      await closing;
    }
    this.holder.current?.stop();
    await this.#reloader.stop();
    await this.#registry.closeAll();
    await this.#admin?.close();
    if (this.config.pidFile !== null) await rm(this.config.pidFile, { force: true });
    this.log.info({ event: 'stopped' }, 'gateway stopped');
  }
}
