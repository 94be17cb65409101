// How many commands share one value write when the store takes a while to acknowledge, as
// Redis's fsync does: a closed loop of callers over a few counters, in process, through the
// node's command path, on a value store that answers each write after `delay` ms.
//   node --import=tsx bench/profile/write-batching.ts [keys] [callers] [delay ms] [seconds]
// Prints commands, writes and commands per write. With company (more callers than keys) a
// busy entity's commands should share writes; with one caller per key each write is alone.
import { readFileSync } from "node:fs";
import { EntityManager } from "../../host/entities/entity-manager.js";
import { Router } from "../../host/entities/router.js";
import type { ValueStore } from "../../host/journal/types.js";
import { ModuleRegistry } from "../../host/runtime/module-registry.js";
import { discardJournal, discardValues } from "../lib/discard-store.js";
import { NO_SWEEP_MS, openInProcessStore } from "../lib/inproc.js";
import { requireModuleBuilt } from "../lib/prepare.js";
import { counterWorkload as w } from "../lib/workloads.js";

const [keys = 8, callers = 64, delayMs = 1, seconds = 2] = process.argv.slice(2).map(Number);
let writes = 0;
const slowValues: ValueStore = {
  ...discardValues,
  write(id, value, expectedVersion, extras) {
    writes++;
    return new Promise((resolve) => setTimeout(resolve, delayMs)).then(() => discardValues.write(id, value, expectedVersion, extras));
  },
};
const opened = await openInProcessStore("discard");
const registry = new ModuleRegistry(opened.store);
const entities = new EntityManager({ journal: discardJournal, values: slowValues }, NO_SWEEP_MS);
const router = new Router(registry, entities);
await registry.deploy(readFileSync(requireModuleBuilt("profile", w.module)));
const payloads = Array.from({ length: keys }, (_, i) => w.writePayload(`key-${i}`));
let next = 0;
let done = 0;
const deadline = performance.now() + seconds * 1000;
const caller = async () => {
  while (performance.now() < deadline) {
    await router.call(w.service, w.writeMethod, payloads[next++ % keys]!);
    done++;
  }
};
await Promise.all(Array.from({ length: callers }, caller));
process.stdout.write(`${keys} keys, ${callers} callers, ${delayMs} ms writes: ${done} commands, ${writes} writes, ${(done / writes).toFixed(2)} commands per write\n`);
entities.close();
await opened.close();
