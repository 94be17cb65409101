// Baseline (a): a bare grpc-js server that answers every call with a fixed reply, no
// state and no storage: the ceiling of the transport Keystate's ingress is built on.
// Usage: grpc-passthrough.ts <counter|shopping-cart>
import { serveWorkload, workloadFromArgs } from "./grpc-server-base.js";

const workload = workloadFromArgs(process.argv[2]);
// CurrentValue{value: 1} for the counter; Empty for AddItem. A reply of the same size as Keystate's.
const reply = workload.module === "counter" ? Uint8Array.from([0x08, 0x01]) : new Uint8Array(0);
await serveWorkload(workload, { [workload.writeMethod]: () => reply, [workload.readMethod]: () => reply });
