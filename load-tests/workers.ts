// `npm run bench:workers`: the core scenario's route on a `workers: 2` gateway (a primary and two
// forked workers sharing the public listener) against the same gateway with `workers: 1` (one
// process), in one interleaved run with the harness of `npm run bench`. Two targets:
//
//   gateway-1   workers: 1, the baseline
//   gateway-2   workers: 2
//
// Nothing is pinned: a 2-worker gateway needs both CPUs, and confining gateway-1 alone to one of
// them would compare a gateway on one core with one on two where the load side had one less. So
// the gateways, the load generator and the upstreams share both CPUs in both targets, and every
// measurement records what each side used: the gateway (its process tree: primary + workers,
// summed), the load generator (this process), the upstreams, and the machine as a whole. The
// ratio gateway-2 / gateway-1 is only readable beside that split (the target, > 1.3×,
// assumes a light load side; on 2 cores it is not).
//
//   npm run bench:workers                        7 rounds × 10 s per target (about 3 minutes)
//   BENCH_ROUNDS=9 BENCH_DURATION=5 npm run bench:workers
//   npm run bench:workers -- --smoke             1 round × 2 s: does it run? (CI)
//
// Exit status: 0 when every measurement was clean (whether or not the target was met: a verdict
// from a shared machine is for a reader, not for CI); 1 when any target served an error or a
// non-2xx response, did not have the processes its `workers` setting asks for, had a worker that
// took (almost) no share of the load, lost a worker while measured, counted in its /metrics fewer
// 200s than it answered, crashed, or did not stop cleanly; 2 on bad settings.
import { availableParallelism } from 'node:os';
import { fetchMetrics, metricValue } from './harness/metrics.js';
import { type CpuPinning, UPSTREAM_BODY_BYTES, detectPinning, processTree } from './harness/processes.js';
import {
  type MachineInfo,
  type Spread,
  type TargetSummary,
  buildWarnings,
  describeMachine,
  formatInt,
  formatRatio,
  machineHeader,
  measurementLine,
  median,
  printSummary,
  ratioLine,
  ratioVerdict,
  reportFailures,
  settingsLine,
  spread,
  summarise,
  writeResults,
} from './harness/report.js';
import { type Measurement, runRounds, UPSTREAM_COUNT, withProblems } from './harness/runner.js';
import { type BenchSettings, readSettings, settingsOrExit } from './harness/settings.js';
import type { RoundContext, RunningTarget, Target } from './harness/target.js';
import { CORE_PATH, CORE_ROUTE_DESCRIPTION, coreRoutes, startGateway } from './targets/gateway.js';

const ONE = 'gateway-1';
const TWO = 'gateway-2';
/** The number: req/s of gateway-2 × gateway-1, "when the load generator and upstreams are light". */
const TARGET_RATIO = 1.3;
/**
 * A worker whose CPU was under this share of an even split of the workers' CPU did not really
 * serve: the cluster's round-robin hands each worker half of the 64 connections.
 */
const MIN_WORKER_SHARE = 0.25;
/** % of a core above which a process is taken as saturated. */
const SATURATED = 90;
/** % busy (of all CPUs) above which the machine's CPU is taken as full. */
const MACHINE_FULL = 90;
/** The route's name in coreRoutes: the label of the responses the gateway counted. */
const ROUTE = 'bench';

/** What one started target saw: its processes when ready, and its /metrics just before its stop. */
interface WorkersRun {
  readonly target: string;
  readonly workers: number;
  /** The gateway's processes when it was ready: the primary, then its workers (workers: 1: the one process). */
  readonly pids: readonly number[];
  /** gateway_requests_total{route="bench",status="200"} summed over the workers by the primary; null when unread. */
  readonly responses200: number | null;
  readonly problems: readonly string[];
}

interface WorkersMeasurement extends WorkersRun {
  readonly round: number;
  /** 200 answers the load generator counted: the check request, the warm-up and the measurement. */
  readonly answered: number;
}

