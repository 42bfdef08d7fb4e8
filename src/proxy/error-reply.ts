import type { ServerResponse } from 'node:http';
import type { GatewayError } from '../errors.js';

/**
 * Writes the JSON error body of SPEC §4. The message is the catalogue's, never an upstream's
 * error text, so internal addresses and stack traces cannot leak.
 */
export function writeError(
  res: ServerResponse,
  err: GatewayError,
  requestId: string,
  extraHeaders: Readonly<Record<string, string>> | null = null,
  closeConnection = false,
): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({
    error: { status: err.status, code: err.publicCode ?? 'internal_error', message: err.message, requestId },
  });
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-request-id': requestId,
    'cache-control': 'no-store',
  };
  if (extraHeaders !== null) Object.assign(headers, extraHeaders);
  // An unread request body (e.g. refused for its size) would otherwise have to be drained first.
  // HTTP/2 forbids the header (a stream is reset instead of a connection closed).
  if (closeConnection && res.req?.httpVersionMajor !== 2) headers.connection = 'close';
  res.writeHead(err.status, headers);
  res.end(body);
}
