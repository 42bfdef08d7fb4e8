import { describe, expect, it } from 'vitest';
import { canonicalHeaderName, upstreamRequestHeaders } from '../../src/proxy/headers.js';

const FACTS = { host: 'api.example.com', clientPeer: '203.0.113.9', peerTrusted: false, proto: 'https' as const, requestId: 'r1', traceparent: 'tp' };

function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

describe('upstreamRequestHeaders', () => {
  it('never forwards a client copy of a header a filter owns, under any spelling, set or not', () => {
    const owned = new Set(['x-user-id', 'x-user-scope'].map(canonicalHeaderName));
    const sent = pairs(upstreamRequestHeaders(
      { 'x-user-id': 'admin', x_user_id: 'admin', 'x_user-scope': 'root', accept: 'json' },
      FACTS,
      { 'x-user-id': 'alice' }, // the claim the filter verified; no scope claim in the token
      owned,
    ));
    expect(sent.filter(([name]) => canonicalHeaderName(name) === 'x-user-id')).toEqual([['x-user-id', 'alice']]);
    expect(sent.some(([name]) => canonicalHeaderName(name) === 'x-user-scope')).toBe(false);
    expect(sent).toContainEqual(['accept', 'json']);
  });

  it('drops HTTP/2 pseudo-headers', () => {
    const sent = pairs(upstreamRequestHeaders({ ':method': 'GET', ':path': '/a', ':authority': 'api.example.com', ':scheme': 'https', accept: '*/*' }, FACTS, null));
    expect(sent.some(([name]) => name.startsWith(':'))).toBe(false);
    expect(sent).toContainEqual(['host', 'api.example.com']);
  });
});
