import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors.js';
import { normalizeHost, normalizePath, resolveRequestHost, splitTarget } from '../../src/router/normalize.js';

function refusal(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    if (err instanceof GatewayError) return err;
    throw err;
  }
  throw new Error('expected a GatewayError, nothing was thrown');
}

describe('normalizePath', () => {
  const normalised: Array<[string, string]> = [
    // SPEC §3.2 and the brief
    ['/%61dmin', '/admin'],
    ['/public/../admin', '/admin'],
    ['/public/%2e%2e/admin', '/admin'],
    ['/public/%2E%2E/admin', '/admin'],
    ['/public/.%2e/admin', '/admin'],
    ['//admin', '/admin'],
    ['/a/./b', '/a/b'],
    ['/%7euser', '/~user'],
    ['/%7Euser', '/~user'],
    ['/a%3ab', '/a%3Ab'],
    // already normal: unchanged
    ['/', '/'],
    ['/api/users/42', '/api/users/42'],
    ['/a/b/', '/a/b/'],
    ['/a..b/c.d', '/a..b/c.d'],
    ['/.well-known/openid-configuration', '/.well-known/openid-configuration'],
    ['/a/.hidden/', '/a/.hidden/'],
    ['/...', '/...'],
    // every unreserved escape decodes, either hex case
    ['/%41%5a%30%39%2d%2E%5f%7E', '/AZ09-._~'],
    // sub-delims, `:` and `@` pass through unchanged; so do their escapes (kept, upper-cased)
    ["/a;b=c,d/!$&'()*+:@", "/a;b=c,d/!$&'()*+:@"],
    ['/matrix;jsessionid=abc/x', '/matrix;jsessionid=abc/x'],
    ['/a%3bb%3D', '/a%3Bb%3D'],
    // other valid escapes kept with upper-case hex
    ['/caf%c3%a9', '/caf%C3%A9'],
    ['/a%20b', '/a%20b'],
    ['/a%23b%3f', '/a%23b%3F'],
    // printable ASCII forbidden raw by RFC 3986: escaped, so each resource has one spelling
    ['/a{b}|c^', '/a%7Bb%7D%7Cc%5E'],
    ['/a"<>`[]', '/a%22%3C%3E%60%5B%5D'],
    // dot segments (RFC 3986 §5.2.4) and slash merging; trailing slash kept
    ['/a/b/..', '/a/'],
    ['/a/b/../', '/a/'],
    ['/a/.', '/a/'],
    ['/a/./', '/a/'],
    ['/a/..', '/'],
    ['/a/b/../../c', '/c'],
    ['/a//b///c/', '/a/b/c/'],
    ['//', '/'],
    ['///a/..//b', '/b'],
    ['/./a', '/a'],
  ];

  it.each(normalised)('%s -> %s', (raw, expected) => {
    expect(normalizePath(raw)).toBe(expected);
  });

  it.each(normalised)('is idempotent on the result of %s', (raw) => {
    const once = normalizePath(raw);
    expect(normalizePath(once)).toBe(once);
  });

  const refused: Array<[string, string]> = [
    ['empty path', ''],
    ['relative path', 'admin'],
    ['%2f', '/a%2fb'],
    ['%2F', '/a%2Fb'],
    ['%5c', '/a%5cb'],
    ['%5C', '/a%5Cb'],
    ['raw backslash', '/a\\b'],
    ['%00', '/a%00'],
    ['%25', '/a%25'],
    ['%252f (double-encoded slash)', '/a%252fb'],
    ['%zz', '/a%zz'],
    ['%4 (one hex digit)', '/a%4'],
    ['%4 before another char', '/a%4/b'],
    ['trailing %', '/a%'],
    ['/..', '/..'],
    ['/a/../..', '/a/../..'],
    ['/../a', '/../a'],
    ['/%2e%2e', '/%2e%2e'],
    ['raw NUL', '/a\u0000b'],
    ['raw control char', '/a\u0001b'],
    ['raw tab', '/a\tb'],
    ['raw CR', '/a\rb'],
    ['raw DEL', '/a\u007fb'],
    ['encoded control char', '/a%1f'],
    ['encoded DEL', '/a%7F'],
    ['#', '/a#b'],
    ['é raw', '/caf\u00e9'],
    ['UTF-8 bytes read as latin1', '/caf\u00c3\u00a9'],
    ['space', '/a b'],
    ['? in a path', '/a?b'],
    ['..; (Tomcat path parameter traversal)', '/public/..;/admin'],
    ['.; segment', '/public/.;x/admin'],
  ];

  it.each(refused)('refuses %s with 400', (_label, raw) => {
    const err = refusal(() => normalizePath(raw));
    expect(err.code).toBe('GW_ERR_REQUEST_BAD_PATH');
    expect(err.status).toBe(400);
    expect(err.publicCode).toBe('bad_request');
  });

  it('returns only paths that are canonical and idempotent, on generated input', () => {
    // Covers the agreement of the regex fast path with the slow path: every result is fed back in.
    const alphabet = ['/', '/', '.', '..', 'a', 'B', '%2e', '%2E', '%61', '%3a', '%7B', '{', ';', '~', '%2f', '%'];
    let seed = 7;
    const next = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296;
    let accepted = 0;
    for (let n = 0; n < 20_000; n++) {
      let raw = '/';
      const len = Math.floor(next() * 10);
      for (let i = 0; i < len; i++) raw += alphabet[Math.floor(next() * alphabet.length)];
      let out: string;
      try {
        out = normalizePath(raw);
      } catch (err) {
        expect((err as GatewayError).code).toBe('GW_ERR_REQUEST_BAD_PATH');
        continue;
      }
      accepted++;
      expect(normalizePath(out)).toBe(out);
      expect(out.startsWith('/')).toBe(true);
      expect(out).not.toMatch(/\/\/|\/\.\.?(\/|$)|%(2[eE]|6[1-9a-fA-F]|[0-9a-f][a-f]|[a-f][0-9a-f])|[{}]/);
    }
    expect(accepted).toBeGreaterThan(5_000);
  });

  it('names the reason in the message', () => {
    expect(refusal(() => normalizePath('/a%2fb')).message).toBe('invalid request path: encoded "/"');
    expect(refusal(() => normalizePath('/a/../..')).message).toBe('invalid request path: ".." above the root');
  });
});

