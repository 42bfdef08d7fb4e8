// Active HTTP health checks (the upstream `healthCheck` block): a GET of `path` to every endpoint
// of one pool, on a timer per endpoint; a 2xx answer within `timeout` passes, anything else
// (another status, a connection error, no complete answer in time) fails. `unhealthyThreshold`
// failures in a row take the endpoint out of the usable set, `healthyThreshold` passes in a row
// bring it back, and a single pass ends a passive (outlier) ejection early — the check is direct
// evidence that the endpoint answers again, better than waiting out the ejection.
//
// Cost: one request per endpoint per interval, on a dispatcher of the checker's own (one undici
// Agent, so one idle keep-alive connection per endpoint at most). Checks never use the endpoint's
// traffic Pool: a saturated pool would queue the probe behind real requests and fail a healthy
// but busy endpoint, and each probe would take a connection a request could have used.
//
// Scheduling: each endpoint has its own loop and at most one check in flight. The next check is
// armed `interval` (±10 %) after the previous one *finished*, not on a fixed beat, so an endpoint
// that hangs gets one probe per `timeout + interval` instead of a growing pile of them. The first
// check of each endpoint waits a random part of one interval, and every later delay is jittered,
// so a pool's checks (and those of every gateway process) spread out instead of arriving at the
// upstreams in bursts. Timers are unref()ed: health checks alone never keep the process alive.
//
// New endpoints start healthy (the Endpoint constructor's default, left untouched here): a reload
// or a DNS change must not turn a pool into a 503 for the first interval while nothing has been
// checked yet, and passive outlier detection already covers a new endpoint that fails requests.
// Endpoints reused across a reload keep their `active` state, counters included, so the new
// snapshot's checker carries on where the old one stopped.

import { Agent, request } from 'undici';
import type { HealthCheckConfig } from '../../config/types.js';
import type { RandomSource } from '../balancers/random-source.js';
import { defaultRandom } from '../balancers/random-source.js';
import type { Endpoint } from '../endpoint.js';
import type { PoolMember } from '../member.js';
import { type HealthChecker, type HealthEvents, NULL_HEALTH_EVENTS } from './checker.js';

/** Relative spread of every delay after the first (±10 %). */
const JITTER = 0.1;
const USER_AGENT = 'gateway-health-check';
/**
 * A health endpoint's body carries nothing we read; more than this and the connection is dropped
 * rather than drained (the check still passes on its status).
 */
const MAX_DRAINED_BODY_BYTES = 64 * 1024;

export interface HttpHealthCheckerOptions {
  /** Draws the first offset and the jitter; injectable so tests and simulations can replay it. */
  readonly random?: RandomSource;
}

interface CheckResult {
  readonly passed: boolean;
  /** What `active.lastResult` and the ejection's evidence show, e.g. "status 500". */
  readonly result: string;
}

/** The schedule of one endpoint. Replaced, never revived: a re-added endpoint gets a new one. */
interface Target {
  readonly endpoint: Endpoint;
  /** `${origin}${path}`, computed once. */
  readonly url: string;
  timer: NodeJS.Timeout | null;
  /** The check in flight, for stop() and removal to abort. */
  inFlight: AbortController | null;
  /** False once removed or stopped: a check finishing afterwards changes nothing. */
  live: boolean;
}

export class HttpHealthChecker implements HealthChecker {
  readonly upstream: string;
  readonly config: HealthCheckConfig;
  readonly #events: HealthEvents;
  readonly #random: RandomSource;
  readonly #targets = new Map<Endpoint, Target>();
  #onChange: () => void = () => {};
  /** Created by start(), destroyed by stop(), so a stopped checker holds no sockets. */
  #agent: Agent | null = null;

  constructor(
    upstream: string,
    config: HealthCheckConfig,
    events: HealthEvents = NULL_HEALTH_EVENTS,
    options: HttpHealthCheckerOptions = {},
  ) {
    this.upstream = upstream;
    this.config = config;
    this.#events = events;
    this.#random = options.random ?? defaultRandom;
  }

  get running(): boolean {
    return this.#agent !== null;
  }

