// Takes the README's picture of the console's Overview: starts `keystate dev-cluster` (its
// own redis-server and three nodes, so the shard picture has three owners), sends some
// traffic at node-1 so the charts have lines, signs in with Chromium and saves the page.
//
//   npm run build && npm run build:examples && node --import=tsx scripts/console-screenshot.ts [--out docs/console-overview.png] [--seconds 20]
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { launchChromium } from "../test/helpers/chromium.js";
import { KEYSTATE_BIN, REPO_ROOT } from "../test/helpers/node-process.js";

const { values: flags } = parseArgs({
  options: {
    out: { type: "string", default: join(REPO_ROOT, "docs", "console-overview.png") },
    seconds: { type: "string", default: "20" },
  },
});

const CART = "keystate.examples.shoppingcart.ShoppingCart";
const COUNTER = "keystate.examples.counter.Counter";

interface Cluster {
  readonly httpUrl: string;
  readonly token: string;
  stop(): Promise<void>;
}

/** Starts dev-cluster and reads node-1's HTTP port and the admin token from its summary. */
async function startDevCluster(): Promise<Cluster> {
  const child = spawn(process.execPath, [KEYSTATE_BIN, "dev-cluster", "--nodes", "3"], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const found = await new Promise<{ port: string; token: string }>((resolve, reject) => {
    let port: string | undefined;
    const timer = setTimeout(() => reject(new Error("dev-cluster did not print its summary within 60 s")), 60_000);
    child.once("exit", (code) => reject(new Error(`dev-cluster exited with ${code} before it was ready`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      port ??= /^\s+node-1\s.*HTTP 127\.0\.0\.1:(\d+)/.exec(line)?.[1];
      const token = /^Admin token: (\S+)/.exec(line)?.[1];
      if (token && port) {
        clearTimeout(timer);
        resolve({ port, token });
      }
    });
  });
  return {
    httpUrl: `http://127.0.0.1:${found.port}`,
    token: found.token,
    async stop() {
      child.kill("SIGINT"); // dev-cluster stops its nodes and Redis and removes its data
      await exited;
    },
  };
}

/** Calls at a few rates per service until `until()` says stop, so each gets its own line. */
async function traffic(base: string, until: () => boolean): Promise<void> {
  const post = (path: string, body: unknown) => fetch(`${base}/${path}`, { method: "POST", body: JSON.stringify(body) }).then((r) => r.arrayBuffer());
  const loop = async (every: number, call: (i: number) => Promise<unknown>) => {
    for (let i = 0; !until(); i++) {
      await call(i).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, every));
    }
  };
  await Promise.all([
    loop(20, (i) => post(`${CART}/GetCart`, { userId: `user-${i % 50}` })),
    loop(60, (i) => post(`${CART}/AddItem`, { userId: `user-${i % 50}`, productId: `p-${i % 7}`, name: "Thing", quantity: 1 })),
    loop(40, (i) => post(`${COUNTER}/Increase`, { counterId: `c-${i % 20}`, value: "1" })),
  ]);
}

const cluster = await startDevCluster();
const browser = await launchChromium();
let stopped = false;
try {
  const load = traffic(cluster.httpUrl, () => stopped);
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  await page.goto(`${cluster.httpUrl}/console`);
  await page.getByLabel("Admin token").fill(cluster.token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("svg.shard-grid").waitFor({ timeout: 15_000 });
  // Long enough for the charts to show a history (one point every 2 s).
  await page.waitForTimeout(Number(flags.seconds) * 1000);
  await page.screenshot({ path: flags.out, fullPage: true });
  stopped = true;
  await load;
  console.log(`saved ${flags.out}`);
} finally {
  stopped = true;
  await browser.close();
  await cluster.stop();
}
