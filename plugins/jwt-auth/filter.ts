// The per-route `auth: { jwt, require }` filter: takes the Bearer token, has the route's provider
// verify it, checks the route's `require`, and hands the result on (upstream headers from
// forwardClaims, `jwt.sub` for the access log, the claims for later filters).
//
// What a client sees (RFC 6750 §3): no Bearer token → 401 with `WWW-Authenticate: Bearer
// realm="gateway"`; a token that fails for any reason → 401 with the same challenge plus
// `error="invalid_token"` and the same body whatever the reason (the reason goes to the events
// sink only: telling a forger *why* helps the forger); a valid token that misses a `require` →
// 403 with `error="insufficient_scope"`.
//
// The token: exactly one Authorization header (counted in rawHeaders: Node keeps only the first
// `authorization` in req.headers, and a second one is an attempt to confuse whoever reads which),
// scheme `Bearer` in any case, then one or more spaces and a single token (RFC 6750 §2.1:
// `Bearer 1*SP b64token`). Another scheme (Basic, ...) or no header is "missing"; `Bearer` without
// a token, or with more than one, and two headers are an invalid token.
//
// Cost per request, cache hit: one pass over rawHeaders, a few string compares, a Map lookup, the
// require check, one context field set, one events call, and no promise. A miss adds the provider's
// verification (a promise).

import type { JWTPayload } from 'jose';
import type { RouteAuthConfig } from '../../src/config/types.js';
import { GatewayError } from '../../src/errors.js';
import { type FilterContext, JWT_SUBJECT, type RequestFilter } from '../../src/filters/filter.js';
import { compileRequirements, unmetRequirement } from './claims.js';
import type { JwtEvents, JwtVerificationResult } from './events.js';
import type { JwtProvider, Verification } from './provider.js';

export const JWT_AUTH_FILTER_NAME = 'jwt-auth';
/** The access log's JWT subject (`sub`, when it is a string). */
export const JWT_SUBJECT_ATTRIBUTE = JWT_SUBJECT;

export const CHALLENGE_MISSING = 'Bearer realm="gateway"';
export const CHALLENGE_INVALID = 'Bearer realm="gateway", error="invalid_token"';
export const CHALLENGE_FORBIDDEN = 'Bearer realm="gateway", error="insufficient_scope"';

/**
 * The verified claims of the request's token, once a jwt-auth filter has verified it (also when
 * its `require` then refused the request); undefined otherwise. Deep-frozen and shared with other
 * requests carrying the same token. For the rate limiter's `jwt:<claim>` keys, header placeholders.
 */
export function verifiedClaims(ctx: FilterContext): Readonly<JWTPayload> | undefined {
  return (ctx.claims as Readonly<JWTPayload> | null) ?? undefined;
}

export interface JwtAuthFilter extends RequestFilter {
  readonly name: typeof JWT_AUTH_FILTER_NAME;
  readonly provider: JwtProvider;
  /** The forwardClaims header names (lower case, as configured): the core removes client copies. */
  readonly ownedRequestHeaders: readonly string[];
  apply(ctx: FilterContext): GatewayError | null | Promise<GatewayError | null>;
}

/**
 * Builds the filter of one route, once per snapshot. `provider` is the registry's provider for
 * `auth.jwt` (the snapshot holds on to it, so a reload that replaces the provider leaves requests
 * in flight on the old one).
 */
