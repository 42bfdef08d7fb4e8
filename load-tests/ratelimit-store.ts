// `npm run bench:ratelimit-store`: the Redis store alone, in this process, without the gateway or
// HTTP: how many decisions per second one process gets out of one Redis, and in how many script
// calls, for ioredis' enableAutoPipelining on and off, with the store's own batching (maxBatch as
// shipped: every decision of one event-loop turn in one call) and without it (maxBatch 1: one call
// per decision). The issue saw auto-pipelining slower with 64 callers in flight (59k against 86k
// script calls/s); this is where that is measured again, and where the faster setting is chosen.
//
// 64 callers (BENCH_CONNECTIONS) each loop `await store.decide([roomy], [key])` over keys never
// used twice, for BENCH_DURATION seconds after BENCH_WARMUP seconds of the same; each combination
// gets a fresh store (its own connection) per round, rounds interleaved, order rotated. This
// process runs on one CPU, redis-server on the other (taskset), so they never share a core.
//
//   npm run bench:ratelimit-store                  5 rounds × 3 s per combination (about 1½ minutes)
//   BENCH_ROUNDS=9 BENCH_DURATION=5 npm run bench:ratelimit-store
//   npm run bench:ratelimit-store -- --smoke       1 round × 1 s: does it run? (CI)
//
// Exit status: 0 when every measurement was clean; 1 when a call to Redis failed, the store went
// down (its decisions would then be made in process, and counted as Redis'), a decision refused,
// or Redis counted fewer script calls than the store got answers to; 2 on bad settings or when
// redis-server is not installed.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_BATCH, RedisStore, SILENT_RATE_LIMIT_EVENTS, type RateLimitEvents, gcraParams } from '../plugins/rate-limit/index.js';
import { cpuSeconds, detectPinning, pinSelf } from './harness/processes.js';
import { type BenchRedis, redisScriptCalls, requireRedisServer, startRedisServer } from './harness/redis-server.js';
import { type MachineInfo, type Spread, describeMachine, formatInt, formatRatio, machineHeader, median, reportFailures, spread, writeResults } from './harness/report.js';
import { rotate } from './harness/runner.js';
import { type BenchSettings, readSettings, settingsOrExit } from './harness/settings.js';
import { POLICY, REDIS_SETTINGS, ROOMY, ROOMY_WINDOW_MS } from './targets/ratelimit.js';

const SETTINGS_DEFAULTS = { rounds: 5, durationS: 3, smoke: { rounds: 1, durationS: 1 } };
const PARAMS = [gcraParams({ limit: ROOMY.limit, windowMs: ROOMY_WINDOW_MS, burst: ROOMY.limit })];
/** The gateway's commandTimeout: a slower call is a failure here too, so this measures what it would get. */
const COMMAND_TIMEOUT_MS = 100;
const STORE_UP_TIMEOUT_MS = 5_000;
/** No heartbeat during a measurement: its script calls would be counted as decisions' calls. */
const NO_HEARTBEAT_MS = 3_600_000;

interface Combination {
  readonly name: string;
  readonly autoPipelining: boolean;
  readonly maxBatch: number;
}

const combination = (autoPipelining: boolean, maxBatch: number): Combination => ({
  name: `autoPipelining ${autoPipelining ? 'on' : 'off'}, maxBatch ${maxBatch}`,
  autoPipelining,
  maxBatch,
});

/** The first is the store as the gateway runs it: the baseline every ratio is taken against. */
const COMBINATIONS: readonly Combination[] = [
  combination(false, MAX_BATCH),
  combination(true, MAX_BATCH),
  combination(false, 1),
  combination(true, 1),
];
const [SHIPPED, PIPELINED, ONE_BY_ONE, ONE_BY_ONE_PIPELINED] = COMBINATIONS as [Combination, Combination, Combination, Combination];

interface StoreMeasurement {
  readonly round: number;
  readonly position: number;
  readonly combination: string;
  readonly autoPipelining: boolean;
  readonly maxBatch: number;
  readonly startedAt: string;
  /** From the first decision asked for to the last answered, s. */
  readonly durationS: number;
  readonly decisions: number;
  readonly decisionsPerSecond: number;
  /** evalsha + eval counted by Redis over the measurement. */
  readonly scriptCalls: number;
  readonly scriptCallsPerSecond: number;
  /** Script calls the store got an answer to (its storeRoundTrip events): Redis' count checked. */
  readonly answeredCalls: number;
  readonly decisionsPerCall: number;
  /** This process' CPU (user + system) per decision, µs, and in % of its one core. */
  readonly cpuUsPerDecision: number;
  readonly cpuPercent: number;
  /** redis-server's CPU per script call, µs, and in % of its core; NaN off Linux. */
  readonly redisCpuUsPerCall: number;
  readonly redisCpuPercent: number;
  readonly problems: readonly string[];
}

