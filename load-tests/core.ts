// `npm run bench`: the core proxy path of the gateway against a bare fastify proxy, on the same
// upstreams, in one interleaved run. Read the ratios, not the absolute figures (PERF-NOTES).
//
//   npm run bench                              7 rounds × 10 s per target
//   BENCH_ROUNDS=9 BENCH_DURATION=5 npm run bench
//   npm run bench -- --smoke                   1 round × 2 s: does the harness still run? (CI)
//
// Exit status: 0 when every measurement was clean; 1 when any target served an error or a non-2xx
// response, crashed, or did not stop cleanly (a benchmark that measured errors measured nothing);
// 2 on bad settings.
import { buildWarnings, cpuNotes, describeMachine, machineHeader, measurementLine, printSummary, ratioLine, reportFailures, settingsLine, summarise, writeReport } from './harness/report.js';
import { UPSTREAM_BODY_BYTES, detectPinning, pinSelf } from './harness/processes.js';
import { runRounds, UPSTREAM_COUNT } from './harness/runner.js';
import { readSettings, settingsOrExit } from './harness/settings.js';
import type { Target } from './harness/target.js';
import { bareProxyTarget } from './targets/bare.js';
import { CORE_PATH, CORE_ROUTE_DESCRIPTION, coreRoutes, gatewayTarget } from './targets/gateway.js';

/** The first target is the baseline every ratio is taken against. */
const TARGETS: readonly Target[] = [
  bareProxyTarget({ name: 'bare', prefix: '/api' }),
  gatewayTarget({
    name: 'gateway',
    description: `the gateway (dist/src/cli/main.js): ${CORE_ROUTE_DESCRIPTION}`,
    routes: coreRoutes,
    path: CORE_PATH,
  }),
];

async function main(): Promise<number> {
  const settings = settingsOrExit('bench', () => readSettings(process.argv.slice(2), process.env));
  if (settings === null) return 2;
  const out = (line = ''): void => void process.stdout.write(`${line}\n`);

  const pinning = detectPinning();
  const selfPinProblem = pinSelf(pinning);
  const machine = describeMachine(pinning);
  const date = new Date().toISOString();

  machineHeader(out, 'edge-gateway benchmark', date, machine, selfPinProblem, pinning.enabled);
  out(`${settingsLine(settings)}; order rotated each round; fresh processes per measurement`);
  for (const t of TARGETS) out(`  ${t.name}: ${t.description}`);
  out(`  upstreams: ${UPSTREAM_COUNT} node:http servers in one process, ${UPSTREAM_BODY_BYTES}-byte body`);
  out();

  const nameWidth = Math.max(...TARGETS.map((t) => t.name.length));
  const record = await runRounds(TARGETS, settings, pinning, {
    onRoundStart: (round, order) => out(`round ${round}/${settings.rounds}: ${order.join(' → ')}`),
    onMeasurement: (m) => out(measurementLine(m, nameWidth)),
  });
  const summary = summarise(TARGETS, record, pinning.enabled ? pinning.proxyCpu : null);

  printSummary(out, summary, date, machine);
  for (const s of summary) if (s.vsBaseline !== null) out(ratioLine(s, summary[0]));
  for (const line of [...cpuNotes(summary, null), ...buildWarnings(TARGETS, record.measurements)]) out(line);

  const file = await writeReport({
    date,
    machine,
    settings,
    targets: TARGETS.map((t) => ({ name: t.name, description: t.description })),
    summary,
    measurements: record.measurements,
    roundProblems: record.roundProblems,
  });
  out(`all rounds: ${file}`);

  return reportFailures(out, record.roundProblems, record.measurements);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
