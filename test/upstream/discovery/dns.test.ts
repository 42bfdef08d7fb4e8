import nodeDns from 'node:dns';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DnsDiscoveryConfig, DnsRecordType, TargetConfig } from '../../../src/config/types.js';
import { DnsDiscovery, type DnsDiscoveryEvents, parseNameServer } from '../../../src/upstream/discovery/dns.js';
import { StaticDiscovery } from '../../../src/upstream/discovery/provider.js';
import { type SeenQuery, TestDnsServer } from '../../helpers/dns.js';

// Real sockets and a real DNS server; time is scaled down (minRefresh 100 ms, TTLs of 0 to 1 s)
// and every bound is generous, so a slow machine is slower, never red.

let dns: TestDnsServer;
const providers: DnsDiscovery[] = [];
const extraServers: TestDnsServer[] = [];

beforeAll(async () => {
  dns = await TestDnsServer.start();
});

afterEach(async () => {
  for (const p of providers.splice(0)) p.stop();
  for (const s of extraServers.splice(0)) await s.close();
});

afterAll(async () => {
  await dns.close();
});

let names = 0;
/** A fresh name per test, so the shared server's records and query log never mix tests. */
const fresh = (label: string): string => `${label}-${++names}.svc.test`;

interface Recorder {
  readonly events: DnsDiscoveryEvents;
  readonly resolved: { targets: readonly TargetConfig[]; ttlMs: number; changed: boolean }[];
  readonly failed: { reason: string; keptCount: number }[];
  readonly changes: (readonly TargetConfig[])[];
}

function recorder(): Recorder {
  const r: Recorder = {
    resolved: [],
    failed: [],
    changes: [],
    events: {
      resolved: (_u, targets, ttlMs, changed) => r.resolved.push({ targets, ttlMs, changed }),
      failed: (_u, reason, keptCount) => r.failed.push({ reason, keptCount }),
    },
  };
  return r;
}

interface Setup {
  readonly name: string;
  readonly type?: DnsRecordType;
  readonly port?: number | null;
  readonly server?: string | null;
  readonly minRefreshMs?: number;
  readonly maxRefreshMs?: number;
  readonly queryTimeoutMs?: number;
  readonly start?: boolean;
}

