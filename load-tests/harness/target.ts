// The contract between the runner and a scenario. A target is anything that can be started fresh,
// listens on one port, and proxies to the round's upstreams: adding a scenario (JWT route,
// rate-limited route, split route...) is adding one more Target to the list in core.ts.
import type { HeaderSequence } from './load.js';
import type { CpuPinning } from './processes.js';

export interface RoundContext {
  /** The round's upstream endpoints, e.g. `http://127.0.0.1:41001`; every target gets the same. */
  readonly upstreams: readonly string[];
  /** Spawn the process under test on `pinning.proxyCpu`. */
  readonly pinning: CpuPinning;
}

export interface RunningTarget {
  readonly port: number;
  /** What the load generator requests; default `/`. Must answer 200 with the upstream's body. */
  readonly path?: string;
  /** Sent with every request (e.g. `authorization` for a JWT route). */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * A header set per request over `headers` during the warm-up and the measurement (one sequence
   * across both, e.g. a different JWT per request); the first check request uses `headers` only.
   */
  readonly headerSequence?: HeaderSequence;
  /** Identifies the code under test (e.g. a hash of the compiled gateway); compared across rounds. */
  readonly build?: string;
  /**
   * The process doing the proxying, whose CPU time per request is reported (with its child
   * processes': a `workers: N` gateway's workers); omit if unknown.
   */
  readonly pid?: number;
  /**
   * Anything that went wrong with the target itself, outside what the load generator saw: an exit
   * while it was being measured, a non-zero exit on SIGTERM. Read after `stop()`.
   */
  problems(): readonly string[];
  /** Stops it and waits until it is gone (its port free again). Never throws. */
  stop(): Promise<void>;
}

export interface Target {
  /** Short, stable: it names the column in tables and the key in the JSON. */
  readonly name: string;
  /** One line for the report: what is under test. */
  readonly description: string;
  /** Starts a fresh instance; resolves once it accepts requests. Called once per round. */
  start(context: RoundContext): Promise<RunningTarget>;
}
