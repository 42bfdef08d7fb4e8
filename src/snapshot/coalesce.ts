/**
 * Runs `run` at most once at a time; calls made while it runs share one follow-up run, which
 * starts after it (a burst of SIGHUPs costs two reloads, and the second sees the files as they
 * are by then).
 */
export function coalesced<T>(run: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | null = null;
  let queued: Promise<T> | null = null;
  const start = (): Promise<T> => {
    if (running === null) {
      running = run().finally(() => {
        running = null;
      });
      return running;
    }
    queued ??= running.then(() => {
      queued = null;
      return start();
    });
    return queued;
  };
  return start;
}
