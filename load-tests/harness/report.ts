// Turning rounds into what a reader needs: one line per measurement, medians per target, ratios
// against the baseline, the machine, and the JSON of everything.
import { mkdir, writeFile } from 'node:fs/promises';
import { arch, cpus, release, totalmem, type as osType } from 'node:os';
import { join } from 'node:path';
import type { Measurement, RunRecord } from './runner.js';
import { RESULTS_DIR } from './paths.js';
import type { CpuPinning } from './processes.js';
import type { BenchSettings } from './settings.js';
import type { Target } from './target.js';

export interface MachineInfo {
  readonly cpus: string;
  readonly node: string;
  readonly os: string;
  readonly memory: string;
  readonly pinning: string;
}

export function describeMachine(pinning: CpuPinning): MachineInfo {
  const list = cpus();
  const models = [...new Set(list.map((c) => c.model.trim()))].join(' / ');
  return {
    cpus: `${list.length} × ${models}`,
    node: process.version,
    os: `${osType()} ${release()} ${arch()}`,
    memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
    pinning: pinning.enabled
      ? `proxy under test on CPU ${pinning.proxyCpu}; load generator and upstreams on CPU ${pinning.loadCpu} (taskset)`
      : `none: ${pinning.reason ?? 'unknown'}; all processes share every CPU, figures are noisier`,
  };
}

export interface TargetSummary {
  readonly target: string;
  readonly description: string;
  /** Clean measurements the medians are taken over. */
  readonly rounds: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU time of the proxy's process per request, µs (NaN where not measurable). */
  readonly cpuUsPerRequest: number;
  /**
   * The proxy's CPU use, % of one core. Well under 100 means the proxy was not the bottleneck (the
   * load generator or a neighbour was): its req/s then measures them, and CPU µs/req is the figure.
   */
  readonly cpuPercent: number;
  /** How busy the proxy's core was, whoever used it, in % (NaN when not pinned or unknown). */
  readonly proxyCoreBusyPercent: number;
  /** Over every measurement, warm-ups included. */
  readonly errors: number;
  readonly non2xx: number;
  /** Against the first target (the baseline); null for the baseline itself. */
  /** Against the first target (the baseline); null for the baseline itself. */
  readonly vsBaseline: Ratios | null;
}

/** target / baseline. Above 1 is better for req/s, worse for p99 and CPU per request. */
export interface Ratios {
  /** Ratio of the medians. */
  readonly requestsPerSecond: number;
  readonly p99: number;
  readonly cpuPerRequest: number;
  /**
   * The same ratios taken inside each round, where both targets ran minutes apart under the same
   * conditions: min / median / max over the rounds. A wide spread says the machine was noisy.
   */
  readonly perRound: {
    readonly requestsPerSecond: Spread | null;
    readonly p99: Spread | null;
    readonly cpuPerRequest: Spread | null;
  };
}