/** Medians over a target's clean measurements of where the CPU went; % are of one core. */
interface CpuSplit {
  readonly target: string;
  readonly rounds: number;
  readonly requestsPerSecond: Spread | null;
  /** The gateway's processes summed. */
  readonly gatewayPercent: number;
  /** Per process, primary (or the one process) first, then the workers in pid order. */
  readonly processPercent: readonly number[];
  readonly generatorPercent: number;
  readonly upstreamsPercent: number;
  /** Busy time on the machine that none of the above used: other processes, the kernel's softirqs. */
  readonly otherPercent: number;
  /** How busy the machine was, % of all its CPUs. */
  readonly machineBusyPercent: number;
  readonly gatewayUsPerRequest: number;
  /** Load generator + upstreams, CPU µs per request. */
  readonly loadSideUsPerRequest: number;
}

function workersTarget(workers: number, onStopped: (run: WorkersRun) => void): Target {
  const name = `gateway-${workers}`;
  const description = `the gateway (dist/src/cli/main.js): ${CORE_ROUTE_DESCRIPTION}; gateway.yaml workers: ${workers} ` +
    (workers === 1 ? '(one process, as without the field)' : `(a primary serving the admin listener, and ${workers} forked workers sharing the public listener, round-robin)`);
  const scenario = { name, description, routes: coreRoutes, path: CORE_PATH, gatewayOverrides: { workers } };
  // workers: 1 runs the gateway in its own process; workers: N a primary that forks N.
  const expected = workers === 1 ? 1 : workers + 1;
  return {
    name,
    description,
    async start(context: RoundContext): Promise<RunningTarget> {
      const gateway = await startGateway(scenario, context);
      const pids = gateway.pid === undefined ? [] : processTree(gateway.pid);
      if (pids.length !== expected) {
        await gateway.stop();
        throw new Error(`workers: ${workers} should run ${expected} process(es), found ${pids.length} (${pids.join(', ')})`);
      }
      let run: WorkersRun | null = null;
      return {
        port: gateway.port,
        path: gateway.path,
        ...(gateway.build === undefined ? {} : { build: gateway.build }),
        ...(gateway.pid === undefined ? {} : { pid: gateway.pid }),
        problems: () => [...(run?.problems ?? []), ...gateway.problems()],
        async stop(): Promise<void> {
          const problems: string[] = [];
          let responses200: number | null = null;
          try {
            responses200 = metricValue(await fetchMetrics(gateway.adminPort), 'gateway_requests_total', { route: ROUTE, status: '200' }) ?? 0;
          } catch (err) {
            problems.push(`could not read the gateway's /metrics: ${(err as Error).message}`);
          }
          // The primary replaces a worker that dies without a word at log level silent: only its pid tells.
          const now = gateway.pid === undefined ? [] : processTree(gateway.pid);
          if (now.join() !== pids.join()) problems.push(`the gateway's processes changed while it was measured (${pids.join(', ')} when ready, ${now.join(', ')} at stop): a worker died`);
          await gateway.stop();
          run = { target: name, workers, pids, responses200, problems };
          onStopped(run);
        },
      };
    },
  };
}

async function main(): Promise<number> {
  const settings = settingsOrExit('bench:workers', () => readSettings(process.argv.slice(2), process.env));
  if (settings === null) return 2;
  const out = (line = ''): void => void process.stdout.write(`${line}\n`);

  // Deliberately off whatever the machine allows (see the top of this file); the load generator
  // stays unpinned too, so it is not pinSelf()'d.
  const detected = detectPinning();
  const pinning: CpuPinning = {
    ...detected,
    enabled: false,
    reason: 'off on purpose: a workers: 2 gateway needs both CPUs, so in both targets the gateway, the load generator and the upstreams share them',
  };
  const machine = describeMachine(pinning);
  const date = new Date().toISOString();
  machineHeader(out, 'edge-gateway benchmark: workers: 2 against workers: 1', date, machine, null, false);
  return measure(out, settings, pinning, machine, date);
}

