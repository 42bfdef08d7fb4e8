// The key a consistent-hash pool balances on (`hashOn`), parsed once per pool and read per request
// without allocation beyond the key string itself.

import type { IncomingHttpHeaders } from 'node:http';
import type { PickContext } from './balancers/types.js';

export type HashKeySpec =
  | { readonly kind: 'ip' }
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string }
  | { readonly kind: 'jwt'; readonly claim: string };

/** `ip`, `header:<name>`, `cookie:<name>`, `jwt:<claim>` (validated by the schema) → spec. */
export function parseHashOn(hashOn: string): HashKeySpec {
  if (hashOn === 'ip') return { kind: 'ip' };
  const colon = hashOn.indexOf(':');
  const kind = hashOn.slice(0, colon);
  const name = hashOn.slice(colon + 1);
  if (kind === 'header') return { kind: 'header', name: name.toLowerCase() };
  if (kind === 'cookie') return { kind: 'cookie', name };
  return { kind: 'jwt', claim: name };
}

/** The shared context of requests that carry no hash key (every pool but consistent-hash ones). */
export const NO_HASH_KEY: PickContext = Object.freeze({ hashKey: null });

/**
 * The request's key, or null when it has none (the balancer then picks at random, as Envoy does).
 * A repeated header hashes on its first value, so a client cannot spread itself by repeating it.
 */
export function hashKeyOf(
  spec: HashKeySpec,
  headers: IncomingHttpHeaders,
  clientIp: string,
  claims: Readonly<Record<string, unknown>> | null,
): string | null {
  switch (spec.kind) {
    case 'ip':
      return clientIp;
    case 'header': {
      const value = headers[spec.name];
      // Typed, not just defined: headers is a plain object (`header:constructor` must not read
      // Object.prototype's member).
      if (typeof value === 'string') return value;
      return Array.isArray(value) ? (value[0] ?? null) : null;
    }
    case 'jwt': {
      // Verified claims only (the route's auth filter set them): an unverified token is no key.
      const value = claims?.[spec.claim];
      if (typeof value === 'string') return value;
      return typeof value === 'number' || typeof value === 'boolean' ? String(value) : null;
    }
    case 'cookie':
      return cookieValue(headers.cookie, spec.name);
  }
}

/**
 * The value of cookie `name` in a Cookie header (RFC 6265 §5.4: `a=1; b=2`; HTTP/2 clients may
 * send several headers, which Node joins with `; `), or null. The first occurrence wins, as
 * browsers send the most specific cookie first. Scanned without splitting or a regex: this runs
 * per request on sticky pools.
 */
export function cookieValue(header: string | undefined, name: string): string | null {
  if (header === undefined) return null;
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end === -1) end = header.length;
    while (start < end && header.charCodeAt(start) === 0x20) start++;
    const eq = header.indexOf('=', start);
    if (eq !== -1 && eq < end && eq - start === name.length && header.startsWith(name, start)) {
      let value = header.slice(eq + 1, end).trim();
      // A quoted value is the same cookie as its unquoted form (RFC 6265 cookie-value).
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      return value === '' ? null : value;
    }
    start = end + 1;
  }
  return null;
}
