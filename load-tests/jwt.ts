// `npm run bench:jwt`: the core scenario's route behind JWT authentication (ES256), against the same
// route without auth, in one interleaved run (the harness of `npm run bench`). Four targets:
//
//   gateway-noauth     the route without auth: the baseline every ratio is taken against
//   gateway-jwt-hot    auth: { jwt: main }, every request the same token (cache hits)
//   gateway-jwt-10k    10 000 distinct tokens cycled: verified on the first pass, cache hits after
//                      it (the verification cache holds 10 000)
//   gateway-jwt-cold   3 × the cache's size of distinct tokens cycled: every token is evicted
//                      before it comes round again, so every request is a full ES256 verification
//
// Every target gets the same request bytes from the same load-generator code path (autocannon
// rebuilding each request with the next Authorization value), so only the gateway's work differs.
//
//   npm run bench:jwt                               7 rounds × 10 s per target (about 7–8 minutes)
//   BENCH_ROUNDS=9 BENCH_DURATION=5 npm run bench:jwt
//   npm run bench:jwt -- --smoke                    1 round × 2 s, fewer tokens: does it run? (CI)
//
// Exit status: 0 when every measurement was clean (whether or not the targets were met: a verdict
// from a shared machine is for a reader, not for CI); 1 when any target served an error or a
// non-2xx response, refused a token, crashed, or did not stop cleanly; 2 on bad settings.
import { VERIFICATION_CACHE_SIZE } from '../plugins/jwt-auth/provider.js';
import { UPSTREAM_BODY_BYTES, detectPinning, pinSelf } from './harness/processes.js';
import {
  type Verdict,
  buildWarnings,
  cpuNotes,
  describeMachine,
  formatInt,
  formatPercent,
  formatRatio,
  measurementLine,
  median,
  nullIfNaN,
  perRoundTable,
  printSummary,
  ratioLine,
  ratioVerdict,
  settingsLine,
  summarise,
  reportFailures,
  summaryTable,
  writeResults,
} from './harness/report.js';
import { type Measurement, type RunRecord, runRounds, UPSTREAM_COUNT, withProblems } from './harness/runner.js';
import { type BenchSettings, readSettings, settingsOrExit } from './harness/settings.js';
import type { Target } from './harness/target.js';
import { AUDIENCE, ISSUER, type TokenRun, type TokenSet, jwtRouteTarget, mintTokens } from './targets/jwt.js';

/**
 * Problems ManagedProcess.stop() records when the gateway did not exit 0 promptly on SIGTERM. They
 * say nothing about the load that was measured before it (its errors and status codes are checked
 * separately), so a second summary keeps those measurements.
 */
const SHUTDOWN_PROBLEM = /^gateway: (still running \d+ ms after SIGTERM|SIGTERM ended it with)/;
/** The issue's numbers. */
const DISTINCT_TOKENS = 10_000;
const COLD_TOKENS = 3 * VERIFICATION_CACHE_SIZE;
const SMOKE_DISTINCT_TOKENS = 500;
const SMOKE_COLD_TOKENS = 1_500;
const TARGET_HOT = 0.95;
const TARGET_DISTINCT = 0.5;

const NOAUTH = 'gateway-noauth';
const HOT = 'gateway-jwt-hot';
const TEN_K = 'gateway-jwt-10k';
const COLD = 'gateway-jwt-cold';

interface TokenPlan {
  readonly target: string;
  readonly auth: boolean;
  readonly distinct: number;
}

/** A measurement's token figures: what was sent, and how many of the measured requests missed the cache. */
interface TokenMeasurement {
  readonly round: number;
  readonly target: string;
  readonly distinct: number;
  /** Authorization values handed out over warm-up and measurement. */
  readonly sent: number;
  /** Requests of the measurement (completed + errors). */
  readonly measured: number;
  /**
   * Of `measured`, the requests whose token was not in the verification cache (a full ES256
   * verification): exact up to the requests in flight when the warm-up ended (≤ connections).
   * null for the route without auth.
   */
  readonly misses: number | null;
  /** gateway_jwt_verifications_total by result, read just before the gateway was stopped. */
  readonly verifications: Readonly<Record<string, number>> | null;
  /** Fewer verified tokens than 200 answers (check + warm-up + measurement): not every request was authenticated. */
  readonly problems: readonly string[];
}

/**
 * Tokens cycled in order over all connections. With no more tokens than the cache holds, only the
 * first pass misses (positions below `distinct`); with more, every token has been evicted by the
 * time it comes round again (LRU, `distinct` − cache size > connections in flight), so every
 * request misses.
 */
