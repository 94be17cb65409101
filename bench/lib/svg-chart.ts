// A horizontal bar chart as a standalone SVG (no dependency: a few rects and labels).
// Log scale for charts whose bars span orders of magnitude (12 us next to 60 ms).
import type { Chart } from "./result.js";

const WIDTH = 760;
const LABEL_WIDTH = 300;
const VALUE_WIDTH = 110;
const BAR_HEIGHT = 22;
const GAP = 8;
const TOP = 44;

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function formatValue(value: number, unit: string): string {
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : value >= 1 ? 2 : 3;
  return `${value.toFixed(digits)} ${unit}`;
}

export function renderBarChart(chart: Chart): string {
  const bars = chart.bars.filter((b) => Number.isFinite(b.value) && b.value > 0);
  const plotWidth = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 20;
  const max = Math.max(...bars.map((b) => b.value), 1e-9);
  const min = Math.min(...bars.map((b) => b.value), max);
  // Log scale: one decade below the smallest bar is the left edge, so every bar is visible.
  const logMin = Math.log10(min) - 1;
  const scale = (v: number) =>
    chart.logScale ? ((Math.log10(v) - logMin) / (Math.log10(max) - logMin || 1)) * plotWidth : (v / max) * plotWidth;
  const height = TOP + bars.length * (BAR_HEIGHT + GAP) + 30;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">${escapeXml(chart.title)}</text>`,
  ];
  bars.forEach((bar, i) => {
    const y = TOP + i * (BAR_HEIGHT + GAP);
    const w = Math.max(2, scale(bar.value));
    const fill = bar.baseline ? "#9e9e9e" : "#1f6feb";
    parts.push(
      `<text x="${LABEL_WIDTH - 8}" y="${y + BAR_HEIGHT * 0.7}" text-anchor="end">${escapeXml(bar.label)}</text>`,
      `<rect x="${LABEL_WIDTH}" y="${y}" width="${w.toFixed(1)}" height="${BAR_HEIGHT}" fill="${fill}"/>`,
      `<text x="${LABEL_WIDTH + w + 6}" y="${y + BAR_HEIGHT * 0.7}">${escapeXml(formatValue(bar.value, chart.unit))}</text>`,
    );
  });
  const legendY = height - 10;
  parts.push(
    `<rect x="10" y="${legendY - 10}" width="12" height="12" fill="#1f6feb"/><text x="28" y="${legendY}">Keystate</text>`,
    `<rect x="100" y="${legendY - 10}" width="12" height="12" fill="#9e9e9e"/><text x="118" y="${legendY}">baseline (same run)</text>`,
    `<text x="${WIDTH - 10}" y="${legendY}" text-anchor="end" fill="#666">${chart.logScale ? "log scale" : "linear scale"}</text>`,
    `</svg>`,
  );
  return parts.join("\n") + "\n";
}
