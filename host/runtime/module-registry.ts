// The modules this node serves. Deploying validates and compiles the bytes, stores them
// as a new version, and swaps the module's services in atomically: calls that already
// hold a ServiceRuntime finish on it, new calls resolve the new one.
import { KeystateError } from "../errors.js";
import type { ModuleArtifact, Store } from "../journal/types.js";
import { log } from "../log.js";
import type { GuestObserver } from "../metrics.js";
import { serviceRuntime, type ServiceRuntime } from "../entities/service-runtime.js";
import { InstancePool } from "./instance-pool.js";
import { GuestInstance } from "../abi/guest-instance.js";
import { ComponentInstance } from "../component/component-instance.js";
import { artifactKey, buildArtifact, compileArtifact, describeArtifact, withCarriedDescription, type LoadedModule } from "./loaded-module.js";
import { DEFAULT_GUEST_LIMITS, type GuestLimits } from "./guest-limits.js";

/** Default upload limit; `--max-module-size` changes it. */
export const DEFAULT_MAX_MODULE_BYTES = 16 * 1024 * 1024;

export interface ServiceChange {
  readonly added: readonly ServiceRuntime[];
  readonly removed: readonly string[];
}

export interface DeployedModule {
  readonly name: string;
  readonly version: number;
  readonly hash: string;
  readonly size: number;
  readonly services: string[];
}

/** A stored version as a node finds it: an artifact made for its limits, or only the upload. */
type StoredVersion = { readonly artifact: ModuleArtifact } | { readonly upload: Uint8Array };

export class ModuleRegistry {
  readonly #store: Store;
  readonly #maxModuleBytes: number;
  readonly #limits: GuestLimits;
  /** Stored versions a deploy keeps per module (the active one besides); 0: all. */
  readonly #keepVersions: number;
  readonly #modules = new Map<string, LoadedModule>();
  /** The instance pool of each module's served version, retired when another version replaces it. */
  readonly #pools = new Map<string, InstancePool>();
  readonly #services = new Map<string, ServiceRuntime>();
  readonly #listeners: Array<(change: ServiceChange) => void> = [];
  readonly #moduleListeners: Array<(name: string) => void> = [];
  #guestObserver: GuestObserver | undefined;

  constructor(store: Store, options: { maxModuleBytes?: number; guestLimits?: GuestLimits; keepVersions?: number } = {}) {
    this.#limits = options.guestLimits ?? DEFAULT_GUEST_LIMITS;
    this.#store = store;
    this.#maxModuleBytes = options.maxModuleBytes ?? DEFAULT_MAX_MODULE_BYTES;
    this.#keepVersions = options.keepVersions ?? 0;
  }

  /** Where guest commands of modules activated from now on report their time (call before loadFromStore). */
  observeGuestCalls(observer: GuestObserver): void {
    this.#guestObserver = observer;
  }

  onServicesChanged(listener: (change: ServiceChange) => void): void {
    this.#listeners.push(listener);
  }

  /** Called after this node deployed, activated or undeployed a module (the cluster tells the other nodes). */
  onModuleChanged(listener: (name: string) => void): void {
    this.#moduleListeners.push(listener);
  }

  #changed(name: string): void {
    for (const listener of this.#moduleListeners) listener(name);
  }

  service(name: string): ServiceRuntime | undefined {
    return this.#services.get(name);
  }