function cacheMisses(plan: TokenPlan, sent: number, measured: number): number | null {
  if (!plan.auth) return null;
  if (plan.distinct > VERIFICATION_CACHE_SIZE) return measured;
  const before = Math.max(0, sent - measured);
  return Math.min(measured, Math.max(0, plan.distinct - before));
}

function describeTokens(plan: TokenPlan): string {
  if (plan.distinct > VERIFICATION_CACHE_SIZE) {
    return `${formatInt(plan.distinct)} distinct tokens cycled in order, ${plan.distinct / VERIFICATION_CACHE_SIZE}× what the verification cache holds ` +
      `(LRU, ${formatInt(VERIFICATION_CACHE_SIZE)}): each is evicted before it comes round again, so every request is a full ES256 verification`;
  }
  return `${formatInt(plan.distinct)} distinct tokens cycled in order: each is verified on the first pass (partly during the warm-up), ` +
    `and since the verification cache holds ${formatInt(VERIFICATION_CACHE_SIZE)}, every request after the first pass is a cache hit`;
}

function targetsFor(tokens: TokenSet, plans: readonly TokenPlan[], onStopped: (run: TokenRun) => void): Target[] {
  const route = `the gateway (dist/src/cli/main.js): one prefix route /api (stripPrefix) over a pool of ${UPSTREAM_COUNT} static endpoints, least-request, metrics on, access log off`;
  return plans.map((plan) => {
    const description = !plan.auth
      ? `${route}; no auth on the route (a jwtProviders entry is configured, unused); sends the hot token's Authorization header, which it forwards untouched`
      : plan.distinct === 1
        ? `the same route with auth: { jwt: main } (ES256 from a jwksFile; iss and aud checked); every request the same token: one verification, then cache hits`
        : `the same route with auth: { jwt: main }; ${describeTokens(plan)}`;
    return jwtRouteTarget({
      name: plan.target,
      description,
      auth: plan.auth,
      tokens,
      authorizations: tokens.authorizations.slice(0, plan.distinct),
      onStopped,
    });
  });
}