async function measure(out: (line?: string) => void, settings: BenchSettings, pinning: CpuPinning, machine: MachineInfo, date: string): Promise<number> {
  const cores = availableParallelism();
  out(`${settingsLine(settings)}; order rotated each round; fresh gateway per measurement`);
  const stopped = new Map<string, WorkersRun>();
  const targets = [1, 2].map((n) => workersTarget(n, (run) => stopped.set(run.target, run)));
  for (const t of targets) out(`  ${t.name}: ${t.description}`);
  out(`  upstreams: ${UPSTREAM_COUNT} node:http servers in one process, ${UPSTREAM_BODY_BYTES}-byte body`);
  out(`  CPU: the gateway's process tree (primary + workers, summed), the load generator (autocannon in this process) and the upstreams' process, in % of one core (${cores} cores = ${cores * 100} %)`);
  out();

  const nameWidth = Math.max(...targets.map((t) => t.name.length));
  const workersMeasurements: WorkersMeasurement[] = [];
  const record = await runRounds(targets, settings, pinning, {
    onRoundStart: (round, order) => out(`round ${round}/${settings.rounds}: ${order.join(' → ')}`),
    onMeasurement: (m) => {
      const run = stopped.get(m.target);
      stopped.delete(m.target);
      const wm = run === undefined ? null : workersMeasurement(m, run, settings.connections);
      if (wm !== null) workersMeasurements.push(wm);
      out(measurementLine(m, nameWidth));
      if (m.load !== null) out(cpuLine(m, wm, cores));
    },
  });

  const checked = withProblems(record, new Map(workersMeasurements.map((w) => [`${w.round}/${w.target}`, w.problems])));
  const summary = summarise(targets, checked, null);
  const byName = new Map(summary.map((s) => [s.target, s]));
  const splits = targets.map((t) => cpuSplit(t.name, checked.measurements, cores));

  printSummary(out, summary, date, machine);
  out(`where the CPU went (medians over clean rounds; % of one core, ${cores} cores = ${cores * 100} %):`);
  out();
  out(cpuSplitTable(splits, cores));
  out();
  const one = byName.get(ONE);
  const two = byName.get(TWO);
  if (two !== undefined) out(ratioLine(two, one, perRoundNote(two)));
  const verdict = ratioVerdict(two, TARGET_RATIO, 'workers: 2 against workers: 1, same load');
  out(`target (req/s × ${ONE}, median over clean rounds${settings.smoke ? '; SMOKE: one short round, not a measurement' : ''}): ${verdict.line}`);
  const limits = limitLines(splits, one, cores, settings.connections);
  for (const line of limits) out(line);
  for (const line of buildWarnings(targets, checked.measurements)) out(line);

  const file = await writeResults('workers', date, {
    scenario: 'workers',
    date,
    machine,
    cores,
    settings,
    targets: targets.map((t) => ({ name: t.name, description: t.description })),
    summary,
    cpuSplit: splits,
    verdict: (({ line: _line, ...v }) => v)(verdict),
    limits,
    workersMeasurements,
    measurements: checked.measurements,
    roundProblems: checked.roundProblems,
  });
  out(`all rounds: ${file}`);

  return reportFailures(out, checked.roundProblems, checked.measurements);
}

/**
 * The target's own findings, then: /metrics must count every 200 the load generator got (the
 * primary sums the workers' counters: a worker left out would show as a shortfall) and, beyond
 * them, at most the requests in flight when the warm-up's and the measurement's load stopped; and
 * every worker must have taken a share of the load, as its CPU during the measurement shows.
 */
function workersMeasurement(m: Measurement, run: WorkersRun, connections: number): WorkersMeasurement {
  const answered = m.load === null ? 0 : 1 + (m.warmup?.statusCodes['200'] ?? 0) + (m.load.statusCodes['200'] ?? 0);
  const problems = [...run.problems];
  if (m.load !== null && run.responses200 !== null) {
    if (run.responses200 < answered) problems.push(`the gateway's /metrics counted ${run.responses200} answers of 200 on route ${ROUTE}, fewer than the ${answered} the load generator got: a worker's counts are missing`);
    else if (run.responses200 > answered + 2 * connections) problems.push(`the gateway's /metrics counted ${run.responses200} answers of 200 on route ${ROUTE}, more than the ${answered} the load generator got plus the requests in flight`);
  }
  const workerCpu = run.workers > 1 ? m.processCpuPercent.slice(1) : [];
  if (m.load !== null && workerCpu.length > 0) {
    const known = workerCpu.map((w) => w.cpuPercent ?? Number.NaN).filter(Number.isFinite);
    const even = known.reduce((a, b) => a + b, 0) / workerCpu.length;
    for (const w of workerCpu) {
      if (w.cpuPercent !== null && w.cpuPercent < MIN_WORKER_SHARE * even) {
        problems.push(`worker ${w.pid} used ${formatInt(w.cpuPercent)} % of a core against an even share of ${formatInt(even)} %: it hardly served`);
      }
    }
  }
  return { ...run, round: m.round, answered, problems };
}

