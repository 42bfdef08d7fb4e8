// autocannon 8 ships no types. This declares only the programmatic surface the load tests use:
// one call with options and a callback, the fields of the result we read, and `requests` with a
// `setupRequest` function (lib/requestIterator.js, lib/httpRequestBuilder.js) to vary a header per
// request.
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  namespace autocannon {
    interface Options {
      url: string;
      /** Concurrent keep-alive connections. */
      connections?: number;
      /** Requests in flight per connection; 1 = plain keep-alive, no pipelining. */
      pipelining?: number;
      /** Seconds. */
      duration?: number;
      /** Seconds before a request counts as a timeout (and an error). */
      timeout?: number;
      method?: string;
      headers?: Record<string, string>;
      body?: string | Buffer;
      /** Latencies of non-2xx responses are left out of the histogram unless this is false. */
      excludeErrorStats?: boolean;
      workers?: number;
      /**
       * The sequence of requests each connection loops over. With a `setupRequest` function the
       * request's bytes are rebuilt before every send (functions only without `workers`, which
       * need file paths instead).
       */
      requests?: RequestSpec[];
    }

    /** What `setupRequest` receives (the run's defaults merged with the spec) and returns. */
    interface RequestParams {
      method: string;
      path: string;
      /** A fresh object on every call: the run's `headers` merged with the spec's. */
      headers: Record<string, string>;
      body?: string | Buffer;
      [key: string]: unknown;
    }

    interface RequestSpec {
      method?: string;
      path?: string;
      headers?: Record<string, string>;
      body?: string | Buffer;
      /**
       * Called before each send of this request (shared by every connection: clients deep-clone
       * their options, but functions are kept by reference). A falsy return restarts the sequence.
       */
      setupRequest?: (request: RequestParams, context: Record<string, unknown>) => RequestParams | null | undefined | false;
      onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string | string[]>) => void;
    }

    interface Histogram {
      average: number;
      mean: number;
      stddev: number;
      min: number;
      max: number;
      total: number;
      p50: number;
      p90: number;
      p97_5: number;
      p99: number;
      p99_9: number;
    }

    interface Result {
      url: string;
      connections: number;
      pipelining: number;
      /** Seconds actually run. */
      duration: number;
      start: Date;
      finish: Date;
      /** Socket errors, including timeouts. */
      errors: number;
      timeouts: number;
      mismatches: number;
      resets: number;
      non2xx: number;
      '1xx': number;
      '2xx': number;
      '3xx': number;
      '4xx': number;
      '5xx': number;
      statusCodeStats: Record<string, { count: number }>;
      /** Milliseconds, recorded at whole-millisecond resolution. */
      latency: Histogram & { totalCount: number };
      /** Per-second samples; `total` is every completed request. */
      requests: Histogram & { sent: number };
      throughput: Histogram;
    }

    /** Returned by every call; emits `response(client, statusCode, bytes, responseTimeMs)`. */
    type Instance = EventEmitter & { stop(): void };
  }

  function autocannon(options: autocannon.Options, callback: (err: Error | null, result: autocannon.Result) => void): autocannon.Instance;

  export = autocannon;
}
