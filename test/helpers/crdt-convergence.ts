// The cross-node CRDT workload and its checker, shared by the replication tests and the long
// run in scripts/crdt-convergence.ts. Every node writes concurrently to the same keys of all
// eight types (test/fixtures/crdt-replication); a sequential model records what each
// acknowledged write means; once the writes stop, every node is polled until all of them
// read the same values and those equal the model's: counters exact, sets the union of adds
// minus the removes their remover had observed, the register the highest clock, votes each
// node's last vote. The time from the last acknowledgement to agreement is the convergence
// time T.
import { join } from "node:path";
import { prng } from "../../scripts/fuzz-modules.js";
import { contractClient, type ContractClient } from "./grpc-client.js";
import { REPO_ROOT } from "./node-process.js";

export const FIXTURE_DIR = join(REPO_ROOT, "test", "fixtures", "crdt-replication");
const PACKAGE = "keystate.test.replication";
export const TYPES = ["GCounters", "PNCounters", "GSets", "ORSets", "Registers", "Flags", "Maps", "Votes"] as const;
export type TypeService = (typeof TYPES)[number];
/** Services of the fixture besides one per type (not part of the convergence workload). */
const OTHER_SERVICES = ["MajorityFlags"] as const;

export interface ReplicationClients {
  readonly byNode: ReadonlyArray<Record<TypeService | (typeof OTHER_SERVICES)[number], ContractClient>>;
  close(): void;
}

export function replicationClients(grpcPorts: readonly number[]): ReplicationClients {
  const byNode = grpcPorts.map((port) => {
    const clients = {} as Record<TypeService | (typeof OTHER_SERVICES)[number], ContractClient>;
    for (const type of [...TYPES, ...OTHER_SERVICES]) clients[type] = contractClient(join(FIXTURE_DIR, "proto"), "replication.proto", `${PACKAGE}.${type}`, port);
    return clients;
  });
  return { byNode, close: () => byNode.forEach((clients) => Object.values(clients).forEach((c) => c.close())) };
}

/** What a sequential replica that saw every acknowledged write in order would hold. */
class Model {
  readonly counters = new Map<string, bigint>();
  readonly sets = new Map<string, Set<string>>();
  readonly registers = new Map<string, { clock: number; value: string }>();
  readonly flags = new Set<string>();
  readonly maps = new Map<string, Map<string, bigint>>();
  readonly votes = new Map<string, Map<number, boolean>>();

  add(key: string, amount: number): void {
    this.counters.set(key, (this.counters.get(key) ?? 0n) + BigInt(amount));
  }

  setOf(key: string): Set<string> {
    let set = this.sets.get(key);
    if (set === undefined) this.sets.set(key, (set = new Set()));
    return set;
  }

  mapOf(key: string): Map<string, bigint> {
    let map = this.maps.get(key);
    if (map === undefined) this.maps.set(key, (map = new Map()));
    return map;
  }

  /** The normalized value `type` should read for `key`. */
  expected(type: TypeService, key: string): string {
    switch (type) {
      case "GCounters":
      case "PNCounters":
        return `counter=${this.counters.get(`${type}/${key}`) ?? 0n}`;
      case "GSets":
      case "ORSets":
        return `elements=${[...(this.sets.get(`${type}/${key}`) ?? [])].sort().join(",")}`;
      case "Registers": {
        const register = this.registers.get(key);
        return `register=${register?.value ?? "(unset)"}`;
      }
      case "Flags":
        return `flag=${this.flags.has(key)}`;
      case "Maps":
        return `entries=${[...(this.maps.get(key) ?? new Map<string, bigint>())].sort(([a], [b]) => (a < b ? -1 : 1)).map(([f, n]) => `${f}:${n}`).join(",")}`;
      case "Votes": {
        const votes = [...(this.votes.get(key)?.values() ?? [])];
        return `votes=${votes.filter(Boolean).length}/${votes.length}`;
      }
    }
  }
}

