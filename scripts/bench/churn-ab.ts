#!/usr/bin/env bun
/**
 * Churn C=10 for changes too small for `run.ts --quick` to tell apart on a shared machine: two or more builds of
 * scalesocket and websocketd run side by side (each its own long-lived server, warmed up once), then take turns,
 * order rotating each round, in short windows of churn. The turns of one round are seconds apart, so each
 * build's ratio to websocketd in that round shares most of the machine's drift; the medians of those ratios,
 * and of server CPU ÷ children CPU, are what to compare.
 *
 *   bun scripts/bench/churn-ab.ts [--rounds=N] [--ms=N] NAME=BINARY NAME=BINARY ...
 *
 * A BINARY may be `src` (this checkout's source, run by Bun) or `floor` (scripts/bench/bare.ts). Besides the
 * servers' CPU it reports the load generator's per connection and how idle the machine was in the windows: when
 * both cores are busy, the rate follows the sum of those costs, not the server's alone.
 */
import { readFileSync } from "node:fs";
import { startLoadGenerator } from "./driver.ts";
import { cpuSeconds, threadTimes } from "./proc.ts";
import type { ChurnResult } from "./protocol.ts";
import {
  compiled,
  FLOOR,
  type RunningServer,
  runScript,
  SOURCE,
  startServer,
  WEBSOCKETD,
} from "./servers.ts";

/** Enough connections for Bun's JIT to have compiled the connection path (docs/performance.md). */
const WARMUP_MS = 16_000;

/** Idle and total jiffies of all CPUs so far (`/proc/stat`). */
function machineIdle(): { idle: number; total: number } {
  const fields =
    readFileSync("/proc/stat", "utf8").split("\n", 1)[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  const total = fields.reduce((a, b) => a + b, 0);
  return { idle: (fields[3] ?? 0) + (fields[4] ?? 0), total };
}

function option(args: string[], name: string, fallback: number): number {
  const arg = args.find((a) => a.startsWith(`--${name}=`));
  return arg === undefined ? fallback : Number(arg.slice(name.length + 3));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const range = (xs: number[], digits: number) =>
  `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;

async function main(args: string[]): Promise<number> {
  const rounds = option(args, "rounds", 8);
  const ms = option(args, "ms", 1500);
  const builds = args
    .filter((a) => !a.startsWith("--"))
    .map((a) => {
      const [name, path] = a.split("=", 2) as [string, string | undefined];
      const system = path === "src" ? SOURCE : path === "floor" ? FLOOR : compiled(path ?? name);
      return { name, system };
    });
  if (builds.length === 0) {
    process.stderr.write("usage: bun scripts/bench/churn-ab.ts [--rounds=N] [--ms=N] NAME=BINARY ...\n");
    return 2;
  }
  const entries = [{ name: "websocketd", system: WEBSOCKETD }, ...builds];
  const servers: RunningServer[] = [];
  for (const e of entries) servers.push(await startServer(e.system, "echo"));
  const load = startLoadGenerator();
  let serial = 0;
  const churn = (server: RunningServer, durationMs: number) =>
    load.run<ChurnResult>(
      {
        kind: "churn",
        base: server.base,
        prefix: `ab${++serial}`,
        conns: 10,
        json: false,
        durationMs,
        pid: server.pid,
      },
      60_000,
    );
  for (const server of servers) await churn(server, WARMUP_MS);
  const rates = entries.map(() => [] as number[]);
  const perChild = entries.map(() => [] as number[]);
  /** CPU seconds by thread name over every measured window, and the connections made in them. */
  const threads = entries.map(() => new Map<string, number>());
  const cycles = entries.map(() => 0);
  const loadCpu = entries.map(() => 0);
  const idle = entries.map(() => [] as number[]);
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < servers.length; k++) {
      const i = (k + round) % servers.length;
      const server = servers[i] as RunningServer;
      const before = threadTimes(server.pid);
      const load0 = cpuSeconds(load.pid);
      const idle0 = machineIdle();
      const r = await churn(server, ms);
      loadCpu[i] = (loadCpu[i] ?? 0) + cpuSeconds(load.pid) - load0;
      const idle1 = machineIdle();
      idle[i]?.push((idle1.idle - idle0.idle) / Math.max(1, idle1.total - idle0.total));
      for (const [name, t] of threadTimes(server.pid)) {
        const sum = threads[i] as Map<string, number>;
        sum.set(name, (sum.get(name) ?? 0) + t - (before.get(name) ?? 0));
      }
      cycles[i] = (cycles[i] ?? 0) + r.cycles;
      if (r.failures.length > 0) throw new Error(`${entries[i]?.name}: ${JSON.stringify(r.failures[0])}`);
      rates[i]?.push(r.cycles / r.seconds);
      perChild[i]?.push(r.childCpuSeconds > 0 ? r.cpuSeconds / r.childCpuSeconds : Number.NaN);
    }
    process.stderr.write(
      `round ${round + 1}: ${entries.map((e, i) => `${e.name} ${rates[i]?.at(-1)?.toFixed(0)}/s ${perChild[i]?.at(-1)?.toFixed(2)}`).join(", ")}\n`,
    );
  }
  await load.stop();
  for (const server of servers) await server.stop();
  const wsd = rates[0] as number[];
  const lines = [
    `churn C=10, ${rounds} rounds of ${ms} ms each, ${new Date().toISOString().slice(0, 16)}Z`,
    "",
    "| system | connections/s | ÷ websocketd's, same round | server CPU ÷ children CPU |",
    "| --- | --- | --- | --- |",
    ...entries.map((e, i) => {
      const own = rates[i] as number[];
      const ratios = own.map((r, j) => r / (wsd[j] as number));
      return `| ${e.name} | ${range(own, 0)} | ${i === 0 ? "—" : range(ratios, 2)} | ${range(perChild[i] as number[], 2)} |`;
    }),
    "",
    "Server CPU by thread, µs per connection over all rounds:",
    "",
    ...entries.map((e, i) => {
      const byThread = [...(threads[i] as Map<string, number>)]
        .filter(([, t]) => t > 0)
        .sort((a, b) => b[1] - a[1])
        .map(([name, t]) => `${name} ${((t * 1e6) / Math.max(1, cycles[i] ?? 0)).toFixed(0)}`);
      const gen = ((loadCpu[i] ?? 0) * 1e6) / Math.max(1, cycles[i] ?? 0);
      return `- ${e.name}: ${byThread.join(", ")}; load generator ${gen.toFixed(0)}; machine idle ${range(
        (idle[i] as number[]).map((x) => 100 * x),
        0,
      )} %`;
    }),
    "",
  ];
  process.stdout.write(lines.join("\n"));
  return 0;
}

await runScript(() => main(process.argv.slice(2)));
