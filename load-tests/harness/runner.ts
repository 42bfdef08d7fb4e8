// The method (PERF-NOTES): every target is measured once per round, rounds are interleaved and
// the order rotates each round, and every measurement gets fresh processes. Drift of a shared
// machine (a noisy neighbour, thermal state) then lands on all targets alike, and only ratios
// between targets of the same run are read.
import { type LoadResult, runLoad } from './load.js';
import { UPSTREAM_SERVER } from './paths.js';
import { loadavg } from 'node:os';
import { type CpuPinning, ManagedProcess, UPSTREAM_BODY_BYTES, cpuBusyPercent, cpuSeconds, freePorts, httpGet, processTree, readCpuTimes, waitForHttp } from './processes.js';
import type { BenchSettings } from './settings.js';
import type { RoundContext, RunningTarget, Target } from './target.js';

/** How many upstream endpoints each round starts (the gateway's pool; bare uses the first). */
export const UPSTREAM_COUNT = 3;

export interface WarmupSummary {
  readonly completed: number;
  readonly errors: number;
  readonly non2xx: number;
  readonly statusCodes: Readonly<Record<string, number>>;
}

export interface Measurement {
  /** 1-based. */
  readonly round: number;
  /** 1-based place in this round's order. */
  readonly position: number;
  readonly target: string;
  readonly startedAt: string;
  /** null when the target could not be measured (it failed to start or to answer correctly). */
  readonly load: LoadResult | null;
  readonly warmup: WarmupSummary | null;
  /** RunningTarget.build, when the target gives one. */
  readonly build: string | null;
  /**
   * CPU time of the target's process per completed request, in µs; null when not measurable. Its
   * child processes count too (a `workers: N` gateway's workers do the proxying).
   */
  readonly cpuUsPerRequest: number | null;
  /** Its CPU use during the measurement (children included), in % of one core (100 = saturated). */
  readonly cpuPercent: number | null;
  /**
   * The same per process: the target's own first, then its descendants in pid order; cpuPercent is
   * null for one that ended during the measurement (its CPU is then unknown). Empty without a pid.
   */
  readonly processCpuPercent: readonly { readonly pid: number; readonly cpuPercent: number | null }[];
  /**
   * What the load side used meanwhile, in % of one core: this process (the load generator, every
   * thread) and the upstreams' process. Where nothing is pinned they share the cores with the
   * target, so the target's req/s cannot be read without them.
   */
  readonly loadSideCpuPercent: { readonly generator: number; readonly upstreams: number | null } | null;
  /**
   * How busy each CPU was during the measurement, whoever used it (index = CPU number). With the
   * proxy's own share beside it, this says what limited the run: the proxy's core full but the
   * proxy well under 100 % = a neighbour took the rest; the load CPU full = the load generator side.
   */
  readonly cpuBusyPercent: readonly number[] | null;
  /** 1-minute load average when the measurement started: how busy the shared machine was. */
  readonly loadAvg1: number;
  /** Everything that makes this measurement worthless, one line each. Empty = clean. */
  readonly problems: readonly string[];
}

export interface RunRecord {
  readonly measurements: readonly Measurement[];
  /** Problems outside any one target (the upstreams). */
  readonly roundProblems: readonly string[];
}

/**
 * The record with more problems on some measurements (keyed `round/target`): what a scenario found
 * wrong beyond the load (a token not verified, a decision not made through Redis) fails the
 * measurement like an error would, and leaves its figures out of the medians.
 */
export function withProblems(record: RunRecord, extra: ReadonlyMap<string, readonly string[]>): RunRecord {
  return {
    roundProblems: record.roundProblems,
    measurements: record.measurements.map((m) => {
      const more = extra.get(`${m.round}/${m.target}`) ?? [];
      return more.length === 0 ? m : { ...m, problems: [...m.problems, ...more] };
    }),
  };
}

export interface RunnerHooks {
  onRoundStart?(round: number, order: readonly string[]): void;
  onMeasurement?(m: Measurement): void;
}

export async function runRounds(targets: readonly Target[], settings: BenchSettings, pinning: CpuPinning, hooks: RunnerHooks = {}): Promise<RunRecord> {
  const measurements: Measurement[] = [];
  const roundProblems: string[] = [];
  for (let round = 1; round <= settings.rounds; round++) {
    const order = rotate(targets, round - 1);
    hooks.onRoundStart?.(round, order.map((t) => t.name));

    const ports = await freePorts(UPSTREAM_COUNT);
    const upstream = new ManagedProcess('upstreams', UPSTREAM_SERVER, ports.map(String), pinning.enabled ? pinning.loadCpu : null);
    try {
      await Promise.all(ports.map((p) => waitForHttp(`http://127.0.0.1:${p}/`, { proc: upstream })));
    } catch (err) {
      roundProblems.push(`round ${round}: upstreams did not start: ${(err as Error).message}`);
      await upstream.stop();
      continue;
    }
    const context: RoundContext = { upstreams: ports.map((p) => `http://127.0.0.1:${p}`), pinning };
    for (const [i, target] of order.entries()) {
      const m = await measureTarget(target, context, settings, round, i + 1, upstream.pid);
      measurements.push(m);
      hooks.onMeasurement?.(m);
    }
    await upstream.stop();
    roundProblems.push(...upstream.problems().map((p) => `round ${round}: ${p}`));
  }
  return { measurements, roundProblems };
}

