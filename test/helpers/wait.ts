// Waiting in tests on real time: no fake timers, so a test polls for what it expects to happen.

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const POLL_MS = 10;

/**
 * Calls `probe` every few milliseconds until it returns something truthy, and returns that value.
 * Throws `timed out after Nms waiting for <what>` once `timeoutMs` has passed without one. A test
 * that needs to know how long it took measures that itself with performance.now().
 */
export async function until<T>(what: string, probe: () => T | false | null | undefined | Promise<T | false | null | undefined>, timeoutMs: number): Promise<T> {
  const started = performance.now();
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (performance.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await sleep(POLL_MS);
  }
}
