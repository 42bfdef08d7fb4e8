// Request-target, path and host normalisation (SPEC §3.2). The normalised path is both what the
// router matches on and what is forwarded upstream, so the gateway and the upstream can never
// disagree about which resource a request names: anything that could be read two ways is refused
// with 400 rather than guessed at.
//
// Cost: an already-normal path or host (the common case) is one precompiled regex test and no
// allocation; only paths with `%`, `//`, a segment starting with `.`, or a char that must be
// escaped take the slow path (two passes and a few string slices).

import { isIPv6 } from 'node:net';
import { GatewayError } from '../errors.js';

export interface RequestTarget {
  /** The authority of an absolute-form target, raw (feed it to normalizeHost); null for origin-form. */
  readonly authority: string | null;
  /** The path, raw (feed it to normalizePath); `/` when an absolute-form target has none. */
  readonly path: string;
  /** The raw query without `?`; '' when none. Forwarded verbatim: the gateway never rewrites it. */
  readonly query: string;
}

const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;
const QUESTION = 0x3f;
const COLON = 0x3a;
const SEMICOLON = 0x3b;

function badPath(reason: string): GatewayError {
  return new GatewayError('GW_ERR_REQUEST_BAD_PATH', [reason]);
}

function badHost(reason: string): GatewayError {
  return new GatewayError('GW_ERR_REQUEST_BAD_HOST', [reason]);
}

// ---------------------------------------------------------------------------------------------
// Request-target (RFC 9112 §3.2)

