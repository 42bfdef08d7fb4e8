import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import type { UpstreamPool } from '../../src/upstream/pool.js';
import type { TestDnsServer } from '../helpers/dns.js';
import { writeRoutes } from '../helpers/gateway.js';
import { metricValue } from '../helpers/metrics.js';
import { poolView, useTestbed } from '../helpers/testbed.js';
import type { TestUpstream } from '../helpers/upstream.js';
import { until } from '../helpers/wait.js';

// DNS discovery end to end: a real DNS server in-process whose answers change under a steady load.

const SERVICE = '_http._tcp.orders.test';

function srvRoutes(dns: TestDnsServer, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    upstreams: {
      orders: {
        discovery: { dns: { name: SERVICE, type: 'SRV' }, server: dns.address, minRefresh: '100ms', maxRefresh: '10s' },
        balancer: 'round-robin',
        ...extra,
      },
    },
    routes: [{ name: 'orders', prefix: '/', upstream: 'orders' }],
  };
}

function answer(dns: TestDnsServer, ups: readonly TestUpstream[], ttl = 0): void {
  dns.setSRV(SERVICE, ups.map((u) => ({ priority: 10, weight: 1, port: u.port, target: 'hosts.orders.test' })), ttl);
  dns.setA('hosts.orders.test', ['127.0.0.1'], ttl);
}

/** Keeps `concurrency` requests in flight until stopped; records every status. */
class SteadyLoad {
  readonly statuses: number[] = [];
  #running = true;
  readonly #workers: Promise<void>[];

  constructor(url: string, concurrency: number) {
    this.#workers = Array.from({ length: concurrency }, async () => {
      while (this.#running) {
        try {
          const res = await request(url);
          await res.body.dump();
          this.statuses.push(res.statusCode);
        } catch {
          this.statuses.push(0);
        }
      }
    });
  }

  async stop(): Promise<number[]> {
    this.#running = false;
    await Promise.all(this.#workers);
    return this.statuses;
  }
}