export interface Spread {
  readonly min: number;
  readonly median: number;
  readonly max: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** min / median / max of the finite values; null when there is none. */
export function spread(values: readonly number[]): Spread | null {
  const finite = values.filter(Number.isFinite);
  return finite.length === 0 ? null : { min: Math.min(...finite), median: median(finite), max: Math.max(...finite) };
}

const isClean = (m: Measurement): boolean => m.problems.length === 0 && m.load !== null && m.load.latencyMs !== null;
const rps = (m: Measurement): number => m.load?.requestsPerSecond ?? Number.NaN;
const p99 = (m: Measurement): number => m.load?.latencyMs?.p99 ?? Number.NaN;
const cpuPerRequest = (m: Measurement): number => m.cpuUsPerRequest ?? Number.NaN;

/**
 * Medians per target over its clean measurements (a measurement with any problem is left out:
 * its figures describe a failure, not the proxy), and ratios against the first target.
 */
export function summarise(targets: readonly Target[], record: RunRecord, proxyCpu: number | null): TargetSummary[] {
  const baseline = targets[0];
  const baselineByRound = new Map<number, Measurement>();
  for (const m of record.measurements) if (m.target === baseline?.name && isClean(m)) baselineByRound.set(m.round, m);
  const finiteMedian = (values: readonly number[]): number => median(values.filter(Number.isFinite));

  const medians = targets.map((t) => {
    const all = record.measurements.filter((m) => m.target === t.name);
    const ok = all.filter(isClean);
    const count = (pick: (m: Measurement) => number): number => all.reduce((n, m) => n + pick(m), 0);
    return {
      target: t,
      ok,
      summary: {
        target: t.name,
        description: t.description,
        rounds: ok.length,
        requestsPerSecond: finiteMedian(ok.map(rps)),
        p50Ms: finiteMedian(ok.map((m) => m.load?.latencyMs?.p50 ?? Number.NaN)),
        p99Ms: finiteMedian(ok.map(p99)),
        cpuUsPerRequest: finiteMedian(ok.map(cpuPerRequest)),
        cpuPercent: finiteMedian(ok.map((m) => m.cpuPercent ?? Number.NaN)),
        proxyCoreBusyPercent: proxyCpu === null ? Number.NaN : finiteMedian(ok.map((m) => m.cpuBusyPercent?.[proxyCpu] ?? Number.NaN)),
        errors: count((m) => (m.load?.errors ?? 0) + (m.warmup?.errors ?? 0)),
        non2xx: count((m) => (m.load?.non2xx ?? 0) + (m.warmup?.non2xx ?? 0)),
        vsBaseline: null,
      } satisfies TargetSummary,
    };
  });

  const base = medians[0]?.summary;
  return medians.map(({ target, ok, summary }) => {
    if (target === baseline || base === undefined) return summary;
    const paired = ok.flatMap((m) => {
      const b = baselineByRound.get(m.round);
      return b === undefined ? [] : [[m, b] as const];
    });
    const perRound = (pick: (m: Measurement) => number): Spread | null => spread(paired.map(([m, b]) => pick(m) / pick(b)));
    return {
      ...summary,
      vsBaseline: {
        requestsPerSecond: summary.requestsPerSecond / base.requestsPerSecond,
        p99: summary.p99Ms / base.p99Ms,
        cpuPerRequest: summary.cpuUsPerRequest / base.cpuUsPerRequest,
        perRound: { requestsPerSecond: perRound(rps), p99: perRound(p99), cpuPerRequest: perRound(cpuPerRequest) },
      },
    };
  });
}

// ---- text -------------------------------------------------------------------------------------

/** 12345.6 -> "12 346" (the grouping PERF-NOTES uses). */
export function formatInt(n: number): string {
  if (!Number.isFinite(n)) return '–';
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
}

export function formatMs(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  return n < 10 ? n.toFixed(2) : n.toFixed(1);
}

export function formatRatio(n: number | undefined): string {
  return n === undefined || !Number.isFinite(n) ? '–' : `${n.toFixed(2)}×`;
}

/** 0.055 -> "5.5 %"; small shares keep two decimals, so 0.3 % of requests does not read as 0. */
export function formatPercent(share: number): string {
  if (!Number.isFinite(share)) return '–';
  const p = share * 100;
  return `${p > 0 && p < 1 ? p.toFixed(2) : p.toFixed(p >= 99.5 || p === 0 ? 0 : 1)} %`;
}

/** JSON has no NaN: JSON.stringify would write null anyway, this says so in the types. */
export function nullIfNaN(n: number): number | null {
  return Number.isFinite(n) ? n : null;
}

function formatBusy(busy: readonly number[] | null): string {
  if (busy === null) return 'cpu busy –';
  return busy.map((b, i) => `cpu${i} ${formatInt(b)} %`).join(' ');
}

export function measurementLine(m: Measurement, nameWidth: number): string {
  const head = `  round ${m.round} #${m.position}  ${m.target.padEnd(nameWidth)}`;
  const l = m.load;
  const body = l === null
    ? 'not measured'
    : `${formatInt(l.requestsPerSecond).padStart(7)} req/s  p50 ${formatMs(l.latencyMs?.p50).padStart(6)} ms  p99 ${formatMs(l.latencyMs?.p99).padStart(6)} ms  ` +
      `proxy cpu ${formatInt(m.cpuUsPerRequest ?? Number.NaN).padStart(4)} µs/req ${formatInt(m.cpuPercent ?? Number.NaN).padStart(3)} %  ` +
      `errors ${l.errors}  non-2xx ${l.non2xx}  | machine: ${formatBusy(m.cpuBusyPercent)}, load avg ${m.loadAvg1.toFixed(1)}`;
  const flags = m.problems.length === 0 ? '' : `\n${m.problems.map((p) => `    ! ${p.replace(/\n/g, '\n      ')}`).join('\n')}`;
  return `${head}  ${body}${flags}`;
}

/** Markdown tables: printed, and pasted as-is into docs/performance.md. */
export function summaryTable(summaries: readonly TargetSummary[]): string {
  const baseName = summaries[0]?.target ?? 'baseline';
  const rows = [
    `| target | clean rounds | req/s | p50 ms | p99 ms | CPU µs/req | proxy CPU % | errors / non-2xx | req/s × ${baseName} | p99 × ${baseName} | CPU/req × ${baseName} |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of summaries) {
    const v = s.vsBaseline;
    const ratio = (n: number | undefined): string => (v === null ? 'baseline' : formatRatio(n));
    rows.push(
      `| ${s.target} | ${s.rounds} | ${formatInt(s.requestsPerSecond)} | ${formatMs(s.p50Ms)} | ${formatMs(s.p99Ms)} | ${formatInt(s.cpuUsPerRequest)} | ${formatInt(s.cpuPercent)} ` +
        `| ${s.errors} / ${s.non2xx} | ${ratio(v?.requestsPerSecond)} | ${ratio(v?.p99)} | ${ratio(v?.cpuPerRequest)} |`,
    );
  }
  return rows.join('\n');
}

/** The ratios inside each round, min – median – max: how far the medians' ratios can be trusted. */
export function perRoundTable(summaries: readonly TargetSummary[]): string {
  const baseName = summaries[0]?.target ?? 'baseline';
  const cell = (x: Spread | null | undefined): string => (x == null ? '–' : `${formatRatio(x.min)} – ${formatRatio(x.median)} – ${formatRatio(x.max)}`);
  const rows = [
    `| per round (min – median – max) | req/s × ${baseName} | p99 × ${baseName} | CPU/req × ${baseName} |`,
    '|---|---:|---:|---:|',
  ];
  for (const s of summaries) {
    if (s.vsBaseline === null) continue;
    const r = s.vsBaseline.perRound;
    rows.push(`| ${s.target} | ${cell(r.requestsPerSecond)} | ${cell(r.p99)} | ${cell(r.cpuPerRequest)} |`);
  }
  return rows.join('\n');
}

/** The medians table, then the per-round ratios when there is more than the baseline. */
export function printSummary(out: (line?: string) => void, summary: readonly TargetSummary[], date: string, machine: MachineInfo): void {
  out();
  out(`medians over clean rounds (${date}; ${machine.cpus}; node ${machine.node}):`);
  out();
  out(summaryTable(summary));
  out();
  if (summary.length > 1) {
    out(perRoundTable(summary));
    out();
  }
}

/** `target / baseline: req/s …×, p99 …×, CPU per request …× (… vs … req/s; … vs … µs/req)`; `more` is appended. */
export function ratioLine(s: TargetSummary, base: TargetSummary | undefined, more = ''): string {
  const v = s.vsBaseline;
  return `${s.target} / ${base?.target}: req/s ${formatRatio(v?.requestsPerSecond)}, p99 ${formatRatio(v?.p99)}, ` +
    `CPU per request ${formatRatio(v?.cpuPerRequest)} ` +
    `(${formatInt(s.requestsPerSecond)} vs ${formatInt(base?.requestsPerSecond ?? Number.NaN)} req/s; ` +
    `${formatInt(s.cpuUsPerRequest)} vs ${formatInt(base?.cpuUsPerRequest ?? Number.NaN)} µs/req)${more}`;
}

/** Below this share of its core, a proxy was not what limited req/s. */
export const SATURATED_CPU_PERCENT = 85;
/** Between SATURATED_CPU_PERCENT and this, the proxy was nearly (not fully) the limit: said so. */
export const NEARLY_SATURATED_CPU_PERCENT = 95;

/**
 * A `note:` per target whose proxy did not use all of its core, so its req/s measured something
 * else. With `nearly` (the measurements the summary was taken over, and the pinning), also one per
 * target that used most of it, with how busy the load generator's core was.
 */
export function cpuNotes(summary: readonly TargetSummary[], nearly: { readonly measurements: readonly Measurement[]; readonly pinning: CpuPinning } | null): string[] {
  const notes: string[] = [];
  for (const s of summary) {
    if (Number.isFinite(s.cpuPercent) && s.cpuPercent < SATURATED_CPU_PERCENT) {
      const core = Number.isFinite(s.proxyCoreBusyPercent)
        ? ` while its core was ${formatInt(s.proxyCoreBusyPercent)} % busy (${s.proxyCoreBusyPercent >= SATURATED_CPU_PERCENT ? 'other processes on the machine took the rest' : 'it was waiting for load: the load generator side was the limit'})`
        : '';
      notes.push(`note: ${s.target} used ${formatInt(s.cpuPercent)} % of a core${core}. It was not what limited req/s, so read its ` +
        'CPU µs/req rather than its req/s.');
    } else if (nearly !== null && Number.isFinite(s.cpuPercent) && s.cpuPercent < NEARLY_SATURATED_CPU_PERCENT) {
      const { measurements, pinning } = nearly;
      const loadBusy = pinning.enabled
        ? median(measurements.filter((m) => m.target === s.target && m.problems.length === 0 && m.load !== null).map((m) => m.cpuBusyPercent?.[pinning.loadCpu] ?? Number.NaN).filter(Number.isFinite))
        : Number.NaN;
      notes.push(`note: ${s.target} used ${formatInt(s.cpuPercent)} % of its core, not all of it` +
        (Number.isFinite(loadBusy) ? ` (the load generator's and upstreams' core was ${formatInt(loadBusy)} % busy)` : '') +
        `: the load generator side held it back a little, so its req/s may be understated by up to ~${formatInt(100 - s.cpuPercent)} %; its CPU µs/req is unaffected.`);
    }
  }
  return notes;
}

/** A warning per target whose gateway build changed between its measurements. */
export function buildWarnings(targets: readonly { readonly name: string }[], measurements: readonly Measurement[]): string[] {
  const warnings: string[] = [];
  for (const t of targets) {
    const builds = [...new Set(measurements.filter((m) => m.target === t.name && m.build !== null).map((m) => m.build))];
    if (builds.length > 1) {
      warnings.push(`warning: ${t.name}'s build changed during the run (${builds.join(', ')}): dist/ was rebuilt while measuring, so ` +
        'its rounds measured different code. Run again on a checkout nobody else builds in.');
    }
  }
  return warnings;
}

