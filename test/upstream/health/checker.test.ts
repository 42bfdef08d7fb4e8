import { afterEach, describe, expect, it } from 'vitest';
import { Endpoint } from '../../../src/upstream/endpoint.js';
import { NULL_HEALTH_CHECKER } from '../../../src/upstream/health/checker.js';
import { PoolMember } from '../../../src/upstream/member.js';

describe('NULL_HEALTH_CHECKER', () => {
  const endpoints: Endpoint[] = [];
  afterEach(async () => {
    await Promise.all(endpoints.splice(0).map((e) => e.close()));
  });

  function member(port: number): PoolMember {
    const url = `http://127.0.0.1:${port}`;
    const e = new Endpoint('svc', url, `svc|${url}`, { connectTimeoutMs: 1000, maxConnections: 4, keepAliveTimeoutMs: 1000 });
    endpoints.push(e);
    return new PoolMember(e, 1);
  }

  it('returns endpoints a previous checker left unhealthy (healthCheck removed by a reload)', () => {
    const [a, b] = [member(9101), member(9102)];
    Object.assign(a!.endpoint.active, { healthy: false, failuresInRow: 3, lastResult: 'status 500' });
    b!.endpoint.passive.ejectedUntil = Date.now() + 60_000;
    let changes = 0;
    NULL_HEALTH_CHECKER.start([a!, b!], () => changes++);
    expect(changes).toBe(1);
    expect(a!.endpoint.active).toEqual({ healthy: true, passesInRow: 0, failuresInRow: 0, lastResult: null });
    expect(a!.endpoint.state).toBe('healthy');
    expect(b!.endpoint.state).toBe('ejected'); // passive ejections belong to the outlier detector
  });

  it('calls nothing back when nothing changed', () => {
    let changes = 0;
    NULL_HEALTH_CHECKER.start([member(9103)], () => changes++);
    NULL_HEALTH_CHECKER.update([member(9104)]);
    NULL_HEALTH_CHECKER.stop();
    expect(changes).toBe(0);
  });
});
