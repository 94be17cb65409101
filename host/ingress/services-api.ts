// GET /api/services (admin token): every served service with its kind, module version and
// methods, each method with a JSON template of its request. The console's Call page needs
// this to offer methods and prefill their requests; gRPC reflection has the same facts,
// but a browser cannot speak gRPC.
import { messageTemplate } from "../proto/message-template.js";
import type { LoadedModule } from "../runtime/loaded-module.js";
import { EntityKind } from "../runtime/module-sections.js";

export interface MethodDescription {
  readonly name: string;
  readonly inputType: string;
  readonly outputType: string;
  readonly clientStreaming: boolean;
  readonly serverStreaming: boolean;
  /** The request message with every field at its default, under its proto3 JSON name. */
  readonly requestTemplate: Record<string, unknown>;
}

export interface ServiceDescription {
  readonly service: string;
  readonly kind: "event-sourced" | "value" | "replicated" | "action";
  readonly module: { readonly name: string; readonly version: number };
  readonly methods: readonly MethodDescription[];
}

/** The names module.json uses (host/build/module-config.ts), which is how people know the kinds. */
const KIND_NAMES: Readonly<Record<number, ServiceDescription["kind"]>> = {
  [EntityKind.EVENT_SOURCED]: "event-sourced",
  [EntityKind.VALUE]: "value",
  [EntityKind.REPLICATED]: "replicated",
  [EntityKind.ACTION]: "action",
};

/** The services of the loaded modules, sorted by name (methods in their .proto order). */
export function describeServices(modules: readonly LoadedModule[]): ServiceDescription[] {
  const described: ServiceDescription[] = [];
  for (const module of modules) {
    for (const service of module.api.services.values()) {
      described.push({
        service: service.service,
        kind: KIND_NAMES[service.kind] ?? "action",
        module: { name: module.name, version: module.version },
        methods: [...service.methods.values()].map((method) => ({
          name: method.name,
          inputType: method.inputType,
          outputType: method.outputType,
          clientStreaming: method.clientStreaming,
          serverStreaming: method.serverStreaming,
          requestTemplate: messageTemplate(module.api.descriptors, method.inputType),
        })),
      });
    }
  }
  return described.sort((a, b) => a.service.localeCompare(b.service));
}