async function main(): Promise<number> {
  const settings: BenchSettings | null = settingsOrExit('bench:jwt', () => readSettings(process.argv.slice(2), process.env));
  if (settings === null) return 2;
  const out = (line = ''): void => void process.stdout.write(`${line}\n`);

  const distinct = settings.smoke ? SMOKE_DISTINCT_TOKENS : DISTINCT_TOKENS;
  const cold = settings.smoke ? SMOKE_COLD_TOKENS : COLD_TOKENS;
  const plans: readonly TokenPlan[] = [
    { target: NOAUTH, auth: false, distinct: 1 },
    { target: HOT, auth: true, distinct: 1 },
    { target: TEN_K, auth: true, distinct },
    { target: COLD, auth: true, distinct: cold },
  ];
  const planOf = new Map(plans.map((p) => [p.target, p]));

  const pinning = detectPinning();
  const machine = describeMachine(pinning);
  const date = new Date().toISOString();
  out(`edge-gateway benchmark: JWT-protected route — ${date}`);
  out(`machine: ${machine.cpus}; ${machine.memory}; ${machine.os}; node ${machine.node}`);

  // Minted before pinning (nothing else runs yet): signing uses both cores. Valid for the whole run
  // with room to spare: targets × rounds × (warm-up + measurement + start/stop), plus an hour.
  const runS = plans.length * settings.rounds * (settings.warmupS + settings.durationS + 5);
  const tokens = await mintTokens(Math.max(distinct, cold), runS + 3600);
  out(`tokens: ${formatInt(tokens.authorizations.length)} distinct ES256 tokens (P-256 key, kid, iss ${ISSUER}, aud ${AUDIENCE}, sub, scope, iat, exp at ` +
    `${tokens.expiresAt.toISOString()}), ${tokens.tokenLength} characters each, minted with jose in ${formatInt(tokens.mintMs)} ms; JWKS served from a local jwksFile`);

  const selfPinProblem = pinSelf(pinning);
  out(`pinning: ${machine.pinning}`);
  if (selfPinProblem !== null && pinning.enabled) out(`warning: could not pin the load generator: ${selfPinProblem}`);
  out(`${settingsLine(settings)}; order rotated each round; fresh processes per measurement`);
  out(`  every target: the same request bytes (GET /api/items with an Authorization: Bearer header), rebuilt per request by autocannon's setupRequest with the next token of the target's cycle`);

  const stopped = new Map<string, TokenRun>();
  const targets = targetsFor(tokens, plans, (run) => stopped.set(run.target, run));
  for (const t of targets) out(`  ${t.name}: ${t.description}`);
  out(`  upstreams: ${UPSTREAM_COUNT} node:http servers in one process, ${UPSTREAM_BODY_BYTES}-byte body`);
  if (settings.smoke) {
    out(`  SMOKE: ${formatInt(distinct)} and ${formatInt(cold)} tokens, both fewer than the cache holds: after their first pass both distinct-token targets are cache hits, and ${COLD} is not cold`);
  }
  out();

  const nameWidth = Math.max(...targets.map((t) => t.name.length));
  const tokenMeasurements: TokenMeasurement[] = [];
  const record = await runRounds(targets, settings, pinning, {
    onRoundStart: (round, order) => out(`round ${round}/${settings.rounds}: ${order.join(' → ')}`),
    onMeasurement: (m) => {
      const tm = tokenMeasurement(m, planOf.get(m.target), stopped.get(m.target));
      stopped.delete(m.target);
      if (tm !== null) tokenMeasurements.push(tm);
      out(measurementLine(m, nameWidth));
      if (tm !== null) out(tokenLine(tm));
    },
  });

  // A measurement whose tokens were not all verified counts as failed: its figures are left out.
  const checked = withProblems(record, new Map(tokenMeasurements.map((t) => [`${t.round}/${t.target}`, t.problems])));
  const proxyCpu = pinning.enabled ? pinning.proxyCpu : null;
  const summary = summarise(targets, checked, proxyCpu);
  const byName = new Map(summary.map((s) => [s.target, s]));
  // The same medians, keeping measurements whose only problem was the gateway's shutdown.
  const shutdownOnly = (m: Measurement): boolean => m.problems.length > 0 && m.problems.every((p) => SHUTDOWN_PROBLEM.test(p));
  const shutdownFailures = checked.measurements.filter(shutdownOnly);
  const loadClean: RunRecord = {
    roundProblems: [],
    measurements: checked.measurements.map((m) => (shutdownOnly(m) ? { ...m, problems: [] } : m)),
  };
  const loadCleanSummary = shutdownFailures.length === 0 ? null : summarise(targets, loadClean, proxyCpu);
  const loadCleanByName = new Map((loadCleanSummary ?? []).map((s) => [s.target, s]));
  const clean = new Set(loadClean.measurements.filter((m) => m.problems.length === 0 && m.load !== null).map((m) => `${m.round}/${m.target}`));
  const missShare = (target: string): number =>
    median(tokenMeasurements.filter((t) => t.target === target && t.misses !== null && t.measured > 0 && clean.has(`${t.round}/${t.target}`)).map((t) => t.misses! / t.measured));

  printSummary(out, summary, date, machine);
  if (loadCleanSummary !== null) {
    out(`${shutdownFailures.length} measurement(s) are left out above only because the gateway did not exit 0 within 5 s of SIGTERM ` +
      `afterwards (${[...new Set(shutdownFailures.map((m) => m.target))].join(', ')}); their load was clean. With them:`);
    out();
    out(summaryTable(loadCleanSummary));
    out();
    out(perRoundTable(loadCleanSummary));
    out();
  }
  out('| target | distinct tokens | measured requests that missed the verification cache (median) |');
  out('|---|---:|---:|');
  for (const plan of plans) {
    const share = missShare(plan.target);
    out(`| ${plan.target} | ${plan.auth ? formatInt(plan.distinct) : '– (no auth)'} | ${plan.auth ? formatPercent(share) : '–'} |`);
  }
  out();
  const base = byName.get(NOAUTH);
  for (const s of summary) {
    if (s.vsBaseline === null) continue;
    const all = loadCleanByName.get(s.target)?.vsBaseline;
    const withShutdownFailures = all === undefined || all === null || s.vsBaseline === null ? '' : ` [with the rounds whose gateway did not stop cleanly: req/s ${formatRatio(all.requestsPerSecond)}, CPU per request ${formatRatio(all.cpuPerRequest)}]`;
    out(ratioLine(s, base, withShutdownFailures));
  }
  const coldSummary = byName.get(COLD);
  const hotSummary = byName.get(HOT);
  if (base !== undefined && coldSummary !== undefined && cold > VERIFICATION_CACHE_SIZE) {
    out(`cost of a full verification: ${formatInt(coldSummary.cpuUsPerRequest - base.cpuUsPerRequest)} µs of gateway CPU per request ` +
      `(${COLD} − ${NOAUTH}); of a cache hit: ${formatInt((hotSummary?.cpuUsPerRequest ?? Number.NaN) - base.cpuUsPerRequest)} µs (${HOT} − ${NOAUTH})`);
  }

  out();
  const verdictOf = (target: string, threshold: number, what: string): Verdict => ratioVerdict(byName.get(target), threshold, what, loadCleanByName.get(target));
  const verdicts = [
    verdictOf(HOT, TARGET_HOT, 'hot token'),
    verdictOf(TEN_K, TARGET_DISTINCT, `${formatInt(distinct)} distinct tokens, ${formatPercent(missShare(TEN_K))} of measured requests missed the cache`),
    verdictOf(COLD, TARGET_DISTINCT, `${formatInt(cold)} distinct tokens, ${cold > VERIFICATION_CACHE_SIZE ? 'every request a full verification' : 'SMOKE: not cold'}`),
  ];
  out(`targets (req/s × ${NOAUTH}, median over clean rounds${settings.smoke ? '; SMOKE: one short round, not a measurement' : ''}):`);
  for (const v of verdicts) out(`  ${v.line}`);

  for (const line of [...cpuNotes(summary, { measurements: loadClean.measurements, pinning }), ...buildWarnings(targets, checked.measurements)]) out(line);

  const report = {
    scenario: 'jwt',
    date,
    machine,
    settings,
    tokens: {
      algorithm: 'ES256',
      issuer: ISSUER,
      audience: AUDIENCE,
      minted: tokens.authorizations.length,
      tokenLength: tokens.tokenLength,
      mintMs: tokens.mintMs,
      expiresAt: tokens.expiresAt.toISOString(),
      verificationCacheSize: VERIFICATION_CACHE_SIZE,
      perTarget: Object.fromEntries(plans.map((p) => [p.target, { auth: p.auth, distinct: p.distinct }])),
    },
    targets: targets.map((t) => ({ name: t.name, description: t.description })),
    summary,
    /** The same medians keeping the measurements whose only problem was the gateway's shutdown; null when there were none. */
    summaryWithShutdownFailures: loadCleanSummary,
    cacheMissShare: Object.fromEntries(plans.filter((p) => p.auth).map((p) => [p.target, nullIfNaN(missShare(p.target))])),
    verdicts: verdicts.map(({ line: _line, ...v }) => v),
    tokenMeasurements,
    measurements: checked.measurements,
    roundProblems: checked.roundProblems,
  };
  const file = await writeResults('jwt', date, report);
  out(`all rounds: ${file}`);

  return reportFailures(out, checked.roundProblems, checked.measurements);
}

