// What gRPC server reflection answers from: every file descriptor of the deployed modules,
// kept as the exact bytes the module carries, indexed by file name, by the symbols it
// defines, and by the extensions it declares. Rebuilt (and swapped whole) on each deploy.
// What each file defines comes from the module's decoded descriptor set (same files, same
// order as its bytes), so nothing is decoded again here.
import type { IDescriptorProto, IFileDescriptorProto } from "protobufjs/ext/descriptor.js";
import { splitFiles } from "../proto/descriptors.js";
import type { LoadedModule } from "../runtime/loaded-module.js";

interface FileEntry {
  readonly bytes: Uint8Array;
  readonly dependencies: readonly string[];
}

export class ReflectionIndex {
  readonly #files = new Map<string, FileEntry>();
  /** Fully qualified symbol (no leading dot) -> file name. */
  readonly #symbols = new Map<string, string>();
  /** Extended message -> extension field number -> file name. */
  readonly #extensions = new Map<string, Map<number, string>>();
  readonly #services: readonly string[];

  /** `services`: the names of the services actually served (a descriptor set may define more). */
  constructor(modules: readonly LoadedModule[], services: readonly string[]) {
    this.#services = [...services].sort();
    // Sorted so that, when two modules carry a file of the same name, the same one wins every time.
    for (const module of [...modules].sort((a, b) => a.name.localeCompare(b.name))) {
      const files = splitFiles(module.descriptorBytes) ?? [];
      const decoded = module.api.descriptors.set.file ?? [];
      if (decoded.length !== files.length) {
        throw new Error(`module ${module.name}: its decoded API has ${decoded.length} files where its descriptor bytes have ${files.length}`);
      }
      files.forEach((bytes, i) => this.#addFile(bytes, decoded[i]!));
    }
  }

  get services(): readonly string[] {
    return this.#services;
  }

  /** The file and every file it depends on, transitively, the requested one first; undefined when unknown. */
  fileWithDependencies(name: string): Uint8Array[] | undefined {
    if (!this.#files.has(name)) return undefined;
    const order: string[] = [];
    const visit = (file: string) => {
      if (order.includes(file) || !this.#files.has(file)) return;
      order.push(file);
      for (const dep of this.#files.get(file)!.dependencies) visit(dep);
    };
    visit(name);
    return order.map((file) => this.#files.get(file)!.bytes);
  }

  fileOfSymbol(symbol: string): string | undefined {
    return this.#symbols.get(symbol.replace(/^\./, ""));
  }

  fileOfExtension(extendee: string, number: number): string | undefined {
    return this.#extensions.get(extendee.replace(/^\./, ""))?.get(number);
  }

  /** undefined when the message type is unknown (reflection answers NOT_FOUND). */
  extensionNumbersOf(typeName: string): number[] | undefined {
    const name = typeName.replace(/^\./, "");
    if (!this.#symbols.has(name)) return undefined;
    return [...(this.#extensions.get(name)?.keys() ?? [])].sort((a, b) => a - b);
  }

  #addFile(bytes: Uint8Array, file: IFileDescriptorProto): void {
    const name = file.name ?? "";
    if (this.#files.has(name)) return;
    this.#files.set(name, { bytes, dependencies: file.dependency ?? [] });
    const prefix = file.package ? `${file.package}.` : "";
    const define = (symbol: string) => {
      if (!this.#symbols.has(symbol)) this.#symbols.set(symbol, name);
    };
    for (const message of file.messageType ?? []) this.#addMessage(message, prefix, name, define);
    for (const enumType of file.enumType ?? []) define(prefix + (enumType.name ?? ""));
    for (const service of file.service ?? []) {
      const serviceName = prefix + (service.name ?? "");
      define(serviceName);
      for (const method of service.method ?? []) define(`${serviceName}.${method.name ?? ""}`);
    }
    for (const extension of file.extension ?? []) {
      define(prefix + (extension.name ?? ""));
      this.#addExtension(extension.extendee, extension.number, name);
    }
  }

  #addMessage(message: IDescriptorProto, prefix: string, fileName: string, define: (symbol: string) => void): void {
    const fullName = prefix + (message.name ?? "");
    define(fullName);
    for (const field of message.field ?? []) define(`${fullName}.${field.name ?? ""}`);
    for (const nested of message.nestedType ?? []) this.#addMessage(nested, `${fullName}.`, fileName, define);
    for (const enumType of message.enumType ?? []) define(`${fullName}.${enumType.name ?? ""}`);
    for (const extension of message.extension ?? []) {
      define(`${fullName}.${extension.name ?? ""}`);
      this.#addExtension(extension.extendee, extension.number, fileName);
    }
  }

  #addExtension(extendee: string | null | undefined, number: number | null | undefined, fileName: string): void {
    if (!extendee || !number) return;
    const key = extendee.replace(/^\./, "");
    const numbers = this.#extensions.get(key) ?? new Map<number, string>();
    if (!numbers.has(number)) numbers.set(number, fileName);
    this.#extensions.set(key, numbers);
  }
}
