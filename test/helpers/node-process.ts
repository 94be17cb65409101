// Starts `keystate serve` as a real child process (the CLI users run) and reads its
// ports from the "node started" log line. Tests kill it with SIGKILL to prove durability.
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const KEYSTATE_BIN = join(REPO_ROOT, "bin", "keystate.js");

/**
 * Nodes on Redis are clusters (of one, mostly): a node restarted after a kill -9 serves its
 * shards once the killed process's leases lapse. Tests use a 3 s lease (instead of 5 s) so
 * a restart costs less; a --lease-ms flag of a test wins over it.
 */
const TEST_LEASE_MS = "3000";

export interface NodeProcess {
  readonly child: ChildProcess;
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly adminUrl: string;
  readonly token: string;
  /** Everything the process logged so far. */
  readonly output: string[];
  kill(signal?: NodeJS.Signals): Promise<void>;
  /**
   * Resolves with the first output line containing `text` (among those after the first `from`:
   * pass `output.length` to wait for a new one); rejects after `timeoutMs`. Log lines travel on
   * another pipe than replies, so they may arrive after one.
   */
  waitForOutput(text: string, timeoutMs?: number, from?: number): Promise<string>;
}

export interface NodeProcessOptions {
  readonly dataDir: string;
  readonly redisUrl?: string;
  /**
   * With redisUrl: the Keystate cluster to join. Nodes on one Redis with the same name form
   * one cluster, so tests that share a redis-server give each test its own (see clusterNameFor).
   */
  readonly cluster?: string;
  readonly extraArgs?: readonly string[];
  /** Extra environment variables of the process. */
  readonly env?: Readonly<Record<string, string>>;
}

/** A cluster name of a test's own (stable across the restarts within that test). */
export function clusterNameFor(title: string): string {
  return `t-${createHash("sha1").update(title).digest("hex").slice(0, 12)}`;
}

export async function startNodeProcess(options: NodeProcessOptions): Promise<NodeProcess> {
  const args = [KEYSTATE_BIN, "serve", "--grpc-port", "0", "--http-port", "0", "--data", options.dataDir, ...(options.extraArgs ?? [])];
  if (options.redisUrl) args.push("--redis", options.redisUrl);
  if (options.redisUrl && options.cluster) args.push("--cluster", options.cluster);
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"], env: { KEYSTATE_LEASE_MS: TEST_LEASE_MS, ...process.env, KEYSTATE_LOG_LEVEL: "info", ...options.env } });
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.stderr!.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  const started = await new Promise<{ grpcPort: number; httpPort: number }>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Not left running: the caller never gets a handle to stop it.
      child.kill("SIGKILL");
      reject(new Error(`keystate serve did not start within 20 s:\n${output.join("")}`));
    }, 20_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`keystate serve exited with ${code} before starting:\n${output.join("")}`));
    });
    let ports: { grpcPort: number; httpPort: number } | undefined;
    createInterface({ input: child.stdout! }).on("line", (line) => {
      output.push(line + "\n");
      if (line.startsWith("{")) {
        const entry = JSON.parse(line) as { msg?: string; grpcPort?: number; httpPort?: number };
        if (entry.msg === "node started") ports = { grpcPort: entry.grpcPort!, httpPort: entry.httpPort! };
      } else if (line.startsWith("Keystate node ready")) {
        // Below --log-level info there is no "node started" line: the banner has the ports too.
        const banner = /gRPC on [^ ]+:(\d+), admin HTTP on [^ ]+:(\d+)/.exec(line);
        ports ??= banner ? { grpcPort: Number(banner[1]), httpPort: Number(banner[2]) } : undefined;
        if (!ports) return;
        // The banner comes last: the admin token file is written by then.
        clearTimeout(timer);
        resolve(ports);
      }
    });
  });
  const token = (await readFile(join(options.dataDir, "admin-token"), "utf8")).trim();
  return {
    child,
    ...started,
    adminUrl: `http://127.0.0.1:${started.httpPort}`,
    token,
    output,
    async waitForOutput(text: string, timeoutMs = 5_000, from = 0) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const line = output.find((entry, i) => i >= from && entry.includes(text));
        if (line !== undefined) return line;
        if (Date.now() > deadline) throw new Error(`no output line containing "${text}" within ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async kill(signal = "SIGKILL") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
