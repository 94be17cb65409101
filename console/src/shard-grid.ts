// The cluster's shards as a picture: one square per shard (16 x 16 for the default 256),
// coloured by the node that holds its lease, grey when nobody does; and the nodes beside it.
import type { ClusterView } from "./api-types.js";
import type { ColorMap } from "./colors.js";
import { h, svg } from "./dom.js";

const CELL = 14;
const GAP = 2;
const UNOWNED = "#d1d5db";

export function shardPicture(view: ClusterView, colors: ColorMap): HTMLElement {
  const owner = new Map<number, string>();
  for (const node of view.nodes) for (const shard of node.shards) owner.set(shard, node.id);
  const columns = Math.ceil(Math.sqrt(view.shardCount));
  const rows = Math.ceil(view.shardCount / columns);
  const size = (n: number) => n * (CELL + GAP) - GAP;
  const picture = svg("svg", {
    class: "shard-grid",
    width: size(columns),
    height: size(rows),
    viewBox: `0 0 ${size(columns)} ${size(rows)}`,
    role: "img",
    "aria-label": `${view.shardCount} shards by owner`,
  });
  for (let shard = 0; shard < view.shardCount; shard++) {
    const id = owner.get(shard);
    const cell = svg(
      "rect",
      { x: (shard % columns) * (CELL + GAP), y: Math.floor(shard / columns) * (CELL + GAP), width: CELL, height: CELL, rx: 2, fill: id === undefined ? UNOWNED : colors.colorOf(id) },
      svg("title", {}, `shard ${shard}: ${id ?? "nobody"}`),
    );
    picture.appendChild(cell);
  }
  const unowned = view.shardCount - owner.size;
  const nodes = [...view.nodes].sort((a, b) => a.id.localeCompare(b.id));
  const legend = h(
    "table",
    { class: "nodes" },
    h("thead", {}, h("tr", {}, h("th", {}, "node"), h("th", {}, "address"), h("th", {}, "state"), h("th", { class: "num" }, "shards"))),
    h(
      "tbody",
      {},
      ...nodes.map((node) =>
        h(
          "tr",
          {},
          h("td", {}, swatch(colors.colorOf(node.id)), ` ${node.id}`, node.id === view.self ? h("span", { class: "tag" }, "this node") : null),
          h("td", { class: "mono" }, node.address),
          h("td", {}, (node.alive ? "alive" : "dead") + (node.draining ? ", draining" : "")),
          h("td", { class: "num" }, new Set(node.shards).size),
        ),
      ),
      unowned > 0 ? h("tr", {}, h("td", {}, swatch(UNOWNED), " unowned"), h("td", {}), h("td", {}), h("td", { class: "num" }, unowned)) : null,
    ),
  );
  return h(
    "div",
    { class: "cluster" },
    h("div", {}, picture),
    h("div", {}, h("p", {}, `Cluster `, h("strong", {}, view.cluster), `: ${view.nodes.length} node${view.nodes.length === 1 ? "" : "s"}, ${view.shardCount} shards.`), legend),
  );
}

function swatch(color: string): SVGSVGElement {
  return svg("svg", { width: 10, height: 10, "aria-hidden": "true" }, svg("rect", { width: 10, height: 10, rx: 2, fill: color }));
}
