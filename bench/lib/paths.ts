// Where things are, relative to the repository root (bench/ sits directly under it).
import { fileURLToPath } from "node:url";
import { join } from "node:path";

export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const BENCH_DIR = join(REPO_ROOT, "bench");
export const KEYSTATE_BIN = join(REPO_ROOT, "bin", "keystate.js");
/** Heavy peers (Restate) are installed here on demand; git-ignored. */
export const PEERS_DIR = join(BENCH_DIR, ".peers");

/** Argument list that runs a TypeScript file of bench/ in a fresh Node process. */
export function tsNodeArgs(file: string, ...args: string[]): string[] {
  return ["--import=tsx", join(BENCH_DIR, file), ...args];
}
