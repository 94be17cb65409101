// The generated base class of a replicated (CRDT) entity: one abstract handler per rpc
// taking the command, the entity's CRDT (typed by module.json "crdt") and a context —
// ReplicatedContext for unary rpcs, StreamContext for server-streaming ones, which are
// called back on start, on every state change and on cancellation — plus the dispatch chain.
import type { IServiceDescriptorProto } from "protobufjs/ext/descriptor.js";
import { stripLeadingDot } from "../proto/descriptors.js";
import { classResolver, dispatchBody, lowerFirst, type GeneratedBase, type HandlerCodegenInput, type RpcMethod } from "./codegen-handler-parts.js";
import { crdtTypeOf, type EntityConfig } from "./module-config.js";

export function replicatedBase(entity: EntityConfig, service: IServiceDescriptorProto, input: HandlerCodegenInput, used: Set<string>): GeneratedBase {
  // The SDK's CRDT classes are named like host/crdt's types.
  const crdt = crdtTypeOf(entity.crdt);
  if (!crdt) throw new Error(`service ${entity.service} (replicated) needs "crdt" in module.json`);
  const cls = classResolver(entity, input, used);
  const notes: string[] = [];
  const methods: Array<RpcMethod & { serverStreaming: boolean }> = [];
  for (const m of service.method ?? []) {
    if (m.clientStreaming) {
      notes.push(`  // rpc ${m.name} is client-streaming; no entity kind serves client streams, so it has no handler (the host answers UNIMPLEMENTED).`);
      continue;
    }
    methods.push({
      rpc: m.name ?? "",
      handler: lowerFirst(m.name ?? ""),
      input: cls(m.inputType ?? ""),
      inputFull: stripLeadingDot(m.inputType),
      output: cls(m.outputType ?? ""),
      streaming: false,
      serverStreaming: m.serverStreaming === true,
    });
  }
  const ctx = `StreamContext<${crdt}>`;
  const lines: string[] = [];
  lines.push(`/** Extend this to implement ${entity.service} (replicated entity on a ${crdt}). */`);
  lines.push(`export abstract class ${service.name}Entity extends ReplicatedEntity<${crdt}> {`);
  lines.push(`  serviceName(): string {`, `    return "${entity.service}";`, `  }`, "");
  if (notes.length > 0) lines.push(...notes, "");
  for (const m of methods) {
    if (m.serverStreaming) {
      lines.push(`  /** rpc ${m.rpc} (server streaming): called when the stream starts, each time the state changes, and when the client cancels (ctx.started / ctx.changed / ctx.cancelled). Return a message to send it, or null to stay silent; ctx.endStream() ends it. */`);
      lines.push(`  abstract ${m.handler}(command: ${m.input}, crdt: ${crdt}, ctx: ${ctx}): ${m.output} | null;`, "");
    } else {
      lines.push(`  /** rpc ${m.rpc}. Change the ${crdt} through its methods; return the reply, or call ctx.fail() and return null. */`);
      lines.push(`  abstract ${m.handler}(command: ${m.input}, crdt: ${crdt}, ctx: ReplicatedContext): ${m.output} | null;`, "");
    }
  }
  lines.push(`  dispatch(method: string, payload: Uint8Array, crdt: ${crdt}, ctx: ${ctx}): Message | null {`);
  lines.push(...dispatchBody(entity.service, methods, "command, crdt, ctx"), `}`, "");
  return { source: lines.join("\n"), sdkNames: [crdt, "Message", "ReplicatedContext", "ReplicatedEntity", "Status", "StreamContext", "decode"] };
}
