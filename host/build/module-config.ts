// module.json: what an entity module's author declares besides code and .proto files —
// the module name, its proto files, and each service's state model.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { CRDT_TYPES, type CrdtType } from "../crdt/types.js";
import { EntityKind } from "../runtime/module-sections.js";

export interface EntityConfig {
  /** Fully qualified gRPC service name. */
  readonly service: string;
  readonly kind: "event-sourced" | "value" | "replicated" | "action";
  /** Storage name of the entity type; defaults to the module name (replicated: the service name). */
  readonly persistenceId?: string;
  /** Fully qualified name of the state message (event-sourced and value entities). */
  readonly state?: string;
  /** Fully qualified names of the event messages (event-sourced). */
  readonly events?: string[];
  readonly snapshotEvery?: number;
  readonly passivationTimeoutMs?: number;
  /** Replicated entities: the CRDT, by name in any case ("vote", "GCounter", "ormap", ...). */
  readonly crdt?: string;
  /** Replicated entities: the least write consistency of every command (default "local"; a command may ask for more). */
  readonly writeConsistency?: "local" | "majority" | "all";
}

/** module.json `writeConsistency` -> manifest value (abi.proto WriteConsistency). */
export const WRITE_CONSISTENCY_BY_NAME = { local: 0, majority: 1, all: 2 } as const;

/** The CRDT type a module.json `crdt` names (case-insensitive), or undefined. */
export function crdtTypeOf(name: string | undefined): CrdtType | undefined {
  return CRDT_TYPES.find((type) => type.toLowerCase() === name?.toLowerCase());
}

/** What a module's handlers are written in; each has its own builder (host/build). */
export const MODULE_LANGUAGES = ["assemblyscript", "c", "javascript"] as const;
export type ModuleLanguage = (typeof MODULE_LANGUAGES)[number];

export interface ModuleConfig {
  readonly name: string;
  /**
   * "assemblyscript" (default: assembly/index.ts with the guest SDK), "c" (src/*.c with
   * guest-sdk-c, a core module) or "javascript" (src/index.js, a Wasm component).
   */
  readonly language?: ModuleLanguage;
  /** The module's .proto files, relative to its proto/ folder. */
  readonly protos: string[];
  readonly entities: EntityConfig[];
  /** Resource limits the module asks for; a node never grants more than its own maximums. */
  readonly limits?: {
    /** Fuel units one command may use (default, and at most: the node's --guest-fuel). */
    readonly fuelPerCall?: number;
    /** The module's own memory maximum in MiB (default: the node's --guest-memory-mb). */
    readonly maxMemoryMb?: number;
  };
  /** Topics and event-sourced journals the module's services consume (host/eventing). */
  readonly subscriptions?: SubscriptionConfig[];
  /**
   * How an AssemblyScript module's memory is managed (guest-sdk/README.md "Memory"):
   * "collected" (default), AssemblyScript's minimal runtime, garbage collected between calls;
   * "per-call", the call-heap runtime, for modules that keep nothing between calls: what
   * calls allocate is dropped all at once, unless something kept refers to it.
   */
  readonly heap?: ModuleHeap;
}

export const MODULE_HEAPS = ["collected", "per-call"] as const;
export type ModuleHeap = (typeof MODULE_HEAPS)[number];

/** What the module's handlers are written in (module.json `"language"`, AssemblyScript when absent). */
export function moduleLanguage(config: ModuleConfig): ModuleLanguage {
  return config.language ?? "assemblyscript";
}

/** module.json `subscriptions[]`: exactly one of `topic` and `eventLog`. */
export interface SubscriptionConfig {
  readonly topic?: string;
  /** The persistence id of an event-sourced entity type (any module's). */
  readonly eventLog?: string;
  readonly service: string;
  /** Topics only: the method every message goes to. */
  readonly method?: string;
  /** Deliveries of one message before it is dead-lettered (default 5). */
  readonly maxAttempts?: number;
  /** Where a new subscription starts: "beginning" (default: every retained message) or "now". */
  readonly from?: "beginning" | "now";
}

