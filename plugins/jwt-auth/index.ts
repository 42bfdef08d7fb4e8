// The jwt-auth plugin's public surface: what the gateway core wires in (the registry, the filter
// factory, the events sink type) and what later filters read (verifiedClaims).

export { LruCache } from './cache.js';
export { type ClaimRequirement, compileRequirements, headerValue, unmetRequirement } from './claims.js';
export {
  type JwksFetchDetail,
  type JwksFetchResult,
  type JwksFetchTrigger,
  type JwtEvents,
  type JwtFailure,
  type JwtVerificationResult,
  SILENT_JWT_EVENTS,
} from './events.js';
export {
  bearerToken,
  CHALLENGE_FORBIDDEN,
  CHALLENGE_INVALID,
  CHALLENGE_MISSING,
  createJwtAuthFilter,
  JWT_AUTH_FILTER_NAME,
  JWT_SUBJECT_ATTRIBUTE,
  type JwtAuthFilter,
  type UnusableAuthorization,
  verifiedClaims,
} from './filter.js';
export { buildKeys, type KeyEntry, KeySet, MIN_RSA_BITS, type RejectedKey } from './keys.js';
export {
  type FailedVerification,
  JWKS_FETCH_TIMEOUT_MS,
  JwtProvider,
  type JwtProviderOptions,
  MAX_CACHED_TOKEN_LENGTH,
  UNKNOWN_KID_WAIT_MS,
  type Verification,
  VERIFICATION_CACHE_SIZE,
  type VerifiedToken,
} from './provider.js';
export { FIRST_FETCH_WAIT_MS, JwksFileError, JwtProviderRegistry, type JwtRegistryOptions } from './registry.js';
export { JWKS_MAX_BYTES } from './source.js';
