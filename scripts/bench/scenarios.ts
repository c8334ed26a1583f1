/**
 * The scenarios of the issue, each a table: which systems it applies to, what the load generator is asked,
 * and which numbers are kept. Systems are alternated within each repetition, rotating which goes first, so
 * the machine's drift spreads over all of them instead of favouring one.
 */
import { generateKeyPairSync } from "node:crypto";
import { SignJWT } from "jose";
import { tokenVerifier } from "../../src/access/jwt.ts";
import { runCluster } from "./cluster.ts";
import { type LoadGenerator, startLoadGenerator } from "./driver.ts";
import type { Plan } from "./plan.ts";
import type { ChurnResult, Command, EchoResult, FanoutResult, MemoryResult, Result } from "./protocol.ts";
import { runCrowd, runEndpoints, runMixed, runStorm } from "./scale.ts";
import {
  CEILING,
  FLOOR,
  type RunningServer,
  type System,
  spawnTracked,
  startServer,
  stopProcess,
  WEBSOCKETD,
  type Workload,
} from "./servers.ts";
import { measureStartup } from "./startup.ts";
import { type Metric, type Results, sig } from "./table.ts";

export interface Context {
  plan: Plan;
  results: Results;
  /** Lost or reordered messages, unanswered round trips: each one fails the run. */
  failures: string[];
  /** Why a system cannot run at all (not installed, not built), by id. */
  unavailable: Map<string, string>;
  /** scalesocket as measured against the targets: the binary when built, else the source. */
  primary: System;
  source: System;
  compiled: System;
  /** The primary build with `--json`. */
  json: System;
  /** The primary build with the access checks on: `--origin` and `--jwtsecret` ({@link ACCESS_FLAGS}). */
  access: System;
  /** The primary build with `--deflate`. */
  deflate: System;
  progress: (line: string) => void;
  /** Step ids to run (`--only`), or null for all. */
  only: ReadonlySet<string> | null;
}

/** The steps of a run, by the id `--only` takes. */
export const STEP_IDS = [
  "echo-pinned",
  "echo",
  "access",
  "fanout",
  "routing",
  "churn",
  "memory",
  "startup",
  "deflate",
  "crowd",
  "storm",
  "mixed",
  "endpoints",
  "cluster",
] as const;

/** The access checks' scenario: what the server is told, and what every client of it sends. */
const BENCH_ORIGIN = "https://bench.example";
const BENCH_SECRET = "bench-secret-bench-secret-bench-secret";
export const ACCESS_FLAGS = ["--origin", BENCH_ORIGIN, "--jwtsecret", BENCH_SECRET] as const;

/** Cores for `taskset` in the pinned runs: the server and its children on one, the load generator on the other. */
const SERVER_CPU = 0;
const LOADGEN_CPU = 1;

export const M = {
  p50: { name: "latency p50 µs", format: sig },
  p99: { name: "latency p99 µs", format: sig },
  roundTrips: { name: "round trips/s", format: sig },
  cpuPerMsg: { name: "server CPU µs/msg", format: sig },
  deliveries: { name: "deliveries/s", format: sig },
  cpuPerDelivery: { name: "server CPU µs/delivery", format: sig },
  conns: { name: "connections/s", format: sig },
  cpuPerConn: { name: "server CPU µs/connection", format: sig },
  childCpuPerConn: { name: "children CPU µs/connection", format: sig },
  serverPerChild: { name: "server CPU ÷ children CPU", format: (v: number) => v.toFixed(2) },
  rss: { name: "server RSS MiB", format: sig },
  perClient: { name: "server KiB per idle client", format: sig },
  children: { name: "children", format: (v: number) => v.toFixed(0) },
  childrenRss: { name: "children RSS MiB (sum)", format: sig },
  listen: { name: "exec → listening (TCP connect), ms", format: sig },
  startup: { name: "exec → first websocket open, ms", format: sig },
  verify: { name: "µs per token verification", format: sig },
} satisfies Record<string, Metric>;

let serial = 0;
/** A room prefix never used before in this run, so every measurement starts fresh children. */
const fresh = (kind: string) => `${kind}${++serial}`;

