// Progress lines on stderr while a suite runs (stdout stays clean for --json).
const started = performance.now();

export function progress(suite: string, message: string): void {
  const seconds = ((performance.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`${seconds}s [${suite}] ${message}\n`);
}

/** Formats microseconds for people: 12.3 us, 0.61 ms, 1.20 s. */
export function fmtUs(us: number | undefined): string {
  if (us === undefined || !Number.isFinite(us)) return "n/a";
  if (us < 1000) return `${us < 10 ? us.toFixed(2) : us.toFixed(1)} us`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)} ms`;
  return `${(us / 1_000_000).toFixed(2)} s`;
}

export function fmtRate(perSecond: number | undefined): string {
  if (perSecond === undefined || !Number.isFinite(perSecond)) return "n/a";
  if (perSecond >= 1_000_000) return `${(perSecond / 1_000_000).toFixed(2)}M/s`;
  if (perSecond >= 10_000) return `${(perSecond / 1000).toFixed(1)}k/s`;
  return `${Math.round(perSecond)}/s`;
}

/** "x4.2" — how many times `value` is of `baseline` (both in the same unit). */
export function fmtRatio(value: number | undefined, baseline: number | undefined): string {
  if (value === undefined || baseline === undefined || !(baseline > 0) || !Number.isFinite(value)) return "n/a";
  const r = value / baseline;
  return `x${r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)}`;
}
