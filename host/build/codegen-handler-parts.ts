// Pieces every kind's generated handler base class shares: resolving message names to
// generated classes, the list of rpcs, and the dispatch chain that decodes a command
// and calls its typed handler.
import type { IServiceDescriptorProto } from "protobufjs/ext/descriptor.js";
import type { DescriptorIndex } from "../proto/descriptors.js";
import { stripLeadingDot } from "../proto/descriptors.js";
import type { EntityConfig } from "./module-config.js";

export interface HandlerCodegenInput {
  readonly index: DescriptorIndex;
  readonly entities: readonly EntityConfig[];
  /** Fully qualified message name -> generated AssemblyScript class name. */
  readonly classNames: ReadonlyMap<string, string>;
  /** Import specifiers for the SDK and the generated messages file. */
  readonly sdkImport: string;
  readonly messagesImport: string;
}

/** What one kind's generator returns: the class source and the SDK names it uses. */
export interface GeneratedBase {
  readonly source: string;
  readonly sdkNames: readonly string[];
}

export interface RpcMethod {
  readonly rpc: string;
  /** The handler method name: the rpc name in lowerCamelCase. */
  readonly handler: string;
  readonly input: string;
  readonly inputFull: string;
  readonly output: string;
  readonly streaming: boolean;
}

/** Returns a function mapping a message's full name to its generated class, recording it in `used` (for the import). */
export function classResolver(entity: EntityConfig, input: HandlerCodegenInput, used: Set<string>): (fullName: string) => string {
  return (fullName) => {
    const name = input.classNames.get(stripLeadingDot(fullName));
    if (!name) throw new Error(`service ${entity.service}: no generated class for message ${fullName}`);
    used.add(name);
    return name;
  };
}

export function rpcMethods(service: IServiceDescriptorProto, cls: (fullName: string) => string): RpcMethod[] {
  return (service.method ?? []).map((m) => {
    const streaming = m.clientStreaming === true || m.serverStreaming === true;
    return {
      rpc: m.name ?? "",
      handler: lowerFirst(m.name ?? ""),
      // Streaming methods get no handler, so their message classes are not imported.
      input: streaming ? "" : cls(m.inputType ?? ""),
      inputFull: stripLeadingDot(m.inputType),
      output: streaming ? "" : cls(m.outputType ?? ""),
      streaming,
    };
  });
}

/**
 * The body of a generated `dispatch`: decode the payload of `method` into its input
 * class (INVALID_ARGUMENT when it does not decode), then call the typed handler with
 * `args`; an unknown method is UNIMPLEMENTED.
 */
export function dispatchBody(serviceName: string, methods: readonly RpcMethod[], args: string): string[] {
  const lines: string[] = [];
  for (const m of methods) {
    lines.push(`    if (method == "${m.rpc}") {`);
    lines.push(`      const command = decode<${m.input}>(payload);`);
    lines.push(`      if (command == null) {`);
    lines.push(`        ctx.fail(Status.INVALID_ARGUMENT, "the request is not a valid ${m.inputFull}");`);
    lines.push(`        return null;`, `      }`);
    lines.push(`      return this.${m.handler}(${args});`, `    }`);
  }
  lines.push(`    ctx.fail(Status.UNIMPLEMENTED, "${serviceName} has no method " + method);`, `    return null;`, `  }`);
  return lines;
}

/** Kinds that serve unary calls only: streaming rpcs get no handler; the host answers them UNIMPLEMENTED. */
export function unaryOnly(methods: readonly RpcMethod[], kindLabel: string): { unary: RpcMethod[]; notes: string[] } {
  const unary = methods.filter((m) => !m.streaming);
  const notes = methods
    .filter((m) => m.streaming)
    .map((m) => `  // rpc ${m.rpc} is streaming; ${kindLabel} serve unary calls only, so it has no handler (the host answers UNIMPLEMENTED).`);
  return { unary, notes };
}

export function lowerFirst(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}
