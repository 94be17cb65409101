// `keystate build` for modules written in C (module.json "language": "c"): .proto files +
// src/*.c + guest-sdk-c -> one core Wasm module, the same shape as the AssemblyScript path.
// Steps: buf compiles the protos; codegen-c.ts writes generated/{messages,handlers}.{h,c}
// into the module's folder; Debian's clang 14 compiles and wasm-ld links everything for
// wasm32 (string functions from wasi-libc, nothing that imports WASI); the descriptor set and
// the manifest are appended as custom sections.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import { delimiter, dirname, join } from "node:path";
import { decodeDescriptorSet } from "../proto/descriptors.js";
import { PROTO_DIR } from "../proto/proto-root.js";
import { ALLOWED_IMPORTS } from "../runtime/module-sections.js";
import { phaseTimer, writeModule, type BuildResult } from "./build-module.js";
import { compileProtos } from "./buf.js";
import { generateC } from "./codegen-c.js";
import type { ModuleConfig } from "./module-config.js";

/** guest-sdk-c at the repository root (next to proto/). */
export const C_SDK_DIR = join(dirname(PROTO_DIR), "guest-sdk-c");

/** The compiler: $KEYSTATE_CLANG, else Debian's clang-14. */
const CLANG = process.env.KEYSTATE_CLANG ?? "clang-14";
const TARGET = "--target=wasm32-wasi";
const STACK_BYTES = 64 * 1024;
const INSTALL_HINT = "apt-get install clang-14 lld-14 libclang-rt-14-dev-wasm32 wasi-libc (or run scripts/ensure-system-deps.sh as root)";

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * clang, when optimising for wasm32, runs the first `wasm-opt` on PATH over its output: the
 * same build was 38.3 KB from a shell and 35.4 KB under `npm run` (which puts
 * node_modules/.bin first). binaryen's own wasm-opt goes first on clang's PATH, so a build
 * does not depend on how it was started.
 */
function toolPath(): string {
  const current = process.env.PATH ?? "";
  try {
    const binaryenBin = join(dirname(createRequire(import.meta.url).resolve("binaryen/package.json")), "bin");
    return `${binaryenBin}${delimiter}${current}`;
  } catch {
    return current; // binaryen not installed (production install): whatever wasm-opt PATH has, if any
  }
}

