// GET /upstreams of a multi-worker gateway: one view of every pool, built from each worker's own.
// Passive outlier state is per worker (each sees only its own requests), so where workers disagree
// about an endpoint the endpoint lists each worker's view under `workers`; in-flight requests are
// summed, latency averaged.

type Json = Record<string, unknown>;

/** The fields that make up an endpoint's state; a difference in any is shown per worker. */
const STATE_FIELDS = ['state', 'ejections', 'ejectedUntil', 'lastEjection'] as const;

export interface WorkerUpstreams {
  readonly pid: number;
  readonly report: { readonly upstreams: readonly unknown[] };
}

export function mergeUpstreams(reports: readonly WorkerUpstreams[]): object {
  const pools = new Map<string, { pool: Json; endpoints: Map<string, { pid: number; endpoint: Json }[]>; panic: boolean }>();
  for (const { pid, report } of reports) {
    for (const raw of report.upstreams) {
      const pool = raw as Json;
      const name = String(pool.name);
      let entry = pools.get(name);
      if (entry === undefined) {
        entry = { pool, endpoints: new Map(), panic: false };
        pools.set(name, entry);
      }
      entry.panic ||= pool.panic === true;
      for (const rawEndpoint of (pool.endpoints as unknown[] | undefined) ?? []) {
        const endpoint = rawEndpoint as Json;
        const key = `${String(endpoint.address)} ${String(endpoint.url)}`;
        const views = entry.endpoints.get(key) ?? [];
        views.push({ pid, endpoint });
        entry.endpoints.set(key, views);
      }
    }
  }
  const upstreams = [...pools.values()].map(({ pool, endpoints, panic }) => ({
    ...pool,
    panic,
    endpoints: [...endpoints.values()].map(mergeEndpoint),
  }));
  return { upstreams, workers: reports.length };
}

function mergeEndpoint(views: readonly { pid: number; endpoint: Json }[]): Json {
  const first = views[0]!.endpoint;
  const inFlight = views.reduce((sum, v) => sum + Number(v.endpoint.inFlight ?? 0), 0);
  const latencies = views.map((v) => v.endpoint.latencyEwmaMs).filter((l): l is number => typeof l === 'number');
  const merged: Json = {
    ...first,
    inFlight,
    latencyEwmaMs: latencies.length === 0 ? null : latencies.reduce((a, b) => a + b, 0) / latencies.length,
  };
  const differs = views.some((v) => STATE_FIELDS.some((f) => JSON.stringify(v.endpoint[f]) !== JSON.stringify(first[f])));
  if (differs) {
    // The worst state leads (an endpoint ejected anywhere is worth seeing), each worker's follows.
    const order = ['ejected', 'unhealthy', 'draining', 'healthy'];
    const worst = [...views].sort((a, b) => order.indexOf(String(a.endpoint.state)) - order.indexOf(String(b.endpoint.state)))[0]!.endpoint;
    for (const f of STATE_FIELDS) merged[f] = worst[f];
    merged.workers = views.map((v) => ({ pid: v.pid, ...Object.fromEntries(STATE_FIELDS.map((f) => [f, v.endpoint[f]])) }));
  }
  return merged;
}