function machineBusy(m: Measurement): number {
  const busy = m.cpuBusyPercent?.filter(Number.isFinite) ?? [];
  return busy.length === 0 ? Number.NaN : busy.reduce((a, b) => a + b, 0) / busy.length;
}

const pct = (n: number | null | undefined): string => `${formatInt(n ?? Number.NaN)} %`;

function cpuLine(m: Measurement, wm: WorkersMeasurement | null, cores: number): string {
  const [root, ...children] = m.processCpuPercent;
  const split = children.length === 0 ? '' : ` (primary ${pct(root?.cpuPercent)}, workers ${children.map((c) => pct(c.cpuPercent)).join(' + ')})`;
  const side = m.loadSideCpuPercent;
  const counted = wm?.responses200 === null || wm === null ? '' : `; /metrics counted ${formatInt(wm.responses200)} answers of 200 for ${formatInt(wm.answered)} received`;
  return `      cpu: gateway ${pct(m.cpuPercent)}${split}; load generator ${pct(side?.generator)}, upstreams ${pct(side?.upstreams)}; ` +
    `machine ${pct(machineBusy(m))} busy (of ${cores} cores)${counted}`;
}

function cpuSplit(target: string, measurements: readonly Measurement[], cores: number): CpuSplit {
  const clean = measurements.filter((m) => m.target === target && m.problems.length === 0 && m.load !== null);
  const med = (pick: (m: Measurement) => number | null | undefined): number => median(clean.map((m) => pick(m) ?? Number.NaN).filter(Number.isFinite));
  const processes = Math.max(0, ...clean.map((m) => m.processCpuPercent.length));
  const loadSide = (m: Measurement): number => (m.loadSideCpuPercent?.generator ?? Number.NaN) + (m.loadSideCpuPercent?.upstreams ?? Number.NaN);
  return {
    target,
    rounds: clean.length,
    requestsPerSecond: spread(clean.map((m) => m.load?.requestsPerSecond ?? Number.NaN)),
    gatewayPercent: med((m) => m.cpuPercent),
    processPercent: Array.from({ length: processes }, (_, i) => med((m) => m.processCpuPercent[i]?.cpuPercent)),
    generatorPercent: med((m) => m.loadSideCpuPercent?.generator),
    upstreamsPercent: med((m) => m.loadSideCpuPercent?.upstreams),
    otherPercent: med((m) => Math.max(0, machineBusy(m) * cores - (m.cpuPercent ?? Number.NaN) - loadSide(m))),
    machineBusyPercent: med(machineBusy),
    gatewayUsPerRequest: med((m) => m.cpuUsPerRequest),
    loadSideUsPerRequest: med((m) => (m.load === null || m.load.requestsPerSecond <= 0 ? Number.NaN : (loadSide(m) / 100) * 1e6 / m.load.requestsPerSecond)),
  };
}

function perProcess(s: CpuSplit): string {
  if (s.rounds === 0) return '–';
  if (s.processPercent.length <= 1) return 'one process';
  const [primary, ...workers] = s.processPercent;
  return `primary ${pct(primary)}, workers ${workers.map(pct).join(' + ')}`;
}

