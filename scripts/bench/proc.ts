/** Reading a process's CPU time, memory and children from /proc (Linux only, like the benchmarks). */
import { readdirSync, readFileSync } from "node:fs";

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat. 100 on every Linux this runs on (`getconf CLK_TCK`). */
const CLK_TCK = 100;

/** The fields of /proc/<pid>/stat after the command name, which may itself contain spaces and parentheses. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/**
 * The CPU time the process itself used, user plus system, in seconds (utime + stime, fields 14 and 15 of
 * /proc/<pid>/stat; children are not included). 0 when the process is gone.
 */
export function cpuSeconds(pid: number): number {
  const f = statFields(pid);
  // Field 3 (state) is f[0], so field n is f[n - 3].
  return f === null ? 0 : (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/**
 * The CPU time of the process's children that it has reaped, user plus system, in seconds (cutime + cstime,
 * fields 16 and 17). 0 when the process is gone.
 */
export function childCpuSeconds(pid: number): number {
  const f = statFields(pid);
  return f === null ? 0 : (Number(f[13]) + Number(f[14])) / CLK_TCK;
}

/** The parent pid and start time (to tell a reused pid apart) of a process, or null when it is gone. */
export function identity(pid: number): { ppid: number; start: string } | null {
  const f = statFields(pid);
  return f === null ? null : { ppid: Number(f[1]), start: f[19] ?? "" };
}

/** Resident set size in KiB (VmRSS of /proc/<pid>/status), 0 when the process is gone. */
export function rssKiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** The direct children of a process (scalesocket puts each in its own process group, so ppid is the link). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    const child = Number(name);
    if (!Number.isInteger(child)) continue;
    if (identity(child)?.ppid === pid) out.push(child);
  }
  return out;
}
