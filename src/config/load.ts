// Loading a config file goes through fixed stages, and each stage reports every problem it finds
// before the load gives up:
//   read → parse YAML (syntax errors stop here: nothing after can be trusted)
//   → environment references → JSON Schema → semantic checks and unsupported features → compile
// The result is deeply frozen: the hot path only ever reads it.

import type { ConfigIssue } from '../errors.js';
import { ConfigError } from '../errors.js';
import { compileGateway } from './compile-gateway.js';
import { compileRoutesFile } from './compile-routes.js';
import { interpolateEnv, type Env } from './env.js';
import { deepFreeze } from './freeze.js';
import { IssueCollector } from './issues.js';
import { checkSchema } from './schema-check.js';
import type { ConfigFileKind, GatewayFile, RoutesFile } from './schema.js';
import { resolve } from 'node:path';
import { parseConfigSource, readConfigSource, type FieldPath } from './source.js';
import type { GatewayConfig, RoutesConfig } from './types.js';
import { findUnsupportedInGateway, findUnsupportedInRoutes, type UnsupportedUse } from './unsupported.js';

export type { Env } from './env.js';

interface FileStages<Raw, Compiled> {
  readonly kind: ConfigFileKind;
  compile(raw: Raw, file: string, issues: IssueCollector): Compiled;
  unsupported(raw: Raw): UnsupportedUse[];
}

const GATEWAY_STAGES: FileStages<GatewayFile, GatewayConfig> = {
  kind: 'gateway',
  compile: compileGateway,
  unsupported: findUnsupportedInGateway,
};

const ROUTES_STAGES: FileStages<RoutesFile, RoutesConfig> = {
  kind: 'routes',
  compile: compileRoutesFile,
  unsupported: findUnsupportedInRoutes,
};

function startsWith(path: FieldPath, prefix: FieldPath): boolean {
  return prefix.length <= path.length && prefix.every((segment, i) => String(segment) === String(path[i]));
}

/** The raw file once it passed the schema (so later stages can rely on its shape), or null. */
interface Checked<Raw> {
  readonly raw: Raw | null;
  readonly issues: IssueCollector;
  readonly file: string;
}

async function checkFile<Raw>(stages: FileStages<Raw, unknown>, file: string, env: Env, text?: string): Promise<Checked<Raw>> {
  const source = text === undefined ? await readConfigSource(file) : parseConfigSource(resolve(file), text);
  const issues = new IssueCollector(source);
  const envProblems = interpolateEnv(source, env);
  for (const problem of envProblems) issues.addAtOffset(problem.path, problem.offset, problem.message);
  const data = source.toData();
  for (const problem of checkSchema(stages.kind, data)) {
    // A value whose variable is unset was left as written: its schema complaint would be noise.
    if (!envProblems.some((envProblem) => startsWith(problem.path, envProblem.path))) {
      issues.add(problem.path, problem.message, problem.target);
    }
  }
  return { raw: issues.size === 0 ? (data as Raw) : null, issues, file: source.file };
}

async function loadFile<Raw, Compiled>(stages: FileStages<Raw, Compiled>, file: string, env: Env, text?: string): Promise<Compiled> {
  const { raw, issues, file: absolute } = await checkFile(stages, file, env, text);
  issues.throwIfAny();
  const compiled = stages.compile(raw as Raw, absolute, issues);
  for (const use of stages.unsupported(raw as Raw)) issues.add(use.path, use.message);
  issues.throwIfAny();
  return deepFreeze(compiled);
}

/** Loads gateway.yaml. Throws ConfigError listing every problem found, each with its position. */
export async function loadGatewayConfig(file: string, env: Env = process.env): Promise<GatewayConfig> {
  return loadFile(GATEWAY_STAGES, file, env);
}

/**
 * Loads a routes file. Throws ConfigError listing every problem found, each with its position.
 * `text`: the file's content as already read (worker processes load exactly what the primary
 * read, whatever the file holds by then); `file` still names it in errors and anchors paths.
 */
export async function loadRoutesConfig(file: string, env: Env = process.env, text?: string): Promise<RoutesConfig> {
  return loadFile(ROUTES_STAGES, file, env, text);
}

async function issuesOf<T>(load: Promise<T>): Promise<{ readonly value: T | null; readonly issues: readonly ConfigIssue[] }> {
  try {
    return { value: await load, issues: [] };
  } catch (err) {
    if (err instanceof ConfigError) return { value: null, issues: err.issues };
    throw err;
  }
}

/**
 * Loads gateway.yaml and the routes file it names. When gateway.yaml is well-formed enough to name
 * its routes file, the routes file is checked too even if gateway.yaml has other problems, so one
 * run reports both files.
 */
export async function loadConfig(
  gatewayFile: string,
  env: Env = process.env,
): Promise<{ readonly gateway: GatewayConfig; readonly routes: RoutesConfig }> {
  const gateway = await issuesOf(loadGatewayConfig(gatewayFile, env));
  let routesFile = gateway.value?.routesFile ?? null;
  if (routesFile === null) {
    // Only when the schema stage passed is the routes file name reliable.
    const checked = await issuesOf(checkFile(GATEWAY_STAGES, gatewayFile, env));
    if (checked.value?.raw) routesFile = compileGateway(checked.value.raw, checked.value.file, checked.value.issues).routesFile;
  }
  const routes = routesFile === null ? { value: null, issues: [] } : await issuesOf(loadRoutesConfig(routesFile, env));
  if (gateway.value === null || routes.value === null) throw new ConfigError([...gateway.issues, ...routes.issues]);
  return { gateway: gateway.value, routes: routes.value };
}
