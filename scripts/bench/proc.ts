/** Reading a process's CPU time, memory and children from /proc (Linux only, like the benchmarks). */
import { readdirSync, readFileSync } from "node:fs";

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat. 100 on every Linux this runs on (`getconf CLK_TCK`). */
const CLK_TCK = 100;

/**
 * A `stat` file of /proc (a process's or a thread's): the command name, and the fields after it (the name may
 * itself contain spaces and parentheses). Null when the process or thread is gone.
 */
function readStat(path: string): { name: string; fields: string[] } | null {
  let stat: string;
  try {
    stat = readFileSync(path, "utf8");
  } catch {
    return null;
  }
  const end = stat.lastIndexOf(")");
  return { name: stat.slice(stat.indexOf("(") + 1, end), fields: stat.slice(end + 2).split(" ") };
}

function statFields(pid: number): string[] | null {
  return readStat(`/proc/${pid}/stat`)?.fields ?? null;
}

/** utime + stime in seconds, from stat fields. Field 3 (state) is f[0], so field n is f[n - 3]. */
const ownSeconds = (f: string[]): number => (Number(f[11]) + Number(f[12])) / CLK_TCK;

/**
 * CPU time in seconds, user plus system, from one read of /proc/<pid>/stat: `own` is the process's (utime +
 * stime, fields 14 and 15), `children` that of the children it has reaped (cutime + cstime, fields 16 and 17).
 * Both 0 when the process is gone.
 */
export function cpuTimes(pid: number): { own: number; children: number } {
  const f = statFields(pid);
  if (f === null) return { own: 0, children: 0 };
  return { own: ownSeconds(f), children: (Number(f[13]) + Number(f[14])) / CLK_TCK };
}

/** The CPU time the process itself used, in seconds (its children not included); see {@link cpuTimes}. */
export function cpuSeconds(pid: number): number {
  return cpuTimes(pid).own;
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

/**
 * CPU seconds (utime + stime) of each thread of a process, summed by thread name (`/proc/<pid>/task/<tid>/stat`):
 * the event loop carries the program's name, Bun's and JavaScriptCore's helpers their own. Threads that ended
 * meanwhile are not counted; empty when the process is gone.
 */
export function threadTimes(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    const stat = readStat(`/proc/${pid}/task/${tid}/stat`);
    if (stat === null) continue; // ended meanwhile
    out.set(stat.name, (out.get(stat.name) ?? 0) + ownSeconds(stat.fields));
  }
  return out;
}

/**
 * Milliseconds a thread has spent on a CPU and waiting in a run queue for one (`/proc/<pid>/task/<tid>/schedstat`,
 * in ns); null when the thread is gone or the kernel keeps no schedstats.
 */
export function schedTimes(pid: number, tid: number = pid): { run: number; wait: number } | null {
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ").map(Number);
    if (run === undefined || wait === undefined || Number.isNaN(run + wait)) return null;
    return { run: run / 1e6, wait: wait / 1e6 };
  } catch {
    return null;
  }
}
