// Starts a real redis-server for a test: loopback only, a port of its own, a data dir
// of its own. No mocks: if the binary is missing the test fails and says how to get it.
import { spawn, type ChildProcess } from "node:child_process";
import { exited, findOnPath, freeLoopbackPort, untilAnswersPing } from "./server-process.js";
import { makeTempDir, removeDir } from "./temp-dir.js";

export interface RedisServerOptions {
  /** Default: a free loopback port. Pass a stopped server's port to restart it in place. */
  readonly port?: number;
  /** Append-only file with fsync on every write, so data survives a restart or kill -9. */
  readonly appendOnly?: boolean;
  /** Where the AOF lives. Default: a temp dir that stop() removes; pass your own to keep data across restarts. */
  readonly dataDir?: string;
}

export interface RunningRedis {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Graceful shutdown (SIGTERM), waits for the process to exit. */
  stop(): Promise<void>;
  /** kill -9: no goodbye to clients, nothing flushed that was not already. */
  kill(): void;
  /** SIGSTOP / SIGCONT: the server keeps its connections open but answers nothing. */
  pause(): void;
  resume(): void;
}

const START_TIMEOUT_MS = 5000;
const STOP_TIMEOUT_MS = 5000;
const running = new Set<ChildProcess>();

// A test process that dies must not leave servers behind.
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

async function launch(binary: string, port: number, dataDir: string, appendOnly: boolean): Promise<ChildProcess> {
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dataDir, "--save", "", "--daemonize", "no"];
  args.push("--appendonly", appendOnly ? "yes" : "no", "--appendfsync", "always");
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  child.once("exit", () => running.delete(child));
  await untilAnswersPing(child, port, START_TIMEOUT_MS, "redis-server");
  return child;
}

export async function startRedis(options: RedisServerOptions = {}): Promise<RunningRedis> {
  const binary = findOnPath("redis-server");
  if (binary === undefined) {
    throw new Error(
      "redis-server is not installed (not found on PATH); the Redis tests need a real server. " +
        "Install it with `apt-get install redis-server`, or run `bash scripts/ensure-system-deps.sh` as root.",
    );
  }
  const ownsDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await makeTempDir("redis"));
  let child: ChildProcess | undefined;
  let port = options.port ?? 0;
  // An auto-picked port can be taken between probing and binding: try a few.
  for (let attempt = 0; child === undefined; attempt++) {
    if (options.port === undefined) port = await freeLoopbackPort();
    try {
      child = await launch(binary, port, dataDir, options.appendOnly ?? false);
    } catch (err) {
      if (options.port !== undefined || attempt >= 2) {
        if (ownsDir) await removeDir(dataDir);
        throw err;
      }
    }
  }
  const server = child;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: server.pid!,
    async stop() {
      server.kill("SIGTERM");
      server.kill("SIGCONT"); // a paused server must wake up to handle the SIGTERM
      const timer = setTimeout(() => server.kill("SIGKILL"), STOP_TIMEOUT_MS);
      await exited(server);
      clearTimeout(timer);
      if (ownsDir) await removeDir(dataDir);
    },
    kill() {
      server.kill("SIGKILL");
      if (ownsDir) void exited(server).then(() => removeDir(dataDir));
    },
    pause() {
      server.kill("SIGSTOP");
    },
    resume() {
      server.kill("SIGCONT");
    },
  };
}
