import { Pool } from 'undici';
import type { AttemptOutcome } from './outcome.js';

export type EndpointState = 'healthy' | 'ejected' | 'unhealthy' | 'draining';

export interface EjectionRecord {
  readonly reason: string; // e.g. consecutive_5xx
  readonly detail: string; // e.g. "5 consecutive 502"
  readonly at: number; // epoch ms
  readonly durationMs: number;
}

export interface EndpointOptions {
  readonly connectTimeoutMs: number;
  readonly maxConnections: number;
  readonly keepAliveTimeoutMs: number;
}

// Smoothing of the latency average: ~10 samples of memory, enough to show a trend in /upstreams
// without reacting to a single slow request.
const EWMA_ALPHA = 0.1;

/**
 * One upstream address of one pool, with everything that must survive a reload: its undici Pool
 * (and so its keep-alive connections), in-flight count, latency average and ejection history.
 * Weights are per snapshot and live on PoolMember, not here.
 */
export class Endpoint {
  readonly upstream: string;
  /** `host:port`, the `endpoint` metric label and the identity shown in /upstreams. */
  readonly address: string;
  /** Origin, e.g. http://10.0.0.11:8080. */
  readonly url: string;
  readonly dispatcher: Pool;
  /** Registry key: the same key in a new snapshot means the same Endpoint object is reused. */
  readonly key: string;

  inFlight = 0;
  state: EndpointState = 'healthy';
  ejections = 0;
  ejectedUntil: number | null = null;
  lastEjection: EjectionRecord | null = null;
  latencyEwmaMs = 0;

  constructor(upstream: string, url: string, key: string, options: EndpointOptions) {
    this.upstream = upstream;
    this.url = url;
    this.key = key;
    const parsed = new URL(url);
    this.address = `${parsed.hostname}:${parsed.port || (parsed.protocol === 'https:' ? '443' : '80')}`;
    this.dispatcher = new Pool(url, {
      connections: options.maxConnections,
      connectTimeout: options.connectTimeoutMs,
      keepAliveTimeout: options.keepAliveTimeoutMs,
      // One request per connection at a time: pipelining to arbitrary upstreams turns one slow
      // response into head-of-line blocking for unrelated clients.
      pipelining: 1,
    });
  }

  begin(): void {
    this.inFlight++;
  }

  end(outcome: AttemptOutcome): void {
    this.inFlight--;
    this.latencyEwmaMs = this.latencyEwmaMs === 0
      ? outcome.durationMs
      : this.latencyEwmaMs + EWMA_ALPHA * (outcome.durationMs - this.latencyEwmaMs);
  }

  /** Closes once queued requests have finished (undici Pool.close waits for them). */
  async close(): Promise<void> {
    this.state = 'draining';
    await this.dispatcher.close();
  }
}
