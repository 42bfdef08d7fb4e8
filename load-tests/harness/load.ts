// One burst of load from autocannon (programmatic API, in this process), and what it saw.
import autocannon from 'autocannon';

export interface LoadOptions {
  readonly url: string;
  readonly connections: number;
  /** Seconds. */
  readonly durationS: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** A header whose value changes from request to request; see AutocannonRun.varyHeader. */
  readonly varyHeader?: HeaderSequence;
  /** Collect every response time (for sub-millisecond percentiles); off for warm-ups. */
  readonly recordLatencies: boolean;
}

export interface LatencySummary {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

export interface LoadResult {
  /** Seconds actually run. */
  readonly durationS: number;
  readonly completed: number;
  readonly requestsPerSecond: number;
  /** Milliseconds. null when nothing was recorded (warm-ups, or no response at all). */
  readonly latencyMs: LatencySummary | null;
  /** Socket errors (connect refused, resets, timeouts): the request got no HTTP answer. */
  readonly errors: number;
  readonly timeouts: number;
  readonly resets: number;
  readonly non2xx: number;
  /** Count per HTTP status, e.g. { "200": 123456 }. */
  readonly statusCodes: Readonly<Record<string, number>>;
}

/** What autocannon itself counted over one run. */
export interface AutocannonTotals {
  /** Seconds actually run. */
  readonly durationS: number;
  readonly completed: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly resets: number;
  readonly non2xx: number;
  readonly statusCodes: Readonly<Record<string, number>>;
}

export interface AutocannonRun {
  readonly url: string;
  readonly connections: number;
  /** Seconds. */
  readonly durationS: number;
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * Set on every request, over `headers` (same name, same case): e.g. a different JWT per request.
   * Absent: every request is the same bytes, built once (autocannon's default path).
   */
  readonly varyHeader?: HeaderSequence;
}

/**
 * One header whose value changes from request to request. `next()` is called once per request
 * sent, just before it is written, by every connection of the run in turn (one shared sequence),
 * so values go out in `next()` order across connections. autocannon rebuilds the request bytes for
 * each one: a little more work on the load generator's core than a fixed request.
 */
export interface HeaderSequence {
  readonly name: string;
  next(): string;
}

/**
 * One autocannon run with the settings every scenario shares (keep-alive, no pipelining, 10 s
 * request timeout). `listen` attaches per-response listeners before the first request.
 */
export function runAutocannon(options: AutocannonRun, listen: (instance: autocannon.Instance) => void = () => {}): Promise<AutocannonTotals> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        pipelining: 1,
        duration: options.durationS,
        timeout: 10,
        headers: { ...options.headers },
        ...(options.varyHeader === undefined ? {} : { requests: [varyingRequest(options.varyHeader)] }),
      },
      (err, result) => {
        if (err !== null) {
          reject(err);
          return;
        }
        const codes: Record<string, number> = {};
        for (const [code, { count }] of Object.entries(result.statusCodeStats)) codes[code] = count;
        resolve({
          durationS: result.duration,
          completed: result.requests.total,
          errors: result.errors,
          timeouts: result.timeouts,
          resets: result.resets,
          non2xx: result.non2xx,
          statusCodes: codes,
        });
      },
    );
    listen(instance);
  });
}

/** The one request autocannon loops over, with `sequence`'s next value set before each send. */
function varyingRequest(sequence: HeaderSequence): autocannon.RequestSpec {
  const name = sequence.name;
  return {
    setupRequest(request) {
      // buildRequest hands a fresh headers object (the run's headers merged) to every call.
      request.headers[name] = sequence.next();
      return request;
    },
  };
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  // autocannon's own histogram keeps whole milliseconds: too coarse for a p50 of 3–6 ms, where one
  // step is 15–30 %. Its `response` event carries the exact time; keeping it costs one array
  // store per response on the load generator's core, the same for every target.
  const latencies = new LatencyRecorder(options.recordLatencies);
  const totals = await runAutocannon(options, (instance) => {
    if (options.recordLatencies) {
      instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTimeMs: number) => latencies.add(responseTimeMs));
    }
  });
  return {
    ...totals,
    requestsPerSecond: totals.durationS > 0 ? totals.completed / totals.durationS : 0,
    latencyMs: latencies.summary(),
  };
}

/** A growable Float64Array: no per-value allocation while the load runs. */
class LatencyRecorder {
  #values: Float64Array;
  #length = 0;

  constructor(enabled: boolean) {
    this.#values = new Float64Array(enabled ? 1 << 18 : 0);
  }

  add(ms: number): void {
    if (this.#length === this.#values.length) {
      const bigger = new Float64Array(Math.max(1024, this.#values.length * 2));
      bigger.set(this.#values);
      this.#values = bigger;
    }
    this.#values[this.#length++] = ms;
  }

  summary(): LatencySummary | null {
    if (this.#length === 0) return null;
    const sorted = this.#values.subarray(0, this.#length).sort();
    let sum = 0;
    for (const v of sorted) sum += v;
    const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
    return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[sorted.length - 1] ?? Number.NaN, mean: sum / sorted.length };
  }
}
