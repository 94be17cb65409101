// Plumbing for helpers that start local server processes: find a binary, pick a free
// loopback port, probe with PING, wait for exit, and never leave a child behind.
// (redis-server.ts has private copies of the first three; it can import these instead.)
import type { ChildProcess } from "node:child_process";
import { accessSync, constants as fsConstants } from "node:fs";
import { createConnection, createServer } from "node:net";
import { delimiter, join } from "node:path";

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

export function findOnPath(binary: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const candidate = join(dir, binary);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** The path of `binary`, or an error that says which package provides it. */
export function requireBinary(binary: string, installHint: string): string {
  const found = findOnPath(binary);
  if (found === undefined) throw new Error(`${binary} is not installed (not found on PATH). ${installHint}`);
  return found;
}

/** A port nothing listens on right now; someone else may take it before you bind it. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** True once a Redis server answers PING on a fresh connection. */
export function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")));
  });
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** SIGTERM, then SIGKILL if the process is still there after `graceMs`. */
export async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  child.kill("SIGTERM");
  child.kill("SIGCONT"); // a stopped process must wake up to handle the SIGTERM
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited(child);
  clearTimeout(timer);
}