describe('splitTarget', () => {
  it.each([
    ['/', { authority: null, path: '/', query: '' }],
    ['/a/b', { authority: null, path: '/a/b', query: '' }],
    ['/a?b=1&c', { authority: null, path: '/a', query: 'b=1&c' }],
    ['/a?', { authority: null, path: '/a', query: '' }],
    ['/a?b?c', { authority: null, path: '/a', query: 'b?c' }],
    ['//x/y', { authority: null, path: '//x/y', query: '' }],
    ['http://example.com/a?b=1', { authority: 'example.com', path: '/a', query: 'b=1' }],
    ['HTTP://Example.com:8080/a', { authority: 'Example.com:8080', path: '/a', query: '' }],
    ['HtTpS://example.com:8443/a/%2e%2e/b', { authority: 'example.com:8443', path: '/a/%2e%2e/b', query: '' }],
    ['http://example.com', { authority: 'example.com', path: '/', query: '' }],
    ['http://example.com?q=1', { authority: 'example.com', path: '/', query: 'q=1' }],
    ['https://[::1]:8443/x?y=1', { authority: '[::1]:8443', path: '/x', query: 'y=1' }],
    ['http://[2001:db8::1]/', { authority: '[2001:db8::1]', path: '/', query: '' }],
  ])('%s', (url, expected) => {
    expect(splitTarget(url)).toEqual(expected);
  });

  it.each([
    ['empty', ''],
    ['asterisk-form', '*'],
    ['fragment in origin-form', '/a#b'],
    ['fragment in query', '/a?b#c'],
    ['fragment in absolute-form', 'http://example.com/#x'],
    ['authority-form (CONNECT)', 'example.com:443'],
    ['other scheme', 'ftp://example.com/'],
    ['scheme-relative garbage', 'http:/example.com/'],
    ['absolute-form without host', 'http:///a'],
    ['userinfo', 'http://user@example.com/'],
    ['relative path', 'a/b'],
  ])('refuses %s with 400', (_label, url) => {
    const err = refusal(() => splitTarget(url));
    expect(err.code).toBe('GW_ERR_REQUEST_BAD_PATH');
    expect(err.status).toBe(400);
  });
});

