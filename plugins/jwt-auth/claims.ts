// What a verified token's claims are turned into: the route's `require` check, and the header
// values `forwardClaims` sends upstream.
//
// Why header values follow fixed rules rather than String(value): the upstream must be able to
// read them back unambiguously, and a claim may hold anything JSON can. So: a string of printable
// ASCII is sent as it is; numbers and booleans as their JSON text; `scope`/`scp` arrays of
// space-free strings joined with single spaces (the RFC 8693 `scope` form, which an upstream
// already parses); anything else (objects, other arrays, strings with non-ASCII or control
// characters) as JSON with every non-ASCII character \u-escaped, so it is always a valid header
// value. null and absent claims send no header (the core has removed any client copy anyway).
//
// Cost: the header values and the frozen claims are computed once per verified token and cached
// with it; the `require` check runs per request, without allocating.

import type { JWTPayload } from 'jose';

/** Claims whose string form is a space-delimited list (RFC 8693 §4.2, and Azure AD's `scp`). */
const SPACE_DELIMITED: ReadonlySet<string> = new Set(['scope', 'scp']);
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
const LIST_WORD = /^[\x21-\x7e]+$/;

/** [header, value] pairs for a verified token, in `forwardClaims` order. */
export function forwardedHeaders(claims: JWTPayload, forwardClaims: Readonly<Record<string, string>>): readonly (readonly [string, string])[] {
  const out: (readonly [string, string])[] = [];
  for (const [claim, header] of Object.entries(forwardClaims)) {
    const value = headerValue(claim, claims[claim]);
    if (value !== null) out.push(Object.freeze([header, value] as const));
  }
  return Object.freeze(out);
}

/** The header value for one claim value, or null to send none. See the file comment. */
export function headerValue(claim: string, value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return PRINTABLE_ASCII.test(value) ? value : asciiJson(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value) && SPACE_DELIMITED.has(claim) && value.every((v) => typeof v === 'string' && LIST_WORD.test(v))) {
    return value.join(' ');
  }
  return asciiJson(value);
}

function asciiJson(value: unknown): string {
  // JSON.stringify already escapes control characters; DEL and everything above ASCII are left.
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export interface ClaimRequirement {
  readonly claim: string;
  /** Every one must be held. */
  readonly values: readonly string[];
  readonly spaceDelimited: boolean;
}

export function compileRequirements(require: Readonly<Record<string, string | readonly string[]>>): readonly ClaimRequirement[] {
  return Object.freeze(
    Object.entries(require).map(([claim, value]) =>
      Object.freeze({
        claim,
        values: Object.freeze(typeof value === 'string' ? [value] : [...value]),
        spaceDelimited: SPACE_DELIMITED.has(claim),
      }),
    ),
  );
}

/** The first requirement the claims do not meet (its claim name), or null when all are met. */
export function unmetRequirement(claims: JWTPayload, requirements: readonly ClaimRequirement[]): string | null {
  for (const requirement of requirements) {
    const actual = claims[requirement.claim];
    for (const wanted of requirement.values) {
      if (!holds(actual, wanted, requirement.spaceDelimited)) return requirement.claim;
    }
  }
  return null;
}

/**
 * The claim equals `wanted`, or is an array with an element equal to it, or (scope, scp) a string
 * with it as one of its space-separated words. Numbers and booleans compare by their JSON text
 * (`require: { admin: "true" }` matches `"admin": true`); objects never match.
 */
function holds(actual: unknown, wanted: string, spaceDelimited: boolean): boolean {
  if (typeof actual === 'string') return actual === wanted || (spaceDelimited && containsWord(actual, wanted));
  if (Array.isArray(actual)) {
    for (const element of actual) if (scalarEquals(element, wanted)) return true;
    return false;
  }
  return scalarEquals(actual, wanted);
}

function scalarEquals(value: unknown, wanted: string): boolean {
  if (typeof value === 'string') return value === wanted;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value) === wanted;
  return false;
}

const SPACE = 0x20;

/** `word` is one of the space-separated words of `text` (no split, no allocation). */
function containsWord(text: string, word: string): boolean {
  if (word === '') return false;
  for (let from = 0; ; ) {
    const at = text.indexOf(word, from);
    if (at === -1) return false;
    const end = at + word.length;
    if ((at === 0 || text.charCodeAt(at - 1) === SPACE) && (end === text.length || text.charCodeAt(end) === SPACE)) return true;
    from = at + 1;
  }
}

/** Claims are shared by every request carrying the token: no filter may change them. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}
