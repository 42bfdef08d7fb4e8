import { describe, expect, it } from 'vitest';
import { SniSelector, normalizeServerName } from '../../src/tls/sni.js';

interface Entry {
  readonly id: string;
  readonly names: readonly string[];
}

const entries: Entry[] = [
  { id: 'default', names: ['default.test', '127.0.0.1'] },
  { id: 'exact', names: ['api.example.com'] },
  { id: 'wild', names: ['*.example.com'] },
  { id: 'deep', names: ['*.eu.example.com', 'Mixed.Example.ORG.'] },
  { id: 'shadowed', names: ['api.example.com', '*.example.com'] },
];
const selector = new SniSelector(entries);
const pick = (name: string | null | undefined): string => selector.select(name).id;

describe('SniSelector', () => {
  it('prefers an exact name over a wildcard covering it', () => {
    expect(pick('api.example.com')).toBe('exact');
    expect(pick('www.example.com')).toBe('wild');
  });

  it('lets a wildcard cover exactly one label', () => {
    expect(pick('example.com')).toBe('default');
    expect(pick('a.b.example.com')).toBe('default');
    expect(pick('x.eu.example.com')).toBe('deep');
    expect(pick('eu.example.com')).toBe('wild');
  });

  it('answers unknown names and handshakes without SNI with the first entry', () => {
    expect(pick('unknown.test')).toBe('default');
    expect(pick(undefined)).toBe('default');
    expect(pick(null)).toBe('default');
    expect(pick('')).toBe('default');
    expect(pick('.example.com')).toBe('default');
  });

  it('compares case-insensitively and ignores one trailing dot, on both sides', () => {
    expect(pick('API.Example.COM')).toBe('exact');
    expect(pick('api.example.com.')).toBe('exact');
    expect(pick('WWW.EXAMPLE.COM.')).toBe('wild');
    expect(pick('mixed.example.org')).toBe('deep');
    expect(normalizeServerName('A.B.')).toBe('a.b');
  });

  it('gives a name claimed twice to the entry listed first', () => {
    expect(entries.filter((e) => e.names.includes('api.example.com')).map((e) => e.id)).toEqual(['exact', 'shadowed']);
    expect(pick('api.example.com')).toBe('exact');
    expect(pick('other.example.com')).toBe('wild');
  });

  it('matches an IP literal some clients send as SNI', () => {
    expect(pick('127.0.0.1')).toBe('default');
    expect(selector.match('127.0.0.1')?.id).toBe('default');
  });

  it('tells a name the default owns from a fallback to it', () => {
    expect(selector.match('default.test')?.id).toBe('default');
    expect(selector.match('unknown.test')).toBeNull();
    expect(selector.match('www.example.com')?.id).toBe('wild');
  });

  it('needs at least one entry', () => {
    expect(() => new SniSelector<Entry>([])).toThrow(/at least one/);
  });
});
