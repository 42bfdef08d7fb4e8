// `npm run bench:ratelimit`: the core scenario's route behind a rate limit decided in Redis, against
// the same route without a limit, in one interleaved run (the harness of `npm run bench`). Three
// targets:
//
//   gateway-nolimit   the route without a limit: the baseline every ratio is taken against
//   gateway-redis     rateLimit: [roomy] with gateway.yaml's redis block: every decision in Redis,
//                     the decisions of one event-loop turn batched into one script call
//   gateway-local     the same policy without a redis block: decided in the gateway process
//
// The policy never refuses (a refused request fails the measurement): what is measured is the cost
// of deciding. Issue targets: gateway-redis ≥ 0.9× the baseline's req/s, and at most one Redis
// round trip per request (script calls the gateway made / decisions it made).
//
// redis-server (on PATH; started here, nothing saved to disk) shares the load generator's and
// upstreams' CPU, so the gateway keeps its core to itself as in the other scenarios.
//
//   npm run bench:ratelimit                        7 rounds × 10 s per target (about 5 minutes)
//   BENCH_ROUNDS=9 BENCH_DURATION=5 npm run bench:ratelimit
//   npm run bench:ratelimit -- --smoke             1 round × 2 s: does it run? (CI)
//
// Exit status: 0 when every measurement was clean (whether or not the targets were met: a verdict
// from a shared machine is for a reader, not for CI); 1 when any target served an error or a
// non-2xx response, limited a request, decided one outside Redis, crashed, or did not stop cleanly;
// 2 on bad settings or when redis-server is not installed.
import { type CpuPinning, UPSTREAM_BODY_BYTES, detectPinning, pinSelf } from './harness/processes.js';
import { type BenchRedis, requireRedisServer, startRedisServer } from './harness/redis-server.js';
import {
  type MachineInfo,
  type Spread,
  buildWarnings,
  cpuNotes,
  describeMachine,
  formatInt,
  machineHeader,
  measurementLine,
  median,
  nullIfNaN,
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
import type { Target } from './harness/target.js';
import { type DecisionStore, POLICY, REDIS_SETTINGS, ROOMY, type RateLimitRun, rateLimitRouteTarget } from './targets/ratelimit.js';

const NOLIMIT = 'gateway-nolimit';
const REDIS = 'gateway-redis';
const LOCAL = 'gateway-local';
/** The issue's numbers. */
const TARGET_RATIO = 0.9;
const MAX_ROUND_TRIPS = 1;

/** A measurement's rate-limit figures, against what the load generator saw. */
interface RateLimitMeasurement extends RateLimitRun {
  readonly round: number;
  /** 200 answers of the check request, the warm-up and the measurement: every one was decided. */
  readonly answered: number;
  /** Script calls per decision over the gateway's life; null without Redis or without figures. */
  readonly roundTripsPerRequest: number | null;
}

function targetsFor(redis: BenchRedis, onStopped: (run: RateLimitRun) => void): Target[] {
  const route = `the gateway (dist/src/cli/main.js): one prefix route /api (stripPrefix) over a pool of ${UPSTREAM_COUNT} static endpoints, least-request, metrics on, access log off`;
  const policy = `rateLimits.${POLICY} { key: ${ROOMY.key}, limit: ${ROOMY.limit}, window: ${ROOMY.window} }`;
  const plans: readonly { name: string; store: DecisionStore; description: string }[] = [
    { name: NOLIMIT, store: 'none', description: `${route}; a ${policy} entry the route does not use` },
    {
      name: REDIS,
      store: 'redis',
      description: `the same route with rateLimit: [${POLICY}] and gateway.yaml redis: { url, commandTimeout: ${REDIS_SETTINGS.commandTimeout}, failureMode: ${REDIS_SETTINGS.failureMode} }: ` +
        'every decision in Redis (one Lua script call per event-loop turn carries all of that turn\'s requests)',
    },
    { name: LOCAL, store: 'local', description: `the same route with rateLimit: [${POLICY}] and no redis block: decided by the in-process store` },
  ];
  return plans.map((p) => rateLimitRouteTarget({ name: p.name, description: p.description, store: p.store, redis, onStopped }));
}

async function main(): Promise<number> {
  const settings = settingsOrExit('bench:ratelimit', () => readSettings(process.argv.slice(2), process.env));
  if (settings === null) return 2;
  const redisVersion = requireRedisServer('bench:ratelimit');
  if (redisVersion === null) return 2;
  const out = (line = ''): void => void process.stdout.write(`${line}\n`);

  const pinning = detectPinning();
  const selfPinProblem = pinSelf(pinning);
  const machine = describeMachine(pinning);
  const date = new Date().toISOString();
  machineHeader(out, 'edge-gateway benchmark: rate-limited route on Redis', date, machine, selfPinProblem, pinning.enabled);

  const redis = await startRedisServer(pinning.enabled ? pinning.loadCpu : null);
  try {
    out(`redis: ${redisVersion}, 127.0.0.1:${redis.port}, --save '' --appendonly no, ${pinning.enabled ? `on CPU ${pinning.loadCpu} with the load generator and upstreams` : 'unpinned'}; one server for the whole run`);
    return await measure(out, redis, settings, pinning, machine, date);
  } finally {
    await redis.stop();
  }
}

async function measure(
  out: (line?: string) => void,
  redis: BenchRedis,
  settings: BenchSettings,
  pinning: CpuPinning,
  machine: MachineInfo,
  date: string,
): Promise<number> {
  out(`${settingsLine(settings)}; order rotated each round; fresh gateway per measurement`);
  const stopped = new Map<string, RateLimitRun>();
  const targets = targetsFor(redis, (run) => stopped.set(run.target, run));
  for (const t of targets) out(`  ${t.name}: ${t.description}`);
  out(`  upstreams: ${UPSTREAM_COUNT} node:http servers in one process, ${UPSTREAM_BODY_BYTES}-byte body`);
  out(`  policy: every request comes from 127.0.0.1, so all count against one key; ${formatInt(ROOMY.limit)} per ${ROOMY.window} (burst = limit) is ~50× what one gateway core serves, so it never refuses: a limited request fails the measurement`);
  out();

  const nameWidth = Math.max(...targets.map((t) => t.name.length));
  const rateLimitMeasurements: RateLimitMeasurement[] = [];
  const record = await runRounds(targets, settings, pinning, {
    onRoundStart: (round, order) => out(`round ${round}/${settings.rounds}: ${order.join(' → ')}`),
    onMeasurement: (m) => {
      const run = stopped.get(m.target);
      stopped.delete(m.target);
      const rm = run === undefined ? null : rateLimitMeasurement(m, run, settings.connections);
      if (rm !== null) rateLimitMeasurements.push(rm);
      out(measurementLine(m, nameWidth));
      if (rm !== null) out(rateLimitLine(rm));
    },
  });

  // A measurement with a request not decided as it should have been counts as failed.
  const checked = withProblems(
    { ...record, roundProblems: [...record.roundProblems, ...redis.problems()] },
    new Map(rateLimitMeasurements.map((r) => [`${r.round}/${r.target}`, r.problems])),
  );
  const summary = summarise(targets, checked, pinning.enabled ? pinning.proxyCpu : null);
  const byName = new Map(summary.map((s) => [s.target, s]));
  const clean = new Set(checked.measurements.filter((m) => m.problems.length === 0 && m.load !== null).map((m) => `${m.round}/${m.target}`));
  const cleanRuns = (target: string): RateLimitMeasurement[] => rateLimitMeasurements.filter((r) => r.target === target && clean.has(`${r.round}/${r.target}`));
  const roundTrips = cleanRuns(REDIS).map((r) => r.roundTripsPerRequest).filter((n): n is number => n !== null);
  const roundTripsSpread = spread(roundTrips);

  printSummary(out, summary, date, machine);
  out('| target | decided by | decisions (median) | script calls to Redis (median) | Redis round trips per request (median) | redis-server CPU µs per request (median) |');
  out('|---|---|---:|---:|---:|---:|');
  for (const t of targets) {
    const runs = cleanRuns(t.name);
    const figure = (pick: (r: RateLimitMeasurement) => number | null, format: (n: number) => string): string => {
      const values = runs.map(pick).filter((n): n is number => n !== null && Number.isFinite(n));
      return values.length === 0 ? '–' : format(median(values));
    };
    const store = runs[0]?.store ?? rateLimitMeasurements.find((r) => r.target === t.name)?.store;
    out(`| ${t.name} | ${store === 'redis' ? 'Redis' : store === 'local' ? 'in process' : '– (no limit)'} ` +
      `| ${figure((r) => decisionsOf(r), formatInt)} | ${figure((r) => r.scriptCalls, formatInt)} | ${figure((r) => r.roundTripsPerRequest, (n) => n.toFixed(3))} ` +
      `| ${figure((r) => (r.redisCpuS === null || r.answered === 0 ? null : (r.redisCpuS * 1e6) / r.answered), (n) => n.toFixed(1))} |`);
  }
  out();
  const base = byName.get(NOLIMIT);
  for (const s of summary) if (s.vsBaseline !== null) out(ratioLine(s, base));
  out(roundTripsLine(roundTripsSpread));

  out();
  const verdicts = [ratioVerdict(byName.get(REDIS), TARGET_RATIO, 'decided in Redis')];
  out(`targets (req/s × ${NOLIMIT}, median over clean rounds${settings.smoke ? '; SMOKE: one short round, not a measurement' : ''}):`);
  for (const v of verdicts) out(`  ${v.line}`);
  const local = byName.get(LOCAL)?.vsBaseline?.requestsPerSecond;
  out(`  (${LOCAL}, for comparison, no target: ${local === undefined || !Number.isFinite(local) ? 'not measured' : `${local.toFixed(2)}×`})`);

  for (const line of [...cpuNotes(summary, { measurements: checked.measurements, pinning }), ...buildWarnings(targets, checked.measurements)]) out(line);

  const file = await writeResults('ratelimit', date, {
    scenario: 'ratelimit',
    date,
    machine,
    settings,
    redis: { url: redis.url, commandTimeout: REDIS_SETTINGS.commandTimeout, failureMode: REDIS_SETTINGS.failureMode, cpu: pinning.enabled ? pinning.loadCpu : null },
    policy: { name: POLICY, ...ROOMY },
    targets: targets.map((t) => ({ name: t.name, description: t.description })),
    summary,
    roundTripsPerRequest: roundTripsSpread,
    verdicts: [
      ...verdicts.map(({ line: _line, ...v }) => v),
      { target: REDIS, roundTripsAtMost: MAX_ROUND_TRIPS, roundTrips: nullIfNaN(roundTripsSpread?.median ?? Number.NaN), met: roundTripsSpread === null ? null : roundTripsSpread.median <= MAX_ROUND_TRIPS },
    ],
    rateLimitMeasurements,
    measurements: checked.measurements,
    roundProblems: checked.roundProblems,
  });
  out(`all rounds: ${file}`);

  return reportFailures(out, checked.roundProblems, checked.measurements);
}

function decisionsOf(r: RateLimitRun): number | null {
  return r.decisions === null ? null : r.decisions.allowed + r.decisions.limited + r.decisions.storeError;
}

/**
 * Every 200 the route gave was decided first, so the gateway's decisions must cover them; beyond
 * them only the requests in flight when a phase's load stopped (answered, not counted by the load
 * generator): at most one per connection each for the warm-up and the measurement.
 */
function rateLimitMeasurement(m: Measurement, run: RateLimitRun, connections: number): RateLimitMeasurement {
  const answered = m.load === null ? 0 : 1 + (m.warmup?.statusCodes['200'] ?? 0) + (m.load.statusCodes['200'] ?? 0);
  const decisions = decisionsOf(run);
  const problems = [...run.problems];
  if (run.store !== 'none' && decisions !== null && m.load !== null) {
    if (decisions < answered) problems.push(`the gateway made ${decisions} decisions for ${answered} answers of 200: some requests were not rate-limited`);
    else if (decisions > answered + 2 * connections) problems.push(`the gateway made ${decisions} decisions for ${answered} answers of 200: more than the requests in flight explain`);
  }
  return {
    ...run,
    round: m.round,
    answered,
    roundTripsPerRequest: run.store === 'redis' && run.scriptCalls !== null && decisions !== null && decisions > 0 ? run.scriptCalls / decisions : null,
    problems,
  };
}

function rateLimitLine(r: RateLimitMeasurement): string {
  const flags = r.problems.map((p) => `\n    ! ${p}`).join('');
  if (r.decisions === null) return `      rate limit: gateway metrics unread${flags}`;
  const d = r.decisions;
  const decided = `${formatInt(d.allowed)} allowed, ${formatInt(d.limited)} limited, ${formatInt(d.storeError)} store errors for ${formatInt(r.answered)} answers of 200`;
  if (r.store !== 'redis') return `      rate limit: ${r.store === 'none' ? 'no limit on the route' : 'in process'}; ${decided}${flags}`;
  const calls = r.scriptCalls === null ? 'script calls unread' : `${formatInt(r.scriptCalls)} script calls (${r.roundTripsPerRequest?.toFixed(3) ?? '–'} per request)`;
  const redisSide = r.redisScriptCalls === null ? '' : `; redis-server ran ${formatInt(r.redisScriptCalls)} scripts (heartbeats included)`;
  const cpu = r.redisCpuS === null ? '' : `, ${formatInt(r.redisCpuS * 1000)} ms of CPU`;
  return `      rate limit: Redis (store up ${r.storeUp ?? '–'}, ${formatInt(r.storeErrors ?? Number.NaN)} store errors); ${decided}; ${calls}${redisSide}${cpu}${flags}`;
}

function roundTripsLine(spread: Spread | null): string {
  if (spread === null) return `Redis round trips per request (${REDIS}): not measured (no clean round)`;
  return `Redis round trips per request (${REDIS}, script calls / decisions, median over clean rounds): ${spread.median.toFixed(3)} ` +
    `(${formatInt(1 / spread.median)} decisions per script call; per round ${spread.min.toFixed(3)} – ${spread.max.toFixed(3)}): ` +
    `expected ≤ ${MAX_ROUND_TRIPS}: ${spread.median <= MAX_ROUND_TRIPS ? 'met' : 'NOT met'}`;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench:ratelimit: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
