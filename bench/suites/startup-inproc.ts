// Startup figures measured inside this process: cold start from the module store,
// deploy (with its phases measured one by one), and a fresh instance from a compiled
// module. Every compile gets unique bytes (lib/unique-module.ts), so V8's code cache
// never turns a cold start into a warm one. The cold start finds what a deploy on another
// node leaves in the store: the upload and its deploy-time artifact (instrumented bytes).
import type { Store } from "../../host/journal/types.js";
import { artifactKey, buildArtifact, compileArtifact, compileModule } from "../../host/runtime/loaded-module.js";
import { DEFAULT_GUEST_LIMITS } from "../../host/runtime/guest-limits.js";
import { instrumentModule } from "../../host/runtime/instrument.js";
import { freshGuest } from "../lib/guest.js";
import { Recorder, sample, type Latency } from "../lib/histogram.js";
import { callPath, openInProcessStore } from "../lib/inproc.js";
import { fmtUs, progress } from "../lib/progress.js";
import type { SuiteContext } from "../lib/result.js";
import { uniqueCopy } from "../lib/unique-module.js";
import type { Workload } from "../lib/workloads.js";

export interface InProcessStartup {
  /** Stored, not loaded → read, compiled, instantiated → first reply. */
  readonly coldStart: Latency;
  readonly coldPhases: Record<string, Latency>;
  /** registry.deploy(bytes) → first reply. */
  readonly deploy: Latency;
  readonly deployPhases: Record<string, Latency>;
  /** A disposed instance replaced by a fresh one on its (zeroed) memory: both steps timed. */
  readonly freshInstance: Latency;
  /** A fresh instance on a memory of its own (nothing disposed to reuse). */
  readonly newMemoryInstance: Latency;
  /** `new WebAssembly.Instance` with a new memory: no GuestInstance, no pool. */
  readonly rawInstance: Latency;
  /** Where instrumentation is (and is not) part of the figures. */
  readonly instrumentNote: string;
}

const noLog = () => undefined;

/**
 * Stores a unique copy of the module as its active version the way a deploy on another
 * node does (upload + deploy-time artifact), without compiling it here: a compile in this
 * process would let V8's module cache serve the timed cold start.
 */
async function storeAsDeployed(store: Store, name: string, moduleBytes: Uint8Array): Promise<void> {
  const bytes = uniqueCopy(moduleBytes);
  const artifact = await buildArtifact(bytes);
  await store.modules.addVersion(name, bytes, artifact.uploadHash, { activate: true, artifact });
}

