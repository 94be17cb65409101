// The example modules' messages from their own contracts (modules/<name>/proto/*.proto), for
// tests that encode requests and decode replies and states by hand: field names and numbers
// come from the files clients depend on, not from a copy in each test.
import protobuf from "protobufjs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { PROTO_DIR } from "../../host/proto/proto-root.js";
import { REPO_ROOT } from "./node-process.js";

const PROTOBUFJS_DIR = dirname(createRequire(import.meta.url).resolve("protobufjs/package.json"));

const CONTRACTS = {
  counter: ["counter.proto", "counter_domain.proto"],
  "shopping-cart": ["shoppingcart.proto", "shoppingcart_domain.proto"],
} as const;

let root: protobuf.Root | undefined;

function examplesRoot(): protobuf.Root {
  if (root) return root;
  const created = new protobuf.Root();
  created.resolvePath = (origin, target) => {
    if (target.startsWith("/")) return target;
    // As the host resolves them (host/proto/proto-root.ts): well-known types from protobufjs, ours from proto/.
    if (target.startsWith("google/protobuf/")) return join(PROTOBUFJS_DIR, target);
    if (target.startsWith("google/") || target.startsWith("keystate/")) return join(PROTO_DIR, target);
    // A module's own imports are beside the file that imports them.
    return origin ? join(dirname(origin), target) : target;
  };
  created.loadSync(Object.entries(CONTRACTS).flatMap(([module, files]) => files.map((file) => join(REPO_ROOT, "modules", module, "proto", file))));
  created.resolveAll();
  root = created;
  return created;
}

/** A message of an example's contract by its full name ("keystate.examples.counter.ChangeValue"). */
export function exampleMessage(fullName: string): protobuf.Type {
  return examplesRoot().lookupType(fullName);
}
