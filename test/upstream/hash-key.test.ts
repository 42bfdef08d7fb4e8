import { describe, expect, it } from 'vitest';
import { hashKeyOf, parseHashOn } from '../../src/upstream/hash-key.js';

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