function run(command: string, args: readonly string[]): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    execFile(command, args, { maxBuffer: 16 * 1024 * 1024, env: { ...process.env, PATH: toolPath() } }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === "ENOENT") {
        reject(new Error(`building a C module needs ${command}, which is not installed: ${INSTALL_HINT}`));
        return;
      }
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolveRun({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

let toolchainChecked: Promise<void> | undefined;

/**
 * Checks, once per process, that clang can target wasm32: the compiler itself, wasm-ld,
 * the wasm32 compiler-rt builtins and wasi-libc. Throws naming the Debian package to install.
 */
export function checkCToolchain(): Promise<void> {
  toolchainChecked ??= (async () => {
    const version = await run(CLANG, ["--version"]);
    if (version.code !== 0) throw new Error(`${CLANG} --version failed: ${version.stderr.trim()}; ${INSTALL_HINT}`);
    const missing: string[] = [];
    // Debian's clang-14 runs wasm-ld-14; other clangs run wasm-ld. -print-prog-name answers a path only when it finds one.
    let linker = false;
    for (const name of ["wasm-ld-14", "wasm-ld"]) {
      const path = (await run(CLANG, [TARGET, `-print-prog-name=${name}`])).stdout.trim();
      if (path.startsWith("/") && existsSync(path)) linker = true;
    }
    if (!linker) missing.push("wasm-ld (Debian package lld-14)");
    const rt = (await run(CLANG, [TARGET, "-print-libgcc-file-name"])).stdout.trim();
    if (!rt || !existsSync(rt)) missing.push(`the wasm32 compiler-rt ${rt || "builtins"} (Debian package libclang-rt-14-dev-wasm32)`);
    const libc = (await run(CLANG, [TARGET, "-print-file-name=libc.a"])).stdout.trim();
    if (!libc || !existsSync(libc)) missing.push("wasi-libc's libc.a (Debian package wasi-libc)");
    if (missing.length) throw new Error(`building a C module needs ${missing.join(", ")}: ${INSTALL_HINT}`);
  })();
  toolchainChecked.catch(() => {
    toolchainChecked = undefined;
  });
  return toolchainChecked;
}

export async function buildCModule(dir: string, config: ModuleConfig, options: { outFile?: string }): Promise<BuildResult> {
  const { timingsMs, time } = phaseTimer();
  await time("toolchain", () => checkCToolchain());
  const descriptorBytes = await time("protos", () => compileProtos({ roots: [join(dir, "proto"), PROTO_DIR], files: config.protos }));
  const generatedDir = join(dir, "generated");
  await time("codegen", async () => {
    const generated = generateC(decodeDescriptorSet(descriptorBytes), { files: config.protos, entities: config.entities });
    await mkdir(generatedDir, { recursive: true });
    await writeFile(join(generatedDir, "messages.h"), generated.messagesH);
    await writeFile(join(generatedDir, "messages.c"), generated.messagesC);
    await writeFile(join(generatedDir, "handlers.h"), generated.handlersH);
    await writeFile(join(generatedDir, "handlers.c"), generated.handlersC);
  });
  const srcDir = join(dir, "src");
  const own = existsSync(srcDir) ? (await readdir(srcDir)).filter((f) => f.endsWith(".c")).sort().map((f) => join(srcDir, f)) : [];
  if (own.length === 0) throw new Error(`${srcDir} has no .c files: a C module's handlers go in src/*.c`);
  const sdkSources = (await readdir(join(C_SDK_DIR, "src"))).filter((f) => f.endsWith(".c")).sort().map((f) => join(C_SDK_DIR, "src", f));
  const code = await time("clang", () =>
    compileC([...own, join(generatedDir, "messages.c"), join(generatedDir, "handlers.c"), ...sdkSources], {
      includes: [generatedDir, join(C_SDK_DIR, "include"), srcDir],
      maxMemoryMb: config.limits?.maxMemoryMb,
    }),
  );
  checkImports(code);
  return writeModule(dir, config, code, descriptorBytes, options, timingsMs);
}

/** Compiles and links `sources` into a reactor-style core module (no _start, exports from the SDK). */
async function compileC(sources: readonly string[], options: { includes: readonly string[]; maxMemoryMb?: number | undefined }): Promise<Uint8Array<ArrayBuffer>> {
  const work = await mkdtemp(join(tmpdir(), "keystate-c-"));
  try {
    const out = join(work, "module.wasm");
    const args = [
      TARGET,
      "-std=c11",
      "-O2",
      "-Wall",
      "-Werror=implicit-function-declaration",
      "-Werror=incompatible-pointer-types",
      "-Werror=int-conversion",
      "-Werror=return-type",
      "-fno-exceptions",
      "-ffunction-sections",
      "-fdata-sections",
      "-fdiagnostics-color=never",
      ...options.includes.map((i) => `-I${i}`),
      "-nostartfiles",
      "-Wl,--no-entry",
      "-Wl,--gc-sections",
      "-Wl,--strip-all",
      // The stack below the data: an overflow traps instead of overwriting globals.
      "-Wl,--stack-first",
      `-Wl,-z,stack-size=${STACK_BYTES}`,
      ...(options.maxMemoryMb ? [`-Wl,--max-memory=${options.maxMemoryMb * 1024 * 1024}`] : []),
      "-o",
      out,
      ...sources,
    ];
    const result = await run(CLANG, args);
    if (result.code !== 0) throw new Error(`C compilation failed (${CLANG}):\n${(result.stderr || result.stdout).trim()}`);
    return new Uint8Array(await readFile(out));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Refuses a module that imports anything the host does not provide (e.g. a libc function that needs WASI). */
function checkImports(code: Uint8Array<ArrayBuffer>): void {
  const imports = WebAssembly.Module.imports(new WebAssembly.Module(code));
  const bad = imports.filter((i) => i.kind !== "function" || !ALLOWED_IMPORTS.has(`${i.module}.${i.name}`));
  if (bad.length) {
    throw new Error(
      `the C module imports ${bad.map((i) => `${i.module}.${i.name}`).join(", ")}, which Keystate does not provide ` +
        `(allowed: ${[...ALLOWED_IMPORTS].join(", ")}); a libc function that needs WASI (stdio, time, files, exit) cannot be used`,
    );
  }
}
