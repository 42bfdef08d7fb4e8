import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError } from '../errors.js';
import { normalizePath, resolveRequestHost, splitTarget } from '../router/normalize.js';
import { writeError } from './error-reply.js';
import { requestIdFor } from './request-id.js';

/**
 * `redirectToHttps: true` on a plain listener: every request gets a 308 (method and body kept by
 * the client, unlike 301) to the same host, path and query over HTTPS, on the first TLS
 * listener's port (omitted when 443). The host and path are validated and normalised exactly as
 * for routing, so a redirect never reflects a malformed or ambiguous target back to the client.
 */
export class HttpsRedirector {
  readonly #httpsPort: () => number;
  #portSuffix: string | null = null;

  /** `httpsPort` is read at the first request: a listener configured with port 0 is bound by then. */
  constructor(httpsPort: () => number) {
    this.#httpsPort = httpsPort;
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const requestId = requestIdFor(req.headers['x-request-id']);
    let location: string;
    try {
      const target = splitTarget(req.url ?? '/');
      const host = resolveRequestHost(target.authority, req.headers.host === '' ? undefined : req.headers.host);
      if (host === null) throw new GatewayError('GW_ERR_REQUEST_BAD_HOST', ['no Host to redirect to']);
      const path = normalizePath(target.path);
      // normalizeHost drops the port and keeps an IPv6 literal's brackets.
      if (this.#portSuffix === null) {
        const port = this.#httpsPort();
        this.#portSuffix = port === 443 ? '' : `:${port}`;
      }
      location = `https://${host}${this.#portSuffix}${path}${target.query === '' ? '' : `?${target.query}`}`;
    } catch (err) {
      const refusal = err instanceof GatewayError ? err : new GatewayError('GW_ERR_REQUEST_MALFORMED', ['unparsable request-target']);
      writeError(res, refusal, requestId, null, !req.complete);
      return;
    }
    res.writeHead(308, { location, 'content-length': 0, 'x-request-id': requestId, 'cache-control': 'no-store' });
    res.end();
  }
}