  get modules(): LoadedModule[] {
    return [...this.#modules.values()];
  }

  /** Validates, stores and activates `bytes` as the next version of the module it names. */
  async deploy(bytes: Uint8Array): Promise<DeployedModule> {
    if (bytes.length > this.#maxModuleBytes) {
      throw new KeystateError("MODULE_TOO_LARGE", `the module is ${bytes.length} bytes; the limit is ${this.#maxModuleBytes}`);
    }
    const artifact = await buildArtifact(bytes, this.#limits);
    const { loaded: candidate, pool } = await this.#prepare(artifact, 0, "upload");
    // One atomic, durable write stores the version, its artifact (so nodes that load it
    // later skip validating and instrumenting), makes it active and removes the versions
    // beyond those kept (the store reports its own failures as STORAGE_UNAVAILABLE).
    const info = await this.#store.modules.addVersion(candidate.name, bytes, artifact.uploadHash, { activate: true, artifact, keepVersions: this.#keepVersions });
    const loaded = { ...candidate, version: info.version };
    this.#activate(loaded, pool);
    log().info({ module: loaded.name, version: loaded.version, hash: loaded.hash, services: [...loaded.api.services.keys()] }, "module deployed");
    this.#changed(loaded.name);
    return describe(loaded);
  }

  /**
   * Makes a stored version live again (a rollback, or a roll forward). Calls in flight
   * finish on the version they started on.
   */
  async activateVersion(name: string, version: number): Promise<DeployedModule> {
    const stored = await this.#readStored(name, version);
    if (!stored) throw new KeystateError("MODULE_NOT_FOUND", `module ${name} has no version ${version}`);
    const { loaded, pool } = await this.#prepareStored(name, version, stored);
    await this.#store.modules.setActive(name, version);
    this.#activate(loaded, pool);
    log().info({ module: name, version }, "module version activated");
    this.#changed(name);
    return describe(loaded);
  }

  /** Stops serving the module's services; its stored versions stay for a later rollback. */
  async undeploy(name: string): Promise<void> {
    const module = this.#modules.get(name);
    if (!module) throw new KeystateError("MODULE_NOT_FOUND", `module ${name} is not deployed`);
    await this.#store.modules.setActive(name, undefined);
    this.#unload(name);
    log().info({ module: name, version: module.version }, "module undeployed");
    this.#changed(name);
  }

  #unload(name: string): void {
    const module = this.#modules.get(name);
    if (!module) return;
    const removed = [...module.api.services.keys()];
    for (const service of removed) this.#services.delete(service);
    this.#modules.delete(name);
    this.#pools.get(name)?.retire();
    this.#pools.delete(name);
    for (const listener of this.#listeners) listener({ added: [], removed });
  }

  /**
   * Serves what the store says is active for `name` (another node of the cluster deployed,
   * rolled back or undeployed it): loads that version, or stops serving the module. Writes
   * nothing. Resolves true when this node's modules changed.
   */
  async follow(name: string, activeVersion: number | undefined): Promise<boolean> {
    const current = this.#modules.get(name);
    if (activeVersion === undefined) {
      if (!current) return false;
      this.#unload(name);
      log().info({ module: name, version: current.version }, "module undeployed by another node");
      return true;
    }
    if (current?.version === activeVersion) return false;
    const stored = await this.#readStored(name, activeVersion);
    if (!stored) return false;
    const { loaded, pool } = await this.#prepareStored(name, activeVersion, stored);
    // The cluster may have moved on while this compiled (another deploy or rollback): only
    // what the store still says is active goes live (versions need not grow: rollbacks).
    const now = (await this.#store.modules.list()).find((m) => m.name === name)?.activeVersion;
    if (now !== activeVersion) return false;
    this.#activate(loaded, pool);
    log().info({ module: name, version: activeVersion }, "module version loaded from the cluster");
    return true;
  }

  /**
   * Activates the stored active version of every module (at start-up). Bad stored modules
   * are logged and skipped; a store that fails to answer fails start-up.
   */
  async loadFromStore(options: { lazy?: boolean } = {}): Promise<void> {
    for (const summary of await this.#store.modules.list()) {
      if (summary.activeVersion === undefined) continue;
      const stored = await this.#readStored(summary.name, summary.activeVersion);
      if (!stored) continue;
      try {
        // Lazily: serve the module's services now, compile it on its first call. Only an
        // artifact made for this node's limits can be registered unread; an upload is
        // validated and instrumented now, as always.
        const { loaded, pool } = options.lazy && "artifact" in stored
          ? this.#registerUncompiled(stored.artifact, summary.activeVersion)
          : await this.#prepareStored(summary.name, summary.activeVersion, stored);
        this.#activate(loaded, pool);
        // An artifact from an earlier release is rewritten once to carry its description, so later starts skip decoding it.
        const upgraded = "artifact" in stored ? withCarriedDescription(stored.artifact, loaded) : undefined;
        if (upgraded) await this.#storeArtifact(summary.name, summary.activeVersion, upgraded);
      } catch (err) {
        log().error({ module: summary.name, version: summary.activeVersion, err }, "stored module failed to load");
      }
    }
  }

  #checkServiceOwnership(candidate: LoadedModule): void {
    for (const name of candidate.api.services.keys()) {
      const owner = this.#services.get(name);
      if (owner && owner.moduleName !== candidate.name) {
        throw new KeystateError("SERVICE_CONFLICT", `service ${name} is already served by module ${owner.moduleName}`);
      }
    }
  }

  /** Everything short of storing and serving: compile, check service ownership, start an instance. */
  async #prepare(artifact: ModuleArtifact, version: number, from: LoadedModule["loadedFrom"]): Promise<{ loaded: LoadedModule; pool: InstancePool }> {
    const loaded = await compileArtifact(artifact, version, this.#limits, from);
    this.#checkServiceOwnership(loaded);
    return { loaded, pool: this.#startPool(loaded) };
  }

  /**
   * What a node loads of a stored version (undefined when there is none): the artifact
   * stored for this node's limits, otherwise the uploaded bytes.
   */
  async #readStored(name: string, version: number): Promise<StoredVersion | undefined> {
    const artifact = await this.#store.modules.getArtifact(name, version, artifactKey(this.#limits));
    if (artifact) return { artifact };
    const upload = await this.#store.modules.getBytes(name, version);
    return upload && { upload };
  }

  /**
   * #prepare for a stored version: its artifact compiles as it is; an upload is validated
   * and instrumented here, and the artifact made of it is stored for next time (best
   * effort: a failed write only costs the next load that work again).
   */
  async #prepareStored(name: string, version: number, stored: StoredVersion): Promise<{ loaded: LoadedModule; pool: InstancePool }> {
    if ("artifact" in stored) return this.#prepare(stored.artifact, version, "artifact");
    const artifact = await buildArtifact(stored.upload, this.#limits);
    const prepared = await this.#prepare(artifact, version, "upload");
    await this.#storeArtifact(name, version, artifact);
    return prepared;
  }

  /** Best effort: a failed write only costs the next load the work the artifact saves. */
  async #storeArtifact(name: string, version: number, artifact: ModuleArtifact): Promise<void> {
    await this.#store.modules.putArtifact(name, version, artifact).catch((err: unknown) => {
      log().warn({ module: name, version, err }, "could not store the module's artifact; the next load rebuilds it");
    });
  }

  /**
   * A stored artifact registered without compiling it: its services are routed at once and
   * the first call compiles and instantiates it (a cold start). It was validated, and its
   * start function run, when it was deployed; should it fail now, that first call fails.
   */
  #registerUncompiled(artifact: ModuleArtifact, version: number): { loaded: LoadedModule; pool: InstancePool } {
    const loaded = describeArtifact(artifact, version, this.#limits);
    this.#checkServiceOwnership(loaded);
    // A module that no longer compiles is this node's problem, not the caller's argument.
    const onFirstUse = <T>(compile: () => T) => (): T => {
      try {
        return compile();
      } catch (err) {
        log().error({ module: loaded.name, version, err }, "stored module failed to compile on its first call");
        throw new KeystateError("GUEST_TRAP", `module ${loaded.name} v${version} could not be compiled: ${(err as Error).message}`, { cause: err });
      }
    };
    const component = loaded.component;
    const lazy: LoadedModule = component ? { ...loaded, component: onFirstUse(component) } : loaded;
    return { loaded, pool: this.#newPool(lazy, onFirstUse(() => loaded.compiled)) };
  }

  #newPool(loaded: LoadedModule, compiled: () => WebAssembly.Module = () => loaded.compiled): InstancePool {
    const guestLog = (level: number, message: string): void => {
      log().info({ module: loaded.name, guestLevel: level }, message);
    };
    const component = loaded.component;
    return new InstancePool(component
      ? () => new ComponentInstance(component(), guestLog, loaded.limits)
      : () => new GuestInstance(compiled(), guestLog, loaded.limits));
  }

  /**
   * A pool for `loaded`, with one instance made at once: that proves the module's start
   * function runs (within its fuel and memory) before anything is stored or served.
   */
  #startPool(loaded: LoadedModule): InstancePool {
    const pool = this.#newPool(loaded);
    try {
      pool.release(pool.acquire());
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new KeystateError("INVALID_MODULE", `the module failed while starting: ${reason}`, { cause: err });
    }
    return pool;
  }

  #activate(loaded: LoadedModule, pool: InstancePool): void {
    const previous = this.#modules.get(loaded.name);
    const added: ServiceRuntime[] = [];
    for (const model of loaded.api.services.values()) {
      const runtime = serviceRuntime(loaded, model, pool, this.#guestObserver);
      this.#services.set(model.service, runtime);
      added.push(runtime);
    }
    const removed = previous ? [...previous.api.services.keys()].filter((name) => !loaded.api.services.has(name)) : [];
    for (const name of removed) this.#services.delete(name);
    this.#modules.set(loaded.name, loaded);
    this.#pools.get(loaded.name)?.retire();
    this.#pools.set(loaded.name, pool);
    for (const listener of this.#listeners) listener({ added, removed });
  }
}

function describe(module: LoadedModule): DeployedModule {
  return { name: module.name, version: module.version, hash: module.hash, size: module.size, services: [...module.api.services.keys()] };
}
