// `npm run bench:ejection`: one of 4 endpoints starts failing mid-run. How many failures reach
// clients before passive outlier detection ejects it, how long the ejection takes, and what
// throughput looks like before the failure and after the ejection.
//
//   npm run bench:ejection                       64 connections, 1 s warm-up, 5 s healthy + 5 s failing
//   npm run bench:ejection -- --refuse           the endpoint stops listening instead of answering 500
//   BENCH_CONNECTIONS=16 BENCH_DURATION=20 npm run bench:ejection
//   npm run bench:ejection -- --smoke            8 connections, 2 s + 2 s: does the scenario run? (CI)
//
// With `retries: { attempts: 0 }` every failed upstream attempt is one failed client request, so
// the client-visible errors are bounded by what the detector needs to see (consecutive5xx in a
// row) plus what was already on its way to the endpoint when it decided (in flight: at most one
// request per client connection, about connections / 4 with least-request over 4 endpoints).
//
// Exit status: 0 when the endpoint was ejected and the errors stayed within that bound; 1 when it
// was never ejected, the bound was violated, errors kept coming after the ejection, a request
// failed before the failure started, or a process crashed; 2 on bad settings.
import { request } from 'node:http';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { metricSum } from './harness/metrics.js';
import { RESULTS_DIR } from './harness/paths.js';
import { ManagedProcess, UPSTREAM_BODY_BYTES, detectPinning, freePorts, httpGet, pinSelf, waitForHttp } from './harness/processes.js';
import { describeMachine, formatInt, machineHeader, formatMs, formatRatio } from './harness/report.js';
import { SettingsError, readNumber, settingsOrExit } from './harness/settings.js';
import type { ControlAnswer } from './harness/switchable-upstream-server.js';
import { type TimedLoadResult, type WindowStats, runTimedLoad, wallNow } from './harness/timed-load.js';
import { type RunningGateway, startGateway } from './targets/gateway.js';

const SWITCHABLE_UPSTREAMS = fileURLToPath(new URL('./harness/switchable-upstream-server.js', import.meta.url));

const ENDPOINTS = 4;
/** The endpoint (0-based) that starts failing: the last one. */
const FAILING = ENDPOINTS - 1;
const OUTLIER = Object.freeze({ consecutive5xx: 5, consecutiveGatewayFailures: 5, interval: '1s', baseEjectionTime: '60s' });
/** Errors arriving later than this after the ejection mean it did not take (or did not hold). */
const SETTLE_MS = 1000;
/** How often the failing endpoint's in-flight count is sampled from /upstreams before the failure. */
const SAMPLE_EVERY_MS = 100;

type FailureMode = '500' | 'refuse';

interface EjectionSettings {
  readonly connections: number;
  /** Seconds of load after the warm-up; the failure starts at the midpoint. */
  readonly durationS: number;
  readonly warmupS: number;
  readonly failure: FailureMode;
  readonly smoke: boolean;
}

function readEjectionSettings(argv: readonly string[], env: NodeJS.ProcessEnv): EjectionSettings {
  for (const arg of argv) {
    if (arg !== '--smoke' && arg !== '--refuse') throw new SettingsError(`unknown argument ${JSON.stringify(arg)} (only --smoke, --refuse)`);
  }
  const smoke = argv.includes('--smoke') || (env.BENCH_SMOKE !== undefined && env.BENCH_SMOKE !== '' && env.BENCH_SMOKE !== '0');
  const failure: FailureMode = argv.includes('--refuse') ? 'refuse' : '500';
  if (smoke) {
    return { connections: readNumber(env, 'BENCH_CONNECTIONS', 8, { integer: true, min: 1, max: 10_000 }), durationS: 4, warmupS: 0.5, failure, smoke };
  }
  return {
    connections: readNumber(env, 'BENCH_CONNECTIONS', 64, { integer: true, min: 1, max: 10_000 }),
    durationS: readNumber(env, 'BENCH_DURATION', 10, { integer: true, min: 2, max: 3600 }),
    warmupS: readNumber(env, 'BENCH_WARMUP', 1, { integer: false, min: 0, max: 600 }),
    failure,
    smoke,
  };
}

// ---- talking to the upstreams and the gateway ------------------------------------------------

