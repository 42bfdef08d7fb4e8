// How one upstream attempt ended, in the words outlier detection, retries and metrics share.
// `status` is the HTTP status the upstream answered, or the status the gateway answered for it
// when no HTTP answer came (502 for refused/reset/garbage, 504 for a timeout).

export type FailureKind = 'connect-failure' | 'reset' | 'timeout' | 'protocol';

export interface AttemptOutcome {
  readonly status: number;
  /** null when the upstream answered with HTTP (whatever the status). */
  readonly failure: FailureKind | null;
  readonly durationMs: number;
}
