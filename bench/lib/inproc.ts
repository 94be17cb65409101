// A Keystate node's call path without its network ports: module registry, entity
// manager and router, as host/node.ts wires them, over a chosen storage. The module
// store is always a real store (embedded in a temp dir, or Redis).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EntityManager, type EntityStorage } from "../../host/entities/entity-manager.js";
import { Router } from "../../host/entities/router.js";
import { openStore } from "../../host/journal/open-store.js";
import type { Store } from "../../host/journal/types.js";
import { setLogLevel } from "../../host/log.js";
import { ModuleRegistry } from "../../host/runtime/module-registry.js";
import { discardJournal, discardValues } from "./discard-store.js";

/** "discard": writes acknowledged and dropped; "embedded": LMDB in a temp dir; or a Redis URL. */
export type EntityStorageChoice = "discard" | "embedded" | { readonly redisUrl: string };

export interface InProcessNode {
  readonly store: Store;
  readonly registry: ModuleRegistry;
  readonly entities: EntityManager;
  readonly router: Router;
  close(): Promise<void>;
}

/** Just under 2^31 ms: no passivation sweep runs while a benchmark holds entities. */
export const NO_SWEEP_MS = 2_000_000_000;

// Deploy and load logs would interleave with progress lines.
setLogLevel(process.env.KEYSTATE_LOG_LEVEL ?? "warn");

export async function tempDir(label: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `keystate-bench-${label}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export async function openInProcessStore(storage: EntityStorageChoice): Promise<{ store: Store; close(): Promise<void> }> {
  if (typeof storage === "object") {
    const store = await openStore({ redisUrl: storage.redisUrl });
    return { store, close: () => store.close() };
  }
  const dir = await tempDir("store");
  const store = await openStore({ dataDir: dir.path });
  return {
    store,
    async close() {
      await store.close();
      await dir.remove();
    },
  };
}

/** Builds the call path on `store` (which it does not close). */
export function callPath(store: Store, storage: EntityStorageChoice, sweepMs = NO_SWEEP_MS, entityOptions: { parkAfterMs?: number } = {}): Omit<InProcessNode, "store" | "close"> & { close(): void } {
  const registry = new ModuleRegistry(store);
  // No eviction either: the entity manager's memory budget (256 MiB by default) would
  // passivate least-recently-used entities, and the density suite must count them all.
  // (Options an older tree does not know are ignored there: the suites also run on old commits.)
  const Manager = EntityManager as unknown as new (storage: EntityStorage, sweepMs: number, options: { memoryBudgetBytes: number; parkAfterMs?: number }) => EntityManager;
  const entities = new Manager(
    storage === "discard" ? { journal: discardJournal, values: discardValues } : { journal: store.journal, values: store.values },
    sweepMs,
    { memoryBudgetBytes: Number.MAX_SAFE_INTEGER, ...entityOptions },
  );
  const router = new Router(registry, entities);
  return { registry, entities, router, close: () => entities.close() };
}

export async function inProcessNode(storage: EntityStorageChoice, entityOptions: { parkAfterMs?: number } = {}): Promise<InProcessNode> {
  const opened = await openInProcessStore(storage);
  const path = callPath(opened.store, storage, NO_SWEEP_MS, entityOptions);
  return {
    store: opened.store,
    ...path,
    async close() {
      path.close();
      await opened.close();
    },
  };
}
