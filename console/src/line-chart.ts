// A small live line chart on a canvas: one line per series over the last WINDOW points, a
// gap where a series had no value (no calls, so no p99), the y axis scaled to what is shown.
import { ColorMap, shortName } from "./colors.js";
import { h, replace, svg } from "./dom.js";

const WINDOW = 60;
const HEIGHT = 150;

export class LineChart {
  readonly element: HTMLElement;
  readonly #canvas: HTMLCanvasElement;
  readonly #legend: HTMLElement;
  readonly #series = new Map<string, (number | undefined)[]>();
  readonly #colors: ColorMap;
  readonly #format: (value: number) => string;

  constructor(title: string, colors: ColorMap, format: (value: number) => string) {
    this.#colors = colors;
    this.#format = format;
    this.#canvas = h("canvas", { class: "chart-canvas", height: HEIGHT, "aria-label": title, role: "img" });
    this.#legend = h("ul", { class: "legend" });
    this.element = h("figure", { class: "chart" }, h("figcaption", {}, title), this.#canvas, this.#legend);
  }

  /** Adds one point to every series (a series missing from `values` gets a gap), then redraws. */
  push(values: ReadonlyMap<string, number | undefined>): void {
    for (const name of values.keys()) {
      if (!this.#series.has(name)) this.#series.set(name, new Array<number | undefined>(this.#length()).fill(undefined));
    }
    for (const [name, points] of this.#series) {
      points.push(values.get(name));
      if (points.length > WINDOW) points.shift();
    }
    this.draw();
  }

  #length(): number {
    const first = this.#series.values().next();
    return first.done ? 0 : first.value.length;
  }

  draw(): void {
    const canvas = this.#canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(canvas.clientWidth, 200);
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(HEIGHT * ratio);
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    ctx.scale(ratio, ratio);
    const values = [...this.#series.values()].flat().filter((v): v is number => v !== undefined);
    const max = niceCeiling(Math.max(...values, 0));
    const left = 44;
    const top = 8;
    const plotWidth = width - left - 8;
    const plotHeight = HEIGHT - top - 20;
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#6b7280";
    ctx.strokeStyle = "#e5e7eb";
    ctx.lineWidth = 1;
    for (const fraction of [0, 0.5, 1]) {
      const y = top + plotHeight * (1 - fraction);
      ctx.beginPath();
      ctx.moveTo(left, y + 0.5);
      ctx.lineTo(left + plotWidth, y + 0.5);
      ctx.stroke();
      ctx.fillText(this.#format(max * fraction), 2, y + 4);
    }
    ctx.fillText(`last ${(WINDOW * 2) / 60} min`, left, HEIGHT - 4);
    const x = (i: number) => left + (plotWidth * i) / (WINDOW - 1);
    const y = (v: number) => top + plotHeight * (1 - (max === 0 ? 0 : v / max));
    const offset = WINDOW - this.#length();
    ctx.lineWidth = 2;
    for (const [name, points] of this.#series) {
      ctx.strokeStyle = this.#colors.colorOf(name);
      ctx.beginPath();
      let drawing = false;
      points.forEach((value, i) => {
        if (value === undefined) {
          drawing = false;
          return;
        }
        if (drawing) ctx.lineTo(x(offset + i), y(value));
        else ctx.moveTo(x(offset + i), y(value));
        drawing = true;
      });
      ctx.stroke();
    }
    this.#drawLegend();
  }

  #drawLegend(): void {
    const items = [...this.#series].map(([name, points]) => {
      const latest = points[points.length - 1];
      return h(
        "li",
        { title: name },
        svg("svg", { width: 10, height: 10, "aria-hidden": "true" }, svg("rect", { width: 10, height: 10, rx: 2, fill: this.#colors.colorOf(name) })),
        ` ${shortName(name)} `,
        h("span", { class: "legend-value" }, latest === undefined ? "–" : this.#format(latest)),
      );
    });
    replace(this.#legend, ...(items.length ? items : [h("li", { class: "muted" }, "no calls yet")]));
  }
}

/** 1, 2 or 5 times a power of ten, at least `value` (so the axis reads well). */
function niceCeiling(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}