describe('DNS discovery', () => {
  const bed = useTestbed();

  it('follows SRV answer changes within minRefresh + 1 s, with no failed request under steady load', async () => {
    const [a, b, c] = await bed.upstreams(3);
    const dns = await bed.dns();
    answer(dns, [a, b]);
    const gw = await bed.gateway(srvRoutes(dns));
    const pool = (): UpstreamPool => gw.gateway.holder.current!.pools.get('orders')!;
    expect(pool().members.map((m) => m.address).sort()).toEqual([a.address, b.address].sort());
    const survivor = pool().members.find((m) => m.address === b.address)!.endpoint;

    const load = new SteadyLoad(`${gw.url}/orders`, 4);
    await until('traffic on a and b', () => a.seen.length > 5 && b.seen.length > 5, 5000);

    answer(dns, [a, b, c]); // added
    const addedAt = performance.now();
    await until('traffic on the added endpoint', () => c.seen.length > 0, 1100 + 100);
    const added = performance.now() - addedAt;
    answer(dns, [b, c]); // a removed
    await until('a out of the pool', () => !pool().members.some((m) => m.address === a.address), 1200);
    const aAfterRemoval = a.seen.length;
    await until('more traffic on b and c', () => b.seen.length > 20 && c.seen.length > 20, 5000);
    const statuses = await load.stop();

    expect(added).toBeLessThan(1200);
    expect(a.seen.length).toBeLessThanOrEqual(aAfterRemoval + 4); // at most what was in flight
    expect(statuses.length).toBeGreaterThan(50);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // b survived both changes as the same endpoint: same connections, counters and state.
    expect(pool().members.find((m) => m.address === b.address)!.endpoint).toBe(survivor);

    expect((await poolView(gw)).endpoints.map((e) => e.address).sort()).toEqual([b.address, c.address].sort());
  });

  it('keeps the last good endpoints when DNS fails or answers empty, and counts the failures', async () => {
    const ups = await bed.upstreams(2);
    const dns = await bed.dns();
    answer(dns, ups);
    const gw = await bed.gateway(srvRoutes(dns));
    for (const behaviour of ['servfail', 'empty', 'nxdomain', 'timeout'] as const) {
      dns.behaviour = behaviour;
      const failuresBefore = await metricValue(gw.gateway, 'gateway_discovery_resolutions_total', { upstream: 'orders', result: 'failure' });
      const load = new SteadyLoad(`${gw.url}/x`, 2);
      await until(`${behaviour} to be seen`, async () =>
        (await metricValue(gw.gateway, 'gateway_discovery_resolutions_total', { upstream: 'orders', result: 'failure' })) > failuresBefore, 8000);
      const statuses = await load.stop();
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      expect(gw.gateway.holder.current!.pools.get('orders')!.members).toHaveLength(2);
    }
    dns.behaviour = 'answer';
    const successes = await metricValue(gw.gateway, 'gateway_discovery_resolutions_total', { upstream: 'orders', result: 'success' });
    await until('recovery', async () =>
      (await metricValue(gw.gateway, 'gateway_discovery_resolutions_total', { upstream: 'orders', result: 'success' })) > successes, 8000);
  });

  it('resolves A records on the configured port', async () => {
    const upstream = await bed.upstream();
    const dns = await bed.dns();
    dns.setA('api.orders.test', ['127.0.0.1'], 30);
    const gw = await bed.gateway({
      upstreams: { orders: { discovery: { dns: { name: 'api.orders.test', type: 'A', port: upstream.port }, server: dns.address } } },
      routes: [{ name: 'orders', prefix: '/', upstream: 'orders' }],
    });
    const res = await request(`${gw.url}/a`);
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    expect(upstream.seen).toHaveLength(1);
  });

  it('lets a request in flight on a removed endpoint finish', async () => {
    const ups = await bed.upstreams(2, (_req, res) => setTimeout(() => res.end('done'), 400));
    const dns = await bed.dns();
    answer(dns, ups);
    const gw = await bed.gateway(srvRoutes(dns, { retries: { attempts: 0 } }));
    const inFlight = Promise.all([0, 1].map(async () => {
      const res = await request(`${gw.url}/slow`);
      return { status: res.statusCode, body: await res.body.text() };
    }));
    await until('both requests upstream', () => ups[0].seen.length + ups[1].seen.length === 2, 2000);
    answer(dns, [ups[1]]);
    const removedAt = performance.now();
    await until('the removed endpoint shown draining', async () =>
      (await poolView(gw)).endpoints.some((e) => e.address === ups[0].address && e.state === 'draining'), 2000);
    expect(performance.now() - removedAt).toBeLessThan(2000);
    expect(await metricValue(gw.gateway, 'gateway_upstream_endpoints', { upstream: 'orders', state: 'draining' })).toBe(1);
    const results = await inFlight;
    expect(results).toEqual([{ status: 200, body: 'done' }, { status: 200, body: 'done' }]);
    await until('the removed endpoint closed and gone', async () =>
      (await metricValue(gw.gateway, 'gateway_upstream_endpoints', { upstream: 'orders', state: 'draining' })) === 0, 2000);
  });

  it('keeps a pool discovered across a reload: the new snapshot starts with the known endpoints', async () => {
    const ups = await bed.upstreams(2);
    const dns = await bed.dns();
    answer(dns, ups, 3600); // nothing re-resolves during the test
    const gw = await bed.gateway(srvRoutes(dns));
    const queries = dns.queriesFor(SERVICE, 'SRV').length;
    await writeRoutes(gw.files, srvRoutes(dns, { balancer: 'least-request' }));
    expect((await gw.gateway.reload()).result).toBe('success');
    expect(gw.gateway.holder.current!.pools.get('orders')!.members).toHaveLength(2);
    expect(dns.queriesFor(SERVICE, 'SRV')).toHaveLength(queries);
  });
});
