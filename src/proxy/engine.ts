import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import { type GatewayMetrics, methodLabel, UNMATCHED_ROUTE } from '../admin/metrics.js';
import { runFilters } from '../filters/chain.js';
import { type FilterContext, JWT_SUBJECT, RATE_LIMIT_DECISION } from '../filters/filter.js';
import { normalizePath, resolveRequestHost, splitTarget } from '../router/normalize.js';
import type { CompiledRoute, Snapshot } from '../snapshot/snapshot.js';
import type { SnapshotHolder } from '../snapshot/holder.js';
import type { PoolMember } from '../upstream/member.js';
import type { UpstreamPool } from '../upstream/pool.js';
import type { AttemptOutcome, FailureKind } from '../upstream/outcome.js';
import { hashKeyOf, NO_HASH_KEY } from '../upstream/hash-key.js';
import { verifiedClientIdentity } from '../tls/client-identity.js';
import { BodyLimitStream } from './body-limit.js';
import { TrustedProxies, peerAddress } from './client-address.js';
import { writeError } from './error-reply.js';
import { CLIENT_CLOSED_STATUS, type ExchangeRecorder, ProxyExchange } from './exchange.js';
import { upstreamRequestHeaders } from './headers.js';
import { isWebSocketUpgrade, openTunnel, responseForUpgradeSocket } from './upgrade.js';
import { classifyUpstreamError } from './upstream-errors.js';
import { validTraceId, requestIdFor, traceparentFor } from './request-id.js';

export interface ProxyEngineOptions {
  readonly holder: SnapshotHolder;
  readonly metrics: GatewayMetrics;
  /** Access log destination; null when `log.accessLog` is false. */
  readonly accessLog: Logger | null;
  /** 0..1: share of requests the access log records; a 5xx is always recorded. */
  readonly accessLogSample?: number;
  readonly trustedProxies: readonly string[];
  readonly bodyLimit: number;
}

/** Everything known about a routed request before it is forwarded. */
interface RoutedRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly snapshot: Snapshot;
  readonly route: CompiledRoute;
  readonly target: ParsedTarget;
  readonly requestId: string;
  readonly peer: string;
  readonly peerTrusted: boolean;
  readonly clientIp: string;
  readonly proto: 'http' | 'https';
  readonly hasBody: boolean;
  readonly startedAt: number;
  /** Set when this is a WebSocket upgrade on a route that allows it. */
  readonly upgrade: WebSocketUpgrade | null;
}

interface WebSocketUpgrade {
  readonly socket: Duplex;
  readonly head: Buffer;
}

/** What the access log and request metrics record of a finished request. */
interface FinishedRequest {
  readonly requestId: string;
  readonly clientIp: string;
  readonly method: string;
  readonly host: string | null;
  readonly path: string;
  readonly route: string | null; // null: matched no route
  readonly upstream: string | null;
  readonly endpoint: string | null;
  readonly status: number;
  readonly error: string | null; // public error code when the gateway answered itself
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly startedAt: number;
  readonly upstreamMs: number;
  readonly attempts: number;
  readonly websocket: boolean;
  /** What filters handed on (JWT subject, rate-limit decision); null when no filter ran. */
  readonly attributes: ReadonlyMap<string, string> | null;
  /**
   * The traceparent sent upstream, or the client's header for a request never forwarded; the
   * access log's trace id is read from it only when a line is written.
   */
  readonly traceparent: string | string[] | undefined;
}

/** Optional facts about a refused request, for its response, metrics and access log. */
interface RejectDetails {
  readonly headers?: Readonly<Record<string, string>> | null;
  readonly route?: CompiledRoute | null;
  /** Close the connection after answering (an unread body follows). */
  readonly close?: boolean;
  /** The normalised path, when parsing got that far. */
  readonly path?: string;
  readonly attributes?: ReadonlyMap<string, string> | null;
}

/** The parts of a request the router needs, parsed once. */
interface ParsedTarget {
  readonly host: string | null;
  readonly hostHeader: string | undefined;
  readonly path: string;
  readonly query: string;
}

/**
 * The request path, one catch-all: pin snapshot → normalise → route → filters → pick → forward →
 * record. Everything it reads was prepared when the snapshot was compiled.
 */
