// The in-process command path, one layer at a time, to see what each adds per command:
//   taskset -c 1 node --import=tsx bench/profile/command-layers.ts [counter|shopping-cart] [seconds per layer] [module.wasm]
// The module is modules/<name>/build unless a .wasm is given: one built with
// `keystate build --names` makes a CPU profile (--cpu-prof, then top.ts) name the guest's functions.
// Storage acknowledges at once. From the inside out:
//   guest, one key        the guest call alone, state threaded on one key (the throughput suite's row)
//   guest, 10,000 keys    the same synchronous guest call over 10,000 keys, each with its own state
//   async floor           the least an asynchronous path can do around that call: key read from
//                         the request, state looked up by key, guest call, state stored, one
//                         awaited storage promise, the reply returned
//   entity manager        entities.command(): record lookup, mailbox, processor, storage promise
//   router                router.call(): the node's whole command path (the throughput suite's row,
//                         without its latency recording)
// The last three are closed loops with 256 callers over 10,000 keys, as in the suite.
import { readFileSync } from "node:fs";
import { keyedCommand } from "../../host/entities/guest-command.js";
import { inProcessNode } from "../lib/inproc.js";
import { requireModuleBuilt } from "../lib/prepare.js";
import { cartWorkload, counterWorkload } from "../lib/workloads.js";
import { guestOnlyRate } from "../suites/throughput-inproc.js";

const [module = "counter", seconds = "3", wasmFile] = process.argv.slice(2);
const w = module === "counter" ? counterWorkload : cartWorkload;
const budgetMs = Number(seconds) * 1000;
const wasm = wasmFile ?? requireModuleBuilt("profile", w.module);
const node = await inProcessNode("discard");
await node.registry.deploy(readFileSync(wasm));
const service = node.registry.service(w.service)!;
const method = service.methods.get(w.writeMethod)!;
const KEYS = 10_000;
const IN_FLIGHT = 256;
const payloads = Array.from({ length: KEYS }, (_, i) => w.writePayload(`key-${i}`));
const keys = payloads.map((payload) => method.key!.read(payload));

function report(layer: string, rate: number): void {
  process.stdout.write(`${layer.padEnd(18)} ${(rate / 1000).toFixed(1).padStart(7)}k/s  ${(1e6 / rate).toFixed(2)} us per command\n`);
}

/** The guest call over every key in turn, each key's state threaded through its own calls. */
function guestOverKeys(): number {
  const states: Array<Uint8Array | undefined> = new Array(KEYS).fill(undefined);
  let done = 0;
  const start = performance.now();
  while (performance.now() - start < budgetMs) {
    for (let j = 0; j < 1000; j++) {
      const i = done++ % KEYS;
      const result = keyedCommand(service, w.writeMethod, keys[i]!, 0, states[i], payloads[i]!);
      if (result.failure) throw new Error(`guest refused the command: ${result.failure.message}`);
      if (result.state.length > 0) states[i] = result.state;
    }
  }
  return done / ((performance.now() - start) / 1000);
}

async function closedLoop(one: (payload: Uint8Array) => Promise<unknown>): Promise<number> {
  // Warm-up: every key activated once, as in the suite.
  for (let i = 0; i < KEYS; i += IN_FLIGHT) await Promise.all(payloads.slice(i, i + IN_FLIGHT).map(one));
  let next = 0;
  let done = 0;
  const deadline = performance.now() + budgetMs;
  const caller = async () => {
    while (performance.now() < deadline) {
      await one(payloads[next++ % KEYS]!);
      done++;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, caller));
  return done / ((performance.now() - start) / 1000);
}

report("guest, one key", await guestOnlyRate(node, w, budgetMs));
report("guest, 10,000 keys", guestOverKeys());
/** The async floor: what any path with a per-key state and an awaited write spends beyond the guest. */
const floorStates = new Map<string, Uint8Array>();
async function floorCommand(payload: Uint8Array): Promise<Uint8Array> {
  const key = method.key!.read(payload);
  const result = keyedCommand(service, w.writeMethod, key, 0, floorStates.get(key), payload);
  if (result.failure) throw new Error(`guest refused the command: ${result.failure.message}`);
  floorStates.set(key, result.state);
  await Promise.resolve(); // storage acknowledging at once
  return result.reply;
}

report("async floor", await closedLoop(floorCommand));
report("entity manager", await closedLoop((payload) => node.entities.command(service, method.key!.read(payload), { method: w.writeMethod, payload })));
report("router", await closedLoop((payload) => node.router.call(w.service, w.writeMethod, payload)));
await node.close();
