// The floor of one loopback HTTP/2 gRPC hop on this box: a plain node:http2 echo server
// (servers/bare-h2-echo.ts) and a plain node:http2 client (servers/bare-h2-client.ts), two
// processes pinned like the Keystate nodes, unary calls one at a time. A forwarded call adds
// such a hop (node A as client, node B as server), so its cost over a local call can be read
// against this figure measured in the same run: the rest is Keystate's own.
import { spawn, type ChildProcess } from "node:child_process";
import { startChildServer, stopChild, type ChildServer } from "./child-server.js";
import { grpcFrame } from "./grpc-client.js";
import { REPO_ROOT, tsNodeArgs } from "./paths.js";
import type { Pinning } from "./pinning.js";

export const BARE_HOP_LABEL = "bare node:http2 hop (two processes, same pinning)";

export interface BareHop {
  /** `calls` sequential calls; each one's time in ns, measured in the client process. */
  time(calls: number): Promise<number[]>;
  stop(): Promise<void>;
}

/**
 * Starts the echo server and the client, both with the nodes' pinning (`pin.server`): the
 * forwarding hop runs between two processes on that core too. `message` is the request
 * (unframed), e.g. the counter's Increase, so the hop carries the forwarded call's bytes.
 */
export async function startBareHop(pin: Pinning, path: string, message: Uint8Array, timeoutMs = 30_000): Promise<BareHop> {
  const server: ChildServer = await startChildServer([...pin.server, process.execPath, ...tsNodeArgs("servers/bare-h2-echo.ts")]);
  let client: Client;
  try {
    client = await startClient(pin, server.port, path, grpcFrame(message).toString("hex"), timeoutMs);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return {
    time: (calls) => timeCalls(client, calls, timeoutMs),
    async stop() {
      await stopChild(client.child);
      await server.stop();
    },
  };
}

interface Client {
  readonly child: ChildProcess;
  /** Its stderr so far, for errors. */
  readonly stderr: () => string;
}

function startClient(pin: Pinning, port: number, path: string, bodyHex: string, timeoutMs: number): Promise<Client> {
  const argv = [process.execPath, ...tsNodeArgs("servers/bare-h2-client.ts", String(port), path, bodyHex)];
  const command = [...pin.server, ...argv];
  // An IPC channel to hand it work and get its timings back; stdout stays unused.
  const child = spawn(command[0]!, command.slice(1), { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "pipe", "ipc"] });
  const stderr: string[] = [];
  child.stderr!.on("data", (chunk: Buffer) => stderr.push(chunk.toString()));
  const client: Client = { child, stderr: () => stderr.join("").slice(-2000) };
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`bare-h2-client ${why}:\n${client.stderr()}`));
    };
    const timer = setTimeout(() => fail(`was not ready within ${timeoutMs} ms`), timeoutMs);
    const onExit = (code: number | null) => fail(`exited (${code}) before it was ready`);
    child.once("exit", onExit);
    child.once("message", () => {
      clearTimeout(timer);
      child.off("exit", onExit);
      resolve(client);
    });
  });
}

function timeCalls({ child, stderr }: Client, calls: number, timeoutMs: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const done = (error: Error | undefined, ns?: number[]) => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
      if (error) reject(error);
      else resolve(ns!);
    };
    const onMessage = (message: { ns?: number[] }) => done(Array.isArray(message.ns) ? undefined : new Error("bare-h2-client answered without timings"), message.ns);
    const onExit = (code: number | null) => done(new Error(`bare-h2-client exited (${code}) while timing calls:\n${stderr()}`));
    const timer = setTimeout(() => done(new Error(`bare-h2-client did not finish ${calls} calls within ${timeoutMs} ms`)), timeoutMs);
    child.on("message", onMessage);
    child.once("exit", onExit);
    child.send({ calls });
  });
}
