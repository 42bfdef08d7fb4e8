#!/usr/bin/env node
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { Primary } from '../cluster/primary.js';
import { runWorker } from '../cluster/worker.js';
import type { GatewayConfig } from '../config/types.js';
import { loadGatewayConfig } from '../config/load.js';
import { ConfigError, GatewayError, formatConfigIssue } from '../errors.js';
import { Gateway } from '../gateway.js';
import { createLogger } from '../logging.js';
import { runExplain } from './explain.js';
import { runValidate } from './validate.js';
import { watchConfigFile } from './watch.js';

const USAGE = `usage:
  gateway [--config FILE] [--watch]          run the gateway (GATEWAY_CONFIG is the same as --config)
  gateway validate --config FILE             check gateway and routes files, like nginx -t
  gateway explain --config FILE METHOD URL [-H 'name: value']... [--claim name=value]...
                                             show what the gateway would do with a request`;

const stdio = {
  stdout: (line: string): void => void process.stdout.write(`${line}\n`),
  stderr: (line: string): void => void process.stderr.write(`${line}\n`),
};

async function main(argv: readonly string[]): Promise<number> {
  const command = argv[0] === 'validate' || argv[0] === 'explain' ? argv[0] : 'run';
  const rest = command === 'run' ? argv : argv.slice(1);
  const { values, positionals } = parseArgs({
    args: [...rest],
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      watch: { type: 'boolean', default: false },
      header: { type: 'string', short: 'H', multiple: true },
      claim: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    stdio.stdout(USAGE);
    return 0;
  }
  const configFile = values.config ?? process.env.GATEWAY_CONFIG ?? 'config/gateway.yaml';

  if (command === 'validate') return runValidate(configFile, stdio);
  if (command === 'explain') {
    const [method, url] = positionals;
    if (method === undefined || url === undefined) throw new GatewayError('GW_ERR_CLI_USAGE', [USAGE]);
    return runExplain({ configFile, method, url, headers: values.header ?? [], claims: values.claim ?? [] }, stdio);
  }
  if (positionals.length > 0) throw new GatewayError('GW_ERR_CLI_USAGE', [USAGE]);
  return run(configFile, values.watch === true);
}

async function run(configFile: string, watchRoutes: boolean): Promise<number> {
  // A forked worker of a `workers: N` gateway: the primary drives it (src/cluster/worker.ts).
  if (cluster.isWorker) return runWorker(configFile);
  const config = await loadGatewayConfig(configFile);
  const workers = config.workers === 'auto' ? availableParallelism() : config.workers;
  if (workers > 1) return runPrimary(configFile, config, workers, watchRoutes);
  const gateway = new Gateway({ config });
  await gateway.start();

  const reload = (reason: string): void => {
    gateway.log.info({ event: 'reload_requested', reason }, `reload requested by ${reason}`);
    void gateway.reload();
  };
  process.on('SIGHUP', () => reload('SIGHUP'));
  const stopWatching = watchRoutes ? watchConfigFile(config.routesFile, () => reload('file change')) : null;

  return new Promise<number>((resolve) => {
    const shutdown = (signal: string): void => {
      gateway.log.info({ event: 'shutdown_requested', signal }, `${signal}: draining`);
      stopWatching?.();
      gateway.stop().then(() => resolve(0), (err: unknown) => {
        gateway.log.error({ err }, 'error while draining');
        resolve(1);
      });
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
}

/** `workers: N` (N > 1): this process forks and supervises N workers and serves the admin listener. */
async function runPrimary(configFile: string, config: GatewayConfig, workers: number, watchRoutes: boolean): Promise<number> {
  const log = createLogger(config.log.level, { pid: process.pid, role: 'primary' });
  const primary = new Primary({ configFile, config, workers, log });
  await primary.start();
  process.on('SIGHUP', () => void primary.reload('SIGHUP'));
  const stopWatching = watchRoutes ? watchConfigFile(config.routesFile, () => void primary.reload('file change')) : null;
  return new Promise<number>((resolve) => {
    const shutdown = (signal: string): void => {
      log.info({ event: 'shutdown_requested', signal }, `${signal}: draining`);
      stopWatching?.();
      primary.stop().then(() => resolve(0), (err: unknown) => {
        log.error({ err }, 'error while draining');
        resolve(1);
      });
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Lingering keep-alive sockets or timers must not keep a stopped gateway alive.
    setTimeout(() => process.exit(code), 100).unref();
  },
  (err: unknown) => {
    if (err instanceof ConfigError) for (const issue of err.issues) stdio.stderr(formatConfigIssue(issue));
    else if (err instanceof GatewayError) stdio.stderr(`gateway: ${err.message}`);
    else stdio.stderr(`gateway: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    process.exitCode = err instanceof GatewayError && err.code === 'GW_ERR_CLI_USAGE' ? 2 : 1;
  },
);
