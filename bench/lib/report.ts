// Renders RESULTS.md from every suite's latest result (bench/results/<suite>.json), so
// running one suite refreshes its section and keeps the others; and writes the charts.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Cell, SuiteResult, Table } from "./result.js";
import { renderBarChart } from "./svg-chart.js";

function escapeCell(cell: Cell): string {
  return String(cell).replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/** Figures (numbers, "12.3 ms", "x0.5", "n/a") are right-aligned; text columns are not. */
function isFigure(cell: Cell | undefined): boolean {
  return cell === undefined || typeof cell === "number" || cell === "" || /^([\d.,x(]|n\/a)/.test(cell);
}

function renderTable(table: Table): string {
  const lines = [
    `#### ${table.title}`,
    "",
    `| ${table.columns.map(escapeCell).join(" | ")} |`,
    `|${table.columns.map((_, i) => (i > 0 && table.rows.every((row) => isFigure(row[i])) ? "---:" : "---")).join("|")}|`,
    ...table.rows.map((row) => `| ${row.map(escapeCell).join(" | ")} |`),
  ];
  for (const note of table.notes ?? []) lines.push("", `_${note}_`);
  return lines.join("\n");
}

function renderSuite(result: SuiteResult): string {
  const m = result.machine;
  const parts = [
    `## ${result.title}`,
    "",
    `Command: \`${result.command}\` — ${result.startedAt}, ${result.seconds.toFixed(0)} s${result.quick ? " (quick mode: short budgets, noisy figures)" : ""}.`,
    `Machine: ${m.nproc} cores (\`nproc\`), ${m.cpu}, ${m.memoryGiB} GiB RAM, ${m.os}; Node ${m.node}; redis-server ${m.redis}; ${m.h2load}; commit ${m.commit}; load average ${m.loadAverage ?? "?"} when the suite ended${(m.loadAverage ?? 0) > m.nproc ? " (the box was busy with other work: expect noise)" : ""}.`,
    "",
  ];
  if (result.goals.length > 0) {
    parts.push(`### Goals (${result.goalsFrom ?? "from issue 6"})`, "", "| goal | measured | status |", "|---|---|---|");
    for (const g of result.goals) parts.push(`| ${escapeCell(g.goal)} | ${escapeCell(g.measured)} | ${g.met === undefined ? "not measured" : g.met ? "met" : "**not met**"} |`);
    parts.push("");
  }
  for (const chart of result.charts) parts.push(`![${chart.title}](${chart.file})`, "");
  for (const table of result.tables) parts.push(renderTable(table), "");
  for (const note of result.notes) parts.push(note, "");
  return parts.join("\n");
}

export interface OutputPaths {
  /** Where suite JSON files live. */
  readonly resultsDir: string;
  /** The markdown file. */
  readonly markdown: string;
  /** Where charts go (RESULTS.md links them relative to its own folder). */
  readonly chartsDir: string;
}

export function saveSuite(paths: OutputPaths, result: SuiteResult): void {
  mkdirSync(paths.resultsDir, { recursive: true });
  mkdirSync(paths.chartsDir, { recursive: true });
  writeFileSync(join(paths.resultsDir, `${result.suite}.json`), JSON.stringify(result, null, 2) + "\n");
  for (const chart of result.charts) writeFileSync(join(paths.chartsDir, chart.file), renderBarChart(chart));
}

const ORDER = ["startup", "throughput", "density", "cluster", "presence", "eventing", "polyglot"];

/** `notes`: hand-written analysis (profiles) appended after the generated sections. */
export function writeMarkdown(paths: OutputPaths, preamble: string, notes: string): void {
  const results = existsSync(paths.resultsDir)
    ? readdirSync(paths.resultsDir)
        .filter((f) => f.endsWith(".json"))
        .map((f) => JSON.parse(readFileSync(join(paths.resultsDir, f), "utf8")) as SuiteResult)
        .sort((a, b) => ORDER.indexOf(a.suite) - ORDER.indexOf(b.suite))
    : [];
  mkdirSync(dirname(paths.markdown), { recursive: true });
  writeFileSync(paths.markdown, [preamble, ...results.map(renderSuite), notes].join("\n"));
}
