// The gateway in front of a rate-limited route, for `npm run bench:ratelimit` (load-tests/ratelimit.ts):
// the core scenario's route with a policy that never refuses, its decisions made in Redis or in
// process, and checked afterwards from the gateway's own metrics (and Redis' own count of script
// calls) that every request really was decided there.
import { setTimeout as sleep } from 'node:timers/promises';
import { fetchMetrics, metricSum, metricValue } from '../harness/metrics.js';
import { cpuSeconds } from '../harness/processes.js';
import { redisScriptCalls } from '../harness/redis-server.js';
import type { RoundContext, RunningTarget, Target } from '../harness/target.js';
import { startGateway } from './gateway.js';

/** The routes file's rateLimits entry every target carries (the baseline leaves it unused). */
export const POLICY = 'roomy';
/**
 * Every request comes from 127.0.0.1, so `key: ip` puts all of them on one key: the policy must
 * allow more than the load generator can offer. 1 000 000 per second (burst = limit, the default)
 * is about 50× what one gateway core serves here (~20 000 req/s), so it never refuses; a refused
 * request fails the measurement.
 */
export const ROOMY = { key: 'ip', limit: 1_000_000, window: '1s' } as const;
export const ROOMY_WINDOW_MS = 1_000;
/** gateway.yaml's redis block besides the URL: the issue's settings. */
export const REDIS_SETTINGS = { commandTimeout: '100ms', failureMode: 'local' } as const;
/** The gateway connects to Redis in the background after it is ready: how long it may take. */
const STORE_UP_TIMEOUT_MS = 5_000;

/** Where the route's decisions are made: nowhere (no limit), in Redis, or in the gateway process. */
export type DecisionStore = 'none' | 'redis' | 'local';

/** What one started target saw, read just before its gateway was stopped (Redis' count just after). */
export interface RateLimitRun {
  readonly target: string;
  readonly store: DecisionStore;
  /** gateway_ratelimit_decisions_total of the policy by decision; null when /metrics failed. */
  readonly decisions: { readonly allowed: number; readonly limited: number; readonly storeError: number } | null;
  /** gateway_ratelimit_store_up; null without a redis block (the metric is not registered then). */
  readonly storeUp: number | null;
  /** gateway_ratelimit_store_errors_total, all reasons (0 until a call fails: no sample before). */
  readonly storeErrors: number | null;
  /** gateway_ratelimit_store_duration_seconds_count: script calls that got an answer. */
  readonly scriptCalls: number | null;
  /** evalsha + eval Redis ran over the gateway's life (heartbeats included); null without Redis. */
  readonly redisScriptCalls: number | null;
  /** redis-server's CPU seconds over the gateway's life; null without Redis or off Linux. */
  readonly redisCpuS: number | null;
  /** What the metrics alone show was wrong (the request counts are checked by the scenario). */
  readonly problems: readonly string[];
}

export interface RedisUnderTest {
  readonly url: string;
  readonly pid: number | undefined;
}

export interface RateLimitRouteOptions {
  readonly name: string;
  readonly description: string;
  readonly store: DecisionStore;
  /** The run's redis-server; required for `store: 'redis'`. */
  readonly redis?: RedisUnderTest;
  /** Called once per started target, after its gateway was stopped. */
  readonly onStopped?: (run: RateLimitRun) => void;
}

/**
 * One prefix route `/api` (stripPrefix) over the round's pool, least-request, with a rateLimits
 * entry the route uses (`rateLimit: [roomy]`) or, for the baseline, leaves unused: the routes files
 * differ only in `rateLimit`, and gateway.yaml only in the `redis` block of the Redis target.
 */
