// The operations console (GET /console on the admin port) in a real browser: Debian's
// Chromium driven by playwright-core, against a real `keystate serve` process with the
// examples deployed. Each test opens its own browser context and signs in like a person:
// overview, deploy by upload, activate and undeploy behind confirmations, a call from the
// Call page, the cart's state and ItemAdded event on the Inspect page, markup in an entity
// key shown as text, and a wrong token refused. Plus the console's HTTP headers (CSP) and
// GET /api/services, which the Call page is built from.
import test, { type ExecutionContext } from "ava";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { buildBeforeAll } from "../helpers/built-module.js";
import { launchChromium } from "../helpers/chromium.js";
import { deploy, ensureExample, fetchJson, postJson } from "../helpers/deployed-node.js";
import { REPO_ROOT, startNodeProcess, type NodeProcess } from "../helpers/node-process.js";
import { makeTempDir, removeDir } from "../helpers/temp-dir.js";

const TOKEN = "console-test-token";
const CART = "keystate.examples.shoppingcart.ShoppingCart";
const echoWasm = buildBeforeAll(test, join(REPO_ROOT, "test", "fixtures", "echo-action"));

let browser: Browser;
let node: NodeProcess;
let dataDir = "";
let base = "";

test.before(async () => {
  // The browser first: on a machine without Chromium every test fails at once, saying how to install it.
  browser = await launchChromium();
  for (const name of ["shopping-cart", "counter", "presence"]) {
    if ((await ensureExample(name)) === undefined) throw new Error(`example ${name} does not build (npm run build:examples)`);
  }
  dataDir = await makeTempDir("console");
  node = await startNodeProcess({ dataDir, extraArgs: ["--examples", "--admin-token", TOKEN] });
  base = node.adminUrl;
});

test.after.always(async () => {
  await browser?.close();
  await node?.kill();
  if (dataDir) await removeDir(dataDir);
});

interface ConsolePage {
  readonly page: Page;
  /** Dialogs (alert!), CSP violations and uncaught errors: every test ends with none. */
  readonly problems: string[];
}

/** A fresh browser context (empty sessionStorage) at /console<hash>. */
async function openConsole(t: ExecutionContext, hash = ""): Promise<ConsolePage> {
  const context = await browser.newContext();
  t.teardown(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const problems: string[] = [];
  page.on("dialog", (dialog) => {
    problems.push(`a ${dialog.type()} dialog opened: ${dialog.message()}`);
    void dialog.dismiss();
  });
  page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && /content security policy/i.test(message.text())) problems.push(`CSP: ${message.text()}`);
  });
  await page.goto(`${base}/console${hash}`);
  return { page, problems };
}

async function signIn(page: Page, token = TOKEN): Promise<void> {
  await page.getByLabel("Admin token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
}

async function signedIn(t: ExecutionContext, hash = ""): Promise<ConsolePage> {
  const opened = await openConsole(t, hash);
  await signIn(opened.page);
  await opened.page.getByRole("link", { name: "Overview" }).waitFor();
  return opened;
}

async function addItem(userId: string, productId: string, name: string, quantity: number): Promise<void> {
  const reply = await postJson(`${base}/${CART}/AddItem`, { userId, productId, name, quantity });
  if (reply.status !== 200) throw new Error(`AddItem answered ${reply.status}: ${JSON.stringify(reply.body)}`);
}

test.serial("the console is served with a strict CSP, nosniff, no referrer and the right content types", async (t) => {
  const expected: Array<[string, number, RegExp]> = [
    ["/console", 200, /^text\/html/],
    ["/console/", 200, /^text\/html/],
    ["/console/main.js", 200, /^text\/javascript/],
    ["/console/console.css", 200, /^text\/css/],
    ["/console/no-such-file.js", 404, /^text\/plain/],
    ["/console/..%2fpackage.json", 404, /^text\/plain/],
  ];
  for (const [path, status, type] of expected) {
    const response = await fetch(base + path);
    await response.arrayBuffer();
    t.is(response.status, status, path);
    t.regex(response.headers.get("content-type") ?? "", type, path);
    const csp = response.headers.get("content-security-policy") ?? "";
    for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"]) {
      t.true(csp.includes(directive), `${path}: ${directive} in ${csp}`);
    }
    t.false(/unsafe-inline|unsafe-eval/.test(csp), path);
    t.is(response.headers.get("x-content-type-options"), "nosniff", path);
    t.is(response.headers.get("referrer-policy"), "no-referrer", path);
  }
  // Only files of the built console: no declaration files, no source maps, nothing above it.
  const html = await (await fetch(`${base}/console`)).text();
  t.false(/<script>|style=/.test(html), "no inline script or style in the page");
  t.is((await fetch(`${base}/console/main.d.ts`)).status, 404);
  t.is((await fetch(`${base}/console`, { method: "POST" })).status, 405);
});

