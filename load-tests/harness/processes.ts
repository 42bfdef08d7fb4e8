// Child processes, CPU pinning, ports and readiness: the plumbing every target shares.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { request } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

/** Size of the body upstream-server.ts answers with (kept in step with it by hand). */
export const UPSTREAM_BODY_BYTES = 100;

/**
 * On these 2-core machines the proxy under test gets CPU 1 to itself, and the load generator and
 * upstreams share CPU 0 (PERF-NOTES): otherwise the generator and the proxy fight for the same
 * core and the figures measure the scheduler.
 */
export interface CpuPinning {
  readonly enabled: boolean;
  /** Why pinning is off, for the report; null when on. */
  readonly reason: string | null;
  readonly proxyCpu: number;
  readonly loadCpu: number;
}

export function detectPinning(): CpuPinning {
  const base = { proxyCpu: 1, loadCpu: 0 };
  if (process.platform !== 'linux') return { ...base, enabled: false, reason: `not Linux (${process.platform})` };
  const probe = spawnSync('taskset', ['--version'], { stdio: 'ignore' });
  if (probe.error !== undefined || probe.status !== 0) {
    return { ...base, enabled: false, reason: 'taskset not found (install util-linux)' };
  }
  if (availableParallelism() < 2) return { ...base, enabled: false, reason: 'fewer than 2 CPUs available' };
  return { ...base, enabled: true, reason: null };
}

/**
 * Moves every thread of this process onto `cpu`: the load CPU for a load generator; a scenario
 * whose own process is what is measured (a store micro benchmark) takes the proxy CPU instead.
 */
export function pinSelf(pinning: CpuPinning, cpu: number = pinning.loadCpu): string | null {
  if (!pinning.enabled) return pinning.reason;
  const r = spawnSync('taskset', ['-a', '-cp', String(cpu), String(process.pid)], { stdio: 'ignore' });
  return r.status === 0 ? null : `taskset -a -cp ${cpu} ${process.pid} failed (status ${r.status})`;
}

/** Keeps the last bytes a child wrote, for error messages; reading also keeps its pipes flowing. */
const TAIL_BYTES = 4096;

/** A program on PATH rather than a node script (e.g. `redis-server`). */
export interface Executable {
  readonly executable: string;
}

/**
 * A child process we started and must stop: a node script run with this node, or an `Executable`.
 * An exit before `stop()` is a crash: it is recorded with the exit status and the tail of the
 * child's output.
 */
export class ManagedProcess {
  readonly #child: ChildProcess;
  readonly #problems: string[] = [];
  readonly exited: Promise<void>;
  #tail = '';
  #stopping = false;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  constructor(readonly name: string, program: string | Executable, args: readonly string[], cpu: number | null) {
    const [file, argv] = typeof program === 'string' ? [process.execPath, [program, ...args]] : [program.executable, args];
    // taskset execs the program, so the pid we hold is its own and signals reach it directly.
    this.#child = cpu === null
      ? spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('taskset', ['-c', String(cpu), file, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer): void => {
      this.#tail = (this.#tail + chunk.toString('utf8')).slice(-TAIL_BYTES);
    };
    this.#child.stdout?.on('data', keep);
    this.#child.stderr?.on('data', keep);
    this.exited = new Promise<void>((resolve) => {
      this.#child.once('error', (err) => {
        this.#problems.push(`${this.name}: could not spawn: ${err.message}`);
        this.#exit ??= { code: null, signal: null };
        resolve();
      });
      this.#child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        if (!this.#stopping) this.#problems.push(`${this.name}: exited on its own (${describeExit(code, signal)})${this.#tailNote()}`);
        resolve();
      });
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get hasExited(): boolean {
    return this.#exit !== null;
  }

  get outputTail(): string {
    return this.#tail.trim();
  }

  problems(): readonly string[] {
    return this.#problems;
  }

  #tailNote(): string {
    const tail = this.outputTail;
    return tail === '' ? '' : `; last output:\n${indent(tail)}`;
  }

  /**
   * SIGTERM, then SIGKILL after `graceMs`. A process that ignores SIGTERM or exits non-zero on it
   * is recorded as a problem: operators stop the gateway exactly this way.
   */
  async stop(graceMs = 5000): Promise<void> {
    if (this.#exit !== null) return;
    this.#stopping = true;
    this.#child.kill('SIGTERM');
    const killed = await Promise.race([this.exited.then(() => false), sleep(graceMs, true)]);
    if (killed) {
      this.#problems.push(`${this.name}: still running ${graceMs} ms after SIGTERM; killed${this.#tailNote()}`);
      this.#child.kill('SIGKILL');
      await this.exited;
      return;
    }
    const exit = this.#exit as { code: number | null; signal: NodeJS.Signals | null } | null;
    if (exit !== null && exit.code !== 0) {
      this.#problems.push(`${this.name}: SIGTERM ended it with ${describeExit(exit.code, exit.signal)}, not exit 0${this.#tailNote()}`);
    }
  }
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `signal ${signal}` : `exit code ${code}`;
}

