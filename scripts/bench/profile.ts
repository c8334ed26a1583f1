#!/usr/bin/env bun
/**
 * Profiles scalesocket, from source, in one of the scenarios whose target `npm run bench` misses, and prints where
 * the server's time goes per unit of work: its CPU by thread (`/proc/<pid>/task/*`) and the JavaScript thread's
 * self time by function (`bun --cpu-prof`). The profiler slows the server down; the split, not the total, is
 * what this shows (the totals are `npm run bench`'s). Calls that wake another thread or process (a write to the
 * child's stdin, the message to the spawner thread) collect more samples than the time they take: timed in the
 * server, a write to `cat` took 5-6 µs where the latency profile gives it 49 µs per round trip.
 *
 *   npm run bench:profile -- routing|churn|latency [--top=N]
 *
 * routing: 100 clients in one --json room, the child (bench/fanout.sh) `_to`-addressing 3000 lines to each.
 * churn:   10 loops of connect to a new room (a new `cat`), one round trip, disconnect; 16 s warm-up, 4 s measured.
 * latency: one client, one message in flight, `cat`; server and child on CPU 0, the load generator on CPU 1.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CpuProfile, summarize } from "./cpuprofile.ts";
import { startLoadGenerator } from "./driver.ts";
import { threadTimes } from "./proc.ts";
import type { Command, Result } from "./protocol.ts";
import { BUN, ROOT, runScript, startServer, type Workload } from "./servers.ts";

interface Scenario {
  title: string;
  /** What one unit of work is, for "µs per …", and its plural. */
  unit: string;
  units: string;
  workload: Workload;
  json: boolean;
  /** Server on CPU 0, load generator on CPU 1. */
  pinned: boolean;
  warmup: (base: string, pid: number) => Command;
  measure: (base: string, pid: number) => Command;
  count: (result: Result) => number;
}

const ROUTED_CLIENTS = 100;
let serial = 0;
const room = (base: string, prefix: string) => `${base}/${prefix}-${++serial}`;

const SCENARIOS: Record<string, Scenario> = {
  routing: {
    title: `_to routing: ${ROUTED_CLIENTS} clients in one --json room, 3000 lines addressed to each`,
    unit: "delivery",
    units: "deliveries",
    workload: "fanout",
    json: true,
    pinned: false,
    warmup: (base, pid) => routed(room(base, "w"), pid, 300),
    measure: (base, pid) => routed(room(base, "m"), pid, 3000),
    count: (r) => (r.kind === "fanout" ? r.delivered : 0),
  },
  churn: {
    title: "churn C=10: connect to a new room (a new cat), one round trip, disconnect; 16 s warm-up",
    unit: "connection",
    units: "connections",
    workload: "echo",
    json: false,
    pinned: false,
    warmup: (base, pid) => churn(base, pid, 16_000),
    measure: (base, pid) => churn(base, pid, 4000),
    count: (r) => (r.kind === "churn" ? r.cycles : 0),
  },
  latency: {
    title: "echo C=1, window 1 (latency), cat; server on CPU 0, load generator on CPU 1",
    unit: "round trip",
    units: "round trips",
    workload: "echo",
    json: false,
    pinned: true,
    warmup: (base, pid) => echo(base, "w", pid, 2000),
    measure: (base, pid) => echo(base, "m", pid, 3000),
    count: (r) => (r.kind === "echo" ? r.roundTrips : 0),
  },
};

function routed(url: string, pid: number, linesPerClient: number): Command {
  const clients = ROUTED_CLIENTS;
  return {
    kind: "fanout",
    url,
    clients,
    count: clients * linesPerClient,
    json: true,
    routed: true,
    timeoutMs: 60_000,
    pid,
  };
}

function churn(base: string, pid: number, durationMs: number): Command {
  return { kind: "churn", base, prefix: `c${++serial}`, conns: 10, json: false, durationMs, pid };
}

function echo(base: string, prefix: string, pid: number, durationMs: number): Command {
  const rooms = [`${prefix}-${++serial}`];
  return { kind: "echo", base, rooms, window: 1, json: false, warmupMs: 0, durationMs, pid };
}

/** Where the server writes its profile; removed at the end, whatever happens. */
let profileDir: string | null = null;

const USAGE = `usage: bun scripts/bench/profile.ts ${Object.keys(SCENARIOS).join("|")} [--top=N]`;

const fmt = (micros: number) =>
  micros >= 10 ? micros.toFixed(0) : micros >= 1 ? micros.toFixed(1) : micros.toFixed(2);

