// Overview: where the shards are, which modules are live, and how busy and how slow each
// service is right now (the node's own /metrics, scraped every 2 s).
import { ApiError, clusterView, listModules, scrapeMetrics } from "./api.js";
import { ratesBetween, snapshot, type CallSnapshot } from "./call-rates.js";
import { ColorMap } from "./colors.js";
import { h, replace } from "./dom.js";
import { milliseconds, perSecond, shortHash } from "./format.js";
import { LineChart } from "./line-chart.js";
import { describeError, notice, section, type Page } from "./page.js";
import { parseExposition } from "./prometheus.js";
import { shardPicture } from "./shard-grid.js";

const METRICS_EVERY_MS = 2000;
const CLUSTER_EVERY_MS = 5000;

export const overviewPage: Page = {
  title: "Overview",
  mount(root) {
    const nodeColors = new ColorMap();
    const serviceColors = new ColorMap();
    const cluster = h("div", {}, notice("info", "Loading the cluster…"));
    const modules = h("div", {}, notice("info", "Loading modules…"));
    const calls = new LineChart("Calls per second", serviceColors, perSecond);
    const p99 = new LineChart("p99 latency", serviceColors, milliseconds);
    const metricsError = h("div");
    replace(
      root,
      section("Nodes and shards", cluster),
      section("Modules", modules),
      section("Calls (this node)", metricsError, h("div", { class: "charts" }, calls.element, p99.element)),
    );

    const loadCluster = async () => {
      try {
        replace(cluster, shardPicture(await clusterView(), nodeColors));
      } catch (error) {
        // 501: the node runs on the embedded store, which has no cluster to show.
        if (error instanceof ApiError && error.httpStatus === 501) {
          replace(cluster, h("p", { class: "single-node" }, h("strong", {}, "Single node (embedded store)"), ": this node holds every entity; there are no shards to spread."));
        } else {
          replace(cluster, notice("error", `Could not read the cluster: ${describeError(error)}`));
        }
      }
    };

    const loadModules = async () => {
      try {
        const list = await listModules();
        replace(
          modules,
          list.length === 0
            ? notice("info", "No modules are deployed. Deploy one on the Modules page.")
            : h(
                "table",
                { class: "modules-summary" },
                h("thead", {}, h("tr", {}, h("th", {}, "module"), h("th", { class: "num" }, "version"), h("th", {}, "hash"), h("th", {}, "services"))),
                h(
                  "tbody",
                  {},
                  ...list.map((m) =>
                    h(
                      "tr",
                      {},
                      h("td", {}, m.name),
                      h("td", { class: "num" }, m.version ?? "–"),
                      h("td", { class: "mono", title: m.hash ?? "" }, shortHash(m.hash)),
                      h("td", {}, m.services.join(", ") || "–"),
                    ),
                  ),
                ),
              ),
        );
      } catch (error) {
        replace(modules, notice("error", `Could not list the modules: ${describeError(error)}`));
      }
    };

    let previous: CallSnapshot | undefined;
    const sampleMetrics = async () => {
      try {
        const now = snapshot(parseExposition(await scrapeMetrics()), Date.now());
        if (previous) {
          const rates = ratesBetween(previous, now);
          calls.push(new Map([...rates].map(([service, rate]) => [service, rate.callsPerSecond])));
          p99.push(new Map([...rates].map(([service, rate]) => [service, rate.p99Ms])));
        }
        previous = now;
        replace(metricsError);
      } catch (error) {
        replace(metricsError, notice("error", `Could not read /metrics: ${describeError(error)}`));
      }
    };

    void loadCluster();
    void loadModules();
    void sampleMetrics();
    const timers = [setInterval(() => void sampleMetrics(), METRICS_EVERY_MS), setInterval(() => void loadCluster(), CLUSTER_EVERY_MS)];
    const redraw = () => (calls.draw(), p99.draw());
    window.addEventListener("resize", redraw);
    return () => {
      for (const timer of timers) clearInterval(timer);
      window.removeEventListener("resize", redraw);
    };
  },
};
