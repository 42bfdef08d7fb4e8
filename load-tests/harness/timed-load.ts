// One burst of load from autocannon in which every response is kept with the wall-clock time it
// arrived: for scenarios where something changes mid-run (an endpoint starts failing), so that
// throughput, latency and errors can be read per window of time afterwards. load.ts stays the
// plain version the main bench uses.
import { type AutocannonRun, type AutocannonTotals, runAutocannon } from './load.js';
import { performance } from 'node:perf_hooks';

export type TimedLoadOptions = AutocannonRun;

/** Wall-clock ms with sub-ms precision, comparable across processes of the machine. */
export const wallNow = (): number => performance.timeOrigin + performance.now();

/** Status recorded for a request that got no HTTP answer (socket error, reset, timeout). */
export const NO_ANSWER = 0;

/** Every response of a run, in arrival order: `at[i]` (wall ms), `status[i]`, `latencyMs[i]`. */
export class ResponseLog {
  #at = new Float64Array(1 << 16);
  #status = new Uint16Array(1 << 16);
  #latency = new Float64Array(1 << 16);
  #length = 0;

  get length(): number {
    return this.#length;
  }

  add(at: number, status: number, latencyMs: number): void {
    if (this.#length === this.#at.length) {
      const grow = <T extends Float64Array | Uint16Array>(a: T, make: (n: number) => T): T => {
        const b = make(a.length * 2);
        b.set(a);
        return b;
      };
      this.#at = grow(this.#at, (n) => new Float64Array(n));
      this.#status = grow(this.#status, (n) => new Uint16Array(n));
      this.#latency = grow(this.#latency, (n) => new Float64Array(n));
    }
    const i = this.#length++;
    this.#at[i] = at;
    this.#status[i] = status;
    this.#latency[i] = latencyMs;
  }

  /** Responses that arrived in [from, to) (wall ms). */
  window(from: number, to: number): WindowStats {
    let ok = 0;
    let non2xx = 0;
    let noAnswer = 0;
    const okLatencies: number[] = [];
    const codes: Record<string, number> = {};
    for (let i = 0; i < this.#length; i++) {
      const at = this.#at[i]!;
      if (at < from || at >= to) continue;
      const status = this.#status[i]!;
      if (status === NO_ANSWER) {
        noAnswer++;
        continue;
      }
      codes[status] = (codes[status] ?? 0) + 1;
      if (status >= 200 && status < 300) {
        ok++;
        okLatencies.push(this.#latency[i]!);
      } else {
        non2xx++;
      }
    }
    okLatencies.sort((a, b) => a - b);
    const q = (p: number): number | null => (okLatencies.length === 0 ? null : okLatencies[Math.min(okLatencies.length - 1, Math.ceil(p * okLatencies.length) - 1)]!);
    const seconds = Math.max(0, to - from) / 1000;
    return {
      from,
      to,
      seconds,
      ok,
      non2xx,
      noAnswer,
      statusCodes: codes,
      okPerSecond: seconds > 0 ? ok / seconds : Number.NaN,
      p50Ms: q(0.5),
      p99Ms: q(0.99),
    };
  }

  /** Arrival times (wall ms) of every response that was not a 2xx, socket errors included. */
  failures(): { at: number; status: number }[] {
    const out: { at: number; status: number }[] = [];
    for (let i = 0; i < this.#length; i++) {
      const status = this.#status[i]!;
      if (status < 200 || status >= 300) out.push({ at: this.#at[i]!, status });
    }
    return out;
  }

  lastAt(): number | null {
    return this.#length === 0 ? null : this.#at[this.#length - 1]!;
  }
}

export interface WindowStats {
  readonly from: number;
  readonly to: number;
  readonly seconds: number;
  /** 2xx responses. */
  readonly ok: number;
  readonly non2xx: number;
  /** Requests that got no HTTP answer. */
  readonly noAnswer: number;
  readonly statusCodes: Readonly<Record<string, number>>;
  /** 2xx responses per second: the throughput clients got. */
  readonly okPerSecond: number;
  /** Of 2xx responses, as seen by the load generator (sub-ms). */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
}

export interface TimedLoadResult {
  /** Wall ms just before autocannon was started. */
  readonly startedAt: number;
  /** Wall ms when autocannon reported the end of the run. */
  readonly finishedAt: number;
  readonly log: ResponseLog;
  /** autocannon's own totals, to cross-check the log. */
  readonly totals: Omit<AutocannonTotals, 'durationS'>;
}

export async function runTimedLoad(options: TimedLoadOptions): Promise<TimedLoadResult> {
  const log = new ResponseLog();
  const startedAt = wallNow();
  const { durationS: _durationS, ...totals } = await runAutocannon(options, (instance) => {
    instance.on('response', (_client: unknown, status: number, _bytes: number, responseTimeMs: number) => log.add(wallNow(), status, responseTimeMs));
    instance.on('reqError', () => log.add(wallNow(), NO_ANSWER, Number.NaN));
  });
  return { startedAt, finishedAt: wallNow(), log, totals };
}
