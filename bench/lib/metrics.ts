// Reads plain (unlabelled) counters from a node's Prometheus endpoint: GET /metrics on its
// admin HTTP port (no token needed: scrapers are configured like health checks).

/** Each named series' value; undefined when the node does not export it. */
export async function readCounters(httpPort: number, names: readonly string[]): Promise<Record<string, number | undefined>> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics on port ${httpPort} answered ${res.status}`);
  const text = await res.text();
  const values: Record<string, number | undefined> = {};
  for (const name of names) {
    const match = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
    values[name] = match ? Number(match[1]) : undefined;
  }
  return values;
}

/** after - before, or undefined when either is missing. */
export function grown(before: Record<string, number | undefined>, after: Record<string, number | undefined>, name: string): number | undefined {
  const b = before[name];
  const a = after[name];
  return a === undefined || b === undefined ? undefined : a - b;
}
