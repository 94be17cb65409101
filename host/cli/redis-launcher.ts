// Starts a private redis-server for `keystate dev-cluster`: loopback only, a free port,
// append-only file in the caller's directory. (test/helpers/redis-server.ts is the tests'
// own copy; the CLI ships without test/.)
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants as fsConstants } from "node:fs";
import { createConnection, createServer } from "node:net";
import { delimiter, join } from "node:path";

export interface LaunchedRedis {
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** SIGTERM (redis flushes the AOF), SIGKILL after `timeoutMs`; resolves once it has exited. */
  stop(timeoutMs?: number): Promise<void>;
}

const START_TIMEOUT_MS = 5000;

export function findOnPath(binary: string, path = process.env.PATH ?? ""): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, binary), fsConstants.X_OK);
      return join(dir, binary);
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

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

/** True once the server answers PING on a fresh connection. */
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

async function launchOn(binary: string, port: number, dataDir: string): Promise<ChildProcess> {
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dataDir, "--save", "", "--daemonize", "no", "--appendonly", "yes"];
  // detached: a Ctrl-C in the terminal must not stop Redis before the nodes have handed off their shards.
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
  await untilAnswersPing(child, port, START_TIMEOUT_MS, "redis-server");
  return child;
}

/**
 * Resolves once the redis-server `child` answers PING on `port`; rejects with the tail of its
 * output when it exits first or does not answer within `timeoutMs` (then it is SIGKILLed).
 */
export async function untilAnswersPing(child: ChildProcess, port: number, timeoutMs: number, what: string): Promise<void> {
  let output = "";
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000));
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode}:\n${output}`);
    if (await answersPing(port)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill("SIGKILL");
  throw new Error(`${what} did not answer PING on port ${port} within ${timeoutMs} ms:\n${output}`);
}

export async function launchRedis(dataDir: string): Promise<LaunchedRedis> {
  const binary = findOnPath("redis-server");
  if (binary === undefined) {
    throw new Error(
      "redis-server is not installed (not found on PATH); dev-cluster runs its own. " +
        "Install it with `sudo apt-get install redis-server` (or `bash scripts/ensure-system-deps.sh` as root).",
    );
  }
  // A probed port can be taken before redis binds it: try a few.
  for (let attempt = 0; ; attempt++) {
    const port = await freeLoopbackPort();
    let child: ChildProcess;
    try {
      child = await launchOn(binary, port, dataDir);
    } catch (err) {
      if (attempt >= 2) throw err;
      continue;
    }
    return {
      url: `redis://127.0.0.1:${port}`,
      port,
      child,
      async stop(timeoutMs = 5000) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
        await exited(child);
        clearTimeout(timer);
      },
    };
  }
}