test.serial("GET /api/services needs the token and describes every method with a request template", async (t) => {
  t.is((await fetchJson(`${base}/api/services`)).status, 401);
  t.is((await fetchJson(`${base}/api/services`, { headers: { authorization: "Bearer wrong" } })).status, 401);
  const { status, body } = await fetchJson(`${base}/api/services`, { headers: { authorization: `Bearer ${TOKEN}` } });
  t.is(status, 200);
  const cart = (body as any[]).find((s) => s.service === CART);
  t.like(cart, { kind: "event-sourced", module: { name: "shopping-cart", version: 1 } });
  const addItem = cart.methods.find((m: any) => m.name === "AddItem");
  t.deepEqual(addItem, {
    name: "AddItem",
    inputType: "keystate.examples.shoppingcart.AddLineItem",
    outputType: "google.protobuf.Empty",
    clientStreaming: false,
    serverStreaming: false,
    requestTemplate: { userId: "", productId: "", name: "", quantity: 0 },
  });
  const counter = (body as any[]).find((s) => s.service === "keystate.examples.counter.Counter");
  t.like(counter.methods.find((m: any) => m.name === "Increase"), { requestTemplate: { counterId: "", value: "0" } });
  const presence = (body as any[]).find((s) => s.service === "keystate.examples.presence.Presence");
  t.like(presence, { kind: "replicated" });
  t.true(presence.methods.some((m: any) => m.serverStreaming));
});

test.serial("a wrong token is refused with a clear message and is not kept", async (t) => {
  const { page, problems } = await openConsole(t);
  await signIn(page, "not-the-token");
  const alert = page.getByRole("alert");
  await alert.waitFor();
  t.regex((await alert.textContent()) ?? "", /Wrong token.*401/);
  t.true(await page.getByLabel("Admin token").isVisible());
  t.is(await page.getByRole("link", { name: "Overview" }).count(), 0);
  t.is(await page.evaluate(() => sessionStorage.length), 0);
  t.deepEqual(problems, []);
});

