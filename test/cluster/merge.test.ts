import { describe, expect, it } from 'vitest';
import { mergeUpstreams } from '../../src/cluster/merge.js';

// GET /upstreams of a multi-worker gateway: each worker reports its own pools (passive outlier
// state is per worker); the primary lists each endpoint once and shows per worker where they differ.

function endpoint(address: string, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    address, url: `http://${address}`, weight: 1, state: 'healthy', ejections: 0, ejectedUntil: null,
    lastEjection: null, inFlight: 0, latencyEwmaMs: null, ...fields,
  };
}

function report(endpoints: Record<string, unknown>[], panic = false): { upstreams: unknown[] } {
  return { upstreams: [{ name: 'api', balancer: 'least-request', panic, endpoints }] };
}

describe('mergeUpstreams', () => {
  it('lists each endpoint once, sums in-flight requests and averages latency when the workers agree', () => {
    const merged = mergeUpstreams([
      { pid: 11, report: report([endpoint('10.0.0.1:80', { inFlight: 2, latencyEwmaMs: 4 }), endpoint('10.0.0.2:80')]) },
      { pid: 12, report: report([endpoint('10.0.0.1:80', { inFlight: 3, latencyEwmaMs: 6 }), endpoint('10.0.0.2:80')]) },
    ]) as { workers: number; upstreams: { name: string; endpoints: Record<string, unknown>[] }[] };
    expect(merged.workers).toBe(2);
    expect(merged.upstreams).toHaveLength(1);
    const [first, second] = merged.upstreams[0]!.endpoints;
    expect(first).toMatchObject({ address: '10.0.0.1:80', state: 'healthy', inFlight: 5, latencyEwmaMs: 5 });
    expect(first!.workers).toBeUndefined();
    expect(second).toMatchObject({ address: '10.0.0.2:80', inFlight: 0, latencyEwmaMs: null });
  });

  it('shows each worker\'s view where they disagree, leading with the worst state, and panic if any worker panics', () => {
    const ejection = { reason: 'consecutive_5xx', detail: '5 consecutive 500', at: '2026-11-23T01:00:00.000Z', durationMs: 30_000 };
    const merged = mergeUpstreams([
      { pid: 11, report: report([endpoint('10.0.0.1:80')]) },
      { pid: 12, report: report([endpoint('10.0.0.1:80', { state: 'ejected', ejections: 1, ejectedUntil: '2026-11-23T01:00:30.000Z', lastEjection: ejection })], true) },
    ]) as { upstreams: { panic: boolean; endpoints: Record<string, unknown>[] }[] };
    const pool = merged.upstreams[0]!;
    expect(pool.panic).toBe(true);
    expect(pool.endpoints[0]).toMatchObject({ state: 'ejected', ejections: 1, lastEjection: ejection });
    expect(pool.endpoints[0]!.workers).toEqual([
      { pid: 11, state: 'healthy', ejections: 0, ejectedUntil: null, lastEjection: null },
      { pid: 12, state: 'ejected', ejections: 1, ejectedUntil: '2026-11-23T01:00:30.000Z', lastEjection: ejection },
    ]);
  });

  it('keeps an endpoint only one worker still lists (draining there)', () => {
    const merged = mergeUpstreams([
      { pid: 11, report: report([endpoint('10.0.0.1:80')]) },
      { pid: 12, report: report([endpoint('10.0.0.1:80'), endpoint('10.0.0.9:80', { state: 'draining', weight: 0 })]) },
    ]) as { upstreams: { endpoints: Record<string, unknown>[] }[] };
    expect(merged.upstreams[0]!.endpoints.map((e) => [e.address, e.state])).toEqual([['10.0.0.1:80', 'healthy'], ['10.0.0.9:80', 'draining']]);
  });
});
