// `gateway validate --config FILE`: load both files exactly as a start or a reload would, like
// `nginx -t`. Problems go to stderr one per line as FILE:LINE:COL: field.path: message (the shape
// editors and CI annotators parse); success is a single stdout line.

import { loadConfig } from '../config/load.js';
import type { Env } from '../config/env.js';
import { configVersion } from '../config/version.js';
import { ConfigError, formatConfigIssue } from '../errors.js';

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
    const { routes } = await loadConfig(configFile, env);
    out.stdout(`ok: ${count(routes.routes.length, 'route')}, ${count(routes.upstreams.length, 'upstream')}, version ${configVersion(routes)}`);
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const issue of err.issues) out.stderr(formatConfigIssue(issue));
    return 1;
  }
}