function rotate<T>(xs: T[], by: number): T[] {
  const k = xs.length === 0 ? 0 : by % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

interface GroupSpec<C> {
  title: string;
  columns: System[];
  workload: Workload;
  pinned: boolean;
  cases: C[];
  label: (c: C) => string;
  command: (c: C, server: RunningServer) => Command;
  /** A short run of the same kind, discarded: JIT and first-spawn costs are not what is measured. */
  warmup: (server: RunningServer) => Command;
  record: (c: C, system: System, result: Result, add: (metric: Metric, value: number) => void) => void;
}

/** Marks the columns that cannot run in this table; returns those that can. */
function applicable(ctx: Context, columns: System[], workload: Workload): System[] {
  const out: System[] = [];
  for (const s of columns) {
    const why = ctx.unavailable.get(s.id);
    if (why !== undefined) ctx.results.absent(s.id, why);
    else if (s.argv(0, workload) === null) ctx.results.absent(s.id, "n/a");
    else out.push(s);
  }
  return out;
}

/** Runs a table's cases against one long-lived server per system (rooms are fresh for every run). */
async function runGroup<C>(ctx: Context, spec: GroupSpec<C>): Promise<void> {
  if (spec.cases.length === 0) return;
  ctx.results.group(
    spec.title,
    spec.columns.map((s) => ({ id: s.id, label: s.label })),
  );
  const systems = applicable(ctx, spec.columns, spec.workload);
  let gen: LoadGenerator = startLoadGenerator(spec.pinned ? LOADGEN_CPU : undefined);
  const servers = new Map<string, RunningServer>();
  const runOne = async (server: RunningServer, cmd: Command): Promise<Result> => {
    try {
      return await gen.run(cmd, 90_000);
    } catch (err) {
      // A load generator that timed out may still be busy: replace it rather than read its stale answer.
      await gen.stop();
      gen = startLoadGenerator(spec.pinned ? LOADGEN_CPU : undefined);
      throw new Error(`${(err as Error).message}\nserver log:\n${server.logTail()}`);
    }
  };
  try {
    for (const s of systems) {
      servers.set(s.id, await startServer(s, spec.workload, spec.pinned ? SERVER_CPU : undefined));
    }
    for (const s of systems) {
      const server = servers.get(s.id) as RunningServer;
      await runOne(server, spec.warmup(server)).catch((err) =>
        ctx.progress(`  warm-up of ${s.label} failed: ${(err as Error).message}`),
      );
    }
    for (const c of spec.cases) {
      for (let rep = 0; rep < ctx.plan.reps; rep++) {
        for (const s of rotate(systems, rep)) {
          const server = servers.get(s.id) as RunningServer;
          const where = `${spec.title} / ${spec.label(c)} / ${s.label} / rep ${rep + 1}`;
          try {
            const result = await runOne(server, spec.command(c, server));
            for (const f of result.failures) ctx.failures.push(`${where}: ${f}`);
            spec.record(c, s, result, (metric, value) => ctx.results.add(spec.label(c), metric, s.id, value));
          } catch (err) {
            ctx.failures.push(`${where}: ${(err as Error).message}`);
          }
        }
      }
      ctx.progress(`  ${spec.title}: ${spec.label(c)} done`);
    }
  } finally {
    await gen.stop();
    await Promise.all([...servers.values()].map((s) => s.stop()));
  }
}

const echoLabel = (c: { conns: number; window: number }) => `C=${c.conns} window=${c.window}`;

function echoGroup(ctx: Context, pinned: boolean): GroupSpec<{ conns: number; window: number }> {
  const { plan } = ctx;
  return {
    title: pinned ? "Echo, pinned" : "Echo",
    columns: [ctx.source, ctx.compiled, ctx.json, WEBSOCKETD, CEILING],
    workload: "echo",
    pinned,
    cases: pinned ? plan.echoPinned : plan.echo,
    label: echoLabel,
    command: (c, server) => {
      const prefix = fresh("e");
      return {
        kind: "echo",
        base: server.base,
        rooms: Array.from({ length: c.conns }, (_, i) => `${prefix}-${i}`),
        window: c.window,
        json: server.system.json,
        warmupMs: plan.echoWarmupMs,
        durationMs: plan.echoDurationMs,
        pid: server.pid,
      };
    },
    warmup: (server) => ({
      kind: "echo",
      base: server.base,
      rooms: Array.from({ length: 10 }, (_, i) => `${fresh("w")}-${i}`),
      window: 8,
      json: server.system.json,
      warmupMs: 100,
      durationMs: 300,
      pid: server.pid,
    }),
    record: (c, _s, result, add) => {
      const r = result as EchoResult;
      if (c.window === 1) {
        add(M.p50, r.p50Us);
        add(M.p99, r.p99Us);
      } else {
        add(M.roundTrips, r.roundTrips / r.seconds);
      }
      add(M.cpuPerMsg, (r.cpuSeconds / Math.max(1, r.roundTrips)) * 1e6);
    },
  };
}

function fanoutCommand(ctx: Context, server: RunningServer, clients: number, routed: boolean): Command {
  const { plan } = ctx;
  const count = routed
    ? plan.routedLinesPerClient * clients
    : Math.min(plan.fanoutMaxLines, Math.floor(plan.fanoutDeliveries / clients));
  return {
    kind: "fanout",
    url: `${server.base}/${fresh("f")}`,
    clients,
    count,
    json: routed || server.system.json,
    routed,
    timeoutMs: 60_000,
    pid: server.pid,
  };
}

function recordFanout(
  ctx: Context,
  label: string,
  system: System,
  result: Result,
  add: (m: Metric, v: number) => void,
) {
  const r = result as FanoutResult;
  add(M.deliveries, r.delivered / r.seconds);
  add(M.cpuPerDelivery, (r.cpuSeconds / Math.max(1, r.delivered)) * 1e6);
  if (r.slow > 0) {
    ctx.results.note(
      `${system.label}, ${label}: ${r.slow} client(s) closed with 1013 (too slow) in one repetition`,
    );
  }
}

function fanoutGroup(ctx: Context): GroupSpec<number> {
  return {
    title: "Fan-out",
    columns: [ctx.source, ctx.compiled, ctx.json, WEBSOCKETD, CEILING],
    workload: "fanout",
    pinned: false,
    cases: ctx.plan.fanoutClients,
    label: (n) => `N=${n}`,
    command: (n, server) => fanoutCommand(ctx, server, n, false),
    warmup: (server) => ({ ...(fanoutCommand(ctx, server, 10, false) as object), count: 5000 }) as Command,
    record: (n, s, r, add) => recordFanout(ctx, `N=${n}`, s, r, add),
  };
}

function routedGroup(ctx: Context): GroupSpec<number> {
  return {
    title: "JSON `_to` routing",
    columns: [ctx.json, WEBSOCKETD, CEILING],
    workload: "fanout",
    pinned: false,
    cases: [ctx.plan.routedClients],
    label: (n) => `N=${n}, ${ctx.plan.routedLinesPerClient} lines each`,
    command: (n, server) => fanoutCommand(ctx, server, n, true),
    warmup: (server) => fanoutCommand(ctx, server, 10, true),
    record: (n, s, r, add) => recordFanout(ctx, `N=${n}`, s, r, add),
  };
}

function churnGroup(ctx: Context): GroupSpec<number> {
  return {
    title: "Churn",
    columns: [ctx.source, ctx.compiled, WEBSOCKETD, FLOOR, CEILING],
    workload: "echo",
    pinned: false,
    cases: ctx.plan.churnConns,
    label: (c) => `C=${c}`,
    command: (c, server) => ({
      kind: "churn",
      base: server.base,
      prefix: fresh("c"),
      conns: c,
      json: server.system.json,
      durationMs: ctx.plan.churnDurationMs,
      pid: server.pid,
    }),
    warmup: (server) => ({
      kind: "churn",
      base: server.base,
      prefix: fresh("w"),
      conns: 10,
      json: server.system.json,
      durationMs: ctx.plan.churnWarmupMs,
      pid: server.pid,
    }),
    record: (_c, _s, result, add) => {
      const r = result as ChurnResult;
      add(M.conns, r.cycles / r.seconds);
      add(M.cpuPerConn, (r.cpuSeconds / Math.max(1, r.cycles)) * 1e6);
      // Every child is the same `cat` under every server, so this ratio cancels the machine's drift in speed.
      if (r.childCpuSeconds > 0) {
        add(M.childCpuPerConn, (r.childCpuSeconds / Math.max(1, r.cycles)) * 1e6);
        add(M.serverPerChild, r.cpuSeconds / r.childCpuSeconds);
      }
    },
  };
}

/** A token for the access scenario: valid for an hour, any room. */
function benchToken(key: Parameters<SignJWT["sign"]>[0], alg: string): Promise<string> {
  return new SignJWT({ sub: "bench" }).setProtectedHeader({ alg }).setExpirationTime("1h").sign(key);
}

/**
 * Echo C=100 with the access checks off and on, the same clients for both (an `Origin` and a `?token=` on
 * every connection, which the server without the flags ignores): what the checks cost per message once the
 * connections are open. The bound is 5%.
 */
async function accessGroup(ctx: Context): Promise<GroupSpec<{ conns: number; window: number }>> {
  const token = await benchToken(new TextEncoder().encode(BENCH_SECRET), "HS256");
  const base = echoGroup(ctx, true);
  return {
    ...base,
    title: "Echo, pinned, access checks",
    columns: [ctx.primary, ctx.access],
    cases: [{ conns: 100, window: 32 }],
    command: (c, server) =>
      ({
        ...(base.command(c, server) as object),
        origin: BENCH_ORIGIN,
        query: `token=${token}`,
      }) as Command,
    warmup: (server) =>
      ({ ...(base.warmup(server) as object), origin: BENCH_ORIGIN, query: `token=${token}` }) as Command,
  };
}

/**
 * What verifying one token costs the server, per connection: jose's verification as the server calls it,
 * in this process, for an HMAC secret and an ECDSA key (a JWKS or PEM key costs what its algorithm costs).
 */
async function runTokenCost(ctx: Context): Promise<void> {
  ctx.results.group("Token verification (in-process, jose)", [{ id: "jose", label: "per connection" }]);
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const cases: [string, ReturnType<typeof tokenVerifier>, string][] = [
    [
      "HS256 (--jwtsecret)",
      tokenVerifier({ kind: "jwtsecret", secret: BENCH_SECRET }),
      await benchToken(new TextEncoder().encode(BENCH_SECRET), "HS256"),
    ],
    [
      "ES256 (--jwtkey)",
      tokenVerifier({
        kind: "jwtkey",
        file: "(generated)",
        text: ec.publicKey.export({ type: "spki", format: "pem" }) as string,
      }),
      await benchToken(ec.privateKey, "ES256"),
    ],
  ];
  const n = ctx.plan.quick ? 2000 : 20_000;
  for (const [label, verify, token] of cases) {
    for (let rep = 0; rep < ctx.plan.reps; rep++) {
      for (let i = 0; i < 200; i++) await verify(token, "room");
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const r = await verify(token, "room");
        if ("status" in r) throw new Error(`the bench token was refused: ${r.reason}`);
      }
      ctx.results.add(label, M.verify, "jose", ((performance.now() - t0) * 1000) / n);
    }
  }
}

