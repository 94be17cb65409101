// Locates the Keystate checkout (for the bundled example modules) from this file.
import { dirname } from "node:path";
import { PROTO_DIR } from "../proto/proto-root.js";

export function repoRoot(): string {
  return dirname(PROTO_DIR);
}
