// Entity rehydration from Redis: a snapshot plus k events after it, k = 0, 10, 100, 1000.
// The events are real guest output (AddItem commands run through the module), written
// with the store's own append and snapshot calls. Two figures per k: the recovery the
// entity does on activation (journal read + one replay call over the batch), and the
// first reply through a fresh entity manager (recovery + the command itself).
import { EntityManager } from "../../host/entities/entity-manager.js";
import { Router } from "../../host/entities/router.js";
import type { AbiEvent } from "../../host/abi/abi-codec.js";
import type { EntityId } from "../../host/journal/types.js";
import { sample, type Latency } from "../lib/histogram.js";
import { inProcessNode, NO_SWEEP_MS } from "../lib/inproc.js";
import { fmtUs, progress } from "../lib/progress.js";
import type { SuiteContext } from "../lib/result.js";
import { cartWorkload, messageTypes } from "../lib/workloads.js";

export interface Rehydration {
  readonly k: number;
  readonly recover: Latency;
  readonly firstReply: Latency;
}

const SNAPSHOT_LINES = 10;

export async function measureRehydration(ctx: SuiteContext, redisUrl: string, moduleBytes: Uint8Array, ks: readonly number[]): Promise<Rehydration[]> {
  const suite = "startup";
  const w = cartWorkload;
  const node = await inProcessNode({ redisUrl });
  try {
    await node.registry.deploy(moduleBytes);
    const service = node.registry.service(w.service)!;
    const run = (state: Uint8Array | undefined, productId: string, seq: number) =>
      service.pool.run((guest) =>
        guest.command({
          service: w.service, method: w.writeMethod, entityKey: "seed", sequence: seq, state,
          payload: messageTypes.addLineItem.encode({ userId: "seed", productId, name: `Product ${productId}`, quantity: 1 }).finish(),
        }),
      );
    // The snapshot: a cart of 10 lines, built by 10 real commands.
    let state: Uint8Array | undefined;
    const baseEvents: AbiEvent[] = [];
    for (let i = 0; i < SNAPSHOT_LINES; i++) {
      const result = run(state, `p-${i}`, i);
      state = result.state;
      baseEvents.push(...result.events);
    }
    const increment = run(state, "p-0", SNAPSHOT_LINES).events; // one ItemAdded raising a quantity

    const results: Rehydration[] = [];
    for (const k of ks) {
      const id: EntityId = { persistenceId: service.persistenceId, key: `rehydrate-${k}-${Date.now()}` };
      await node.store.journal.append(id, 0, baseEvents);
      await node.store.journal.saveSnapshot(id, { seq: baseEvents.length, state: state! });
      for (let written = 0; written < k; written += 100) {
        const batch = Array.from({ length: Math.min(100, k - written) }, () => increment[0]!);
        await node.store.journal.append(id, baseEvents.length + written, batch);
      }
      progress(suite, `rehydration from Redis: snapshot (${SNAPSHOT_LINES} lines) + ${k} events`);
      const options = { budgetMs: ctx.budget(k >= 1000 ? 4000 : 2500, 500), maxIterations: ctx.quick ? 100 : 2000, warmup: 5 };
      const recover = await sample(options, () => undefined, async () => {
        const recovered = await node.store.journal.recover(id);
        if (recovered.events.length > 0) {
          service.pool.run((guest) => guest.replay({ service: w.service, state: recovered.snapshot?.state, events: recovered.events }));
        }
      });
      let managers: EntityManager[] = [];
      const firstReply = await sample(
        options,
        () => {
          for (const m of managers) m.close();
          managers = [new EntityManager({ journal: node.store.journal, values: node.store.values }, NO_SWEEP_MS)];
          return new Router(node.registry, managers[0]!);
        },
        (router) => router.call(w.service, w.readMethod, w.readPayload(id.key)),
      );
      for (const m of managers) m.close();
      progress(suite, `  k=${k}: recover + replay p50 ${fmtUs(recover.p50)} p99 ${fmtUs(recover.p99)}; first reply p50 ${fmtUs(firstReply.p50)}`);
      results.push({ k, recover, firstReply });
    }
    return results;
  } finally {
    await node.close();
  }
}
