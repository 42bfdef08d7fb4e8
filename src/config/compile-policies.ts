// routes.yaml `jwtProviders` and `rateLimits` (already schema-valid) → their config objects:
// defaults applied, units read, header names lower-cased, paths made absolute.

import { resolve } from 'node:path';
import { JWT_PROVIDER_DEFAULTS } from './defaults.js';
import type { IssueCollector } from './issues.js';
import { checkHttpUrl } from './normalize.js';
import type { JwtProviderEntry, RateLimitPolicyEntry } from './schema.js';
import type { FieldPath } from './source.js';
import type { JwtProviderConfig, RateLimitKeyPart, RateLimitPolicyConfig } from './types.js';
import { parseDuration } from './units.js';

export function compileJwtProvider(name: string, entry: JwtProviderEntry, folder: string, issues: IssueCollector): JwtProviderConfig {
  const path: FieldPath = ['jwtProviders', name];
  if ((entry.jwksUri === undefined) === (entry.jwksFile === undefined)) issues.add(path, 'set exactly one of jwksUri and jwksFile');
  const forwardClaims: Record<string, string> = {};
  const claimOfHeader = new Map<string, string>();
  for (const [claim, header] of Object.entries(entry.forwardClaims ?? JWT_PROVIDER_DEFAULTS.forwardClaims)) {
    const lower = header.toLowerCase();
    const other = claimOfHeader.get(lower);
    if (other !== undefined) issues.add([...path, 'forwardClaims', claim], `header ${lower} already carries claim ${other}`);
    claimOfHeader.set(lower, claim);
    forwardClaims[claim] = lower;
  }
  return {
    name,
    issuer: entry.issuer,
    audiences: entry.audiences ?? JWT_PROVIDER_DEFAULTS.audiences,
    jwksUri: entry.jwksUri === undefined ? null : issues.value([...path, 'jwksUri'], checkHttpUrl(entry.jwksUri), entry.jwksUri),
    jwksFile: entry.jwksFile === undefined ? null : resolve(folder, entry.jwksFile),
    jwksCacheMaxAgeMs: parseDuration(entry.jwksCacheMaxAge ?? JWT_PROVIDER_DEFAULTS.jwksCacheMaxAge),
    jwksRefetchCooldownMs: parseDuration(entry.jwksRefetchCooldown ?? JWT_PROVIDER_DEFAULTS.jwksRefetchCooldown),
    algorithms: entry.algorithms ?? JWT_PROVIDER_DEFAULTS.algorithms,
    clockSkewMs: parseDuration(entry.clockSkew ?? JWT_PROVIDER_DEFAULTS.clockSkew),
    forwardClaims,
  };
}

/** `ip`, `route`, `header:X-Api-Key` (name lower-cased), `jwt:sub`; the schema vouched for the form. */
export function parseRateLimitKeyPart(text: string): RateLimitKeyPart {
  if (text === 'ip' || text === 'route') return { kind: text };
  const colon = text.indexOf(':');
  const value = text.slice(colon + 1);
  return text.startsWith('header:') ? { kind: 'header', name: value.toLowerCase() } : { kind: 'jwt', claim: value };
}

export function compileRateLimitPolicy(name: string, entry: RateLimitPolicyEntry, issues: IssueCollector): RateLimitPolicyConfig {
  const parts = typeof entry.key === 'string' ? [entry.key] : entry.key;
  const windowMs = parseDuration(entry.window);
  // The limiter counts time in whole microseconds (Redis TIME's resolution): a finer rate than one
  // request per microsecond would silently become that.
  if (windowMs * 1000 < entry.limit) issues.add(['rateLimits', name, 'limit'], `more than one request per microsecond (${entry.limit} per ${entry.window}) cannot be enforced; use a longer window`);
  return {
    name,
    key: parts.map(parseRateLimitKeyPart),
    limit: entry.limit,
    windowMs,
    burst: entry.burst ?? entry.limit,
  };
}
