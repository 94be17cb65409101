// Module loader hooks for the tests, run before tsx's (hooks registered later run first).
//
// tsx passes every ES module through its own load hook, which rewrites plain JavaScript too
// and attaches an inline source map. binaryen's index.js is 14.8 MB of ES module: through tsx
// it took 18.4 s to import on the test box, as is 0.98 s, and each test file that builds or
// pre-initialises a module in its own process paid that. Those files are loaded here as they
// are; there is nothing in them for tsx to compile.
import { readFile } from "node:fs/promises";

/** Large ES modules of installed packages that need no transform. */
const AS_IS = ["/node_modules/binaryen/index.js"];

export async function load(url, context, nextLoad) {
  if (url.startsWith("file:") && AS_IS.some((suffix) => url.endsWith(suffix))) {
    return { format: "module", source: await readFile(new URL(url)), shortCircuit: true };
  }
  return nextLoad(url, context);
}
