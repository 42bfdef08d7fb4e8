import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';

// The example in config/ is what `npm start` runs and what operators copy: it must stay valid and
// show the demo topology the README describes.
const gatewayFile = fileURLToPath(new URL('../../config/gateway.yaml', import.meta.url));
const routesFile = fileURLToPath(new URL('../../config/routes.yaml', import.meta.url));

describe('the shipped config/ files', () => {
  it('are valid for this version', async () => {
    const { gateway, routes } = await loadConfig(gatewayFile, {});
    expect(gateway.routesFile).toBe(routesFile);
    expect(gateway.listeners.map((l) => `${l.address}:${l.port}`)).toEqual(['0.0.0.0:8080']);
    expect(gateway.admin).toEqual({ address: '127.0.0.1', port: 9901 });
    expect(routes.routes.length).toBeGreaterThanOrEqual(3);
  });

  it('route the demo upstreams as documented', async () => {
    const { routes } = await loadConfig(gatewayFile, {});
    const pools = Object.fromEntries(routes.upstreams.map((u) => [u.name, u]));
    expect(pools['users']?.targets).toEqual([
      { url: 'http://127.0.0.1:9001', weight: 2 },
      { url: 'http://127.0.0.1:9002', weight: 1 },
    ]);
    expect(pools['users']?.balancer).toBe('least-request');
    expect(pools['orders']?.targets).toEqual([{ url: 'http://127.0.0.1:9003', weight: 1 }]);
    const byName = Object.fromEntries(routes.routes.map((r) => [r.name, r]));
    expect(byName['users-api']).toMatchObject({ prefix: '/api/users', upstream: 'users', stripPrefix: true });
    expect(byName['orders-api']).toMatchObject({ prefix: '/api/orders', upstream: 'orders', rewritePrefix: '/v1/orders' });
    expect(routes.routes.find((r) => r.prefix === '/')?.upstream).toBe('users');
  });

  it('name their JSON Schema on the first line, for editors', () => {
    expect(readFileSync(gatewayFile, 'utf8').split('\n')[0]).toBe('# yaml-language-server: $schema=./schema/gateway.schema.json');
    expect(readFileSync(routesFile, 'utf8').split('\n')[0]).toBe('# yaml-language-server: $schema=./schema/routes.schema.json');
  });
});
