import type { ErrorCode } from '../errors.js';
import type { FailureKind } from '../upstream/outcome.js';

export interface UpstreamFailure {
  readonly code: ErrorCode;
  readonly status: number; // what the client gets, and the metric label of the attempt
  readonly failure: FailureKind;
}

const CONNECT_REFUSED: UpstreamFailure = { code: 'GW_ERR_UPSTREAM_BAD_GATEWAY', status: 502, failure: 'connect-failure' };
const CONNECT_TIMEOUT: UpstreamFailure = { code: 'GW_ERR_UPSTREAM_TIMEOUT', status: 504, failure: 'connect-failure' };
const HEADERS_TIMEOUT: UpstreamFailure = { code: 'GW_ERR_UPSTREAM_TIMEOUT', status: 504, failure: 'timeout' };
const RESET: UpstreamFailure = { code: 'GW_ERR_UPSTREAM_BAD_GATEWAY', status: 502, failure: 'reset' };
const PROTOCOL: UpstreamFailure = { code: 'GW_ERR_UPSTREAM_BAD_GATEWAY', status: 502, failure: 'protocol' };

// Errors raised while the connection was being made: nothing of the request was sent, so any
// method may be retried on another endpoint.
const CONNECT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

/** Maps an undici/socket error of one upstream attempt to what the client sees (SPEC §4). */
export function classifyUpstreamError(err: unknown): UpstreamFailure {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return PROTOCOL;
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return CONNECT_TIMEOUT;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'GW_ATTEMPT_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'ETIMEDOUT') return HEADERS_TIMEOUT;
  if (CONNECT_CODES.has(code)) return CONNECT_REFUSED;
  if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_CLOSED') return RESET;
  // HPE_* (unparsable response), UND_ERR_RES_CONTENT_LENGTH_MISMATCH, UND_ERR_INFO, ...
  return PROTOCOL;
}
