/**
 * Starting and stopping the servers under test, each on a free port of 127.0.0.1, optionally pinned to a core.
 * Every process started here is tracked and killed by {@link stopAll}, whatever happens to the run.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { childrenOf, identity } from "./proc.ts";

export const ROOT = new URL("../../", import.meta.url).pathname;
export const BENCH_DIR = new URL("./", import.meta.url).pathname;
/** Bun itself: the same binary that runs this script (node_modules/.bin/bun under `npm run bench`). */
export const BUN = process.execPath;

/**
 * What the room runs: `cat` (echo, churn, memory) or the numbered-line printer (fan-out). `room` is `cat` shared
 * by a room, where what a client sends reaches its whole room (the ceiling publishes it to the room itself);
 * `endpoints` is `cat` with `/metrics` and `/api/` on.
 */
export type Workload = "echo" | "fanout" | "room" | "endpoints";

/** One column of the tables: how to start a server for a workload. */
export interface System {
  id: string;
  label: string;
  /** The argv of the server, listening on 127.0.0.1:port; null when the system does not apply. */
  argv(port: number, workload: Workload): string[] | null;
  /** Whether clients speak JSON to it (`--json`). */
  json: boolean;
}

/** Server logs of this run (failures quote their tail); made on first use, removed by {@link stopAll}. */
let logDir: string | null = null;

/** A scalesocket column: the program it runs (`exe`), so its `--json` twin runs the same one. */
export interface ScalesocketSystem extends System {
  exe: readonly string[];
}

function scalesocket(
  id: string,
  label: string,
  exe: readonly string[],
  json: boolean,
  flags: readonly string[] = [],
): ScalesocketSystem {
  return {
    id,
    label,
    json,
    exe,
    argv: (port, workload) => [
      ...exe,
      "--addr",
      `127.0.0.1:${port}`,
      ...(json ? ["--json"] : []),
      ...flags,
      ...(workload === "endpoints" ? ["--metrics", "--api"] : []),
      ...(workload === "fanout" ? ["sh", "--", join(BENCH_DIR, "fanout.sh")] : ["cat"]),
    ],
  };
}

export const SOURCE = scalesocket("src", "scalesocket (source)", [BUN, join(ROOT, "src/main.ts")], false);
/** The standalone binary at `path` (run.ts compiles one from this checkout unless given one). */
export const compiled = (path: string): ScalesocketSystem =>
  scalesocket("bin", "scalesocket (binary)", [path], false);
export const jsonOf = (s: ScalesocketSystem): ScalesocketSystem =>
  scalesocket(`${s.id}-json`, `${s.label} --json`, s.exe, true);
/** The same program with the access checks on (`--origin`, `--jwtsecret`); `label` names them. */
export const accessOf = (s: ScalesocketSystem, label: string, flags: readonly string[]): ScalesocketSystem =>
  scalesocket(`${s.id}-access`, `${s.label} ${label}`, s.exe, false, flags);

/** The same program with `--deflate`; the load generator's Bun clients offer permessage-deflate. */
export const deflateOf = (s: ScalesocketSystem): ScalesocketSystem =>
  scalesocket(`${s.id}-deflate`, `${s.label} --deflate`, s.exe, false, ["--deflate"]);

export const WEBSOCKETD: System = {
  id: "websocketd",
  label: "websocketd",
  json: false,
  // One process per connection: a room shared by many clients does not exist there.
  argv: (port, workload) =>
    workload === "echo"
      ? ["websocketd", `--port=${port}`, "--address=127.0.0.1", "--loglevel=fatal", "cat"]
      : null,
};

export const CEILING: System = {
  id: "ceiling",
  label: "ceiling (Bun.serve)",
  json: false,
  argv: (port, workload) =>
    workload === "endpoints"
      ? null
      : [BUN, join(BENCH_DIR, "ceiling.ts"), String(port), ...(workload === "room" ? ["room"] : [])],
};

/** Churn's floor: scalesocket's own way of starting a child under the least server around it (bare.ts). */
export const FLOOR: System = {
  id: "floor",
  label: "floor (bare.ts)",
  json: false,
  argv: (port, workload) =>
    workload === "echo" ? [BUN, join(BENCH_DIR, "bare.ts"), String(port), "cat"] : null,
};

/** A port nobody listens on right now (the kernel's pick, released at once). */
export function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

const tracked = new Set<Subprocess>();