function startsWithCi(s: string, lowerPrefix: string): boolean {
  if (s.length < lowerPrefix.length) return false;
  for (let i = 0; i < lowerPrefix.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20; // ASCII upper -> lower: schemes are case-insensitive
    if (c !== lowerPrefix.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * Splits Node's `req.url` into authority, path and query. Accepts origin-form (`/p?q`) and
 * absolute-form (`http://host[:port]/p?q`, `https://...`, scheme in any case); refuses with
 * GW_ERR_REQUEST_BAD_PATH a `#` anywhere, asterisk-form (`*`, OPTIONS to the server itself is not
 * routable), authority-form (CONNECT) and anything else. Nothing is normalised here.
 */
export function splitTarget(url: string): RequestTarget {
  if (url.length === 0) throw badPath('empty request-target');
  // Clients never send fragments; one in a request-target means a broken or probing client, and
  // upstreams disagree on whether it ends the path.
  if (url.indexOf('#') !== -1) throw badPath('"#" in request-target');

  if (url.charCodeAt(0) === SLASH) {
    const q = url.indexOf('?');
    if (q === -1) return { authority: null, path: url, query: '' };
    return { authority: null, path: url.slice(0, q), query: url.slice(q + 1) };
  }
  if (url === '*') throw badPath('asterisk-form request-target is not routable');

  let start: number;
  if (startsWithCi(url, 'http://')) start = 7;
  else if (startsWithCi(url, 'https://')) start = 8;
  else throw badPath('request-target is neither origin-form nor http(s) absolute-form');

  let end = start;
  while (end < url.length) {
    const c = url.charCodeAt(end);
    if (c === SLASH || c === QUESTION) break;
    end++;
  }
  if (end === start) throw badPath('absolute-form request-target without a host');
  const authority = url.slice(start, end);
  // RFC 9110 §4.2.4: userinfo in an http(s) URI is deprecated and a classic phishing/confusion
  // vector (`http://trusted@evil/`); refuse rather than strip.
  if (authority.indexOf('@') !== -1) throw badPath('userinfo in request-target');

  const q = url.indexOf('?', end);
  const pathEnd = q === -1 ? url.length : q;
  const path = pathEnd === end ? '/' : url.slice(end, pathEnd);
  const query = q === -1 ? '' : url.slice(q + 1);
  return { authority, path, query };
}

// ---------------------------------------------------------------------------------------------
// Path (RFC 3986 §2, §6.2.2; SPEC §3.2)

// Char classes for ASCII (0..127); anything >= 128 is refused.
const C_BAD = 0; // refused: controls, space, `#`, `?`, `\`, DEL
const C_PLAIN = 1; // pchar that stays as it is: unreserved, sub-delims, `:`, `@`
const C_SLASH = 2;
const C_DOT = 3;
const C_PERCENT = 4;
const C_ESCAPE = 5; // printable ASCII that RFC 3986 forbids raw in a path: percent-encoded
const PATH_CLASS = new Uint8Array(128);
// Sub-delims (`!$&'()*+,;=`), `:` and `@` pass through unchanged. They are legal in a path and
// significant to some upstreams (`;` starts Servlet/Tomcat path parameters, `=`/`,` appear in
// matrix URIs), and decoding or encoding them would change what the upstream sees. The one
// exception is a `.`/`..` segment carrying parameters (see isDotWithParams).
const PLAIN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~!$&'()*+,;=:@";
for (const ch of PLAIN_CHARS) PATH_CLASS[ch.charCodeAt(0)] = C_PLAIN;
PATH_CLASS[SLASH] = C_SLASH;
PATH_CLASS[DOT] = C_DOT;
PATH_CLASS[PERCENT] = C_PERCENT;
// Printable ASCII outside pchar. Browsers and curl send some of these raw (`{}|^`); refusing them
// would break real clients, forwarding them raw would give one resource two spellings. Escaping
// makes `/a{b` and `/a%7Bb` the same path for both the router and the upstream.
for (const ch of '"<>[]^`{|}') PATH_CLASS[ch.charCodeAt(0)] = C_ESCAPE;

const UNRESERVED = new Uint8Array(128);
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~') {
  UNRESERVED[ch.charCodeAt(0)] = 1;
}

// An already-normal path: segments of plain chars, none empty and none starting with `.` (so no
// dot segment and no `//`), optionally a trailing slash. Built from PLAIN_CHARS so the fast and
// slow paths cannot drift apart. Irregexp runs this about twice as fast per char as a JS char
// loop, and it cannot backtrack: every segment starts at a `/`.
const PLAIN_CLASS = PLAIN_CHARS.replace(/[^A-Za-z0-9]/g, '\\$&');
const ALREADY_NORMAL_PATH = new RegExp(`^(?:/[${PLAIN_CLASS}][${PLAIN_CLASS}.]*)*/?$`);

const HEX_UPPER = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

function describeRefusedChar(c: number): string {
  if (c === 0x5c) return 'raw "\\"';
  if (c === 0x23) return '"#"';
  if (c === QUESTION) return '"?" in path';
  if (c === 0x20) return 'space';
  if (c < 0x20 || c === 0x7f) return 'control character';
  return 'character outside printable ASCII';
}

/**
 * Normalises a request path per SPEC §3.2, returning the path to match on and forward:
 * - percent-encoded unreserved characters decoded (`%61` -> `a`, `%7e` -> `~`); every other valid
 *   escape kept, with upper-case hex (`%3a` -> `%3A`); printable ASCII that RFC 3986 forbids raw
 *   (`"<>[]^\`{|}`) escaped the same way;
 * - dot segments removed (RFC 3986 §5.2.4), after decoding, so `/a/%2e%2e/b` is `/b`;
 * - repeated slashes merged; a trailing slash kept;
 * - sub-delims (`!$&'()*+,;=`), `:` and `@` left exactly as sent, raw or encoded.
 * Refused with GW_ERR_REQUEST_BAD_PATH: empty or not starting with `/`; encoded `/` or `\`; raw `\`;
 * `%25` (double encoding); invalid escapes; a control character, raw or encoded; `#`; raw
 * characters outside printable ASCII; `..` climbing above the root (never clamped: a client
 * that sends it is probing, and clamping would route it somewhere it did not name); a `.`/`..`
 * segment with `;` parameters (`/..;/`, see isDotWithParams).
 * Idempotent: normalizePath(normalizePath(p)) === normalizePath(p).
 */
export function normalizePath(raw: string): string {
  const n = raw.length;
  if (n === 0) throw badPath('empty path');
  if (raw.charCodeAt(0) !== SLASH) throw badPath('path does not start with "/"');
  // The common case: already normal, returned as is, without allocating.
  if (ALREADY_NORMAL_PATH.test(raw)) return raw;
  return normalizeSlow(raw);
}

function normalizeSlow(raw: string): string {
  return removeDotSegments(canonicalEscapes(raw));
}

/** Pass 1: validates every char and escape, decodes unreserved escapes, upper-cases the others. */
function canonicalEscapes(raw: string): string {
  const n = raw.length;
  let out = '';
  let runStart = 0; // start of the pending run of chars copied unchanged
  for (let i = 0; i < n; i++) {
    const c = raw.charCodeAt(i);
    const k = c < 128 ? PATH_CLASS[c] : C_BAD;
    if (k === C_PLAIN || k === C_SLASH || k === C_DOT) continue;
    if (k === C_PERCENT) {
      const hi = i + 1 < n ? hexValue(raw.charCodeAt(i + 1)) : -1;
      const lo = i + 2 < n ? hexValue(raw.charCodeAt(i + 2)) : -1;
      if (hi < 0 || lo < 0) throw badPath('invalid percent-encoding');
      const v = hi * 16 + lo;
      // Each of these would be decoded into something else by some upstream: a path separator
      // (`%2F`, `%5C` on Windows/IIS and some frameworks), a second round of decoding (`%25`),
      // or a byte that terminates or corrupts the path (controls).
      if (v === SLASH) throw badPath('encoded "/"');
      if (v === 0x5c) throw badPath('encoded "\\"');
      if (v === PERCENT) throw badPath('encoded "%" (double encoding)');
      if (v < 0x20 || v === 0x7f) throw badPath('encoded control character');
      out += raw.slice(runStart, i);
      out += v < 128 && UNRESERVED[v] === 1 ? String.fromCharCode(v) : '%' + HEX_UPPER[hi] + HEX_UPPER[lo];
      i += 2;
      runStart = i + 1;
      continue;
    }
    if (k === C_ESCAPE) {
      out += raw.slice(runStart, i) + '%' + HEX_UPPER[c >> 4] + HEX_UPPER[c & 15];
      runStart = i + 1;
      continue;
    }
    throw badPath(describeRefusedChar(c));
  }
  return runStart === 0 ? raw : out + raw.slice(runStart);
}

/**
 * A `.` or `..` segment followed by `;params` (`/public/..;/admin`). RFC 3986 treats it as an
 * ordinary segment, but Tomcat/Jetty strip path parameters before resolving dot segments, so the
 * upstream would climb out of the prefix the gateway routed on (the classic ACL bypass). No
 * legitimate client sends one; refusing it costs nothing and closes that gap.
 */
function isDotWithParams(seg: string): boolean {
  if (seg.charCodeAt(0) !== DOT) return false;
  const c1 = seg.charCodeAt(1);
  if (c1 === SEMICOLON) return true;
  return c1 === DOT && seg.charCodeAt(2) === SEMICOLON;
}

/** Pass 2: RFC 3986 §5.2.4 on segments, merging empty segments; `..` above the root refused. */
function removeDotSegments(path: string): string {
  const segments: string[] = [];
  let trailingSlash = false;
  let i = 1; // path[0] is '/'
  const n = path.length;
  while (i <= n) {
    let j = path.indexOf('/', i);
    if (j === -1) j = n;
    const last = j === n;
    const len = j - i;
    if (len === 0) {
      // `//` merges into `/`; a final empty segment is the trailing slash.
      if (last) trailingSlash = true;
    } else if (len === 1 && path.charCodeAt(i) === DOT) {
      if (last) trailingSlash = true;
    } else if (len === 2 && path.charCodeAt(i) === DOT && path.charCodeAt(i + 1) === DOT) {
      if (segments.length === 0) throw badPath('".." above the root');
      segments.pop();
      if (last) trailingSlash = true;
    } else {
      const seg = path.slice(i, j);
      if (isDotWithParams(seg)) throw badPath('dot segment with path parameters');
      segments.push(seg);
      trailingSlash = false;
    }
    i = j + 1;
  }
  if (segments.length === 0) return '/';
  const joined = '/' + segments.join('/');
  return trailingSlash ? joined + '/' : joined;
}

// ---------------------------------------------------------------------------------------------
// Host (RFC 9110 §7.2, RFC 3986 §3.2.2)

const H_BAD = 0;
const H_NAME = 1; // a-z 0-9 - _ .
const H_UPPER = 2;
const HOST_CLASS = new Uint8Array(128);
// DNS names and IPv4 literals only. `_` is not valid in host names but is in DNS names, and
// internal service names use it. Percent-encoded and sub-delim reg-names are legal URI syntax
// that no DNS name needs, and would let one host have several spellings: refused.
for (const ch of 'abcdefghijklmnopqrstuvwxyz0123456789-_.') HOST_CLASS[ch.charCodeAt(0)] = H_NAME;
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZ') HOST_CLASS[ch.charCodeAt(0)] = H_UPPER;

/** Validates `raw.slice(from)` as a port: 0-5 digits (RFC 3986 allows an empty port), <= 65535. */
function checkPort(raw: string, from: number): void {
  const n = raw.length;
  if (n - from > 5) throw badHost('invalid port');
  let v = 0;
  for (let i = from; i < n; i++) {
    const d = raw.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) throw badHost('invalid port');
    v = v * 10 + d;
  }
  if (v > 65535) throw badHost('invalid port');
}

// An already-normal host name: lower-case DNS labels, no trailing dot. Names under 64 chars
// cannot hold an over-long label, so passing this test is the whole validation for them.
const ALREADY_NORMAL_HOST = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;

/**
 * Normalises a Host header value or an absolute-form authority to what route hosts are compared
 * with: lower-case, port removed, one trailing dot removed (`Example.COM.:443` -> `example.com`);
 * an IPv6 literal keeps its brackets (`[::1]:8080` -> `[::1]`). Refused with
 * GW_ERR_REQUEST_BAD_HOST: empty, a char outside `[A-Za-z0-9._-]`, an empty or over-long label,
 * a bad port, a bad IPv6 literal. An already-normal host is returned without allocating.
 */
export function normalizeHost(raw: string): string {
  if (raw.length === 0) throw badHost('empty host');
  if (raw.charCodeAt(0) === 0x5b) return normalizeIpLiteral(raw);
  let name = raw;
  const colon = raw.indexOf(':');
  if (colon !== -1) {
    checkPort(raw, colon + 1); // a second `:` is not a digit: refused there
    name = raw.slice(0, colon);
  }
  if (name.length < 64 && ALREADY_NORMAL_HOST.test(name)) return name;
  return normalizeName(name);
}

/** The slow path of normalizeHost for a name without port: validate, lower-case, drop one trailing dot. */
function normalizeName(name: string): string {
  let end = name.length;
  if (end > 0 && name.charCodeAt(end - 1) === DOT) end--; // FQDN form `example.com.`
  if (end === 0) throw badHost('empty host name');
  if (end > 253) throw badHost('host name longer than 253 characters');
  let upper = false;
  let labelStart = 0;
  for (let i = 0; i <= end; i++) {
    const c = i === end ? DOT : name.charCodeAt(i);
    if (c === DOT) {
      const len = i - labelStart;
      if (len === 0) throw badHost('empty label in host name');
      if (len > 63) throw badHost('label longer than 63 characters in host name');
      labelStart = i + 1;
      continue;
    }
    const k = c < 128 ? HOST_CLASS[c] : H_BAD;
    if (k === H_UPPER) upper = true;
    else if (k !== H_NAME) throw badHost(c === 0x20 ? 'space in host' : 'invalid character in host');
  }
  const trimmed = end === name.length ? name : name.slice(0, end);
  return upper ? trimmed.toLowerCase() : trimmed;
}

function normalizeIpLiteral(raw: string): string {
  const close = raw.indexOf(']');
  if (close === -1) throw badHost('unterminated IPv6 literal');
  const inner = raw.slice(1, close);
  // No zone ids (`%25eth0`): they name an interface of the client, not a host of ours.
  if (inner.indexOf('%') !== -1 || !isIPv6(inner)) throw badHost('invalid IPv6 literal');
  if (close + 1 < raw.length) {
    if (raw.charCodeAt(close + 1) !== COLON) throw badHost('garbage after IPv6 literal');
    checkPort(raw, close + 2);
  }
  const lower = inner.toLowerCase();
  return close === raw.length - 1 && lower === inner ? raw : '[' + lower + ']';
}

/**
 * The host a request is routed by (SPEC §3.2): an absolute-form target's own authority, else the
 * Host header; null when there is neither. When both are present they must name the same host
 * (compared after normalizeHost, so port and case do not matter), otherwise GW_ERR_REQUEST_BAD_HOST:
 * a disagreement is how request-smuggling and cache-poisoning probes start.
 */
export function resolveRequestHost(authority: string | null, hostHeader: string | undefined): string | null {
  if (authority === null) return hostHeader === undefined ? null : normalizeHost(hostHeader);
  const host = normalizeHost(authority);
  if (hostHeader !== undefined && normalizeHost(hostHeader) !== host) {
    throw badHost('Host header names a different host than the request-target');
  }
  return host;
}
