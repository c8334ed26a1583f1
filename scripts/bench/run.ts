#!/usr/bin/env bun
/**
 * Benchmarks scalesocket against websocketd and the raw Bun limit (a minimal Bun.serve server, the ceiling); churn
 * also against the floor (bare.ts: scalesocket's way of starting a child with none of its features).
 *
 *   npm run bench            # the full plan, under 15 minutes
 *   npm run bench -- --quick # every target, fewer cases and shorter runs, under 3 minutes
 *
 * Everything listens on 127.0.0.1; every process started is killed at the end. Lost or reordered messages
 * fail the run (exit code 1). See docs/performance.md for what each number means.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { compileBinary } from "../ship/compile.ts";
import { hostTarget } from "../ship/targets.ts";
import { FULL, type Plan, QUICK } from "./plan.ts";
import { ACCESS_FLAGS, type Context, runAll, STEP_IDS } from "./scenarios.ts";
import {
  accessOf,
  compiled,
  deflateOf,
  jsonOf,
  runScript,
  type ScalesocketSystem,
  SOURCE,
} from "./servers.ts";
import { describeMachine, ensureWebsocketd, websocketdVersion } from "./setup.ts";
import { Results } from "./table.ts";
import { targets, targetsMarkdown } from "./targets.ts";

const USAGE =
  `usage: bun scripts/bench/run.ts [--quick] [--only=STEP,...] [--binary=PATH]  (steps: ${STEP_IDS.join(", ")})\n` +
  "The binary column is a standalone binary compiled from this checkout first, or the one --binary names.";

/** Where the binary compiled for this run goes; removed at the end. */
let buildDir: string | null = null;

/**
 * The binary to benchmark: `--binary=PATH` as given, or one compiled from this checkout's src/ the way releases
 * are (so the column never measures a stale dist/ build). Null, with a note, when it cannot be compiled here.
 */
async function binaryFor(given: string | undefined): Promise<string | null> {
  if (given !== undefined) return given;
  buildDir = mkdtempSync(join(tmpdir(), "scalesocket-bench-bin-"));
  const path = join(buildDir, "scalesocket");
  const started = performance.now();
  try {
    await compileBinary(hostTarget().bun, path);
  } catch (err) {
    progress(`could not compile the binary (${(err as Error).message}): its column is skipped.`);
    return null;
  }
  progress(
    `compiled the binary from this checkout in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return path;
}

function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function main(args: string[]): Promise<number> {
  if (args.includes("-h") || args.includes("--help")) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const unknown = args.filter(
    (a) => a !== "--quick" && !a.startsWith("--only=") && !a.startsWith("--binary="),
  );
  if (unknown.length > 0) {
    process.stderr.write(`bench: unknown argument ${unknown[0]}\n${USAGE}\n`);
    return 2;
  }
  const onlyArg = args.find((a) => a.startsWith("--only="));
  const only = onlyArg === undefined ? null : new Set(onlyArg.slice("--only=".length).split(","));
  const badStep = [...(only ?? [])].find((id) => !(STEP_IDS as readonly string[]).includes(id));
  if (badStep !== undefined) {
    process.stderr.write(`bench: unknown step ${badStep}\n${USAGE}\n`);
    return 2;
  }
  const binaryArg = args.find((a) => a.startsWith("--binary="))?.slice("--binary=".length);
  const given = binaryArg === undefined ? undefined : resolve(binaryArg);
  if (given !== undefined && !existsSync(given)) {
    process.stderr.write(`bench: --binary: no file at ${given}\n${USAGE}\n`);
    return 2;
  }
  if (process.platform !== "linux") {
    process.stderr.write("bench: Linux only (it reads /proc and pins with taskset)\n");
    return 2;
  }
  if (!Bun.which("taskset")) {
    process.stderr.write("bench: taskset not found (Debian: apt-get install util-linux)\n");
    return 2;
  }
  const plan: Plan = args.includes("--quick") ? QUICK : FULL;
  const started = performance.now();
  const unavailable = new Map<string, string>();
  const wsd = await ensureWebsocketd(progress);
  if (wsd !== null) unavailable.set("websocketd", wsd);
  const binary = await binaryFor(given);
  const compiledSystem: ScalesocketSystem = compiled(binary ?? "scalesocket");
  if (binary === null) unavailable.set(compiledSystem.id, "not compiled");
  const primary = binary === null ? SOURCE : compiledSystem;
  const ctx: Context = {
    plan,
    results: new Results(),
    failures: [],
    unavailable,
    primary,
    source: SOURCE,
    compiled: compiledSystem,
    json: jsonOf(primary),
    access: accessOf(primary, "--origin --jwtsecret", ACCESS_FLAGS),
    deflate: deflateOf(primary),
    progress,
    only,
  };

  await runAll(ctx);

  const minutes = ((performance.now() - started) / 60_000).toFixed(1);
  const report = [
    `## scalesocket benchmarks (${plan.quick ? "--quick" : "full"}), ${new Date().toISOString().slice(0, 16)}Z`,
    "",
    `Machine: ${describeMachine()}. websocketd ${wsd === null ? await websocketdVersion() : "not installed"}.`,
    `Targets use ${primary.label}. Each cell: median (min–max) of ${plan.reps} repetitions ` +
      `(start-up: ${plan.startupReps}); ${minutes} min in all.`,
    "",
    ctx.results.markdown(),
    "### Targets",
    "",
    targetsMarkdown(targets(ctx.results, primary.id, ctx.json.id, compiledSystem.id, plan)),
    "",
  ];
  if (binary === null)
    report.push("The binary column is missing: the binary could not be compiled here.", "");
  else report.push(`The binary: ${given ?? "compiled from this checkout's src/ for this run"}.`, "");
  process.stdout.write(report.join("\n"));
  if (ctx.failures.length > 0) {
    process.stderr.write(`\nFAILED: ${ctx.failures.length} loss/order check(s) failed:\n`);
    for (const f of ctx.failures) process.stderr.write(`- ${f}\n`);
    return 1;
  }
  process.stderr.write("\nAll loss and order checks passed.\n");
  return 0;
}

await runScript(
  () => main(process.argv.slice(2)),
  () => {
    if (buildDir !== null) rmSync(buildDir, { recursive: true, force: true });
  },
);
