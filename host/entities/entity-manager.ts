// Keeps the active entities of this node: one mailbox each, created on first command
// and dropped after the entity has been idle for its passivation timeout (its state is
// in the store, so the next command reloads it).
import { KeystateError } from "../errors.js";
import type { Journal } from "../journal/types.js";
import { EntityKind } from "../runtime/module-sections.js";
import { EventSourcedEntity, type EntityCommand } from "./event-sourced.js";
import { Mailbox } from "./mailbox.js";
import type { ServiceRuntime } from "./service-runtime.js";

/** Used when a module's manifest sets no passivation timeout. */
export const DEFAULT_PASSIVATION_TIMEOUT_MS = 30_000;

interface ActiveEntity {
  readonly entity: EventSourcedEntity;
  readonly mailbox: Mailbox<EntityCommand, Uint8Array>;
  /** The service runtime (module version) the entity was activated with. */
  readonly service: ServiceRuntime;
  lastUsed: number;
}

export class EntityManager {
  readonly #journal: Journal;
  readonly #active = new Map<string, ActiveEntity>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(journal: Journal, sweepIntervalMs = 1_000) {
    this.#journal = journal;
    this.#sweeper = setInterval(() => this.passivateIdle(Date.now()), sweepIntervalMs);
    this.#sweeper.unref();
  }

  get activeCount(): number {
    return this.#active.size;
  }

  /** Runs one command on the entity `key` of `service`, in that entity's mailbox. */
  command(service: ServiceRuntime, key: string, command: EntityCommand): Promise<Uint8Array> {
    if (service.kind !== EntityKind.EVENT_SOURCED) {
      throw new KeystateError("UNKNOWN_METHOD", `service ${service.name}: entity kind ${EntityKind[service.kind]} is not served yet`);
    }
    const id = `${service.persistenceId}\u0000${key}`;
    let active = this.#active.get(id);
    if (active && active.service !== service && active.mailbox.idle) {
      // A new module version is live: let the next command rehydrate with it.
      this.#active.delete(id);
      active = undefined;
    }
    if (!active) {
      const entity = new EventSourcedEntity({ persistenceId: service.persistenceId, key }, service, this.#journal);
      active = { entity, mailbox: new Mailbox((batch) => entity.process(batch)), service, lastUsed: Date.now() };
      this.#active.set(id, active);
    }
    active.lastUsed = Date.now();
    return active.mailbox.post(command);
  }

  /** Drops entities idle past their timeout whose mailboxes are empty. */
  passivateIdle(now: number): number {
    let dropped = 0;
    for (const [id, active] of this.#active) {
      const timeout = active.service.passivationTimeoutMs || DEFAULT_PASSIVATION_TIMEOUT_MS;
      if (active.mailbox.idle && now - active.lastUsed >= timeout) {
        this.#active.delete(id);
        dropped++;
      }
    }
    return dropped;
  }

  close(): void {
    clearInterval(this.#sweeper);
    this.#active.clear();
  }
}
