// Runs `keystate serve` (bin/keystate.js, i.e. dist/) as a child process and reads its
// ports from the "node started" log line on stdout.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { KEYSTATE_BIN, REPO_ROOT } from "./paths.js";

export interface ServeProcess {
  readonly child: ChildProcess;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** Milliseconds from spawn to the "node started" line. */
  readonly startedMs: number;
  /** Where the node says its start went (the line's startMs: process, store, modules, total), in ms. */
  readonly startPhases: StartPhases | undefined;
  /** SIGKILL: no hand-off, nothing flushed. */
  stop(): Promise<void>;
  /** SIGTERM (a cluster node hands its shards off first), SIGKILL after `timeoutMs`; resolves once it has exited. */
  terminate(timeoutMs?: number): Promise<void>;
}

export interface StartPhases {
  readonly process: number;
  readonly store: number;
  readonly modules: number;
  readonly total: number;
}

export interface ServeOptions {
  readonly dataDir: string;
  readonly redisUrl?: string;
  readonly deploy?: readonly string[];
  /** e.g. ["taskset", "-c", "0"] to pin the server to one core. */
  readonly prefix?: readonly string[];
  readonly extraNodeArgs?: readonly string[];
  /** `--lazy-modules`: stored modules' services are registered at start-up, each module is compiled on its first call. */
  readonly lazyModules?: boolean;
  /** Resolve on the first log line whose msg starts with this (default "node started"; `--deploy` logs "deployed <file>" after it). */
  readonly readyMessage?: string;
  /** `--admin-token T` instead of `--insecure-admin`. */
  readonly adminToken?: string;
  /** More `keystate serve` flags, e.g. ["--cluster", "bench", "--node-id", "n1"]. */
  readonly serveArgs?: readonly string[];
  /** Called with every stdout line (pino JSON) for the life of the process. */
  readonly onLine?: (line: string) => void;
}

export function startServe(options: ServeOptions): Promise<ServeProcess> {
  const args = [...(options.extraNodeArgs ?? []), KEYSTATE_BIN, "serve", "--data", options.dataDir, "--grpc-port", "0", "--http-port", "0", "--log-level", "info"];
  args.push(...(options.adminToken === undefined ? ["--insecure-admin"] : ["--admin-token", options.adminToken]), ...(options.serveArgs ?? []));
  if (options.redisUrl) args.push("--redis", options.redisUrl);
  if (options.lazyModules) args.push("--lazy-modules");
  for (const file of options.deploy ?? []) args.push("--deploy", file);
  const prefix = options.prefix ?? [];
  const command = prefix.length > 0 ? prefix[0]! : process.execPath;
  const argv = prefix.length > 0 ? [...prefix.slice(1), process.execPath, ...args] : args;
  const started = performance.now();
  const child = spawn(command, argv, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const output: string[] = [];
  child.stderr!.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let ports: { grpcPort: number; httpPort: number } | undefined;
  let startPhases: StartPhases | undefined;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`keystate serve did not start within 30 s:\n${output.join("").slice(-2000)}`));
    }, 30_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`keystate serve exited (${code}) before starting:\n${output.join("").slice(-2000)}`));
    });
    createInterface({ input: child.stdout! }).on("line", (line) => {
      options.onLine?.(line);
      output.push(line + "\n");
      if (!line.startsWith("{")) return;
      const entry = JSON.parse(line) as { msg?: string; grpcPort?: number; httpPort?: number; startMs?: StartPhases };
      if (entry.msg === "node started") {
        ports = { grpcPort: entry.grpcPort!, httpPort: entry.httpPort! };
        startPhases = entry.startMs;
      }
      if (!entry.msg?.startsWith(options.readyMessage ?? "node started") || !ports) return;
      clearTimeout(timer);
      resolve({
        child,
        ...ports,
        startedMs: performance.now() - started,
        startPhases,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
          await exited;
        },
        async terminate(timeoutMs = 15_000) {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
          const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
          await exited;
          clearTimeout(timer);
        },
      });
    });
  });
}
