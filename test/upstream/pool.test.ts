import { afterEach, describe, expect, it } from 'vitest';
import type { UpstreamConfig } from '../../src/config/types.js';
import { PoolMember } from '../../src/upstream/member.js';
import { UpstreamPool } from '../../src/upstream/pool.js';
import { EndpointRegistry } from '../../src/upstream/registry.js';

function config(overrides: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return {
    name: 'pool',
    targets: [],
    discovery: null,
    balancer: 'round-robin',
    hashOn: null,
    outlierDetection: null,
    healthCheck: null,
    panicThresholdPercent: 50,
    timeouts: { connectMs: 1000, requestMs: 1000 },
    retries: { attempts: 1, on: ['connect-failure'], budgetPercent: 20, perTryTimeoutMs: null },
    maxConnectionsPerEndpoint: 8,
    maxPendingRequests: 4,
    ...overrides,
  };
}

describe('UpstreamPool', () => {
  const registry = new EndpointRegistry();
  afterEach(() => registry.closeAll());

  function pool(n: number, overrides: Partial<UpstreamConfig> = {}): UpstreamPool {
    const c = config(overrides);
    return new UpstreamPool(c, Array.from({ length: n }, (_, i) => new PoolMember(registry.acquire(c, `http://127.0.0.1:${9100 + i}`), 1)));
  }

  it('has nothing to pick when it has no endpoints', () => {
    expect(pool(0).pick({ hashKey: null })).toBeNull();
  });

  it('picks only healthy endpoints, and all of them in panic', () => {
    const p = pool(4);
    p.members[0]!.endpoint.passive.ejectedUntil = Date.now() + 60_000;
    p.refresh();
    expect(p.panic).toBe(false);
    const picked = new Set(Array.from({ length: 30 }, () => p.pick({ hashKey: null })!.address));
    expect(picked.has(p.members[0]!.address)).toBe(false);
    expect(picked.size).toBe(3);

    p.members[1]!.endpoint.passive.ejectedUntil = Date.now() + 60_000;
    p.members[2]!.endpoint.active.healthy = false;
    p.refresh(); // 1 of 4 usable = 25 % < 50 %: panic, spread over every endpoint
    expect(p.panic).toBe(true);
    expect(new Set(Array.from({ length: 30 }, () => p.pick({ hashKey: null })!.address)).size).toBe(4);
  });

  it('caps retries in progress at the budget, never below three', () => {
    const p = pool(2, { retries: { attempts: 5, on: ['connect-failure'], budgetPercent: 20, perTryTimeoutMs: null } });
    for (let i = 0; i < 20; i++) p.requestStarted();
    for (let i = 0; i < 3; i++) {
      expect(p.retryBudgetAllows()).toBe(true);
      p.retryStarted();
    }
    expect(p.retryBudgetAllows()).toBe(true); // 3 retrying < 20 % of the 17 on their first try
    p.retryStarted();
    expect(p.retryBudgetAllows()).toBe(false);
    p.requestFinished(true);
    expect(p.retryBudgetAllows()).toBe(true);
  });
});
