// Where key sets come from: one bounded HTTP GET of a jwksUri, or one read of a jwksFile.
//
// Why the bounds: the JWKS endpoint is a third party the gateway depends on for every
// authenticated request. A fetch is abandoned after `timeoutMs` whatever stage it is in (connect,
// headers, a body that drips), and a body above `maxBytes` is cut off, not buffered: a broken or
// hostile endpoint costs one bounded request, never memory or a stuck refresh loop. Redirects are
// not followed (undici's request does not): a JWKS that moved is a configuration change.
//
// Cost: one request per fetch on the provider's own undici Agent (at most one keep-alive
// connection, as fetches are single-flight), and one JSON.parse of at most `maxBytes`.

import { readFile } from 'node:fs/promises';
import { type Dispatcher, request } from 'undici';
import { describe } from './keys.js';

/** A JWKS is a few KiB; a MiB-sized one is a broken (or hostile) endpoint. */
export const JWKS_MAX_BYTES = 512 * 1024;
const USER_AGENT = 'gateway-jwks-fetch';

/** Why a fetch gave no document, as one line for a log. */
export class JwksFetchError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JwksFetchError';
  }
}

/** GETs `url` and parses the body as JSON. Throws JwksFetchError; never takes longer than `timeoutMs`. */
export async function fetchJwksDocument(url: string, dispatcher: Dispatcher, timeoutMs: number, maxBytes: number): Promise<unknown> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  timer.unref();
  let text: string;
  try {
    const response = await request(url, {
      dispatcher,
      method: 'GET',
      headers: { accept: 'application/jwk-set+json, application/json', 'user-agent': USER_AGENT },
      signal: controller.signal,
    });
    if (response.statusCode !== 200) {
      // Not drained: whatever an error page holds is of no use, and it may be large or endless.
      discard(response.body);
      throw new JwksFetchError(`HTTP status ${response.statusCode}`);
    }
    const declared = Number(response.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      discard(response.body);
      throw new JwksFetchError(`body of ${declared} bytes exceeds ${maxBytes} bytes`);
    }
    const chunks: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of response.body) {
      const buffer = chunk as Buffer;
      bytes += buffer.length;
      // Leaving the loop destroys the stream.
      if (bytes > maxBytes) throw new JwksFetchError(`body exceeds ${maxBytes} bytes`);
      chunks.push(buffer);
    }
    text = Buffer.concat(chunks, bytes).toString('utf8');
  } catch (err) {
    if (timedOut) throw new JwksFetchError(`timeout after ${timeoutMs}ms`, { cause: err });
    if (err instanceof JwksFetchError) throw err;
    throw new JwksFetchError(describeNetworkError(err), { cause: err });
  } finally {
    clearTimeout(timer);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new JwksFetchError(`not JSON: ${describe(err)}`, { cause: err });
  }
}

/** Reads and parses a jwksFile; the message of what it throws says what is wrong, not where. */
export async function readJwksDocument(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new Error(code === 'ENOENT' ? 'file not found' : `cannot read: ${describe(err)}`, { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new Error(`not JSON: ${describe(err)}`, { cause: err });
  }
}

/**
 * Drops a response body unread. undici's body emits an AbortError when destroyed before its end;
 * without a listener that would be an uncaught exception, i.e. a crashed gateway.
 */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => {});
  body.destroy();
}

function describeNetworkError(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
      return 'connection reset';
    case 'UND_ERR_SOCKET':
      return 'connection closed by the server';
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'connect timeout';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'address lookup failed';
    default:
      return typeof code === 'string' ? `${code}: ${describe(err)}` : describe(err);
  }
}
