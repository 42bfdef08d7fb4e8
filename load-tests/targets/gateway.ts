// The real gateway, spawned from dist/ as operators run it (`gateway --config FILE`), in its own
// pinned process. A scenario is the routes file it is given: `routes(upstreams)` builds it from
// the round's upstream endpoints, so later scenarios (JWT route, rate-limited route, split route)
// are one more gatewayTarget({...}) in core.ts with their own routes, path and headers.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { GATEWAY_BUILD_DIRS, GATEWAY_MAIN } from '../harness/paths.js';
import { ManagedProcess, buildFingerprint, freePorts, waitForHttp } from '../harness/processes.js';
import { UPSTREAM_COUNT } from '../harness/runner.js';
import type { RoundContext, RunningTarget, Target } from '../harness/target.js';

/** The route of `npm run bench` (core.ts), shared by the scenarios that vary the gateway around it. */
export const CORE_ROUTE_DESCRIPTION = `one prefix route /api (stripPrefix) over a pool of ${UPSTREAM_COUNT} static endpoints, least-request, metrics on, access log off`;
export const CORE_PATH = '/api/items';

export function coreRoutes(upstreams: readonly string[]): Record<string, unknown> {
  return {
    upstreams: { pool: { targets: upstreams.map((url) => ({ url })), balancer: 'least-request' } },
    routes: [{ name: 'bench', prefix: '/api', upstream: 'pool', stripPrefix: true }],
  };
}

export interface GatewayScenario {
  readonly name: string;
  readonly description: string;
  /** routes.yaml content (as an object, dumped as YAML) over the round's upstream endpoints. */
  routes(upstreams: readonly string[]): Record<string, unknown>;
  /** The request path the load generator sends; it must reach an upstream and get its 200. */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Extra top-level gateway.yaml fields (e.g. `redis`); listeners, admin and log are set here. */
  readonly gatewayOverrides?: Record<string, unknown>;
  /** Files the routes refer to (e.g. a JWKS), written beside gateway.yaml: name -> content. */
  readonly files?: Readonly<Record<string, string>>;
}

export function gatewayTarget(scenario: GatewayScenario): Target {
  return {
    name: scenario.name,
    description: scenario.description,
    start: (context: RoundContext): Promise<RunningTarget> => startGateway(scenario, context),
  };
}

/** A started gateway, with what scenarios beyond the runner's need: its admin port and output. */
export interface RunningGateway extends RunningTarget {
  readonly path: string;
  /** The admin listener (`/upstreams`, `/metrics`, `/readyz`), on 127.0.0.1. */
  readonly adminPort: number;
  /** The last few KiB the gateway wrote on stdout/stderr (its log lines, at the level configured). */
  outputTail(): string;
}

/** Starts one gateway for `scenario` over the context's upstreams; what `gatewayTarget().start` does. */
export async function startGateway(scenario: GatewayScenario, context: RoundContext): Promise<RunningGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'gw-bench-'));
  const [port, adminPort] = await freePorts(2);
  const gateway = {
    // Fixed ports picked here rather than `port: 0`: the harness must know them.
    listeners: [{ name: 'public', address: '127.0.0.1', port }],
    admin: { address: '127.0.0.1', port: adminPort },
    routesFile: 'routes.yaml',
    // Access log off: a JSON line per request measures pino and the pipe, not the proxy.
    // Metrics stay on: they always are.
    log: { level: 'silent', accessLog: false },
    // Bounded so a gateway that does not drain cannot stall the run (the harness SIGKILLs at 5 s).
    limits: { shutdownTimeout: '2s' },
    ...scenario.gatewayOverrides,
  };
  const gatewayFile = join(dir, 'gateway.yaml');
  await writeFile(gatewayFile, stringify(gateway));
  await writeFile(join(dir, 'routes.yaml'), stringify(scenario.routes(context.upstreams)));
  for (const [name, content] of Object.entries(scenario.files ?? {})) await writeFile(join(dir, name), content);

  // Taken just before the spawn: the code this process loads.
  const build = buildFingerprint(GATEWAY_BUILD_DIRS);
  const proc = new ManagedProcess('gateway', GATEWAY_MAIN, ['--config', gatewayFile], context.pinning.enabled ? context.pinning.proxyCpu : null);
  const cleanUp = async (): Promise<void> => {
    await proc.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    // The admin listener starts before the public ones: wait for both.
    await waitForHttp(`http://127.0.0.1:${adminPort}/readyz`, { proc });
    await waitForHttp(`http://127.0.0.1:${port}/`, { proc, ready: () => true });
  } catch (err) {
    await cleanUp();
    throw err;
  }
  return {
    port: port!,
    path: scenario.path,
    build,
    ...(scenario.headers === undefined ? {} : { headers: scenario.headers }),
    ...(proc.pid === undefined ? {} : { pid: proc.pid }),
    adminPort: adminPort!,
    outputTail: () => proc.outputTail,
    problems: () => proc.problems(),
    stop: cleanUp,
  };
}
