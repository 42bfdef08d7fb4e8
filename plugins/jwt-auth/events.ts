// What the jwt-auth plugin reports, so the gateway can log and count it (prom-client): one call
// per verification decision and one per JWKS load. The plugin never logs by itself.
//
// Cost: one sink call per request that reaches a jwt-auth filter (cache hits included) and one per
// JWKS fetch or file read; every call is guarded, so a sink that throws changes nothing.

/**
 * `gateway_jwt_verifications_total{provider,result}`. `ok`: the token verified (a route's
 * `require` may still refuse it with 403: that is not a verification result). `missing`: no
 * Bearer token at all. `malformed`: not a compact JWS/JWT, a broken header or payload, or an
 * unusable Authorization header (two of them, `Bearer` without a token, more than one token).
 * `invalid_signature`: the signature does not verify, or the token's `alg` is not allowed (by the
 * provider, or by the key it names — e.g. `none`, or HS256 against an RSA key). `unknown_kid`: no
 * key in the current set (after the one refetch the kid may trigger). `expired`: `exp` is past
 * (beyond the clock skew). `invalid_claims`: `iss`, `aud`, `nbf` or `iat` is wrong.
 */
export type JwtVerificationResult = 'ok' | 'missing' | 'expired' | 'invalid_signature' | 'invalid_claims' | 'unknown_kid' | 'malformed';

/** Every result except `ok` and `missing`: those a token itself can fail with. */
export type JwtFailure = Exclude<JwtVerificationResult, 'ok' | 'missing'>;

/**
 * `gateway_jwks_fetches_total{provider,result}`. `success`: a usable key set was loaded and differs
 * from the one in use (or is the first one), which it now replaces. `unchanged`: a usable key set
 * identical to the one in use. `failure`: nothing usable (network error, timeout, HTTP status other
 * than 200, a body too large, not JSON, not a JWKS, no key that imports); the keys in use are kept.
 */
export type JwksFetchResult = 'success' | 'unchanged' | 'failure';

/**
 * Why a load ran: the first fetch of a new provider, the background refresh (or its retry after a
 * failure), a token with a kid the set lacks, or a (re)load of a `jwksFile`.
 */
export type JwksFetchTrigger = 'initial' | 'refresh' | 'unknown_kid' | 'file';

export interface JwksFetchDetail {
  readonly trigger: JwksFetchTrigger;
  /** The jwksUri or the absolute jwksFile path. */
  readonly source: string;
  /** Keys in use after this load (on failure: the kept ones, 0 before the first success). */
  readonly keys: number;
  /** One line for a log: why it failed; null unless result is `failure`. */
  readonly reason: string | null;
  readonly durationMs: number;
}

export interface JwtEvents {
  /** One per request reaching a jwt-auth filter. `reason` is a log line for failures, else null. */
  verification(provider: string, result: JwtVerificationResult, reason: string | null): void;
  jwksFetch(provider: string, result: JwksFetchResult, detail: JwksFetchDetail): void;
  /**
   * A key of a fetched JWKS was dropped while the others were used: it does not import, is an RSA
   * key under 2048 bits, an `oct` (symmetric) key from a URL, or a secret too short for its HS*
   * algorithm. (A jwksFile with such a key fails its load instead.) Reported on every fetch that
   * still serves it. Keys meant for no algorithm the provider accepts (`use: enc`, another curve)
   * are ignored silently.
   */
  keyRejected(provider: string, kid: string | null, reason: string): void;
  /** A verified token did not meet the route's `require` (answered 403). Optional. */
  denied?(provider: string, route: string, claim: string): void;
}

export const SILENT_JWT_EVENTS: JwtEvents = Object.freeze({
  verification: () => {},
  jwksFetch: () => {},
  keyRejected: () => {},
});

/** Calls a sink method; the sink only observes, its failure must not change a decision. */
export function report(call: () => void): void {
  try {
    call();
  } catch {
    // ignored: see above
  }
}
