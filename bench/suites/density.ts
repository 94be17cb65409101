import type { SuiteBody, SuiteContext } from "../lib/result.js";
export async function runDensity(_ctx: SuiteContext): Promise<SuiteBody> {
  throw new Error("todo");
}
