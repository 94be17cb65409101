// Plumbing for helpers that start local server processes: find a binary, pick a free
// loopback port, probe with PING, wait for exit, and never leave a child behind.
// The probes are the CLI's own (host/cli/redis-launcher.ts, used by `keystate dev-cluster`).
import type { ChildProcess } from "node:child_process";
import { answersPing, exited, findOnPath, freeLoopbackPort, untilAnswersPing } from "../../host/cli/redis-launcher.js";

export { answersPing, exited, findOnPath, freeLoopbackPort, untilAnswersPing };

const running = new Set<ChildProcess>();

// A test process that dies must not leave servers behind.
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** SIGKILLs `child` if the test process exits while it still runs. */
export function killOnExit(child: ChildProcess): void {
  running.add(child);
  child.once("exit", () => running.delete(child));
}

/** The path of `binary`, or an error that says which package provides it. */
export function requireBinary(binary: string, installHint: string): string {
  const found = findOnPath(binary);
  if (found === undefined) throw new Error(`${binary} is not installed (not found on PATH). ${installHint}`);
  return found;
}

/** SIGTERM, then SIGKILL if the process is still there after `graceMs`. */
export async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  child.kill("SIGTERM");
  child.kill("SIGCONT"); // a stopped process must wake up to handle the SIGTERM
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited(child);
  clearTimeout(timer);
}
