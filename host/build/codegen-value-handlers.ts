// The generated base class of a value (key-value) entity: one abstract handler per rpc
// taking the command, the current value and a ValueContext, plus the dispatch chain.
import type { IServiceDescriptorProto } from "protobufjs/ext/descriptor.js";
import { classResolver, dispatchBody, rpcMethods, unaryOnly, type GeneratedBase, type HandlerCodegenInput } from "./codegen-handler-parts.js";
import type { EntityConfig } from "./module-config.js";

export function valueBase(entity: EntityConfig, service: IServiceDescriptorProto, input: HandlerCodegenInput, used: Set<string>): GeneratedBase {
  if (!entity.state) throw new Error(`service ${entity.service} (value) needs "state" in module.json: the message its value is stored as`);
  const cls = classResolver(entity, input, used);
  const state = cls(entity.state);
  const ctx = `ValueContext<${state}>`;
  const { unary, notes } = unaryOnly(rpcMethods(service, cls), "value entities");
  const lines: string[] = [];
  lines.push(`/** Extend this to implement ${entity.service} (value entity, state ${state}). */`);
  lines.push(`export abstract class ${service.name}Entity extends ValueEntity<${state}> {`);
  lines.push(`  serviceName(): string {`, `    return "${entity.service}";`, `  }`, "");
  if (notes.length > 0) lines.push(...notes, "");
  for (const m of unary) {
    lines.push(`  /** rpc ${m.rpc}. Return the reply, or call ctx.fail() and return null. ctx.updateState() / ctx.deleteState() change the stored value. */`);
    lines.push(`  abstract ${m.handler}(command: ${m.input}, state: ${state}, ctx: ${ctx}): ${m.output} | null;`, "");
  }
  lines.push(`  dispatch(method: string, payload: Uint8Array, state: ${state}, ctx: ${ctx}): Message | null {`);
  lines.push(...dispatchBody(entity.service, unary, "command, state, ctx"), `}`, "");
  return { source: lines.join("\n"), sdkNames: ["Message", "Status", "ValueContext", "ValueEntity", "decode"] };
}