describe('normalizeHost', () => {
  it.each([
    ['example.com', 'example.com'],
    ['Example.COM', 'example.com'],
    ['example.com:8080', 'example.com'],
    ['example.com.', 'example.com'],
    ['EXAMPLE.com.:443', 'example.com'],
    ['example.com:', 'example.com'],
    ['localhost', 'localhost'],
    ['10.0.0.1:80', '10.0.0.1'],
    ['my_svc.internal', 'my_svc.internal'],
    ['[::1]', '[::1]'],
    ['[::1]:8080', '[::1]'],
    ['[2001:DB8::1]:443', '[2001:db8::1]'],
    ['[::ffff:10.0.0.1]', '[::ffff:10.0.0.1]'],
    [`${'a'.repeat(63)}.com`, `${'a'.repeat(63)}.com`],
  ])('%s -> %s', (raw, expected) => {
    expect(normalizeHost(raw)).toBe(expected);
  });

  it.each([
    ['empty', ''],
    ['only a dot', '.'],
    ['only a port', ':80'],
    ['space', 'exa mple.com'],
    ['leading space', ' example.com'],
    ['two trailing dots', 'example.com..'],
    ['empty label', 'a..b'],
    ['leading dot', '.example.com'],
    ['port out of range', 'example.com:65536'],
    ['port with letters', 'example.com:8o'],
    ['port too long', 'example.com:000080'],
    ['two ports', 'example.com:80:80'],
    ['wildcard', '*.example.com'],
    ['userinfo', 'user@example.com'],
    ['percent-encoded', 'ex%61mple.com'],
    ['non-ASCII', 'b\u00fccher.de'],
    ['bare IPv6', '::1'],
    ['unterminated IPv6', '[::1'],
    ['bad IPv6', '[zz::1]'],
    ['IPv6 zone id', '[fe80::1%25eth0]'],
    ['garbage after IPv6', '[::1]x'],
    ['bad port after IPv6', '[::1]:x'],
    ['label over 63 chars', `${'a'.repeat(64)}.com`],
    ['name over 253 chars', `${'a.'.repeat(127)}ab`],
  ])('refuses %s with 400', (_label, raw) => {
    const err = refusal(() => normalizeHost(raw));
    expect(err.code).toBe('GW_ERR_REQUEST_BAD_HOST');
    expect(err.status).toBe(400);
  });
});

describe('resolveRequestHost', () => {
  it('routes an origin-form request by its Host header', () => {
    expect(resolveRequestHost(null, 'API.example.com:8443')).toBe('api.example.com');
  });

  it('is null when the request names no host', () => {
    expect(resolveRequestHost(null, undefined)).toBeNull();
  });

  it('routes an absolute-form request by its own authority', () => {
    expect(resolveRequestHost('api.example.com:80', undefined)).toBe('api.example.com');
    expect(resolveRequestHost('API.example.com.', 'api.example.com:8080')).toBe('api.example.com');
  });

  it('refuses a Host header naming another host than the absolute-form target', () => {
    const err = refusal(() => resolveRequestHost('api.example.com', 'admin.example.com'));
    expect(err.code).toBe('GW_ERR_REQUEST_BAD_HOST');
    expect(err.status).toBe(400);
  });

  it('refuses an invalid Host header', () => {
    expect(refusal(() => resolveRequestHost(null, 'bad host')).code).toBe('GW_ERR_REQUEST_BAD_HOST');
  });
});
