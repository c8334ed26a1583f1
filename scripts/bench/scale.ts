/**
 * The scenarios of one busy node: a crowd of idle clients over many rooms, a room-open storm, mixed traffic in
 * many rooms, and the observability endpoints with many rooms open. Each runs on a fresh server per repetition
 * (a heap that already grew, or rooms still closing, would blur the next one); systems take turns as elsewhere.
 */
import { readdirSync, readFileSync } from "node:fs";
import { type LoadGenerator, startLoadGenerator } from "./driver.ts";
import { percentile } from "./load/clients.ts";
import type { Plan } from "./plan.ts";
import { childrenOf, cpuTimes, rssKiB, schedTimes } from "./proc.ts";
import {
  type Command,
  type EndpointsResult,
  histogramPercentile,
  type ProbeResult,
  type Result,
  type StormResult,
  type SwarmBroadcastResult,
  type SwarmMixedResult,
  type SwarmOpenResult,
} from "./protocol.ts";
import type { Context } from "./scenarios.ts";
import {
  CEILING,
  type RunningServer,
  type System,
  startServer,
  WEBSOCKETD,
  type Workload,
} from "./servers.ts";
import { type Metric, type Results, sig } from "./table.ts";
import type { Target } from "./targets.ts";

/** Source addresses of the crowd and the mixed load: every one is loopback on Linux (127.0.0.0/8). */
export const SOURCE_ADDRESSES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);
/** Descriptors a process needs besides its sockets and pipes (Bun's own, the log, the listener). */
const FD_MARGIN = 200;
/** What a room of scalesocket holds open: three pipe ends, and a pidfd where Bun.spawn starts the child: the larger. */
const FDS_PER_ROOM = 4;

export const S = {
  openRooms: { name: "time to open every room (a round trip each), s", format: sig },
  connectAll: { name: "time to connect all, s", format: sig },
  rss: { name: "server RSS MiB", format: sig },
  perClient: { name: "server KiB per client", format: sig },
  children: { name: "children", format: (v: number) => v.toFixed(0) },
  childrenRss: { name: "children RSS MiB (sum)", format: sig },
  fds: { name: "server open files", format: (v: number) => v.toFixed(0) },
  broadcast: { name: "one line per room to every client, ms", format: sig },
  roomsPerSec: { name: "rooms opened/s", format: sig },
  restP99: { name: "probe p99 at rest µs", format: sig },
  stormP99: { name: "probe p99 during the storm µs", format: sig },
  stormRatio: { name: "probe p99 storm ÷ rest", format: (v: number) => v.toFixed(2) },
  loopRun: { name: "server's main thread during the storm: on a CPU %", format: sig },
  loopWait: { name: "server's main thread during the storm: runnable, waiting for a CPU %", format: sig },
  p50: { name: "round trip p50 µs", format: sig },
  p99: { name: "round trip p99 µs", format: sig },
  max: { name: "round trip max µs", format: sig },
  deliveries: { name: "deliveries/s", format: sig },
  cpu: { name: "server CPU %", format: sig },
  cpuPerDelivery: { name: "server CPU µs/delivery", format: sig },
  renderP50: { name: "p50 ms", format: sig },
  renderMax: { name: "max ms", format: sig },
  bytes: { name: "body KiB", format: sig },
} satisfies Record<string, Metric>;

/** The soft open-files limit of a process (`Max open files` in /proc/<pid>/limits). */
export function openFilesLimit(pid: number | "self"): number {
  const line = readFileSync(`/proc/${pid}/limits`, "utf8")
    .split("\n")
    .find((l) => l.startsWith("Max open files"));
  const soft = line?.split(/\s{2,}/)[1];
  return soft === undefined || soft === "unlimited" ? Number.POSITIVE_INFINITY : Number(soft);
}

/** How many ephemeral ports one source address has towards one destination (net.ipv4.ip_local_port_range). */
export function ephemeralPorts(): number {
  const [lo, hi] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8")
    .trim()
    .split(/\s+/)
    .map(Number);
  return (hi ?? 0) - (lo ?? 0) + 1;
}