export function createJwtAuthFilter(auth: RouteAuthConfig, provider: JwtProvider, events: JwtEvents): JwtAuthFilter {
  if (auth.jwt !== provider.name) throw new Error(`auth.jwt "${auth.jwt}" is verified by provider "${provider.name}"`);
  const requirements = compileRequirements(auth.require);
  const providerName = provider.name;
  const owned = Object.freeze([...new Set(Object.values(provider.config.forwardClaims).map((h) => h.toLowerCase()))]);

  const tell = (result: JwtVerificationResult, reason: string | null): void => {
    try {
      events.verification(providerName, result, reason);
    } catch {
      // The sink only observes.
    }
  };

  const decide = (ctx: FilterContext, verification: Verification): GatewayError | null => {
    if (!verification.ok) {
      tell(verification.result, verification.reason);
      ctx.responseHeaders['www-authenticate'] = CHALLENGE_INVALID;
      return new GatewayError('GW_ERR_AUTH_UNAUTHORIZED');
    }
    tell('ok', null);
    if (verification.subject !== null) ctx.attributes.set(JWT_SUBJECT_ATTRIBUTE, verification.subject);
    ctx.claims = verification.claims;
    if (requirements.length > 0) {
      const unmet = unmetRequirement(verification.claims, requirements);
      if (unmet !== null) {
        try {
          events.denied?.(providerName, ctx.routeName, unmet);
        } catch {
          // The sink only observes.
        }
        ctx.responseHeaders['www-authenticate'] = CHALLENGE_FORBIDDEN;
        return new GatewayError('GW_ERR_AUTH_FORBIDDEN');
      }
    }
    const forwarded = verification.forwarded;
    for (let i = 0; i < forwarded.length; i++) {
      const [header, value] = forwarded[i]!;
      ctx.upstreamHeaders[header] = value;
    }
    return null;
  };

  return Object.freeze({
    name: JWT_AUTH_FILTER_NAME,
    provider,
    ownedRequestHeaders: owned,
    apply(ctx: FilterContext): GatewayError | null | Promise<GatewayError | null> {
      const token = bearerToken(ctx.req.rawHeaders);
      if (token === null) {
        tell('missing', null);
        ctx.responseHeaders['www-authenticate'] = CHALLENGE_MISSING;
        return new GatewayError('GW_ERR_AUTH_UNAUTHORIZED');
      }
      if (typeof token !== 'string') {
        tell('malformed', token.reason);
        ctx.responseHeaders['www-authenticate'] = CHALLENGE_INVALID;
        return new GatewayError('GW_ERR_AUTH_UNAUTHORIZED');
      }
      const verification = provider.verify(token);
      return verification instanceof Promise ? verification.then((v) => decide(ctx, v)) : decide(ctx, verification);
    },
  });
}

/** An Authorization header that claims to carry a Bearer token but cannot be used. */
export interface UnusableAuthorization {
  readonly reason: string;
}

const SEVERAL_HEADERS: UnusableAuthorization = Object.freeze({ reason: 'more than one Authorization header' });
const NO_TOKEN: UnusableAuthorization = Object.freeze({ reason: 'Bearer without a token' });
const SEVERAL_TOKENS: UnusableAuthorization = Object.freeze({ reason: 'more than one token after Bearer' });

const SPACE = 0x20;

/**
 * The Bearer token of a request, from its raw header list: the token, null when there is none
 * (no Authorization header, or another scheme), or why the header is unusable.
 */
export function bearerToken(rawHeaders: readonly string[]): string | UnusableAuthorization | null {
  let value: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length !== 13) continue;
    // The usual spellings without a lower-cased copy per header.
    if (name !== 'Authorization' && name !== 'authorization' && name.toLowerCase() !== 'authorization') continue;
    if (value !== undefined) return SEVERAL_HEADERS;
    value = rawHeaders[i + 1] ?? '';
  }
  if (value === undefined) return null;
  // Node has already removed the leading and trailing whitespace of the value.
  if (!value.startsWith('Bearer') && (value.length < 6 || value.slice(0, 6).toLowerCase() !== 'bearer')) return null;
  if (value.length === 6) return NO_TOKEN;
  if (value.charCodeAt(6) !== SPACE) return null; // e.g. `Bearerish x`: another scheme
  let start = 7;
  while (start < value.length && value.charCodeAt(start) === SPACE) start++;
  if (start === value.length) return NO_TOKEN;
  if (value.indexOf(' ', start) !== -1 || value.indexOf('\t', start) !== -1) return SEVERAL_TOKENS;
  return value.slice(start);
}
