// One `keystate serve` child of `keystate dev-cluster`: relays its output with a prefix,
// learns its real ports from its own log, keeps its last lines for when it dies.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

export interface DevNodePorts {
  readonly grpcPort: number;
  readonly httpPort: number;
}

export interface DevNode {
  readonly id: string;
  readonly child: ChildProcess;
  /** Resolves on the serve banner (printed last: token file written, examples deployed). */
  readonly ready: Promise<DevNodePorts>;
  /** Resolves when the process has exited, with how. */
  readonly exit: Promise<string>;
  /** The last output lines, relayed or not. */
  readonly tail: string[];
  readonly running: boolean;
}

const TAIL_LINES = 40;
const START_TIMEOUT_MS = 30_000;
const WARN = 40; // pino's numeric level

/** What `exited (…)` says: the signal when there was one, else the exit code. */
export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `signal ${signal}` : `code ${code}`;
}

/**
 * Which lines reach the terminal: with three nodes at info level the useful lines drown,
 * so by default only warn+ JSON lines and anything on stderr (crashes, CLI errors).
 */
export function shouldRelay(line: string, fromStderr: boolean, verbose: boolean): boolean {
  if (verbose || fromStderr) return true;
  if (!line.startsWith("{")) return false; // the serve banner: dev-cluster prints its own summary
  try {
    return Number((JSON.parse(line) as { level?: unknown }).level) >= WARN;
  } catch {
    return true;
  }
}

/** Ports from a `node started` JSON line or the `Keystate node ready` banner, else undefined. */
export function portsFromLine(line: string): DevNodePorts | undefined {
  if (line.startsWith("{")) {
    try {
      const entry = JSON.parse(line) as { msg?: string; grpcPort?: number; httpPort?: number };
      if (entry.msg === "node started" && entry.grpcPort && entry.httpPort) return { grpcPort: entry.grpcPort, httpPort: entry.httpPort };
    } catch {
      // not a log line after all
    }
    return undefined;
  }
  const banner = /^Keystate node ready: gRPC on [^ ]+:(\d+), admin HTTP on [^ ]+:(\d+)/.exec(line);
  return banner ? { grpcPort: Number(banner[1]), httpPort: Number(banner[2]) } : undefined;
}

export function spawnDevNode(id: string, command: string, args: readonly string[], cwd: string, verbose: boolean): DevNode {
  // detached: Ctrl-C reaches only dev-cluster, which then stops the nodes in order (SIGTERM, hand-off, Redis last).
  const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const tail: string[] = [];
  const prefix = `[${id}] `;
  let ports: DevNodePorts | undefined;
  let markReady!: (ports: DevNodePorts) => void;
  let failStart!: (err: Error) => void;
  const ready = new Promise<DevNodePorts>((resolve, reject) => {
    markReady = resolve;
    failStart = reject;
  });
  ready.catch(() => {}); // the caller awaits it; a node that dies later must not raise an unhandled rejection
  let started = false;
  const timer = setTimeout(() => failStart(new Error(`${id} did not start within ${START_TIMEOUT_MS / 1000} s:\n${tail.join("\n")}`)), START_TIMEOUT_MS);

  const onLine = (line: string, fromStderr: boolean) => {
    // The rest of the serve banner (token, "Try it") says nothing about why a node died: not kept.
    if (fromStderr || !started || line.startsWith("{")) tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
    if (shouldRelay(line, fromStderr, verbose)) (fromStderr ? process.stderr : process.stdout).write(prefix + line + "\n");
    if (started || fromStderr) return;
    const found = portsFromLine(line);
    if (found && line.startsWith("{")) ports = found;
    else if (found) {
      started = true;
      clearTimeout(timer);
      markReady(ports ?? found);
    }
  };
  createInterface({ input: child.stdout! }).on("line", (line) => onLine(line, false));
  createInterface({ input: child.stderr! }).on("line", (line) => onLine(line, true));

  const exit = new Promise<string>((resolve) => {
    // "close", not "exit": by then the last lines have been read, so the tail is complete.
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      const how = describeExit(code, signal);
      if (!started) failStart(new Error(`${id} exited (${how}) before it was ready:\n${tail.map((l) => prefix + l).join("\n")}`));
      resolve(how);
    });
  });
  child.once("error", (err) => failStart(new Error(`${id} could not be started: ${err.message}`)));

  return {
    id,
    child,
    ready,
    exit,
    tail,
    get running() {
      return child.exitCode === null && child.signalCode === null;
    },
  };
}
