// Keeps one JwtProvider per jwtProviders entry alive across reloads while its identity
// (JwtProvider.keyOf: name, issuer, audiences, JWKS source, cache age, cooldown, algorithms, clock
// skew, forwarded claims) is unchanged, so a reload neither refetches keys it already has nor
// empties the verification cache. Providers no live snapshot uses are stopped by retain().
// The same lifecycle as the DNS DiscoveryRegistry: prepare → build the snapshot → swap → retain.
//
// jwksFile is read on every prepare (load and each reload), for every provider that has one, and
// all files are read and checked before any provider changes: a broken file (missing, not JSON,
// not a JWKS, a key that does not import, an RSA key under 2048 bits, a secret too short for its
// algorithm, no usable key) throws a JwksFileError naming the file (and the key), which fails the
// reload while the running snapshot keeps its providers and their keys. A good file's keys are
// installed in place (keys that did not change keep their cached tokens). Trade-off: they are live
// from then on even if the reload fails later for another reason — a key file is, like a fetched
// JWKS, the newest truth, not part of a transaction.
//
// Cost: per prepare, one read and parse per jwksFile, one import per new key; new jwksUri
// providers fetch once, and prepare waits for that, bounded by FIRST_FETCH_WAIT_MS.

import { KeptResources } from '../../src/snapshot/kept-resources.js';
import { type ConfigIssue, ConfigError } from '../../src/errors.js';
import type { JwtProviderConfig } from '../../src/config/types.js';
import { report, type JwtEvents } from './events.js';
import { buildKeys, describe, JwksFormatError, type KeySet } from './keys.js';
import { JwtProvider, type JwtProviderOptions } from './provider.js';
import { readJwksDocument } from './source.js';

// How long a (re)load waits for a new jwksUri provider's first fetch before going live without
// it (its requests then fail as unknown_kid until a fetch succeeds). Covers one fetch timeout.
export const FIRST_FETCH_WAIT_MS = 5000;

/**
 * A jwksFile that cannot be used. A ConfigError (GW_ERR_CONFIG_INVALID) whose issues carry the
 * file path (and, for a key, its position and kid), one issue per problem, of every broken file.
 */
export class JwksFileError extends ConfigError {
  /** The broken files, absolute paths. */
  readonly files: readonly string[];

  constructor(issues: readonly ConfigIssue[]) {
    super(issues);
    this.name = 'JwksFileError';
    this.files = Object.freeze([...new Set(issues.map((issue) => issue.file))]);
  }
}

export interface JwtRegistryOptions extends JwtProviderOptions {
  readonly firstFetchWaitMs?: number;
}

export class JwtProviderRegistry {
  readonly #providers = new KeptResources<JwtProvider>();
  readonly #events: JwtEvents;
  readonly #options: JwtRegistryOptions;

  constructor(events: JwtEvents, options: JwtRegistryOptions = {}) {
    this.#events = events;
    this.#options = options;
  }

  /**
   * Makes sure every provider has a running JwtProvider with keys: re-reads every jwksFile
   * (throwing JwksFileError, with nothing changed, when one is broken), then creates and starts
   * the jwksUri providers that are new and waits, bounded, for their first fetch.
   */
  async prepare(providers: readonly JwtProviderConfig[]): Promise<void> {
    const files = providers.filter((config) => config.jwksFile !== null);
    const loads = await Promise.all(files.map((config) => this.#loadFile(config)));
    const issues = loads.flatMap((load) => ('issues' in load ? load.issues : []));
    if (issues.length > 0) throw new JwksFileError(issues);

    for (const load of loads) {
      if ('issues' in load) continue;
      const { config, set, started } = load;
      const provider = this.#provide(config);
      provider.start(); // for a file: only settles ready()
      const changed = provider.install(set);
      const detail = { trigger: 'file' as const, source: config.jwksFile!, keys: set.size, reason: null, durationMs: performance.now() - started };
      report(() => this.#events.jwksFetch(config.name, changed ? 'success' : 'unchanged', detail));
    }

    const fresh: Promise<void>[] = [];
    for (const config of providers) {
      if (config.jwksUri === null || this.#providers.has(JwtProvider.keyOf(config))) continue;
      const provider = this.#provide(config);
      provider.start();
      fresh.push(provider.ready());
    }
    if (fresh.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#options.firstFetchWaitMs ?? FIRST_FETCH_WAIT_MS);
    });
    await Promise.race([Promise.all(fresh), bound]);
    clearTimeout(timer);
  }

  /** The provider `prepare` made (or kept) for this config. */
  get(config: JwtProviderConfig): JwtProvider {
    const provider = this.#providers.get(JwtProvider.keyOf(config));
    if (provider === undefined) throw new Error(`JWT provider "${config.name}": not prepared`);
    return provider;
  }

  /** Stops and forgets every provider the given configs (the live snapshot's) do not use. */
  retain(providers: readonly JwtProviderConfig[]): void {
    this.#providers.retain(providers.map((config) => JwtProvider.keyOf(config)));
  }

  stopAll(): void {
    this.#providers.stopAll();
  }

  #provide(config: JwtProviderConfig): JwtProvider {
    const key = JwtProvider.keyOf(config);
    let provider = this.#providers.get(key);
    if (provider === undefined) {
      provider = new JwtProvider(config, this.#events, this.#options);
      this.#providers.set(key, provider);
    }
    return provider;
  }

  async #loadFile(config: JwtProviderConfig): Promise<{ config: JwtProviderConfig; set: KeySet; started: number } | { issues: ConfigIssue[] }> {
    const file = config.jwksFile!;
    const started = performance.now();
    const issue = (path: string, message: string): ConfigIssue => ({ file, line: 0, col: 0, path, message: `${message} (jwtProviders.${config.name})` });
    const previous = this.#providers.get(JwtProvider.keyOf(config))?.keys ?? null;
    let issues: ConfigIssue[];
    try {
      const built = await buildKeys(await readJwksDocument(file), { algorithms: config.algorithms, allowSymmetric: true, previous });
      issues = built.rejected.map((key) => issue(`keys[${key.index}]`, `${key.kid === null ? 'key without kid' : `key "${key.kid}"`}: ${key.reason}`));
      if (issues.length === 0 && built.set.size === 0) {
        issues.push(issue('', `no key usable with ${config.algorithms.join(', ')}`));
      }
      if (issues.length === 0) return { config, set: built.set, started };
    } catch (err) {
      issues = [issue('', err instanceof JwksFormatError ? err.message : describe(err))];
    }
    const reason = issues.map((i) => (i.path === '' ? i.message : `${i.path}: ${i.message}`)).join('; ');
    const keys = this.#providers.get(JwtProvider.keyOf(config))?.keys.size ?? 0;
    const detail = { trigger: 'file' as const, source: file, keys, reason, durationMs: performance.now() - started };
    report(() => this.#events.jwksFetch(config.name, 'failure', detail));
    return { issues };
  }
}
