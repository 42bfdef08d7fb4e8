import type { IncomingMessage } from 'node:http';
import type { GatewayError } from '../errors.js';

/** The `attributes` key of the verified JWT subject, which the access log records. */
export const JWT_SUBJECT = 'jwt.sub';

/** The `attributes` key of the rate-limit decision (allowed | limited | store_error), for the access log. */
export const RATE_LIMIT_DECISION = 'ratelimit.decision';

/** What a filter may read and add to while deciding about one request. */
export interface FilterContext {
  readonly req: IncomingMessage;
  readonly requestId: string;
  readonly clientIp: string;
  readonly routeName: string;
  /** Headers to add to the upstream request (after hop-by-hop removal), set by filters. */
  readonly upstreamHeaders: Record<string, string>;
  /** Headers to add to the client response, whatever it is (e.g. RateLimit-*). */
  readonly responseHeaders: Record<string, string>;
  /** Values filters hand to later stages and to the access log (e.g. JWT subject). */
  readonly attributes: Map<string, string>;
  /**
   * The verified claims of the request's token, set by an authentication filter; null until then.
   * Read by the core for `jwt:<claim>` keys (consistent hashing) without importing the plugin.
   */
  claims: Readonly<Record<string, unknown>> | null;
}

/**
 * A per-route stage between routing and forwarding (JWT auth, rate limiting, ...). Built once per
 * snapshot from the route's config; `apply` runs per request and returns null to let the request
 * continue, or the error the client must get. Synchronous filters return directly so a chain
 * with no async filter never awaits.
 */
export interface RequestFilter {
  readonly name: string;
  /**
   * Request headers this filter alone may set for the upstream (e.g. forwarded JWT claims). The
   * core removes every client-sent copy, under any case or `_`-for-`-` spelling, whether or not
   * the filter then sets it: a client must not be able to pose as a claim the token lacks.
   */
  readonly ownedRequestHeaders?: readonly string[];
  apply(ctx: FilterContext): GatewayError | null | Promise<GatewayError | null>;
}
