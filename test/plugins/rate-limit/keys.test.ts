import { type IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import calculateSlot from 'cluster-key-slot';
import { describe, expect, it } from 'vitest';
import { parseRateLimitKeyPart } from '../../../src/config/compile-policies.js';
import type { RateLimitKeyPart } from '../../../src/config/types.js';
import type { FilterContext } from '../../../src/filters/filter.js';
import { describeKey, MAX_VALUE_LENGTH, PolicyKey } from '../../../plugins/rate-limit/keys.js';

// Keys decide who shares a budget with whom, so every case here is about two requests that must
// (or must not) land on the same counter, and about the Redis Cluster slot a key is stored on.

interface RequestShape {
  headers?: IncomingHttpHeaders;
  clientIp?: string;
  routeName?: string;
  claims?: Record<string, unknown> | null;
}

function ctx(shape: RequestShape = {}): FilterContext {
  const req = new IncomingMessage(new Socket());
  // As Node leaves them after parsing: names lower-cased, in a plain object.
  req.headers = shape.headers ?? {};
  return {
    req,
    requestId: 'req-1',
    clientIp: shape.clientIp ?? '10.0.0.1',
    routeName: shape.routeName ?? 'users',
    upstreamHeaders: {},
    responseHeaders: {},
    attributes: new Map(),
    claims: shape.claims ?? null,
  };
}

const parts = (...texts: string[]): RateLimitKeyPart[] => texts.map(parseRateLimitKeyPart);
const keyOf = (policy: string, texts: string[], shape: RequestShape = {}, prefix = 'gw:'): string => new PolicyKey(prefix, policy, parts(...texts)).keyFor(ctx(shape));

/** Redis' hash tag: what lies between the first `{` and the next `}`. */
function hashTag(key: string): string {
  const open = key.indexOf('{');
  const close = key.indexOf('}', open + 1);
  if (open === -1 || close === -1) throw new Error(`no hash tag in ${key}`);
  return key.slice(open + 1, close);
}

describe('layout', () => {
  it('is {prefix}{policy}:{value}, the value in braces', () => {
    expect(keyOf('per-ip', ['ip'])).toBe('gw:per-ip:{10.0.0.1}');
    expect(keyOf('per-ip', ['ip'], {}, 'edge:rl:')).toBe('edge:rl:per-ip:{10.0.0.1}');
    expect(keyOf('per-user', ['jwt:sub'], { claims: { sub: 'alice' } })).toBe('gw:per-user:{alice}');
    expect(keyOf('per-key', ['header:x-api-key'], { headers: { 'x-api-key': 'k-123' } })).toBe('gw:per-key:{k-123}');
  });

  it('joins several parts with a colon, in the order of the policy', () => {
    const shape: RequestShape = { headers: { 'x-tenant': 'acme' }, claims: { sub: 'alice' } };
    expect(keyOf('p', ['ip', 'route', 'header:x-tenant', 'jwt:sub'], shape)).toBe('gw:p:{10.0.0.1:users:acme:alice}');
    expect(keyOf('p', ['jwt:sub', 'ip'], shape)).toBe('gw:p:{alice:10.0.0.1}');
  });

  it('two policies on the same parts never share a key', () => {
    const shape: RequestShape = { claims: { sub: 'alice' } };
    const minute = keyOf('per-user-minute', ['jwt:sub'], shape);
    const day = keyOf('per-user-day', ['jwt:sub'], shape);
    expect(minute).not.toBe(day);
    expect(keyOf('per-ip', ['ip'])).not.toBe(keyOf('per-ip-strict', ['ip']));
  });

  it('a policy is shared across routes unless its key has `route`, which uses the route name', () => {
    expect(keyOf('per-ip', ['ip'], { routeName: 'users' })).toBe(keyOf('per-ip', ['ip'], { routeName: 'orders' }));
    expect(keyOf('per-route', ['route'], { routeName: 'users' })).toBe('gw:per-route:{users}');
    expect(keyOf('per-route', ['route'], { routeName: 'orders' })).toBe('gw:per-route:{orders}');
    expect(keyOf('p', ['ip', 'route'], { routeName: 'users' })).not.toBe(keyOf('p', ['ip', 'route'], { routeName: 'orders' }));
  });

  it('the same request always gets the same key', () => {
    const policy = new PolicyKey('gw:', 'p', parts('header:x-api-key', 'ip'));
    const shape: RequestShape = { headers: { 'x-api-key': 'k:1' } };
    expect(policy.keyFor(ctx(shape))).toBe(policy.keyFor(ctx(shape)));
  });

  it('keyOf, from the values alone, gives what keyFor gives for the request', () => {
    const policy = new PolicyKey('gw:', 'p', parts('header:x-tenant', 'jwt:sub', 'route'));
    const shape: RequestShape = { headers: { 'x-tenant': 'a:b' }, claims: { sub: 'alice' }, clientIp: '::1', routeName: 'orders' };
    const c = ctx(shape);
    const fromValues = policy.keyOf({ headers: c.req.headers, clientIp: c.clientIp, routeName: c.routeName, claims: c.claims });
    expect(fromValues).toBe(policy.keyFor(c));
    expect(fromValues).toBe('gw:p:{a%3Ab:alice:orders}');
  });

  it('describeKey names the parts without a request', () => {
    expect(describeKey(parts('ip', 'route', 'header:X-Api-Key', 'jwt:sub'))).toBe('ip + route + header:x-api-key + jwt:sub');
  });
});

describe('header parts', () => {
  it('a header configured in any case is found under the lower-case name Node gives it', () => {
    // The config compiler lower-cases `header:X-Api-Key`; Node lower-cases names on the wire.
    expect(parseRateLimitKeyPart('header:X-Api-Key')).toEqual({ kind: 'header', name: 'x-api-key' });
    expect(keyOf('p', ['header:X-Api-Key'], { headers: { 'x-api-key': 'secret-1' } })).toBe('gw:p:{secret-1}');
  });

  it('a header sent several times counts by all its values', () => {
    expect(keyOf('p', ['header:set-cookie'], { headers: { 'set-cookie': ['a=1', 'b=2'] } })).toBe('gw:p:{a=1, b=2}');
  });
});

describe('escaping', () => {
  it('values holding `:` cannot pose as a different split of the parts', () => {
    const policy = ['header:a', 'header:b'];
    const xyZ = keyOf('p', policy, { headers: { a: 'x:y', b: 'z' } });
    const xYz = keyOf('p', policy, { headers: { a: 'x', b: 'y:z' } });
    expect(xyZ).not.toBe(xYz);
    expect(xyZ).toBe('gw:p:{x%3Ay:z}');
    expect(xYz).toBe('gw:p:{x:y%3Az}');
  });

  it('`%`, `{` and `}` are escaped too, so an escape sequence typed by a client stays distinct', () => {
    const policy = ['header:a', 'header:b'];
    const raw = keyOf('p', policy, { headers: { a: 'x:y', b: 'z' } });
    const typed = keyOf('p', policy, { headers: { a: 'x%3Ay', b: 'z' } });
    expect(typed).not.toBe(raw);
    expect(typed).toBe('gw:p:{x%253Ay:z}');
    expect(keyOf('p', ['header:a'], { headers: { a: '}{%' } })).toBe('gw:p:{%7D%7B%25}');
    // Every combination of tricky characters over two parts gives a distinct key.
    const alphabet = ['x', ':', '%', '{', '}', '%3A', 'x:'];
    const seen = new Map<string, string>();
    for (const a of alphabet) {
      for (const b of alphabet) {
        const key = keyOf('p', policy, { headers: { a, b } });
        const pair = JSON.stringify([a, b]);
        expect(seen.get(key), `${pair} collides`).toBeUndefined();
        seen.set(key, pair);
      }
    }
    expect(seen.size).toBe(49);
  });

  it('the hash tag is the whole escaped value, whatever braces the value holds', () => {
    const cases: [string[], RequestShape, string][] = [
      [['ip'], {}, '10.0.0.1'],
      [['header:a'], { headers: { a: 'x}y{z' } }, 'x%7Dy%7Bz'],
      [['header:a', 'header:b'], { headers: { a: '{', b: '}' } }, '%7B:%7D'],
      [['ip'], { clientIp: '2001:db8::1' }, '2001%3Adb8%3A%3A1'],
    ];
    for (const [policy, shape, tag] of cases) {
      const key = keyOf('p', policy, shape);
      expect(hashTag(key)).toBe(tag);
      expect(key.endsWith(`{${tag}}`)).toBe(true);
    }
  });

  it('IPv6 addresses are escaped, in real keys and in the fallback', () => {
    expect(keyOf('per-ip', ['ip'], { clientIp: '2001:db8::1' })).toBe('gw:per-ip:{2001%3Adb8%3A%3A1}');
    expect(keyOf('p', ['header:x-api-key'], { clientIp: '::ffff:10.0.0.1' })).toBe('gw:p:ip={%3A%3Affff%3A10.0.0.1}');
    expect(keyOf('p', ['ip', 'route'], { clientIp: '::1' })).toBe('gw:p:{%3A%3A1:users}');
  });
});

describe('a request lacking a part is counted by client IP', () => {
  const FALLBACK = 'gw:p:ip={10.0.0.1}';

  it('missing or empty header, missing claim, no claims at all, or a claim that is not a scalar', () => {
    const lacking: [string[], RequestShape][] = [
      [['header:x-api-key'], {}],
      [['header:x-api-key'], { headers: { 'x-api-key': '' } }],
      [['header:x-api-key'], { headers: { 'x-other': 'v' } }],
      [['jwt:sub'], { claims: null }],
      [['jwt:sub'], { claims: {} }],
      [['jwt:sub'], { claims: { sub: '' } }],
      [['jwt:sub'], { claims: { sub: null } }],
      [['jwt:sub'], { claims: { sub: { id: 'alice' } } }],
      [['jwt:sub'], { claims: { sub: ['alice', 'bob'] } }],
      [['jwt:constructor'], { claims: { sub: 'alice' } }],
      // One lacking part is enough: the other parts alone would merge unrelated clients.
      [['header:x-tenant', 'jwt:sub'], { claims: { sub: 'alice' } }],
      [['jwt:sub', 'header:x-tenant'], { claims: { sub: 'alice' } }],
      [['ip', 'jwt:sub'], { claims: {} }],
    ];
    for (const [policy, shape] of lacking) expect(keyOf('p', policy, shape), JSON.stringify([policy, shape])).toBe(FALLBACK);
  });

  it('the fallback differs from a real value equal to the IP, yet lands on the same slot', () => {
    const real = keyOf('p', ['header:x-forwarded-user'], { headers: { 'x-forwarded-user': '10.0.0.1' } });
    const claimed = keyOf('p', ['jwt:sub'], { claims: { sub: '10.0.0.1' } });
    const lacking = keyOf('p', ['jwt:sub'], { claims: {} });
    expect(real).toBe('gw:p:{10.0.0.1}');
    expect(claimed).toBe(real);
    expect(lacking).toBe(FALLBACK);
    expect(lacking).not.toBe(real);
    // And no value a client can send spells the fallback form: `ip=` sits outside the braces.
    expect(keyOf('p', ['jwt:sub'], { claims: { sub: 'ip={10.0.0.1}' } })).not.toBe(FALLBACK);
    expect(calculateSlot(lacking)).toBe(calculateSlot(real));
  });

  it('clients lacking the part are counted apart from each other, by their own address', () => {
    expect(keyOf('p', ['jwt:sub'], { clientIp: '10.0.0.2' })).toBe('gw:p:ip={10.0.0.2}');
    expect(keyOf('p', ['jwt:sub'], { clientIp: '10.0.0.2' })).not.toBe(keyOf('p', ['jwt:sub'], { clientIp: '10.0.0.3' }));
  });

  it('missingPart names the first part a request lacks, and null when it lacks none', () => {
    const policy = new PolicyKey('gw:', 'p', parts('ip', 'header:X-Tenant', 'jwt:sub'));
    const source = (shape: RequestShape) => {
      const c = ctx(shape);
      return { headers: c.req.headers, clientIp: c.clientIp, routeName: c.routeName, claims: c.claims };
    };
    expect(policy.missingPart(source({ claims: { sub: 'alice' } }))).toBe('header:x-tenant');
    expect(policy.missingPart(source({ headers: { 'x-tenant': 't' } }))).toBe('jwt:sub');
    expect(policy.missingPart(source({ headers: { 'x-tenant': 't' }, claims: { sub: 'alice' } }))).toBeNull();
  });

  it('regression: a header named like an Object.prototype member (constructor, __proto__) that the request lacks is counted by client IP', () => {
    // `header:constructor` passes the schema (TOKEN allows it); req.headers is a plain object, so a
    // bare lookup found Object.prototype's member instead of undefined and the filter threw.
    for (const name of ['constructor', '__proto__']) {
      expect(() => keyOf('p', [`header:${name}`]), name).not.toThrow();
      expect(keyOf('p', [`header:${name}`]), name).toBe(FALLBACK);
    }
  });
});

describe('claims', () => {
  it('numeric and boolean claims are used as their text', () => {
    expect(keyOf('p', ['jwt:uid'], { claims: { uid: 42 } })).toBe('gw:p:{42}');
    expect(keyOf('p', ['jwt:uid'], { claims: { uid: 0 } })).toBe('gw:p:{0}');
    expect(keyOf('p', ['jwt:admin'], { claims: { admin: true } })).toBe('gw:p:{true}');
    expect(keyOf('p', ['jwt:uid'], { claims: { uid: 42 } })).not.toBe(keyOf('p', ['jwt:uid'], { claims: { uid: 43 } }));
  });

  it('claim names with dots or colons are looked up verbatim', () => {
    expect(keyOf('p', ['jwt:https://example.com/tenant'], { claims: { 'https://example.com/tenant': 't1' } })).toBe('gw:p:{t1}');
  });
});

describe('long values', () => {
  const hashed = /^gw:p:\{%H[A-Za-z0-9_-]{43}\}$/;

  it(`up to ${MAX_VALUE_LENGTH} characters are kept, longer ones become %H + SHA-256 of fixed length`, () => {
    const exact = 'a'.repeat(MAX_VALUE_LENGTH);
    expect(keyOf('p', ['header:a'], { headers: { a: exact } })).toBe(`gw:p:{${exact}}`);
    const keys = [MAX_VALUE_LENGTH + 1, 1_000, 16 * 1024].map((n) => keyOf('p', ['header:a'], { headers: { a: 'a'.repeat(n) } }));
    for (const key of keys) expect(key).toMatch(hashed);
    expect(new Set(keys.map((k) => k.length))).toEqual(new Set([keys[0]?.length]));
    expect(new Set(keys).size).toBe(3);
  });

  it('the same long value always maps to the same key, a different one to another', () => {
    const long = 'x'.repeat(5_000);
    const a = keyOf('p', ['header:a'], { headers: { a: long } });
    expect(keyOf('p', ['header:a'], { headers: { a: long } })).toBe(a);
    expect(keyOf('p', ['header:a'], { headers: { a: `${long}y` } })).not.toBe(a);
  });

  it('the limit applies to the joined, escaped value', () => {
    const half = 'b'.repeat(100);
    // 100 + ':' + 100 = 201 characters once joined.
    expect(keyOf('p', ['header:a', 'header:b'], { headers: { a: half, b: half } })).toMatch(hashed);
    // 199 characters, one of them escaped to three: 201.
    expect(keyOf('p', ['header:a'], { headers: { a: `${'c'.repeat(198)}:` } })).toMatch(hashed);
  });

  it('no short value can spell a hashed one, since escaping turns every `%` into `%25`', () => {
    const long = keyOf('p', ['header:a'], { headers: { a: 'z'.repeat(300) } });
    const spelled = keyOf('p', ['header:a'], { headers: { a: hashTag(long) } });
    expect(spelled).not.toBe(long);
    expect(hashTag(spelled)).toBe(hashTag(long).replace('%', '%25'));
  });
});

describe('Redis Cluster slots', () => {
  it('policies keyed on the same value land on the same slot', () => {
    const shape: RequestShape = { claims: { sub: 'alice' } };
    const minute = keyOf('per-user-minute', ['jwt:sub'], shape);
    const day = keyOf('per-user-day', ['jwt:sub'], shape);
    expect(calculateSlot(minute)).toBe(calculateSlot(day));
    expect(calculateSlot(minute)).toBe(calculateSlot('alice'));
    // With a different prefix too: the slot is the value's alone.
    expect(calculateSlot(keyOf('per-ip', ['ip'], {}, 'other:'))).toBe(calculateSlot(keyOf('per-ip-2', ['ip'])));
  });

  it('the slot follows the escaped value, even when the value holds braces', () => {
    const shape: RequestShape = { headers: { a: '{x}' } };
    const one = keyOf('p1', ['header:a'], shape);
    const two = keyOf('p2', ['header:a'], shape);
    expect(calculateSlot(one)).toBe(calculateSlot('%7Bx%7D'));
    expect(calculateSlot(two)).toBe(calculateSlot(one));
  });

  it('different values spread over slots', () => {
    const slots = new Set(Array.from({ length: 200 }, (_, i) => calculateSlot(keyOf('p', ['jwt:sub'], { claims: { sub: `user-${i}` } }))));
    expect(slots.size).toBeGreaterThan(150);
  });
});