/** Round `by + 1`'s order: each round starts one place later, so no target always runs first. */
export function rotate<T>(items: readonly T[], by: number): T[] {
  const k = items.length === 0 ? 0 : by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

async function measureTarget(target: Target, context: RoundContext, settings: BenchSettings, round: number, position: number, upstreamPid: number | undefined): Promise<Measurement> {
  const startedAt = new Date().toISOString();
  const base = { round, position, target: target.name, startedAt, loadAvg1: loadavg()[0] ?? Number.NaN };
  let running: RunningTarget;
  try {
    running = await target.start(context);
  } catch (err) {
    return {
      ...base,
      load: null,
      warmup: null,
      build: null,
      cpuUsPerRequest: null,
      cpuPercent: null,
      processCpuPercent: [],
      loadSideCpuPercent: null,
      cpuBusyPercent: null,
      problems: [`could not start: ${(err as Error).message}`],
    };
  }

  const problems: string[] = [];
  let load: LoadResult | null = null;
  let warmup: WarmupSummary | null = null;
  let cpuUsPerRequest: number | null = null;
  let cpuPercent: number | null = null;
  let processCpuPercent: { pid: number; cpuPercent: number | null }[] = [];
  let loadSideCpuPercent: Measurement['loadSideCpuPercent'] = null;
  let busy: number[] | null = null;
  try {
    const url = `http://127.0.0.1:${running.port}${running.path ?? '/'}`;
    const check = await checkAnswer(url, running.headers ?? {});
    if (check !== null) {
      problems.push(check);
    } else {
      if (settings.warmupS > 0) {
        const w = await runLoad({ url, connections: settings.connections, durationS: settings.warmupS, headers: running.headers, varyHeader: running.headerSequence, recordLatencies: false });
        warmup = { completed: w.completed, errors: w.errors, non2xx: w.non2xx, statusCodes: w.statusCodes };
        problems.push(...loadProblems('warm-up', w));
      }
      // Listed before the load: a process that appears during it (a worker replaced) is not counted.
      const tree = running.pid === undefined ? [] : processTree(running.pid);
      const cpuBefore = tree.map(cpuSeconds);
      const generatorBefore = process.cpuUsage();
      const upstreamsBefore = cpuSeconds(upstreamPid);
      const timesBefore = readCpuTimes();
      load = await runLoad({ url, connections: settings.connections, durationS: settings.durationS, headers: running.headers, varyHeader: running.headerSequence, recordLatencies: true });
      const cpuAfter = tree.map(cpuSeconds);
      const generator = process.cpuUsage(generatorBefore);
      const upstreamsAfter = cpuSeconds(upstreamPid);
      busy = cpuBusyPercent(timesBefore, readCpuTimes());
      const durationS = load.durationS;
      if (durationS > 0) {
        const percent = (seconds: number): number => (seconds / durationS) * 100;
        const used = tree.map((pid, i) => {
          const before = cpuBefore[i] ?? null;
          const after = cpuAfter[i] ?? null;
          return { pid, seconds: before === null || after === null ? null : after - before };
        });
        processCpuPercent = used.map(({ pid, seconds }) => ({ pid, cpuPercent: seconds === null ? null : percent(seconds) }));
        // The target's own process ending is its ManagedProcess's problem; a child's is only seen here.
        for (const { pid, seconds } of used.slice(1)) if (seconds === null) problems.push(`process ${pid} of the target ended during the measurement: the target's CPU is unknown`);
        const total = used.length > 0 && used.every((u) => u.seconds !== null) ? used.reduce((sum, u) => sum + (u.seconds ?? 0), 0) : null;
        if (total !== null && load.completed > 0) {
          cpuUsPerRequest = (total * 1e6) / load.completed;
          cpuPercent = percent(total);
        }
        loadSideCpuPercent = {
          generator: percent((generator.user + generator.system) / 1e6),
          upstreams: upstreamsBefore === null || upstreamsAfter === null ? null : percent(upstreamsAfter - upstreamsBefore),
        };
      }
      problems.push(...loadProblems('measurement', load));
    }
  } catch (err) {
    problems.push(`load generator failed: ${(err as Error).message}`);
  } finally {
    await running.stop();
    problems.push(...running.problems());
  }
  return { ...base, load, warmup, build: running.build ?? null, cpuUsPerRequest, cpuPercent, processCpuPercent, loadSideCpuPercent, cpuBusyPercent: busy, problems };
}

/** One request before any load: a proxy that answers the wrong thing fast must not look fast. */
async function checkAnswer(url: string, headers: Readonly<Record<string, string>>): Promise<string | null> {
  try {
    const res = await httpGet(url, headers, 5000);
    if (res.status !== 200) return `GET ${url} answered ${res.status}, not 200: ${res.body.toString('utf8').slice(0, 300)}`;
    if (res.body.length !== UPSTREAM_BODY_BYTES) return `GET ${url} answered a ${res.body.length}-byte body, not the upstream's ${UPSTREAM_BODY_BYTES} bytes`;
    return null;
  } catch (err) {
    return `GET ${url} failed: ${(err as Error).message}`;
  }
}

function loadProblems(phase: string, r: LoadResult): string[] {
  const out: string[] = [];
  if (r.errors > 0) out.push(`${phase}: ${r.errors} requests got no HTTP answer (${r.timeouts} timeouts, ${r.resets} resets)`);
  if (r.non2xx > 0) {
    const codes = Object.entries(r.statusCodes).filter(([c]) => !c.startsWith('2')).map(([c, n]) => `${c}×${n}`).join(', ');
    out.push(`${phase}: ${r.non2xx} non-2xx responses (${codes})`);
  }
  if (r.completed === 0) out.push(`${phase}: no request completed`);
  return out;
}
