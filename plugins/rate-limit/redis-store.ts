// The shared store: GCRA in Redis (one node or a Cluster) through one Lua script, with a hard
// time budget and a fallback, so Redis can slow down or vanish without the gateway waiting on it.
//
// Batching: every decision asked for in one turn of the event loop goes out in one script call at
// the next turn (setImmediate): under load, one EVALSHA carries tens of requests, which is what
// keeps a limited route near the speed of an unlimited one (load-tests/ratelimit.ts); when idle a
// request waits one loop turn. On a Cluster, one call per hash slot in the batch.
//
// Time budget: each call races its own timer of `commandTimeout`; a late answer is dropped. No
// request waits longer, whatever Redis does (a stall from CLIENT PAUSE, a dead host, a failover).
//
// Failure: the first failed call marks the store down, and from then on decisions are made at once
// without Redis, by `failureMode`: `local` limits in-process at limit / N (N = instances seen
// heartbeating before the outage), `open` allows, `closed` refuses (503). A probe (the heartbeat
// script) runs every probeInterval while down, and right away when the client reconnects; its
// first success brings Redis back. So an outage costs one commandTimeout to the requests of one
// batch, not to every request (the failure mode users report of Envoy's ratelimit service).
//
// ioredis is set up for this: no offline queue (with its defaults one command against a dead
// Redis waited 73 s here), no resending of unanswered commands after a reconnect (their requests
// were answered already), reconnecting in the background every second at most.

import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import type { RedisConfig } from '../../src/config/types.js';
import { SILENT_RATE_LIMIT_EVENTS, type RateLimitEvents, type StoreFailure } from './events.js';
import type { GcraParams, PolicyState } from './gcra.js';
import { LocalStore } from './local-store.js';
import { HEARTBEAT_SCRIPT, RATE_LIMIT_SCRIPT } from './script.js';
import type { RateLimitStore, Verdict } from './store.js';

/** Requests per script call at most; a fuller batch is sent at once. */
export const MAX_BATCH = 128;
export const PROBE_INTERVAL_MS = 500;
/** SPEC §3.1: instances heartbeat every 5 s; N counts those seen within the last 30 s. */
export const HEARTBEAT_INTERVAL_MS = 5_000;
export const HEARTBEAT_WINDOW_MS = 30_000;
const RECONNECT_MAX_DELAY_MS = 1_000;
const CONNECT_TIMEOUT_MS = 2_000;
/** Values the script returns per policy: allowed, remaining, retry-after ms, reset ms. */
const FIELDS = 4;

export interface RedisStoreOptions {
  readonly config: RedisConfig;
  readonly events?: RateLimitEvents;
  /** ioredis auto-pipelining; off: measured slower than without, with this store's own batching. */
  readonly autoPipelining?: boolean;
  readonly maxBatch?: number;
  readonly probeIntervalMs?: number;
  readonly heartbeatIntervalMs?: number;
  readonly heartbeatWindowMs?: number;
  /** Bound of the in-process fallback store. */
  readonly localMaxKeys?: number;
}

interface ScriptCommands {
  gatewayRateLimit(...args: (string | number)[]): Promise<unknown>;
  gatewayHeartbeat(key: string, id: string, windowMs: number): Promise<unknown>;
}

type Client = (Redis | Cluster) & ScriptCommands;

interface Waiter {
  readonly params: readonly GcraParams[];
  readonly keys: readonly string[];
  readonly resolve: (verdict: Verdict) => void;
}

interface Batch {
  readonly waiters: Waiter[];
  keyCount: number;
}

class DeadlineExceeded extends Error {}

