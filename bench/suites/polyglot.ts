// `npm run bench:polyglot`: the same entity written three ways, in one run. Each path is
// compared with the AssemblyScript build of the same behaviour (the baseline of its row):
//   counter   modules/counter (AssemblyScript)  vs  modules/counter-js (JavaScript, a Wasm component)
//   cart      modules/shopping-cart (AssemblyScript)  vs  modules/shopping-cart-c (C)
// Measured per path:
//   per call   a warm instance from the module's instance pool (deployed through the
//              registry, so fuel metering and the memory cap are on as in production)
//              answering one command at a time, state threaded from call to call;
//   cold start the module stored as a deploy on another node leaves it (upload + artifact),
//              nothing loaded -> read, compiled, instantiated -> first reply, with bytes
//              unique per sample so V8's module cache never serves a compile;
//   deploy     validate + instrument (a component: + transpile) + compile (compileModule),
//              and the upload's size.
import { readFileSync } from "node:fs";
import type { CommandResult } from "../../host/abi/abi-codec.js";
import type { ModuleArtifact, Store } from "../../host/journal/types.js";
import { appendCustomSections } from "../../host/build/custom-sections.js";
import { CORE_SECTION_PREFIX, GLUE_SECTION, readComponentArtifact } from "../../host/component/artifact.js";
import { COMPONENT_VERSION, isComponentBinary } from "../../host/component/component-binary.js";
import { buildArtifact, compileArtifact, hashModule } from "../../host/runtime/loaded-module.js";
import { decodeManifest, DESCRIPTOR_SECTION, MANIFEST_SECTION, readSection } from "../../host/runtime/module-sections.js";
import { Recorder, sample, type Latency } from "../lib/histogram.js";
import { callPath, openInProcessStore } from "../lib/inproc.js";
import { ensureDist, ensureModuleBuilt } from "../lib/prepare.js";
import { fmtRatio, fmtUs, progress } from "../lib/progress.js";
import { type Cell, type SuiteBody, type SuiteContext } from "../lib/result.js";
import { uniqueCopy } from "../lib/unique-module.js";
import { messageTypes } from "../lib/workloads.js";

const SUITE = "polyglot";
/** Fresh instances the pool made during the timed per-call loop (component instances are retired as their memory grows). */
const instancesCreated = new Map<string, number>();

interface Command {
  readonly method: string;
  payload(key: string): Uint8Array;
}

interface Path {
  readonly id: string;
  /** modules/<module>. */
  readonly module: string;
  readonly language: string;
  readonly service: string;
  /** The commands timed on a warm instance, in order (state threaded through all of them). */
  readonly commands: readonly Command[];
  /** What the cold start's first call asks. */
  readonly firstRead: Command;
}

function encode(type: (typeof messageTypes)[keyof typeof messageTypes], value: Record<string, unknown>): Uint8Array {
  return type.encode(type.fromObject(value)).finish();
}

const increase: Command = { method: "Increase", payload: (key) => encode(messageTypes.changeValue, { counterId: key, value: 1 }) };
const getCounter: Command = { method: "Get", payload: (key) => encode(messageTypes.counterId, { counterId: key }) };
const addItem: Command = { method: "AddItem", payload: (key) => encode(messageTypes.addLineItem, { userId: key, productId: "p-1", name: "Widget", quantity: 1 }) };
const getCart: Command = { method: "GetCart", payload: (key) => encode(messageTypes.getShoppingCart, { userId: key }) };

const CART_SERVICE = "keystate.examples.shoppingcart.ShoppingCart";
const PATHS: Record<"counterAs" | "counterJs" | "cartAs" | "cartC", Path> = {
  counterAs: { id: "counter-as", module: "counter", language: "AssemblyScript", service: "keystate.examples.counter.Counter", commands: [increase], firstRead: getCounter },
  counterJs: { id: "counter-js", module: "counter-js", language: "JavaScript (componentize-js component)", service: "keystate.examples.jscounter.JsCounter", commands: [increase], firstRead: getCounter },
  cartAs: { id: "cart-as", module: "shopping-cart", language: "AssemblyScript", service: CART_SERVICE, commands: [addItem, getCart], firstRead: getCart },
  cartC: { id: "cart-c", module: "shopping-cart-c", language: "C", service: CART_SERVICE, commands: [addItem, getCart], firstRead: getCart },
};