async function main(args: string[]): Promise<number> {
  const name = args.find((a) => !a.startsWith("-"));
  const topArg = args.find((a) => a.startsWith("--top="));
  const top = topArg === undefined ? 15 : Number(topArg.slice("--top=".length));
  const unknown = args.find((a) => a !== name && a !== topArg);
  const scenario = name === undefined ? undefined : SCENARIOS[name];
  const problem =
    unknown !== undefined
      ? `unknown argument ${unknown}`
      : name === undefined
        ? "no scenario given"
        : scenario === undefined
          ? `unknown scenario ${name}`
          : !Number.isInteger(top) || top < 1
            ? "--top takes a whole number of at least 1"
            : null;
  if (problem !== null || scenario === undefined) {
    process.stderr.write(`bench-profile: ${problem}\n${USAGE}\n`);
    return 2;
  }
  if (process.platform !== "linux" || (scenario.pinned && !Bun.which("taskset"))) {
    process.stderr.write("bench-profile: Linux only, with taskset (it reads /proc and pins to a core)\n");
    return 2;
  }
  const dir = mkdtempSync(join(tmpdir(), "scalesocket-profile-"));
  profileDir = dir;
  const argv = (port: number) => [
    BUN,
    "--cpu-prof",
    "--cpu-prof-interval=100",
    `--cpu-prof-dir=${dir}`,
    join(ROOT, "src/main.ts"),
    "--addr",
    `127.0.0.1:${port}`,
    ...(scenario.json ? ["--json"] : []),
    ...(scenario.workload === "echo" ? ["cat"] : ["sh", "--", join(ROOT, "scripts/bench/fanout.sh")]),
  ];
  const system = { id: "profiled", label: "scalesocket (source, profiled)", json: scenario.json, argv };
  const server = await startServer(system, scenario.workload, scenario.pinned ? 0 : undefined);
  const load = startLoadGenerator(scenario.pinned ? 1 : undefined);
  process.stderr.write(`warming up (${scenario.title})...\n`);
  await load.run(scenario.warmup(server.base, server.pid), 120_000);
  const threads0 = threadTimes(server.pid);
  const from = Date.now() * 1000;
  const result = await load.run(scenario.measure(server.base, server.pid), 120_000);
  const to = Date.now() * 1000;
  const threads1 = threadTimes(server.pid);
  await load.stop();
  await server.stop();
  if (result.failures.length > 0) {
    process.stderr.write(`bench-profile: the run failed: ${result.failures.join("; ")}\n`);
    return 1;
  }
  const units = scenario.count(result);
  const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
  if (units === 0 || file === undefined) {
    process.stderr.write(`bench-profile: ${units === 0 ? "no work was done" : "no profile was written"}\n`);
    return 1;
  }
  const profile = summarize(JSON.parse(readFileSync(join(dir, file), "utf8")) as CpuProfile, from, to);
  const per = (seconds: number) => fmt((seconds * 1e6) / units);
  const byThread = [...threads1]
    .map(([thread, t]) => [thread, t - (threads0.get(thread) ?? 0)] as const)
    .filter(([, t]) => t > 0)
    .sort((a, b) => b[1] - a[1]);
  const total = byThread.reduce((sum, [, t]) => sum + t, 0);
  const out = [
    `## Profile: ${scenario.title}`,
    "",
    `scalesocket from source under \`bun --cpu-prof\`, ${new Date().toISOString().slice(0, 16)}Z: ` +
      `${units} ${scenario.units} in ${((to - from) / 1e6).toFixed(2)} s.`,
    "",
    `Server CPU (/proc, all threads): ${per(total)} µs per ${scenario.unit}; by thread: ` +
      byThread.map(([thread, t]) => `${thread} ${per(t)}`).join(", "),
    `JavaScript thread, sampled every ${profile.intervalMicros} µs: ${per(profile.micros / 1e6)} µs per ` +
      `${scenario.unit} (${profile.samples} samples). Self time, native calls under their JavaScript name:`,
    "",
    `| µs per ${scenario.unit} | share | function | called from |`,
    "| --- | --- | --- | --- |",
    ...profile.functions
      .slice(0, top)
      .map(
        (f) =>
          `| ${fmt(f.micros / units)} | ${((100 * f.samples) / profile.samples).toFixed(0)}% | ${f.name} | ` +
          `${f.callers.join(" ← ") || "—"} |`,
      ),
    "",
  ];
  process.stdout.write(out.join("\n"));
  return 0;
}

await runScript(
  () => main(process.argv.slice(2)),
  () => {
    if (profileDir !== null) rmSync(profileDir, { recursive: true, force: true });
  },
);
