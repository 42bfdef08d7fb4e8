// `gateway validate --config FILE`: load both files exactly as a start or a reload would, like
// `nginx -t`. Problems go to stderr one per line as FILE:LINE:COL: field.path: message (the shape
// editors and CI annotators parse); success is a single stdout line.

import { loadConfig } from '../config/load.js';
import type { Env } from '../config/env.js';
import { configVersion } from '../config/version.js';
import { ConfigError, type ConfigIssue, formatConfigIssue } from '../errors.js';
import { checkKeyFiles } from '../filters/builtins.js';
import { TlsTerminator } from '../tls/terminator.js';

/** Line writers; each call is one line, without its newline. */
export interface ValidateOutput {
  stdout(line: string): void;
  stderr(line: string): void;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** Exit code 0 when both files are valid, 1 when not (every problem printed). */
export async function runValidate(configFile: string, out: ValidateOutput, env: Env = process.env): Promise<number> {
  try {
    const { gateway, routes } = await loadConfig(configFile, env);
    // Like `nginx -t`, the files the configuration names are loaded too: certificates and keys,
    // JWT key files (a jwksUri is not fetched).
    const problems: ConfigIssue[] = [];
    for (const [i, listener] of gateway.listeners.entries()) {
      if (listener.tls === null) continue;
      await TlsTerminator.load(listener.tls, { path: `listeners[${i}].tls`, configFile: gateway.file }).catch((err: unknown) => {
        if (!(err instanceof ConfigError)) throw err;
        problems.push(...err.issues);
      });
    }
    await checkKeyFiles(routes).catch((err: unknown) => {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.issues);
    });
    if (problems.length > 0) throw new ConfigError(problems);
    out.stdout(`ok: ${count(routes.routes.length, 'route')}, ${count(routes.upstreams.length, 'upstream')}, version ${configVersion(routes)}`);
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const issue of err.issues) out.stderr(formatConfigIssue(issue));
    return 1;
  }
}
