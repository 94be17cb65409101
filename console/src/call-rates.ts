// Calls per second and p99 latency per service, from two scrapes of the node's metrics:
// keystate_calls_total and the keystate_call_duration_seconds histogram (host/metrics.ts),
// summed over methods and ingresses. Rates come from the difference, so a chart shows
// the last interval, not the node's lifetime.
import type { Sample } from "./prometheus.js";

const CALLS = "keystate_calls_total";
const BUCKETS = "keystate_call_duration_seconds_bucket";

/** One scrape reduced to what the rates need. */
export interface CallSnapshot {
  readonly at: number;
  /** Calls so far, by service. */
  readonly calls: ReadonlyMap<string, number>;
  /** Cumulative bucket counts by service, then by upper bound in seconds (+Inf included). */
  readonly buckets: ReadonlyMap<string, ReadonlyMap<number, number>>;
}

export interface ServiceRate {
  readonly callsPerSecond: number;
  /** Undefined when the service answered no call in the interval. */
  readonly p99Ms: number | undefined;
}

export function snapshot(samples: readonly Sample[], at: number): CallSnapshot {
  const calls = new Map<string, number>();
  const buckets = new Map<string, Map<number, number>>();
  for (const sample of samples) {
    const service = sample.labels.service;
    if (service === undefined) continue;
    if (sample.name === CALLS) {
      calls.set(service, (calls.get(service) ?? 0) + sample.value);
    } else if (sample.name === BUCKETS && sample.labels.le !== undefined) {
      const bound = sample.labels.le === "+Inf" ? Infinity : Number(sample.labels.le);
      const byBound = buckets.get(service) ?? new Map<number, number>();
      byBound.set(bound, (byBound.get(bound) ?? 0) + sample.value);
      buckets.set(service, byBound);
    }
  }
  return { at, calls, buckets };
}

/** The rates of each service seen in `now`, over the interval since `before`. */
export function ratesBetween(before: CallSnapshot, now: CallSnapshot): Map<string, ServiceRate> {
  const seconds = Math.max((now.at - before.at) / 1000, 0.001);
  const rates = new Map<string, ServiceRate>();
  for (const [service, total] of now.calls) {
    // A counter that went down means the node restarted: count from zero.
    const previous = before.calls.get(service) ?? 0;
    const calls = total >= previous ? total - previous : total;
    const p99Ms = quantileSeconds(0.99, before.buckets.get(service), now.buckets.get(service));
    rates.set(service, { callsPerSecond: calls / seconds, p99Ms: p99Ms === undefined ? undefined : p99Ms * 1000 });
  }
  return rates;
}

/**
 * The q-quantile of the observations made between two cumulative histograms, interpolated
 * linearly inside its bucket (as Prometheus's histogram_quantile does); observations above
 * the last finite bound count as that bound.
 */
export function quantileSeconds(q: number, before: ReadonlyMap<number, number> | undefined, now: ReadonlyMap<number, number> | undefined): number | undefined {
  if (!now) return undefined;
  const bounds = [...now.keys()].sort((a, b) => a - b);
  const deltas = bounds.map((bound) => Math.max(0, (now.get(bound) ?? 0) - (before?.get(bound) ?? 0)));
  const total = deltas[deltas.length - 1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i++) {
    const cumulative = deltas[i]!;
    if (cumulative < rank) continue;
    const upper = bounds[i]!;
    const lower = i === 0 ? 0 : bounds[i - 1]!;
    if (upper === Infinity) return lower;
    const below = i === 0 ? 0 : deltas[i - 1]!;
    const inBucket = cumulative - below;
    return inBucket <= 0 ? upper : lower + ((upper - lower) * (rank - below)) / inBucket;
  }
  return bounds.length > 1 ? bounds[bounds.length - 2] : undefined;
}
