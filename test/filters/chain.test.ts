import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors.js';
import { runFilters } from '../../src/filters/chain.js';
import type { FilterContext, RequestFilter } from '../../src/filters/filter.js';

function ctx(): FilterContext {
  return {
    req: {} as IncomingMessage,
    requestId: 'r1',
    clientIp: '127.0.0.1',
    routeName: 'main',
    upstreamHeaders: {},
    responseHeaders: {},
    attributes: new Map(),
    claims: null,
  };
}

function filter(name: string, calls: string[], result: GatewayError | null, async = false): RequestFilter {
  return {
    name,
    apply: () => {
      calls.push(name);
      return async ? Promise.resolve(result) : result;
    },
  };
}

describe('runFilters', () => {
  it('stays synchronous when every filter is, and runs them in order', () => {
    const calls: string[] = [];
    const result = runFilters([filter('a', calls, null), filter('b', calls, null)], ctx());
    expect(result).toBeNull();
    expect(calls).toEqual(['a', 'b']);
  });

  it('stops at the first refusal', () => {
    const calls: string[] = [];
    const refusal = new GatewayError('GW_ERR_AUTH_FORBIDDEN');
    expect(runFilters([filter('a', calls, refusal), filter('b', calls, null)], ctx())).toBe(refusal);
    expect(calls).toEqual(['a']);
  });

  it('continues asynchronously after an async filter, keeping order and stopping at a refusal', async () => {
    const calls: string[] = [];
    const refusal = new GatewayError('GW_ERR_RATELIMIT_LIMITED');
    const pending = runFilters([filter('a', calls, null), filter('b', calls, null, true), filter('c', calls, refusal), filter('d', calls, null)], ctx());
    expect(pending).toBeInstanceOf(Promise);
    expect(await pending).toBe(refusal);
    expect(calls).toEqual(['a', 'b', 'c']);
  });

  it('lets an empty chain through', () => {
    expect(runFilters([], ctx())).toBeNull();
  });
});
