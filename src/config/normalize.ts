// Checks and canonical forms for values a pattern cannot judge: prefixes, hosts, methods, URLs,
// addresses. Each returns the canonical value or an operator-facing problem, never throws.

import { BlockList, isIP } from 'node:net';
import { DNS_SERVER_DEFAULT_PORT } from './defaults.js';
import { didYouMean } from './suggest.js';

export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

const ok = <T>(value: T): Checked<T> => ({ ok: true, value });
const fail = <T>(problem: string): Checked<T> => ({ ok: false, problem });

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/**
 * A route prefix (or rewritePrefix) in the form request paths take after normalisation, so that it
 * can match at all: percent-encoded unreserved characters decoded, no trailing slash except `/`.
 * Anything a normalised request path can never contain is refused, because such a route would
 * silently never match.
 */
export function normalizePrefix(text: string): Checked<string> {
  if (!text.startsWith('/')) return fail('must start with /');
  if (/[?#]/.test(text)) return fail('must not contain ? or # (a prefix matches the path only)');
  if (/[\u0000-\u0020\u007f\\]/.test(text)) return fail('must not contain spaces, control characters or \\');
  let decoded = '';
  for (let i = 0; i < text.length; i++) {
    const char = text[i] as string;
    if (char !== '%') {
      decoded += char;
      continue;
    }
    const hex = text.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return fail(`has invalid percent-encoding "%${hex}"`);
    const byte = String.fromCharCode(Number.parseInt(hex, 16));
    if (byte === '/' || byte === '\\') return fail(`must not contain an encoded / or \\ (%${hex}): requests containing one are refused`);
    if (byte === '%') return fail('must not contain %25: double-encoded requests are refused');
    decoded += UNRESERVED.test(byte) ? byte : `%${hex.toUpperCase()}`;
    i += 2;
  }
  if (decoded.includes('//')) return fail('must not contain // (request paths have repeated slashes merged)');
  const segments = decoded.split('/').slice(1);
  if (segments.some((segment) => segment === '.' || segment === '..')) {
    return fail('must not contain . or .. segments (request paths have them resolved)');
  }
  return ok(decoded.length > 1 && decoded.endsWith('/') ? decoded.slice(0, -1) : decoded);
}

const HOST_LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** A route host: lower-cased, trailing dot removed, `*.` allowed only as the whole leftmost label. */
export function normalizeHostPattern(text: string): Checked<string> {
  let host = text.toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host.includes(':') || host.startsWith('[')) return fail('must be a host name without port (hosts are compared without port)');
  const wildcard = host.startsWith('*.');
  const name = wildcard ? host.slice(2) : host;
  if (name.includes('*')) return fail('may use * only as the whole leftmost label, as in *.example.com');
  if (name.length === 0 || name.length > 253 || !name.split('.').every((label) => HOST_LABEL.test(label))) {
    return fail(`"${text}" is not a valid host name`);
  }
  return ok(host);
}

/** A DNS name to resolve (upstream discovery): valid labels, kept as written apart from case. */
export function checkDnsName(text: string): Checked<string> {
  const name = text.toLowerCase().replace(/\.$/, '');
  if (name.length === 0 || name.length > 253 || !name.split('.').every((label) => HOST_LABEL.test(label))) {
    return fail(`"${text}" is not a valid DNS name`);
  }
  return ok(text.toLowerCase());
}

export const STANDARD_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;

/** An HTTP method, upper-cased; only the standard ones (metrics label the rest OTHER). */
export function normalizeMethod(text: string): Checked<string> {
  const method = text.toUpperCase();
  if ((STANDARD_METHODS as readonly string[]).includes(method)) return ok(method);
  return fail(`unknown method "${text}": expected one of ${STANDARD_METHODS.join(', ')}${didYouMean(method, STANDARD_METHODS)}`);
}

function parseUrl(text: string): URL | null {
  try {
    return new URL(text);
  } catch {
    return null;
  }
}

/** An upstream target: http(s), a host, the default port filled in; an origin, so no path. */
export function normalizeTargetUrl(text: string): Checked<string> {
  const url = parseUrl(text);
  if (url === null) return fail(`"${text}" is not a URL: expected http://host:port`);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return fail(`must be an http:// or https:// URL, not ${url.protocol}//`);
  if (url.hostname === '') return fail('must name a host');
  if (url.username !== '' || url.password !== '') return fail('must not contain credentials');
  if (url.pathname !== '/' || /^[a-z]+:\/\/[^/?#]+\/[^?#]/i.test(text)) {
    return fail(`must not have a path ("${url.pathname}"): a target is an origin; change paths with the route's rewritePrefix`);
  }
  if (url.search !== '' || url.hash !== '' || /[?#]/.test(text)) return fail('must not have a query or fragment');
  const port = url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
  return ok(`${url.protocol}//${url.hostname}:${port}`);
}

/** An http(s) URL with a host (a JWKS endpoint). */
export function checkHttpUrl(text: string): Checked<string> {
  const url = parseUrl(text);
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    return fail(`"${text}" is not an http:// or https:// URL`);
  }
  return ok(url.href);
}

/** A Redis URL: redis:// or rediss:// (TLS) with a host. Kept as written: it may carry a password. */
export function checkRedisUrl(text: string): Checked<string> {
  const url = parseUrl(text);
  if (url === null || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '') {
    return fail(`"${text}" is not a Redis URL: expected redis://host:port or rediss://host:port`);
  }
  return ok(text);
}

/** A CORS origin: `*` or scheme://host[:port] exactly, as browsers send it in `Origin`. */
export function normalizeOrigin(text: string): Checked<string> {
  if (text === '*') return ok(text);
  const url = parseUrl(text);
  const hasMore = url === null || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '';
  if (url === null || hasMore || url.origin === 'null' || url.pathname !== '/' || /^[a-z][a-z0-9+.-]*:\/\/[^/?#]+\/[^?#]/i.test(text)) {
    return fail(`"${text}" is not an origin: expected * or scheme://host[:port] with no path, like https://app.example.com`);
  }
  return ok(url.origin);
}

/** A single IP address or a CIDR block (`10.0.0.0/8`, `::1`, `fd00::/8`). */
export function checkIpOrCidr(text: string): Checked<string> {
  const [address = '', bits, ...rest] = text.split('/');
  const family = isIP(address);
  const invalid = fail<string>(`"${text}" is not an IP address or CIDR block (like 10.0.0.0/8 or ::1)`);
  if (family === 0 || rest.length > 0) return invalid;
  if (bits === undefined) return ok(text);
  const maxBits = family === 4 ? 32 : 128;
  if (!/^[0-9]{1,3}$/.test(bits) || Number(bits) > maxBits) return fail(`"${text}": the prefix length must be 0 to ${maxBits}`);
  try {
    new BlockList().addSubnet(address, Number(bits), family === 4 ? 'ipv4' : 'ipv6');
  } catch {
    return invalid;
  }
  return ok(text);
}

/** An address to listen on: an IP literal, so what is bound never depends on a resolver. */
export function checkListenAddress(text: string): Checked<string> {
  return isIP(text) !== 0 ? ok(text) : fail(`"${text}" is not an IP address: expected one like 0.0.0.0, 127.0.0.1 or ::`);
}

/** A DNS server: `address` or `address:port` (`[v6]:port`), returned with the port filled in. */
export function normalizeDnsServer(text: string): Checked<string> {
  const bracketed = /^\[([^\]]+)\](?::([0-9]+))?$/.exec(text);
  const plain = /^([^:]+)(?::([0-9]+))?$/.exec(text);
  const address = bracketed?.[1] ?? (isIP(text) === 6 ? text : plain?.[1]);
  const port = bracketed?.[2] ?? (isIP(text) === 6 ? undefined : plain?.[2]);
  if (address === undefined || isIP(address) === 0) {
    return fail(`"${text}" is not a DNS server address: expected an IP and optional port, like 127.0.0.1:5353 or [::1]:53`);
  }
  const portNumber = port === undefined ? DNS_SERVER_DEFAULT_PORT : Number(port);
  if (portNumber < 1 || portNumber > 65535) return fail(`"${text}": the port must be 1 to 65535`);
  return ok(isIP(address) === 6 ? `[${address}]:${portNumber}` : `${address}:${portNumber}`);
}

/** A JavaScript regular expression that compiles. */
export function checkRegex(text: string): Checked<string> {
  try {
    new RegExp(text);
    return ok(text);
  } catch (err) {
    return fail(`invalid regular expression: ${err instanceof Error ? err.message : String(err)}`);
  }
}
