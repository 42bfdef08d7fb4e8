import { rm } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { configDump } from '../../src/admin/dumps.js';
import { loadConfig } from '../../src/config/load.js';
import { compileSnapshot } from '../../src/snapshot/compile.js';
import { EndpointRegistry } from '../../src/upstream/registry.js';
import { gatewayYaml, simpleRoutes, writeConfig } from '../helpers/gateway.js';

describe('GET /config dump', () => {
  it('redacts passwords in Redis URLs and keeps everything else', async () => {
    const files = await writeConfig(gatewayYaml(), simpleRoutes(['http://127.0.0.1:9']));
    const registry = new EndpointRegistry();
    try {
      const { gateway, routes } = await loadConfig(files.gatewayFile);
      // The loader refuses a redis block in this version; the dump must still never leak one.
      const withRedis = {
        ...gateway,
        redis: { url: 'redis://app:hunter2@10.0.0.5:6379/0', cluster: ['redis://:s3cret@h1:7000'], keyPrefix: 'gw:', commandTimeoutMs: 100, failureMode: 'local' as const },
      };
      const snapshot = compileSnapshot(withRedis, routes, 'abc123def456', registry);
      const dump = JSON.stringify(configDump(snapshot));
      expect(dump).not.toContain('hunter2');
      expect(dump).not.toContain('s3cret');
      expect(dump).toContain('redis://app:***@10.0.0.5:6379/0');
      expect(JSON.parse(dump)).toMatchObject({ version: 'abc123def456', routes: [{ name: 'main' }], upstreams: [{ name: 'pool' }] });
    } finally {
      await registry.closeAll();
      await rm(files.dir, { recursive: true, force: true });
    }
  });
});
