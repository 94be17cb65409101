// Command-line options of `npm run bench [-- suite... --quick --json]`.
export const SUITES = ["startup", "throughput", "density", "cluster", "presence", "eventing", "polyglot"] as const;
export type SuiteName = (typeof SUITES)[number];

export interface BenchArgs {
  readonly suites: SuiteName[];
  /** Short budgets (whole run < 1 minute); results go to RESULTS.quick.md, not RESULTS.md. */
  readonly quick: boolean;
  /** Print the results as JSON on stdout (progress still goes to stderr). */
  readonly json: boolean;
  /** Skip Restate even when it could be installed (no network, no 226 MB download). */
  readonly noRestate: boolean;
  /** Run nothing: rebuild RESULTS.md from the stored suite results (after editing the notes). */
  readonly renderOnly: boolean;
  /** The command line as a user would type it, for RESULTS.md. */
  readonly command: string;
}

export function parseBenchArgs(argv: string[]): BenchArgs {
  const suites: SuiteName[] = [];
  let quick = false;
  let json = false;
  let noRestate = false;
  let renderOnly = false;
  for (const arg of argv) {
    if (arg === "--quick") quick = true;
    else if (arg === "--json") json = true;
    else if (arg === "--no-restate") noRestate = true;
    else if (arg === "--render") renderOnly = true;
    else if ((SUITES as readonly string[]).includes(arg)) suites.push(arg as SuiteName);
    else throw new Error(`unknown argument ${arg}; usage: bench [startup|throughput|density|cluster|presence|eventing|polyglot]... [--quick] [--json] [--no-restate] [--render]`);
  }
  const chosen = suites.length > 0 ? suites : [...SUITES];
  const script = suites.length === 1 ? `bench:${suites[0]}` : "bench";
  const flags = [quick ? "--quick" : "", json ? "--json" : "", noRestate ? "--no-restate" : ""].filter(Boolean);
  const extra = suites.length > 1 ? suites : [];
  const rest = [...extra, ...flags];
  return { suites: chosen, quick, json, noRestate, renderOnly, command: `npm run ${script}${rest.length ? " -- " + rest.join(" ") : ""}` };
}
