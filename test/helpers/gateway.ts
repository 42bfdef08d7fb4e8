import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { stringify } from 'yaml';
import { loadGatewayConfig } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';

export interface TestGatewayFiles {
  readonly dir: string;
  readonly gatewayFile: string;
  readonly routesFile: string;
}

/** Minimal gateway.yaml content: one public listener and the admin listener on free ports. */
export function gatewayYaml(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
    admin: { address: '127.0.0.1', port: 0 },
    routesFile: 'routes.yaml',
    log: { level: 'silent', accessLog: false },
    ...overrides,
  };
}

/** Writes both files into a fresh temp folder. Values may be objects (dumped as YAML) or text. */
export async function writeConfig(gateway: Record<string, unknown> | string, routes: Record<string, unknown> | string): Promise<TestGatewayFiles> {
  const dir = await mkdtemp(join(tmpdir(), 'gw-test-'));
  const gatewayFile = join(dir, 'gateway.yaml');
  const routesFile = join(dir, 'routes.yaml');
  await writeFile(gatewayFile, typeof gateway === 'string' ? gateway : stringify(gateway));
  await writeFile(routesFile, typeof routes === 'string' ? routes : stringify(routes));
  return { dir, gatewayFile, routesFile };
}

/** Replaces the routes file atomically (write + rename), as editors and config tools do. */
export async function writeRoutes(files: TestGatewayFiles, routes: Record<string, unknown> | string): Promise<void> {
  const tmp = `${files.routesFile}.${process.pid}.tmp`;
  await writeFile(tmp, typeof routes === 'string' ? routes : stringify(routes));
  await rename(tmp, files.routesFile);
}

export interface RunningGateway {
  readonly gateway: Gateway;
  readonly files: TestGatewayFiles;
  /** http://127.0.0.1:PORT of the first public listener. */
  readonly url: string;
  readonly port: number;
  readonly adminUrl: string;
  stop(): Promise<void>;
}

/** Starts a real gateway in this process on free ports. */
export async function startGateway(
  routes: Record<string, unknown> | string,
  gatewayOverrides: Record<string, unknown> = {},
  logger: Logger = pino({ level: 'silent' }),
): Promise<RunningGateway> {
  const files = await writeConfig(gatewayYaml(gatewayOverrides), routes);
  const config = await loadGatewayConfig(files.gatewayFile);
  const gateway = new Gateway({ config, logger });
  await gateway.start();
  const addrs = gateway.addresses();
  const pub = addrs.find((a) => a.name !== 'admin')!;
  const admin = addrs.find((a) => a.name === 'admin')!;
  return {
    gateway,
    files,
    url: `http://127.0.0.1:${pub.port}`,
    port: pub.port,
    adminUrl: `http://127.0.0.1:${admin.port}`,
    async stop() {
      await gateway.stop();
      await rm(files.dir, { recursive: true, force: true });
    },
  };
}

/** routes.yaml content with one upstream `pool` over `urls` and one route `main` on `prefix`. */
export function simpleRoutes(urls: readonly string[], route: Record<string, unknown> = {}, upstream: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    upstreams: { pool: { targets: urls.map((url) => ({ url })), ...upstream } },
    routes: [{ name: 'main', prefix: '/', upstream: 'pool', ...route }],
  };
}
