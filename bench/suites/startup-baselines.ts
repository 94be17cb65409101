// The baselines the startup figures are compared with, measured in the same run:
// a Node worker thread to its first message, and a whole `node -e 0` process.
import { spawn } from "node:child_process";
import { Worker } from "node:worker_threads";
import { sample, type Latency } from "../lib/histogram.js";
import { fmtUs, progress } from "../lib/progress.js";
import type { SuiteContext } from "../lib/result.js";

export interface StartupBaselines {
  readonly worker: Latency;
  readonly spawnNode: Latency;
}

function workerFirstMessage(): Promise<void> {
  return new Promise((resolve, reject) => {
    const worker = new Worker("require('node:worker_threads').parentPort.postMessage(1)", { eval: true });
    worker.once("message", () => {
      resolve();
      void worker.terminate();
    });
    worker.once("error", reject);
  });
}

function spawnNodeToExit(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", "0"], { stdio: "ignore" });
    child.once("error", reject);
    child.once("exit", () => resolve());
  });
}

export async function measureStartupBaselines(ctx: SuiteContext): Promise<StartupBaselines> {
  progress("startup", "baseline: new Worker() -> first message");
  const worker = await sample({ budgetMs: ctx.budget(5000, 1000), maxIterations: ctx.quick ? 20 : 150, warmup: 2 }, () => undefined, workerFirstMessage);
  progress("startup", `  new Worker() p50 ${fmtUs(worker.p50)}`);
  progress("startup", "baseline: spawn `node -e 0` -> exit");
  const spawnNode = await sample({ budgetMs: ctx.budget(5000, 1000), maxIterations: ctx.quick ? 10 : 60, warmup: 1 }, () => undefined, spawnNodeToExit);
  progress("startup", `  node -e 0 p50 ${fmtUs(spawnNode.p50)}`);
  return { worker, spawnNode };
}
