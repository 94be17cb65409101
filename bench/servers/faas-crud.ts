// Baseline (b), "FaaS + CRUD": a stateless grpc-js function with the same logic as the
// Keystate module, keeping its state in Redis: read the state, apply the command, write
// the new state only if nobody else wrote it meanwhile (a compare-and-set Lua script),
// retrying on conflict. Correct under concurrency, and the pattern the Cloudstate talks
// argue against: two Redis round trips per command, more under contention.
// Usage: faas-crud.ts <counter|shopping-cart> <redis-url>
import * as grpc from "@grpc/grpc-js";
import { Redis } from "ioredis";
import { messageTypes } from "../lib/workloads.js";
import { serveWorkload, workloadFromArgs } from "./grpc-server-base.js";

const workload = workloadFromArgs(process.argv[2]);
const redis = new Redis(process.argv[3]!, { maxRetriesPerRequest: 1 });
const MAX_ATTEMPTS = 1000;

// KEYS: state key. ARGV: expected state, "1" if a state was expected else "0", new state.
const CAS = `local cur = redis.call('GET', KEYS[1])
if ARGV[2] == '0' then
  if cur then return 0 end
elseif cur ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
return 1`;
redis.defineCommand("casSet", { numberOfKeys: 1, lua: CAS });
const cas = (redis as unknown as { casSet(key: string, expected: Buffer, had: string, next: Uint8Array): Promise<number> }).casSet.bind(redis);

class Refusal extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/** The command's logic: (state bytes or null, request) → new state and reply, as the guest does it. */
type Apply = (state: Buffer | null, request: Buffer) => { next: Uint8Array; reply: Uint8Array };

const logic: { key(request: Buffer): string; apply: Apply; read(state: Buffer | null): Uint8Array } =
  workload.module === "counter"
    ? {
        key: (request) => (messageTypes.changeValue.decode(request) as unknown as { counterId: string }).counterId,
        apply(state, request) {
          const cmd = messageTypes.changeValue.toObject(messageTypes.changeValue.decode(request), { longs: Number }) as { value?: number };
          if ((cmd.value ?? 0) < 0) throw new Refusal(grpc.status.INVALID_ARGUMENT, "value must not be negative");
          const current = state ? (messageTypes.currentValue.toObject(messageTypes.currentValue.decode(state), { longs: Number }) as { value?: number }).value ?? 0 : 0;
          const next = messageTypes.currentValue.encode({ value: current + (cmd.value ?? 0) }).finish();
          return { next, reply: next }; // CounterState and CurrentValue share one encoding
        },
        read: (state) => state ?? new Uint8Array(0),
      }
    : {
        key: (request) => (messageTypes.addLineItem.decode(request) as unknown as { userId: string }).userId,
        apply(state, request) {
          const cmd = messageTypes.addLineItem.toObject(messageTypes.addLineItem.decode(request)) as { productId?: string; name?: string; quantity?: number };
          if ((cmd.quantity ?? 0) < 1) throw new Refusal(grpc.status.INVALID_ARGUMENT, "quantity must be at least 1");
          const cart = (state ? messageTypes.cart.toObject(messageTypes.cart.decode(state)) : {}) as { items?: { productId?: string; name?: string; quantity?: number }[] };
          const items = cart.items ?? [];
          const line = items.find((item) => item.productId === cmd.productId);
          if (line) line.quantity = (line.quantity ?? 0) + cmd.quantity!;
          else items.push({ productId: cmd.productId, name: cmd.name, quantity: cmd.quantity });
          return { next: messageTypes.cart.encode(messageTypes.cart.fromObject({ items })).finish(), reply: new Uint8Array(0) };
        },
        read: (state) => state ?? new Uint8Array(0),
      };

const stateKey = (key: string) => `faas:${workload.module}:${key}`;

await serveWorkload(workload, {
  async [workload.writeMethod](request) {
    const key = stateKey(logic.key(request));
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const state = await redis.getBuffer(key);
      const { next, reply } = logic.apply(state, request);
      if ((await cas(key, state ?? Buffer.alloc(0), state ? "1" : "0", next)) === 1) return reply;
    }
    throw new Refusal(grpc.status.ABORTED, `gave up after ${MAX_ATTEMPTS} conflicting writes`);
  },
  async [workload.readMethod](request) {
    const key = workload.module === "counter"
      ? (messageTypes.counterId.decode(request) as unknown as { counterId: string }).counterId
      : (messageTypes.getShoppingCart.decode(request) as unknown as { userId: string }).userId;
    return logic.read(await redis.getBuffer(stateKey(key)));
  },
});
