import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import type { LimitsConfig, ListenerConfig } from '../config/types.js';
import { GatewayError } from '../errors.js';
import type { ProxyEngine } from './engine.js';
import { writeError } from './error-reply.js';
import { requestIdFor } from './request-id.js';
import { responseForUpgradeSocket } from './upgrade.js';
import type { HttpsRedirector } from './redirect.js';
import type { ReloadableServer, TlsTerminator } from '../tls/terminator.js';

export interface ListenerExtras {
  /** The certificates of a `tls` listener. */
  readonly tls?: TlsTerminator | null;
  /** Set on a plain listener with `redirectToHttps`: every request is redirected. */
  readonly redirect?: HttpsRedirector | null;
}

/**
 * One public listener: a fastify server whose only route is a catch-all handing every request to
 * the proxy engine. fastify's own route tree is frozen once listening, so reloadable routing lives
 * in the snapshot the engine reads, not here.
 */
export function createPublicListener(
  listener: ListenerConfig,
  limits: LimitsConfig,
  engine: ProxyEngine,
  onInternalError: (err: unknown) => void,
  extras: ListenerExtras = {},
): FastifyInstance {
  const proto = listener.tls === null ? 'http' : 'https';
  const tls = extras.tls ?? null;
  const redirect = extras.redirect ?? null;
  const http1 = {
    maxHeaderSize: limits.maxHeaderSize,
    headersTimeout: limits.headersTimeoutMs,
    // Node only checks these timeouts on this interval (30 s by default): a 10 s
    // headersTimeout would otherwise let a slowloris hold a socket for up to 40 s.
    connectionsCheckingInterval: Math.max(100, Math.min(1000, limits.headersTimeoutMs / 4)),
    // Node's own missing-Host answer is a bare 400; headRefusal answers it in JSON instead.
    requireHostHeader: false,
  };
  const app = Fastify({
    logger: false,
    http: http1 as never,
    // TLS: the same HTTP/1.1 limits (https.createServer takes them with the TLS options); HTTP/2
    // streams get their header limits as SETTINGS (pseudo-headers count as pairs too).
    ...(tls === null ? {} : {
      https: {
        ...tls.serverOptions(),
        ...http1,
        // The four pseudo-headers, and one field more than the limit so headRefusal can answer
        // 431 in JSON; beyond that Node resets the stream itself.
        maxHeaderListPairs: limits.maxHeaderCount + 5,
        settings: { maxHeaderListSize: limits.maxHeaderSize },
      } as never,
      // Typed as the HTTP/1 server below: the HTTP/2 compatibility request and response are
      // handled through the same IncomingMessage/ServerResponse surface (see ProxyEngine).
      http2: (listener.tls?.http2 === true) as false,
    }),
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // fastify 5 defaults to no limit: a dripped body could hold a connection forever.
    requestTimeout: limits.requestTimeoutMs,
    // The gateway answers HEAD through the same catch-all; fastify must not add its own.
    exposeHeadRoutes: false,
    // During a drain, requests already on keep-alive connections are served (with
    // `Connection: close`, see ProxyEngine) rather than refused with fastify's own 503.
    return503OnClosing: false,
    clientErrorHandler: answerClientError,
    frameworkErrors: (error, request, reply) => {
      const requestId = requestIdFor(request.headers['x-request-id']);
      reply.hijack();
      writeError(reply.raw, new GatewayError('GW_ERR_REQUEST_MALFORMED', [error.code ?? 'unparsable request']), requestId);
    },
  });

  // Bodies are streamed to the upstream untouched: no parser may read them first.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  // Node keeps only the first maxHeadersCount fields (2000 by default) and drops the rest without
  // a word, which once hid a late Authorization. One more than the limit is kept, so headRefusal
  // sees that it was passed; maxHeaderSize still bounds the head in bytes.
  app.server.maxHeadersCount = limits.maxHeaderCount + 1;
  if (tls !== null) {
    // A reload's new default certificate reaches handshakes without SNI through the server.
    tls.attach(app.server as unknown as ReloadableServer);
    // An HTTP/2 server serving HTTP/1.1 (allowHTTP1) reads these from itself, not its options.
    Object.assign(app.server, { headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs, keepAliveTimeout: limits.keepAliveTimeoutMs });
  }

  const serve = (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket;
    // Refused by Node's parser meanwhile (see below), or behind a response that closes the
    // connection: pipelined after a refused request, it must not reach an upstream either.
    const current = (socket as Socket & { _httpMessage?: { _last?: boolean } | null })._httpMessage;
    if (socket.destroyed || !socket.writable || (current !== undefined && current !== null && current !== res && current._last === true)) return;
    try {
      const refusal = headRefusal(req, limits.maxHeaderCount);
      if (refusal !== null) {
        engine.refuse(req, res, refusal);
        return;
      }
      if (redirect !== null) redirect.handle(req, res);
      else engine.handle(req, res, proto);
    } catch (err) {
      // A bug must cost one request a 500, not leave the connection hanging after hijack().
      onInternalError(err);
      writeError(res, new GatewayError('GW_ERR_INTERNAL', [], { cause: err }), requestIdFor(req.headers['x-request-id']));
    }
  };
  const handler = (request: { raw: IncomingMessage }, reply: { hijack(): void; raw: ServerResponse }): void => {
    reply.hijack();
    // Node emits a request as soon as its head is parsed, and only then parses the rest of the
    // same read: an invalid Transfer-Encoding, a bad chunk, a malformed pipelined request. Its
    // clientError comes within that read's I/O callback, but ticks already run between body
    // callbacks: deciding in the check phase keeps such a request from ever starting upstream.
    setImmediate(serve, request.raw, reply.raw);
  };
  app.route({ method: app.supportedMethods, url: '/*', handler });
  app.route({ method: app.supportedMethods, url: '/', handler });
  app.setNotFoundHandler(handler);
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    try {
      const refusal = headRefusal(req, limits.maxHeaderCount);
      if (refusal !== null) {
        engine.refuse(req, responseForUpgradeSocket(req, socket), refusal);
        return;
      }
      if (redirect !== null) redirect.handle(req, responseForUpgradeSocket(req, socket));
      else engine.handleUpgrade(req, socket, head, proto);
    } catch (err) {
      onInternalError(err);
      socket.destroy();
    }
  });
  return app;
}

