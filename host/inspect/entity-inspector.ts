// Answers "what is this entity's state, and what happened to it?" for operators: the
// admin API's GET /entities/... routes and `keystate inspect`. Read-only: it reads the
// store and never loads the entity, runs a command or writes anything.
//
// Why the store and not the resident entity: the store holds every acknowledged write (an
// entity replies only after its batch is durable), on every node, so reading it answers
// for any key on any node of a cluster without asking the shard's owner, and cannot be
// refused by a moving shard. An event-sourced entity's state is folded from its snapshot
// and the events after it through the module's own guest, exactly as the entity itself
// does when it activates (so this costs what one activation costs).
import { foldRecovered } from "../entities/event-sourced.js";
import { trapToError } from "../entities/guest-errors.js";
import { joinStoredCopies } from "../entities/replicated-entity.js";
import type { ServiceRuntime } from "../entities/service-runtime.js";
import { KeystateError } from "../errors.js";
import { JsonCodec } from "../ingress/json-codec.js";
import { replicatedStorageId } from "../journal/shards.js";
import type { EntityId, Store } from "../journal/types.js";
import type { LoadedModule } from "../runtime/loaded-module.js";
import type { ModuleRegistry } from "../runtime/module-registry.js";
import { EntityKind } from "../runtime/module-sections.js";
import { crdtJson } from "./crdt-json.js";
import { parseInspectRequest, type EventPage } from "./inspect-request.js";
import { decodeMessage, type DecodedMessage } from "./message-json.js";

/** Answers whether an entity is in this node's memory now (the EntityManager). */
export interface Residency {
  isResident(service: ServiceRuntime, key: string): boolean;
}

export type InspectedKind = "event-sourced" | "value" | "replicated";

export interface EntityStateView {
  readonly service: string;
  readonly kind: InspectedKind;
  readonly module: { readonly name: string; readonly version: number };
  readonly key: string;
  readonly persistenceId: string;
  /** False for an entity never written (or a deleted value): `state` is then the type's default. */
  readonly exists: boolean;
  /** Event-sourced: the last event's seq; value: the stored version; replicated: null (CRDTs have no single sequence). */
  readonly sequence: number | null;
  /** Whether this node holds the entity in memory now. */
  readonly resident: boolean;
  /** Event-sourced: the seq of the snapshot the state was folded from (null: none). */
  readonly snapshotSeq?: number | null;
  /** Event-sourced and value: the state message's type. */
  readonly stateType?: string;
  /** Replicated: the CRDT type. */
  readonly crdt?: string;
  /** The state as JSON (null when it could not be decoded: see stateBase64 and note). */
  readonly state: unknown;
  readonly stateBase64?: string;
  readonly note?: string;
}

export interface InspectedEvent {
  readonly seq: number;
  readonly type: string;
  /** The payload as JSON through the module's descriptor for `type` (absent when it cannot be decoded: see payloadBase64). */
  readonly payload?: unknown;
  readonly payloadBase64?: string;
  readonly note?: string;
}

export interface EntityEventsView {
  readonly service: string;
  readonly module: { readonly name: string; readonly version: number };
  readonly key: string;
  readonly from: number;
  /** The limit used (a larger one asked for is clamped). */
  readonly limit: number;
  readonly events: InspectedEvent[];
  /** The journal's last seq (0: no events). */
  readonly lastSeq: number;
  /** More events follow this page; ask again with from = nextFrom. */
  readonly more: boolean;
  readonly nextFrom?: number;
}

const KIND_NAMES: Partial<Record<EntityKind, InspectedKind>> = {
  [EntityKind.EVENT_SOURCED]: "event-sourced",
  [EntityKind.VALUE]: "value",
  [EntityKind.REPLICATED]: "replicated",
};

/** The replica id the inspector decodes CRDT copies as (it never writes, so it is nobody's). */
const INSPECTOR_REPLICA = "inspector";

export class EntityInspector {
  readonly #registry: ModuleRegistry;
  readonly #store: Store;
  readonly #residency: Residency;

  constructor(registry: ModuleRegistry, store: Store, residency: Residency) {
    this.#registry = registry;
    this.#store = store;
    this.#residency = residency;
  }

  /** The JSON answer to GET `url` (path and query as received), or a KeystateError saying why not. */
  inspect(url: string): Promise<EntityStateView | EntityEventsView> {
    const request = parseInspectRequest(url);
    return request.events ? this.events(request.service, request.key, request.events) : this.state(request.service, request.key);
  }