function indent(text: string): string {
  return text.split('\n').map((l) => `    ${l}`).join('\n');
}

/**
 * Ports free a moment ago. All are held open together, so one call never returns a port twice.
 * Fixed ports are handed to the children (rather than `port: 0`) so the harness knows them without
 * parsing anyone's logs.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

export interface SimpleResponse {
  readonly status: number;
  readonly body: Buffer;
}

/** One GET on a fresh connection (no agent: nothing of ours stays connected to the target). */
export function httpGet(url: string, headers: Readonly<Record<string, string>> = {}, timeoutMs = 2000): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', headers: { ...headers }, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Polls `url` until `ready(status)` holds. Gives up early when `proc` exits (with its output),
 * and after `timeoutMs`.
 */
export async function waitForHttp(
  url: string,
  options: { proc?: ManagedProcess; timeoutMs?: number; ready?: (status: number) => boolean } = {},
): Promise<void> {
  const { proc, timeoutMs = 15_000, ready = (s: number) => s === 200 } = options;
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    if (proc?.hasExited === true) {
      throw new Error(`${proc.name} exited before ${url} was ready${proc.outputTail === '' ? '' : `:\n${indent(proc.outputTail)}`}`);
    }
    try {
      const res = await httpGet(url, {}, 1000);
      if (ready(res.status)) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(50);
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms (last: ${last})${proc !== undefined && proc.outputTail !== '' ? `; ${proc.name} output:\n${indent(proc.outputTail)}` : ''}`);
}

/** Clock ticks per second of /proc's CPU times (getconf CLK_TCK; 100 on every Linux we run). */
const CLOCK_TICKS = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

/**
 * CPU seconds (user + system, all threads) a process has used so far, from /proc/PID/stat; null
 * off Linux or once it has gone. Divided by the requests served, it gives CPU time per request:
 * unlike req/s, it barely moves when a neighbour steals the core, so it is the steadier figure on
 * a shared machine.
 */
export function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined || process.platform !== 'linux') return null;
  const fields = statFields(pid);
  if (fields === null) return null;
  // utime and stime are fields 14 and 15.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return Number.isFinite(ticks) ? ticks / CLOCK_TICKS : null;
}

/** /proc/PID/stat from field 3 (state) on: the command name before it may contain spaces. */
function statFields(pid: number | string): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/**
 * `pid` first, then every process below it (its children, theirs...): a `workers: N` gateway is a
 * primary and N forked workers, and the CPU it uses is theirs summed. Found from each process's
 * parent in /proc/PID/stat, because /proc/PID/task/TID/children needs CONFIG_PROC_CHILDREN, which
 * these VMs' kernels lack. `[pid]` off Linux.
 */
export function processTree(pid: number): number[] {
  if (process.platform !== 'linux') return [pid];
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    // A process may end between the listing and the read: it is then no longer in the tree.
    const ppid = Number(statFields(entry)?.[1]);
    if (!Number.isInteger(ppid)) continue;
    const siblings = children.get(ppid);
    if (siblings === undefined) children.set(ppid, [Number(entry)]);
    else siblings.push(Number(entry));
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []).sort((a, b) => a - b));
  return tree;
}

/** Per-CPU jiffies from /proc/stat: how busy each core was, whoever used it. */
export interface CpuTimes {
  readonly busy: readonly number[];
  readonly total: readonly number[];
}

export function readCpuTimes(): CpuTimes | null {
  if (process.platform !== 'linux') return null;
  try {
    const busy: number[] = [];
    const total: number[] = [];
    for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
      const m = /^cpu(\d+) (.*)$/.exec(line);
      if (m === null) continue;
      // user nice system idle iowait irq softirq steal (guest time is already inside user).
      const v = m[2]!.trim().split(/\s+/).slice(0, 8).map(Number);
      const sum = v.reduce((a, b) => a + b, 0);
      total[Number(m[1])] = sum;
      busy[Number(m[1])] = sum - (v[3] ?? 0) - (v[4] ?? 0);
    }
    return { busy, total };
  } catch {
    return null;
  }
}

/** % busy per CPU between two readings (index = CPU number). */
export function cpuBusyPercent(before: CpuTimes | null, after: CpuTimes | null): number[] | null {
  if (before === null || after === null) return null;
  return after.total.map((t, i) => {
    const dt = t - (before.total[i] ?? 0);
    return dt > 0 ? (((after.busy[i] ?? 0) - (before.busy[i] ?? 0)) / dt) * 100 : Number.NaN;
  });
}

/**
 * A short hash of every .js file under `dirs`. Other people rebuild dist/ while a run is under way
 * on a shared checkout; fresh processes per round would then measure different code in different
 * rounds. The runner compares this per measurement and says so.
 */
export function buildFingerprint(dirs: readonly string[]): string {
  const hash = createHash('sha256');
  const walk = (root: string, dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(root, path);
      else if (entry.name.endsWith('.js')) hash.update(relative(root, path)).update('\0').update(readFileSync(path)).update('\0');
    }
  };
  for (const dir of dirs) if (existsSync(dir)) walk(dir, dir);
  return hash.digest('hex').slice(0, 12);
}
