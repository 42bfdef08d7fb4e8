import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { GatewayError } from '../errors.js';
import type { RetryCondition } from '../config/types.js';
import type { CompiledRoute, Snapshot } from '../snapshot/snapshot.js';
import type { PickContext } from '../upstream/balancers/types.js';
import type { PoolMember } from '../upstream/member.js';
import type { UpstreamPool } from '../upstream/pool.js';
import type { AttemptOutcome, FailureKind } from '../upstream/outcome.js';
import { writeError } from './error-reply.js';
import { clientResponseHeaders } from './headers.js';
import { classifyUpstreamError } from './upstream-errors.js';

/** What the exchange reports once the client's response is over (or abandoned). */
export interface ExchangeRecorder {
  attemptFinished(pool: UpstreamPool, member: PoolMember, outcome: AttemptOutcome): void;
  exchangeFinished(exchange: ProxyExchange): void;
}

// RFC 9110 §9.2.2: methods whose repetition has the same effect; only these are retried after
// the request may have reached the upstream.
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Status the access log and metrics record when the client went away before its response. */
export const CLIENT_CLOSED_STATUS = 499;

class RetrySignal extends Error {
  readonly code = 'GW_RETRY';
}

class ClientClosedSignal extends Error {
  readonly code = 'GW_CLIENT_CLOSED';
}

/** Our own headers deadline of an attempt fired (see PRECISE_TIMEOUT_BELOW_MS). */
export class AttemptTimeoutSignal extends Error {
  readonly code = 'GW_ATTEMPT_TIMEOUT';
}

// undici runs its headersTimeout on "fast timers" that tick every ~500 ms, so a 200 ms timeout
// fires after 500–1000 ms. Below this bound the exchange keeps its own native timer (one per
// attempt, ~1 µs); above it undici's is within 10 % and costs nothing extra.
const PRECISE_TIMEOUT_BELOW_MS = 10_000;

/**
 * One client request's journey upstream: it is the undici dispatch handler of each attempt and
 * writes the response straight into the client's ServerResponse (the fastest path measured, see
 * docs/proxying.md). Retries on another endpoint when the pool's retry policy allows and nothing
 * has been sent to the client yet.
 */
export class ProxyExchange implements Dispatcher.DispatchHandler {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly snapshot: Snapshot;
  readonly route: CompiledRoute;
  readonly requestId: string;
  readonly clientIp: string;
  /** What filters handed on (JWT subject, rate-limit decision), for the access log. */
  readonly attributes: ReadonlyMap<string, string> | null;
  /** The W3C traceparent sent upstream, for the access log's trace id. */
  readonly traceparent: string;
  readonly startedAt: number;
  readonly method: string;
  /** The normalised path the client asked for (no query: queries may carry secrets). */
  readonly logPath: string;

  /** Final status the client got (or CLIENT_CLOSED_STATUS). */
  status = 0;
  bytesOut = 0;
  upstreamMs = 0;
  attempts = 0;
  member: PoolMember | null = null;
  /** `host:port` of the endpoint of the latest attempt, for the access log. */
  endpointAddress: string | null = null;

  readonly #recorder: ExchangeRecorder;
  readonly #path: string;
  readonly #headers: string[];
  readonly #body: Readable | null;
  readonly #extraResponseHeaders: Readonly<Record<string, string>> | null;
  #controller: Dispatcher.DispatchController | null = null;
  #attemptStartedAt = 0;
  /** performance.now() by which the response headers must have arrived, all attempts included. */
  #deadline = 0;
  readonly #pickContext: PickContext;
  /** The endpoint of the first try; the list of every try is only built when a retry needs it. */
  #firstTried: PoolMember | null = null;
  #tried: PoolMember[] | null = null;
  #retryPending = false;
  /** The endpoint chosen for the retry a discarded response asked for. */
  #next: PoolMember | null = null;
  #isRetry = false;
  #clientGone = false;
  #attemptTimer: NodeJS.Timeout | null = null;
  #attemptTimedOut = false;
  #finished = false;
  #paused = false;