function openFiles(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/**
 * Why a swarm of `clients` over `rooms` rooms cannot run here, or null: each generator holds its share of the
 * sockets, each source address its share of the ports, and the server a socket per client and (scalesocket)
 * FDS_PER_ROOM per room.
 */
export function swarmLimits(clients: number, rooms: number, generators: number): string | null {
  const own = openFilesLimit("self");
  const perGenerator = Math.ceil(clients / generators) + FD_MARGIN;
  if (perGenerator > own)
    return `each of ${generators} load generators needs ${perGenerator} open files, the limit is ${own} (ulimit -n)`;
  const server = clients + FDS_PER_ROOM * rooms + FD_MARGIN;
  if (server > own)
    return `the server needs ${server} open files (${clients} sockets, ${FDS_PER_ROOM} per room), the limit is ${own} (ulimit -n)`;
  const ports = ephemeralPorts();
  const perAddress = Math.ceil(clients / SOURCE_ADDRESSES.length);
  if (perAddress > ports - 1000)
    return `${perAddress} clients per source address, but net.ipv4.ip_local_port_range has ${ports} ports`;
  return null;
}

function rotate<T>(xs: T[], by: number): T[] {
  const k = xs.length === 0 ? 0 : by % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

let serial = 0;
const fresh = (kind: string) => `${kind}${++serial}`;

/** The columns of a table that can run (the others marked), for a workload. */
function columnsFor(
  ctx: Context,
  title: string,
  columns: System[],
  workload: Workload,
  note?: string,
): System[] {
  ctx.results.group(
    title,
    columns.map((s) => ({ id: s.id, label: s.label })),
  );
  if (note !== undefined) ctx.results.note(note);
  return columns.filter((s) => {
    const why = ctx.unavailable.get(s.id) ?? (s.argv(0, workload) === null ? "n/a" : undefined);
    if (why !== undefined) ctx.results.absent(s.id, why);
    return why === undefined;
  });
}

/** Runs `body` on a fresh server of each system, `reps` times, systems in turns; failures are recorded. */
async function eachRun(
  ctx: Context,
  title: string,
  label: string,
  systems: System[],
  workload: Workload,
  body: (server: RunningServer, add: (m: Metric, v: number) => void) => Promise<string[]>,
): Promise<void> {
  for (let rep = 0; rep < ctx.plan.scale.reps; rep++) {
    for (const s of rotate(systems, rep)) {
      const where = `${title} / ${label} / ${s.label} / rep ${rep + 1}`;
      let server: RunningServer | null = null;
      try {
        server = await startServer(s, workload);
        const failures = await body(server, (m, v) => ctx.results.add(label, m, s.id, v));
        for (const f of failures) ctx.failures.push(`${where}: ${f}`);
        if (failures.length > 0) ctx.failures.push(`${where}: server log:\n${server.logTail()}`);
      } catch (err) {
        const tail = server === null ? "" : `\nserver log:\n${server.logTail()}`;
        ctx.failures.push(`${where}: ${(err as Error).message}${tail}`);
      } finally {
        await server?.stop();
      }
    }
  }
  ctx.progress(`  ${title}: ${label} done`);
}

/** Sends one command to every generator at once; resolves with their answers in order. */
function all<R extends Result>(
  gens: LoadGenerator[],
  cmd: (g: number) => Command,
  timeoutMs: number,
): Promise<R[]> {
  return Promise.all(gens.map((gen, g) => gen.run<R>(cmd(g), timeoutMs)));
}

/** A swarm over `gens`: rooms dealt round-robin, each wholly in one generator. Closed by {@link closeSwarm}. */
async function openSwarm(gens: LoadGenerator[], server: RunningServer, rooms: string[], perRoom: number) {
  const t0 = performance.now();
  const results = await all<SwarmOpenResult>(
    gens,
    (g) => ({
      kind: "swarm-open",
      host: "127.0.0.1",
      port: server.port,
      rooms: rooms.filter((_, r) => r % gens.length === g),
      perRoom,
      localAddresses: SOURCE_ADDRESSES,
    }),
    120_000,
  );
  return {
    roomsSeconds: Math.max(...results.map((r) => r.roomsSeconds)),
    seconds: (performance.now() - t0) / 1000,
    failures: results.flatMap((r) => r.failures),
  };
}

async function closeSwarm(gens: LoadGenerator[]): Promise<string[]> {
  const results = await Promise.allSettled(gens.map((gen) => gen.run({ kind: "swarm-close" }, 30_000)));
  return results.flatMap((r) => (r.status === "fulfilled" ? r.value.failures : [String(r.reason)]));
}

async function withGenerators<T>(n: number, body: (gens: LoadGenerator[]) => Promise<T>): Promise<T> {
  const gens = Array.from({ length: n }, () => startLoadGenerator());
  try {
    return await body(gens);
  } finally {
    await Promise.all(gens.map((g) => g.stop()));
  }
}

/** 1. Idle clients over many rooms: connect time, memory, descriptors, then one line per room to everyone. */
export async function runCrowd(ctx: Context): Promise<void> {
  const { crowdClients: clients, crowdRooms: rooms, generators } = ctx.plan.scale;
  const title = "Crowd";
  const label = `${clients} idle clients, ${rooms} rooms`;
  const systems = columnsFor(
    ctx,
    title,
    [ctx.primary, WEBSOCKETD, CEILING],
    "room",
    `${generators} load generators, clients from ${SOURCE_ADDRESSES[0]}…${SOURCE_ADDRESSES.at(-1)}; websocketd: n/a (no rooms).`,
  );
  const why = swarmLimits(clients, rooms, generators);
  if (why !== null) {
    ctx.failures.push(`${title}: cannot run here: ${why}`);
    return;
  }
  await eachRun(ctx, title, label, systems, "room", (server, add) =>
    withGenerators(generators, async (gens) => {
      const failures: string[] = [];
      // One client first, so what every server allocates once is in the baseline, not charged to the crowd.
      await openSwarm(gens.slice(0, 1), server, [fresh("warm")], 1);
      failures.push(...(await closeSwarm(gens.slice(0, 1))));
      await Bun.sleep(300);
      const before = rssKiB(server.pid);
      const names = Array.from({ length: rooms }, (_, i) => `${fresh("crowd")}-${i}`);
      try {
        const opened = await openSwarm(gens, server, names, clients / rooms);
        failures.push(...opened.failures);
        add(S.openRooms, opened.roomsSeconds);
        add(S.connectAll, opened.seconds);
        await Bun.sleep(500);
        const after = rssKiB(server.pid);
        add(S.rss, after / 1024);
        add(S.perClient, (after - before) / clients);
        const kids = childrenOf(server.pid);
        add(S.children, kids.length);
        add(S.childrenRss, kids.reduce((sum, pid) => sum + rssKiB(pid), 0) / 1024);
        add(S.fds, openFiles(server.pid));
        const t0 = performance.now();
        const sent = await all<SwarmBroadcastResult>(
          gens,
          () => ({ kind: "swarm-broadcast", timeoutMs: 30_000 }),
          60_000,
        );
        add(S.broadcast, performance.now() - t0);
        const delivered = sent.reduce((sum, r) => sum + r.delivered, 0);
        failures.push(...sent.flatMap((r) => r.failures));
        if (delivered !== clients) failures.push(`broadcast reached ${delivered} of ${clients} clients`);
      } finally {
        failures.push(...(await closeSwarm(gens)));
      }
      return failures;
    }),
  );
}

/** The p-th percentile of the samples taken between `from` and `to` (ms since the epoch). */
function windowPercentile(probe: ProbeResult, from: number, to: number, p: number): number {
  const xs = probe.us.filter((_, i) => (probe.at[i] as number) >= from && (probe.at[i] as number) <= to);
  return percentile(Float64Array.from(xs).sort(), p);
}

/**
 * 2. A room-open storm against websocketd's connections on the same pattern; meanwhile a probe, in a load
 * generator of its own, times round trips in a room opened before: at rest, then during the storm.
 */
export async function runStorm(ctx: Context): Promise<void> {
  const { stormRooms: rooms, stormConns: conns, stormRestMs } = ctx.plan.scale;
  const title = "Room-open storm";
  const label = `${conns} clients open ${rooms} rooms`;
  const systems = columnsFor(
    ctx,
    title,
    [ctx.primary, WEBSOCKETD, CEILING],
    "echo",
    "websocketd: a process per connection, so its rooms/s are connections/s on the same pattern. " +
      "The probe runs in a load generator of its own. The main thread's shares (of the storm's wall time, from " +
      "/proc/<pid>/task/<pid>/schedstat) are left out for websocketd, whose work is spread over Go's threads.",
  );
  await withGenerators(2, async ([gen, probeGen]) => {
    if (gen === undefined || probeGen === undefined) return;
    await eachRun(ctx, title, label, systems, "echo", async (server, add) => {
      // A smaller storm first, discarded: the server's first spawns and its JIT are not what is measured.
      const warm: Command = {
        kind: "storm",
        base: server.base,
        prefix: fresh("sw"),
        rooms: Math.min(200, rooms),
        conns,
      };
      await gen.run<StormResult>(warm, 60_000);
      const probing = probeGen.run<ProbeResult>(
        { kind: "probe", url: `${server.base}/${fresh("probe")}` },
        180_000,
      );
      let storm: StormResult;
      try {
        // The probe's room opens and settles, then is timed at rest for stormRestMs.
        await Bun.sleep(300 + stormRestMs);
        const before = schedTimes(server.pid);
        const t0 = performance.now();
        storm = await gen.run<StormResult>(
          { kind: "storm", base: server.base, prefix: fresh("storm"), rooms, conns },
          120_000,
        );
        const after = schedTimes(server.pid);
        // Where a slow round trip of the probe waited: the event loop at work, or not given a CPU at all.
        if (before !== null && after !== null && server.system.id !== WEBSOCKETD.id) {
          const wall = performance.now() - t0;
          add(S.loopRun, (100 * (after.run - before.run)) / wall);
          add(S.loopWait, (100 * (after.wait - before.wait)) / wall);
        }
      } finally {
        probeGen.signal({ kind: "probe-stop" });
      }
      const probe = await probing;
      const rest = windowPercentile(probe, storm.startAt - stormRestMs, storm.startAt, 99);
      const during = windowPercentile(probe, storm.startAt, storm.endAt, 99);
      add(S.roomsPerSec, storm.rooms / ((storm.endAt - storm.startAt) / 1000));
      add(S.restP99, rest);
      add(S.stormP99, during);
      add(S.stormRatio, during / rest);
      return [...storm.failures, ...probe.failures];
    });
  });
}

/** 3. Mixed load: every client of many rooms of ten sends at a steady rate; every line reaches its room. */
export async function runMixed(ctx: Context): Promise<void> {
  const {
    mixedClients: clients,
    mixedRoomSize: size,
    mixedRate: rate,
    mixedDurationMs,
    mixedWarmupMs,
  } = ctx.plan.scale;
  const generators = ctx.plan.scale.generators;
  const rooms = Math.floor(clients / size);
  const title = "Mixed load";
  const label = `${clients} clients, ${rooms} rooms, ${rate} msg/s each, ${mixedDurationMs / 1000} s`;
  const systems = columnsFor(
    ctx,
    title,
    [ctx.primary, WEBSOCKETD, CEILING],
    "room",
    "Round trip: a client's message until the room's copy of it comes back to that client. websocketd: n/a (no rooms).",
  );
  const why = swarmLimits(clients, rooms, generators);
  if (why !== null) {
    ctx.failures.push(`${title}: cannot run here: ${why}`);
    return;
  }
  await eachRun(ctx, title, label, systems, "room", (server, add) =>
    withGenerators(generators, async (gens) => {
      const failures: string[] = [];
      const names = Array.from({ length: rooms }, (_, i) => `${fresh("mix")}-${i}`);
      try {
        failures.push(...(await openSwarm(gens, server, names, size)).failures);
        const cpu0 = cpuTimes(server.pid).own;
        const t0 = performance.now();
        const results = await all<SwarmMixedResult>(
          gens,
          () => ({
            kind: "swarm-mixed",
            rate,
            durationMs: mixedDurationMs,
            warmupMs: mixedWarmupMs,
            drainMs: 10_000,
          }),
          mixedDurationMs + 60_000,
        );
        const seconds = (performance.now() - t0) / 1000;
        const cpu = cpuTimes(server.pid).own - cpu0;
        const delivered = results.reduce((sum, r) => sum + r.delivered, 0);
        const histogram = results.flatMap((r) => r.histogram);
        add(S.p50, histogramPercentile(histogram, 50));
        add(S.p99, histogramPercentile(histogram, 99));
        add(S.max, Math.max(...results.map((r) => r.maxUs)));
        add(S.deliveries, delivered / seconds);
        add(S.cpu, (cpu / seconds) * 100);
        add(S.cpuPerDelivery, (cpu / Math.max(1, delivered)) * 1e6);
        failures.push(...results.flatMap((r) => r.failures));
      } finally {
        failures.push(...(await closeSwarm(gens)));
      }
      return failures;
    }),
  );
}

/** 5. `/metrics` and `/api/rooms` with many rooms open. */
export async function runEndpoints(ctx: Context): Promise<void> {
  const { endpointRooms: rooms, endpointRequests: requests } = ctx.plan.scale;
  const title = "Endpoints";
  const systems = columnsFor(ctx, title, [ctx.primary], "endpoints");
  const paths = ["/metrics", "/api/rooms"];
  const gen = startLoadGenerator();
  try {
    for (let rep = 0; rep < ctx.plan.scale.reps; rep++) {
      for (const s of systems) {
        const where = `${title} / ${s.label} / rep ${rep + 1}`;
        let server: RunningServer | null = null;
        try {
          server = await startServer(s, "endpoints");
          const cmd: Command = {
            kind: "endpoints",
            base: server.base,
            prefix: fresh("ep"),
            rooms,
            paths,
            requests,
          };
          const r = await gen.run<EndpointsResult>(cmd, 120_000);
          for (const p of r.paths) {
            const label = `${p.path}, ${rooms} rooms open`;
            ctx.results.add(label, S.renderP50, s.id, p.p50Ms);
            ctx.results.add(label, S.renderMax, s.id, p.maxMs);
            ctx.results.add(label, S.bytes, s.id, p.bytes / 1024);
          }
          for (const f of r.failures) ctx.failures.push(`${where}: ${f}`);
        } catch (err) {
          ctx.failures.push(`${where}: ${(err as Error).message}`);
        } finally {
          await server?.stop();
        }
      }
    }
  } finally {
    await gen.stop();
  }
  ctx.progress(`  ${title}: done`);
}

/** The targets of these scenarios, from the medians of one run. */
export function scaleTargets(r: Results, primary: string, plan: Plan): Target[] {
  const p = plan.scale;
  const out: Target[] = [];
  const verdict = (v: number, ok: boolean, bound: string, miss: string) =>
    !Number.isFinite(v) ? "not measured" : ok ? `met (${bound})` : `missed: ${miss}`;
  const crowd = r.get(
    "Crowd",
    `${p.crowdClients} idle clients, ${p.crowdRooms} rooms`,
    S.perClient.name,
    primary,
  );
  out.push({
    what: `crowd: server memory per idle client (${p.crowdClients} over ${p.crowdRooms} rooms), target ≤ 7 KiB`,
    value: Number.isFinite(crowd) ? `${crowd.toFixed(1)} KiB` : "—",
    verdict: verdict(crowd, crowd <= 7, "≤ 7 KiB", `${crowd.toFixed(1)} > 7 KiB`),
  });
  const storm = `${p.stormConns} clients open ${p.stormRooms} rooms`;
  const rate =
    r.get("Room-open storm", storm, S.roomsPerSec.name, primary) /
    r.get("Room-open storm", storm, S.roomsPerSec.name, "websocketd");
  out.push({
    what: "storm: rooms opened/s vs websocketd's connections/s",
    value: Number.isFinite(rate) ? `${rate.toFixed(2)}×` : "—",
    verdict: verdict(rate, rate >= 1, "≥ 1.00×", `${rate.toFixed(2)}× < 1.00×`),
  });
  const tail = r.get("Room-open storm", storm, S.stormRatio.name, primary);
  out.push({
    what: "storm: a probe's p99 during the storm vs at rest",
    value: Number.isFinite(tail) ? `${tail.toFixed(2)}×` : "—",
    verdict: verdict(tail, tail <= 5, "≤ 5.00×", `${tail.toFixed(2)}× > 5.00×`),
  });
  const mixed = `${p.mixedClients} clients, ${Math.floor(p.mixedClients / p.mixedRoomSize)} rooms, ${p.mixedRate} msg/s each, ${p.mixedDurationMs / 1000} s`;
  const p99 =
    r.get("Mixed load", mixed, S.p99.name, primary) / r.get("Mixed load", mixed, S.p99.name, "ceiling");
  out.push({
    what: "mixed load: round trip p99 vs the ceiling's",
    value: Number.isFinite(p99) ? `${p99.toFixed(2)}×` : "—",
    verdict: verdict(p99, p99 <= 2, "≤ 2.00×", `${p99.toFixed(2)}× > 2.00×`),
  });
  for (const path of ["/metrics", "/api/rooms"]) {
    const ms = r.get("Endpoints", `${path}, ${p.endpointRooms} rooms open`, S.renderP50.name, primary);
    out.push({
      what: `${path} with ${p.endpointRooms} rooms open, p50 time to render, target ≤ 10 ms`,
      value: Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : "—",
      verdict: verdict(ms, ms <= 10, "≤ 10 ms", `${ms.toFixed(1)} > 10 ms`),
    });
  }
  return out;
}
