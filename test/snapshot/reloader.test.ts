import { rm } from 'node:fs/promises';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { GatewayMetrics } from '../../src/admin/metrics.js';
import { loadGatewayConfig } from '../../src/config/load.js';
import { SnapshotHolder } from '../../src/snapshot/holder.js';
import { Reloader } from '../../src/snapshot/reloader.js';
import { EndpointRegistry } from '../../src/upstream/registry.js';
import { type TestGatewayFiles, gatewayYaml, simpleRoutes, writeConfig, writeRoutes } from '../helpers/gateway.js';

const A = 'http://127.0.0.1:9001';
const B = 'http://127.0.0.1:9002';
const C = 'http://127.0.0.1:9003';

describe('Reloader', () => {
  let files: TestGatewayFiles;
  let registry: EndpointRegistry;

  afterEach(async () => {
    await registry.closeAll();
    await rm(files.dir, { recursive: true, force: true });
  });

  async function setup(urls: string[]): Promise<{ reloader: Reloader; holder: SnapshotHolder; metrics: GatewayMetrics }> {
    files = await writeConfig(gatewayYaml(), simpleRoutes(urls));
    const gateway = await loadGatewayConfig(files.gatewayFile);
    const holder = new SnapshotHolder();
    registry = new EndpointRegistry();
    const metrics = new GatewayMetrics({ endpointStates: () => [], panicStates: () => [] });
    const reloader = new Reloader({ gateway, holder, registry, metrics, log: pino({ level: 'silent' }) });
    const first = await reloader.reload();
    expect(first.result).toBe('success');
    return { reloader, holder, metrics };
  }

  it('keeps the same Endpoint objects (connections, counters) for endpoints that survive', async () => {
    const { reloader, holder } = await setup([A, B]);
    const before = holder.current!.pools.get('pool')!.members.map((m) => m.endpoint);
    before[0]!.latencyEwmaMs = 7;
    await writeRoutes(files, simpleRoutes([A, B, C], {}, { balancer: 'round-robin' }));
    expect((await reloader.reload()).result).toBe('success');
    const after = holder.current!.pools.get('pool')!.members.map((m) => m.endpoint);
    expect(after[0]).toBe(before[0]);
    expect(after[1]).toBe(before[1]);
    expect(after[0]!.latencyEwmaMs).toBe(7);
    expect(after).toHaveLength(3);
  });

  it('closes a dropped endpoint only after the last request on the old snapshot finished', async () => {
    const { reloader, holder } = await setup([A, B]);
    const old = holder.current!;
    const dropped = old.pools.get('pool')!.members[1]!.endpoint;
    old.acquire(); // a request still running on the old snapshot
    await writeRoutes(files, simpleRoutes([A]));
    await reloader.reload();
    expect(holder.current).not.toBe(old);
    expect(dropped.state).toBe('draining');
    expect(dropped.dispatcher.closed).toBe(false);
    old.release();
    await new Promise((r) => setImmediate(r));
    expect(dropped.dispatcher.closed).toBe(true);
  });

  it('coalesces a burst of reloads into at most one follow-up run', async () => {
    const { reloader, metrics } = await setup([A]);
    await writeRoutes(files, simpleRoutes([B]));
    const results = await Promise.all(Array.from({ length: 10 }, () => reloader.reload()));
    expect(results.every((r) => r.result === 'success')).toBe(true);
    const runs = (await metrics.configReloads.get()).values.find((v) => v.labels.result === 'success')!.value;
    expect(runs).toBeLessThanOrEqual(3); // the first load, the burst's run, and one follow-up
  });

  it('skips the swap when the file means the same, and keeps the old snapshot on failure', async () => {
    const { reloader, holder, metrics } = await setup([A]);
    const first = holder.current;
    await writeRoutes(files, `# only a comment changed\n${JSON.stringify(simpleRoutes([A]))}`);
    expect(await reloader.reload()).toMatchObject({ result: 'success', changed: false });
    expect(holder.current).toBe(first);

    await writeRoutes(files, 'routes: [ {');
    const failed = await reloader.reload();
    expect(failed.result).toBe('failure');
    expect(holder.current).toBe(first);
    const failures = (await metrics.configReloads.get()).values.find((v) => v.labels.result === 'failure')!.value;
    expect(failures).toBe(1);
  });
});