  /** The endpoints currently checked, in no particular order. */
  get endpoints(): Endpoint[] {
    return [...this.#targets.keys()];
  }

  start(members: readonly PoolMember[], onChange: () => void): void {
    this.#onChange = onChange;
    // A second start() is an update with a new callback, not a restart of every schedule.
    this.#agent ??= new Agent({
      // The whole check is bounded by `timeout` (see #check); a connect that cannot finish within
      // it is a failure of this check, not something to wait out for the default 10 s.
      connect: { timeout: this.config.timeoutMs },
    });
    this.update(members);
  }

  update(members: readonly PoolMember[]): void {
    if (this.#agent === null) return; // not started, or stopped: nothing may be scheduled
    const wanted = new Set<Endpoint>();
    for (const { endpoint } of members) wanted.add(endpoint);
    for (const [endpoint, target] of this.#targets) {
      if (!wanted.has(endpoint)) this.#drop(target);
    }
    for (const endpoint of wanted) {
      if (this.#targets.has(endpoint)) continue;
      const target: Target = {
        endpoint,
        url: `${new URL(endpoint.url).origin}${this.config.path}`,
        timer: null,
        inFlight: null,
        live: true,
      };
      this.#targets.set(endpoint, target);
      this.#arm(target, this.#random() * this.config.intervalMs);
    }
  }

  stop(): void {
    for (const target of this.#targets.values()) this.#drop(target);
    this.#onChange = () => {};
    const agent = this.#agent;
    this.#agent = null;
    // destroy, not close: close would wait for checks in flight, which were just aborted anyway.
    // Nothing to report if it fails; the agent is unreachable from here on.
    agent?.destroy().catch(() => {});
  }

  #drop(target: Target): void {
    target.live = false;
    if (target.timer !== null) clearTimeout(target.timer);
    target.timer = null;
    target.inFlight?.abort();
    target.inFlight = null;
    this.#targets.delete(target.endpoint);
  }

  #arm(target: Target, delayMs: number): void {
    target.timer = setTimeout(() => {
      target.timer = null;
      void this.#run(target);
    }, delayMs);
    target.timer.unref();
  }

  async #run(target: Target): Promise<void> {
    const agent = this.#agent;
    if (!target.live || agent === null) return;
    const controller = new AbortController();
    target.inFlight = controller;
    const outcome = await this.#check(target, agent, controller);
    if (!target.live) return; // removed or stopped meanwhile: its result belongs to nobody
    target.inFlight = null;
    // Armed before applying the result so that a throwing listener cannot end this endpoint's
    // checks as well.
    const spread = 1 + (this.#random() * 2 - 1) * JITTER;
    this.#arm(target, this.config.intervalMs * spread);
    this.#apply(target.endpoint, outcome);
  }

  /** One GET; never rejects. */
  async #check(target: Target, agent: Agent, controller: AbortController): Promise<CheckResult> {
    const timeoutMs = this.config.timeoutMs;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    timer.unref();
    try {
      const response = await request(target.url, {
        dispatcher: agent,
        method: 'GET',
        headers: { host: target.endpoint.address, 'user-agent': USER_AGENT },
        signal: controller.signal,
      });
      // The body is read (and thrown away) within the timeout too: a check passes on a complete
      // answer, and draining it lets the connection be reused for the next check. (Not
      // `body.dump()`: it resolves on a body cut short, and that is a failed answer.)
      let bytes = 0;
      for await (const chunk of response.body) {
        bytes += (chunk as Buffer).length;
        if (bytes > MAX_DRAINED_BODY_BYTES) break; // leaving the loop destroys the stream
      }
      const { statusCode } = response;
      return { passed: statusCode >= 200 && statusCode < 300, result: `status ${statusCode}` };
    } catch (err) {
      if (timedOut) return { passed: false, result: `timeout after ${timeoutMs}ms` };
      return { passed: false, result: describeFailure(err, timeoutMs) };
    } finally {
      clearTimeout(timer);
    }
  }

  #apply(endpoint: Endpoint, { passed, result }: CheckResult): void {
    const { active, passive } = endpoint;
    const threshold = passed ? this.config.healthyThreshold : this.config.unhealthyThreshold;
    active.lastResult = result;
    let changed = false;
    if (passed) {
      active.passesInRow++;
      active.failuresInRow = 0;
      if (!active.healthy && active.passesInRow >= threshold) {
        active.healthy = true;
        this.#events.healthy(endpoint);
        changed = true;
      }
      // One pass is enough to end a passive ejection: the outlier detector ejected on what
      // requests saw some time ago, the check is what the endpoint does now. The level stays, so
      // an endpoint that fails again is ejected for longer, as it would have been.
      if (passive.ejectedUntil !== null) {
        passive.ejectedUntil = null;
        passive.consecutive5xx = 0;
        passive.consecutiveGatewayFailures = 0;
        passive.healthySince = Date.now();
        this.#events.restoredEarly(endpoint);
        changed = true;
      }
    } else {
      active.failuresInRow++;
      active.passesInRow = 0;
      if (active.healthy && active.failuresInRow >= threshold) {
        active.healthy = false;
        const n = active.failuresInRow;
        const detail = `${n} failed check${n === 1 ? '' : 's'} in a row: ${result}`;
        const record = endpoint.recordEjection('active_health_check', detail, Date.now(), null);
        this.#events.unhealthy(endpoint, record);
        changed = true;
      }
    }
    if (changed) this.#onChange();
  }
}

/** The evidence for a check that got no HTTP answer, e.g. "connection refused". */
function describeFailure(err: unknown, timeoutMs: number): string {
  const code = errorCode(err);
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
      return 'connection reset';
    case 'UND_ERR_SOCKET':
      return 'connection closed by the upstream';
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return `timeout after ${timeoutMs}ms (connect)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'address lookup failed';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable';
    default:
      break;
  }
  if (code !== undefined) return `error ${code}`;
  return `error: ${err instanceof Error ? err.message : String(err)}`;
}

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  // Happy eyeballs (a host name with several addresses) fails with an AggregateError whose
  // members carry the codes.
  if (err instanceof AggregateError) return errorCode(err.errors[0]);
  return undefined;
}