export class RedisStore implements RateLimitStore {
  readonly instanceId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  readonly #config: RedisConfig;
  readonly #events: RateLimitEvents;
  readonly #client: Client;
  readonly #cluster: boolean;
  readonly #fallbackStore: LocalStore;
  readonly #maxBatch: number;
  readonly #probeIntervalMs: number;
  readonly #heartbeatIntervalMs: number;
  readonly #heartbeatWindowMs: number;
  readonly #instancesKey: string;
  /** Batches being filled this turn, by hash slot (always slot 0 on one node). */
  readonly #batches = new Map<number, Batch>();
  #flushScheduled = false;
  #up = false;
  /** The client's last 'error' event since the store was last up: why a connection closed. */
  #lastClientError: string | null = null;
  #instances = 1;
  #probing = false;
  #probeTimer: NodeJS.Timeout | null = null;
  #heartbeatTimer: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(options: RedisStoreOptions) {
    this.#config = options.config;
    this.#events = options.events ?? SILENT_RATE_LIMIT_EVENTS;
    this.#maxBatch = options.maxBatch ?? MAX_BATCH;
    this.#probeIntervalMs = options.probeIntervalMs ?? PROBE_INTERVAL_MS;
    this.#heartbeatIntervalMs = options.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS;
    this.#heartbeatWindowMs = options.heartbeatWindowMs ?? HEARTBEAT_WINDOW_MS;
    this.#fallbackStore = new LocalStore({ maxKeys: options.localMaxKeys });
    this.#instancesKey = `${options.config.keyPrefix}_instances`;
    this.#cluster = options.config.cluster !== null;
    this.#client = createClient(options.config, options.autoPipelining ?? false);
    this.#client.defineCommand('gatewayRateLimit', { lua: RATE_LIMIT_SCRIPT });
    this.#client.defineCommand('gatewayHeartbeat', { lua: HEARTBEAT_SCRIPT, numberOfKeys: 1 });
    // Without a listener an 'error' event would end the process; reconnecting is ioredis' job,
    // and what an error means for requests is decided per call.
    this.#client.on('error', (err: Error) => {
      this.#lastClientError = err.message;
    });
    this.#client.on('ready', () => void this.#probe());
    this.#client.on('close', () => this.#markDown(this.#lastClientError === null ? 'connection closed' : `connection closed: ${this.#lastClientError}`));
  }

  /** Whether decisions currently go through Redis. */
  get up(): boolean {
    return this.#up;
  }

  /** The N of limit / N: instances seen heartbeating (1 until the first heartbeat). */
  get instances(): number {
    return this.#instances;
  }

  /** False only when Redis is down and failureMode is `closed` (requests get 503). */
  get ready(): boolean {
    return this.#up || this.#config.failureMode !== 'closed';
  }

  get fallbackKeys(): number {
    return this.#fallbackStore.size;
  }

  start(): void {
    this.#events.storeState(false, 'not connected yet', this.#config.failureMode);
    this.#client.connect().catch((err: unknown) => {
      this.#lastClientError = err instanceof Error ? err.message : String(err);
    });
    this.#heartbeatTimer = setInterval(() => void this.#heartbeat(), this.#heartbeatIntervalMs);
    this.#heartbeatTimer.unref();
    this.#startProbing();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#heartbeatTimer !== null) clearInterval(this.#heartbeatTimer);
    this.#stopProbing();
    this.#flush();
    if (this.#up) {
      // Leave the instance count at once rather than when the window passes.
      await this.#withDeadline(this.#client.zrem(this.#instancesKey, this.instanceId)).catch(() => undefined);
    }
    await this.#withDeadline(this.#client.quit()).catch(() => undefined);
    this.#client.disconnect();
  }

  decide(params: readonly GcraParams[], keys: readonly string[]): Verdict | Promise<Verdict> {
    if (!this.#up || this.#stopped) return this.#fallback(params, keys);
    if (!this.#cluster) return this.#enqueue(0, params, keys);
    const slot = calculateSlot(keys[0]!);
    let sameSlot = true;
    for (let i = 1; i < keys.length && sameSlot; i++) sameSlot = calculateSlot(keys[i]!) === slot;
    return sameSlot ? this.#enqueue(slot, params, keys) : this.#decideAcrossSlots(params, keys);
  }

  /**
   * A request whose keys live on several Cluster slots: one call per slot, sent together. Each
   * slot's policies are all-or-nothing; across slots they cannot be (Redis runs a script on one
   * slot), so a request refused by one slot's policy has still spent from the others'.
   */
  async #decideAcrossSlots(params: readonly GcraParams[], keys: readonly string[]): Promise<Verdict> {
    const bySlot = new Map<number, number[]>();
    keys.forEach((key, i) => {
      const slot = calculateSlot(key);
      const list = bySlot.get(slot);
      if (list === undefined) bySlot.set(slot, [i]);
      else list.push(i);
    });
    const groups = [...bySlot.entries()];
    const verdicts = await Promise.all(groups.map(([slot, indices]) => this.#enqueue(slot, indices.map((i) => params[i]!), indices.map((i) => keys[i]!))));
    const states = new Array<PolicyState>(keys.length);
    let instances = 1;
    for (let g = 0; g < groups.length; g++) {
      const verdict = verdicts[g]!;
      if (verdict.kind === 'store_error') return verdict;
      instances = Math.max(instances, verdict.instances);
      groups[g]![1].forEach((index, j) => {
        states[index] = verdict.states[j]!;
      });
    }
    return { kind: 'decided', states, instances };
  }

  #enqueue(slot: number, params: readonly GcraParams[], keys: readonly string[]): Promise<Verdict> {
    return new Promise<Verdict>((resolve) => {
      let batch = this.#batches.get(slot);
      if (batch === undefined) {
        batch = { waiters: [], keyCount: 0 };
        this.#batches.set(slot, batch);
      }
      batch.waiters.push({ params, keys, resolve });
      batch.keyCount += keys.length;
      if (batch.waiters.length >= this.#maxBatch) {
        this.#batches.delete(slot);
        this.#send(batch);
      } else if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(this.#flush);
      }
    });
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    for (const batch of this.#batches.values()) this.#send(batch);
    this.#batches.clear();
  };

  #send(batch: Batch): void {
    if (!this.#up) {
      // Marked down since these were queued: no point in a call bound to fail.
      for (const w of batch.waiters) w.resolve(this.#fallback(w.params, w.keys));
      return;
    }
    const waiters = batch.waiters;
    const args: (string | number)[] = [batch.keyCount];
    for (const w of waiters) for (const key of w.keys) args.push(key);
    args.push(waiters.length);
    for (const w of waiters) args.push(specOf(w.params));
    const started = performance.now();
    this.#withDeadline(this.#client.gatewayRateLimit(...args)).then(
      (result) => {
        this.#events.storeRoundTrip((performance.now() - started) / 1000);
        this.#answer(waiters, result, batch.keyCount);
      },
      (err: unknown) => this.#failed(waiters, err),
    );
  }

  #answer(waiters: readonly Waiter[], result: unknown, keyCount: number): void {
    if (!Array.isArray(result) || result.length !== keyCount * FIELDS) {
      this.#failed(waiters, new Error(`unexpected script result (${Array.isArray(result) ? `${result.length} values` : typeof result})`));
      return;
    }
    const values = result as number[];
    let at = 0;
    for (const w of waiters) {
      const states = new Array<PolicyState>(w.keys.length);
      for (let i = 0; i < w.keys.length; i++, at += FIELDS) {
        states[i] = { allowed: values[at] === 1, remaining: values[at + 1]!, retryAfterMs: values[at + 2]!, resetMs: values[at + 3]! };
      }
      w.resolve({ kind: 'decided', states, instances: 1 });
    }
  }

  #failed(waiters: readonly Waiter[], err: unknown): void {
    const reason = failureOf(err);
    const detail = this.#describe(err);
    this.#events.storeError(reason, detail);
    this.#markDown(`${reason}: ${detail}`);
    for (const w of waiters) w.resolve(this.#fallback(w.params, w.keys));
  }

  #fallback(params: readonly GcraParams[], keys: readonly string[]): Verdict {
    switch (this.#config.failureMode) {
      case 'local':
        return this.#fallbackStore.decideScaled(params, keys, this.#instances);
      case 'open':
        return { kind: 'store_error', allow: true };
      case 'closed':
        return { kind: 'store_error', allow: false };
    }
  }

  #markDown(reason: string): void {
    if (!this.#up || this.#stopped) return;
    this.#up = false;
    this.#events.storeState(false, reason, this.#config.failureMode);
    this.#startProbing();
  }

  #markUp(): void {
    if (this.#up || this.#stopped) return;
    this.#up = true;
    this.#lastClientError = null;
    this.#stopProbing();
    this.#events.storeState(true, null, this.#config.failureMode);
  }

  #startProbing(): void {
    if (this.#probeTimer !== null || this.#stopped) return;
    this.#probeTimer = setInterval(() => void this.#probe(), this.#probeIntervalMs);
    this.#probeTimer.unref();
  }

  #stopProbing(): void {
    if (this.#probeTimer !== null) clearInterval(this.#probeTimer);
    this.#probeTimer = null;
  }

  /** While down: one heartbeat at a time; its success brings Redis back into use. */
  async #probe(): Promise<void> {
    if (this.#up || this.#probing || this.#stopped || this.#client.status !== 'ready') return;
    this.#probing = true;
    try {
      if ((await this.#beat()) === null) this.#markUp();
    } finally {
      this.#probing = false;
    }
  }

  async #heartbeat(): Promise<void> {
    if (!this.#up || this.#stopped) return;
    const failure = await this.#beat();
    if (failure === null) return;
    this.#events.storeError(failure.reason, failure.detail);
    this.#markDown(`heartbeat ${failure.reason}: ${failure.detail}`);
  }

  /** Registers this instance and learns N; says why when Redis did not answer in time. */
  async #beat(): Promise<{ reason: StoreFailure; detail: string } | null> {
    try {
      const count = await this.#withDeadline(this.#client.gatewayHeartbeat(this.#instancesKey, this.instanceId, this.#heartbeatWindowMs));
      if (typeof count === 'number' && count >= 1 && count !== this.#instances) {
        this.#instances = count;
        this.#events.instances(count);
      }
      return null;
    } catch (err) {
      return { reason: failureOf(err), detail: this.#describe(err) };
    }
  }

  #describe(err: unknown): string {
    if (err instanceof DeadlineExceeded) return `no answer within ${this.#config.commandTimeoutMs} ms`;
    return err instanceof Error ? err.message : String(err);
  }

  /** Settles like `promise`, or rejects with DeadlineExceeded after commandTimeout. */
  #withDeadline<T>(promise: Promise<T>): Promise<T> {
    const ms = this.#config.commandTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new DeadlineExceeded()), ms);
      promise.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }
}

