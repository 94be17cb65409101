// The embedding API: start a node, deploy a module, typed errors. Everything else in
// host/ is internal.
export { startNode, type KeystateNode, type NodeConfig } from "./node.js";
export { KeystateError, isKeystateError, toStatus, type ErrorCode } from "./errors.js";
export { buildModule, type BuildResult } from "./build/build-module.js";
