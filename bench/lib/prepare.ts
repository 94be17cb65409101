// Before measuring: dist/ must match host/ (the end-to-end suites run the real CLI,
// bin/keystate.js, which runs the bundle in dist/bundle/ made from dist/host/), and each
// example module's .wasm must be newer than its sources. Rebuilds only what is stale, so a
// second run starts at once.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { progress } from "./progress.js";
import { KEYSTATE_BIN, REPO_ROOT } from "./paths.js";

function newestMtime(path: string, filter: (file: string) => boolean): number {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return filter(path) ? stat.mtimeMs : 0;
  let newest = 0;
  for (const entry of readdirSync(path)) {
    if (entry === "node_modules" || entry === "build" || entry === "generated") continue;
    newest = Math.max(newest, newestMtime(join(path, entry), filter));
  }
  return newest;
}

function distIsStale(): boolean {
  const hostDir = join(REPO_ROOT, "host");
  const bundle = join(REPO_ROOT, "dist", "bundle", "keystate.js");
  const bundledAt = existsSync(bundle) ? statSync(bundle).mtimeMs : 0;
  const stale = (dir: string): boolean =>
    readdirSync(dir, { withFileTypes: true }).some((entry) => {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) return stale(full);
      if (!entry.name.endsWith(".ts")) return false;
      const out = join(REPO_ROOT, "dist", relative(REPO_ROOT, full)).replace(/\.ts$/, ".js");
      return !existsSync(out) || statSync(out).mtimeMs < statSync(full).mtimeMs || bundledAt < statSync(full).mtimeMs;
    });
  return stale(hostDir);
}

export function ensureDist(suite: string): void {
  if (!distIsStale()) return;
  progress(suite, "dist/ is older than host/: running `npm run build` (tsc, then the bundle bin/keystate.js runs)");
  try {
    execFileSync("npm", ["run", "build"], { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "inherit"] });
  } catch {
    // A half-edited host/ must not stop the benchmarks; what they measure is then said here.
    progress(suite, "warning: `npm run build` failed (its errors are above): measuring what dist/ holds, which may be stale");
  }
}

/** The module's .wasm, built with `keystate build` when missing or older than its sources. */
export function ensureModuleBuilt(suite: string, name: string): string | undefined {
  const dir = join(REPO_ROOT, "modules", name);
  if (!existsSync(join(dir, "module.json"))) return undefined;
  const wasm = join(dir, "build", `${name}.wasm`);
  const sources = Math.max(
    newestMtime(dir, (f) => /\.(ts|proto|json)$/.test(f)),
    newestMtime(join(REPO_ROOT, "guest-sdk", "assembly"), (f) => f.endsWith(".ts")),
  );
  if (existsSync(wasm) && statSync(wasm).mtimeMs >= sources) return wasm;
  ensureDist(suite);
  progress(suite, `building modules/${name} (its .wasm is missing or older than its sources)`);
  try {
    execFileSync(process.execPath, [KEYSTATE_BIN, "build", dir], { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "inherit"] });
  } catch (err) {
    progress(suite, `warning: building modules/${name} failed: ${(err as Error).message.split("\n")[0]}`);
  }
  return existsSync(wasm) ? wasm : undefined;
}

/** ensureModuleBuilt for a script that cannot go on without the module: its .wasm, or an error naming it. */
export function requireModuleBuilt(suite: string, name: string): string {
  const wasm = ensureModuleBuilt(suite, name);
  if (!wasm) throw new Error(`modules/${name} does not build`);
  return wasm;
}
