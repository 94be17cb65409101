// The example modules' messages from their own contracts (modules/<name>/proto/*.proto), for
// tests that encode requests and decode replies and states by hand: field names and numbers
// come from the files clients depend on, not from a copy in each test.
import protobuf from "protobufjs";
import { dirname, join } from "node:path";
import { protoImportPath } from "../../host/proto/proto-root.js";
import { REPO_ROOT } from "./node-process.js";

const CONTRACTS = {
  counter: ["counter.proto", "counter_domain.proto"],
  "shopping-cart": ["shoppingcart.proto", "shoppingcart_domain.proto"],
} as const;

let root: protobuf.Root | undefined;

function examplesRoot(): protobuf.Root {
  if (root) return root;
  const created = new protobuf.Root();
  // As the host resolves imports; a module's own are beside the file that imports them.
  created.resolvePath = (origin, target) => protoImportPath(target, dirname(origin));
  created.loadSync(Object.entries(CONTRACTS).flatMap(([module, files]) => files.map((file) => join(REPO_ROOT, "modules", module, "proto", file))));
  created.resolveAll();
  root = created;
  return created;
}

/** A message of an example's contract by its full name ("keystate.examples.counter.ChangeValue"). */
export function exampleMessage(fullName: string): protobuf.Type {
  return examplesRoot().lookupType(fullName);
}
