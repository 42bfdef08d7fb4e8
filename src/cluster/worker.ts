// One worker process of a `workers: N` gateway: the same Gateway as a single process, serving the
// listeners node:cluster shares with its siblings, without the admin listener (the primary serves
// it) and without its own signal-driven reloads (the primary stages and commits every reload in
// all workers, so they all serve the same snapshot or none changes).

import { loadGatewayConfig } from '../config/load.js';
import { ConfigError, formatConfigIssue } from '../errors.js';
import { Gateway } from '../gateway.js';
import type { StagedReload } from '../snapshot/reloader.js';
import { type FromWorker, isGatewayMessage, type ToWorker, type WorkerCall } from './messages.js';

function send(message: FromWorker): void {
  process.send?.(message);
}

/** Runs until SIGTERM/SIGINT has drained the worker; resolves with the exit code. */
export async function runWorker(configFile: string): Promise<number> {
  const config = await loadGatewayConfig(configFile);
  const gateway = new Gateway({ config, role: 'worker' });
  let staged: StagedReload | null = null;

  const answer = async (call: WorkerCall): Promise<unknown> => {
    switch (call.op) {
      case 'stage': {
        staged?.abort();
        staged = await gateway.stageRoutes(call.text);
        return staged.version === null ? { errors: staged.errors ?? [] } : { version: staged.version };
      }
      case 'commit': {
        const pending = staged;
        staged = null;
        if (pending === null) throw new Error('nothing staged to commit');
        const result = pending.commit();
        await gateway.reloadCertificates();
        return result;
      }
      case 'abort':
        staged?.abort();
        staged = null;
        return null;
      case 'upstreams':
        return gateway.upstreamsReport();
      case 'config':
        return gateway.configReport();
      case 'metrics':
        return gateway.metrics.registry.getMetricsAsJSON();
      case 'readiness':
        return gateway.readiness();
    }
  };

  const started = new Promise<void>((resolve, reject) => {
    process.on('message', (message: unknown) => {
      if (!isGatewayMessage<ToWorker>(message)) return;
      const m = message;
      if (m.gw === 'init') {
        gateway.start({ routesText: m.routesText }).then(resolve, reject);
        return;
      }
      answer(m.call).then(
        (value) => send({ gw: 'reply', id: m.id, ok: true, value }),
        (err: unknown) => send({ gw: 'reply', id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
      );
    });
  });

  send({ gw: 'hello' });

  // The primary owns SIGHUP; a worker that got one (kill -HUP to the process group) must not die
  // of the default action.
  process.on('SIGHUP', () => undefined);

  try {
    await started;
  } catch (err) {
    const message = err instanceof ConfigError ? err.issues.map(formatConfigIssue).join('; ') : err instanceof Error ? err.message : String(err);
    send({ gw: 'start_failed', message });
    return 1;
  }
  send({ gw: 'started', listeners: gateway.addresses(), version: gateway.holder.current?.version ?? null });

  return new Promise<number>((resolve) => {
    const shutdown = (): void => {
      gateway.stop().then(() => resolve(0), (err: unknown) => {
        gateway.log.error({ err }, 'error while draining');
        resolve(1);
      });
    };
    process.once('SIGTERM', shutdown);
    process.once('SIGINT', shutdown);
    // A worker whose primary died (the IPC channel closed) must not serve on alone.
    process.once('disconnect', shutdown);
  });
}