interface CombinationSummary {
  readonly combination: string;
  readonly autoPipelining: boolean;
  readonly maxBatch: number;
  readonly rounds: number;
  readonly decisionsPerSecond: number;
  readonly scriptCallsPerSecond: number;
  readonly decisionsPerCall: number;
  readonly cpuUsPerDecision: number;
  readonly cpuPercent: number;
  readonly redisCpuUsPerCall: number;
  readonly redisCpuPercent: number;
  /** decisions/s over the shipped combination's in the same round; null for that one. */
  readonly vsShipped: Spread | null;
}

/** Keys never used twice in the run; in the gateway's layout, on a key part the way `ip` is. */
class KeySequence {
  #n = 0;
  next(): string {
    return `bench:${POLICY}:{10.${(this.#n >>> 16) & 255}.${(this.#n >>> 8) & 255}.${this.#n++ & 255}}`;
  }
}

async function main(): Promise<number> {
  const settings = settingsOrExit('bench:ratelimit-store', () => readSettings(process.argv.slice(2), process.env, SETTINGS_DEFAULTS));
  if (settings === null) return 2;
  const redisVersion = requireRedisServer('bench:ratelimit-store');
  if (redisVersion === null) return 2;
  const out = (line = ''): void => void process.stdout.write(`${line}\n`);

  const pinning = detectPinning();
  // The process measured here is this one: it takes the CPU a gateway gets in the other scenarios.
  const selfPinProblem = pinSelf(pinning, pinning.proxyCpu);
  const detected = describeMachine(pinning);
  const machine = {
    ...detected,
    pinning: pinning.enabled ? `this process (the store) on CPU ${pinning.proxyCpu}; redis-server on CPU ${pinning.loadCpu} (taskset)` : detected.pinning,
  };
  const date = new Date().toISOString();
  machineHeader(out, 'edge-gateway benchmark: rate-limit Redis store', date, machine, selfPinProblem, pinning.enabled);

  const redis = await startRedisServer(pinning.enabled ? pinning.loadCpu : null);
  try {
    out(`redis: ${redisVersion}, 127.0.0.1:${redis.port}, --save '' --appendonly no; one server for the whole run`);
    return await measure(out, redis, settings, machine, date);
  } finally {
    await redis.stop();
  }
}

