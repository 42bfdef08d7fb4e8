// What the primary and its worker processes say to each other over the cluster IPC channel. Every
// request carries an id its reply repeats; a worker answers each in the order it finishes.

import type { ConfigIssue } from '../errors.js';
import type { BoundAddress } from '../gateway.js';

/** The questions the primary asks a worker. */
export type WorkerCall =
  /** Load `text` as the routes file and prepare its snapshot without swapping it in. */
  | { readonly op: 'stage'; readonly text: string }
  /** Swap in what `stage` prepared (and re-read TLS certificates). */
  | { readonly op: 'commit' }
  /** Drop what `stage` prepared. */
  | { readonly op: 'abort' }
  | { readonly op: 'upstreams' }
  | { readonly op: 'config' }
  /** prom-client's getMetricsAsJSON() of the worker's registry. */
  | { readonly op: 'metrics' }
  | { readonly op: 'readiness' };

export type StageAnswer = { readonly version: string } | { readonly errors: readonly ConfigIssue[] };

export type { Readiness } from '../admin/server.js';

/** primary → worker */
export type ToWorker =
  /** The routes file as the primary read and validated it: the worker's first configuration. */
  | { readonly gw: 'init'; readonly routesText: string }
  | { readonly gw: 'call'; readonly id: number; readonly call: WorkerCall };

/** worker → primary */
export type FromWorker =
  /** Listening for messages: the primary answers with `init` (one sent earlier could be lost). */
  | { readonly gw: 'hello' }
  | { readonly gw: 'started'; readonly listeners: readonly BoundAddress[]; readonly version: string | null }
  /** The first load failed: the worker exits after saying so. */
  | { readonly gw: 'start_failed'; readonly message: string }
  | { readonly gw: 'reply'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly gw: 'reply'; readonly id: number; readonly ok: false; readonly error: string };

/** Node delivers other messages on the same channel (cluster's own): only ours have `gw`. */
export function isGatewayMessage<T extends FromWorker | ToWorker>(message: unknown): message is T {
  return typeof message === 'object' && message !== null && typeof (message as { gw?: unknown }).gw === 'string';
}
