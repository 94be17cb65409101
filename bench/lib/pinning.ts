// On a 2-core box the server and its load generator fight for CPU unless each has a
// core: servers run on core 0, h2load and Redis on core 1 (taskset, util-linux). With
// fewer than 2 cores, or no taskset, nothing is pinned and RESULTS.md says so.
import { execFileSync } from "node:child_process";
import os from "node:os";

export interface Pinning {
  readonly server: string[];
  readonly load: string[];
  readonly describe: string;
  pinPid(pid: number, to: "server" | "load"): void;
  /** Lets `pid` (every thread) run on every core again. */
  unpinPid(pid: number): void;
}

function hasTaskset(): boolean {
  try {
    execFileSync("taskset", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export function choosePinning(): Pinning {
  if (os.availableParallelism() < 2 || !hasTaskset()) {
    return { server: [], load: [], describe: "not pinned (needs 2 cores and taskset)", pinPid: () => undefined, unpinPid: () => undefined };
  }
  return {
    server: ["taskset", "-c", "0"],
    load: ["taskset", "-c", "1"],
    describe: "server process(es) pinned to core 0; h2load and redis-server pinned to core 1 (taskset)",
    pinPid(pid, to) {
      execFileSync("taskset", ["-a", "-p", "-c", to === "server" ? "0" : "1", String(pid)], { stdio: "ignore" });
    },
    unpinPid(pid) {
      execFileSync("taskset", ["-a", "-p", "-c", `0-${os.cpus().length - 1}`, String(pid)], { stdio: "ignore" });
    },
  };
}
