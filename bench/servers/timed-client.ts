// The bench-facing half of a bare hop client (bare-h2-client.ts, bare-tcp-client.ts): waits
// for {calls: N} on the IPC channel, makes N sequential calls, each timed in this process,
// and sends back {ns: [...]}; closes and exits when the parent goes away.
export function serveTimedCalls(name: string, call: () => Promise<void>, close: () => void): void {
  const time = async (calls: number): Promise<number[]> => {
    const ns: number[] = [];
    for (let i = 0; i < calls; i++) {
      const start = process.hrtime.bigint();
      await call();
      ns.push(Number(process.hrtime.bigint() - start));
    }
    return ns;
  };
  process.on("message", (message: { calls?: unknown }) => {
    time(Number(message.calls)).then(
      (ns) => process.send!({ ns }),
      (err: unknown) => {
        process.stderr.write(`${name}: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  });
  process.on("disconnect", () => {
    close();
    process.exit(0);
  });
}
