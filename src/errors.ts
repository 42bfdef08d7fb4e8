// The error catalogue: every error the gateway raises is declared here once, with a stable code,
// the HTTP status a client sees (when it reaches a client) and the public `error.code` of the JSON
// body. Callers branch on `err.code`, never on a message. docs/errors.md is checked against this
// list by test/errors.test.ts.

export interface ErrorSpec {
  /** HTTP status, for errors answered to a client; 500 for errors that never reach one. */
  readonly status: number;
  /** `error.code` in the JSON body a client receives; null for operator-only errors. */
  readonly publicCode: string | null;
  /** Message template; `%s` placeholders are filled in order. */
  readonly message: string;
}

export const ERROR_CATALOGUE = {
  // Requests (client-facing)
  GW_ERR_ROUTE_NOT_FOUND: { status: 404, publicCode: 'route_not_found', message: 'no route matches this request' },
  GW_ERR_ROUTE_METHOD_NOT_ALLOWED: { status: 405, publicCode: 'method_not_allowed', message: 'method %s is not allowed on this route' },
  GW_ERR_REQUEST_BAD_PATH: { status: 400, publicCode: 'bad_request', message: 'invalid request path: %s' },
  GW_ERR_REQUEST_BAD_HOST: { status: 400, publicCode: 'bad_request', message: 'invalid or conflicting host: %s' },
  GW_ERR_REQUEST_MALFORMED: { status: 400, publicCode: 'bad_request', message: 'malformed request: %s' },
  GW_ERR_REQUEST_BODY_TOO_LARGE: { status: 413, publicCode: 'payload_too_large', message: 'request body exceeds %s bytes' },
  GW_ERR_REQUEST_HEADERS_TOO_LARGE: { status: 431, publicCode: 'headers_too_large', message: 'request headers are too large' },
  GW_ERR_REQUEST_TIMEOUT: { status: 408, publicCode: 'request_timeout', message: 'the request did not arrive in time' },
  GW_ERR_AUTH_UNAUTHORIZED: { status: 401, publicCode: 'unauthorized', message: 'authentication required' },
  GW_ERR_AUTH_FORBIDDEN: { status: 403, publicCode: 'forbidden', message: 'access denied' },
  GW_ERR_RATELIMIT_LIMITED: { status: 429, publicCode: 'rate_limited', message: 'rate limit exceeded' },
  GW_ERR_RATELIMIT_UNAVAILABLE: { status: 503, publicCode: 'ratelimit_unavailable', message: 'rate limiting is unavailable' },
  GW_ERR_UPSTREAM_BAD_GATEWAY: { status: 502, publicCode: 'bad_gateway', message: 'the upstream failed to answer' },
  GW_ERR_UPSTREAM_UNAVAILABLE: { status: 503, publicCode: 'upstream_unavailable', message: 'no usable upstream endpoint' },
  GW_ERR_UPSTREAM_OVERLOADED: { status: 503, publicCode: 'upstream_overloaded', message: 'the upstream pool has too many requests waiting for a connection' },
  GW_ERR_UPSTREAM_TIMEOUT: { status: 504, publicCode: 'gateway_timeout', message: 'the upstream did not answer in time' },
  GW_ERR_FAULT_INJECTED: { status: 503, publicCode: 'fault_injected', message: 'fault injected by route configuration' },
  GW_ERR_INTERNAL: { status: 500, publicCode: 'internal_error', message: 'internal gateway error' },

  // Configuration and operations (operator-facing)
  GW_ERR_CONFIG_INVALID: { status: 500, publicCode: null, message: 'invalid configuration: %s' },
  GW_ERR_CONFIG_UNSUPPORTED: { status: 500, publicCode: null, message: '%s is not supported yet' },
  GW_ERR_CLI_USAGE: { status: 500, publicCode: null, message: '%s' },
  GW_ERR_LISTEN_FAILED: { status: 500, publicCode: null, message: 'cannot listen on %s: %s' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

function format(template: string, args: readonly unknown[]): string {
  let i = 0;
  return template.replace(/%s/g, () => (i < args.length ? String(args[i++]) : '%s'));
}

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly publicCode: string | null;

  constructor(code: ErrorCode, args: readonly unknown[] = [], options?: { cause?: unknown }) {
    const spec: ErrorSpec = ERROR_CATALOGUE[code];
    super(format(spec.message, args), options);
    this.name = 'GatewayError';
    this.code = code;
    this.status = spec.status;
    this.publicCode = spec.publicCode;
  }
}

/** A pre-serialisable description of one configuration problem, with where it is. */
export interface ConfigIssue {
  readonly file: string;
  readonly line: number; // 1-based; 0 when unknown
  readonly col: number; // 1-based; 0 when unknown
  readonly path: string; // field path, e.g. routes[0].upstream; '' for the whole file
  readonly message: string;
}

export function formatConfigIssue(issue: ConfigIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}:${issue.col}` : issue.file;
  return issue.path ? `${where}: ${issue.path}: ${issue.message}` : `${where}: ${issue.message}`;
}

/** Raised by the config loader with every problem it found, not just the first. */
export class ConfigError extends GatewayError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    super('GW_ERR_CONFIG_INVALID', [issues.map(formatConfigIssue).join('; ')]);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}
