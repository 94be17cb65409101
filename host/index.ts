// The embedding API: start a node, deploy a module, typed errors. Everything else in
// host/ is internal.
import type * as Build from "./build/build-module.js";

export { startNode, type ClusterOptions, type KeystateNode, type NodeConfig } from "./node.js";
export type { ClusterView } from "./cluster/cluster-node.js";
export { KeystateError, isKeystateError, toStatus, type ErrorCode } from "./errors.js";
export type { BuildResult } from "./build/build-module.js";

/**
 * Builds an entity module (codegen, asc, embedded descriptor and manifest) into one .wasm.
 * The build tool is imported on first use: the AssemblyScript compiler takes ~0.7 s to
 * load, which an application that only embeds a node should never pay at start-up.
 */
export async function buildModule(...args: Parameters<typeof Build.buildModule>): ReturnType<typeof Build.buildModule> {
  const build = await import("./build/build-module.js");
  return build.buildModule(...args);
}
