import { randomUUID } from 'node:crypto';

// SPEC §4: a client's id is kept when it is 1–128 characters of [A-Za-z0-9._:-].
const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdFor(fromClient: string | string[] | undefined): string {
  return typeof fromClient === 'string' && VALID_REQUEST_ID.test(fromClient) ? fromClient : randomUUID();
}

// W3C Trace Context: version-traceid-parentid-flags, lower-case hex, all-zero ids invalid.
const VALID_TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The traceparent to send upstream: the client's when valid, otherwise a new sampled trace. */
export function traceparentFor(fromClient: string | string[] | undefined): string {
  if (typeof fromClient === 'string' && VALID_TRACEPARENT.test(fromClient)) return fromClient;
  const traceId = randomUUID().replace(/-/g, '');
  const spanId = randomUUID().replace(/-/g, '').slice(0, 16);
  return `00-${traceId}-${spanId}-01`;
}
