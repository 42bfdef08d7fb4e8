// Rate-limit keys: which counter a request spends from. Compiled per policy and route once per
// snapshot; per request only the request's own values are read and escaped.
//
// Layout: `{prefix}{policy}:{<value>}`, where <value> joins the policy's key parts with `:`.
// - The policy's name is in every key, so two policies never share (or collide on) a counter:
//   the Traefik bug where two middlewares counted into one key cannot happen.
// - A policy is shared by every route that lists it, unless its key includes `route` (as an
//   Envoy descriptor is): `per-ip` on two routes gives a client one budget across both.
// - The value is a Redis Cluster hash tag: a key lives on the slot of its value alone, so the
//   policies of a request keyed on the same value (per-user-minute and per-user-day) are decided
//   in one call even on a Cluster.
// - Part values are escaped (`%`, `:`, `{`, `}` percent-encoded), so a header value holding `:`
//   cannot pose as two parts; values longer than MAX_VALUE_LENGTH are replaced by their SHA-256
//   (`%H` + base64url, a form escaping never produces), so a 16 KiB header costs 60 bytes.
// - A request that lacks a part (no such header, no verified claim) is counted by client IP, in a
//   key of its own form (`{policy}:ip={<address>}`) that no real value can spell: it is never let
//   through unlimited, and an attacker sending `sub` values that look like addresses cannot drain
//   the budget of the clients counted by address.

import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { RateLimitKeyPart } from '../../src/config/types.js';
import type { FilterContext } from '../../src/filters/filter.js';

export const MAX_VALUE_LENGTH = 200;

const NEEDS_ESCAPE = /[%:{}]/;
const ESCAPED = /[%:{}]/g;
const ESCAPES: Readonly<Record<string, string>> = { '%': '%25', ':': '%3A', '{': '%7B', '}': '%7D' };
const escapeChar = (c: string): string => ESCAPES[c]!;

function escapePart(value: string): string {
  return NEEDS_ESCAPE.test(value) ? value.replace(ESCAPED, escapeChar) : value;
}

function bounded(value: string): string {
  return value.length <= MAX_VALUE_LENGTH ? value : `%H${createHash('sha256').update(value).digest('base64url')}`;
}

/** What a key is built from: the request's headers, client address, route and verified claims. */
export interface KeySource {
  readonly headers: IncomingHttpHeaders;
  readonly clientIp: string;
  readonly routeName: string;
  /** Verified claims only: an unverified token's claims are the client's word. */
  readonly claims: Readonly<Record<string, unknown>> | null;
}

/** A part's value in one request; undefined when the request lacks it. */
function partValue(part: RateLimitKeyPart, source: KeySource): string | undefined {
  switch (part.kind) {
    case 'ip':
      return source.clientIp;
    case 'route':
      return source.routeName;
    case 'header': {
      const value = source.headers[part.name];
      // Typed, not just defined: headers is a plain object, so `header:constructor` on a request
      // without that header would read Object.prototype's member.
      const text = typeof value === 'string' ? value : Array.isArray(value) ? value.join(', ') : undefined;
      return text === undefined || text === '' ? undefined : text;
    }
    case 'jwt': {
      const claim = source.claims?.[part.claim];
      if (typeof claim === 'string') return claim === '' ? undefined : claim;
      if (typeof claim === 'number' || typeof claim === 'boolean') return String(claim);
      return undefined;
    }
  }
}

/** Builds one policy's key for each request. */
export class PolicyKey {
  readonly #base: string;
  readonly #fallbackBase: string;
  readonly #parts: readonly RateLimitKeyPart[];

  constructor(keyPrefix: string, policy: string, parts: readonly RateLimitKeyPart[]) {
    this.#base = `${keyPrefix}${policy}:{`;
    this.#fallbackBase = `${keyPrefix}${policy}:ip={`;
    this.#parts = parts;
  }

  /** The key of a request going through a filter (the context's req headers, client IP, claims). */
  keyFor(ctx: FilterContext): string {
    return this.keyOf({ headers: ctx.req.headers, clientIp: ctx.clientIp, routeName: ctx.routeName, claims: ctx.claims });
  }

  keyOf(source: KeySource): string {
    const parts = this.#parts;
    if (parts.length === 1) {
      const value = partValue(parts[0]!, source);
      return value === undefined ? this.#fallback(source) : `${this.#base}${bounded(escapePart(value))}}`;
    }
    let joined = '';
    for (let i = 0; i < parts.length; i++) {
      const value = partValue(parts[i]!, source);
      if (value === undefined) return this.#fallback(source);
      joined = i === 0 ? escapePart(value) : `${joined}:${escapePart(value)}`;
    }
    return `${this.#base}${bounded(joined)}}`;
  }

  /** The first part the request lacks (so it is counted by client IP), or null. */
  missingPart(source: KeySource): string | null {
    const missing = this.#parts.find((part) => partValue(part, source) === undefined);
    return missing === undefined ? null : describeKey([missing]);
  }

  #fallback(source: KeySource): string {
    return `${this.#fallbackBase}${escapePart(source.clientIp)}}`;
  }
}

/** How `explain` names a key without a request: `per-user:{jwt:sub}`. */
export function describeKey(parts: readonly RateLimitKeyPart[]): string {
  return parts.map((p) => (p.kind === 'header' ? `header:${p.name}` : p.kind === 'jwt' ? `jwt:${p.claim}` : p.kind)).join(' + ');
}
