// The `keystate` command line: serve, build, deploy, modules, call, inspect.
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { adminRequest, adminTarget } from "./admin-client.js";
import { SERVE_SETTINGS, settingsHelp } from "./config.js";

const USAGE = `keystate <command> [options]

Commands:
  serve                      start a node (options below)
  build <module-dir>... [-o f]
                             build entity modules (.proto + AssemblyScript, C or JavaScript + module.json), each into one
                             .wasm (<module-dir>/build/<name>.wasm, or -o f with one module); several build in one process
                             (--names: keep function names, so traps in the log and CPU profiles name them; AssemblyScript)
  deploy <file.wasm>         upload a module to a running node (--admin URL, --token T)
  modules                    list the modules a node has (--admin URL, --token T)
  undeploy <name>            stop serving a module (its versions stay stored)
  rollback <name> <version>  make a stored version of a module live again
  call <pkg.Service>/<Method> '<json>'
                             call a unary method (found through gRPC reflection); prints the reply as JSON
  call --list                list the methods a node serves
  cluster                    show a cluster's nodes and who holds which shard (--admin URL, --token T; --json as is)
  inspect <pkg.Service> <key> [--events] [--from N] [--limit N]
                             an entity's state (or its journal's events) from the store, decoded to JSON (--admin URL, --token T; --json as is)
  dev-cluster                start a local cluster: its own redis-server and N nodes (Ctrl-C stops it, removes its data)

serve options (flag, environment variable):
${settingsHelp()}
  --examples                 also deploy the built example modules (modules/*/build/*.wasm)
  --deploy <file.wasm>       also deploy this module at start (repeatable)

deploy / modules / cluster / inspect options:
  --admin <url>              the node's admin API (KEYSTATE_ADMIN_URL, default http://127.0.0.1:8081)
  --token <token>            admin token (KEYSTATE_ADMIN_TOKEN, else read from <data>/admin-token)
  --data <dir>               where to look for admin-token (KEYSTATE_DATA, default ./data)

call options:
  --address <host:port>      the node's gRPC port (KEYSTATE_ADDRESS, default 127.0.0.1:8080)
  --deadline <ms>            the call's gRPC deadline (default 30000)
  --request-id <id>          sent as x-request-id; the node's log lines for the call carry it

dev-cluster options:
  --nodes <n>                how many nodes (default 3)
  --base-port <p>            node-i gets gRPC port p+2(i-1) and HTTP port p+2(i-1)+1 (default 0: free ports)
  --lease-ms <ms>            passed to every node (shard lease length)
  --verbose                  relay every log line of the nodes, not only warnings and errors
`;

const serveOptions = Object.fromEntries(
  Object.values(SERVE_SETTINGS).map((s) => [s.flag, { type: s.kind === "boolean" ? ("boolean" as const) : ("string" as const) }]),
);

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...serveOptions,
      examples: { type: "boolean" },
      deploy: { type: "string", multiple: true },
      admin: { type: "string" },
      token: { type: "string" },
      out: { type: "string", short: "o" },
      names: { type: "boolean" },
      help: { type: "boolean", short: "h" },
      address: { type: "string" },
      deadline: { type: "string" },
      list: { type: "boolean" },
      "request-id": { type: "string" },
      json: { type: "boolean" },
      nodes: { type: "string" },
      "base-port": { type: "string" },
      "lease-ms": { type: "string" },
      verbose: { type: "boolean" },
      events: { type: "boolean" },
      from: { type: "string" },
      limit: { type: "string" },
    },
  });
  const [command, ...args] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return;
  }
  switch (command) {
    case "serve": {
      // Commands import what they need: `deploy` should not pay for loading the compiler.
      const { banner, serve } = await import("./serve.js");
      const flags: Record<string, unknown> = values;
      const node = await serve(flags, process.env);
      const dataDir = flags.redis ? undefined : String(flags.data ?? process.env.KEYSTATE_DATA ?? "./data");
      process.stdout.write(banner(node, dataDir) + "\n");
      const stop = () => void node.stop().then(() => process.exit(0));
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      return;
    }
    case "build": {
      if (!args[0]) throw new Error("usage: keystate build <module-dir>... [-o out.wasm] [--names]");
      if (args.length > 1 && values.out) throw new Error("-o names the output of one module: build several without it (each into <module-dir>/build/)");
      const { buildModule } = await import("../build/build-module.js");
      // One after the other in this process: the compilers load and warm up once for all of them.
      for (const dir of args) {
        const result = await buildModule(dir, { outFile: values.out, names: values.names });
        process.stdout.write(`built ${result.output} (${result.size} bytes; ${JSON.stringify(result.timingsMs)} ms)\n`);
      }
      return;
    }
    case "deploy": {
      if (!args[0]) throw new Error("usage: keystate deploy <file.wasm>");
      const bytes = await readFile(args[0]);
      const deployed = (await adminRequest(adminTarget(values, process.env), "POST", "/modules", bytes)) as Record<string, unknown>;
      process.stdout.write(`deployed ${deployed.name} version ${deployed.version}: ${(deployed.services as string[]).join(", ")}\n`);
      return;
    }
    case "modules": {
      const { modules } = (await adminRequest(adminTarget(values, process.env), "GET", "/modules")) as { modules: Array<Record<string, unknown>> };
      for (const m of modules) {
        process.stdout.write(`${m.name}\tv${m.version ?? "-"}\t${m.size ?? "-"} B\t${String(m.hash ?? "").slice(0, 12)}\t${(m.services as string[]).join(", ")}\n`);
      }
      return;
    }
    case "undeploy": {
      if (!args[0]) throw new Error("usage: keystate undeploy <module-name>");
      await adminRequest(adminTarget(values, process.env), "DELETE", `/modules/${encodeURIComponent(args[0])}`);
      process.stdout.write(`undeployed ${args[0]}\n`);
      return;
    }
    case "rollback": {
      const version = Number(args[1]);
      if (!args[0] || !Number.isInteger(version)) throw new Error("usage: keystate rollback <module-name> <version>");
      const body = Buffer.from(JSON.stringify({ version }));
      const active = (await adminRequest(adminTarget(values, process.env), "PUT", `/modules/${encodeURIComponent(args[0])}/active`, body, "application/json")) as Record<string, unknown>;
      process.stdout.write(`${active.name} version ${active.version} is live\n`);
      return;
    }
    case "call": {
      const { runCall } = await import("./call.js");
      process.stdout.write(await runCall(args, values, process.env));
      return;
    }
    case "cluster": {
      const view = await adminRequest(adminTarget(values, process.env), "GET", "/cluster");
      if (values.json) {
        process.stdout.write(JSON.stringify(view) + "\n");
        return;
      }
      const { asClusterView, formatClusterTable } = await import("./cluster-table.js");
      process.stdout.write(formatClusterTable(asClusterView(view)));
      return;
    }
    case "inspect": {
      const { runInspect } = await import("./inspect.js");
      process.stdout.write(await runInspect(args, values, process.env));
      return;
    }
    case "dev-cluster": {
      const { devClusterOptions, runDevCluster } = await import("./dev-cluster.js");
      await runDevCluster(devClusterOptions(values));
      return;
    }
    default:
      throw new Error(`unknown command "${command}"\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`keystate: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
