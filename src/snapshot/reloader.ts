import type { Logger } from 'pino';
import type { GatewayMetrics } from '../admin/metrics.js';
import { loadRoutesConfig } from '../config/load.js';
import type { GatewayConfig } from '../config/types.js';
import { configVersion } from '../config/version.js';
import { ConfigError, type ConfigIssue, formatConfigIssue } from '../errors.js';
import type { Endpoint } from '../upstream/endpoint.js';
import type { EndpointRegistry } from '../upstream/registry.js';
import { compileSnapshot } from './compile.js';
import type { SnapshotHolder } from './holder.js';
import type { Snapshot } from './snapshot.js';

export type ReloadResult =
  | { readonly result: 'success'; readonly version: string; readonly changed: boolean }
  | { readonly result: 'failure'; readonly errors: readonly ConfigIssue[] };

/**
 * SIGHUP, POST /reload and --watch all come here: read → validate → compile → swap, all or nothing.
 * Bursts coalesce: while a reload runs, any number of further requests share one follow-up run
 * (which reads the files as they are by then).
 */
export class Reloader {
  readonly #gateway: GatewayConfig;
  readonly #holder: SnapshotHolder;
  readonly #registry: EndpointRegistry;
  readonly #metrics: GatewayMetrics;
  readonly #log: Logger;
  readonly #env: NodeJS.ProcessEnv;
  /** Replaced snapshots whose requests have not all finished yet. */
  readonly #retiredActive = new Set<Snapshot>();
  /** Endpoints dropped by a reload, and the replaced snapshots that may still use them. */
  readonly #draining = new Map<Endpoint, Set<Snapshot>>();
  #running: Promise<ReloadResult> | null = null;
  #queued: Promise<ReloadResult> | null = null;

  constructor(deps: {
    gateway: GatewayConfig;
    holder: SnapshotHolder;
    registry: EndpointRegistry;
    metrics: GatewayMetrics;
    log: Logger;
    env?: NodeJS.ProcessEnv;
  }) {
    this.#gateway = deps.gateway;
    this.#holder = deps.holder;
    this.#registry = deps.registry;
    this.#metrics = deps.metrics;
    this.#log = deps.log;
    this.#env = deps.env ?? process.env;
  }

  reload(): Promise<ReloadResult> {
    if (this.#running === null) {
      this.#running = this.#run().finally(() => {
        this.#running = null;
      });
      return this.#running;
    }
    this.#queued ??= this.#running.then(() => {
      this.#queued = null;
      return this.reload();
    });
    return this.#queued;
  }

  async #run(): Promise<ReloadResult> {
    try {
      const routes = await loadRoutesConfig(this.#gateway.routesFile, this.#env);
      const version = configVersion(routes);
      const current = this.#holder.current;
      if (current !== null && current.version === version) {
        this.#succeeded(version, false);
        return { result: 'success', version, changed: false };
      }
      const next = compileSnapshot(this.#gateway, routes, version, this.#registry);
      this.#swap(next);
      this.#succeeded(version, true);
      return { result: 'success', version, changed: true };
    } catch (err) {
      const errors: readonly ConfigIssue[] = err instanceof ConfigError
        ? err.issues
        : [{ file: this.#gateway.routesFile, line: 0, col: 0, path: '', message: err instanceof Error ? err.message : String(err) }];
      this.#metrics.configReloads.inc({ result: 'failure' });
      for (const issue of errors) this.#log.error({ event: 'reload_failed' }, `reload failed, previous configuration kept: ${formatConfigIssue(issue)}`);
      return { result: 'failure', errors };
    }
  }

  #succeeded(version: string, changed: boolean): void {
    this.#metrics.configReloads.inc({ result: 'success' });
    this.#metrics.lastReloadSuccess.set(Date.now() / 1000);
    this.#log.info({ event: 'reload', version, changed }, changed ? `configuration ${version} loaded` : `configuration ${version} unchanged`);
  }

  #swap(next: Snapshot): void {
    const previous = this.#holder.swap(next);
    previous?.stop();
    next.start();
    const removed = this.#registry.release(next.endpoints);
    if (previous !== null) {
      this.#retiredActive.add(previous);
    }
    // An endpoint the new snapshot dropped closes once no older snapshot can pick it any more.
    for (const endpoint of removed) {
      const holders = new Set<Snapshot>();
      for (const old of this.#retiredActive) if (old.endpoints.has(endpoint)) holders.add(old);
      if (holders.size === 0) this.#close(endpoint);
      else this.#draining.set(endpoint, holders);
    }
    previous?.retire(() => this.#snapshotIdle(previous));
  }

  #snapshotIdle(snapshot: Snapshot): void {
    this.#retiredActive.delete(snapshot);
    for (const [endpoint, holders] of this.#draining) {
      if (holders.delete(snapshot) && holders.size === 0) {
        this.#draining.delete(endpoint);
        this.#close(endpoint);
      }
    }
  }

  #close(endpoint: Endpoint): void {
    endpoint.close().catch((err: unknown) => this.#log.warn({ err, endpoint: endpoint.address }, 'closing a removed endpoint failed'));
  }
}
