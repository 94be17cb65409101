// The Restate peer's service: a virtual-object counter written with Restate's TypeScript
// SDK (installed on demand in bench/.peers, so it is loaded by path, not imported by
// name: the project itself does not depend on it). Usage: restate-counter.ts <port>.
// Prints {"ready":true,"port":N} once its endpoint listens.
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { PEERS_DIR } from "../lib/paths.js";

// Restate's SDK 1.17 calls Promise.withResolvers, which Node 20 lacks.
const P = Promise as unknown as { withResolvers?: () => unknown };
P.withResolvers ??= () => {
  let resolve!: (value: unknown) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

/** The slice of the SDK this file uses (its own types live in bench/.peers). */
interface ObjectContext {
  get<T>(name: string): Promise<T | null>;
  set<T>(name: string, value: T): void;
}
interface RestateSdk {
  object(definition: { name: string; handlers: Record<string, (ctx: ObjectContext, input: number) => Promise<number>> }): unknown;
  endpoint(): { bind(service: unknown): { listen(port: number): Promise<number> } };
}

const port = Number(process.argv[2] ?? 9080);
const require = createRequire(join(PEERS_DIR, "package.json"));
const sdk = (await import(pathToFileURL(require.resolve("@restatedev/restate-sdk")).href)) as RestateSdk;

const counter = sdk.object({
  name: "counter",
  handlers: {
    // The same logic as Keystate's Counter/Increase: read, add, store, reply the new value.
    async add(ctx, delta) {
      const value = ((await ctx.get<number>("count")) ?? 0) + delta;
      ctx.set("count", value);
      return value;
    },
    async get(ctx) {
      return (await ctx.get<number>("count")) ?? 0;
    },
  },
});

await sdk.endpoint().bind(counter).listen(port);
process.stdout.write(JSON.stringify({ ready: true, port }) + "\n");
