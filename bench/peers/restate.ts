// Restate as a peer: installed on demand into the git-ignored bench/.peers (its server
// package is ~226 MB, so it stays out of the project's dependencies), started on loopback
// ports of its own with telemetry off, and given the counter service of restate-counter.ts.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { freePort, startChildServer, stopChild, type ChildServer } from "../lib/child-server.js";
import { tempDir } from "../lib/inproc.js";
import { PEERS_DIR, tsNodeArgs } from "../lib/paths.js";
import { progress } from "../lib/progress.js";
import { spawn } from "node:child_process";

export const RESTATE_DURABILITY = "Restate defaults: single node, replicated loglet + RocksDB, WAL fsync on";

export interface RunningRestate {
  readonly ingressPort: number;
  readonly version: string;
  stop(): Promise<void>;
}

const PACKAGES = ["@restatedev/restate-server", "@restatedev/restate-sdk"];

function installed(): string | undefined {
  try {
    const require = createRequire(join(PEERS_DIR, "package.json"));
    require.resolve("@restatedev/restate-sdk");
    const pkg = require.resolve("@restatedev/restate-server/package.json");
    const binary = createRequire(pkg).resolve(`@restatedev/restate-server-${process.platform}-${process.arch}/bin/restate-server`);
    return existsSync(binary) ? binary : undefined;
  } catch {
    return undefined;
  }
}

/** The server binary, installing the peers first when missing. Throws with the reason. */
export function ensureRestate(suite: string): string {
  const found = installed();
  if (found) return found;
  progress(suite, `installing Restate into bench/.peers (npm i --prefix bench/.peers ${PACKAGES.join(" ")}; ~226 MB, once)`);
  execFileSync("npm", ["i", "--prefix", PEERS_DIR, "--no-audit", "--no-fund", ...PACKAGES], { stdio: ["ignore", "ignore", "inherit"], timeout: 300_000 });
  const after = installed();
  if (!after) throw new Error("npm install finished but the restate-server binary for this platform was not found");
  return after;
}

async function waitFor(url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, init);
      if (res.ok) return res;
      last = new Error(`${url} answered ${res.status}: ${await res.text()}`);
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw last instanceof Error ? last : new Error(String(last));
}

/** Starts restate-server and the counter endpoint (both pinned by `pin`, e.g. ["taskset","-c","0"]). */
export async function startRestate(suite: string, pin: string[]): Promise<RunningRestate> {
  const binary = ensureRestate(suite);
  const version = execFileSync(binary, ["--version"], { encoding: "utf8" }).trim();
  const [ingress, admin, fabric, sdkPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const dir = await tempDir("restate");
  const server = spawn(pin[0] ?? binary, [...pin.slice(1), ...(pin.length ? [binary] : []), "--no-logo", "--listen-mode", "tcp", "--bind-ip", "127.0.0.1", "--bind-port", String(fabric), "--base-dir", dir.path], {
    stdio: ["ignore", "ignore", "pipe"],
    env: {
      ...process.env,
      RESTATE_DISABLE_TELEMETRY: "true",
      RESTATE_INGRESS__BIND_ADDRESS: `127.0.0.1:${ingress}`,
      RESTATE_ADMIN__BIND_ADDRESS: `127.0.0.1:${admin}`,
      RESTATE_LOG_FILTER: "warn",
    },
  });
  let endpoint: ChildServer | undefined;
  const stop = async () => {
    if (endpoint) await endpoint.stop();
    await stopChild(server);
    await dir.remove();
  };
  try {
    endpoint = await startChildServer([...pin, process.execPath, ...tsNodeArgs("peers/restate-counter.ts", String(sdkPort))]);
    await waitFor(`http://127.0.0.1:${admin}/health`, {}, 30_000);
    await waitFor(`http://127.0.0.1:${admin}/deployments`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ uri: `http://127.0.0.1:${sdkPort}` }) }, 30_000);
    // The ingress learns about the deployment shortly after registration.
    await waitFor(`http://127.0.0.1:${ingress}/counter/probe/get`, { method: "POST" }, 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { ingressPort: ingress, version, stop };
}