/**
 * What `--deflate` costs: the primary build with and without it, on one echo case and one fan-out case. Bun
 * compresses a published line once per client that agreed to compression, not once per room, so fan-out is where
 * it shows.
 */
async function runDeflate(ctx: Context): Promise<void> {
  const columns = [ctx.primary, ctx.deflate];
  await runGroup(ctx, {
    ...echoGroup(ctx, false),
    title: "Echo, --deflate",
    columns,
    cases: [{ conns: 100, window: 32 }],
  });
  await runGroup(ctx, {
    ...fanoutGroup(ctx),
    title: "Fan-out, --deflate",
    columns,
    cases: [100],
  });
}

/** Memory needs a fresh server for every measurement: a heap that already grew would hide the clients' cost. */
async function runMemory(ctx: Context): Promise<void> {
  const { plan } = ctx;
  const title = "Memory";
  const columns = [ctx.source, ctx.compiled, WEBSOCKETD, CEILING];
  ctx.results.group(
    title,
    columns.map((s) => ({ id: s.id, label: s.label })),
  );
  const systems = applicable(
    ctx,
    columns.filter((s) => s !== WEBSOCKETD),
    "echo",
  );
  ctx.results.absent(WEBSOCKETD.id, "n/a");
  ctx.results.note("websocketd: n/a, it runs one process per connection and has no rooms.");
  const gen = startLoadGenerator();
  try {
    for (const rooms of plan.memoryRooms) {
      const label = `${plan.memoryClients} idle clients, ${rooms} room${rooms > 1 ? "s" : ""}`;
      for (let rep = 0; rep < plan.reps; rep++) {
        for (const s of rotate(systems, rep)) {
          const server = await startServer(s, "echo");
          try {
            const cmd: Command = {
              kind: "memory",
              base: server.base,
              prefix: fresh("m"),
              clients: plan.memoryClients,
              rooms,
              settleMs: 300,
              pid: server.pid,
            };
            const r = await gen.run<MemoryResult>(cmd, 90_000);
            const add = (m: Metric, v: number) => ctx.results.add(label, m, s.id, v);
            add(M.rss, r.rssAfterKiB / 1024);
            add(M.perClient, (r.rssAfterKiB - r.rssBeforeKiB) / plan.memoryClients);
            add(M.children, r.children);
            add(M.childrenRss, r.childrenRssKiB / 1024);
          } catch (err) {
            ctx.failures.push(`${title} / ${label} / ${s.label}: ${(err as Error).message}`);
          } finally {
            await server.stop();
          }
        }
      }
      ctx.progress(`  ${title}: ${label} done`);
    }
  } finally {
    await gen.stop();
  }
}

