// Loads the project's own .proto files (proto/ at the repository root) with protobufjs.
// One Root knows descriptor.proto plus the Keystate and google.api option extensions,
// so a decoded FileDescriptorSet carries `(keystate.entity_key)` and `(google.api.http)`.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";

/** The repository's proto/ folder, found from this file whether it runs from source or dist/. */
export const PROTO_DIR: string = findProtoDir(dirname(fileURLToPath(import.meta.url)));

function findProtoDir(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const candidate = join(dir, "proto");
    if (existsSync(join(candidate, "keystate", "abi.proto"))) return candidate;
    if (dirname(dir) === dir) throw new Error(`cannot find proto/keystate/abi.proto above ${start}`);
  }
}

const require = createRequire(import.meta.url);
const PROTOBUFJS_DIR = dirname(require.resolve("protobufjs/package.json"));

/**
 * The Root below as JSON, written next to the compiled file by `npm run build`
 * (precompile-root.ts): loading it takes ~6 ms where parsing the .proto files takes ~25 ms
 * of a node's start. Running from source (tsx), it is absent and the files are parsed.
 */
export const PRECOMPILED_ROOT_FILE = join(dirname(fileURLToPath(import.meta.url)), "keystate-root.json");

let root: protobuf.Root | undefined;

/** The shared Root with descriptor.proto, options, ABI, manifest and google.api types. */
export function keystateProtoRoot(): protobuf.Root {
  if (root) return root;
  const created = existsSync(PRECOMPILED_ROOT_FILE)
    ? protobuf.Root.fromJSON(JSON.parse(readFileSync(PRECOMPILED_ROOT_FILE, "utf8")) as protobuf.INamespace)
    : parseKeystateProtos();
  created.resolveAll();
  root = created;
  return created;
}

/**
 * Where protobufjs finds an imported .proto: the well-known types ship with protobufjs,
 * Keystate's and google.api's are in our proto/ folder, and any other is a module's own file
 * in `ownDir` (proto/ itself unless given). An absolute path is taken as it is.
 */
export function protoImportPath(target: string, ownDir: string = PROTO_DIR): string {
  if (target.startsWith("/")) return target;
  if (target.startsWith("google/protobuf/")) return join(PROTOBUFJS_DIR, target);
  if (target.startsWith("google/") || target.startsWith("keystate/")) return join(PROTO_DIR, target);
  return join(ownDir, target);
}

/** The Root, parsed from the .proto files (the source of truth). */
export function parseKeystateProtos(): protobuf.Root {
  const created = new protobuf.Root();
  created.resolvePath = (_origin, target) => protoImportPath(target);
  created.loadSync([
    "keystate/options.proto",
    "keystate/abi.proto",
    "keystate/manifest.proto",
    "google/api/annotations.proto",
  ]);
  return created;
}

export function lookupType(fullName: string): protobuf.Type {
  return keystateProtoRoot().lookupType(fullName);
}