interface Measured {
  readonly size: number;
  /** Per command method. */
  readonly perCall: Record<string, Latency>;
  readonly coldStart: Latency;
  readonly deploy: Latency;
  readonly deployBuild: Latency;
  readonly deployCompile: Latency;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/**
 * A copy of a stored artifact that V8 has never compiled. A core module's artifact keeps the
 * upload's custom sections, so the unique upload makes it unique; a component's artifact
 * holds its core modules as sections of their own, so each of those gets a nonce too (the
 * upload's nonce does not reach them).
 */
async function uniqueArtifact(bytes: Uint8Array, componentArtifact: ModuleArtifact | undefined): Promise<{ upload: Uint8Array; artifact: ModuleArtifact }> {
  const upload = uniqueCopy(bytes);
  if (!componentArtifact) return { upload, artifact: await buildArtifact(upload) };
  const { glue, coreModules } = readComponentArtifact(componentArtifact.bytes);
  const sections = [
    { name: DESCRIPTOR_SECTION, payload: readSection(componentArtifact.bytes, DESCRIPTOR_SECTION) },
    { name: MANIFEST_SECTION, payload: readSection(componentArtifact.bytes, MANIFEST_SECTION) },
    { name: GLUE_SECTION, payload: new TextEncoder().encode(glue) },
    ...[...coreModules].map(([name, code]) => ({ name: CORE_SECTION_PREFIX + name, payload: uniqueCopy(code) })),
  ];
  const header = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, ...COMPONENT_VERSION);
  return { upload, artifact: { ...componentArtifact, uploadHash: hashModule(upload), uploadSize: upload.length, bytes: appendCustomSections(header, sections) } };
}

/** A warm pooled instance answering `commands` in turn, each call timed on its own. */
async function measurePerCall(ctx: SuiteContext, path: Path, bytes: Uint8Array): Promise<Record<string, Latency>> {
  const opened = await openInProcessStore("embedded");
  const node = callPath(opened.store, "discard");
  try {
    await node.registry.deploy(uniqueCopy(bytes));
    const service = node.registry.service(path.service);
    if (!service) throw new Error(`modules/${path.module} does not serve ${path.service}`);
    const pool = service.pool;
    const recorders = path.commands.map(() => new Recorder());
    const payloads = path.commands.map((c) => c.payload("k"));
    const warmup = ctx.quick ? 500 : 3000;
    const maxRounds = ctx.quick ? 5000 : 50_000;
    const deadline = () => performance.now() + ctx.budget(4000, 800);
    let state: Uint8Array | undefined;
    let seq = 0;
    let end = Infinity;
    let fuelUsed: number | undefined;
    let createdAtStart = 0;
    for (let round = -warmup; round < maxRounds; round++) {
      if (round === 0) {
        end = deadline();
        createdAtStart = pool.created;
      }
      if (round > 1000 && performance.now() > end) break;
      for (let c = 0; c < path.commands.length; c++) {
        const call = { service: path.service, method: path.commands[c]!.method, entityKey: "k", sequence: seq++, state, payload: payloads[c]! };
        // As the entity layer runs a call (InstancePool.run): acquire, command, release. A
        // component instance whose memory grew past half its headroom is retired on release,
        // and the next call pays for a fresh instance, as on a node.
        const start = process.hrtime.bigint();
        const instance = pool.acquire();
        const result: CommandResult = instance.command(call);
        pool.release(instance);
        const ns = Number(process.hrtime.bigint() - start);
        if (result.failure) throw new Error(`${path.id} refused ${path.commands[c]!.method}: ${result.failure.message}`);
        if (round >= 0) recorders[c]!.recordNs(ns);
        fuelUsed = instance.fuelUsed;
        if (result.state.length > 0) state = result.state;
      }
    }
    if (fuelUsed === undefined) throw new Error(`${path.id}: the pooled instance has no fuel counter (metering is off)`);
    instancesCreated.set(path.id, pool.created - createdAtStart);
    return Object.fromEntries(path.commands.map((c, i) => [c.method, recorders[i]!.summary()]));
  } finally {
    node.close();
    await opened.close();
  }
}

