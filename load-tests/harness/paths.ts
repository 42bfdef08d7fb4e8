// Where things are, resolved from this compiled file (dist/load-tests/harness/paths.js), so the
// harness runs the same from `npm run bench` or any other working directory.
import { fileURLToPath } from 'node:url';

const at = (relative: string): string => fileURLToPath(new URL(relative, import.meta.url));

/** The repository root (three levels above dist/load-tests/harness/). */
export const REPO_ROOT = at('../../../');
/** Where each run's JSON goes; git-ignored. Source folder, not dist/, so results survive a rebuild. */
export const RESULTS_DIR = at('../../../load-tests/results/');
/** The compiled gateway (src/ and plugins/), fingerprinted per measurement. */
export const GATEWAY_BUILD_DIRS = [at('../../src/'), at('../../plugins/')];
/** The gateway exactly as operators run it (the package's `bin`). */
export const GATEWAY_MAIN = at('../../src/cli/main.js');
export const BARE_PROXY = at('../bare-proxy.js');
export const UPSTREAM_SERVER = at('../upstream-server.js');