  constructor(init: {
    req: IncomingMessage;
    res: ServerResponse;
    snapshot: Snapshot;
    route: CompiledRoute;
    requestId: string;
    clientIp: string;
    startedAt: number;
    path: string;
    logPath: string;
    headers: string[];
    body: Readable | null;
    extraResponseHeaders: Readonly<Record<string, string>> | null;
    recorder: ExchangeRecorder;
    pickContext: PickContext;
    attributes: ReadonlyMap<string, string> | null;
    traceparent: string;
  }) {
    this.req = init.req;
    this.res = init.res;
    this.snapshot = init.snapshot;
    this.route = init.route;
    this.requestId = init.requestId;
    this.clientIp = init.clientIp;
    this.startedAt = init.startedAt;
    this.method = init.req.method ?? 'GET';
    this.#path = init.path;
    this.logPath = init.logPath;
    this.#headers = init.headers;
    this.#body = init.body;
    this.#extraResponseHeaders = init.extraResponseHeaders;
    this.#recorder = init.recorder;
    this.#pickContext = init.pickContext;
    // The client may have left while an asynchronous filter ran: its 'close' has fired already.
    if (init.res.destroyed) this.#clientGone = true;
    this.attributes = init.attributes;
    this.traceparent = init.traceparent;
    init.res.once('close', this.#onClientClose);
  }

  /** Sends the first attempt to `member`. */
  start(member: PoolMember): void {
    this.route.pool.requestStarted();
    this.#deadline = performance.now() + this.route.requestTimeoutMs;
    this.#dispatch(member);
  }

  #dispatch(member: PoolMember): void {
    this.member = member;
    this.endpointAddress = member.address;
    this.attempts++;
    if (this.#tried !== null) this.#tried.push(member);
    else this.#firstTried = member;
    this.#controller = null;
    const now = performance.now();
    this.#attemptStartedAt = now;
    // The request timeout bounds all attempts together (Envoy's route timeout); perTryTimeout,
    // when set, bounds each one so a retry still has time left.
    const perTry = this.route.pool.config.retries.perTryTimeoutMs;
    const remaining = Math.max(1, Math.ceil(this.#deadline - now));
    const timeoutMs = perTry !== null && perTry < remaining ? perTry : remaining;
    let headersTimeout = timeoutMs;
    this.#attemptTimedOut = false;
    if (timeoutMs < PRECISE_TIMEOUT_BELOW_MS) {
      this.#attemptTimer = setTimeout(this.#onAttemptTimeout, timeoutMs);
      headersTimeout = 0; // ours runs instead
    }
    member.endpoint.begin();
    member.endpoint.dispatcher.dispatch(
      {
        path: this.#path,
        method: this.method as Dispatcher.HttpMethod,
        headers: this.#headers,
        body: this.#body,
        headersTimeout,
        // Streaming responses may legitimately pause; bounded so a stalled upstream frees the slot.
        bodyTimeout: 300_000,
      },
      this,
    );
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#clientGone) controller.abort(new ClientClosedSignal('client closed'));
    else if (this.#attemptTimedOut) controller.abort(new AttemptTimeoutSignal('attempt timed out'));
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
    statusMessage?: string,
  ): void {
    if (statusCode < 200) return; // 1xx informational: Node answers the client's own Expect itself
    this.#clearAttemptTimer();
    if (this.#shouldRetryStatus(statusCode)) {
      this.#retryPending = true;
      this.#completeAttempt(statusCode, null);
      controller.abort(new RetrySignal('retry'));
      return;
    }
    this.status = statusCode;
    const res = this.res;
    if (res.destroyed) {
      // Gone without a 'close' this exchange saw: stop reading, or the upstream request (and
      // its pooled connection) would wait for a 'drain' that never comes.
      this.#clientGone = true;
      controller.abort(new ClientClosedSignal('client closed'));
      return;
    }
    // HTTP/2 has no reason phrase (Node warns when one is given).
    const reason = this.req.httpVersionMajor === 2 ? undefined : statusMessage || undefined;
    res.writeHead(statusCode, reason, clientResponseHeaders(headers, this.requestId, this.#extraResponseHeaders));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.bytesOut += chunk.length;
    if (!this.res.write(chunk) && !this.#paused) {
      // Backpressure: stop reading from the upstream until the client has drained.
      this.#paused = true;
      controller.pause();
      this.res.once('drain', this.#onDrain);
    }
  }

  onResponseEnd(): void {
    this.#completeAttempt(this.status, null);
    this.res.end();
    this.#finish();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#clearAttemptTimer();
    if (this.#retryPending) {
      // The attempt was already recorded when its status asked for a retry.
      this.#retryPending = false;
      this.#retry();
      return;
    }
    if (err instanceof ClientClosedSignal || this.#clientGone) {
      this.#completeAttempt(CLIENT_CLOSED_STATUS, null);
      this.status = CLIENT_CLOSED_STATUS;
      this.#finish();
      return;
    }
    const code = (err as { code?: string }).code;
    if (code === 'GW_ERR_REQUEST_BODY_TOO_LARGE' && err instanceof GatewayError) {
      this.#completeAttempt(err.status, null);
      this.#fail(err, true);
      return;
    }
    const failure = classifyUpstreamError(err);
    this.#completeAttempt(failure.status, failure.failure);
    if (!this.res.headersSent && this.#canRetryFailure(failure.failure)) {
      this.#retry();
      return;
    }
    this.#fail(new GatewayError(failure.code), false);
  }

  #fail(err: GatewayError, closeConnection: boolean): void {
    if (this.res.headersSent) {
      // Mid-body failure: the only honest signal left is to cut the client connection.
      this.status = err.status;
      this.res.destroy();
    } else {
      this.status = err.status;
      writeError(this.res, err, this.requestId, this.#extraResponseHeaders, closeConnection);
    }
    this.#finish();
  }

  #completeAttempt(status: number, failure: FailureKind | null): void {
    const member = this.member;
    if (member === null) return;
    const durationMs = performance.now() - this.#attemptStartedAt;
    this.upstreamMs += durationMs;
    const outcome: AttemptOutcome = { status, failure, durationMs };
    this.#recorder.attemptFinished(this.route.pool, member, outcome);
    this.member = null;
  }

  #retryOn(condition: RetryCondition): boolean {
    return this.route.pool.config.retries.on.includes(condition);
  }

  #retryAllowed(): boolean {
    return this.attempts <= this.route.pool.config.retries.attempts
      && performance.now() < this.#deadline
      && this.route.pool.retryBudgetAllows(this.#isRetry);
  }

  #shouldRetryStatus(status: number): boolean {
    if (status < 500 || !IDEMPOTENT.has(this.method) || this.#body !== null) return false;
    const listed = this.#retryOn(String(status) as RetryCondition) || this.#retryOn('5xx');
    if (!listed || !this.#retryAllowed()) return false;
    // Decide on the next endpoint now: the response is only discarded when there is one to try.
    this.#next = this.#nextMember();
    return this.#next !== null;
  }

  #canRetryFailure(failure: FailureKind): boolean {
    if (this.#clientGone || !this.#retryAllowed()) return false;
    // After a connect failure nothing was sent, so even a POST with a body is safe to resend (the
    // body stream was never read). Any other failure may have reached the upstream.
    if (failure === 'connect-failure') return this.#retryOn('connect-failure');
    if (!IDEMPOTENT.has(this.method) || this.#body !== null) return false;
    if (failure === 'reset') return this.#retryOn('reset');
    if (failure === 'timeout') return this.#retryOn('timeout') || this.#retryOn('504');
    return this.#retryOn('502');
  }

  /** An endpoint not tried yet when the usable set has one (then one already tried). */
  #nextMember(): PoolMember | null {
    this.#tried ??= this.#firstTried === null ? [] : [this.#firstTried];
    return this.route.pool.pickExcluding(this.#pickContext, this.#tried);
  }

  #retry(): void {
    const next = this.#next ?? this.#nextMember();
    this.#next = null;
    if (next === null) {
      this.#fail(new GatewayError('GW_ERR_UPSTREAM_UNAVAILABLE'), false);
      return;
    }
    if (!this.#isRetry) {
      this.#isRetry = true;
      this.route.pool.retryStarted();
    }
    this.#dispatch(next);
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.res.off('close', this.#onClientClose);
    this.route.pool.requestFinished(this.#isRetry);
    this.#recorder.exchangeFinished(this);
  }

  #clearAttemptTimer(): void {
    if (this.#attemptTimer !== null) {
      clearTimeout(this.#attemptTimer);
      this.#attemptTimer = null;
    }
  }

  readonly #onAttemptTimeout = (): void => {
    this.#attemptTimer = null;
    this.#attemptTimedOut = true;
    // Still queued for a connection: onRequestStart aborts it when it gets one.
    this.#controller?.abort(new AttemptTimeoutSignal('attempt timed out'));
  };

  readonly #onDrain = (): void => {
    this.#paused = false;
    this.#controller?.resume();
  };

  readonly #onClientClose = (): void => {
    if (this.#finished) return;
    this.#clientGone = true;
    // res 'close' also fires after a normal end; only an unfinished exchange is cancelled.
    if (this.#controller !== null) this.#controller.abort(new ClientClosedSignal('client closed'));
  };
}
