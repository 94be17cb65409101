// The machine and software a run happened on, for RESULTS.md.
import { execFileSync } from "node:child_process";
import os from "node:os";

export interface MachineInfo {
  readonly nproc: number;
  readonly cpu: string;
  readonly memoryGiB: number;
  readonly node: string;
  readonly os: string;
  readonly redis: string;
  readonly h2load: string;
  readonly commit: string;
  /** 1-minute load average when the suite finished: other work on the box skews figures. */
  readonly loadAverage: number;
}

function tryRun(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return "not found";
  }
}

export function machineInfo(): MachineInfo {
  const dirty = tryRun("git", ["status", "--porcelain", "--untracked-files=no"]) !== "";
  return {
    nproc: Number(tryRun("nproc", [])) || os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    redis: tryRun("redis-server", ["--version"]).split(" ").find((p) => p.startsWith("v="))?.slice(2) ?? "not found",
    h2load: tryRun("h2load", ["--version"]).split("\n")[0] ?? "not found",
    loadAverage: Math.round(os.loadavg()[0]! * 100) / 100,
    // A run in a clean export (git archive, no .git) names its commit through the environment.
    commit: process.env.KEYSTATE_BENCH_COMMIT ?? tryRun("git", ["rev-parse", "--short", "HEAD"]) + (dirty ? " (+ uncommitted changes)" : ""),
  };
}