/** Whether a target's req/s × the baseline reached an issue's threshold. */
export interface Verdict {
  readonly target: string;
  readonly threshold: number;
  readonly ratio: number | null;
  readonly cleanRounds: number;
  readonly perRound: { readonly min: number; readonly max: number } | null;
  readonly met: boolean | null;
  /** The same sentence as printed; left out of the JSON. */
  readonly line: string;
}

/**
 * `s`'s req/s × the baseline against `threshold`. `withShutdownFailures`: the same target
 * summarised with the measurements whose only problem was the gateway's shutdown, said beside it.
 */
export function ratioVerdict(s: TargetSummary | undefined, threshold: number, what: string, withShutdownFailures?: TargetSummary): Verdict {
  const ratio = s?.vsBaseline?.requestsPerSecond;
  const spread = s?.vsBaseline?.perRound.requestsPerSecond ?? null;
  const name = s?.target ?? '?';
  const all = withShutdownFailures?.vsBaseline?.requestsPerSecond;
  const allRounds = withShutdownFailures?.rounds ?? 0;
  const more = all !== undefined && Number.isFinite(all) && allRounds > (s?.rounds ?? 0)
    ? `; ${formatRatio(all)} over ${allRounds} rounds with those whose gateway did not stop cleanly (${all >= threshold ? 'met' : 'NOT met'})`
    : '';
  if (ratio === undefined || !Number.isFinite(ratio)) {
    return { target: name, threshold, ratio: null, cleanRounds: s?.rounds ?? 0, perRound: null, met: null, line: `${name} (${what}) ≥ ${threshold}×: not measured (no clean round)${more}` };
  }
  const met = ratio >= threshold;
  const rounds = spread === null ? '' : `, per round ${formatRatio(spread.min)} – ${formatRatio(spread.max)}`;
  return {
    target: name,
    threshold,
    ratio,
    cleanRounds: s?.rounds ?? 0,
    perRound: spread === null ? null : { min: spread.min, max: spread.max },
    met,
    line: `${name} (${what}) ≥ ${threshold}×: ${formatRatio(ratio)} over ${s?.rounds ?? 0} clean round(s)${rounds}: ${met ? 'met' : 'NOT met'}${more}`,
  };
}

