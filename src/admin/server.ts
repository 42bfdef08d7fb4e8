import Fastify, { type FastifyInstance } from 'fastify';
import type { ConfigIssue } from '../errors.js';
import type { ReloadResult } from '../snapshot/reloader.js';
import type { StatusReport } from './status.js';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from './status-page.js';

/** GET /readyz: whether to send traffic here, and the word for why not. */
export interface Readiness {
  readonly ready: boolean;
  readonly status: string;
}

/**
 * Where the admin listener gets its answers: one gateway process, or the primary of several
 * worker processes (which asks them and combines their answers).
 */
export interface AdminDeps {
  readonly readiness: () => Readiness | Promise<Readiness>;
  /** The Prometheus text exposition. */
  readonly metrics: () => Promise<string>;
  /** GET /config; null before a configuration is loaded. */
  readonly config: () => object | null | Promise<object | null>;
  readonly upstreams: () => object | Promise<object>;
  readonly reload: () => Promise<ReloadResult>;
  /** The data behind the status page (GET /status); /status answers 404 without it. */
  readonly status?: () => Promise<StatusReport>;
}

const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * The admin listener (SPEC §5). A separate server so it can stay up during a drain and never be
 * reachable through a public listener's routes.
 */
export function createAdminServer(deps: AdminDeps): FastifyInstance {
  const app = Fastify({ logger: false, exposeHeadRoutes: true });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const readiness = await deps.readiness();
    reply.code(readiness.ready ? 200 : 503);
    return { status: readiness.status };
  });

  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', PROMETHEUS_CONTENT_TYPE);
    return deps.metrics();
  });

  app.get('/config', async (_request, reply) => {
    const config = await deps.config();
    if (config === null) {
      reply.code(503);
      return { error: 'no configuration loaded' };
    }
    return config;
  });

  app.get('/upstreams', async () => deps.upstreams());

  app.get('/', async (_request, reply) => {
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('content-security-policy', STATUS_PAGE_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer');
    return STATUS_PAGE_HTML;
  });

  app.get('/status', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    if (deps.status === undefined) {
      reply.code(404);
      return { error: 'status not available' };
    }
    return deps.status();
  });

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
