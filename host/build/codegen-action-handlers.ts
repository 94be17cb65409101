// The generated base class of a stateless action: one abstract handler per rpc taking
// the request and an ActionContext (no key, no state), plus the dispatch chain.
import type { IServiceDescriptorProto } from "protobufjs/ext/descriptor.js";
import { classResolver, dispatchBody, rpcMethods, unaryOnly, type GeneratedBase, type HandlerCodegenInput } from "./codegen-handler-parts.js";
import type { EntityConfig } from "./module-config.js";

export function actionBase(entity: EntityConfig, service: IServiceDescriptorProto, input: HandlerCodegenInput, used: Set<string>): GeneratedBase {
  const cls = classResolver(entity, input, used);
  const { unary, notes } = unaryOnly(rpcMethods(service, cls), "actions");
  const lines: string[] = [];
  lines.push(`/** Extend this to implement ${entity.service} (stateless action). */`);
  lines.push(`export abstract class ${service.name}Action extends Action {`);
  lines.push(`  serviceName(): string {`, `    return "${entity.service}";`, `  }`, "");
  if (notes.length > 0) lines.push(...notes, "");
  for (const m of unary) {
    lines.push(`  /** rpc ${m.rpc}. Return the reply, or call ctx.fail() and return null. */`);
    lines.push(`  abstract ${m.handler}(request: ${m.input}, ctx: ActionContext): ${m.output} | null;`, "");
  }
  lines.push(`  dispatch(method: string, payload: Uint8Array, ctx: ActionContext): Message | null {`);
  lines.push(...dispatchBody(entity.service, unary, "command, ctx"), `}`, "");
  return { source: lines.join("\n"), sdkNames: ["Action", "ActionContext", "Message", "Status", "decode"] };
}