export class ProxyEngine implements ExchangeRecorder {
  readonly #holder: SnapshotHolder;
  readonly #metrics: GatewayMetrics;
  readonly #accessLog: Logger | null;
  readonly #accessLogSample: number;
  readonly #trusted: TrustedProxies;
  readonly #bodyLimit: number;
  #draining = false;

  constructor(options: ProxyEngineOptions) {
    this.#holder = options.holder;
    this.#metrics = options.metrics;
    this.#accessLog = options.accessLog;
    this.#accessLogSample = options.accessLogSample ?? 1;
    this.#trusted = new TrustedProxies(options.trustedProxies);
    this.#bodyLimit = options.bodyLimit;
  }

  /** Node's 'upgrade' event: WebSocket tunnels for `websocket: true` routes, plain HTTP otherwise. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, proto: 'http' | 'https'): void {
    const res = responseForUpgradeSocket(req, socket);
    this.handle(req, res, proto, isWebSocketUpgrade(req) ? { socket, head } : null);
  }

  /**
   * From now on every response says `Connection: close`, so clients on keep-alive connections
   * finish their current request and reconnect elsewhere instead of being refused.
   */
  startDraining(): void {
    this.#draining = true;
  }

  handle(req: IncomingMessage, res: ServerResponse, proto: 'http' | 'https', upgrade: WebSocketUpgrade | null = null): void {
    const startedAt = performance.now();
    if (this.#draining) res.shouldKeepAlive = false;
    const headers = req.headers;
    const requestId = requestIdFor(headers['x-request-id']);
    const method = req.method ?? 'GET';

    const snapshot = this.#holder.current;
    if (snapshot === null) {
      this.#reject(req, res, new GatewayError('GW_ERR_UPSTREAM_UNAVAILABLE'), requestId, startedAt, null);
      return;
    }
    snapshot.acquire();

    let target: ParsedTarget;
    try {
      target = parseTarget(req);
    } catch (err) {
      this.#reject(req, res, asGatewayError(err), requestId, startedAt, snapshot);
      return;
    }

    const match = snapshot.table.match({ method, host: target.host, path: target.path, query: target.query, headers });
    if (match.kind !== 'matched') {
      const err = match.kind === 'not_found'
        ? new GatewayError('GW_ERR_ROUTE_NOT_FOUND')
        : new GatewayError('GW_ERR_ROUTE_METHOD_NOT_ALLOWED', [method]);
      const extra = match.kind === 'method_not_allowed' ? { allow: match.allow.join(', ') } : null;
      this.#reject(req, res, err, requestId, startedAt, snapshot, { headers: extra, path: target.path });
      return;
    }
    const route = match.route;

    const declaredLength = headers['content-length'];
    const hasBody = declaredLength !== undefined
      ? declaredLength !== '0'
      : headers['transfer-encoding'] !== undefined || http2BodyFollows(req);
    if (upgrade !== null && hasBody) {
      // The parser let go of the socket at the upgrade: a body after the head cannot be read.
      this.#reject(req, res, new GatewayError('GW_ERR_REQUEST_MALFORMED', ['body on an upgrade request']), requestId, startedAt, snapshot, { route, close: true, path: target.path });
      return;
    }
    if (declaredLength !== undefined && Number(declaredLength) > this.#bodyLimit) {
      this.#reject(req, res, new GatewayError('GW_ERR_REQUEST_BODY_TOO_LARGE', [this.#bodyLimit]), requestId, startedAt, snapshot, { route, close: true, path: target.path });
      return;
    }

    const peer = peerAddress(req.socket.remoteAddress);
    const peerTrusted = this.#trusted.isTrusted(peer);
    const xff = headers['x-forwarded-for'];
    const state: RoutedRequest = {
      req, res, snapshot, route, target, requestId, peer, peerTrusted, proto, hasBody, startedAt,
      upgrade: upgrade !== null && route.config.websocket ? upgrade : null,
      clientIp: peerTrusted ? this.#trusted.clientAddress(peer, typeof xff === 'string' ? xff : undefined) : peer,
    };

    if (route.filters.length === 0) {
      this.#forward(state, null);
      return;
    }
    const ctx: FilterContext = {
      req, requestId, clientIp: state.clientIp, routeName: route.name,
      upstreamHeaders: {}, responseHeaders: {}, attributes: new Map(), claims: null,
    };
    const verdict = runFilters(route.filters, ctx);
    if (verdict instanceof Promise) {
      verdict.then(
        (refusal) => this.#afterFilters(state, ctx, refusal),
        (err: unknown) => this.#afterFilters(state, ctx, asGatewayError(err)),
      );
    } else {
      this.#afterFilters(state, ctx, verdict);
    }
  }

  #afterFilters(state: RoutedRequest, ctx: FilterContext, refusal: GatewayError | null): void {
    if (state.res.destroyed) {
      // The client left while an asynchronous filter (a JWT verify) ran: nothing to forward.
      this.#recordRequest({
        requestId: state.requestId, clientIp: state.clientIp, method: state.req.method ?? 'GET', host: state.req.headers.host ?? null,
        path: state.target.path, route: state.route.name, upstream: state.route.pool.name, endpoint: null,
        status: CLIENT_CLOSED_STATUS, error: null, bytesIn: 0, bytesOut: 0, startedAt: state.startedAt, upstreamMs: 0,
        attempts: 0, websocket: false, attributes: ctx.attributes, traceparent: state.req.headers.traceparent,
      });
      state.snapshot.release();
      return;
    }
    if (refusal !== null) {
      this.#reject(state.req, state.res, refusal, state.requestId, state.startedAt, state.snapshot, {
        headers: ctx.responseHeaders, route: state.route, path: state.target.path, attributes: ctx.attributes,
      });
      return;
    }
    this.#forward(state, ctx);
  }

  #forward(state: RoutedRequest, ctx: FilterContext | null): void {
    const { req, route, target } = state;
    const pool = route.pool;
    const pickContext = pool.hashKey === null ? NO_HASH_KEY : { hashKey: hashKeyOf(pool.hashKey, req.headers, state.clientIp, ctx?.claims ?? null) };
    const member = pool.pick(pickContext);
    if (member === null) {
      this.#reject(req, state.res, new GatewayError('GW_ERR_UPSTREAM_UNAVAILABLE'), state.requestId, state.startedAt, state.snapshot, { headers: ctx?.responseHeaders ?? null, route, path: target.path, attributes: ctx?.attributes ?? null });
      return;
    }
    if (pool.overflows(member)) {
      this.#metrics.overflows.labels(pool.name).inc();
      this.#reject(req, state.res, new GatewayError('GW_ERR_UPSTREAM_OVERLOADED'), state.requestId, state.startedAt, state.snapshot, { headers: ctx?.responseHeaders ?? null, route, path: target.path, attributes: ctx?.attributes ?? null });
      return;
    }
    const rewritten = route.rewriter.rewrite(target.path);
    const traceparent = traceparentFor(req.headers.traceparent);
    const headers = upstreamRequestHeaders(req.headers, {
      host: target.hostHeader ?? target.host ?? member.address,
      clientPeer: state.peer,
      peerTrusted: state.peerTrusted,
      proto: state.proto,
      requestId: state.requestId,
      traceparent,
      clientCert: state.proto === 'https' ? clientCertHeader(req.socket) : null,
    }, ctx?.upstreamHeaders ?? null, route.ownedRequestHeaders);
    if (state.upgrade !== null) {
      this.#tunnel(state, member, headers, ctx?.attributes ?? null, traceparent);
      return;
    }
    let body: Readable | null = null;
    if (state.hasBody) body = req.headers['content-length'] !== undefined ? req : req.pipe(new BodyLimitStream(this.#bodyLimit));
    const exchange = new ProxyExchange({
      req,
      res: state.res,
      snapshot: state.snapshot,
      route,
      requestId: state.requestId,
      clientIp: state.clientIp,
      startedAt: state.startedAt,
      path: target.query === '' ? rewritten : `${rewritten}?${target.query}`,
      logPath: target.path,
      headers,
      body,
      extraResponseHeaders: ctx?.responseHeaders ?? null,
      recorder: this,
      pickContext,
      attributes: ctx?.attributes ?? null,
      traceparent,
    });
    exchange.start(member);
  }

  /** A WebSocket connection: one upstream attempt, recorded when the handshake fails or the tunnel closes. */
  #tunnel(state: RoutedRequest, member: PoolMember, headers: string[], attributes: ReadonlyMap<string, string> | null, traceparent: string): void {
    const { route, target, upgrade } = state;
    const attemptStarted = performance.now();
    member.endpoint.begin();
    const finish = (status: number, failure: FailureKind | null, error: string | null): void => {
      const upstreamMs = performance.now() - attemptStarted;
      this.attemptFinished(route.pool, member, { status, failure, durationMs: upstreamMs });
      this.#recordRequest({
        requestId: state.requestId, clientIp: state.clientIp, method: 'GET', host: state.req.headers.host ?? null,
        path: target.path, route: route.name, upstream: route.pool.name, endpoint: member.address, status, error,
        bytesIn: state.req.socket.bytesRead, bytesOut: state.req.socket.bytesWritten,
        startedAt: state.startedAt, upstreamMs, attempts: 1, websocket: true, attributes, traceparent,
      });
    };
    openTunnel(member.endpoint.dispatcher, {
      path: target.query === '' ? route.rewriter.rewrite(target.path) : `${route.rewriter.rewrite(target.path)}?${target.query}`,
      headers,
      headersTimeoutMs: route.requestTimeoutMs,
      requestId: state.requestId,
    }, upgrade!.socket, upgrade!.head, {
      // The snapshot is released once the handshake is over: a tunnel may live for hours and must
      // not hold a replaced snapshot (and its endpoints) open.
      opened: () => state.snapshot.release(),
      closed: () => finish(101, null, null),
      failed: (err) => {
        const failure = classifyUpstreamError(err);
        const refusal = new GatewayError(failure.code);
        finish(failure.status, failure.failure, refusal.publicCode);
        writeError(state.res, refusal, state.requestId);
        state.snapshot.release();
      },
    });
  }

  /** Every upstream attempt ends here: endpoint counters, outlier detection, metrics. */
  attemptFinished(pool: UpstreamPool, member: PoolMember, outcome: AttemptOutcome): void {
    member.endpoint.end(outcome);
    pool.outlier.record(member.endpoint, outcome);
    this.#metrics.upstreamRequests.labels(pool.name, member.address, String(outcome.status)).inc();
    this.#metrics.upstreamDuration.labels(pool.name).observe(outcome.durationMs / 1000);
  }

  exchangeFinished(exchange: ProxyExchange): void {
    this.#recordRequest({
      requestId: exchange.requestId,
      clientIp: exchange.clientIp,
      method: exchange.method,
      host: exchange.req.headers.host ?? null,
      path: exchange.logPath,
      route: exchange.route.name,
      upstream: exchange.route.pool.name,
      endpoint: exchange.endpointAddress,
      status: exchange.status,
      error: null,
      bytesIn: Number(exchange.req.headers['content-length'] ?? 0),
      bytesOut: exchange.bytesOut,
      startedAt: exchange.startedAt,
      upstreamMs: exchange.upstreamMs,
      attempts: exchange.attempts,
      websocket: false,
      attributes: exchange.attributes,
      traceparent: exchange.traceparent,
    });
    exchange.snapshot.release();
  }

  /**
   * A request the listener refused before routing (too many headers, a repeated Host, ...):
   * answered, closed, and recorded like every other request (metrics, access log).
   */
  refuse(req: IncomingMessage, res: ServerResponse, err: GatewayError): void {
    this.#reject(req, res, err, requestIdFor(req.headers['x-request-id']), performance.now(), null, { close: true });
  }

  /** Answers with a gateway error before anything was sent upstream, and records it. */
  #reject(
    req: IncomingMessage, res: ServerResponse, err: GatewayError, requestId: string, startedAt: number,
    snapshot: Snapshot | null, details: RejectDetails = {},
  ): void {
    const route = details.route ?? null;
    // A refused request's unread body would otherwise be read and thrown away to keep the
    // connection (however large it is): closing is cheaper and bounds what a client can send.
    const unreadBody = !req.complete && (req.headers['content-length'] !== undefined
      ? req.headers['content-length'] !== '0'
      : req.headers['transfer-encoding'] !== undefined);
    writeError(res, err, requestId, details.headers ?? null, details.close === true || unreadBody);
    this.#recordRequest({
      requestId,
      clientIp: peerAddress(req.socket.remoteAddress),
      method: req.method ?? 'GET',
      host: req.headers.host ?? null,
      // The raw target of a refused request is client-controlled: bounded, and never with its query.
      path: details.path ?? rawPathForLog(req.url),
      route: route?.name ?? null,
      upstream: route?.pool.name ?? null,
      endpoint: null,
      status: err.status,
      error: err.publicCode,
      bytesIn: Number(req.headers['content-length'] ?? 0),
      bytesOut: 0,
      startedAt,
      upstreamMs: 0,
      attempts: 0,
      websocket: false,
      attributes: details.attributes ?? null,
      traceparent: req.headers.traceparent,
    });
    snapshot?.release();
  }

  /** The request metrics and the one access-log line every request ends with, whatever its path. */
  #recordRequest(r: FinishedRequest): void {
    const routeLabel = r.route ?? UNMATCHED_ROUTE;
    const durationMs = performance.now() - r.startedAt;
    this.#metrics.requests.labels(routeLabel, methodLabel(r.method), String(r.status)).inc();
    this.#metrics.requestDuration.labels(routeLabel).observe(durationMs / 1000);
    if (this.#accessLog === null) return;
    // Sampling thins the routine lines; a 5xx is always worth its line.
    if (this.#accessLogSample < 1 && r.status < 500 && Math.random() >= this.#accessLogSample) return;
    this.#accessLog.info({
      requestId: r.requestId,
      clientIp: r.clientIp,
      method: r.method,
      host: r.host,
      path: r.path,
      route: r.route,
      upstream: r.upstream,
      endpoint: r.endpoint,
      status: r.status,
      error: r.error,
      websocket: r.websocket,
      bytesIn: r.bytesIn,
      bytesOut: r.bytesOut,
      durationMs: round(durationMs),
      upstreamMs: round(r.upstreamMs),
      attempts: r.attempts,
      rateLimit: r.attributes?.get(RATE_LIMIT_DECISION) ?? null,
      jwtSubject: r.attributes?.get(JWT_SUBJECT) ?? null,
      traceId: validTraceId(r.traceparent),
    }, 'request');
  }
}