/** Stored (upload + deploy-time artifact), nothing loaded -> loadFromStore -> first reply. */
async function measureColdStart(ctx: SuiteContext, path: Path, bytes: Uint8Array, component: boolean): Promise<Latency> {
  const opened = await openInProcessStore("embedded");
  const store: Store = opened.store;
  // A component's artifact is transpiled once (seconds); each sample then gets unique core modules.
  const componentArtifact = component ? await buildArtifact(bytes) : undefined;
  const name = decodeManifest(readSection(bytes, MANIFEST_SECTION)).name;
  let cold: ReturnType<typeof callPath> | undefined;
  let key = 0;
  try {
    return await sample(
      component
        ? { budgetMs: ctx.budget(30_000, 5000), maxIterations: ctx.quick ? 4 : 15, minIterations: ctx.quick ? 3 : 10, warmup: 1 }
        : { budgetMs: ctx.budget(5000, 1000), maxIterations: ctx.quick ? 50 : 300, warmup: 3 },
      async () => {
        cold?.close();
        cold = undefined;
        gc();
        const { upload, artifact } = await uniqueArtifact(bytes, componentArtifact);
        await store.modules.addVersion(name, upload, artifact.uploadHash, { activate: true, artifact });
      },
      async () => {
        cold = callPath(store, "embedded");
        await cold.registry.loadFromStore();
        await cold.router.call(path.service, path.firstRead.method, path.firstRead.payload(`cold-${key++}`));
      },
    );
  } finally {
    cold?.close();
    await opened.close();
  }
}

/** validate + instrument (+ transpile) = buildArtifact, then compile = compileArtifact. */
async function measureDeploy(ctx: SuiteContext, bytes: Uint8Array, component: boolean): Promise<Pick<Measured, "deploy" | "deployBuild" | "deployCompile">> {
  const build = new Recorder();
  const compile = new Recorder();
  const deploy = await sample(
    component
      ? { budgetMs: ctx.budget(20_000, 3000), maxIterations: ctx.quick ? 2 : 5, minIterations: ctx.quick ? 2 : 3, warmup: 1 }
      : { budgetMs: ctx.budget(3000, 600), maxIterations: ctx.quick ? 20 : 100, warmup: 3 },
    () => {
      gc();
      return uniqueCopy(bytes);
    },
    async (upload, i) => {
      const start = process.hrtime.bigint();
      const artifact = await buildArtifact(upload);
      const built = process.hrtime.bigint();
      await compileArtifact(artifact);
      if (i >= 0) {
        build.recordNs(Number(built - start));
        compile.recordNs(Number(process.hrtime.bigint() - built));
      }
    },
  );
  return { deploy, deployBuild: build.summary(), deployCompile: compile.summary() };
}

