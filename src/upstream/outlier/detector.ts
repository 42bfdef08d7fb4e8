import type { AttemptOutcome } from '../outcome.js';
import type { Endpoint } from '../endpoint.js';

/**
 * Passive outlier detection seam. The request path only calls `record`; a detector that ejects
 * does so from its own timer (Envoy's model), never inside a request.
 */
export interface OutlierDetector {
  record(endpoint: Endpoint, outcome: AttemptOutcome): void;
  start(): void;
  stop(): void;
}

/** The detector used while outlier detection is not implemented or is `off`: records nothing. */
export const NULL_OUTLIER_DETECTOR: OutlierDetector = Object.freeze({
  record(): void {},
  start(): void {},
  stop(): void {},
});