/**
 * What Node's HTTP/1 parser lets through but the gateway refuses, checked on the parsed head
 * before anything is routed; every refusal closes the connection.
 * - more than `limits.maxHeaderCount` header fields: 431, never a silent drop;
 * - an HTTP version other than 1.0 and 1.1 (llhttp accepts `GET /p` as HTTP/0.9 and still reads
 *   headers after it, and `HTTP/2.0` in HTTP/1 syntax);
 * - no Host in HTTP/1.1, or more than one Host (RFC 9112 §3.2; Node would keep the first one);
 * - Transfer-Encoding in HTTP/1.0, which RFC 9112 §6.1 says is faulty framing: Node would read a
 *   chunked body and then parse what follows as the next request, where an HTTP/1.0 peer in front
 *   of the gateway would not.
 */
function headRefusal(req: IncomingMessage, maxHeaderCount: number): GatewayError | null {
  const raw = req.rawHeaders;
  // An HTTP/2 stream has its own framing; its pseudo-headers (:method, :path, ...) are not fields.
  if ((req as { stream?: unknown }).stream !== undefined) {
    let fields = 0;
    for (let i = 0; i < raw.length; i += 2) if (raw[i]!.charCodeAt(0) !== 0x3a) fields++;
    return fields > maxHeaderCount ? new GatewayError('GW_ERR_REQUEST_HEADERS_TOO_LARGE') : null;
  }
  if (raw.length > maxHeaderCount * 2) return new GatewayError('GW_ERR_REQUEST_HEADERS_TOO_LARGE');
  if (req.httpVersionMajor !== 1 || req.httpVersionMinor > 1) {
    return new GatewayError('GW_ERR_REQUEST_MALFORMED', ['unsupported HTTP version']);
  }
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') hosts++;
  }
  if (hosts > 1) return new GatewayError('GW_ERR_REQUEST_BAD_HOST', ['more than one Host header']);
  if (req.httpVersionMinor === 1) {
    if (hosts === 0) return new GatewayError('GW_ERR_REQUEST_BAD_HOST', ['no Host header']);
  } else if (req.headers['transfer-encoding'] !== undefined) {
    return new GatewayError('GW_ERR_REQUEST_MALFORMED', ['Transfer-Encoding in an HTTP/1.0 request']);
  }
  return null;
}

const CLIENT_ERRORS: Readonly<Record<string, GatewayError>> = {
  HPE_HEADER_OVERFLOW: new GatewayError('GW_ERR_REQUEST_HEADERS_TOO_LARGE'),
  // Slow client (slowloris headers or a dripped body) past headersTimeout / requestTimeout.
  ERR_HTTP_REQUEST_TIMEOUT: new GatewayError('GW_ERR_REQUEST_TIMEOUT'),
};

const REASONS: Readonly<Record<number, string>> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };

/**
 * Requests Node's parser refused never reach fastify. They still get the JSON error of SPEC §4,
 * and the connection is closed since the byte stream can no longer be trusted.
 */
function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  // A request whose head was parsed (a bad chunk, a body that stopped dripping in) has a response
  // object on the socket. Once that response has started, raw bytes beside it would corrupt the
  // stream: the connection is just cut, and the exchange sees the client leave.
  const inProgress = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  const started = inProgress !== undefined && inProgress !== null;
  if (error.code === 'ECONNRESET' || socket.destroyed || !socket.writable || (started && inProgress.headersSent)) {
    socket.destroy();
    return;
  }
  const err = CLIENT_ERRORS[error.code ?? ''] ?? new GatewayError('GW_ERR_REQUEST_MALFORMED', [error.code ?? 'unparsable request']);
  const requestId = requestIdFor(undefined);
  const body = JSON.stringify({ error: { status: err.status, code: err.publicCode, message: err.message, requestId } });
  const reason = REASONS[err.status] ?? 'Bad Request';
  const head = `HTTP/1.1 ${err.status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n`;
  // Nothing of that response was written yet, so the error can take its place (as Node's own
  // handler does); the socket is then destroyed so the exchange stops waiting for the body.
  if (started) socket.end(head + body, () => socket.destroy());
  else socket.end(head + body);
}
