import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import type { LimitsConfig, ListenerConfig } from '../config/types.js';
import { GatewayError } from '../errors.js';
import type { ProxyEngine } from './engine.js';
import { writeError } from './error-reply.js';
import { requestIdFor } from './request-id.js';

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
): FastifyInstance {
  const proto = listener.tls === null ? 'http' : 'https';
  const app = Fastify({
    logger: false,
    http: {
      maxHeaderSize: limits.maxHeaderSize,
      headersTimeout: limits.headersTimeoutMs,
      // Node only checks these timeouts on this interval (30 s by default): a 10 s
      // headersTimeout would otherwise let a slowloris hold a socket for up to 40 s.
      connectionsCheckingInterval: Math.max(100, Math.min(1000, limits.headersTimeoutMs / 4)),
    } as never,
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

  const handler = (request: { raw: Parameters<ProxyEngine['handle']>[0] }, reply: { hijack(): void; raw: Parameters<ProxyEngine['handle']>[1] }): void => {
    reply.hijack();
    try {
      engine.handle(request.raw, reply.raw, proto);
    } catch (err) {
      // A bug must cost one request a 500, not leave the connection hanging after hijack().
      onInternalError(err);
      writeError(reply.raw, new GatewayError('GW_ERR_INTERNAL', [], { cause: err }), requestIdFor(request.raw.headers['x-request-id']));
    }
  };
  app.route({ method: app.supportedMethods, url: '/*', handler });
  app.route({ method: app.supportedMethods, url: '/', handler });
  app.setNotFoundHandler(handler);
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    try {
      engine.handleUpgrade(req, socket, head, proto);
    } catch (err) {
      onInternalError(err);
      socket.destroy();
    }
  });
  return app;
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
  // A request already handed to the engine (e.g. a body that stopped dripping in) has a response
  // object on the socket (Node's own handler checks the same field): writing raw bytes beside it
  // would corrupt the stream, so the connection is cut and the exchange sees the client leave.
  const inProgress = (socket as Socket & { _httpMessage?: unknown })._httpMessage;
  if (error.code === 'ECONNRESET' || socket.destroyed || !socket.writable || (inProgress !== undefined && inProgress !== null)) {
    socket.destroy();
    return;
  }
  const err = CLIENT_ERRORS[error.code ?? ''] ?? new GatewayError('GW_ERR_REQUEST_MALFORMED', [error.code ?? 'unparsable request']);
  const requestId = requestIdFor(undefined);
  const body = JSON.stringify({ error: { status: err.status, code: err.publicCode, message: err.message, requestId } });
  const reason = REASONS[err.status] ?? 'Bad Request';
  socket.end(
    `HTTP/1.1 ${err.status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`,
  );
}
