// The console's reading of GET /metrics (console/src/prometheus.ts, call-rates.ts): parsing
// the exposition, and calls/s and p99 per service from two scrapes. Pure functions, so they
// are tested here in Node rather than in the browser.
import test from "ava";
import { quantileSeconds, ratesBetween, snapshot } from "../../console/src/call-rates.js";
import { parseExposition } from "../../console/src/prometheus.js";
import { Metrics } from "../../host/metrics.js";

test("parses samples with labels, escapes, +Inf and timestamps; skips comments and junk", (t) => {
  const text = [
    "# HELP x a metric",
    "# TYPE x counter",
    'x{service="a.B",method="Say \\"hi\\"",path="c:\\\\d"} 3',
    'x_bucket{le="+Inf",service="a.B"} 7 1700000000000',
    "plain 2.5e3",
    "broken{service=a} 1",
    "",
  ].join("\n");
  t.deepEqual(parseExposition(text), [
    { name: "x", labels: { service: "a.B", method: 'Say "hi"', path: "c:\\d" }, value: 3 },
    { name: "x_bucket", labels: { le: "+Inf", service: "a.B" }, value: 7 },
    { name: "plain", labels: {}, value: 2500 },
  ]);
});

test("calls/s and p99 per service from two scrapes of a real Metrics exposition", async (t) => {
  const metrics = new Metrics({ processMetrics: false });
  // Each call finishes at once with OK: in-memory timings, well under a millisecond.
  const call = (service: string, method: string) => metrics.startCall(service, method, "grpc")(0);
  call("shop.Cart", "Add");
  const before = snapshot(parseExposition((await metrics.scrape()).text), 0);
  for (let i = 0; i < 30; i++) call("shop.Cart", i % 2 ? "Add" : "Get");
  for (let i = 0; i < 4; i++) call("shop.Counter", "Inc");
  const after = snapshot(parseExposition((await metrics.scrape()).text), 2000);
  const rates = ratesBetween(before, after);
  t.is(rates.get("shop.Cart")?.callsPerSecond, 15, "30 calls in 2 s, over both methods");
  t.is(rates.get("shop.Counter")?.callsPerSecond, 2);
  const p99 = rates.get("shop.Cart")?.p99Ms;
  t.true(p99 !== undefined && p99 > 0 && p99 <= 2.5, `in-memory calls land in the first buckets, got ${p99} ms`);
});

test("quantile: interpolated inside its bucket, over the interval only, undefined without calls", (t) => {
  const cumulative = (counts: Record<string, number>) => new Map(Object.entries(counts).map(([le, n]) => [le === "+Inf" ? Infinity : Number(le), n]));
  const before = cumulative({ "0.001": 100, "0.01": 100, "0.1": 100, "+Inf": 100 });
  // 100 new calls: 50 under 1 ms, 40 in (1 ms, 10 ms], 10 in (10 ms, 100 ms].
  const now = cumulative({ "0.001": 150, "0.01": 190, "0.1": 200, "+Inf": 200 });
  t.is(quantileSeconds(0.5, before, now), 0.001);
  t.is(quantileSeconds(0.99, before, now)!.toFixed(3), "0.091");
  t.is(quantileSeconds(0.99, now, now), undefined);
  // Everything above the last finite bound reads as that bound.
  t.is(quantileSeconds(0.99, undefined, cumulative({ "0.001": 0, "0.01": 0, "+Inf": 5 })), 0.01);
});

test("a counter that went down (the node restarted) counts from zero", (t) => {
  const before = { at: 0, calls: new Map([["s", 100]]), buckets: new Map() };
  const now = { at: 1000, calls: new Map([["s", 7]]), buckets: new Map() };
  t.is(ratesBetween(before, now).get("s")?.callsPerSecond, 7);
});
