// The two shopping carts behind one contract (modules/shopping-cart/proto/shoppingcart.proto):
// the AssemblyScript one and the C one (guest-sdk-c). The cart acceptance tests run over both.
// Both own keystate.examples.shoppingcart.ShoppingCart, so each runs on a node of its own.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { KEYSTATE_BIN, REPO_ROOT } from "./node-process.js";
import { exampleWasm } from "./deployed-node.js";

const run = promisify(execFile);

export interface CartModule {
  /** The module's name and folder under modules/. */
  readonly module: string;
  /** The language the handlers are written in, for test titles. */
  readonly language: "AssemblyScript" | "C";
}

export const CART_MODULES: readonly CartModule[] = [
  { module: "shopping-cart", language: "AssemblyScript" },
  { module: "shopping-cart-c", language: "C" },
];

/** The contract .proto folder both carts share. */
export const CART_PROTO_DIR = join(REPO_ROOT, "modules", "shopping-cart", "proto");

const builds = new Map<string, Promise<string>>();

/**
 * The cart's .wasm: the one `npm run build:examples` wrote, else built now with the CLI.
 * A build that fails (e.g. clang-14 missing for the C cart) rejects with the CLI's message,
 * so the test fails saying what is missing instead of being skipped.
 */
export function cartWasm(cart: CartModule): Promise<string> {
  let build = builds.get(cart.module);
  if (!build) {
    build = (async () => {
      const wasm = exampleWasm(cart.module);
      if (existsSync(wasm)) return wasm;
      try {
        await run(process.execPath, [KEYSTATE_BIN, "build", join(REPO_ROOT, "modules", cart.module)], { cwd: REPO_ROOT, timeout: 120_000 });
      } catch (err) {
        const e = err as { stderr?: string; message: string };
        throw new Error(`modules/${cart.module} does not build: ${(e.stderr || e.message).trim()}`);
      }
      if (!existsSync(wasm)) throw new Error(`keystate build modules/${cart.module} wrote no ${wasm}`);
      return wasm;
    })();
    builds.set(cart.module, build);
  }
  return build;
}
