// Subscriptions a module declares (module.json "subscriptions", manifest field 5): checked
// against the module's own API when it is deployed, so a subscription that could never be
// delivered is refused at upload with a message that says why, not dead-lettered later.
import { KeystateError } from "../errors.js";
import type { Manifest } from "../runtime/module-sections.js";
import type { ApiModel } from "../runtime/service-model.js";

/** A declared subscription, as the manifest carries it (protobufjs toObject with defaults). */
export interface SubscriptionManifest {
  /** Set for a topic subscription (and eventLog empty). */
  readonly topic: string;
  /** Set for an event-log subscription: the persistence id of an event-sourced entity type. */
  readonly eventLog: string;
  /** Fully qualified service of the same module that handles the messages. */
  readonly service: string;
  /** Topics: the handling method. Event logs: empty (dispatch by the event's type). */
  readonly method: string;
  /** Deliveries of one message before it is dead-lettered; 0 = DEFAULT_MAX_ATTEMPTS. */
  readonly maxAttempts: number;
  /** A new subscription starts at the oldest retained message (true) or the next one. */
  readonly fromStart: boolean;
}

/** How many times a message is delivered before it goes to the dead-letter stream, when the module does not say. */
export const DEFAULT_MAX_ATTEMPTS = 5;

/** Topic names: what a stream key and a CloudEvents `source` can carry without escaping surprises. */
export const TOPIC_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Throws INVALID_MODULE when a subscription of `manifest` names something `api` does not serve. */
export function checkSubscriptions(manifest: Manifest, api: ApiModel): void {
  const seen = new Set<string>();
  for (const [i, sub] of (manifest.subscriptions ?? []).entries()) {
    const where = `subscription ${i + 1} (${sub.topic ? `topic ${sub.topic}` : `event log ${sub.eventLog}`} -> ${sub.service}${sub.method ? `/${sub.method}` : ""})`;
    if (Boolean(sub.topic) === Boolean(sub.eventLog)) {
      throw new KeystateError("INVALID_MODULE", `${where}: set exactly one of "topic" and "eventLog"`);
    }
    if (sub.topic && !TOPIC_NAME.test(sub.topic)) {
      throw new KeystateError("INVALID_MODULE", `${where}: a topic name is 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit`);
    }
    const service = api.services.get(sub.service);
    if (!service) throw new KeystateError("INVALID_MODULE", `${where}: the module serves no service ${sub.service}`);
    if (sub.topic) {
      const method = service.methods.get(sub.method);
      if (!method) throw new KeystateError("INVALID_MODULE", `${where}: ${sub.service} has no method "${sub.method}"`);
      if (method.clientStreaming || method.serverStreaming) throw new KeystateError("INVALID_MODULE", `${where}: a subscriber method must be unary`);
    } else if (sub.method) {
      throw new KeystateError("INVALID_MODULE", `${where}: an event-log subscription names no method (each event goes to the method that takes its type)`);
    }
    // One method may consume several topics (each topic keeps its own group under the same name), not one topic twice.
    const id = `${sub.topic}|${sub.eventLog}|${subscriptionId(manifest.name, sub)}`;
    if (seen.has(id)) throw new KeystateError("INVALID_MODULE", `${where}: declared twice`);
    seen.add(id);
  }
}

/**
 * A subscription's durable name (its consumer group, its offsets, its dead-letter stream):
 * stable across versions of the module, so a redeploy resumes where the last version stopped.
 */
export function subscriptionId(moduleName: string, sub: Pick<SubscriptionManifest, "service" | "method">): string {
  return `${moduleName}/${sub.service}${sub.method ? `/${sub.method}` : ""}`;
}
