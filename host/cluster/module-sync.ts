// Modules everywhere: a deploy, rollback or undeploy on any node takes effect on every node.
// The module store (in Redis) is the truth; the node that changed a module publishes a
// notice and every other node loads what the store says is active. A periodic reconcile
// catches notices a node missed (it was restarting, or Redis dropped the connection).
import type { ModuleStore } from "../journal/types.js";
import { log } from "../log.js";
import type { ModuleRegistry } from "../runtime/module-registry.js";

export class ModuleSync {
  #reconciling: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly registry: ModuleRegistry,
    private readonly modules: ModuleStore,
  ) {}

  /** Reconciles every `intervalMs` from now on. */
  start(intervalMs: number): void {
    this.#timer = setInterval(() => void this.reconcile(), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Loads what the store says is active for `name` (a notice from another node). */
  async sync(name: string): Promise<void> {
    try {
      const summary = (await this.modules.list()).find((m) => m.name === name);
      await this.registry.follow(name, summary?.activeVersion);
    } catch (err) {
      log().warn({ module: name, err }, "could not load a module another node changed; the next reconcile retries");
    }
  }

  /** Brings every module to the store's active version; one at a time, never two reconciles at once. */
  reconcile(): Promise<void> {
    this.#reconciling ??= this.#reconcile().finally(() => (this.#reconciling = undefined));
    return this.#reconciling;
  }

  async #reconcile(): Promise<void> {
    let summaries;
    try {
      summaries = await this.modules.list();
    } catch {
      return; // Redis away: the lease logic reports that; modules stay as they are.
    }
    const stored = new Set(summaries.map((s) => s.name));
    for (const summary of summaries) {
      await this.registry.follow(summary.name, summary.activeVersion).catch((err: unknown) => {
        log().warn({ module: summary.name, err }, "could not load a module version from the cluster");
      });
    }
    for (const module of this.registry.modules) {
      if (!stored.has(module.name)) await this.registry.follow(module.name, undefined);
    }
  }
}
