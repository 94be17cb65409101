import test from "ava";
import fc from "fast-check";
import { Counter, Histogram, Registry } from "prom-client";
import { HotCounter, HotHistogram } from "../../host/hot-metrics.js";

// prom-client is the oracle: the same observations recorded in a prom-client metric and in a
// hot one must print the same exposition text, line for line.

const BUCKETS = [0.001, 0.01, 0.1, 1];
// Label values with the characters the format escapes.
const labelValue = fc.oneof(fc.constantFrom("keystate.Counter", "a\\b", 'say "hi"', "two\nlines", ""), fc.string({ maxLength: 8 }));

async function promText(make: (registry: Registry) => void): Promise<string> {
  const registry = new Registry();
  make(registry);
  return (await registry.metrics()).trim();
}

test("a hot counter prints what prom-client prints for the same increments", async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(labelValue, labelValue, fc.integer({ min: 1, max: 1000 })), { minLength: 1, maxLength: 20 }), async (increments) => {
      const hot = new HotCounter("keystate_test_total", "Calls\\ counted, by service and method.", ["service", "method"]);
      const expected = await promText((registry) => {
        const counter = new Counter({ name: "keystate_test_total", help: "Calls\\ counted, by service and method.", labelNames: ["service", "method"], registers: [registry] });
        for (const [service, method, by] of increments) counter.inc({ service, method }, by);
      });
      for (const [service, method, by] of increments) hot.series(service, method).value += by;
      t.is(hot.exposition(), expected);
    }),
    { numRuns: 200 },
  );
});

test("a hot histogram prints what prom-client prints for the same observations", async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(labelValue, fc.double({ min: 0, max: 5, noNaN: true })), { minLength: 1, maxLength: 30 }), async (observations) => {
      const hot = new HotHistogram("keystate_test_seconds", "Time taken.", ["service"], BUCKETS);
      const expected = await promText((registry) => {
        const histogram = new Histogram({ name: "keystate_test_seconds", help: "Time taken.", labelNames: ["service"], buckets: BUCKETS, registers: [registry] });
        for (const [service, value] of observations) histogram.observe({ service }, value);
      });
      for (const [service, value] of observations) hot.series(service).observe(value);
      t.is(hot.exposition(), expected);
    }),
    { numRuns: 200 },
  );
});

test("seriesOf(value) is the series series(value) makes, for a one-label metric", (t) => {
  const hot = new HotHistogram("keystate_one_label_seconds", "Time.", ["service"], BUCKETS);
  hot.seriesOf("a").observe(0.005);
  hot.series("a").observe(0.5);
  hot.seriesOf("b").observe(2);
  t.is(hot.series("a"), hot.seriesOf("a"));
  t.is(hot.seriesOf("a").count, 2);
  t.is(hot.seriesOf("b").count, 1);
  t.regex(hot.exposition(), /keystate_one_label_seconds_count\{service="a"\} 2\nkeystate_one_label_seconds_bucket\{le="0.001",service="b"\} 0/);
});