export async function measureInProcessStartup(ctx: SuiteContext, workload: Workload, moduleBytes: Uint8Array): Promise<InProcessStartup> {
  const suite = "startup";
  const opened = await openInProcessStore("embedded");
  const store = opened.store;
  const compiled = await compileModule(moduleBytes);
  const name = compiled.name;
  const firstRead = (path: ReturnType<typeof callPath>, key: string) => path.router.call(workload.service, workload.readMethod, workload.readPayload(key));
  const iterations = ctx.quick ? 40 : 400;
  const budget = ctx.budget(6000, 1200);
  let key = 0;

  try {
    progress(suite, "cold start in-process: module stored (embedded store), not loaded -> first reply");
    let cold: ReturnType<typeof callPath> | undefined;
    const coldStart = await sample(
      { budgetMs: budget, maxIterations: iterations, warmup: 3 },
      async () => {
        cold?.close();
        await storeAsDeployed(store, name, moduleBytes);
      },
      async () => {
        // A node that has the module in its store but nothing loaded: everything from here is timed.
        cold = callPath(store, "embedded");
        await cold.registry.loadFromStore();
        await firstRead(cold, `cold-${key++}`);
      },
    );
    cold?.close();
    progress(suite, `  cold start p50 ${fmtUs(coldStart.p50)} p99 ${fmtUs(coldStart.p99)} (n=${coldStart.n})`);

    progress(suite, "cold start phases: artifact read, artifact compile (+ what it skips), instantiate, first guest call");
    const phaseOptions = { budgetMs: ctx.budget(2000, 400), maxIterations: iterations, warmup: 3 };
    const active = (await store.modules.list()).find((m) => m.name === name)!;
    const nodeKey = artifactKey(DEFAULT_GUEST_LIMITS);
    const coldPhases: Record<string, Latency> = {
      "read the version's artifact from the store": await sample(phaseOptions, () => undefined, () => store.modules.getArtifact(name, active.activeVersion!, nodeKey)),
      "compile the artifact (V8 compile + checks + manifest + API model)": await sample(
        phaseOptions,
        () => buildArtifact(uniqueCopy(moduleBytes)),
        (artifact) => compileArtifact(artifact),
      ),
      "  of which V8 WebAssembly.Module": await sample(
        phaseOptions,
        async () => (await buildArtifact(uniqueCopy(moduleBytes))).bytes as Uint8Array<ArrayBuffer>,
        (b) => new WebAssembly.Module(b),
      ),
      "instantiate a freshly compiled module": await sample(phaseOptions, () => compileModule(uniqueCopy(moduleBytes)), (loaded) => freshGuest(loaded)),
      "first guest call on a fresh instance": await sample(
        phaseOptions,
        async () => freshGuest(await compileModule(uniqueCopy(moduleBytes))),
        (guest, i) =>
          guest.command({ service: workload.service, method: workload.readMethod, entityKey: `k${i}`, sequence: 0, state: undefined, payload: workload.readPayload(`k${i}`) }),
      ),
      "without an artifact (store written before artifacts): compileModule from the upload": await sample(
        phaseOptions,
        () => uniqueCopy(moduleBytes),
        (b) => compileModule(b),
      ),
      "  of which validate + instrument + sha256 (buildArtifact)": await sample(phaseOptions, () => uniqueCopy(moduleBytes), (b) => buildArtifact(b)),
    };

    progress(suite, "deploy in-process: registry.deploy(bytes) -> first reply");
    const live = callPath(store, "embedded");
    // The same iterations split in two: registry.deploy() itself, and the first reply after it.
    const deployCall = new Recorder();
    const replyAfterDeploy = new Recorder();
    const deploy = await sample(
      { budgetMs: budget, maxIterations: iterations, warmup: 3 },
      () => uniqueCopy(moduleBytes),
      async (bytes, i) => {
        const start = process.hrtime.bigint();
        await live.registry.deploy(bytes);
        const deployed = process.hrtime.bigint();
        await firstRead(live, `deploy-${key++}`);
        if (i >= 0) {
          deployCall.recordNs(Number(deployed - start));
          replyAfterDeploy.recordNs(Number(process.hrtime.bigint() - deployed));
        }
      },
    );
    live.close();
    progress(suite, `  deploy p50 ${fmtUs(deploy.p50)} p99 ${fmtUs(deploy.p99)} (n=${deploy.n})`);

    const deployPhases: Record<string, Latency> = {
      "registry.deploy(): validate, instrument, compile, store, activate": deployCall.summary(),
      "first reply after the deploy": replyAfterDeploy.summary(),
      "  within deploy(): validate + instrument + compile + API model (compileModule)": coldPhases["without an artifact (store written before artifacts): compileModule from the upload"]!,
      "  within deploy(): store the version and its artifact, activate (one addVersion commit, embedded LMDB)": await sample(
        phaseOptions,
        async () => {
          const bytes = uniqueCopy(moduleBytes);
          return { bytes, artifact: await buildArtifact(bytes) };
        },
        async ({ bytes, artifact }) => {
          await store.modules.addVersion(name, bytes, artifact.uploadHash, { activate: true, artifact });
        },
      ),
    };
    deployPhases["  within compileModule: instrumentation (fuel + memory cap)"] = await sample(phaseOptions, () => uniqueCopy(moduleBytes), (bytes) =>
      instrumentModule(bytes, { maxMemoryPages: 256, meterFuel: true }),
    );
    const instrumentNote =
      "deploy validates and instruments the upload (its compiled form exports keystate_fuel), so the deploy figure includes instrumentation and the standalone row shows its share; a cold start compiles the instrumented artifact the deploy stored, so it neither validates nor instruments again";

    progress(suite, "fresh instance from an already compiled module");
    const instanceOptions = { budgetMs: ctx.budget(2000, 300), maxIterations: ctx.quick ? 2000 : 20000, warmup: 200 };
    // As the instance pool replaces a trapped instance: the old one is disposed (its memory
    // zeroed and kept), the new one made from the compiled module on that memory. Both timed.
    let previous = freshGuest(compiled);
    const freshInstance = await sample(instanceOptions, () => undefined, () => {
      previous.dispose();
      previous = freshGuest(compiled);
    });
    previous.dispose();
    // Nothing disposed, so every instance gets a memory of its own, as with no pool.
    const newMemoryInstance = await sample(instanceOptions, () => undefined, () => freshGuest(compiled));
    const { importedMemoryPages, maxMemoryPages } = compiled.limits;
    const rawInstance = await sample(instanceOptions, () => undefined, () => {
      const keystate: Record<string, unknown> = { output: noLog, log: noLog };
      if (importedMemoryPages !== undefined) keystate.memory = new WebAssembly.Memory({ initial: importedMemoryPages, maximum: maxMemoryPages });
      return new WebAssembly.Instance(compiled.compiled, { keystate, env: { abort: noLog } } as WebAssembly.Imports);
    });
    progress(suite, `  fresh GuestInstance p50 ${fmtUs(freshInstance.p50)} (new memory ${fmtUs(newMemoryInstance.p50)}), raw WebAssembly.Instance p50 ${fmtUs(rawInstance.p50)}`);

    return { coldStart, coldPhases, deploy, deployPhases, freshInstance, newMemoryInstance, rawInstance, instrumentNote };
  } finally {
    await opened.close();
  }
}
