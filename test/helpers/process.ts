import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

export interface GatewayProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly adminPort: number;
  /** Every stdout line so far (JSON log lines). */
  readonly lines: string[];
  readonly stderr: string[];
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

/**
 * Runs the built CLI (`npm test` compiles first) as operators do, and reads its bound ports from
 * the `gateway started` log line.
 */
export async function spawnGateway(configFile: string, extraArgs: readonly string[] = []): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [MAIN, '--config', configFile, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const stderr: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let nl;
    while ((nl = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      lines.push(line);
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (waiters[i]!.pattern.test(line)) {
          waiters[i]!.resolve(line);
          waiters.splice(i, 1);
        }
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  const waitForLine = (pattern: RegExp, timeoutMs = 15_000): Promise<string> => {
    const found = lines.find((l) => pattern.test(l));
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; stderr: ${stderr.join('')}`)), timeoutMs);
      waiters.push({ pattern, resolve: (l) => { clearTimeout(timer); resolve(l); } });
      void exited.then((code) => { clearTimeout(timer); reject(new Error(`gateway exited with ${code}: ${stderr.join('')}`)); });
    });
  };

  let startedLine: string;
  try {
    startedLine = await waitForLine(/"event":"started"/);
  } catch (err) {
    // Never leave a half-started gateway behind a failed test.
    child.kill('SIGKILL');
    throw err;
  }
  const started = JSON.parse(startedLine) as { listeners: { name: string; port: number }[] };
  const admin = started.listeners.find((l) => l.name === 'admin')!;
  const pub = started.listeners.find((l) => l.name !== 'admin')!;
  return { child, port: pub.port, adminPort: admin.port, lines, stderr, exited, waitForLine };
}
