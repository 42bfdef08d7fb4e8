// Run settings from the environment and the command line, validated once before anything starts.

export interface BenchSettings {
  readonly rounds: number;
  /** Seconds measured per target per round. */
  readonly durationS: number;
  /** Seconds of unmeasured load before each measurement (JIT, pools, connections). */
  readonly warmupS: number;
  readonly connections: number;
  /** `--smoke` / BENCH_SMOKE=1: one short round, to check in CI that the harness runs. */
  readonly smoke: boolean;
}

export const DEFAULT_SETTINGS = Object.freeze({
  rounds: 7, // PERF-NOTES: fewer than 7 interleaved rounds do not settle a ratio on these machines
  durationS: 10,
  warmupS: 1,
  connections: 64,
});

const SMOKE = Object.freeze({ rounds: 1, durationS: 2 });

/** What a scenario measures by default, when that differs from the proxy benchmarks' figures. */
export interface SettingsDefaults {
  readonly rounds: number;
  readonly durationS: number;
  /** What `--smoke` runs instead of `rounds` × `durationS`. */
  readonly smoke: { readonly rounds: number; readonly durationS: number };
}

const PROXY_DEFAULTS: SettingsDefaults = { rounds: DEFAULT_SETTINGS.rounds, durationS: DEFAULT_SETTINGS.durationS, smoke: SMOKE };

export class SettingsError extends Error {
  override readonly name = 'SettingsError';
}

export function readSettings(argv: readonly string[], env: NodeJS.ProcessEnv, defaults: SettingsDefaults = PROXY_DEFAULTS): BenchSettings {
  for (const arg of argv) {
    if (arg !== '--smoke') throw new SettingsError(`unknown argument ${JSON.stringify(arg)} (only --smoke)`);
  }
  const smoke = argv.includes('--smoke') || (env.BENCH_SMOKE !== undefined && env.BENCH_SMOKE !== '' && env.BENCH_SMOKE !== '0');
  const connections = readNumber(env, 'BENCH_CONNECTIONS', DEFAULT_SETTINGS.connections, { integer: true, min: 1, max: 10_000 });
  const warmupS = readNumber(env, 'BENCH_WARMUP', DEFAULT_SETTINGS.warmupS, { integer: false, min: 0, max: 600 });
  if (smoke) return { ...defaults.smoke, warmupS, connections, smoke };
  return {
    rounds: readNumber(env, 'BENCH_ROUNDS', defaults.rounds, { integer: true, min: 1, max: 1000 }),
    durationS: readNumber(env, 'BENCH_DURATION', defaults.durationS, { integer: true, min: 1, max: 3600 }),
    warmupS,
    connections,
    smoke,
  };
}

export function readNumber(env: NodeJS.ProcessEnv, name: string, fallback: number, bounds: { integer: boolean; min: number; max: number }): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  const kind = bounds.integer ? 'an integer' : 'a number';
  if (!Number.isFinite(value) || (bounds.integer && !Number.isInteger(value)) || value < bounds.min || value > bounds.max) {
    throw new SettingsError(`${name}=${JSON.stringify(raw)}: expected ${kind} from ${bounds.min} to ${bounds.max}`);
  }
  return value;
}

/**
 * Reads a scenario's settings; on bad settings prints `command: message` to stderr and returns
 * null (the scenario exits 2), so every scenario refuses bad input the same way.
 */
export function settingsOrExit<T>(command: string, read: () => T): T | null {
  try {
    return read();
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err;
    process.stderr.write(`${command}: ${err.message}\n`);
    return null;
  }
}