async function measurePath(ctx: SuiteContext, path: Path): Promise<Measured> {
  const wasm = ensureModuleBuilt(SUITE, path.module);
  if (!wasm) throw new Error(`modules/${path.module} could not be built`);
  const bytes = readFileSync(wasm);
  const component = isComponentBinary(bytes);
  progress(SUITE, `${path.id} (${path.language}, ${(bytes.length / 1024).toFixed(0)} KiB${component ? ", a component" : ""})`);
  const perCall = await measurePerCall(ctx, path, bytes);
  for (const [method, l] of Object.entries(perCall)) progress(SUITE, `  warm ${method}: p50 ${fmtUs(l.p50)} p99 ${fmtUs(l.p99)} (n=${l.n})`);
  gc();
  const coldStart = await measureColdStart(ctx, path, bytes, component);
  progress(SUITE, `  cold start: p50 ${fmtUs(coldStart.p50)} p99 ${fmtUs(coldStart.p99)} (n=${coldStart.n})`);
  gc();
  const deploy = await measureDeploy(ctx, bytes, component);
  progress(SUITE, `  deploy: p50 ${fmtUs(deploy.deploy.p50)} (build ${fmtUs(deploy.deployBuild.p50)}, compile ${fmtUs(deploy.deployCompile.p50)}, n=${deploy.deploy.n})`);
  gc();
  return { size: bytes.length, perCall, coldStart, ...deploy };
}

