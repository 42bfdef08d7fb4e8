import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';

// Editors save by writing a temp file and renaming it over the original; Kubernetes swaps a
// `..data` symlink in the ConfigMap folder. Both replace the inode a file watch would hold, so we
// watch the folder and react to any event naming the file or `..data`.
const DEBOUNCE_MS = 250;

/** Calls `onChange` (debounced) whenever `file` may have changed; returns a stop function. */
export function watchConfigFile(file: string, onChange: () => void): () => void {
  const dir = dirname(file);
  const name = basename(file);
  let timer: NodeJS.Timeout | null = null;
  const fire = (): void => {
    timer = null;
    onChange();
  };
  const watcher: FSWatcher = watch(dir, { persistent: false }, (_event, changed) => {
    if (changed !== null && changed !== name && changed !== '..data') return;
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(fire, DEBOUNCE_MS);
  });
  return () => {
    if (timer !== null) clearTimeout(timer);
    watcher.close();
  };
}
