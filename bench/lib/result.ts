// What a suite produces: tables for RESULTS.md, goals with their measured figure, charts,
// and the raw figures (for --json). Cells are pre-formatted text; `figures` keeps numbers.
import type { MachineInfo } from "./machine.js";

export type Cell = string | number;

export interface Table {
  readonly title: string;
  readonly columns: string[];
  readonly rows: Cell[][];
  readonly notes?: string[];
}

export interface Goal {
  readonly goal: string;
  readonly measured: string;
  /** undefined: the figure could not be measured in this run (the reason is in `measured`). */
  readonly met: boolean | undefined;
}

export interface Bar {
  readonly label: string;
  readonly value: number;
  /** Baselines are drawn in another colour. */
  readonly baseline?: boolean;
}

export interface Chart {
  /** File name under bench/, e.g. startup.svg. */
  readonly file: string;
  readonly title: string;
  readonly unit: string;
  readonly bars: Bar[];
  readonly logScale?: boolean;
}

export interface SuiteResult {
  readonly suite: string;
  readonly title: string;
  readonly command: string;
  readonly quick: boolean;
  readonly startedAt: string;
  readonly seconds: number;
  readonly machine: MachineInfo;
  readonly tables: Table[];
  readonly goals: Goal[];
  readonly notes: string[];
  readonly charts: Chart[];
  readonly figures: Record<string, number | undefined>;
  /** Where the goals come from, for their heading in RESULTS.md (default "from issue 6"). */
  readonly goalsFrom?: string;
}

/** What each suite module exports. */
export interface SuiteContext {
  readonly quick: boolean;
  readonly noRestate: boolean;
  /** Scales a time budget: full runs use `full`, quick runs `quick`. */
  budget(fullMs: number, quickMs: number): number;
}

export type SuiteBody = Pick<SuiteResult, "title" | "tables" | "goals" | "notes" | "charts" | "figures" | "goalsFrom">;

export function goal(text: string, measured: string, met: boolean | undefined): Goal {
  return { goal: text, measured, met };
}