async function measure(out: (line?: string) => void, redis: BenchRedis, settings: BenchSettings, machine: MachineInfo, date: string): Promise<number> {
  out(`${settings.smoke ? 'SMOKE: ' : ''}${settings.rounds} round(s) × ${settings.durationS} s per combination (after ${settings.warmupS} s warm-up), ` +
    `${settings.connections} callers in flight, each looping await store.decide([${POLICY}], [key]) over keys never used twice; ` +
    `a fresh RedisStore (commandTimeout ${COMMAND_TIMEOUT_MS} ms, failureMode ${REDIS_SETTINGS.failureMode}, no heartbeat) per measurement; order rotated each round`);
  out(`  ${SHIPPED.name}: as the gateway runs it (the baseline): one script call per event-loop turn carries every decision asked for in it`);
  out(`  ${PIPELINED.name}: the same batching, with ioredis sending the commands of one turn in one write`);
  out(`  ${ONE_BY_ONE.name}: one script call per decision, without the store's batching`);
  out(`  ${ONE_BY_ONE_PIPELINED.name}: one script call per decision, ioredis pipelining the calls of one turn (the issue's 59k vs 86k calls/s)`);
  out();

  const nameWidth = Math.max(...COMBINATIONS.map((c) => c.name.length));
  const keys = new KeySequence();
  const measurements: StoreMeasurement[] = [];
  const roundProblems: string[] = [];
  for (let round = 1; round <= settings.rounds; round++) {
    const order = rotate(COMBINATIONS, round - 1);
    out(`round ${round}/${settings.rounds}: ${order.map((c) => c.name).join(' → ')}`);
    for (const [i, c] of order.entries()) {
      const m = await measureCombination(c, redis, settings, keys, round, i + 1);
      measurements.push(m);
      out(measurementLine(m, nameWidth));
    }
  }
  roundProblems.push(...redis.problems());

  const summary = summarise(measurements);
  out();
  out(`medians over clean rounds (${date}; ${machine.cpus}; node ${machine.node}):`);
  out();
  out(summaryTable(summary));
  out();
  const byName = new Map(summary.map((s) => [s.combination, s]));
  const comparisons = [
    compare(byName.get(PIPELINED.name), byName.get(SHIPPED.name), measurements, 'decisionsPerSecond', 'decisions/s', `with the store's batching (maxBatch ${MAX_BATCH})`),
    compare(byName.get(ONE_BY_ONE_PIPELINED.name), byName.get(ONE_BY_ONE.name), measurements, 'scriptCallsPerSecond', 'script calls/s', 'one script call per decision (maxBatch 1)'),
    compare(byName.get(SHIPPED.name), byName.get(ONE_BY_ONE.name), measurements, 'decisionsPerSecond', 'decisions/s', 'the store\'s batching against none (autoPipelining off)'),
  ];
  for (const c of comparisons) out(c.line);
  out(keepLine(comparisons[0]!));

  const file = await writeResults('ratelimit-store', date, {
    scenario: 'ratelimit-store',
    date,
    machine,
    settings,
    redis: { url: redis.url, commandTimeoutMs: COMMAND_TIMEOUT_MS },
    params: PARAMS[0],
    combinations: COMBINATIONS,
    summary,
    comparisons: comparisons.map(({ line: _line, ...c }) => c),
    measurements,
    roundProblems,
  });
  out(`all rounds: ${file}`);
  return reportFailures(out, roundProblems, measurements.map((m) => ({ round: m.round, target: m.combination, problems: m.problems })));
}

async function measureCombination(c: Combination, redis: BenchRedis, settings: BenchSettings, keys: KeySequence, round: number, position: number): Promise<StoreMeasurement> {
  const startedAt = new Date().toISOString();
  const problems: string[] = [];
  let answeredCalls = 0;
  let wasUp = false;
  const events: RateLimitEvents = {
    ...SILENT_RATE_LIMIT_EVENTS,
    storeRoundTrip: () => void answeredCalls++,
    storeError: (reason, detail) => void problems.push(`a call to Redis failed (${reason}: ${detail}): its decisions were made in process`),
    storeState: (up, reason) => {
      if (up) wasUp = true;
      else if (wasUp) problems.push(`the store went down (${reason ?? 'no reason given'}): later decisions were made in process`);
    },
  };
  const store = new RedisStore({
    config: { url: redis.url, cluster: null, keyPrefix: 'bench:', commandTimeoutMs: COMMAND_TIMEOUT_MS, failureMode: REDIS_SETTINGS.failureMode },
    events,
    autoPipelining: c.autoPipelining,
    maxBatch: c.maxBatch,
    heartbeatIntervalMs: NO_HEARTBEAT_MS,
  });
  const base = { round, position, combination: c.name, autoPipelining: c.autoPipelining, maxBatch: c.maxBatch, startedAt };
  store.start();
  try {
    const deadline = Date.now() + STORE_UP_TIMEOUT_MS;
    while (!store.up && Date.now() < deadline) await sleep(10);
    if (!store.up) return failed(base, [...problems, `the store was not up ${STORE_UP_TIMEOUT_MS} ms after start`]);
    if (settings.warmupS > 0) await drive(store, settings.connections, settings.warmupS, keys);
    // Read with everything answered: the counts below cover exactly the measurement's calls.
    const callsBefore = await redisScriptCalls(redis.url);
    const answeredBefore = answeredCalls;
    const cpuBefore = process.cpuUsage();
    const redisCpuBefore = cpuSeconds(redis.pid);
    const run = await drive(store, settings.connections, settings.durationS, keys);
    const redisCpuAfter = cpuSeconds(redis.pid);
    const cpu = process.cpuUsage(cpuBefore);
    const scriptCalls = (await redisScriptCalls(redis.url)) - callsBefore;
    const answered = answeredCalls - answeredBefore;
    if (run.refused > 0) problems.push(`${run.refused} decisions refused: the policy is meant never to refuse`);
    if (run.decisions === 0) problems.push('no decision was made');
    if (scriptCalls < answered) problems.push(`Redis counted ${scriptCalls} script calls but the store got ${answered} answers: it was not talking to this Redis alone`);
    if (!store.up && !problems.some((p) => p.startsWith('the store went down'))) problems.push('the store was down when the measurement ended');
    const cpuS = (cpu.user + cpu.system) / 1e6;
    const redisCpuS = redisCpuBefore === null || redisCpuAfter === null ? Number.NaN : redisCpuAfter - redisCpuBefore;
    return {
      ...base,
      durationS: run.elapsedS,
      decisions: run.decisions,
      decisionsPerSecond: run.decisions / run.elapsedS,
      scriptCalls,
      scriptCallsPerSecond: scriptCalls / run.elapsedS,
      answeredCalls: answered,
      decisionsPerCall: run.decisions / scriptCalls,
      cpuUsPerDecision: (cpuS * 1e6) / run.decisions,
      cpuPercent: (cpuS / run.elapsedS) * 100,
      redisCpuUsPerCall: (redisCpuS * 1e6) / scriptCalls,
      redisCpuPercent: (redisCpuS / run.elapsedS) * 100,
      problems,
    };
  } catch (err) {
    return failed(base, [...problems, `measurement failed: ${(err as Error).message}`]);
  } finally {
    await store.stop();
  }
}

