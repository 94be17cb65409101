// CPU time another process has used, for figures of CPU per call (bench/profile/).
import { readFileSync } from "node:fs";

/** Linux reports process CPU time in clock ticks of 10 ms (USER_HZ = 100 on every mainstream kernel). */
const TICK_US = 10_000;

/** User + system CPU time of a process so far (all its threads), in microseconds, from /proc/<pid>/stat. */
export function processCpuUs(pid: number): number {
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * TICK_US; // utime and stime: fields 14 and 15
}
