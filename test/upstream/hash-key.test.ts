import { describe, expect, it } from 'vitest';
import { cookieValue, hashKeyOf, parseHashOn } from '../../src/upstream/hash-key.js';

describe('hashKeyOf', () => {
  it('reads ip, a header (first of repeated values) and verified claims; a request without the key has none', () => {
    expect(hashKeyOf(parseHashOn('ip'), {}, '10.0.0.7', null)).toBe('10.0.0.7');
    expect(hashKeyOf(parseHashOn('header:X-User'), { 'x-user': 'alice' }, '10.0.0.7', null)).toBe('alice');
    expect(hashKeyOf(parseHashOn('header:x-forwarded-host'), { 'x-forwarded-host': ['a', 'b'] }, '', null)).toBe('a');
    expect(hashKeyOf(parseHashOn('header:x-user'), {}, '10.0.0.7', null)).toBeNull();
    expect(hashKeyOf(parseHashOn('jwt:sub'), {}, '', { sub: 'bob' })).toBe('bob');
    expect(hashKeyOf(parseHashOn('jwt:tenant'), {}, '', { tenant: 42 })).toBe('42');
    expect(hashKeyOf(parseHashOn('jwt:groups'), {}, '', { groups: ['a'] })).toBeNull();
    expect(hashKeyOf(parseHashOn('jwt:sub'), {}, '', null)).toBeNull();
  });

  it('regression: a header named like an Object.prototype member is absent when the request lacks it', () => {
    // Node's req.headers is a plain object: a bare lookup of "constructor" finds Object's.
    expect(hashKeyOf(parseHashOn('header:constructor'), {}, '', null)).toBeNull();
    expect(hashKeyOf(parseHashOn('header:__proto__'), {}, '', null)).toBeNull();
    expect(hashKeyOf(parseHashOn('jwt:constructor'), {}, '', {})).toBeNull();
  });
});

describe('cookieValue', () => {
  it('finds the named cookie among others, first occurrence, quotes removed; none when absent or empty', () => {
    expect(cookieValue('a=1; session=abc; b=2', 'session')).toBe('abc');
    expect(cookieValue('session=abc', 'session')).toBe('abc');
    expect(cookieValue('session="abc"', 'session')).toBe('abc');
    expect(cookieValue('session=first; session=second', 'session')).toBe('first');
    // A name that merely ends or starts like it is another cookie.
    expect(cookieValue('xsession=1; sessionx=2', 'session')).toBeNull();
    expect(cookieValue('a=1;session=tight', 'session')).toBe('tight');
    expect(cookieValue('session=', 'session')).toBeNull();
    expect(cookieValue('', 'session')).toBeNull();
    expect(cookieValue(undefined, 'session')).toBeNull();
    expect(cookieValue('session', 'session')).toBeNull();
  });

  it('is the hash key of a cookie: pool', () => {
    expect(hashKeyOf(parseHashOn('cookie:sid'), { cookie: 'x=1; sid=u42' }, '', null)).toBe('u42');
    expect(hashKeyOf(parseHashOn('cookie:sid'), {}, '', null)).toBeNull();
  });
});