function tokenMeasurement(m: Measurement, plan: TokenPlan | undefined, run: TokenRun | undefined): TokenMeasurement | null {
  if (plan === undefined || run === undefined || m.load === null) return null;
  const measured = m.load.completed + m.load.errors;
  const problems: string[] = [];
  if (plan.auth && run.verifications !== null) {
    // Every 2xx the route gave passed the filter: the check request, the warm-up and the measurement.
    const answered = 1 + (m.warmup?.statusCodes['200'] ?? 0) + (m.load.statusCodes['200'] ?? 0);
    const ok = run.verifications.ok ?? 0;
    if (ok < answered) problems.push(`the gateway counted ${ok} verified tokens for ${answered} answers of 200: some requests were not authenticated`);
  }
  return {
    round: m.round,
    target: m.target,
    distinct: plan.distinct,
    sent: run.sent,
    measured,
    misses: cacheMisses(plan, run.sent, measured),
    verifications: run.verifications,
    problems,
  };
}

function tokenLine(t: TokenMeasurement): string {
  const verified = t.verifications === null
    ? 'gateway metrics unread'
    : Object.keys(t.verifications).length === 0
      ? 'gateway verified no token'
      : `gateway verifications: ${Object.entries(t.verifications).map(([r, n]) => `${r} ${formatInt(n)}`).join(', ')}`;
  const misses = t.misses === null
    ? ''
    : `; ${formatInt(t.misses)} of ${formatInt(t.measured)} measured (${formatPercent(t.misses / t.measured)}) missed the cache`;
  const flags = t.problems.map((p) => `\n    ! ${p}`).join('');
  return `      tokens: ${formatInt(t.distinct)} cycled, ${formatInt(t.sent)} sent (warm-up + measurement)${misses}; ${verified}${flags}`;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench:jwt: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