function failed(base: Pick<StoreMeasurement, 'round' | 'position' | 'combination' | 'autoPipelining' | 'maxBatch' | 'startedAt'>, problems: readonly string[]): StoreMeasurement {
  const nan = Number.NaN;
  return {
    ...base,
    durationS: nan,
    decisions: 0,
    decisionsPerSecond: nan,
    scriptCalls: 0,
    scriptCallsPerSecond: nan,
    answeredCalls: 0,
    decisionsPerCall: nan,
    cpuUsPerDecision: nan,
    cpuPercent: nan,
    redisCpuUsPerCall: nan,
    redisCpuPercent: nan,
    problems,
  };
}

/**
 * `callers` loops of one decision at a time until `seconds` have passed, then waits for the last
 * answers. The deadline is read in the loop, not set by a timer: once the store is down, decide()
 * answers synchronously and a timer would never get its turn.
 */
async function drive(store: RedisStore, callers: number, seconds: number, keys: KeySequence): Promise<{ decisions: number; refused: number; elapsedS: number }> {
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let decisions = 0;
  let refused = 0;
  const caller = async (): Promise<void> => {
    while (store.up && performance.now() < deadline) {
      const verdict = await store.decide(PARAMS, [keys.next()]);
      decisions++;
      if (verdict.kind !== 'decided' || verdict.states[0]?.allowed !== true) refused++;
    }
  };
  await Promise.all(Array.from({ length: callers }, caller));
  return { decisions, refused, elapsedS: (performance.now() - started) / 1000 };
}

function summarise(measurements: readonly StoreMeasurement[]): CombinationSummary[] {
  const clean = measurements.filter((m) => m.problems.length === 0);
  const shippedByRound = new Map(clean.filter((m) => m.combination === SHIPPED.name).map((m) => [m.round, m]));
  return COMBINATIONS.map((c) => {
    const ok = clean.filter((m) => m.combination === c.name);
    const med = (pick: (m: StoreMeasurement) => number): number => median(ok.map(pick).filter(Number.isFinite));
    return {
      combination: c.name,
      autoPipelining: c.autoPipelining,
      maxBatch: c.maxBatch,
      rounds: ok.length,
      decisionsPerSecond: med((m) => m.decisionsPerSecond),
      scriptCallsPerSecond: med((m) => m.scriptCallsPerSecond),
      decisionsPerCall: med((m) => m.decisionsPerCall),
      cpuUsPerDecision: med((m) => m.cpuUsPerDecision),
      cpuPercent: med((m) => m.cpuPercent),
      redisCpuUsPerCall: med((m) => m.redisCpuUsPerCall),
      redisCpuPercent: med((m) => m.redisCpuPercent),
      vsShipped: c === SHIPPED ? null : spread(ok.map((m) => m.decisionsPerSecond / (shippedByRound.get(m.round)?.decisionsPerSecond ?? Number.NaN))),
    };
  });
}

