import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import { type GatewayMetrics, methodLabel, UNMATCHED_ROUTE } from '../admin/metrics.js';
import { runFilters } from '../filters/chain.js';
import type { FilterContext } from '../filters/filter.js';
import { normalizePath, resolveRequestHost, splitTarget } from '../router/normalize.js';
import type { CompiledRoute, Snapshot } from '../snapshot/snapshot.js';
import type { SnapshotHolder } from '../snapshot/holder.js';
import type { PoolMember } from '../upstream/member.js';
import type { AttemptOutcome, FailureKind } from '../upstream/outcome.js';
import { BodyLimitStream } from './body-limit.js';
import { TrustedProxies, peerAddress } from './client-address.js';
import { writeError } from './error-reply.js';
import { type ExchangeRecorder, ProxyExchange } from './exchange.js';
import { upstreamRequestHeaders } from './headers.js';
import { isWebSocketUpgrade, openTunnel, responseForUpgradeSocket } from './upgrade.js';
import { classifyUpstreamError } from './upstream-errors.js';
import { requestIdFor, traceparentFor } from './request-id.js';

export interface ProxyEngineOptions {
  readonly holder: SnapshotHolder;
  readonly metrics: GatewayMetrics;
  /** Access log destination; null when `log.accessLog` is false. */
  readonly accessLog: Logger | null;
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

/** Optional facts about a refused request, for its response, metrics and access log. */
interface RejectDetails {
  readonly headers?: Readonly<Record<string, string>> | null;
  readonly route?: CompiledRoute | null;
  /** Close the connection after answering (an unread body follows). */
  readonly close?: boolean;
  /** The normalised path, when parsing got that far. */
  readonly path?: string;
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
  readonly #trusted: TrustedProxies;
  readonly #bodyLimit: number;
  #draining = false;

  constructor(options: ProxyEngineOptions) {
    this.#holder = options.holder;
    this.#metrics = options.metrics;
    this.#accessLog = options.accessLog;
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
    const hasBody = declaredLength !== undefined ? declaredLength !== '0' : headers['transfer-encoding'] !== undefined;
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
      upstreamHeaders: {}, responseHeaders: {}, attributes: new Map(),
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
    if (refusal !== null) {
      this.#reject(state.req, state.res, refusal, state.requestId, state.startedAt, state.snapshot, { headers: ctx.responseHeaders, route: state.route, path: state.target.path });
      return;
    }
    this.#forward(state, ctx);
  }

