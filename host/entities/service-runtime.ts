// What the entity layer needs to run one deployed service: its model, the module's
// instance pool, and the module identity (for logs).
import type { WriteConsistency } from "../abi/replicated-abi.js";
import type { GuestObserver } from "../metrics.js";
import type { LoadedModule } from "../runtime/loaded-module.js";
import type { InstancePool } from "../runtime/instance-pool.js";
import type { EntityKind } from "../runtime/module-sections.js";
import type { MethodModel, ServiceModel } from "../runtime/service-model.js";

export interface ServiceRuntime {
  readonly name: string;
  readonly kind: EntityKind;
  readonly persistenceId: string;
  readonly snapshotEvery: number;
  readonly passivationTimeoutMs: number;
  readonly eventTypes: ReadonlySet<string>;
  /** Replicated entities: the CRDT type (a host/crdt CrdtType name). */
  readonly crdtType: string;
  /** Replicated entities: the least write consistency of every command (module.json `writeConsistency`). */
  readonly writeConsistency: WriteConsistency;
  readonly methods: ReadonlyMap<string, MethodModel>;
  readonly moduleName: string;
  readonly moduleVersion: number;
  readonly pool: InstancePool;
  /** Where guest commands report their time (the node's metrics); absent in bare test setups. */
  readonly observer?: GuestObserver;
}

export function serviceRuntime(module: LoadedModule, model: ServiceModel, pool: InstancePool, observer?: GuestObserver): ServiceRuntime {
  return {
    name: model.service,
    kind: model.kind,
    persistenceId: model.persistenceId,
    snapshotEvery: model.snapshotEvery,
    passivationTimeoutMs: model.passivationTimeoutMs,
    eventTypes: new Set(model.eventTypes),
    crdtType: model.crdtType,
    writeConsistency: model.writeConsistency as WriteConsistency,
    methods: model.methods,
    moduleName: module.name,
    moduleVersion: module.version,
    pool,
    observer,
  };
}