export const KIND_BY_NAME: Record<EntityConfig["kind"], EntityKind> = {
  "event-sourced": EntityKind.EVENT_SOURCED,
  value: EntityKind.VALUE,
  replicated: EntityKind.REPLICATED,
  action: EntityKind.ACTION,
};

export async function readModuleConfig(moduleDir: string): Promise<ModuleConfig> {
  const path = join(moduleDir, "module.json");
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, "utf8"));
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as Error).message}`);
  }
  const config = parsed as ModuleConfig;
  const problems: string[] = [];
  if (typeof config.name !== "string" || !config.name) problems.push(`"name" must be a non-empty string`);
  if (config.language !== undefined && !MODULE_LANGUAGES.includes(config.language)) {
    problems.push(`"language" must be one of ${MODULE_LANGUAGES.join(", ")}`);
  }
  if (config.heap !== undefined && !MODULE_HEAPS.includes(config.heap)) {
    problems.push(`"heap" must be one of ${MODULE_HEAPS.join(", ")}`);
  } else if (config.heap !== undefined && moduleLanguage(config) !== "assemblyscript") {
    problems.push(`"heap" applies to AssemblyScript modules only (this module's language is ${config.language})`);
  }
  if (!Array.isArray(config.protos) || config.protos.length === 0) problems.push(`"protos" must list the module's .proto files`);
  if (!Array.isArray(config.entities) || config.entities.length === 0) problems.push(`"entities" must list at least one service`);
  for (const [i, entity] of (config.entities ?? []).entries()) {
    if (!entity.service) problems.push(`entities[${i}].service is missing`);
    if (!(entity.kind in KIND_BY_NAME)) problems.push(`entities[${i}].kind must be one of ${Object.keys(KIND_BY_NAME).join(", ")}`);
    if (entity.kind === "event-sourced" && (!entity.state || !entity.events?.length)) {
      problems.push(`entities[${i}] (event-sourced) needs "state" and "events"`);
    }
    if (entity.writeConsistency !== undefined && (entity.kind !== "replicated" || !(entity.writeConsistency in WRITE_CONSISTENCY_BY_NAME))) {
      problems.push(`entities[${i}].writeConsistency must be "local", "majority" or "all", on a replicated entity only`);
    }
    if (entity.kind === "replicated" && !crdtTypeOf(entity.crdt)) {
      problems.push(`entities[${i}] (replicated) needs "crdt": one of ${CRDT_TYPES.map((type) => type.toLowerCase()).join(", ")}`);
    }
  }
  const { fuelPerCall, maxMemoryMb } = config.limits ?? {};
  if (fuelPerCall !== undefined && (!Number.isInteger(fuelPerCall) || fuelPerCall < 1 || fuelPerCall > 0x7fffffff)) {
    problems.push(`limits.fuelPerCall must be a whole number from 1 to ${0x7fffffff}`);
  }
  if (maxMemoryMb !== undefined && (!Number.isInteger(maxMemoryMb) || maxMemoryMb < 1 || maxMemoryMb > 4096)) {
    problems.push("limits.maxMemoryMb must be a whole number of MiB from 1 to 4096");
  }
  for (const [i, sub] of (config.subscriptions ?? []).entries()) {
    if (typeof sub.topic === "string" === (typeof sub.eventLog === "string")) problems.push(`subscriptions[${i}] needs exactly one of "topic" and "eventLog"`);
    if (!sub.service) problems.push(`subscriptions[${i}].service is missing`);
    if (sub.topic !== undefined && !sub.method) problems.push(`subscriptions[${i}] (topic) needs "method"`);
    if (sub.eventLog !== undefined && sub.method !== undefined) problems.push(`subscriptions[${i}] (eventLog) takes no "method": each event goes to the method that takes its type`);
    if (sub.maxAttempts !== undefined && (!Number.isInteger(sub.maxAttempts) || sub.maxAttempts < 1 || sub.maxAttempts > 1000)) problems.push(`subscriptions[${i}].maxAttempts must be a whole number from 1 to 1000`);
    if (sub.from !== undefined && sub.from !== "beginning" && sub.from !== "now") problems.push(`subscriptions[${i}].from must be "beginning" or "now"`);
  }
  if (problems.length > 0) throw new Error(`${path}: ${problems.join("; ")}`);
  return config;
}
