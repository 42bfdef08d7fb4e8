import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import { type GatewayMetrics, methodLabel, UNMATCHED_ROUTE } from '../admin/metrics.js';
import { runFilters } from '../filters/chain.js';
import type { FilterContext } from '../filters/filter.js';
import { normalizePath, resolveRequestHost, splitTarget } from '../router/normalize.js';
import type { CompiledRoute, Snapshot } from '../snapshot/snapshot.js';
import type { SnapshotHolder } from '../snapshot/holder.js';
import type { PoolMember } from '../upstream/member.js';
import type { AttemptOutcome } from '../upstream/outcome.js';
import { BodyLimitStream } from './body-limit.js';
import { TrustedProxies, peerAddress } from './client-address.js';
import { writeError } from './error-reply.js';
import { type ExchangeRecorder, ProxyExchange } from './exchange.js';
import { upstreamRequestHeaders } from './headers.js';
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

  constructor(options: ProxyEngineOptions) {
    this.#holder = options.holder;
    this.#metrics = options.metrics;
    this.#accessLog = options.accessLog;
    this.#trusted = new TrustedProxies(options.trustedProxies);
    this.#bodyLimit = options.bodyLimit;
  }

  handle(req: IncomingMessage, res: ServerResponse, proto: 'http' | 'https'): void {
    const startedAt = performance.now();
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
    if (declaredLength !== undefined && Number(declaredLength) > this.#bodyLimit) {
      this.#reject(req, res, new GatewayError('GW_ERR_REQUEST_BODY_TOO_LARGE', [this.#bodyLimit]), requestId, startedAt, snapshot, { route, close: true, path: target.path });
      return;
    }

    const peer = peerAddress(req.socket.remoteAddress);
    const peerTrusted = this.#trusted.isTrusted(peer);
    const xff = headers['x-forwarded-for'];
    const state: RoutedRequest = {
      req, res, snapshot, route, target, requestId, peer, peerTrusted, proto, hasBody, startedAt,
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
    writeError(res, err, requestId, details.headers ?? null, details.close === true);
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