/** Spawns a tracked process, optionally pinned with `taskset -c CPU` (which execs, so the pid is the program's). */
export function spawnTracked(
  argv: string[],
  opts: { cpu?: number; stdin?: "pipe" | "ignore"; stdout?: "pipe" | "ignore"; stderrFile?: string } = {},
): Subprocess<"pipe" | "ignore", "pipe" | "ignore", "ignore"> {
  const cmd = opts.cpu === undefined ? argv : ["taskset", "-c", String(opts.cpu), ...argv];
  const proc = Bun.spawn(cmd, {
    cwd: ROOT,
    stdin: opts.stdin ?? "ignore",
    stdout: opts.stdout ?? "ignore",
    stderr: opts.stderrFile ? Bun.file(opts.stderrFile) : "inherit",
    env: { ...process.env, NO_COLOR: "1" },
    // Its own process group, so stopping it can reach whatever it spawned (websocketd's children).
    detached: true,
  }) as unknown as Subprocess<"pipe" | "ignore", "pipe" | "ignore", "ignore">;
  tracked.add(proc);
  proc.exited.then(() => tracked.delete(proc));
  return proc;
}

export interface RunningServer {
  system: System;
  pid: number;
  port: number;
  base: string;
  /** The last lines the server logged, for a failure report. */
  logTail(): string;
  stop(): Promise<void>;
}

/** Resolves once something accepts TCP connections on the port; rejects when the process exits first. */
async function waitListening(port: number, proc: Subprocess, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`exited (${proc.exitCode ?? proc.signalCode})`);
    try {
      const sock = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
      sock.end();
      return;
    } catch {
      await Bun.sleep(5);
    }
  }
  throw new Error(`not listening after ${timeoutMs} ms`);
}

let serial = 0;

/** Starts a server for the workload and waits until it listens. */
export async function startServer(system: System, workload: Workload, cpu?: number): Promise<RunningServer> {
  const port = freePort();
  const argv = system.argv(port, workload);
  if (argv === null) throw new Error(`${system.label} does not apply to ${workload}`);
  logDir ??= mkdtempSync(join(tmpdir(), "scalesocket-bench-"));
  const logFile = join(logDir, `${system.id}-${workload}-${++serial}.log`);
  const proc = spawnTracked(argv, { cpu, stderrFile: logFile });
  const logTail = () => {
    try {
      return readFileSync(logFile, "utf8").split("\n").slice(-15).join("\n");
    } catch {
      return "";
    }
  };
  try {
    await waitListening(port, proc, 10_000);
  } catch (err) {
    await stopProcess(proc);
    throw new Error(`${system.label} did not start: ${(err as Error).message}\n${logTail()}`);
  }
  return {
    system,
    pid: proc.pid,
    port,
    base: `ws://127.0.0.1:${port}`,
    logTail,
    stop: () => stopProcess(proc),
  };
}

/**
 * SIGTERM, then SIGKILL to the process group after 5 s; then any child that outlived it (scalesocket's
 * children live in process groups of their own) is killed too, if it is still the same process.
 */
export async function stopProcess(proc: Subprocess): Promise<void> {
  const kids = childrenOf(proc.pid).map((pid) => ({ pid, id: identity(pid) }));
  proc.kill("SIGTERM");
  const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(5000).then(() => false)]);
  try {
    process.kill(-proc.pid, "SIGKILL");
  } catch {
    // the group is gone
  }
  if (!exited) await proc.exited;
  for (const kid of kids) {
    const now = identity(kid.pid);
    if (now !== null && now.start === kid.id?.start) {
      try {
        process.kill(kid.pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
  }
}

/**
 * Kills every process this run started that is still running, the last line of defence in `finally`, and
 * removes the server logs.
 */
export async function stopAll(): Promise<void> {
  await Promise.all([...tracked].map((proc) => stopProcess(proc)));
  if (logDir !== null) rmSync(logDir, { recursive: true, force: true });
  logDir = null;
}

/**
 * Runs a benchmark script's `main` and exits with its code; whatever happens (an error, SIGINT, SIGTERM), every
 * process it started is stopped and `cleanup` runs first.
 */
export async function runScript(main: () => Promise<number>, cleanup: () => void = () => {}): Promise<never> {
  let interrupted = false;
  const end = async (code: number): Promise<never> => {
    await stopAll();
    cleanup();
    process.exit(code);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      interrupted = true;
      void end(130);
    });
  }
  let code: number;
  try {
    code = await main();
  } catch (err) {
    // Stopping the processes on a signal fails whatever main was waiting for: not worth a stack trace.
    if (!interrupted) process.stderr.write(`${(err as Error)?.stack ?? err}\n`);
    code = 1;
  }
  return end(interrupted ? 130 : code);
}