export async function runPolyglot(ctx: SuiteContext): Promise<SuiteBody> {
  ensureDist(SUITE);
  const m = {} as Record<keyof typeof PATHS, Measured>;
  for (const id of Object.keys(PATHS) as Array<keyof typeof PATHS>) m[id] = await measurePath(ctx, PATHS[id]);

  const pairs: Array<{ base: keyof typeof PATHS; other: keyof typeof PATHS }> = [
    { base: "counterAs", other: "counterJs" },
    { base: "cartAs", other: "cartC" },
  ];
  const label = (id: keyof typeof PATHS) => `${PATHS[id].module} (${PATHS[id].language})`;
  const vs = (value: number, base: number, isBase: boolean) => (isBase ? "(baseline)" : fmtRatio(value, base));

  const perCallRows: Cell[][] = [];
  for (const { base, other } of pairs) {
    for (const command of PATHS[base].commands) {
      const b = m[base].perCall[command.method]!;
      for (const id of [base, other]) {
        const l = m[id].perCall[command.method]!;
        perCallRows.push([label(id), command.method, fmtUs(l.p50), fmtUs(l.p99), l.n, vs(l.p50, b.p50, id === base), vs(l.p99, b.p99, id === base)]);
      }
    }
  }
  const coldRows: Cell[][] = [];
  const deployRows: Cell[][] = [];
  for (const { base, other } of pairs) {
    for (const id of [base, other]) {
      const c = m[id].coldStart;
      coldRows.push([label(id), fmtUs(c.p50), fmtUs(c.p99), c.n, vs(c.p50, m[base].coldStart.p50, id === base), vs(c.p99, m[base].coldStart.p99, id === base)]);
      const d = m[id];
      deployRows.push([
        label(id),
        d.size,
        vs(d.size, m[base].size, id === base),
        fmtUs(d.deploy.p50),
        fmtUs(d.deploy.p99),
        fmtUs(d.deployBuild.p50),
        fmtUs(d.deployCompile.p50),
        d.deploy.n,
        vs(d.deploy.p50, m[base].deploy.p50, id === base),
      ]);
    }
  }

  const tables = [
    {
      title: "Per call: a warm pooled instance answers one command (fuel metering on)",
      columns: ["path", "command", "p50", "p99", "samples", "p50 vs AssemblyScript", "p99 vs AssemblyScript"],
      rows: perCallRows,
      notes: [
        `Each module deployed through ModuleRegistry.deploy (as a node deploys it: instrumented with the fuel counter and the memory cap, limits from its manifest), then each command run as the entity layer runs it on the module's InstancePool (acquire an instance, call it, release it; GuestInstance for a core module, ComponentInstance for the component): the ABI encode (for the component, jco's lifting and lowering), the guest call and the decode, one command at a time on one entity key, the returned state passed into the next call. No router, mailbox or storage. The JavaScript engine keeps memory from call to call, so the pool retires a component instance once its memory passed half its headroom and the next call instantiates a fresh one: that cost is in the component's p99 (fresh instances made during the timed calls: ${[...instancesCreated].map(([id, n]) => `${id} ${n}`).join(", ")}). The cart rows alternate AddItem and GetCart on the same key (AddItem of the same product raises its quantity, so the state stays one line item). Timed per call with process.hrtime after untimed warm-up calls.`,
      ],
    },
    {
      title: "Cold start in-process: stored, not loaded -> compiled -> instantiated -> first reply",
      columns: ["path", "p50", "p99", "samples", "p50 vs AssemblyScript", "p99 vs AssemblyScript"],
      rows: coldRows,
      notes: [
        "As in the startup suite: per sample the module is stored (embedded LMDB) as a deploy on another node leaves it, the upload and its deploy-time artifact, then a fresh call path (registry, entity manager, router) loads it from the store (compile of the artifact, one instance started) and answers a first read (Counter Get / JsCounter Get / ShoppingCart GetCart) for a new key. Every sample compiles bytes V8 has not seen: a core module's upload carries a nonce section that its artifact keeps; the component's artifact is transpiled once and each sample gives every core module in it a nonce of its own. The component takes fewer samples (each compiles ~12 MB of Wasm).",
      ],
    },
    {
      title: "Deploy (validate + instrument or transpile + compile) and module size",
      columns: ["path", "module bytes", "size vs AssemblyScript", "deploy p50", "deploy p99", "of which validate + instrument (+ transpile) p50", "of which compile p50", "samples", "deploy p50 vs AssemblyScript"],
      rows: deployRows,
      notes: [
        "Deploy here is compileModule's work timed in two parts: buildArtifact (validate, instrument with fuel and the memory cap; for a component also jco's transpile into JavaScript glue and core modules, each core module with code instrumented) and compileArtifact (V8 compile, export checks, manifest and API model). It leaves out what registry.deploy adds around it (storing the version, starting the first instance). Each sample deploys a unique copy of the upload; module bytes are the built .wasm as uploaded.",
      ],
    },
  ];

  const figures: Record<string, number | undefined> = {};
  for (const id of Object.keys(PATHS) as Array<keyof typeof PATHS>) {
    const p = PATHS[id].id;
    for (const [method, l] of Object.entries(m[id].perCall)) {
      figures[`${p} | ${method} p50 us`] = l.p50;
      figures[`${p} | ${method} p99 us`] = l.p99;
    }
    figures[`${p} | cold start p50 us`] = m[id].coldStart.p50;
    figures[`${p} | cold start p99 us`] = m[id].coldStart.p99;
    figures[`${p} | deploy p50 us`] = m[id].deploy.p50;
    figures[`${p} | deploy p99 us`] = m[id].deploy.p99;
    figures[`${p} | module bytes`] = m[id].size;
    figures[`${p} | fresh instances during the per-call loop`] = instancesCreated.get(p);
  }

  return {
    title: "Polyglot: the same entities in AssemblyScript, C and JavaScript (component)",
    goalsFrom: "set by this bench; no target was given",
    tables,
    goals: [],
    notes: [
      "What the rows say: the per-call table is the steady-state cost of one command on a warm instance (what every request pays); the cold-start table is what the first request for a module pays on a node that has it stored but not loaded; the deploy table is the one-off cost of accepting an upload. The AssemblyScript build of the same behaviour is each row's baseline (its ratio is x1). The JavaScript counter is a componentize-js component: its ~12 MB is almost all the JavaScript engine (StarlingMonkey, built on SpiderMonkey) compiled to Wasm, with the entity's own code a few KB of JavaScript inside it, so its size, deploy (transpile and instrument ~12 MB) and cold start (compile ~12 MB) reflect the engine, not the entity; per call it runs the entity's JavaScript in that interpreter inside Wasm, plus the component's lifting and lowering. The C cart is a core module like the AssemblyScript one, built from the same proto contract.",
    ],
    charts: [],
    figures,
  };
}
