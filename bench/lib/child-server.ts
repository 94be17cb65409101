// Starts a bench server script (TypeScript, via tsx) or any command as a child process and
// waits for its {"ready":true,"port":N} line on stdout.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { REPO_ROOT } from "./paths.js";

export interface ChildServer {
  readonly child: ChildProcess;
  readonly port: number;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

/** `command` is e.g. ["taskset", "-c", "0", process.execPath, "--import=tsx", file, ...]. */
export function startChildServer(command: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000): Promise<ChildServer> {
  const child = spawn(command[0]!, command.slice(1), { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  const output: string[] = [];
  child.stderr!.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${command.join(" ")} was not ready within ${timeoutMs} ms:\n${output.join("").slice(-2000)}`));
    }, timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${command.join(" ")} exited (${code}) before it was ready:\n${output.join("").slice(-2000)}`));
    });
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (!line.startsWith('{"ready"')) return;
      clearTimeout(timer);
      resolve({ child, port: (JSON.parse(line) as { port: number }).port, stop: () => stopChild(child) });
    });
  });
}
