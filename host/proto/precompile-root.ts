// `npm run build` step: writes the Keystate proto Root as JSON next to the compiled
// proto-root.js (see PRECOMPILED_ROOT_FILE), so a node's start skips parsing .proto text.
import { writeFileSync } from "node:fs";
import { parseKeystateProtos, PRECOMPILED_ROOT_FILE } from "./proto-root.js";

const root = parseKeystateProtos();
root.resolveAll();
writeFileSync(PRECOMPILED_ROOT_FILE, JSON.stringify(root.toJSON()));