/** The policies of a request as the script reads them; a route's array is the same each time. */
const specs = new WeakMap<readonly GcraParams[], string>();

function specOf(params: readonly GcraParams[]): string {
  if (params.length === 1) return params[0]!.spec;
  let spec = specs.get(params);
  if (spec === undefined) {
    spec = params.map((p) => p.spec).join(' ');
    specs.set(params, spec);
  }
  return spec;
}

function failureOf(err: unknown): StoreFailure {
  if (err instanceof DeadlineExceeded) return 'timeout';
  // Only an error Redis itself answered is a ReplyError (redis-errors, ioredis' parser); ioredis'
  // own rejections (no connection, a connection lost with the command unanswered, a cluster with
  // no node for the slot) mean Redis was not reached.
  return err instanceof Error && err.name === 'ReplyError' ? 'error' : 'connection';
}

function reconnectDelay(times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 5), RECONNECT_MAX_DELAY_MS);
}

function createClient(config: RedisConfig, autoPipelining: boolean): Client {
  const common = {
    lazyConnect: true,
    enableAutoPipelining: autoPipelining,
  };
  const connection: RedisOptions = {
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectionName: 'edge-gateway',
  };
  if (config.cluster !== null) {
    const first = new URL(config.cluster[0]!);
    const options: ClusterOptions = {
      ...common,
      enableOfflineQueue: false,
      clusterRetryStrategy: reconnectDelay,
      slotsRefreshTimeout: CONNECT_TIMEOUT_MS,
      redisOptions: {
        ...connection,
        ...(first.username === '' ? {} : { username: decodeURIComponent(first.username) }),
        ...(first.password === '' ? {} : { password: decodeURIComponent(first.password) }),
        ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
      },
    };
    const nodes = config.cluster.map((url) => {
      const parsed = new URL(url);
      return { host: parsed.hostname, port: parsed.port === '' ? 6379 : Number(parsed.port) };
    });
    return new Cluster(nodes, options) as Client;
  }
  return new Redis(config.url ?? 'redis://127.0.0.1:6379', {
    ...common,
    ...connection,
    enableOfflineQueue: false,
    retryStrategy: reconnectDelay,
  }) as Client;
}
