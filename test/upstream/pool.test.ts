import { afterEach, describe, expect, it } from 'vitest';
import type { TargetConfig, UpstreamConfig } from '../../src/config/types.js';
import type { DiscoveryProvider } from '../../src/upstream/discovery/provider.js';
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
    slowStart: null,
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
      expect(p.retryBudgetAllows(false)).toBe(true);
      p.retryStarted();
    }
    // A 4th would make 4 retrying against 20 % of the 16 left on their first try (3.2).
    expect(p.retryBudgetAllows(false)).toBe(false);
    expect(p.retryBudgetAllows(true)).toBe(true); // 3 retrying ≤ 20 % of 17: their next tries may go
    p.requestFinished(true);
    expect(p.retryBudgetAllows(false)).toBe(true); // 3 of 19: 3 ≤ 3.2
    p.retryStarted();
    for (let i = 0; i < 16; i++) p.requestFinished(false); // only the 3 retrying are left
    expect(p.retryBudgetAllows(false)).toBe(false); // a 4th: over even the floor of 3
    p.requestFinished(true);
    expect(p.retryBudgetAllows(false)).toBe(true); // the floor: 3 at a time even when quiet
  });

  it('sends a retry to an endpoint not tried yet whenever one is usable', () => {
    const p = pool(4, { balancer: 'least-request' });
    for (let round = 0; round < 50; round++) {
      const tried = [p.pick({ hashKey: null })!];
      while (tried.length < 4) {
        const next = p.pickExcluding({ hashKey: null }, tried)!;
        expect(tried).not.toContain(next);
        tried.push(next);
      }
      expect(tried).toContain(p.pickExcluding({ hashKey: null }, tried)); // all tried: one again
    }
  });

  it('overflows only when the endpoint has no free connection and the pool queue is full', () => {
    const p = pool(2); // maxConnectionsPerEndpoint 8, maxPendingRequests 4
    const [a, b] = p.members as [PoolMember, PoolMember];
    a.endpoint.inFlight = 8;
    expect(p.overflows(a)).toBe(false); // busy, but nothing waits yet
    a.endpoint.inFlight = 11; // 3 waiting
    expect(p.overflows(a)).toBe(false);
    expect(p.overflows(b)).toBe(false); // b has free connections
    b.endpoint.inFlight = 9; // 1 more waiting: 4
    expect(p.overflows(a)).toBe(true);
    expect(p.overflows(b)).toBe(true);
    a.endpoint.inFlight = 0;
    b.endpoint.inFlight = 0;
  });

  it('replaces its members and balancer together when discovery changes, reusing known endpoints', () => {
    const c = config({ targets: null, balancer: 'round-robin' });
    const provider = new ChangingDiscovery([{ url: 'http://127.0.0.1:9201', weight: 1 }, { url: 'http://127.0.0.1:9202', weight: 1 }]);
    const changes: string[] = [];
    const memberFor = (t: TargetConfig): PoolMember => new PoolMember(registry.acquire(c, t.url), t.weight);
    let replaced = 0;
    const p = new UpstreamPool(c, provider.current().map(memberFor), {
      discovery: provider,
      memberFor,
      onMembersReplaced: () => replaced++,
      events: { panicChanged: () => {}, membersChanged: (_pool, added, removed) => changes.push(`+${added.join(',')} -${removed.join(',')}`) },
    });
    p.start();
    const kept = p.members[1]!.endpoint;
    provider.publish([{ url: 'http://127.0.0.1:9202', weight: 1 }, { url: 'http://127.0.0.1:9203', weight: 3 }]);
    expect(p.members.map((m) => m.address)).toEqual(['127.0.0.1:9202', '127.0.0.1:9203']);
    expect(p.members[0]!.endpoint).toBe(kept);
    expect(p.members[1]!.weight).toBe(3);
    expect(changes).toEqual(['+127.0.0.1:9203 -127.0.0.1:9201']);
    expect(replaced).toBe(1);
    expect(new Set(Array.from({ length: 10 }, () => p.pick({ hashKey: null })!.address)).size).toBe(2);

    provider.publish([{ url: 'http://127.0.0.1:9203', weight: 3 }, { url: 'http://127.0.0.1:9202', weight: 1 }]); // same set
    expect(replaced).toBe(1);
    p.stop();
    provider.publish([{ url: 'http://127.0.0.1:9209', weight: 1 }]); // after stop: ignored
    expect(p.members.map((m) => m.address)).toEqual(['127.0.0.1:9202', '127.0.0.1:9203']);
  });

  it('reports panic as it starts and ends', () => {
    const seen: string[] = [];
    const c = config();
    const members = Array.from({ length: 2 }, (_, i) => new PoolMember(registry.acquire(c, `http://127.0.0.1:${9300 + i}`), 1));
    const p = new UpstreamPool(c, members, { events: { panicChanged: (_n, panic, usable, total) => seen.push(`${panic} ${usable}/${total}`), membersChanged: () => {} } });
    members[0]!.endpoint.passive.ejectedUntil = Date.now() + 1000;
    p.refresh(); // 1 of 2 = 50 %: not below the threshold
    members[1]!.endpoint.active.healthy = false;
    p.refresh();
    members[0]!.endpoint.passive.ejectedUntil = null;
    p.refresh();
    expect(seen).toEqual(['true 0/2', 'false 1/2']);
  });

  describe('slow start', () => {
    const slowStart = { windowMs: 10_000, aggression: 1, minWeightPercent: 10 };

    function shareOf(p: UpstreamPool, member: PoolMember, picks: number): number {
      let hits = 0;
      for (let i = 0; i < picks; i++) if (p.pick({ hashKey: null }) === member) hits++;
      return hits / picks;
    }

    it('gives a warming endpoint a share that grows with its age, then its full share', () => {
      const p = pool(4, { balancer: 'round-robin', slowStart });
      const warming = p.members[2]!;
      const n = 20_000;
      // Round robin chooses it for 1/4 of picks; at minWeight 10 % it keeps a tenth of those.
      warming.endpoint.warmingSince = performance.now();
      expect(shareOf(p, warming, n)).toBeCloseTo(0.025, 1);
      warming.endpoint.warmingSince = performance.now() - 5_000; // half way: (0.5)^1
      const half = shareOf(p, warming, n);
      expect(half).toBeGreaterThan(0.1);
      expect(half).toBeLessThan(0.15);
      warming.endpoint.warmingSince = performance.now() - 10_001; // window over
      expect(shareOf(p, warming, n)).toBeCloseTo(0.25, 1);
      expect(warming.endpoint.warmingSince).toBeNull();
    });

    it('starts an endpoint warming when it comes back from an ejection; a pool without slowStart ignores warming', () => {
      const p = pool(3, { balancer: 'round-robin', slowStart });
      const e = p.members[0]!.endpoint;
      expect(e.warmingSince).toBeNull();
      e.passive.ejectedUntil = Date.now() + 1000;
      p.refresh();
      expect(e.warmingSince).toBeNull();
      e.passive.ejectedUntil = null;
      p.refresh();
      expect(e.warmingSince).not.toBeNull();
      expect(shareOf(p, p.members[0]!, 9000)).toBeLessThan(0.1); // 1/3 × 10 %, well under a third

      const plain = pool(3, { balancer: 'round-robin' });
      plain.members[0]!.endpoint.warmingSince = performance.now();
      expect(shareOf(plain, plain.members[0]!, 9000)).toBeCloseTo(1 / 3, 1);
    });

    it('does not hold back a warming endpoint in panic, when every endpoint is needed', () => {
      const p = pool(2, { balancer: 'round-robin', slowStart });
      p.members[0]!.endpoint.active.healthy = false;
      p.members[1]!.endpoint.active.healthy = false;
      p.refresh();
      expect(p.panic).toBe(true);
      p.members[0]!.endpoint.warmingSince = performance.now();
      expect(shareOf(p, p.members[0]!, 4000)).toBeCloseTo(0.5, 1);
    });
  });
});

/** A discovery provider a test publishes whole target sets through. */
class ChangingDiscovery implements DiscoveryProvider {
  #targets: readonly TargetConfig[];
  readonly #listeners = new Set<(targets: readonly TargetConfig[]) => void>();

  constructor(targets: readonly TargetConfig[]) {
    this.#targets = targets;
  }

  publish(targets: readonly TargetConfig[]): void {
    this.#targets = targets;
    for (const listener of this.#listeners) listener(targets);
  }

  current(): readonly TargetConfig[] {
    return this.#targets;
  }

  onChange(listener: (targets: readonly TargetConfig[]) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  start(): void {}
  stop(): void {}
}
