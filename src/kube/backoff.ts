// Exponential backoff shared by the work queue, informer restarts, leader election and job retries.

/** `base * 2^failures`, capped at `max` (all in milliseconds). */
export function exponentialDelay(failures: number, baseMs: number, maxMs: number): number {
  if (failures <= 0) return baseMs;
  // 2^n overflows to Infinity long before n reaches the cap; Math.min handles that.
  return Math.min(maxMs, baseMs * 2 ** failures);
}

/** Resolves after `ms`, or early (without throwing) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
