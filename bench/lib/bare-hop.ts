// The floor of one loopback hop on this box: a plain echo server and a plain client, two
// processes pinned like the Keystate nodes, calls one at a time; over node:http2 as a gRPC
// call (servers/bare-h2-*.ts: the hop to a node's gRPC port) or as one length-prefixed frame
// on a TCP connection (servers/bare-tcp-*.ts: the peer link's hop). A forwarded call adds
// such a hop (node A as client, node B as server), so its cost over a local call can be read
// against these figures measured in the same run: the rest is Keystate's own.
import { spawn, type ChildProcess } from "node:child_process";
import { startChildServer, stopChild, type ChildServer } from "./child-server.js";
import { grpcFrame } from "./grpc-client.js";
import { REPO_ROOT, tsNodeArgs } from "./paths.js";
import type { Pinning } from "./pinning.js";

export const BARE_HOP_LABEL = "bare node:http2 hop (two processes, same pinning)";
export const BARE_TCP_HOP_LABEL = "bare TCP hop (node:net, length-prefixed echo; two processes, same pinning)";

/** "h2": a gRPC-shaped HTTP/2 call (the hop to a gRPC port); "tcp": one framed request/reply on a TCP connection (the peer link's hop). */
export type BareHopTransport = "h2" | "tcp";

const SCRIPTS: Record<BareHopTransport, { server: string; client: string }> = {
  h2: { server: "servers/bare-h2-echo.ts", client: "servers/bare-h2-client.ts" },
  tcp: { server: "servers/bare-tcp-echo.ts", client: "servers/bare-tcp-client.ts" },
};

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
export async function startBareHop(pin: Pinning, path: string, message: Uint8Array, transport: BareHopTransport = "h2", timeoutMs = 30_000): Promise<BareHop> {
  const scripts = SCRIPTS[transport];
  const server: ChildServer = await startChildServer([...pin.server, process.execPath, ...tsNodeArgs(scripts.server)]);
  let client: Client;
  try {
    const body = transport === "h2" ? grpcFrame(message) : Buffer.from(message);
    client = await startClient(pin, scripts.client, server.port, path, body.toString("hex"), timeoutMs);
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

function startClient(pin: Pinning, script: string, port: number, path: string, bodyHex: string, timeoutMs: number): Promise<Client> {
  const argv = [process.execPath, ...tsNodeArgs(script, String(port), path, bodyHex)];
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
      reject(new Error(`${script} ${why}:\n${client.stderr()}`));
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
    const onMessage = (message: { ns?: number[] }) => done(Array.isArray(message.ns) ? undefined : new Error("the bare hop client answered without timings"), message.ns);
    const onExit = (code: number | null) => done(new Error(`the bare hop client exited (${code}) while timing calls:\n${stderr()}`));
    const timer = setTimeout(() => done(new Error(`the bare hop client did not finish ${calls} calls within ${timeoutMs} ms`)), timeoutMs);
    child.on("message", onMessage);
    child.once("exit", onExit);
    child.send({ calls });
  });
}
