// `npm start` / `npm run demo` build first when dist/ is missing or older than any source file,
// so a fresh clone needs no separate build step.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const marker = join(root, 'dist', 'src', 'cli', 'main.js');

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

const sources = ['src', 'plugins', 'scripts', 'load-tests']
  .map((d) => join(root, d))
  .filter((d) => existsSync(d))
  .reduce((m, d) => Math.max(m, newestMtime(d)), statSync(join(root, 'tsconfig.json')).mtimeMs);

if (!existsSync(marker) || statSync(marker).mtimeMs < sources) {
  process.stderr.write('building (tsc)...\n');
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
}
