// Temporary directories that a test owns and that are removed when it ends.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ExecutionContext } from "ava";

/** Creates a fresh directory under the OS temp dir; the caller removes it. */
export function makeTempDir(label: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `keystate-${label}-`));
}

export function removeDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}

/** A directory removed after the test `t` finishes, whether it passed or not. */
export async function tempDirFor(t: ExecutionContext, label: string): Promise<string> {
  const dir = await makeTempDir(label);
  t.teardown(() => removeDir(dir));
  return dir;
}