/** Markdown, like the summary tables: pasted as-is into docs/performance.md. */
function cpuSplitTable(splits: readonly CpuSplit[], cores: number): string {
  const rows = [
    `| target | req/s median (min – max) | gateway CPU % | gateway per process | load generator CPU % | upstreams CPU % | other CPU % | machine busy (of ${cores} cores) | gateway µs/req | load side µs/req |`,
    '|---|---:|---:|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of splits) {
    const r = s.requestsPerSecond;
    const rps = r === null ? '–' : `${formatInt(r.median)} (${formatInt(r.min)} – ${formatInt(r.max)})`;
    rows.push(`| ${s.target} | ${rps} | ${formatInt(s.gatewayPercent)} | ${perProcess(s)} | ${formatInt(s.generatorPercent)} | ${formatInt(s.upstreamsPercent)} ` +
      `| ${formatInt(s.otherPercent)} | ${pct(s.machineBusyPercent)} | ${formatInt(s.gatewayUsPerRequest)} | ${formatInt(s.loadSideUsPerRequest)} |`);
  }
  return rows.join('\n');
}

function perRoundNote(s: TargetSummary): string {
  const r = s.vsBaseline?.perRound.requestsPerSecond;
  return r === null || r === undefined ? '' : `; req/s per round ${formatRatio(r.min)} – ${formatRatio(r.max)}`;
}

/**
 * Per target, what held its req/s: its gateway's own cores (every gateway process doing the
 * proxying saturated), the machine's CPU (nearly every core busy, whoever used it), or neither
 * (the load generator's connections waited on round trips). Then the most the machine could carry
 * at the measured costs per request, whatever the number of workers.
 */
function limitLines(splits: readonly CpuSplit[], one: TargetSummary | undefined, cores: number, connections: number): string[] {
  const lines = ['what limited it:'];
  for (const s of splits) {
    if (s.rounds === 0) {
      lines.push(`  ${s.target}: not measured (no clean round)`);
      continue;
    }
    const servers = s.processPercent.length <= 1 ? s.processPercent : s.processPercent.slice(1);
    const who = servers.length === 1 ? `its one process at ${pct(servers[0])} of a core` : `its workers at ${servers.map(pct).join(' and ')} of a core each (primary ${pct(s.processPercent[0])})`;
    const sides = `the load generator used ${pct(s.generatorPercent)} of a core and the upstreams ${pct(s.upstreamsPercent)} (together ${pct(s.generatorPercent + s.upstreamsPercent)}), ` +
      `the gateway ${pct(s.gatewayPercent)}, the rest (other processes, kernel) ${pct(s.otherPercent)}`;
    if (servers.length > 0 && servers.every((p) => p >= SATURATED)) {
      lines.push(`  ${s.target}: the gateway, ${who}; the machine's ${cores} cores were ${pct(s.machineBusyPercent)} busy: ${sides}`);
    } else if (s.machineBusyPercent >= MACHINE_FULL) {
      lines.push(`  ${s.target}: the machine's CPU: its ${cores} cores were ${pct(s.machineBusyPercent)} busy: ${sides}; the gateway got no more (${who})`);
    } else {
      lines.push(`  ${s.target}: neither the gateway (${who}) nor the machine (${pct(s.machineBusyPercent)} busy) was full: the offered load was the limit ` +
        `(${connections} connections, one request in flight each, waiting on round trips); ${sides}`);
    }
  }
  // The load side's CPU grows with req/s like the gateway's: with both on the same cores, more
  // workers can only take CPU from the load generator and the upstreams.
  const two = splits.find((s) => s.target === TWO);
  const base = one?.requestsPerSecond ?? Number.NaN;
  if (two !== undefined && two.rounds > 0) {
    const perRequest = two.gatewayUsPerRequest + two.loadSideUsPerRequest;
    const ceiling = (cores * 1e6) / perRequest;
    const targetLoadSide = (cores * 1e6) / (TARGET_RATIO * base) - two.gatewayUsPerRequest;
    const us = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '–');
    lines.push(`  ceiling: at ${TWO}'s CPU costs per request (gateway ${us(two.gatewayUsPerRequest)} µs + load side ${us(two.loadSideUsPerRequest)} µs), ` +
      `${cores} fully busy cores carry at most ~${formatInt(ceiling)} req/s, ${formatRatio(ceiling / base)} ${ONE}'s: the most any number of workers can give with this load generator and these upstreams on this machine. ` +
      (targetLoadSide > 0
        ? `${TARGET_RATIO}× would need the load side at ≤ ${us(targetLoadSide)} µs per request.`
        : `${TARGET_RATIO}× is out of reach even with a load side that cost nothing.`));
  }
  return lines;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench:workers: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
