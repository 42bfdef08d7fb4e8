import Fastify, { type FastifyInstance } from 'fastify';
import type { ConfigIssue } from '../errors.js';
import type { SnapshotHolder } from '../snapshot/holder.js';
import type { ReloadResult } from '../snapshot/reloader.js';
import type { Endpoint } from '../upstream/endpoint.js';
import type { GatewayMetrics } from './metrics.js';
import { configDump, upstreamsDump } from './dumps.js';

export interface AdminDeps {
  readonly holder: SnapshotHolder;
  readonly metrics: GatewayMetrics;
  readonly reload: () => Promise<ReloadResult>;
  readonly isDraining: () => boolean;
  /** False while a dependency the gateway cannot serve without is missing (Redis with failureMode closed). */
  readonly dependenciesReady?: () => boolean;
  /** Endpoints no longer listed that are still finishing requests. */
  readonly drainingEndpoints: () => readonly Endpoint[];
}

/**
 * The admin listener (SPEC §5). A separate server so it can stay up during a drain and never be
 * reachable through a public listener's routes.
 */
export function createAdminServer(deps: AdminDeps): FastifyInstance {
  const app = Fastify({ logger: false, exposeHeadRoutes: true });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const loaded = deps.holder.current !== null;
    const draining = deps.isDraining();
    const dependencies = deps.dependenciesReady?.() ?? true;
    const ready = loaded && !draining && dependencies;
    reply.code(ready ? 200 : 503);
    return { status: ready ? 'ready' : draining ? 'draining' : !loaded ? 'loading' : 'ratelimit_store_unavailable' };
  });

  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });

  app.get('/config', async (_request, reply) => {
    const snapshot = deps.holder.current;
    if (snapshot === null) {
      reply.code(503);
      return { error: 'no configuration loaded' };
    }
    return configDump(snapshot);
  });

  app.get('/upstreams', async () => upstreamsDump(deps.holder.current, deps.drainingEndpoints()));

  app.post('/reload', async (_request, reply) => {
    const result = await deps.reload();
    if (result.result === 'success') return { result: 'success', version: result.version, changed: result.changed };
    reply.code(422);
    return { result: 'failure', errors: result.errors.map(issueJson) };
  });

  return app;
}

function issueJson(issue: ConfigIssue): ConfigIssue {
  return { file: issue.file, line: issue.line, col: issue.col, path: issue.path, message: issue.message };
}