export function rateLimitRouteTarget(options: RateLimitRouteOptions): Target {
  const redis = options.store === 'redis' ? options.redis : undefined;
  if (options.store === 'redis' && redis === undefined) throw new Error(`${options.name}: a Redis target needs the run's redis-server`);
  const scenario = {
    name: options.name,
    description: options.description,
    routes: (upstreams: readonly string[]) => ({
      upstreams: { pool: { targets: upstreams.map((url) => ({ url })), balancer: 'least-request' } },
      rateLimits: { [POLICY]: { ...ROOMY } },
      routes: [
        { name: 'bench', prefix: '/api', upstream: 'pool', stripPrefix: true, ...(options.store === 'none' ? {} : { rateLimit: [POLICY] }) },
      ],
    }),
    path: '/api/items',
    ...(redis === undefined ? {} : { gatewayOverrides: { redis: { url: redis.url, ...REDIS_SETTINGS } } }),
  };
  return {
    name: options.name,
    description: options.description,
    async start(context: RoundContext): Promise<RunningTarget> {
      const callsBefore = redis === undefined ? null : await redisScriptCalls(redis.url);
      const cpuBefore = cpuSeconds(redis?.pid);
      const gateway = await startGateway(scenario, context);
      if (redis !== undefined) {
        // /readyz does not wait for Redis (failureMode local serves meanwhile): without this, the
        // first requests would be decided in process and the measurement would start mid-switch.
        const waited = await waitForStoreUp(gateway.adminPort);
        if (waited !== null) {
          await gateway.stop();
          throw new Error(`${waited}${gateway.outputTail() === '' ? '' : `; gateway output:\n${gateway.outputTail()}`}`);
        }
      }
      let run: RateLimitRun | null = null;
      return {
        port: gateway.port,
        path: gateway.path,
        ...(gateway.build === undefined ? {} : { build: gateway.build }),
        ...(gateway.pid === undefined ? {} : { pid: gateway.pid }),
        problems: () => [...(run?.problems ?? []), ...gateway.problems()],
        async stop(): Promise<void> {
          let text: string | null = null;
          let unread: string | null = null;
          try {
            text = await fetchMetrics(gateway.adminPort);
          } catch (err) {
            unread = (err as Error).message;
          }
          await gateway.stop();
          let redisCalls: number | null = null;
          const problems: string[] = [];
          if (redis !== undefined && callsBefore !== null) {
            try {
              redisCalls = (await redisScriptCalls(redis.url)) - callsBefore;
            } catch (err) {
              problems.push(`could not read INFO commandstats from redis-server: ${(err as Error).message}`);
            }
          }
          const cpuAfter = cpuSeconds(redis?.pid);
          run = readRun(options.name, options.store, text, redisCalls, cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore);
          if (unread !== null && options.store !== 'none') problems.push(`could not read the gateway's /metrics to confirm its decisions: ${unread}`);
          run = { ...run, problems: [...problems, ...run.problems] };
          options.onStopped?.(run);
        },
      };
    },
  };
}

/** null once gateway_ratelimit_store_up is 1; else why it never became so. */
async function waitForStoreUp(adminPort: number): Promise<string | null> {
  const deadline = Date.now() + STORE_UP_TIMEOUT_MS;
  let last = 'no reading';
  while (Date.now() < deadline) {
    try {
      const up = metricValue(await fetchMetrics(adminPort), 'gateway_ratelimit_store_up');
      if (up === 1) return null;
      last = `gateway_ratelimit_store_up ${up ?? 'absent'}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(50);
  }
  return `the gateway's Redis store was not up ${STORE_UP_TIMEOUT_MS} ms after it was ready (last: ${last})`;
}

function readRun(target: string, store: DecisionStore, text: string | null, redisScriptCalls: number | null, redisCpuS: number | null): RateLimitRun {
  const base = { target, store, redisScriptCalls, redisCpuS };
  if (text === null) return { ...base, decisions: null, storeUp: null, storeErrors: null, scriptCalls: null, problems: [] };
  const decision = (d: string): number => metricSum(text, 'gateway_ratelimit_decisions_total', { policy: POLICY, decision: d });
  const decisions = { allowed: decision('allowed'), limited: decision('limited'), storeError: decision('store_error') };
  const storeUp = metricValue(text, 'gateway_ratelimit_store_up');
  const storeErrors = metricSum(text, 'gateway_ratelimit_store_errors_total');
  const scriptCalls = metricValue(text, 'gateway_ratelimit_store_duration_seconds_count');
  const problems: string[] = [];
  const total = decisions.allowed + decisions.limited + decisions.storeError;
  if (store === 'none') {
    if (total > 0) problems.push(`the route without a limit made ${total} rate-limit decisions`);
  } else {
    if (decisions.allowed === 0) problems.push('the gateway counted no allowed decision: the route was not rate-limited');
    if (decisions.limited > 0) problems.push(`${decisions.limited} requests were limited: the policy is meant never to refuse, so this measured 429s`);
    if (decisions.storeError > 0) problems.push(`${decisions.storeError} decisions were store errors`);
  }
  if (store === 'redis') {
    if (storeUp !== 1) problems.push(`the Redis store was not up when the load ended (gateway_ratelimit_store_up ${storeUp ?? 'absent'}): decisions fell back to the in-process store`);
    if (storeErrors > 0) problems.push(`${storeErrors} calls to Redis failed (gateway_ratelimit_store_errors_total): their requests were decided in process`);
    if ((scriptCalls ?? 0) === 0) problems.push('the gateway counted no script call to Redis');
    if (redisScriptCalls !== null && scriptCalls !== null && redisScriptCalls < scriptCalls) {
      problems.push(`redis-server ran ${redisScriptCalls} scripts but the gateway counted ${scriptCalls} answered calls: the gateway was not talking to this Redis alone`);
    }
  } else if (storeUp !== null) {
    problems.push('a target without a redis block reports a Redis store');
  }
  return { ...base, decisions, storeUp, storeErrors, scriptCalls, problems };
}
