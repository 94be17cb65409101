// A real `keystate serve` process for ingress tests, with example modules built (when their
// .wasm is missing) and deployed through the `keystate deploy` CLI, as an operator would.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { KEYSTATE_BIN, REPO_ROOT, startNodeProcess, type NodeProcess } from "./node-process.js";
import { makeTempDir, removeDir } from "./temp-dir.js";

const run = promisify(execFile);

export function exampleWasm(name: string): string {
  return join(REPO_ROOT, "modules", name, "build", `${name}.wasm`);
}

/** The example's .wasm, built first if it is missing; undefined if the example does not exist or does not build. */
export async function ensureExample(name: string): Promise<string | undefined> {
  const wasm = exampleWasm(name);
  if (existsSync(wasm)) return wasm;
  if (!existsSync(join(REPO_ROOT, "modules", name, "module.json"))) return undefined;
  try {
    await run(process.execPath, [KEYSTATE_BIN, "build", join(REPO_ROOT, "modules", name)], { cwd: REPO_ROOT, timeout: 90_000 });
  } catch {
    return undefined;
  }
  return existsSync(wasm) ? wasm : undefined;
}

export async function deploy(node: NodeProcess, wasm: string): Promise<string> {
  const { stdout } = await run(process.execPath, [KEYSTATE_BIN, "deploy", wasm, "--admin", node.adminUrl, "--token", node.token], { cwd: REPO_ROOT });
  return stdout;
}

export interface DeployedNode {
  readonly node: NodeProcess;
  /** Base URL of the HTTP port (admin routes and HTTP/JSON ingress). */
  readonly http: string;
  stop(): Promise<void>;
}

export async function startDeployedNode(label: string, wasms: readonly string[]): Promise<DeployedNode> {
  const dataDir = await makeTempDir(label);
  const node = await startNodeProcess({ dataDir });
  for (const wasm of wasms) await deploy(node, wasm);
  return {
    node,
    http: node.adminUrl,
    async stop() {
      await node.kill();
      await removeDir(dataDir);
    },
  };
}

/** fetch() that returns status, headers and the parsed JSON body. */
export async function fetchJson(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; body: any }> {
  const response = await fetch(url, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === "" ? undefined : JSON.parse(text) };
}

export function postJson(url: string, body: unknown): Promise<{ status: number; headers: Headers; body: any }> {
  return fetchJson(url, { method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });
}