  #forward(state: RoutedRequest, ctx: FilterContext | null): void {
    const { req, route, target } = state;
    const member = route.pool.pick({ hashKey: null });
    if (member === null) {
      this.#reject(req, state.res, new GatewayError('GW_ERR_UPSTREAM_UNAVAILABLE'), state.requestId, state.startedAt, state.snapshot, { headers: ctx?.responseHeaders ?? null, route, path: target.path });
      return;
    }
    const rewritten = route.rewriter.rewrite(target.path);
    const headers = upstreamRequestHeaders(req.headers, {
      host: target.hostHeader ?? target.host ?? member.address,
      clientPeer: state.peer,
      peerTrusted: state.peerTrusted,
      proto: state.proto,
      requestId: state.requestId,
      traceparent: traceparentFor(req.headers.traceparent),
    }, ctx?.upstreamHeaders ?? null);
    if (state.upgrade !== null) {
      this.#tunnel(state, member, headers);
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
    });
    exchange.start(member);
  }

  /** A WebSocket connection: one upstream attempt, recorded when the handshake ends and when the tunnel closes. */
  #tunnel(state: RoutedRequest, member: PoolMember, headers: string[]): void {
    const { route, target, upgrade } = state;
    const endpoint = member.endpoint;
    const attemptStarted = performance.now();
    endpoint.begin();
    const finish = (status: number, failure: FailureKind | null): void => {
      const outcome: AttemptOutcome = { status, failure, durationMs: performance.now() - attemptStarted };
      endpoint.end(outcome);
      route.pool.outlier.record(endpoint, outcome);
      this.#metrics.upstreamRequests.labels(route.pool.name, member.address, String(status)).inc();
      this.#metrics.upstreamDuration.labels(route.pool.name).observe(outcome.durationMs / 1000);
      this.#metrics.requests.labels(route.name, 'GET', String(status)).inc();
      this.#metrics.requestDuration.labels(route.name).observe((performance.now() - state.startedAt) / 1000);
      this.#accessLog?.info({
        requestId: state.requestId, clientIp: state.clientIp, method: 'GET', host: state.req.headers.host ?? null,
        path: target.path, route: route.name, upstream: route.pool.name, endpoint: member.address, status,
        websocket: true, bytesIn: state.req.socket.bytesRead, bytesOut: state.req.socket.bytesWritten,
        durationMs: round(performance.now() - state.startedAt), upstreamMs: round(outcome.durationMs),
        rateLimit: null, jwtSubject: null,
      }, 'request');
    };
    openTunnel(endpoint.dispatcher, {
      path: target.query === '' ? route.rewriter.rewrite(target.path) : `${route.rewriter.rewrite(target.path)}?${target.query}`,
      headers,
      headersTimeoutMs: route.requestTimeoutMs,
      requestId: state.requestId,
    }, upgrade!.socket, upgrade!.head, {
      // The snapshot is released once the handshake is over: a tunnel may live for hours and must
      // not hold a replaced snapshot (and its endpoints) open.
      opened: () => state.snapshot.release(),
      closed: () => finish(101, null),
      failed: (err) => {
        const failure = classifyUpstreamError(err);
        finish(failure.status, failure.failure);
        writeError(state.res, new GatewayError(failure.code), state.requestId);
        state.snapshot.release();
      },
    });
  }

  attemptFinished(exchange: ProxyExchange, member: PoolMember, outcome: AttemptOutcome): void {
    const upstream = exchange.route.pool.name;
    this.#metrics.upstreamRequests.labels(upstream, member.address, String(outcome.status)).inc();
    this.#metrics.upstreamDuration.labels(upstream).observe(outcome.durationMs / 1000);
  }

  exchangeFinished(exchange: ProxyExchange): void {
    const durationMs = performance.now() - exchange.startedAt;
    this.#metrics.requests.labels(exchange.route.name, methodLabel(exchange.method), String(exchange.status)).inc();
    this.#metrics.requestDuration.labels(exchange.route.name).observe(durationMs / 1000);
    if (this.#accessLog !== null) {
      this.#accessLog.info({
        requestId: exchange.requestId,
        clientIp: exchange.clientIp,
        method: exchange.method,
        host: exchange.req.headers.host ?? null,
        path: exchange.logPath,
        route: exchange.route.name,
        upstream: exchange.route.pool.name,
        endpoint: exchange.endpointAddress,
        status: exchange.status,
        bytesIn: Number(exchange.req.headers['content-length'] ?? 0),
        bytesOut: exchange.bytesOut,
        durationMs: round(durationMs),
        upstreamMs: round(exchange.upstreamMs),
        attempts: exchange.attempts,
        rateLimit: null,
        jwtSubject: null,
      }, 'request');
    }
    exchange.snapshot.release();
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
    const routeName = route?.name ?? UNMATCHED_ROUTE;
    const method = req.method ?? 'GET';
    const durationMs = performance.now() - startedAt;
    this.#metrics.requests.labels(routeName, methodLabel(method), String(err.status)).inc();
    this.#metrics.requestDuration.labels(routeName).observe(durationMs / 1000);
    if (this.#accessLog !== null) {
      this.#accessLog.info({
        requestId,
        clientIp: peerAddress(req.socket.remoteAddress),
        method,
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
        durationMs: round(durationMs),
        upstreamMs: 0,
        rateLimit: null,
        jwtSubject: null,
      }, 'request');
    }
    snapshot?.release();
  }
}

function parseTarget(req: IncomingMessage): ParsedTarget {
  const split = splitTarget(req.url ?? '/');
  const hostHeader = req.headers.host === '' ? undefined : req.headers.host;
  return {
    host: resolveRequestHost(split.authority, hostHeader),
    hostHeader: split.authority ?? hostHeader,
    path: normalizePath(split.path),
    query: split.query,
  };
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