test.serial("signs in; the overview shows a single node, the example modules and live call charts", async (t) => {
  const { page, problems } = await signedIn(t);
  t.false(page.url().includes(TOKEN), "the token is never in the URL");
  await page.getByText("Single node (embedded store)").waitFor();
  const modules = page.locator("table.modules-summary");
  for (const name of ["shopping-cart", "counter", "presence"]) await modules.getByRole("cell", { name, exact: true }).waitFor();
  // Calls while the page scrapes /metrics every 2 s: the calls/s chart gets a ShoppingCart line above zero.
  let calling = true;
  const traffic = (async () => {
    for (let i = 0; calling; i++) {
      await postJson(`${base}/${CART}/GetCart`, { userId: `overview-${i % 5}` });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  try {
    await page.waitForFunction((service) => {
      const item = document.querySelector(`figure.chart li[title="${service}"] .legend-value`);
      return item !== null && Number(item.textContent) > 0;
    }, CART, { timeout: 20_000 });
  } finally {
    calling = false;
    await traffic;
  }
  const p99 = page.locator("figure.chart", { hasText: "p99 latency" }).locator(`li[title="${CART}"]`);
  t.regex((await p99.textContent()) ?? "", /ShoppingCart .*ms/);
  t.deepEqual(problems, []);
});

test.serial("deploys a module by upload, activates an older version and undeploys, each after confirming", async (t) => {
  const { page, problems } = await signedIn(t, "#/modules");
  await page.getByRole("heading", { name: "Deployed modules" }).waitFor();
  const dialog = page.getByRole("dialog");

  await page.locator("#module-file").setInputFiles(echoWasm());
  await page.getByRole("button", { name: "Deploy…" }).click();
  await dialog.waitFor();
  t.regex((await dialog.textContent()) ?? "", /echo-action\.wasm/);
  await dialog.getByRole("button", { name: "Deploy", exact: true }).click();
  await page.getByText("Deployed echo-action version 1").waitFor();
  const echo = page.locator('article[data-module="echo-action"]');
  await echo.getByText("keystate.test.echo.Echo", { exact: true }).waitFor();
  t.true(await echo.getByText("version 1 active").isVisible());

  // A second version (from the CLI), then back to the first from the console.
  await deploy(node, echoWasm());
  await page.reload();
  await echo.getByText("version 2 active").waitFor();
  await echo.getByRole("button", { name: "Activate version 1" }).click();
  await dialog.getByRole("button", { name: "Activate", exact: true }).click();
  await page.getByText("echo-action version 1 is active.").waitFor();
  await echo.getByText("version 1 active").waitFor();

  // Cancel leaves it deployed; confirming undeploys it.
  await echo.getByRole("button", { name: "Undeploy echo-action" }).click();
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await dialog.waitFor({ state: "detached" });
  const modules = await fetchJson(`${base}/modules`, { headers: { authorization: `Bearer ${TOKEN}` } });
  t.is(modules.body.modules.find((m: any) => m.name === "echo-action").version, 1);
  await echo.getByRole("button", { name: "Undeploy echo-action" }).click();
  await dialog.getByRole("button", { name: "Undeploy", exact: true }).click();
  await page.getByText("echo-action is undeployed.").waitFor();
  await echo.getByText("no active version").waitFor();
  t.deepEqual(problems, []);
});

test.serial("calls AddItem from the Call page with the prefilled request, and shows an error status", async (t) => {
  const { page, problems } = await signedIn(t, "#/call");
  await page.getByLabel("Service").selectOption(CART);
  await page.getByLabel("Method").selectOption("AddItem");
  const editor = page.getByLabel("Request (JSON)");
  t.deepEqual(JSON.parse(await editor.inputValue()), { userId: "", productId: "", name: "", quantity: 0 });
  await editor.fill(JSON.stringify({ userId: "ann", productId: "apple", name: "Apple", quantity: 2 }));
  await page.getByRole("button", { name: "Send" }).click();
  const reply = page.locator(".reply");
  await reply.getByText(/^200 OK/).waitFor();
  t.deepEqual(JSON.parse((await reply.locator("pre").textContent()) ?? ""), {});

  await page.getByLabel("Method").selectOption("GetCart");
  await editor.fill(JSON.stringify({ userId: "ann" }));
  await page.getByRole("button", { name: "Send" }).click();
  await reply.locator("pre", { hasText: "apple" }).waitFor();
  t.deepEqual(JSON.parse((await reply.locator("pre").textContent()) ?? ""), { items: [{ productId: "apple", name: "Apple", quantity: 2 }] });

  await page.getByLabel("Method").selectOption("AddItem");
  await editor.fill(JSON.stringify({ userId: "ann", productId: "pear", quantity: 0 }));
  await page.getByRole("button", { name: "Send" }).click();
  await reply.getByRole("alert").waitFor();
  t.regex((await reply.getByRole("alert").textContent()) ?? "", /^400 INVALID_ARGUMENT: .*quantity/);
  t.deepEqual(problems, []);
});

test.serial("inspects the cart: its state with the item and its ItemAdded event, refreshable", async (t) => {
  const { page, problems } = await signedIn(t, "#/inspect");
  await page.getByLabel("Service").selectOption(CART);
  await page.getByLabel("Key").fill("ann");
  await page.getByRole("button", { name: "Inspect", exact: true }).click();
  const entity = page.locator(".entity");
  await entity.getByRole("heading", { name: "State", exact: true }).waitFor();
  t.like(JSON.parse((await entity.locator("pre.json").first().textContent()) ?? ""), { items: [{ productId: "apple", name: "Apple", quantity: 2 }] });
  const events = entity.locator("table.events tbody tr");
  t.is(await events.count(), 1);
  t.regex((await events.first().textContent()) ?? "", /ItemAdded.*apple/s);

  await addItem("ann", "pear", "Pear", 1);
  await page.getByRole("button", { name: "Refresh" }).click();
  await events.nth(1).waitFor();
  t.regex((await events.nth(1).textContent()) ?? "", /ItemAdded.*pear/s);
  t.deepEqual(problems, []);
});

test.serial("an entity key and payload with markup are shown as text, never run", async (t) => {
  const key = "<script>alert(1)</script>";
  const name = "<img src=x onerror=alert(2)>";
  await addItem(key, "x", name, 1);
  const { page, problems } = await signedIn(t, "#/inspect");
  await page.getByLabel("Service").selectOption(CART);
  await page.getByLabel("Key").fill(key);
  await page.getByRole("button", { name: "Inspect", exact: true }).click();
  const entity = page.locator(".entity");
  await entity.locator(".key").waitFor();
  t.is(await entity.locator(".key").textContent(), key);
  await entity.locator("table.events").waitFor();
  t.true(((await entity.textContent()) ?? "").includes(name), "the payload's markup is on the page as text");
  t.is(await page.locator("main script, main img").count(), 0, "no element was made from the data");
  // Give an injected handler the time it would need to fire.
  await page.waitForTimeout(300);
  t.deepEqual(problems, []);
});
