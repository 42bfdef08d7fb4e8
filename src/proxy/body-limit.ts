import { Transform, type TransformCallback } from 'node:stream';
import { GatewayError } from '../errors.js';

/**
 * Counts a chunked request body on its way upstream and fails it past the limit. Only used when
 * the client sent no Content-Length (a declared length is checked before anything is sent), so the
 * common case pays nothing.
 */
export class BodyLimitStream extends Transform {
  readonly #limit: number;
  #seen = 0;

  constructor(limit: number) {
    super();
    this.#limit = limit;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#limit) {
      callback(new GatewayError('GW_ERR_REQUEST_BODY_TOO_LARGE', [this.#limit]));
      return;
    }
    callback(null, chunk);
  }
}
