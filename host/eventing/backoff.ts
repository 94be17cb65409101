// Retry pacing shared by the subscription runners (topics and event logs).

/** Before retry n (1-based): base * 2^(n-1), at most `maxMs`, then 50-100% of that (jitter spreads retries of many keys). */
export function backoffMs(n: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(n - 1, 20));
  return ceiling * (0.5 + Math.random() * 0.5);
}

/** Waits `ms`, or less when `signal` aborts (a loop stopping). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    // A retry wait alone never keeps a process alive (a node is kept up by its servers).
    timer.unref();
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