async function runStartup(ctx: Context): Promise<void> {
  const title = "Start-up";
  const columns = [ctx.source, ctx.compiled, WEBSOCKETD, CEILING];
  ctx.results.group(
    title,
    columns.map((s) => ({ id: s.id, label: s.label })),
  );
  const systems = applicable(ctx, columns, "echo");
  for (let rep = 0; rep < ctx.plan.startupReps; rep++) {
    for (const s of rotate(systems, rep)) {
      try {
        const t = await measureStartup(s, spawnTracked, stopProcess);
        ctx.results.add("cold start", M.listen, s.id, t.listenMs);
        ctx.results.add("cold start", M.startup, s.id, t.openMs);
      } catch (err) {
        ctx.failures.push(`${title} / ${s.label}: ${(err as Error).message}`);
      }
    }
  }
}

/** Every scenario of the plan, in order; the results land in `ctx.results`, hard failures in `ctx.failures`. */
export async function runAll(ctx: Context): Promise<void> {
  const { plan } = ctx;
  const steps: [(typeof STEP_IDS)[number], string, boolean, () => Promise<void>][] = [
    ["echo-pinned", "echo, pinned", plan.echoPinned.length > 0, () => runGroup(ctx, echoGroup(ctx, true))],
    ["echo", "echo", plan.echo.length > 0, () => runGroup(ctx, echoGroup(ctx, false))],
    [
      "access",
      "access checks",
      true,
      async () => {
        await runGroup(ctx, await accessGroup(ctx));
        await runTokenCost(ctx);
      },
    ],
    ["fanout", "fan-out", true, () => runGroup(ctx, fanoutGroup(ctx))],
    ["routing", "_to routing", true, () => runGroup(ctx, routedGroup(ctx))],
    ["churn", "churn", true, () => runGroup(ctx, churnGroup(ctx))],
    ["memory", "memory", true, () => runMemory(ctx)],
    ["startup", "start-up", true, () => runStartup(ctx)],
    ["deflate", "--deflate", true, () => runDeflate(ctx)],
    ["crowd", "crowd", true, () => runCrowd(ctx)],
    ["storm", "room-open storm", true, () => runStorm(ctx)],
    ["mixed", "mixed load", true, () => runMixed(ctx)],
    ["endpoints", "endpoints", true, () => runEndpoints(ctx)],
    ["cluster", "cluster", Bun.which("redis-server") !== null, () => runCluster(ctx.results, ctx.progress)],
  ];
  for (const [id, name, enabled, step] of steps) {
    if (!enabled || (ctx.only !== null && !ctx.only.has(id))) continue;
    const t0 = performance.now();
    ctx.progress(`${name}…`);
    await step();
    ctx.progress(`${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
}
