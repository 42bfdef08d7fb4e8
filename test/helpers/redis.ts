// Real redis-server processes for rate-limiter tests. A fake would not reproduce what those tests
// are about: connections refused during an outage, a stalled server that keeps sockets open, slot
// redirection in a cluster. Every server gets its own port and temp dir, so tests never touch the
// Redis that may already run on 6379 and never see each other's keys.

import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';

const HOST = '127.0.0.1';
// Generous: the test machine has 2 cores and runs other suites in parallel.
const READY_TIMEOUT_MS = 20_000;
const CLUSTER_OK_TIMEOUT_MS = 15_000;
// A cluster node also listens on port + 10000 for the cluster bus.
const CLUSTER_BUS_OFFSET = 10_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// Children and temp dirs still alive, so the hooks below can clean up after a test that crashed or
// forgot afterAll. Kept on globalThis so that a worker which evaluates this module once per test
// file shares one registry and one set of process listeners instead of piling them up.
interface LiveResources {
  children: Set<ChildProcess>;
  dirs: Set<string>;
}
const LIVE: unique symbol = Symbol.for('edge-gateway.test.redis.live');
const globals = globalThis as typeof globalThis & { [LIVE]?: LiveResources };
const firstLoad = globals[LIVE] === undefined;
const live: LiveResources = (globals[LIVE] ??= { children: new Set(), dirs: new Set() });
const liveChildren = live.children;
const liveDirs = live.dirs;

// Only synchronous work is possible in an 'exit' listener.
function cleanUpSync(): void {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
  for (const dir of liveDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // Best effort; /tmp is cleaned eventually anyway.
    }
  }
}

if (firstLoad) {
  process.on('exit', cleanUpSync);
  // Vitest ends its fork workers with SIGTERM, which skips 'exit' listeners, so servers leaked by a
  // failed test would outlive the run without this. Once our listener is gone, re-raising the
  // signal gets the default behaviour (die by that signal) unless someone else has claimed it.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanUpSync();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

function ephemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not read the bound port'))));
    });
  });
}

async function freePort(needsBusPort: boolean): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await ephemeralPort();
    if (!needsBusPort) return port;
    const bus = port + CLUSTER_BUS_OFFSET;
    // Linux hands out ephemeral ports up to 60999, so roughly one in five has no room for a bus port.
    if (bus <= 65_535 && (await canBind(bus))) return port;
  }
  throw new Error('no free port pair (P, P+10000) found for a cluster node');
}

function encodeCommand(args: readonly string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/**
 * Sends one command on a fresh raw socket and resolves with the first reply line (e.g. `+PONG`).
 * A raw socket, not ioredis, because probing a server that is still starting or stalled with a
 * client library means reconnect loops and unhandled-error noise.
 */
function rawCommand(port: number, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port });
    let buffer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no reply to ${args.join(' ')} on port ${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(encodeCommand(args)));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const nl = buffer.indexOf('\r\n');
      if (nl === -1) return;
      clearTimeout(timer);
      socket.destroy();
      resolve(buffer.slice(0, nl));
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`connection to port ${port} closed before a reply to ${args.join(' ')}`));
    });
  });
}

async function answersPing(port: number): Promise<boolean> {
  try {
    return (await rawCommand(port, ['PING'], 1_000)) === '+PONG';
  } catch {
    return false;
  }
}

interface Spawned {
  child: ChildProcess;
  output: string[];
  exited: Promise<void>;
}

export interface TestRedisOptions {
  /** Extra redis-server arguments, appended after the defaults (so they can override them). */
  args?: string[];
  /** Start as a cluster node: enables cluster mode and also reserves port + 10000 for the bus. */
  cluster?: boolean;
}

export type RedisReply = string | number | null | unknown[];

export class TestRedis {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  private readonly args: readonly string[];
  private current: Spawned | undefined;
  private stopped = false;

  private constructor(port: number, dir: string, args: readonly string[]) {
    this.port = port;
    this.url = `redis://${HOST}:${port}`;
    this.dir = dir;
    this.args = args;
  }

