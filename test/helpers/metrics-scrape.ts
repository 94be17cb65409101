// Reads a node's GET /metrics into samples keyed by `name{labels}` exactly as printed
// (the Prometheus text exposition format), for tests that count what their calls caused.
export async function scrapeMetrics(base: string): Promise<{ contentType: string; samples: Map<string, number> }> {
  const response = await fetch(`${base}/metrics`);
  const text = await response.text();
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return { contentType: response.headers.get("content-type") ?? "", samples };
}

/** The label set the call metrics use, in the order prom-client prints it. */
export function callLabels(service: string, method: string, ingress: string, extra = ""): string {
  return `{service="${service}",method="${method}",ingress="${ingress}"${extra}}`;
}
