// Load from h2load (Debian nghttp2-client), a native HTTP/2 load generator: a Node client
// would saturate its own core before the server. h2load sends one request body per
// process, so "many keys" runs one h2load process per key (each with its own body file)
// and adds their rates; latencies come from every process's --log-file, merged in one
// HdrHistogram.
import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Recorder, type Latency } from "./histogram.js";
import { tempDir } from "./inproc.js";

export interface LoadTarget {
  /** One URL (and body) per h2load process; a process per key gives many keys. */
  readonly requests: ReadonlyArray<{ readonly url: string; readonly body: Uint8Array }>;
  readonly headers: readonly string[];
}

export interface LoadOptions {
  readonly durationS: number;
  readonly connections: number;
  readonly streamsPerConnection: number;
  /** Command prefix that pins h2load to a core, e.g. ["taskset", "-c", "1"]. */
  readonly pin?: readonly string[];
  /** Also record every request's latency here (to merge several runs into one histogram). */
  readonly record?: Recorder;
}

export interface LoadResult {
  readonly rps: number;
  readonly latency: Latency;
  readonly succeeded: number;
  /** Requests h2load counted as failed or errored (HTTP level; gRPC errors are checked separately). */
  readonly failed: number;
  /** Concurrent requests in flight across all processes. */
  readonly concurrency: number;
  readonly processes: number;
}

interface ProcessOutcome {
  rps: number;
  succeeded: number;
  failed: number;
}

function runOne(args: string[], pin: readonly string[]): Promise<ProcessOutcome> {
  return new Promise((resolve, reject) => {
    const command = [...pin, "h2load", ...args];
    const child = spawn(command[0]!, command.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    child.once("error", reject);
    // "close", not "exit": exit can come before the last of stdout is read, and the summary is at its end.
    child.once("close", (code) => {
      // A run that ends just short of a second says "finished in 999.58ms", not "0.99s".
      const finished = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out);
      const requests = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out);
      if (code !== 0 || !finished || !requests) return reject(new Error(`h2load exited ${code}:\n${out.slice(-1500)}`));
      resolve({ rps: Number(finished[1]), succeeded: Number(requests[1]), failed: Number(requests[2]) + Number(requests[3]) });
    });
  });
}

export async function runLoad(target: LoadTarget, options: LoadOptions): Promise<LoadResult> {
  const dir = await tempDir("h2load");
  try {
    const runs = target.requests.map(async (request, i) => {
      const body = join(dir.path, `body-${i}.bin`);
      const log = join(dir.path, `log-${i}.tsv`);
      await writeFile(body, request.body);
      const args = ["-c", String(options.connections), "-m", String(options.streamsPerConnection), "-D", String(options.durationS), "-d", body, "--log-file", log];
      for (const header of target.headers) args.push("-H", header);
      args.push(request.url);
      const outcome = await runOne(args, options.pin ?? []);
      return { outcome, log };
    });
    const done = await Promise.all(runs);
    const recorder = new Recorder();
    for (const { log } of done) {
      // Columns: start time (us since epoch), HTTP status, microseconds to the end of the response.
      for (const line of (await readFile(log, "utf8")).split("\n")) {
        const duration = Number(line.split("\t")[2]);
        if (duration > 0) {
          recorder.recordUs(duration);
          options.record?.recordUs(duration);
        }
      }
    }
    return {
      rps: done.reduce((sum, d) => sum + d.outcome.rps, 0),
      succeeded: done.reduce((sum, d) => sum + d.outcome.succeeded, 0),
      failed: done.reduce((sum, d) => sum + d.outcome.failed, 0),
      latency: recorder.summary(),
      concurrency: target.requests.length * options.connections * options.streamsPerConnection,
      processes: target.requests.length,
    };
  } finally {
    await dir.remove();
  }
}

export const GRPC_HEADERS = ["content-type: application/grpc", "te: trailers"];