function measurementLine(m: StoreMeasurement, nameWidth: number): string {
  const head = `  round ${m.round} #${m.position}  ${m.combination.padEnd(nameWidth)}`;
  const body = Number.isFinite(m.decisionsPerSecond)
    ? `${formatInt(m.decisionsPerSecond).padStart(9)} decisions/s  ${formatInt(m.scriptCallsPerSecond).padStart(7)} script calls/s  ${m.decisionsPerCall.toFixed(1).padStart(5)} per call  ` +
      `store cpu ${m.cpuUsPerDecision.toFixed(1).padStart(5)} µs/decision ${formatInt(m.cpuPercent).padStart(3)} %  redis cpu ${m.redisCpuUsPerCall.toFixed(1).padStart(5)} µs/call ${formatInt(m.redisCpuPercent).padStart(3)} %`
    : 'not measured';
  const flags = m.problems.length === 0 ? '' : `\n${m.problems.map((p) => `    ! ${p}`).join('\n')}`;
  return `${head}  ${body}${flags}`;
}

function summaryTable(summary: readonly CombinationSummary[]): string {
  const rows = [
    '| enableAutoPipelining | maxBatch | clean rounds | decisions/s | script calls/s | decisions per call | store CPU µs/decision | store CPU % | redis CPU µs/call | redis CPU % | decisions/s × shipped (per round min – median – max) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of summary) {
    const vs = s.vsShipped === null ? 'baseline (shipped)' : `${formatRatio(s.vsShipped.min)} – ${formatRatio(s.vsShipped.median)} – ${formatRatio(s.vsShipped.max)}`;
    rows.push(`| ${s.autoPipelining ? 'on' : 'off'} | ${s.maxBatch} | ${s.rounds} | ${formatInt(s.decisionsPerSecond)} | ${formatInt(s.scriptCallsPerSecond)} | ${fixed(s.decisionsPerCall, 1)} ` +
      `| ${fixed(s.cpuUsPerDecision, 2)} | ${formatInt(s.cpuPercent)} | ${fixed(s.redisCpuUsPerCall, 1)} | ${formatInt(s.redisCpuPercent)} | ${vs} |`);
  }
  return rows.join('\n');
}

function fixed(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '–';
}

interface Comparison {
  readonly subject: string;
  readonly against: string;
  readonly figure: string;
  /** Ratio of the medians; null when either has no clean round. */
  readonly ratio: number | null;
  readonly perRound: Spread | null;
  readonly line: string;
}

/** `a` over `b` on one figure: the medians' ratio, and the same ratio inside each round. */
function compare(
  a: CombinationSummary | undefined,
  b: CombinationSummary | undefined,
  measurements: readonly StoreMeasurement[],
  key: 'decisionsPerSecond' | 'scriptCallsPerSecond',
  unit: string,
  what: string,
): Comparison {
  const subject = a?.combination ?? '?';
  const against = b?.combination ?? '?';
  const clean = measurements.filter((m) => m.problems.length === 0);
  const perRound = spread(clean.filter((m) => m.combination === subject).map((m) => m[key] / (clean.find((o) => o.combination === against && o.round === m.round)?.[key] ?? Number.NaN)));
  const ratio = a === undefined || b === undefined || !Number.isFinite(a[key] / b[key]) ? null : a[key] / b[key];
  const rounds = perRound === null ? '' : `; per round ${formatRatio(perRound.min)} – ${formatRatio(perRound.max)}`;
  const line = ratio === null
    ? `${what}: ${subject} / ${against}: not measured (no clean round of both)`
    : `${what}: ${subject} / ${against} = ${formatRatio(ratio)} ${unit} (${formatInt(a?.[key] ?? Number.NaN)} vs ${formatInt(b?.[key] ?? Number.NaN)}${rounds})`;
  return { subject, against, figure: key, ratio, perRound, line };
}

/** Which auto-pipelining setting to keep, from the batched comparison (on / off). */
function keepLine(batched: Comparison): string {
  if (batched.ratio === null) return 'keep: not measured (no clean round of both batched combinations)';
  const r = batched.perRound;
  if (r !== null && r.min < 1 && r.max > 1) {
    return `keep: autoPipelining off (the store's default): with the store's batching the rounds disagree on which is faster ` +
      `(on / off ${formatRatio(r.min)} – ${formatRatio(r.max)}), so nothing speaks for changing it`;
  }
  return batched.ratio > 1
    ? `keep: autoPipelining on, the faster with the store's batching (${formatRatio(batched.ratio)}): the store's default, off, is the slower one`
    : `keep: autoPipelining off, the faster with the store's batching (on is ${formatRatio(batched.ratio)} of it): the store's default stands`;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench:ratelimit-store: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