function discovery(setup: Setup): { provider: DnsDiscovery; rec: Recorder } {
  const type = setup.type ?? 'A';
  const config: DnsDiscoveryConfig = {
    dns: { name: setup.name, type, port: setup.port !== undefined ? setup.port : type === 'SRV' ? null : 8080 },
    server: setup.server !== undefined ? setup.server : dns.address,
    minRefreshMs: setup.minRefreshMs ?? 100,
    maxRefreshMs: setup.maxRefreshMs ?? 60_000,
  };
  const rec = recorder();
  const provider = new DnsDiscovery('orders', config, { events: rec.events, queryTimeoutMs: setup.queryTimeoutMs ?? 300 });
  provider.onChange((targets) => rec.changes.push(targets));
  providers.push(provider);
  if (setup.start !== false) provider.start();
  return { provider, rec };
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const gaps = (queries: readonly SeenQuery[]): number[] => queries.slice(1).map((q, i) => q.at - queries[i]!.at);

const t = (url: string, weight = 1): TargetConfig => ({ url, weight });

describe('A and AAAA', () => {
  it('resolves A records to http://address:port targets of weight 1, sorted', async () => {
    const name = fresh('a');
    dns.setA(name, ['10.0.0.2', '10.0.0.1', '10.0.0.2'], 30);
    const { provider, rec } = discovery({ name });
    await provider.ready();
    expect(provider.current()).toEqual([t('http://10.0.0.1:8080'), t('http://10.0.0.2:8080')]);
    expect(rec.resolved).toEqual([{ targets: provider.current(), ttlMs: 30_000, changed: true }]);
    expect(rec.changes).toEqual([provider.current()]);
    expect(rec.failed).toEqual([]);
  });

  it('resolves AAAA records to bracketed, canonical IPv6 targets', async () => {
    const name = fresh('aaaa');
    dns.setAAAA(name, ['::1', '2001:0DB8:0:0:0:0:0:7', '2001:db8::7'], 30);
    const { provider } = discovery({ name, type: 'AAAA', port: 9090 });
    await provider.ready();
    expect(provider.current()).toEqual([t('http://[2001:db8::7]:9090'), t('http://[::1]:9090')]);
  });

  it('follows what a CNAME chain gave, counting the CNAME TTL, and skips records of other types', async () => {
    const name = fresh('alias');
    const real = fresh('real');
    dns.setCNAME(name, real, 5);
    dns.setA(real, ['10.0.1.1'], 30);
    const aliased = discovery({ name });
    await aliased.provider.ready();
    expect(aliased.provider.current()).toEqual([t('http://10.0.1.1:8080')]);
    expect(aliased.rec.resolved[0]?.ttlMs).toBe(5_000);

    const mixed = fresh('mixed');
    dns.set(mixed, 'A', [
      { type: 'TXT', data: 'not an address', ttl: 1 },
      { type: 'A', address: '10.0.1.2', ttl: 20 },
      { type: 'AAAA', address: '::2', ttl: 1 },
    ]);
    const odd = discovery({ name: mixed });
    await odd.provider.ready();
    expect(odd.provider.current()).toEqual([t('http://10.0.1.2:8080')]);
    expect(odd.rec.resolved[0]?.ttlMs).toBe(20_000); // the other types' TTLs do not count
    expect(odd.rec.failed).toEqual([]);
  });

  it('retries over TCP when the UDP answer is truncated', async () => {
    const name = fresh('tcp');
    dns.setA(name, ['10.0.2.1'], 30);
    dns.truncateUdp = true;
    try {
      const { provider } = discovery({ name });
      await provider.ready();
      expect(provider.current()).toEqual([t('http://10.0.2.1:8080')]);
      expect(dns.queriesFor(name, 'A').map((q) => q.transport)).toEqual(['udp', 'tcp']);
    } finally {
      dns.truncateUdp = false;
    }
  });
});

describe('SRV', () => {
  it('takes port and weight from the lowest priority group and resolves targets (A, then AAAA)', async () => {
    const name = `_http._tcp.${fresh('srv')}`;
    const a = fresh('target-a');
    const b = fresh('target-b');
    const backup = fresh('target-backup');
    dns.setSRV(
      name,
      [
        { priority: 20, weight: 100, port: 9000, target: backup }, // a backup group: not used
        { priority: 10, weight: 5, port: 8081, target: a },
        { priority: 10, weight: 0, port: 8082, target: b }, // weight 0 becomes 1
        { priority: 10, weight: 7, port: 8083, target: '.' }, // "not available here": skipped
      ],
      30,
    );
    dns.setA(a, ['10.0.3.1', '10.0.3.2'], 7);
    dns.setAAAA(b, ['2001:db8::b'], 60); // b has no A record
    dns.setA(backup, ['10.0.3.9'], 30);
    const { provider, rec } = discovery({ name, type: 'SRV' });
    await provider.ready();
    expect(provider.current()).toEqual([
      t('http://10.0.3.1:8081', 5),
      t('http://10.0.3.2:8081', 5),
      t('http://[2001:db8::b]:8082', 1),
    ]);
    expect(rec.resolved[0]?.ttlMs).toBe(7_000); // the smallest TTL, a target's A records
    expect(dns.queriesFor(a, 'AAAA')).toEqual([]); // A answered: no AAAA question
    expect(dns.queriesFor(b, 'AAAA')).toHaveLength(1);
    expect(dns.queriesFor(backup, 'A')).toEqual([]);
  });

  it('adds up the weights of records that end at the same address and port', async () => {
    const name = `_http._tcp.${fresh('srv-sum')}`;
    const a = fresh('sum-a');
    const alias = fresh('sum-alias');
    dns.setSRV(
      name,
      [
        { priority: 1, weight: 2, port: 8080, target: a },
        { priority: 1, weight: 3, port: 8080, target: alias },
        { priority: 1, weight: 4, port: 8081, target: a },
      ],
      30,
    );
    dns.setA(a, ['10.0.4.1'], 30);
    dns.setA(alias, ['10.0.4.1'], 30);
    const { provider } = discovery({ name, type: 'SRV' });
    await provider.ready();
    expect(provider.current()).toEqual([t('http://10.0.4.1:8080', 5), t('http://10.0.4.1:8081', 4)]);
  });

  it('drops a target that does not exist, and fails (empty) when no target has an address', async () => {
    const name = `_http._tcp.${fresh('srv-gone')}`;
    const live = fresh('live');
    const gone = fresh('gone');
    dns.setSRV(name, [{ priority: 0, weight: 1, port: 8080, target: live }, { priority: 0, weight: 1, port: 8080, target: gone }], 30);
    dns.setA(live, ['10.0.5.1'], 30);
    const ok = discovery({ name, type: 'SRV' });
    await ok.provider.ready();
    expect(ok.provider.current()).toEqual([t('http://10.0.5.1:8080')]);

    const lonely = `_http._tcp.${fresh('srv-lonely')}`;
    dns.setSRV(lonely, [{ priority: 0, weight: 1, port: 8080, target: gone }], 30);
    const empty = discovery({ name: lonely, type: 'SRV' });
    await empty.provider.ready();
    expect(empty.provider.current()).toEqual([]);
    expect(empty.rec.failed[0]?.reason).toMatch(/empty answer/);
    expect(empty.rec.changes).toEqual([]);
  });

  it('fails the whole lookup, keeping the last good set, when a target lookup fails', async () => {
    const name = `_http._tcp.${fresh('srv-flaky')}`;
    const a = fresh('flaky-a');
    const b = fresh('flaky-b');
    dns.setSRV(name, [{ priority: 0, weight: 1, port: 8080, target: a }, { priority: 0, weight: 1, port: 8080, target: b }], 0);
    dns.setA(a, ['10.0.6.1'], 0);
    dns.setA(b, ['10.0.6.2'], 0);
    const { provider, rec } = discovery({ name, type: 'SRV' });
    await provider.ready();
    expect(provider.current()).toHaveLength(2);
    dns.setBehaviour(b, 'servfail');
    await waitFor('a failure', () => rec.failed.length > 0);
    expect(rec.failed[0]).toEqual({ reason: expect.stringMatching(new RegExp(`target ${b}.*SERVFAIL`)), keptCount: 2 });
    expect(provider.current()).toHaveLength(2);
    expect(rec.changes).toHaveLength(1);
  });
});

describe('refresh on the TTL', () => {
  it('re-resolves when a TTL of 1 s runs out', async () => {
    const name = fresh('ttl1');
    dns.setA(name, ['10.1.0.1'], 1);
    discovery({ name });
    const seen = await dns.waitForQueries(name, 'A', 2);
    const [gap] = gaps(seen);
    expect(gap).toBeGreaterThanOrEqual(900);
    expect(gap).toBeLessThan(5_000);
  });

  it('clamps a TTL of 0 up to minRefresh', async () => {
    const name = fresh('ttl0');
    dns.setA(name, ['10.1.0.2'], 0);
    discovery({ name, minRefreshMs: 200 });
    const seen = await dns.waitForQueries(name, 'A', 4);
    for (const gap of gaps(seen)) {
      expect(gap).toBeGreaterThanOrEqual(180);
      expect(gap).toBeLessThan(3_000);
    }
  });

  it('clamps a TTL of 3600 s down to maxRefresh', async () => {
    const name = fresh('ttl3600');
    dns.setA(name, ['10.1.0.3'], 3600);
    const { rec } = discovery({ name, minRefreshMs: 100, maxRefreshMs: 400 });
    const seen = await dns.waitForQueries(name, 'A', 3);
    for (const gap of gaps(seen)) {
      expect(gap).toBeGreaterThanOrEqual(360);
      expect(gap).toBeLessThan(4_000);
    }
    expect(rec.resolved[0]?.ttlMs).toBe(3_600_000); // reported as the answer said, before clamping
  });
});

describe('changes', () => {
  it('notifies once with the whole new set, and not at all when only the order changes', async () => {
    const name = fresh('change');
    dns.setA(name, ['10.2.0.1', '10.2.0.2'], 0);
    const { provider, rec } = discovery({ name });
    await provider.ready();
    expect(rec.changes).toEqual([[t('http://10.2.0.1:8080'), t('http://10.2.0.2:8080')]]);

    dns.setA(name, ['10.2.0.2', '10.2.0.1'], 0); // same set, other order
    const asked = dns.queriesFor(name, 'A').length;
    await dns.waitForQueries(name, 'A', asked + 3);
    await waitFor('the answers to be processed', () => rec.resolved.length >= asked + 2);
    expect(rec.changes).toHaveLength(1);
    expect(rec.resolved.slice(1).every((r) => !r.changed)).toBe(true);

    dns.setA(name, ['10.2.0.3', '10.2.0.1', '10.2.0.2'], 0);
    await waitFor('a change', () => rec.changes.length === 2);
    expect(rec.changes[1]).toEqual([t('http://10.2.0.1:8080'), t('http://10.2.0.2:8080'), t('http://10.2.0.3:8080')]);
    expect(provider.current()).toEqual(rec.changes[1]);
    // And it stays a single notification.
    await dns.waitForQueries(name, 'A', dns.queriesFor(name, 'A').length + 2);
    expect(rec.changes).toHaveLength(2);
  });

  it('counts a weight change as a change', async () => {
    const name = `_http._tcp.${fresh('srv-weight')}`;
    const a = fresh('weight-a');
    dns.setSRV(name, [{ priority: 0, weight: 1, port: 8080, target: a }], 0);
    dns.setA(a, ['10.2.1.1'], 0);
    const { provider, rec } = discovery({ name, type: 'SRV' });
    await provider.ready();
    dns.setSRV(name, [{ priority: 0, weight: 9, port: 8080, target: a }], 0);
    await waitFor('a change', () => rec.changes.length === 2);
    expect(rec.changes[1]).toEqual([t('http://10.2.1.1:8080', 9)]);
  });

  it('lets a listener unsubscribe, and survives a listener that throws', async () => {
    const name = fresh('listeners');
    dns.setA(name, ['10.2.2.1'], 0);
    const failedListeners: unknown[] = [];
    const provider = new DnsDiscovery(
      'orders',
      { dns: { name, type: 'A', port: 8080 }, server: dns.address, minRefreshMs: 100, maxRefreshMs: 60_000 },
      { events: { resolved: () => {}, failed: () => {}, listenerFailed: (_u, err) => failedListeners.push(err) } },
    );
    providers.push(provider);
    const kept: (readonly TargetConfig[])[] = [];
    const dropped: (readonly TargetConfig[])[] = [];
    provider.onChange(() => {
      throw new Error('listener bug');
    });
    provider.onChange((targets) => kept.push(targets));
    const unsubscribe = provider.onChange((targets) => dropped.push(targets));
    provider.start();
    await provider.ready();
    unsubscribe();
    dns.setA(name, ['10.2.2.2'], 0);
    await waitFor('a change', () => kept.length === 2);
    expect(dropped).toHaveLength(1);
    expect(failedListeners).toHaveLength(2);
    expect(kept[1]).toEqual([t('http://10.2.2.2:8080')]);
  });
});

describe('failures keep the last good set', () => {
  for (const [label, breakIt, reason] of [
    ['SERVFAIL', (name: string) => dns.setBehaviour(name, 'servfail'), /SERVFAIL/],
    ['NXDOMAIN', (name: string) => dns.remove(name), /NXDOMAIN/],
    ['an empty answer (NOERROR, no records)', (name: string) => dns.setA(name, [], 0), /empty answer/],
    ['silence (timeout)', (name: string) => dns.setBehaviour(name, 'timeout'), /timed out/],
  ] as const) {
    it(`on ${label}: reports it, keeps the set, retries after minRefresh, and recovers`, async () => {
      const name = fresh('fail');
      dns.setA(name, ['10.3.0.1', '10.3.0.2'], 0);
      const { provider, rec } = discovery({ name, minRefreshMs: 100, maxRefreshMs: 60_000 });
      await provider.ready();
      const good = provider.current();
      expect(good).toHaveLength(2);

      breakIt(name);
      await waitFor('three failures', () => rec.failed.length >= 3);
      expect(rec.failed[0]).toEqual({ reason: expect.stringMatching(reason), keptCount: 2 });
      expect(rec.failed[0]?.reason).toContain(name);
      expect(provider.current()).toBe(good);
      expect(rec.changes).toHaveLength(1); // never told of an empty set

      dns.setBehaviour(name, null);
      dns.setA(name, ['10.3.0.3'], 0);
      await waitFor('recovery', () => rec.changes.length === 2);
      expect(rec.changes[1]).toEqual([t('http://10.3.0.3:8080')]);
      expect(provider.current()).toEqual([t('http://10.3.0.3:8080')]);
    });
  }

  it('keeps the set when the server is gone altogether', async () => {
    const server = await TestDnsServer.start();
    extraServers.push(server);
    const name = fresh('gone-server');
    server.setA(name, ['10.3.1.1'], 0);
    const { provider, rec } = discovery({ name, server: server.address });
    await provider.ready();
    await server.close();
    await waitFor('two failures', () => rec.failed.length >= 2);
    expect(rec.failed[0]).toEqual({ reason: expect.stringContaining(server.address), keptCount: 1 });
    expect(provider.current()).toEqual([t('http://10.3.1.1:8080')]);
  });

  it('retries after minRefresh, not maxRefresh, and ready() settles on a failed first lookup', async () => {
    const name = fresh('never');
    dns.setBehaviour(name, 'servfail');
    const { provider, rec } = discovery({ name, minRefreshMs: 100, maxRefreshMs: 60_000 });
    await provider.ready();
    expect(provider.current()).toEqual([]);
    expect(rec.failed).toEqual([{ reason: expect.stringMatching(/SERVFAIL/), keptCount: 0 }]);
    await dns.waitForQueries(name, 'A', 3, 5_000);
    expect(rec.changes).toEqual([]);
  });

  it('ready() settles when the first lookup times out', async () => {
    const name = fresh('silent');
    dns.setBehaviour(name, 'timeout');
    const { provider, rec } = discovery({ name, queryTimeoutMs: 200 });
    await provider.ready();
    expect(rec.failed[0]?.reason).toMatch(/timed out/);
    expect(provider.current()).toEqual([]);
  });
});

describe('start and stop', () => {
  it('stop() stops querying', async () => {
    const name = fresh('stop');
    dns.setA(name, ['10.4.0.1'], 0);
    const { provider } = discovery({ name });
    await dns.waitForQueries(name, 'A', 3);
    provider.stop();
    const asked = dns.queriesFor(name, 'A').length;
    await sleep(600);
    expect(dns.queriesFor(name, 'A').length).toBeLessThanOrEqual(asked + 1); // at most one in flight
    const settled = dns.queriesFor(name, 'A').length;
    await sleep(400);
    expect(dns.queriesFor(name, 'A').length).toBe(settled);
  });

  it('ignores an answer in flight at stop(), and ready() settles on stop()', async () => {
    const name = fresh('in-flight');
    dns.setA(name, ['10.4.1.1'], 30);
    dns.delayMs = 200;
    try {
      const { provider, rec } = discovery({ name, queryTimeoutMs: 2_000 });
      await dns.waitForQueries(name, 'A', 1);
      provider.stop();
      await provider.ready();
      await sleep(500);
      expect(provider.current()).toEqual([]);
      expect(rec.resolved).toEqual([]);
      expect(rec.changes).toEqual([]);
    } finally {
      dns.delayMs = 0;
    }
  });

  it('can start again after stop()', async () => {
    const name = fresh('restart');
    dns.setA(name, ['10.4.2.1'], 0);
    const { provider, rec } = discovery({ name });
    await provider.ready();
    provider.stop();
    dns.setA(name, ['10.4.2.2'], 0);
    provider.start();
    provider.start(); // a second start while running changes nothing
    await waitFor('the new set', () => rec.changes.length === 2);
    expect(provider.current()).toEqual([t('http://10.4.2.2:8080')]);
  });
});

describe('name servers', () => {
  let systemServers: string[];
  beforeAll(() => {
    systemServers = nodeDns.getServers();
  });
  afterAll(() => {
    nodeDns.setServers(systemServers);
  });

  it('asks an IPv6 server over udp6', async () => {
    const server = await TestDnsServer.start('::1');
    extraServers.push(server);
    const name = fresh('v6-server');
    server.setA(name, ['10.5.0.1'], 30);
    const { provider } = discovery({ name, server: server.address });
    expect(server.address).toBe(`[::1]:${server.port}`);
    await provider.ready();
    expect(provider.current()).toEqual([t('http://10.5.0.1:8080')]);
  });

  it('server null uses the system resolver, trying its servers in order', async () => {
    const broken = await TestDnsServer.start();
    const v6 = await TestDnsServer.start('::1');
    extraServers.push(broken, v6);
    broken.behaviour = 'servfail';
    const name = fresh('system');
    dns.setA(name, ['10.5.1.1'], 30);
    nodeDns.setServers([broken.address, dns.address]);
    const first = discovery({ name, server: null });
    await first.provider.ready();
    expect(first.provider.current()).toEqual([t('http://10.5.1.1:8080')]);
    expect(broken.queriesFor(name, 'A')).toHaveLength(1);

    v6.setA(name, ['10.5.1.2'], 30);
    nodeDns.setServers([v6.address]);
    const second = discovery({ name, server: null });
    await second.provider.ready();
    expect(second.provider.current()).toEqual([t('http://10.5.1.2:8080')]);
  });

  it('reports every server when all fail', async () => {
    const broken = await TestDnsServer.start();
    extraServers.push(broken);
    broken.behaviour = 'refused';
    const name = fresh('all-fail');
    dns.setBehaviour(name, 'servfail');
    nodeDns.setServers([broken.address, dns.address]);
    const { provider, rec } = discovery({ name, server: null });
    await provider.ready();
    expect(rec.failed[0]?.reason).toBe(`A ${name}: REFUSED from ${broken.address}; SERVFAIL from ${dns.address}`);
  });

  it('parses the forms of discovery.server and getServers()', () => {
    expect(parseNameServer('127.0.0.1:5353')).toEqual({ host: '127.0.0.1', port: 5353, family: 4, label: '127.0.0.1:5353' });
    expect(parseNameServer('10.0.0.1')).toEqual({ host: '10.0.0.1', port: 53, family: 4, label: '10.0.0.1:53' });
    expect(parseNameServer('::1')).toEqual({ host: '::1', port: 53, family: 6, label: '[::1]:53' });
    expect(parseNameServer('[2001:db8::1]:5300')).toEqual({ host: '2001:db8::1', port: 5300, family: 6, label: '[2001:db8::1]:5300' });
    expect(parseNameServer('[0:0:0:0:0:0:0:1]:53')?.host).toBe('::1'); // as replies will come from
    expect(parseNameServer('dns.example:53')).toBeNull();
    expect(parseNameServer('127.0.0.1:0')).toBeNull();
  });
});

describe('identity', () => {
  const base: DnsDiscoveryConfig = {
    dns: { name: 'orders.svc.cluster.local', type: 'A', port: 8080 },
    server: null,
    minRefreshMs: 1_000,
    maxRefreshMs: 60_000,
  };

  it('keyOf is equal for configs that ask the same thing, and differs otherwise', () => {
    const key = DnsDiscovery.keyOf('orders', base);
    expect(DnsDiscovery.keyOf('orders', { ...base, dns: { ...base.dns, name: 'Orders.SVC.cluster.local.' } })).toBe(key);
    expect(new DnsDiscovery('orders', base).key).toBe(key);
    for (const other of [
      DnsDiscovery.keyOf('billing', base),
      DnsDiscovery.keyOf('orders', { ...base, dns: { ...base.dns, name: 'billing.svc.cluster.local' } }),
      DnsDiscovery.keyOf('orders', { ...base, dns: { ...base.dns, type: 'AAAA' } }),
      DnsDiscovery.keyOf('orders', { ...base, dns: { ...base.dns, port: 8081 } }),
      DnsDiscovery.keyOf('orders', { ...base, server: '127.0.0.1:53' }),
      DnsDiscovery.keyOf('orders', { ...base, minRefreshMs: 2_000 }),
      DnsDiscovery.keyOf('orders', { ...base, maxRefreshMs: 30_000 }),
    ]) {
      expect(other).not.toBe(key);
    }
  });

  it('StaticDiscovery still works behind the extended interface', async () => {
    const targets = [t('http://10.0.0.1:80')];
    const provider = new StaticDiscovery(targets);
    provider.start();
    await provider.ready();
    expect(provider.current()).toBe(targets);
    provider.onChange(() => {})();
    provider.stop();
  });
});