function call(method: 'GET' | 'POST', url: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

async function control(port: number, method: 'GET' | 'POST', what: string): Promise<ControlAnswer> {
  const res = await call(method, `http://127.0.0.1:${port}/__control/${what}`);
  if (res.status !== 200) throw new Error(`${method} /__control/${what} on ${port}: ${res.status} ${res.body}`);
  return JSON.parse(res.body) as ControlAnswer;
}

interface EndpointView {
  address: string;
  state: string;
  ejections: number;
  ejectedUntil: string | null;
  lastEjection: { reason: string; detail: string; at: string; durationMs: number | null; number: number } | null;
  inFlight: number;
}

async function endpointView(gw: RunningGateway, address: string): Promise<EndpointView | null> {
  const res = await call('GET', `http://127.0.0.1:${gw.adminPort}/upstreams`);
  const body = JSON.parse(res.body) as { upstreams: { name: string; endpoints: EndpointView[] }[] };
  return body.upstreams.find((u) => u.name === 'pool')?.endpoints.find((e) => e.address === address) ?? null;
}

/** The gateway's `event: endpoint_ejected` log line for `address`, if its output still holds it. */
function ejectedLogLine(output: string, address: string): { time: number; reason: string; detail: string } | null {
  for (const line of output.split('\n')) {
    if (!line.includes('endpoint_ejected')) continue;
    try {
      const l = JSON.parse(line) as { event?: string; endpoint?: string; time?: number; reason?: string; detail?: string };
      if (l.event === 'endpoint_ejected' && l.endpoint === address && typeof l.time === 'number') {
        return { time: l.time, reason: String(l.reason), detail: String(l.detail) };
      }
    } catch {
      // a line cut by the tail buffer
    }
  }
  return null;
}

// ---- the run -----------------------------------------------------------------------------------

interface WindowReport {
  readonly fromS: number;
  readonly seconds: number;
  readonly okPerSecond: number;
  readonly ok: number;
  readonly non2xx: number;
  readonly noAnswer: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
}

interface EjectionReport {
  readonly date: string;
  readonly machine: ReturnType<typeof describeMachine>;
  readonly settings: EjectionSettings;
  readonly gateway: { readonly balancer: string; readonly retries: { attempts: number }; readonly outlierDetection: typeof OUTLIER; readonly build: string | null };
  readonly failingEndpoint: string;
  /** Seconds after the load started. */
  readonly failureStartS: number | null;
  readonly ejected: boolean;
  readonly ejection: { readonly reason: string; readonly detail: string; readonly afterFailureMs: number; readonly fromLogMs: number | null } | null;
  /** Every non-2xx response and socket error after the failure started (none before it, or the run failed). */
  readonly clientErrors: number;
  readonly clientErrorCodes: Readonly<Record<string, number>>;
  readonly firstErrorMs: number | null;
  readonly lastErrorMs: number | null;
  readonly errorsLaterThanSettle: number;
  readonly threshold: number;
  readonly bound: number;
  readonly boundHeld: boolean;
  /** connections / endpoints: what least-request keeps in flight per endpoint when balanced. */
  readonly expectedInFlightShare: number;
  readonly sampledInFlight: { readonly samples: number; readonly mean: number; readonly max: number } | null;
  /** clientErrors − threshold: how many were already on their way when the detector decided. */
  readonly impliedInFlight: number;
  readonly failingEndpointServed: { readonly ok: number; readonly failed: number } | null;
  readonly gatewayMetrics: { readonly ejections: number; readonly failingEndpoint5xx: number };
  readonly before: WindowReport | null;
  readonly after: WindowReport | null;
  readonly afterOverBefore: number | null;
  /** 2xx responses in each whole second after the load started (warm-up included): step or drift? */
  readonly okPerSecondSeries: readonly number[];
  readonly autocannon: TimedLoadResult['totals'] | null;
  readonly problems: readonly string[];
}

async function main(): Promise<number> {
  const settings = settingsOrExit('bench:ejection', () => readEjectionSettings(process.argv.slice(2), process.env));
  if (settings === null) return 2;
  const out = (line = ''): void => void process.stdout.write(`${line}\n`);

  const pinning = detectPinning();
  const selfPinProblem = pinSelf(pinning);
  const machine = describeMachine(pinning);
  const date = new Date().toISOString();
  const halfS = settings.durationS / 2;
  const failureWords = settings.failure === '500' ? 'answering 500 to every request' : 'closing its listener and connections (connection refused)';
  const threshold = settings.failure === '500' ? OUTLIER.consecutive5xx : Math.min(OUTLIER.consecutive5xx, OUTLIER.consecutiveGatewayFailures);
  const bound = threshold + settings.connections;
  const share = settings.connections / ENDPOINTS;

  machineHeader(out, 'edge-gateway ejection scenario', date, machine, selfPinProblem, pinning.enabled);
  out(`${settings.smoke ? 'SMOKE: ' : ''}${settings.connections} connections, keep-alive, pipelining 1; ${settings.warmupS} s warm-up, ` +
    `${halfS} s healthy, then endpoint ${FAILING + 1} of ${ENDPOINTS} starts ${failureWords} for ${halfS} s`);
  out(`gateway: one route over ${ENDPOINTS} endpoints, least-request, retries.attempts 0, outlierDetection ` +
    `{ consecutive5xx ${OUTLIER.consecutive5xx}, consecutiveGatewayFailures ${OUTLIER.consecutiveGatewayFailures}, interval ${OUTLIER.interval}, baseEjectionTime ${OUTLIER.baseEjectionTime} }`);
  out();

  const problems: string[] = [];
  const ports = await freePorts(ENDPOINTS);
  const failingPort = ports[FAILING]!;
  const healthyPort = ports[0]!;
  const failingAddress = `127.0.0.1:${failingPort}`;
  const upstreams = new ManagedProcess('upstreams', SWITCHABLE_UPSTREAMS, ports.map(String), pinning.enabled ? pinning.loadCpu : null);
  let gw: RunningGateway | null = null;

  let load: TimedLoadResult | null = null;
  let controlSentAt: number | null = null;
  let failure: ControlAnswer | null = null;
  let view: EndpointView | null = null;
  let metricsText = '';
  let stats: ControlAnswer | null = null;
  let logLine: ReturnType<typeof ejectedLogLine> = null;
  const inFlightSamples: number[] = [];
  let loadPromise: Promise<TimedLoadResult> | null = null;

  try {
    await Promise.all(ports.map((p) => waitForHttp(`http://127.0.0.1:${p}/`, { proc: upstreams })));
    gw = await startGateway({
      name: 'gateway',
      description: 'ejection scenario',
      routes: (urls) => ({
        upstreams: {
          pool: {
            targets: urls.map((url) => ({ url })),
            balancer: 'least-request',
            retries: { attempts: 0 },
            outlierDetection: { ...OUTLIER },
          },
        },
        routes: [{ name: 'bench', prefix: '/api', upstream: 'pool', stripPrefix: true }],
      }),
      path: '/api/items',
      // warn: the endpoint_ejected line (a cross-check of /upstreams), nothing per request.
      gatewayOverrides: { log: { level: 'warn', accessLog: false } },
    }, { upstreams: ports.map((p) => `http://127.0.0.1:${p}`), pinning });

    const url = `http://127.0.0.1:${gw.port}${gw.path}`;
    // As the runner does: a proxy that answers the wrong thing fast must not look fast. One
    // request per endpoint (least-request spreads them), so each has served before the load starts.
    for (let i = 0; i < ENDPOINTS; i++) {
      const res = await httpGet(url, {}, 5000);
      if (res.status !== 200 || res.body.length !== UPSTREAM_BODY_BYTES) {
        throw new Error(`GET ${url} answered ${res.status} with ${res.body.length} bytes, not 200 with the upstream's ${UPSTREAM_BODY_BYTES}`);
      }
    }

    const running = gw;
    loadPromise = runTimedLoad({ url, connections: settings.connections, durationS: settings.warmupS + settings.durationS });
    const startedAt = wallNow();
    const failAt = startedAt + (settings.warmupS + halfS) * 1000;
    // The failing endpoint's share of the in-flight requests while all is healthy.
    await sleep(settings.warmupS * 1000);
    while (wallNow() < failAt - SAMPLE_EVERY_MS) {
      const e = await endpointView(running, failingAddress).catch(() => null);
      if (e !== null) inFlightSamples.push(e.inFlight);
      await sleep(SAMPLE_EVERY_MS);
    }
    await sleep(Math.max(0, failAt - wallNow()));
    controlSentAt = wallNow();
    failure = await control(failingPort, 'POST', settings.failure === '500' ? 'fail' : 'refuse');
    load = await loadPromise;

    view = await endpointView(running, failingAddress);
    metricsText = (await call('GET', `http://127.0.0.1:${running.adminPort}/metrics`)).body;
    stats = await control(healthyPort, 'GET', 'stats');
    logLine = ejectedLogLine(running.outputTail(), failingAddress);
  } catch (err) {
    problems.push(`run failed: ${(err as Error).message}`);
    // Let a started load run out before stopping what it talks to.
    await loadPromise?.catch(() => null);
  } finally {
    if (gw !== null) {
      await gw.stop();
      problems.push(...gw.problems());
    }
    await upstreams.stop();
    problems.push(...upstreams.problems());
  }

  // ---- figures ----
  const failureAt = failure?.at ?? null;
  const lastEjection = view?.lastEjection ?? null;
  const ejectedAt = lastEjection === null ? null : Date.parse(lastEjection.at);
  const ejected = ejectedAt !== null && failureAt !== null && ejectedAt >= failureAt - 1;
  const failures = load?.log.failures() ?? [];
  const early = controlSentAt === null ? failures : failures.filter((f) => f.at < controlSentAt!);
  if (early.length > 0) problems.push(`${early.length} request(s) failed before the failure was started (${codesOf(early)}): the run measured something else`);
  const caused = controlSentAt === null ? [] : failures.filter((f) => f.at >= controlSentAt!);
  const clientErrors = caused.length;
  const firstError = caused[0]?.at ?? null;
  const lastError = caused[caused.length - 1]?.at ?? null;
  const late = ejectedAt === null ? [] : caused.filter((f) => f.at > ejectedAt + SETTLE_MS);
  if (load !== null && !ejected) problems.push(`${failingAddress} was never ejected`);
  if (late.length > 0) problems.push(`${late.length} error(s) arrived more than ${SETTLE_MS} ms after the ejection: it did not hold`);
  const boundHeld = clientErrors <= bound;
  if (load !== null && !boundHeld) problems.push(`${clientErrors} client-visible errors exceed the bound ${bound} (${threshold} + ${settings.connections} connections)`);

  const startedAt = load?.startedAt ?? Number.NaN;
  const end = load === null ? Number.NaN : Math.min(load.finishedAt, load.log.lastAt() ?? load.finishedAt);
  const asWindow = (w: WindowStats): WindowReport => ({
    fromS: (w.from - startedAt) / 1000,
    seconds: w.seconds,
    okPerSecond: w.okPerSecond,
    ok: w.ok,
    non2xx: w.non2xx,
    noAnswer: w.noAnswer,
    p50Ms: w.p50Ms,
    p99Ms: w.p99Ms,
  });
  const before = load === null || controlSentAt === null ? null : asWindow(load.log.window(startedAt + settings.warmupS * 1000, controlSentAt));
  const after = load === null || !ejected || ejectedAt === null || ejectedAt >= end ? null : asWindow(load.log.window(ejectedAt, end));
  const afterOverBefore = before !== null && after !== null ? after.okPerSecond / before.okPerSecond : null;
  const series: number[] = [];
  for (let t = startedAt; load !== null && t + 1000 <= end; t += 1000) series.push(load.log.window(t, t + 1000).ok);
  const failingServed = stats?.servers.find((s) => s.port === failingPort) ?? null;
  const sampled = inFlightSamples.length === 0 ? null : {
    samples: inFlightSamples.length,
    mean: inFlightSamples.reduce((a, b) => a + b, 0) / inFlightSamples.length,
    max: Math.max(...inFlightSamples),
  };

  const report: EjectionReport = {
    date,
    machine,
    settings,
    gateway: { balancer: 'least-request', retries: { attempts: 0 }, outlierDetection: OUTLIER, build: gw?.build ?? null },
    failingEndpoint: failingAddress,
    failureStartS: failureAt === null ? null : (failureAt - startedAt) / 1000,
    ejected,
    ejection: !ejected || lastEjection === null || ejectedAt === null || failureAt === null ? null : {
      reason: lastEjection.reason,
      detail: lastEjection.detail,
      afterFailureMs: ejectedAt - failureAt,
      fromLogMs: logLine === null ? null : logLine.time - failureAt,
    },
    clientErrors,
    clientErrorCodes: countCodes(caused),
    firstErrorMs: firstError === null || failureAt === null ? null : firstError - failureAt,
    lastErrorMs: lastError === null || failureAt === null ? null : lastError - failureAt,
    errorsLaterThanSettle: late.length,
    threshold,
    bound,
    boundHeld,
    expectedInFlightShare: share,
    sampledInFlight: sampled,
    impliedInFlight: Math.max(0, clientErrors - threshold),
    failingEndpointServed: failingServed === null ? null : { ok: failingServed.ok, failed: failingServed.failed },
    gatewayMetrics: {
      ejections: metricSum(metricsText, 'gateway_outlier_ejections_total', { endpoint: failingAddress }),
      failingEndpoint5xx: metricSum(metricsText, 'gateway_upstream_requests_total', { endpoint: failingAddress }, (l) => /status="5\d\d"/.test(l)),
    },
    before,
    after,
    afterOverBefore,
    okPerSecondSeries: series,
    autocannon: load?.totals ?? null,
    problems,
  };

  // ---- output ----
  out(`failure started:  +${report.failureStartS?.toFixed(3) ?? '–'} s after the load started; ${failingAddress} ${failureWords}`);
  out(ejected && report.ejection !== null
    ? `ejected: yes, ${ms(report.ejection.afterFailureMs)} after the failure started (/upstreams lastEjection.at, ms resolution; ` +
      `log line endpoint_ejected: ${report.ejection.fromLogMs === null ? 'not in the output tail' : ms(report.ejection.fromLogMs)}); ` +
      `${report.ejection.reason}: ${report.ejection.detail}; gateway_outlier_ejections_total ${report.gatewayMetrics.ejections}`
    : 'ejected: NO');
  out(`client-visible errors: ${clientErrors} (${codesOf(caused) || 'none'}), arriving ${ms(report.firstErrorMs)} to ${ms(report.lastErrorMs)} after the failure started; ` +
    `upstream-side: ${settings.failure === '500' ? `the failing endpoint answered ${failingServed?.failed ?? '–'} × 500` : 'the endpoint refused (nothing to count there)'}; ` +
    `gateway_upstream_requests_total 5xx for it: ${report.gatewayMetrics.failingEndpoint5xx}`);
  out(`bound: ${threshold} (consecutive${settings.failure === '500' ? '5xx' : ' failures'}) + ${settings.connections} in flight (at most one per connection) = ${bound}: ` +
    `${boundHeld ? 'held' : 'VIOLATED'}`);
  out(`in flight at the failing endpoint: expected ~${formatShare(share)} (${settings.connections} connections / ${ENDPOINTS} endpoints, least-request); ` +
    `sampled from /upstreams before the failure: ${sampled === null ? '–' : `mean ${sampled.mean.toFixed(1)}, max ${sampled.max} (${sampled.samples} samples)`}; ` +
    `implied by the errors: ${report.impliedInFlight} (errors − ${threshold})`);
  out(`throughput (2xx/s): before the failure ${formatInt(before?.okPerSecond ?? Number.NaN)}, after the ejection ${formatInt(after?.okPerSecond ?? Number.NaN)}: ` +
    `${formatRatio(afterOverBefore ?? undefined)}; p99 ${formatMs(before?.p99Ms ?? undefined)} → ${formatMs(after?.p99Ms ?? undefined)} ms`);
  out(`2xx per second of the run (failure in second ${report.failureStartS === null ? '–' : Math.floor(report.failureStartS) + 1}): ${series.map(formatInt).join(' | ')}`);
  out();
  out(ejectionTable([report]));
  out();

  await mkdir(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `ejection-${date.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  out(`json: ${file}`);

  if (problems.length > 0) {
    out();
    out(`FAILED: ${problems.length} problem(s):`);
    for (const p of problems) out(`  - ${p.replace(/\n/g, '\n    ')}`);
    return 1;
  }
  out('PASSED: endpoint ejected, client-visible errors within the bound');
  return 0;
}

function ms(n: number | null | undefined): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '–' : `${n < 10 ? n.toFixed(1) : formatInt(n)} ms`;
}

function formatShare(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

function countCodes(list: readonly { status: number }[]): Record<string, number> {
  const codes: Record<string, number> = {};
  for (const f of list) {
    const k = f.status === 0 ? 'no answer' : String(f.status);
    codes[k] = (codes[k] ?? 0) + 1;
  }
  return codes;
}

function codesOf(list: readonly { status: number }[]): string {
  return Object.entries(countCodes(list)).map(([c, n]) => `${c}×${n}`).join(', ');
}

/** Markdown, pasted as-is into docs/performance.md. */
function ejectionTable(reports: readonly EjectionReport[]): string {
  const rows = [
    '| failure | connections | client-visible errors | bound (threshold + connections) | held | expected in flight / endpoint | ejected after | 2xx/s before | 2xx/s after ejection | after / before | p99 before → after |',
    '|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of reports) {
    rows.push(
      `| ${r.settings.failure === '500' ? '500' : 'refused'} | ${r.settings.connections} | ${r.clientErrors} | ${r.threshold} + ${r.settings.connections} = ${r.bound} | ` +
        `${r.boundHeld ? 'yes' : '**no**'} | ${formatShare(r.expectedInFlightShare)} | ${r.ejection === null ? '**never**' : ms(r.ejection.afterFailureMs)} | ` +
        `${formatInt(r.before?.okPerSecond ?? Number.NaN)} | ${formatInt(r.after?.okPerSecond ?? Number.NaN)} | ${formatRatio(r.afterOverBefore ?? undefined)} | ` +
        `${formatMs(r.before?.p99Ms ?? undefined)} → ${formatMs(r.after?.p99Ms ?? undefined)} ms |`,
    );
  }
  return rows.join('\n');
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench:ejection: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