  async state(serviceName: string, key: string): Promise<EntityStateView> {
    const { service, kind, module } = this.#resolve(serviceName);
    const common = {
      service: service.name,
      kind,
      module: { name: service.moduleName, version: service.moduleVersion },
      key,
      persistenceId: service.persistenceId,
    };
    // Residency first: an entity that passivates while storage is read was resident when asked.
    const resident = this.#residency.isResident(service, key);
    const id: EntityId = { persistenceId: service.persistenceId, key };
    const stateType = module.api.services.get(service.name)?.stateType ?? "";
    if (kind === "event-sourced") {
      const { bytes, lastSeq, snapshotSeq } = await this.#foldJournal(service, id);
      return { ...common, exists: lastSeq > 0, sequence: lastSeq, resident, snapshotSeq, stateType, ...(await stateJson(module, stateType, bytes)) };
    }
    if (kind === "value") {
      const stored = await storage(this.#store.values.read(id), "reading a value entity");
      return { ...common, exists: stored.value !== undefined, sequence: stored.version, resident, stateType, ...(await stateJson(module, stateType, stored.value)) };
    }
    const { exists, state } = await this.#joinReplicas(service, key);
    return { ...common, exists, sequence: null, resident, crdt: service.crdtType, state };
  }

  async events(serviceName: string, key: string, page: EventPage): Promise<EntityEventsView> {
    const { service, kind, module } = this.#resolve(serviceName);
    if (kind !== "event-sourced") {
      throw new KeystateError("INVALID_REQUEST", `${service.name} is a ${kind} entity; only event-sourced entities have a journal of events (GET /entities/${service.name}/<key> shows its state)`);
    }
    const id: EntityId = { persistenceId: service.persistenceId, key };
    // One more than the page: whether it is there says if more follow, without counting them.
    const [read, lastSeq] = await storage(
      Promise.all([this.#store.journal.readEvents(id, page.from, page.limit + 1), this.#store.journal.lastSeq(id)]),
      "reading an entity's journal",
    );
    const more = read.length > page.limit;
    const codec = await JsonCodec.forModule(module);
    const events = read.slice(0, page.limit).map((event) => ({ seq: event.seq, type: event.type, ...payloadJson(decodeMessage(codec, event.type, event.payload)) }));
    return {
      service: service.name,
      module: { name: service.moduleName, version: service.moduleVersion },
      key,
      from: page.from,
      limit: page.limit,
      events,
      lastSeq: Math.max(lastSeq, events.at(-1)?.seq ?? 0),
      more,
      ...(more ? { nextFrom: events.at(-1)!.seq + 1 } : {}),
    };
  }

  /** The deployed service, its kind and module; 404 for an unknown one, 400 for an action. */
  #resolve(serviceName: string): { service: ServiceRuntime; kind: InspectedKind; module: LoadedModule } {
    const service = this.#registry.service(serviceName);
    const module = service && this.#registry.modules.find((m) => m.name === service.moduleName);
    if (!service || !module) {
      throw new KeystateError("UNKNOWN_SERVICE", `no service ${serviceName} is deployed on this node (GET /modules lists the modules and their services)`);
    }
    const kind = KIND_NAMES[service.kind];
    if (!kind) throw new KeystateError("INVALID_REQUEST", `${service.name} is an action: actions are stateless, there is no entity to inspect`);
    return { service, kind, module };
  }

  /** The state folded from the latest snapshot and the events after it, through the guest, as the entity's activation does. */
  async #foldJournal(service: ServiceRuntime, id: EntityId): Promise<{ bytes: Uint8Array | undefined; lastSeq: number; snapshotSeq: number | null }> {
    const recovered = await storage(this.#store.journal.recover(id), "reading an entity's journal");
    let bytes: Uint8Array | undefined;
    try {
      bytes = foldRecovered(service, recovered);
    } catch (err) {
      throw trapToError(err, { module: service.moduleName, service: service.name, entityKey: id.key });
    }
    return { bytes, lastSeq: recovered.lastSeq, snapshotSeq: recovered.snapshot?.seq ?? null };
  }

  /** The join of every node's stored copy (as a replicated entity's load does), as JSON. */
  async #joinReplicas(service: ServiceRuntime, key: string): Promise<{ exists: boolean; state: unknown }> {
    const stored = await storage(this.#store.replicas.load({ persistenceId: replicatedStorageId(service.persistenceId), key }), "reading a replicated entity");
    const crdt = joinStoredCopies(service, key, INSPECTOR_REPLICA, stored.copies);
    return { exists: stored.copies.length > 0, state: crdtJson(crdt.type, crdt.value()) };
  }
}

/** A storage promise whose failure is STORAGE_UNAVAILABLE (503) naming what was read. */
function storage<T>(read: Promise<T>, what: string): Promise<T> {
  return read.catch((err: unknown) => {
    throw KeystateError.fromStorage(err, what);
  });
}

/** A state (undefined: never written, shown as the type's default) as the view's state fields. */
async function stateJson(module: LoadedModule, stateType: string, bytes: Uint8Array | undefined): Promise<{ state: unknown; stateBase64?: string; note?: string }> {
  const decoded = decodeMessage(await JsonCodec.forModule(module), stateType, bytes ?? new Uint8Array(0));
  return "json" in decoded ? { state: decoded.json } : { state: null, stateBase64: decoded.base64, note: decoded.note };
}

function payloadJson(decoded: DecodedMessage): { payload?: unknown; payloadBase64?: string; note?: string } {
  return "json" in decoded ? { payload: decoded.json } : { payloadBase64: decoded.base64, note: decoded.note };
}
