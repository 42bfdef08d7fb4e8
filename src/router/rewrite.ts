// The path forwarded upstream, from the normalised request path and the route's prefix rules.
// Built once per route per snapshot; `rewrite` is one startsWith check, one slice and at most one
// concatenation.

import type { RouteConfig } from '../config/types.js';
import { GatewayError } from '../errors.js';
import { normalizePath } from './normalize.js';

const IDENTITY = 0;
const STRIP = 1;
const REPLACE = 2;
type Mode = typeof IDENTITY | typeof STRIP | typeof REPLACE;

/**
 * A prefix as the router compares it: normalised like a request path (so `/%7euser` and `/~user`
 * are one prefix), no trailing slash except for `/` itself. `field` names the config field in the
 * GW_ERR_CONFIG_INVALID it throws, e.g. `routes[3].prefix`.
 */
export function canonicalPrefix(prefix: string, field: string): string {
  let p: string;
  try {
    p = normalizePath(prefix);
  } catch (err) {
    const reason = err instanceof GatewayError ? err.message : String(err);
    throw new GatewayError('GW_ERR_CONFIG_INVALID', [`${field}: ${reason}`], { cause: err });
  }
  // The prefix matches at segment boundaries, so `/api/` and `/api` mean the same thing.
  while (p.length > 1 && p.charCodeAt(p.length - 1) === 0x2f) p = p.slice(0, -1);
  return p;
}

/**
 * Replaces a route's prefix in the (already normalised, already matched) request path:
 * - `stripPrefix`: prefix `/api/users`: `/api/users/42` -> `/42`, `/api/users` -> `/`;
 * - `rewritePrefix: /v2/users`: `/api/users/42` -> `/v2/users/42`, `/api/users` -> `/v2/users`,
 *   `/api/users/` -> `/v2/users/`;
 * - neither: the path unchanged.
 * The prefix `/` counts as the empty prefix: stripping it leaves the path as it is, and
 * rewriting it to `/v2` prepends (`/x` -> `/v2/x`, `/` -> `/v2/`). A trailing slash on
 * `rewritePrefix` is dropped (`/v2/` behaves as `/v2`), so the result never contains `//`.
 */
export class PathRewriter {
  readonly prefix: string;
  /** What replaces the prefix; '' for strip, null for identity. */
  readonly replacement: string | null;
  readonly #mode: Mode;
  readonly #target: string;
  /** Chars of the request path the prefix covers: 0 for `/`. */
  readonly #cut: number;

  /** `where` prefixes the field names of config errors, e.g. `routes[3].`. */
  constructor(prefix: string, stripPrefix: boolean, rewritePrefix: string | null, where = '') {
    if (stripPrefix && rewritePrefix !== null) {
      throw new GatewayError('GW_ERR_CONFIG_INVALID', [
        `${where}stripPrefix: stripPrefix and rewritePrefix are mutually exclusive`,
      ]);
    }
    this.prefix = canonicalPrefix(prefix, `${where}prefix`);
    this.#cut = this.prefix === '/' ? 0 : this.prefix.length;
    if (rewritePrefix !== null) {
      const target = canonicalPrefix(rewritePrefix, `${where}rewritePrefix`);
      // Rewriting to `/` is stripping; keeping one representation keeps `rewrite` branch-free.
      this.#mode = target === '/' ? STRIP : REPLACE;
      this.replacement = target === '/' ? '' : target;
      this.#target = this.replacement;
    } else if (stripPrefix) {
      this.#mode = STRIP;
      this.replacement = '';
      this.#target = '';
    } else {
      this.#mode = IDENTITY;
      this.replacement = null;
      this.#target = '';
    }
  }

  static forRoute(route: RouteConfig): PathRewriter {
    return new PathRewriter(route.prefix, route.stripPrefix, route.rewritePrefix, `routes[${route.index}].`);
  }

  /** True when `rewrite` returns its argument unchanged for every path. */
  get isIdentity(): boolean {
    return this.#mode === IDENTITY || (this.#mode === STRIP && this.#cut === 0);
  }

  /**
   * `path` must be a normalised path the route matched (the prefix at a segment boundary);
   * anything else is a caller bug and throws GW_ERR_INTERNAL rather than forwarding a wrong path.
   */
  rewrite(path: string): string {
    if (this.#mode === IDENTITY) return path;
    const cut = this.#cut;
    if (cut !== 0 && !(path.startsWith(this.prefix) && (path.length === cut || path.charCodeAt(cut) === 0x2f))) {
      throw new GatewayError('GW_ERR_INTERNAL', [], {
        cause: new Error(`path ${JSON.stringify(path)} does not start with prefix ${JSON.stringify(this.prefix)}`),
      });
    }
    // `rest` is '' (the path was the prefix) or starts with '/'.
    const rest = cut === 0 ? path : path.slice(cut);
    if (this.#mode === STRIP) return rest.length === 0 ? '/' : rest;
    return rest.length === 0 ? this.#target : this.#target + rest;
  }
}
