import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors.js';
import { PathRewriter } from '../../src/router/rewrite.js';
import { routeConfig } from './fixtures.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof GatewayError) return err.code;
    throw err;
  }
  return 'nothing thrown';
}

describe('PathRewriter', () => {
  describe('stripPrefix', () => {
    const strip = new PathRewriter('/api/users', true, null);
    it.each([
      ['/api/users/42', '/42'],
      ['/api/users', '/'],
      ['/api/users/', '/'],
      ['/api/users/42/', '/42/'],
      ['/api/users/a/b', '/a/b'],
    ])('%s -> %s', (path, expected) => {
      expect(strip.rewrite(path)).toBe(expected);
    });

    it('leaves the path alone for prefix /', () => {
      const root = new PathRewriter('/', true, null);
      expect(root.rewrite('/')).toBe('/');
      expect(root.rewrite('/a/b/')).toBe('/a/b/');
      expect(root.isIdentity).toBe(true);
    });
  });

  describe('rewritePrefix', () => {
    const rewrite = new PathRewriter('/api/users', false, '/v2/users');
    it.each([
      ['/api/users/42', '/v2/users/42'],
      ['/api/users', '/v2/users'],
      ['/api/users/', '/v2/users/'],
      ['/api/users/42/', '/v2/users/42/'],
    ])('%s -> %s', (path, expected) => {
      expect(rewrite.rewrite(path)).toBe(expected);
    });

    it('drops a trailing slash of rewritePrefix, so the result never has //', () => {
      const r = new PathRewriter('/api', false, '/v2/');
      expect(r.rewrite('/api')).toBe('/v2');
      expect(r.rewrite('/api/x')).toBe('/v2/x');
      expect(r.rewrite('/api/')).toBe('/v2/');
    });

    it('prepends for prefix / (the empty prefix)', () => {
      const r = new PathRewriter('/', false, '/v2');
      expect(r.rewrite('/x')).toBe('/v2/x');
      expect(r.rewrite('/')).toBe('/v2/');
    });

    it('rewriting to / is stripping', () => {
      const r = new PathRewriter('/api', false, '/');
      expect(r.rewrite('/api')).toBe('/');
      expect(r.rewrite('/api/x/')).toBe('/x/');
    });

    it('normalises the configured prefixes like request paths', () => {
      const r = new PathRewriter('/api/', false, '/%7ev2//users');
      expect(r.prefix).toBe('/api');
      expect(r.replacement).toBe('/~v2/users');
      expect(r.rewrite('/api/1')).toBe('/~v2/users/1');
    });
  });

  it('is the identity when neither is set', () => {
    const r = new PathRewriter('/api/users', false, null);
    expect(r.isIdentity).toBe(true);
    expect(r.rewrite('/api/users/42')).toBe('/api/users/42');
    expect(r.rewrite('/api/users')).toBe('/api/users');
  });

  it('refuses a path the prefix does not cover instead of forwarding a wrong one', () => {
    const r = new PathRewriter('/api/users', true, null);
    expect(codeOf(() => r.rewrite('/api/usersx'))).toBe('GW_ERR_INTERNAL');
    expect(codeOf(() => r.rewrite('/other'))).toBe('GW_ERR_INTERNAL');
  });

  it('refuses stripPrefix together with rewritePrefix, and invalid prefixes, as config errors', () => {
    expect(codeOf(() => new PathRewriter('/api', true, '/v2'))).toBe('GW_ERR_CONFIG_INVALID');
    expect(codeOf(() => new PathRewriter('api', false, null))).toBe('GW_ERR_CONFIG_INVALID');
    expect(codeOf(() => new PathRewriter('/api', false, '/v2/%2f'))).toBe('GW_ERR_CONFIG_INVALID');
  });

  it('forRoute reads the route config and names the field in errors', () => {
    const r = PathRewriter.forRoute(routeConfig({ name: 'users', prefix: '/api/users', rewritePrefix: '/v2/users' }));
    expect(r.rewrite('/api/users/7')).toBe('/v2/users/7');
    try {
      PathRewriter.forRoute(routeConfig({ name: 'bad', index: 3, prefix: '/api', rewritePrefix: 'v2' }));
      expect.unreachable();
    } catch (err) {
      expect((err as GatewayError).message).toBe(
        'invalid configuration: routes[3].rewritePrefix: invalid request path: path does not start with "/"',
      );
    }
  });
});