/** A reply (any Value) in the form Model.expected gives, for the fields of `type`. */
export function normalized(type: TypeService, value: any): string {
  switch (type) {
    case "GCounters":
    case "PNCounters":
      return `counter=${BigInt(value.counter)}`;
    case "GSets":
    case "ORSets":
      return `elements=${[...value.elements].sort().join(",")}`;
    case "Registers":
      return `register=${value.hasRegister ? value.register : "(unset)"}`;
    case "Flags":
      return `flag=${value.flag}`;
    case "Maps":
      return `entries=${[...value.entries].sort((a: any, b: any) => (a.field < b.field ? -1 : 1)).map((e: any) => `${e.field}:${BigInt(e.count)}`).join(",")}`;
    case "Votes":
      return `votes=${value.votesFor}/${value.voters}`;
  }
}

export interface WorkloadOptions {
  /** Keys per type (every node writes every key). */
  readonly keys: number;
  /** Writes per node. */
  readonly writesPerNode: number;
  /** Concurrent writers per node; each owns the keys k with k % writers == its index, so one node's writes to one key are in order. */
  readonly writers: number;
  /** Distinguishes the keys of one round from another's. */
  readonly prefix: string;
  /** Deterministic choices. */
  readonly seed: number;
}

export interface RoundResult {
  readonly writes: number;
  readonly failures: string[];
  readonly writeMs: number;
  /** From the last acknowledged write until every node read the model's values (undefined: not within the limit). */
  readonly convergedMs: number | undefined;
  /** What still differed at the limit: "<type>/<key> on node <i>: <read> != <expected>". */
  readonly differences: string[];
  /** Reads the round's keys again on every node of `clients` until they match the model (or `withinMs` passed); lists what still differs. */
  recheck(clients: ReplicationClients, withinMs: number): Promise<string[]>;
  /** Node `node` restarted: a vote is what a process says now, so its earlier votes no longer count (retired). */
  forgetVotesOf(node: number): void;
}

/** Runs the concurrent writes of one round, then waits up to `convergeWithinMs` for agreement. */
export async function runRound(clients: ReplicationClients, options: WorkloadOptions, convergeWithinMs: number): Promise<RoundResult> {
  const model = new Model();
  const failures: string[] = [];
  const keys = Array.from({ length: options.keys }, (_, k) => `${options.prefix}-k${k}`);
  let clock = 0;
  let writes = 0;
  const started = Date.now();
  await Promise.all(
    clients.byNode.map(async (node, n) => {
      const next = prng(options.seed * 7919 + n);
      const ownedBy = (w: number) => keys.filter((_, k) => k % options.writers === w);
      await Promise.all(
        Array.from({ length: options.writers }, async (_, w) => {
          const mine = ownedBy(w);
          if (mine.length === 0) return;
          const added = new Map<string, string[]>(); // ORSet elements this node added, per key (removable by it)
          for (let i = 0; i < Math.ceil(options.writesPerNode / options.writers); i++) {
            const key = mine[Math.floor(next() * mine.length)]!;
            const chosen = TYPES[Math.floor(next() * TYPES.length)]!;
            const op = plan(chosen, key, n, i, next, added, () => ++clock);
            const type = op.type ?? chosen;
            try {
              await node[type].methods[op.method]!(op.request);
              op.apply(model);
              writes++;
            } catch (err) {
              failures.push(`${type}.${op.method} on node ${n}: ${(err as Error).message}`);
            }
          }
        }),
      );
    }),
  );
  const writesDone = Date.now();
  const convergedMs = await convergence(clients, model, keys, convergeWithinMs);
  const differences = convergedMs === undefined ? await differencesOf(clients, model, keys) : [];
  return { writes, failures, writeMs: writesDone - started, convergedMs, differences, recheck: async (others, withinMs) => ((await convergence(others, model, keys, withinMs)) === undefined ? differencesOf(others, model, keys) : []),
    forgetVotesOf: (node) => {
      for (const votes of model.votes.values()) votes.delete(node);
    },
  };
}

interface Planned {
  /** The service written (a Flags plan on a key never enabled writes a counter instead). */
  readonly type?: TypeService;
  readonly method: string;
  readonly request: object;
  /** What the write means once acknowledged. */
  readonly apply: (model: Model) => void;
}

