// A redis-server of the run's own, for the rate-limit scenarios: a free port, a temp dir, nothing
// written to disk (a snapshot or an AOF fsync in the middle of a measurement would be measured as
// the limiter's cost), and pinned like the upstreams so it never shares the core under test.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { ManagedProcess, freePorts } from './processes.js';

const READY_TIMEOUT_MS = 10_000;
const CLIENT_TIMEOUT_MS = 2_000;

/** `redis-server --version`'s first line, or null when there is no redis-server on PATH. */
export function redisServerVersion(): string | null {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) return null;
  return r.stdout.trim().split('\n')[0] ?? '';
}

/**
 * The version, or null after telling the user how to get redis-server (the scenario then exits 2,
 * as on bad settings: nothing was measured, and nothing failed).
 */
export function requireRedisServer(command: string): string | null {
  const version = redisServerVersion();
  if (version === null) {
    process.stderr.write(`${command}: redis-server is not on PATH; this benchmark starts its own. Install it (as root: apt-get install redis-server) and run again.\n`);
  }
  return version;
}

export interface BenchRedis {
  readonly url: string;
  readonly port: number;
  readonly pid: number | undefined;
  /** A crash, or an unclean exit on SIGTERM (read after `stop()`). */
  problems(): readonly string[];
  /** SIGTERM (redis-server exits 0 on it), then its temp dir is removed. Never throws. */
  stop(): Promise<void>;
}

/** Starts redis-server on `cpu` (null: unpinned) and resolves once it answers PING. */
export async function startRedisServer(cpu: number | null): Promise<BenchRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'gw-bench-redis-'));
  const [port] = await freePorts(1);
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--appendonly', 'no',
    '--daemonize', 'no',
    '--logfile', '',
    '--loglevel', 'warning',
  ];
  const proc = new ManagedProcess('redis-server', { executable: 'redis-server' }, args, cpu);
  const url = `redis://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    await proc.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitForPing(url, proc);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, port: port!, pid: proc.pid, problems: () => proc.problems(), stop };
}

async function waitForPing(url: string, proc: ManagedProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    if (proc.hasExited) throw new Error(`redis-server exited before it answered${proc.outputTail === '' ? '' : `:\n${proc.outputTail}`}`);
    try {
      if ((await withClient(url, (c) => c.ping())) === 'PONG') return;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(50);
  }
  throw new Error(`redis-server at ${url} did not answer PING within ${READY_TIMEOUT_MS} ms (last: ${last})${proc.outputTail === '' ? '' : `; output:\n${proc.outputTail}`}`);
}

/**
 * Script calls Redis has run since it started: `calls` of `evalsha` and `eval` in INFO
 * commandstats. Counted by Redis itself, so it checks the gateway's own count of its calls, and it
 * includes every script the gateway runs (heartbeats too, and the EVAL after a NOSCRIPT).
 */
export async function redisScriptCalls(url: string): Promise<number> {
  const info = await withClient(url, (c) => c.info('commandstats'));
  let calls = 0;
  for (const line of info.split('\n')) {
    const m = /^cmdstat_(evalsha|eval):calls=(\d+),/.exec(line.trim());
    if (m !== null) calls += Number(m[2]);
  }
  return calls;
}

/** One short-lived connection: nothing of ours stays connected to the Redis under measurement. */
async function withClient<T>(url: string, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: CLIENT_TIMEOUT_MS,
    commandTimeout: CLIENT_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // Failures reach the caller through connect() and the command; without a listener an 'error'
  // event would end the process.
  client.on('error', () => {});
  try {
    await client.connect();
    return await use(client);
  } finally {
    client.disconnect();
  }
}