export function settingsLine(settings: BenchSettings): string {
  return `${settings.smoke ? 'SMOKE: ' : ''}${settings.rounds} round(s) × ${settings.durationS} s per target (after ${settings.warmupS} s warm-up), ${settings.connections} connections, keep-alive, pipelining 1`;
}

// ---- JSON -------------------------------------------------------------------------------------

export interface RunReport {
  readonly date: string;
  readonly machine: MachineInfo;
  readonly settings: BenchSettings;
  readonly targets: readonly { readonly name: string; readonly description: string }[];
  readonly summary: readonly TargetSummary[];
  readonly measurements: readonly Measurement[];
  readonly roundProblems: readonly string[];
}

/** Writes load-tests/results/<timestamp>.json and returns its path. */
export function writeReport(report: RunReport): Promise<string> {
  return writeResults(null, report.date, report);
}

/** Writes load-tests/results/[<scenario>-]<timestamp>.json and returns its path. */
export async function writeResults(scenario: string | null, date: string, body: object): Promise<string> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${scenario === null ? '' : `${scenario}-`}${date.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(body, null, 2)}\n`);
  return file;
}

/**
 * Lists every problem of a run (rounds and measurements) and returns the exit status: 1 when any
 * measurement was not clean (a benchmark that measured errors measured nothing), else 0.
 */
export function reportFailures(
  out: (line?: string) => void,
  roundProblems: readonly string[],
  measurements: readonly { readonly round: number; readonly target: string; readonly problems: readonly string[] }[],
): number {
  const failures = [...roundProblems, ...measurements.flatMap((m) => m.problems.map((p) => `round ${m.round} ${m.target}: ${p}`))];
  if (failures.length === 0) return 0;
  out();
  out(`FAILED: ${failures.length} problem(s); figures from affected measurements are left out of the medians:`);
  for (const f of failures) out(`  - ${f.replace(/\n/g, '\n    ')}`);
  return 1;
}

/** The lines every scenario opens with: what ran, when, on what machine, pinned how. */
export function machineHeader(out: (line?: string) => void, title: string, date: string, machine: MachineInfo, selfPinProblem: string | null, pinningEnabled: boolean): void {
  out(`${title} — ${date}`);
  out(`machine: ${machine.cpus}; ${machine.memory}; ${machine.os}; node ${machine.node}`);
  out(`pinning: ${machine.pinning}`);
  if (selfPinProblem !== null && pinningEnabled) out(`warning: could not pin the load generator: ${selfPinProblem}`);
}