function plan(type: TypeService, key: string, node: number, i: number, next: () => number, added: Map<string, string[]>, tick: () => number): Planned {
  const pick = (n: number) => Math.floor(next() * n);
  switch (type) {
    case "GCounters":
    case "PNCounters": {
      const amount = type === "GCounters" ? 1 + pick(5) : pick(11) - 5;
      return { method: "Add", request: { key, amount }, apply: (m) => m.add(`${type}/${key}`, amount) };
    }
    case "GSets": {
      const element = `e${pick(20)}`;
      return { method: "Add", request: { key, element }, apply: (m) => m.setOf(`${type}/${key}`).add(element) };
    }
    case "ORSets": {
      const mine = added.get(key) ?? [];
      if (mine.length > 0 && next() < 0.35) {
        // Removes only what this node added itself (so it observed it): no add-wins ambiguity to model.
        const element = mine.splice(pick(mine.length), 1)[0]!;
        return { method: "Remove", request: { key, element }, apply: (m) => m.setOf(`${type}/${key}`).delete(element) };
      }
      // Node-private elements (removable), and shared ones every node adds and nobody removes.
      const shared = next() < 0.3;
      const element = shared ? `s${pick(5)}` : `n${node}-${i}`;
      return {
        method: "Add",
        request: { key, element },
        apply: (m) => {
          m.setOf(`${type}/${key}`).add(element);
          if (!shared) added.set(key, [...(added.get(key) ?? []), element]);
        },
      };
    }
    case "Registers": {
      // The clock is taken when the write is planned: unique, so the highest one wins with no tie.
      const clock = tick();
      const value = `v${clock}-n${node}`;
      return {
        method: "Set",
        request: { key, element: value, amount: clock },
        apply: (m) => {
          if ((m.registers.get(key)?.clock ?? -1) < clock) m.registers.set(key, { clock, value });
        },
      };
    }
    case "Flags":
      // Only some keys are ever enabled, so "false everywhere" is checked too.
      if (key.endsWith("0") || key.endsWith("2")) return { method: "Enable", request: { key }, apply: (m) => m.flags.add(key) };
      return { ...plan("GCounters", key, node, i, next, added, tick), type: "GCounters" };
    case "Maps": {
      const field = `f${pick(4)}`;
      const amount = pick(9) - 3;
      return {
        method: "Add",
        request: { key, element: field, amount },
        apply: (m) => {
          const map = m.mapOf(key);
          map.set(field, (map.get(field) ?? 0n) + BigInt(amount));
        },
      };
    }
    case "Votes": {
      const yes = next() < 0.5;
      return {
        method: "Cast",
        request: { key, yes },
        apply: (m) => {
          let votes = m.votes.get(key);
          if (votes === undefined) m.votes.set(key, (votes = new Map()));
          votes.set(node, yes);
        },
      };
    }
  }
}

async function readAll(clients: ReplicationClients, keys: readonly string[]): Promise<Array<{ type: TypeService; key: string; node: number; read: string }>> {
  const reads: Array<Promise<{ type: TypeService; key: string; node: number; read: string }>> = [];
  clients.byNode.forEach((node, n) => {
    for (const type of TYPES) {
      for (const key of keys) reads.push(node[type].methods["Get"]!({ key }).then((value) => ({ type, key, node: n, read: normalized(type, value) })));
    }
  });
  return Promise.all(reads);
}

async function convergence(clients: ReplicationClients, model: Model, keys: readonly string[], withinMs: number): Promise<number | undefined> {
  const since = Date.now();
  while (Date.now() - since <= withinMs) {
    const reads = await readAll(clients, keys).catch(() => undefined);
    if (reads !== undefined && reads.every((r) => r.read === model.expected(r.type, r.key))) return Date.now() - since;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return undefined;
}

async function differencesOf(clients: ReplicationClients, model: Model, keys: readonly string[]): Promise<string[]> {
  const reads = await readAll(clients, keys);
  return reads.filter((r) => r.read !== model.expected(r.type, r.key)).map((r) => `${r.type}/${r.key} on node ${r.node}: ${r.read} != ${model.expected(r.type, r.key)}`);
}

/** p-th percentile (0..100) of `values`, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