function parseTarget(req: IncomingMessage): ParsedTarget {
  const split = splitTarget(req.url ?? '/');
  // HTTP/2 names the host in :authority (a Host header is allowed but rare).
  const host = req.headers.host ?? req.headers[':authority'];
  const hostHeader = host === '' || Array.isArray(host) ? undefined : host;
  return {
    host: resolveRequestHost(split.authority, hostHeader),
    hostHeader: split.authority ?? hostHeader,
    path: normalizePath(split.path),
    query: split.query,
  };
}

/**
 * Envoy's `x-forwarded-client-cert` (its Hash and Subject elements) for a client that presented a
 * certificate the listener's clientCa verified (mTLS): how routes' upstreams learn who called.
 */
function clientCertHeader(socket: object): string | null {
  const identity = verifiedClientIdentity(socket);
  if (identity === null) return null;
  return `Hash=${identity.fingerprint256.replaceAll(':', '').toLowerCase()};Subject="${identity.subject.replaceAll('"', '\\"')}"`;
}

/** HTTP/2 frames bodies itself: a stream not ended with its headers carries DATA frames. */
function http2BodyFollows(req: IncomingMessage): boolean {
  const stream = (req as { stream?: { endAfterHeaders?: boolean } }).stream;
  return stream !== undefined && stream.endAfterHeaders === false;
}

function asGatewayError(err: unknown): GatewayError {
  return err instanceof GatewayError ? err : new GatewayError('GW_ERR_INTERNAL', [], { cause: err });
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

const MAX_LOGGED_TARGET = 512;

function rawPathForLog(url: string | undefined): string {
  if (url === undefined) return '';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  return path.length > MAX_LOGGED_TARGET ? `${path.slice(0, MAX_LOGGED_TARGET)}…` : path;
}