  static async start(options: TestRedisOptions = {}): Promise<TestRedis> {
    const cluster = options.cluster === true;
    const extra = [
      // DEBUG SLEEP is refused by default since Redis 7.0.
      '--enable-debug-command', 'yes',
      ...(cluster ? ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'] : []),
      ...(options.args ?? []),
    ];
    const dir = await mkdtemp(path.join(os.tmpdir(), 'test-redis-'));
    liveDirs.add(dir);
    const failures: string[] = [];
    // The probe socket is closed before redis-server binds, so another process can take the port
    // in between; a fresh port on such a collision is cheaper than making tests flaky.
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort(cluster);
      const redis = new TestRedis(port, dir, extra);
      try {
        await redis.launch();
        return redis;
      } catch (err) {
        failures.push(err instanceof Error ? err.message : String(err));
        await redis.kill();
        if (!failures.at(-1)?.includes('Address already in use')) break;
        // A cluster node that lost its bus port may already have recorded itself under the old port.
        await rm(path.join(dir, 'nodes.conf'), { force: true });
      }
    }
    liveDirs.delete(dir);
    await rm(dir, { recursive: true, force: true });
    throw new Error(`redis-server did not start:\n${failures.join('\n---\n')}`);
  }

  get running(): boolean {
    const child = this.current?.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** The pid of the current process, or undefined between kill() and restart(). */
  get pid(): number | undefined {
    return this.running ? this.current?.child.pid : undefined;
  }

  /** Everything the current (or last) process wrote, for assertion messages. */
  get output(): string {
    return this.current?.output.join('') ?? '';
  }

  /** An outage: SIGKILL, so clients see connections reset and refused rather than a clean shutdown. */
  async kill(): Promise<void> {
    const spawned = this.current;
    if (spawned === undefined) return;
    if (this.running) spawned.child.kill('SIGKILL');
    await spawned.exited;
  }

  /** Comes back on the same port, as a recovering Redis would for clients that reconnect by address. */
  async restart(): Promise<void> {
    if (this.stopped) throw new Error('restart() after stop()');
    await this.kill();
    const failures: string[] = [];
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await this.launch();
        return;
      } catch (err) {
        failures.push(err instanceof Error ? err.message : String(err));
        await this.kill();
        // The old socket can linger for a moment after SIGKILL, or a client may have grabbed the
        // port as its ephemeral source port; both clear up quickly.
        await sleep(200 * (attempt + 1));
      }
    }
    throw new Error(`redis-server did not restart on port ${this.port}:\n${failures.join('\n---\n')}`);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.kill();
    liveDirs.delete(this.dir);
    await rm(this.dir, { recursive: true, force: true });
  }

  /**
   * Stalls every client for `ms` while keeping connections open (a slow Redis, not a dead one).
   * Resolves once the pause is in effect.
   */
  async pause(ms: number): Promise<void> {
    const reply = await rawCommand(this.port, ['CLIENT', 'PAUSE', String(Math.round(ms)), 'ALL'], 5_000);
    if (reply !== '+OK') throw new Error(`CLIENT PAUSE answered ${reply}`);
  }

  /**
   * Blocks the whole server event loop for `seconds`, including accepting connections, unlike
   * pause(). Fire-and-forget because the reply only arrives after the sleep.
   */
  debugSleep(seconds: number): void {
    const socket = net.connect({ host: HOST, port: this.port });
    socket.on('connect', () => socket.write(encodeCommand(['DEBUG', 'SLEEP', String(seconds)])));
    socket.on('data', () => socket.destroy());
    // The server may be killed mid-sleep by the test; nobody is waiting for this socket.
    socket.on('error', () => socket.destroy());
    // A long sleep must not keep the test process alive.
    socket.unref();
  }

  /** One command through a short-lived client, for test setup and assertions (DBSIZE, INFO, ...). */
  async command(...args: string[]): Promise<RedisReply> {
    const [name, ...rest] = args;
    if (name === undefined) throw new Error('command() needs a command name');
    const client = new Redis({
      host: HOST,
      port: this.port,
      lazyConnect: true,
      enableOfflineQueue: true,
      maxRetriesPerRequest: 1,
      // Fail fast when the server is down instead of retrying in the background.
      retryStrategy: () => null,
    });
    // Without a listener ioredis prints "Unhandled error event"; the rejection carries the error.
    client.on('error', () => undefined);
    try {
      const reply: unknown = await client.call(name, ...rest);
      return toReply(reply);
    } finally {
      client.disconnect();
    }
  }

  private async launch(): Promise<void> {
    const argv = ['--port', String(this.port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', this.dir, ...this.args];
    const child = spawn('redis-server', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const output: string[] = [];
    child.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
    liveChildren.add(child);
    let spawnError: Error | undefined;
    const exited = new Promise<void>((resolve) => {
      // 'close' rather than 'exit': by then stdout/stderr are drained, so error messages are complete.
      child.once('close', () => {
        liveChildren.delete(child);
        resolve();
      });
      child.once('error', (err) => {
        spawnError = err;
        liveChildren.delete(child);
        resolve();
      });
    });
    this.current = { child, output, exited };

    const started = performance.now();
    let done = false;
    void exited.then(() => {
      done = true;
    });
    while (!done) {
      if (await answersPing(this.port)) {
        await this.assertOwnProcess(child);
        return;
      }
      if (performance.now() - started > READY_TIMEOUT_MS) {
        throw new Error(`redis-server on port ${this.port} did not answer PING within ${READY_TIMEOUT_MS} ms; output:\n${output.join('')}`);
      }
      await sleep(25);
    }
    const how = spawnError ? `failed to spawn (${spawnError.message})` : `exited (code ${child.exitCode}, signal ${child.signalCode})`;
    throw new Error(`redis-server on port ${this.port} ${how} before answering PING; output:\n${output.join('')}`);
  }

  // Another test process may take the port between our probe and redis-server's bind; then the
  // PONG came from its server, while ours is about to exit with "Address already in use".
  private async assertOwnProcess(child: ChildProcess): Promise<void> {
    const info = await this.command('INFO', 'server');
    const pid = /process_id:(\d+)/.exec(String(info))?.[1];
    if (pid !== String(child.pid)) {
      throw new Error(`port ${this.port} is served by pid ${pid}, not by our redis-server (pid ${child.pid}): Address already in use`);
    }
  }
}

function toReply(reply: unknown): RedisReply {
  if (reply === null || typeof reply === 'string' || typeof reply === 'number' || Array.isArray(reply)) return reply;
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  throw new Error(`unexpected reply type ${typeof reply}`);
}

function runRedisCli(args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const output: string[] = [];
    child.stdout.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
    liveChildren.add(child);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      liveChildren.delete(child);
      reject(new Error(`redis-cli failed to spawn: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      liveChildren.delete(child);
      const text = output.join('');
      if (code === 0) resolve(text);
      else reject(new Error(`redis-cli ${args.join(' ')} exited (code ${code}, signal ${signal}):\n${text}`));
    });
  });
}

/** Three masters, no replicas: enough for keys to land on different nodes and for MOVED redirects. */
export class TestRedisCluster {
  readonly nodes: readonly TestRedis[];
  readonly urls: readonly string[];

  private constructor(nodes: readonly TestRedis[]) {
    this.nodes = nodes;
    this.urls = nodes.map((n) => n.url);
  }

  get ports(): number[] {
    return this.nodes.map((n) => n.port);
  }

  static async start(): Promise<TestRedisCluster> {
    const settled = await Promise.allSettled([0, 1, 2].map(() => TestRedis.start({ cluster: true })));
    const nodes = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const cluster = new TestRedisCluster(nodes);
    try {
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason;
      const addresses = nodes.map((n) => `${HOST}:${n.port}`);
      const createOutput = await runRedisCli(['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], 30_000);
      await cluster.waitUntilOk(createOutput);
      return cluster;
    } catch (err) {
      await cluster.stop();
      const nodeOutput = nodes.map((n) => `--- node ${n.port} ---\n${n.output}`).join('\n');
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(`redis cluster did not start: ${message}\n${nodeOutput}`);
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }

  // redis-cli returns once the nodes agree on the config, but each node flips to cluster_state:ok
  // on its own schedule, and clients that connect earlier get CLUSTERDOWN.
  private async waitUntilOk(createOutput: string): Promise<void> {
    const started = performance.now();
    let last = '';
    for (;;) {
      const states = await Promise.all(
        this.nodes.map(async (n) => {
          try {
            const info = await n.command('CLUSTER', 'INFO');
            return /cluster_state:(\w+)/.exec(String(info))?.[1] ?? 'unknown';
          } catch (err) {
            return err instanceof Error ? err.message : String(err);
          }
        }),
      );
      if (states.every((s) => s === 'ok')) return;
      last = states.map((s, i) => `${this.nodes[i]?.port}: ${s}`).join(', ');
      if (performance.now() - started > CLUSTER_OK_TIMEOUT_MS) {
        throw new Error(`cluster_state not ok on every node within ${CLUSTER_OK_TIMEOUT_MS} ms (${last}); redis-cli said:\n${createOutput}`);
      }
      await sleep(100);
    }
  }
}
