// Regenerates config/schema/*.schema.json and the field reference in docs/configuration.md from
// src/config/schema.ts. Run from the repository root after changing the schema:
//   npx tsc -p . && node dist/scripts/write-schemas.js
// test/config/schema-docs.test.ts fails while the committed files differ from what this writes.

import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { DOCS_PATH, generatedFiles } from '../src/config/schema-docs.js';

async function main(root: string): Promise<void> {
  if (!existsSync(join(root, 'package.json')) || !existsSync(join(root, DOCS_PATH))) {
    throw new Error(`${root} is not the repository root (no package.json or ${DOCS_PATH}); run from there or pass it as the first argument`);
  }
  const docs = await readFile(join(root, DOCS_PATH), 'utf8');
  for (const file of generatedFiles(docs)) {
    const target = join(root, file.path);
    const before = existsSync(target) ? await readFile(target, 'utf8') : null;
    if (before === file.content) {
      process.stdout.write(`unchanged ${file.path}\n`);
      continue;
    }
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, file.content);
    process.stdout.write(`wrote     ${file.path}\n`);
  }
}

main(resolve(process.argv[2] ?? process.cwd())).catch((err: unknown) => {
  process.stderr.write(`write-schemas: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
