// What an integration test runs against — a gateway, upstream servers, a DNS server — started
// through one fixture that stops all of it after each test, and a typed reader of the gateway's
// GET /upstreams (SPEC §5) to look at its pools.
import type { Logger } from 'pino';
import { request } from 'undici';
import { afterEach } from 'vitest';
import type { EjectionReason, EndpointState } from '../../src/upstream/endpoint.js';
import { TestDnsServer } from './dns.js';
import { type RunningGateway, simpleRoutes, startGateway } from './gateway.js';
import { echo, TestUpstream, type UpstreamBehaviour } from './upstream.js';

/** `N` copies of `T` as a tuple when N is a literal, so `const [a, b] = await bed.upstreams(2)` types. */
type Tuple<T, N extends number, Acc extends T[] = []> = number extends N ? T[] : Acc['length'] extends N ? Acc : Tuple<T, N, [...Acc, T]>;

export interface Testbed {
  /** Starts a gateway (as startGateway); stopped after the test unless the test stops it first. */
  gateway(routes: Record<string, unknown> | string, gatewayOverrides?: Record<string, unknown>, logger?: Logger): Promise<RunningGateway>;
  /**
   * Starts a gateway with one upstream `pool` over `targets` (servers or URLs) configured by
   * `upstream`, and one route `main` on `/` to it (simpleRoutes).
   */
  gatewayOver(targets: readonly (TestUpstream | string)[], upstream?: Record<string, unknown>, logger?: Logger): Promise<RunningGateway>;
  /** Starts `n` upstream servers, all with `behaviour`. */
  upstreams<N extends number>(n: N, behaviour?: UpstreamBehaviour): Promise<Tuple<TestUpstream, N>>;
  /** Starts one upstream server. */
  upstream(behaviour?: UpstreamBehaviour, options?: { consumeBody?: boolean }): Promise<TestUpstream>;
  /** Starts an in-process DNS server. */
  dns(): Promise<TestDnsServer>;
}

/**
 * Call inside a `describe`: registers an afterEach that stops, in this order, the gateways, the DNS
 * servers and then the upstream servers the test started through the returned testbed.
 */
export function useTestbed(): Testbed {
  const gateways = new Set<RunningGateway>();
  const dnsServers: TestDnsServer[] = [];
  const upstreams: TestUpstream[] = [];

  afterEach(async () => {
    const running = [...gateways];
    gateways.clear();
    const servers = dnsServers.splice(0);
    const ups = upstreams.splice(0);
    for (const gw of running) await gw.stop();
    for (const dns of servers) await dns.close();
    await Promise.all(ups.map((u) => u.stop()));
  });

  const bed: Testbed = {
    async gateway(routes, gatewayOverrides = {}, logger) {
      const running = await startGateway(routes, gatewayOverrides, logger);
      const owned: RunningGateway = {
        ...running,
        async stop() {
          gateways.delete(owned);
          await running.stop();
        },
      };
      gateways.add(owned);
      return owned;
    },
    gatewayOver(targets, upstream = {}, logger) {
      return bed.gateway(simpleRoutes(targets.map((t) => (typeof t === 'string' ? t : t.url)), {}, upstream), {}, logger);
    },
    async upstreams<N extends number>(n: N, behaviour: UpstreamBehaviour = echo) {
      const started = await Promise.all(Array.from({ length: n }, () => bed.upstream(behaviour)));
      return started as Tuple<TestUpstream, N>;
    },
    async upstream(behaviour = echo, options = {}) {
      const upstream = new TestUpstream(behaviour, options);
      upstreams.push(upstream);
      return upstream.start();
    },
    async dns() {
      const server = await TestDnsServer.start();
      dnsServers.push(server);
      return server;
    },
  };
  return bed;
}

// GET /upstreams, typed (SPEC §5).

export interface EjectionView {
  reason: EjectionReason;
  detail: string;
  at: string;
  /** null for an active health check ejection: it lasts until checks pass. */
  durationMs: number | null;
  number: number;
}

export interface EndpointView {
  address: string;
  url: string;
  weight: number;
  state: EndpointState;
  ejections: number;
  ejectedUntil: string | null;
  lastEjection: EjectionView | null;
  lastCheck: string | null;
  inFlight: number;
  latencyEwmaMs: number;
}

export interface PoolView {
  name: string;
  balancer: string;
  panic: boolean;
  endpoints: EndpointView[];
}

/** Every pool, as GET /upstreams on the admin listener shows it. */
export async function upstreamsView(gw: RunningGateway): Promise<PoolView[]> {
  const res = await request(`${gw.adminUrl}/upstreams`);
  if (res.statusCode !== 200) throw new Error(`GET /upstreams: ${res.statusCode} ${await res.body.text()}`);
  return ((await res.body.json()) as { upstreams: PoolView[] }).upstreams;
}

/** The pool named `name`, or the only pool when no name is given. */
export async function poolView(gw: RunningGateway, name?: string): Promise<PoolView> {
  const pools = await upstreamsView(gw);
  const pool = name === undefined ? (pools.length === 1 ? pools[0] : undefined) : pools.find((p) => p.name === name);
  if (pool === undefined) throw new Error(`no ${name === undefined ? 'single pool' : `pool ${name}`} in ${JSON.stringify(pools)}`);
  return pool;
}

/** The endpoint `address` (host:port) of the pool named `pool`, or of the only pool. */
export async function endpointView(gw: RunningGateway, address: string, pool?: string): Promise<EndpointView> {
  const view = await poolView(gw, pool);
  const endpoint = view.endpoints.find((e) => e.address === address);
  if (endpoint === undefined) throw new Error(`no endpoint ${address} in ${JSON.stringify(view)}`);
  return endpoint;
}
