// Turns an entity module's .proto files into a serialized google.protobuf.FileDescriptorSet
// by running the `buf` CLI that ships in the @bufbuild/buf npm package.
//
// buf wants one workspace whose modules do not overlap, while our import roots are
// unrelated directories (the module's folder, the repo's proto/). So the .proto files of
// every root are copied into one temporary tree, first root winning on a clash, like
// `protoc -I a -I b`. Only the module's own files are targeted (--path), so unrelated
// files in the tree are never parsed; buf adds their imports to the output itself.
import { spawn } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, posix, relative, resolve, sep } from "node:path";

export interface CompileProtosOptions {
  /** Directories holding .proto files, searched in order (e.g. [moduleDir, "<repo>/proto"]). */
  roots: string[];
  /** The module's own .proto files, relative to roots[0]. */
  files: string[];
}

// buf provides the well-known types itself; a vendored copy would clash with them.
const BUF_PROVIDED = "google/protobuf/";
// Never worth descending into: dependencies and tool output with stray protos.
const SKIP_DIRS = new Set(["node_modules", "build", "dist"]);

/** Compiles the files with buf; the result includes every imported file. */
export async function compileProtos(options: CompileProtosOptions): Promise<Uint8Array> {
  if (options.roots.length === 0) throw new Error("compileProtos: at least one root directory is required");
  if (options.files.length === 0) throw new Error("compileProtos: no .proto files given");
  const targets = options.files.map((f) => toProtoPath(f));
  const workDir = await mkdtemp(join(tmpdir(), "keystate-buf-"));
  try {
    const tree = join(workDir, "src");
    const origins = new Map<string, string>(); // proto path -> file it was copied from
    for (const root of options.roots) await copyProtos(resolve(root), tree, origins);
    for (const t of targets) {
      const expected = resolve(options.roots[0]!, t);
      if (origins.get(t) !== expected) {
        throw new Error(`compileProtos: ${expected} does not exist (files are relative to ${resolve(options.roots[0]!)})`);
      }
    }
    // A buf.yaml of our own makes `tree` the workspace root, so buf never picks up a
    // stray buf.yaml from a parent of the temp dir.
    await writeFile(join(tree, "buf.yaml"), "version: v2\n");
    const out = join(workDir, "set.binpb");
    const args = ["build", "."];
    for (const t of targets) args.push("--path", t);
    args.push("--as-file-descriptor-set", "--exclude-source-info", "-o", out);
    const { code, stderr } = await runBuf(args, tree);
    if (code !== 0) {
      throw new Error(`buf could not compile ${targets.join(", ")}:\n${pointAtSources(stderr, origins)}`);
    }
    return new Uint8Array(await readFile(out));
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

// Normalizes a caller's relative path to the slash-separated form buf and imports use.
function toProtoPath(file: string): string {
  const p = posix.normalize(file.split(sep).join("/"));
  if (p.startsWith("../") || posix.isAbsolute(p) || !p.endsWith(".proto")) {
    throw new Error(`compileProtos: "${file}" must be a .proto path relative to the first root`);
  }
  return p;
}

async function copyProtos(root: string, tree: string, origins: Map<string, string>): Promise<void> {
  const info = await stat(root).catch(() => null);
  if (!info?.isDirectory()) throw new Error(`compileProtos: root ${root} is not a directory`);
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const abs = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!entry.name.startsWith(".") && !SKIP_DIRS.has(entry.name)) await walk(abs);
        continue;
      }
      if (!entry.isFile() || !entry.name.endsWith(".proto")) continue;
      const protoPath = relative(root, abs).split(sep).join("/");
      if (protoPath.startsWith(BUF_PROVIDED) || origins.has(protoPath)) continue;
      origins.set(protoPath, abs);
      const dest = join(tree, protoPath);
      await mkdir(dirname(dest), { recursive: true });
      await copyFile(abs, dest);
    }
  };
  await walk(root);
}

// buf reports "path/in/tree.proto:line:col:message"; name the author's real file instead.
function pointAtSources(stderr: string, origins: Map<string, string>): string {
  return stderr
    .trim()
    .split("\n")
    .map((line) => {
      const colon = line.indexOf(":");
      const source = colon > 0 ? origins.get(line.slice(0, colon)) : undefined;
      return source ? source + line.slice(colon) : line;
    })
    .join("\n");
}

function bufBinScript(): string {
  return createRequire(import.meta.url).resolve("@bufbuild/buf/bin/buf");
}

// The package's bin entry is a small Node script that finds the platform binary and
// forwards stdio, so it runs the same on every platform buf publishes for.
function runBuf(args: string[], cwd: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [bufBinScript(), ...args], { cwd, stdio: ["ignore", "ignore", "pipe"] });
    const chunks: Buffer[] = [];
    child.stderr.on("data", (c: Buffer) => chunks.push(c));
    child.on("error", reject);
    child.on("close", (code) => resolveRun({ code: code ?? 1, stderr: Buffer.concat(chunks).toString("utf8") }));
  });
}
