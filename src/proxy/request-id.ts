import { randomFillSync, randomUUID } from 'node:crypto';

// SPEC §4: a client's id is kept when it is 1–128 characters of [A-Za-z0-9._:-].
const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdFor(fromClient: string | string[] | undefined): string {
  return typeof fromClient === 'string' && VALID_REQUEST_ID.test(fromClient) ? fromClient : randomUUID();
}

// W3C Trace Context: version-traceid-parentid-flags, lower-case hex, all-zero ids invalid.
const VALID_TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

// Random bytes drawn in blocks: one getrandom call per ~170 requests instead of two UUIDs each.
const RANDOM_BLOCK = 4096;
const TRACE_BYTES = 24; // 16 for the trace id, 8 for the span id
const random = Buffer.alloc(RANDOM_BLOCK);
let randomOffset = RANDOM_BLOCK;

function nextTraceHex(): string {
  if (randomOffset + TRACE_BYTES > RANDOM_BLOCK) {
    randomFillSync(random);
    randomOffset = 0;
  }
  const hex = random.toString('hex', randomOffset, randomOffset + TRACE_BYTES);
  randomOffset += TRACE_BYTES;
  return hex;
}

/** The traceparent to send upstream: the client's when valid, otherwise a new sampled trace. */
export function traceparentFor(fromClient: string | string[] | undefined): string {
  if (typeof fromClient === 'string' && VALID_TRACEPARENT.test(fromClient)) return fromClient;
  // W3C trace context forbids all-zero ids: vanishingly rare, but an upstream would reject it.
  let hex = nextTraceHex();
  while (hex.startsWith('00000000000000000000000000000000') || hex.endsWith('0000000000000000')) hex = nextTraceHex();
  return `00-${hex.slice(0, 32)}-${hex.slice(32)}-01`;
}

/** The trace id of a traceparent (`00-<trace id>-<parent id>-<flags>`). */
export function traceIdOf(traceparent: string): string {
  return traceparent.slice(3, 35);
}

/** The trace id of a valid traceparent (the one sent upstream, or the client's); null otherwise. */
export function validTraceId(fromClient: string | string[] | undefined): string | null {
  return typeof fromClient === 'string' && VALID_TRACEPARENT.test(fromClient) ? traceIdOf(fromClient) : null;
}
