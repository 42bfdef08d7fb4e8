import type { Logger } from 'pino';
import type { GatewayMetrics } from '../admin/metrics.js';
import { loadRoutesConfig } from '../config/load.js';
import type { GatewayConfig } from '../config/types.js';
import { configVersion } from '../config/version.js';
import { ConfigError, type ConfigIssue, formatConfigIssue } from '../errors.js';
import type { Endpoint } from '../upstream/endpoint.js';
import type { EndpointRegistry } from '../upstream/registry.js';
import type { BuiltinFilters } from '../filters/builtins.js';
import type { RouteConfig } from '../config/types.js';
import { DiscoveryRegistry } from '../upstream/discovery/registry.js';
import { type DnsDiscoveryEvents, SILENT_DNS_DISCOVERY_EVENTS } from '../upstream/discovery/dns.js';
import { coalesced } from './coalesce.js';
import { compileSnapshot, type UpstreamEvents } from './compile.js';
import type { SnapshotHolder } from './holder.js';
import type { Snapshot } from './snapshot.js';

export type ReloadResult =
  | { readonly result: 'success'; readonly version: string; readonly changed: boolean }
  | { readonly result: 'failure'; readonly errors: readonly ConfigIssue[] };

/** A reload prepared but not yet live (Reloader.stage). */
export interface StagedReload {
  /** The staged configuration's version; null when staging failed. */
  readonly version: string | null;
  /** Why staging failed (absent when it succeeded). */
  readonly errors?: readonly ConfigIssue[];
  /** Swaps the staged snapshot in (or records the failure) and reports the result. */
  commit(): ReloadResult;
  /** Drops the staged snapshot: the running one stays. */
  abort(): void;
}

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
  readonly #discoveries: DiscoveryRegistry;
  readonly #events: UpstreamEvents | undefined;
  readonly #filters: BuiltinFilters | null;
  /** Replaced snapshots whose requests have not all finished yet. */
  readonly #retiredActive = new Set<Snapshot>();
  #last: { readonly at: Date; readonly result: ReloadResult } | null = null;

  constructor(deps: {
    gateway: GatewayConfig;
    holder: SnapshotHolder;
    registry: EndpointRegistry;
    metrics: GatewayMetrics;
    log: Logger;
    env?: NodeJS.ProcessEnv;
    /** Upstream events (ejections, panic, discovery) go here; silent when absent. */
    events?: UpstreamEvents & DnsDiscoveryEvents;
    /** The built-in filters (JWT auth); none when absent (tests of reloading alone). */
    filters?: BuiltinFilters;
  }) {
    this.#gateway = deps.gateway;
    this.#holder = deps.holder;
    this.#registry = deps.registry;
    this.#metrics = deps.metrics;
    this.#log = deps.log;
    this.#env = deps.env ?? process.env;
    this.#events = deps.events;
    this.#filters = deps.filters ?? null;
    this.#discoveries = new DiscoveryRegistry(deps.events ?? SILENT_DNS_DISCOVERY_EVENTS);
  }

  /** Stops DNS discovery and the built-in filters' parts; the gateway calls it when it stops. */
  async stop(): Promise<void> {
    this.#discoveries.stopAll();
    await this.#filters?.stop();
  }

  /** The last reload's outcome and when it ended; null before the first. */
  get lastResult(): { readonly at: Date; readonly result: ReloadResult } | null {
    return this.#last;
  }

  readonly reload: () => Promise<ReloadResult> = coalesced(() => this.#run());

  async #run(): Promise<ReloadResult> {
    const staged = await this.stage();
    return staged.commit();
  }

  /**
   * The first half of a reload: read (or take `text` as the routes file's content), validate,
   * fetch what filters need, compile the next snapshot; nothing is swapped. `commit()` then swaps
   * it in (and reports the failure, when staging failed); `abort()` drops it. Worker processes
   * stage the same text and commit only once every one of them staged it: all or none.
   */
  async stage(text?: string): Promise<StagedReload> {
    try {
      const routes = await loadRoutesConfig(this.#gateway.routesFile, this.#env, text);
      const version = configVersion(routes);
      const current = this.#holder.current;
      // Key material is re-read on every reload, also when the routes file is unchanged (SIGHUP
      // after a jwksFile rotation); a broken key file fails the reload here.
      const filters = this.#filters;
      await filters?.prepare(routes);
      if (current !== null && current.version === version) {
        return {
          version,
          commit: () => {
            this.#succeeded(version, false);
            return { result: 'success', version, changed: false };
          },
          abort: () => undefined,
        };
      }
      await this.#discoveries.prepare(routes.upstreams);
      const next = compileSnapshot(this.#gateway, routes, version, this.#registry, {
        discoveryFor: (upstream) => this.#discoveries.get(upstream),
        events: this.#events,
        onMembersReplaced: () => this.collectEndpoints(),
        ...(filters === null ? {} : { filtersFor: (route: RouteConfig) => filters.filtersFor(route, routes) }),
      });
      return {
        version,
        commit: () => {
          this.#swap(next);
          this.#discoveries.retain(routes.upstreams);
          filters?.retain(routes);
          this.#succeeded(version, true);
          return { result: 'success', version, changed: true };
        },
        abort: () => this.#dropUnused(),
      };
    } catch (err) {
      const errors: readonly ConfigIssue[] = err instanceof ConfigError
        ? err.issues
        : [{ file: this.#gateway.routesFile, line: 0, col: 0, path: '', message: err instanceof Error ? err.message : String(err) }];
      this.#dropUnused();
      return {
        version: null,
        errors,
        commit: () => this.#failed(errors),
        abort: () => undefined,
      };
    }
  }

  /** Providers started for a configuration that is not going live are not needed. */
  #dropUnused(): void {
    this.#discoveries.retain(this.#holder.current?.routesConfig.upstreams ?? []);
    this.#filters?.retain(this.#holder.current?.routesConfig ?? null);
  }

  /** Counts and logs a reload that failed (here, or in another worker: `errors` say why). */
  #failed(errors: readonly ConfigIssue[]): ReloadResult {
    this.#metrics.configReloads.inc({ result: 'failure' });
    for (const issue of errors) this.#log.error({ event: 'reload_failed' }, `reload failed, previous configuration kept: ${formatConfigIssue(issue)}`);
    const result: ReloadResult = { result: 'failure', errors };
    this.#last = { at: new Date(), result };
    return result;
  }

  #succeeded(version: string, changed: boolean): void {
    this.#metrics.configReloads.inc({ result: 'success' });
    this.#metrics.lastReloadSuccess.set(Date.now() / 1000);
    this.#last = { at: new Date(), result: { result: 'success', version, changed } };
    this.#log.info({ event: 'reload', version, changed }, changed ? `configuration ${version} loaded` : `configuration ${version} unchanged`);
  }

  #swap(next: Snapshot): void {
    const previous = this.#holder.swap(next);
    this.#registry.warmNewEndpoints();
    previous?.stop();
    next.start();
    if (previous !== null) this.#retiredActive.add(previous);
    this.collectEndpoints();
    previous?.retire(() => {
      this.#retiredActive.delete(previous);
      this.collectEndpoints();
    });
  }

  /**
   * Closes the endpoints no snapshot can pick any more: not listed by the current one, nor by a
   * replaced one with requests still running. Runs after a swap, when a replaced snapshot's last
   * request ends, and when discovery changes a live pool's members.
   */
  collectEndpoints(): void {
    const current = this.#holder.current?.endpoints ?? new Set<Endpoint>();
    const reachable = new Set<Endpoint>();
    for (const old of this.#retiredActive) for (const endpoint of old.endpoints) reachable.add(endpoint);
    for (const endpoint of this.#registry.collect(current, reachable)) this.#close(endpoint);
  }

  #close(endpoint: Endpoint): void {
    this.#registry.retire(endpoint).catch((err: unknown) => this.#log.warn({ err, endpoint: endpoint.address }, 'closing a removed endpoint failed'));
  }
}
