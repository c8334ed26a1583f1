#!/usr/bin/env bun
/**
 * The cluster's costs (`--only=cluster`, or on its own: `bun scripts/bench/cluster.ts`): a real redis-server and
 * scalesocket from source as three servers, a single node, and two nodes of one cluster (the room's owner and
 * an entry node that forwards). Each room has two clients, one idle on the room's node and one that does the
 * echo round trips, so every column does the same work in the room:
 *
 * - single: the active client on a single node;
 * - cluster, direct: the active client on the room's node, which holds the lease (renewals in the background);
 * - cluster, forwarded: the active client on the other node, proxied to the room's node.
 *
 * Server CPU per message is read from /proc (the server processes only, not the children or the clients, which
 * run in this process); a forwarded message costs both nodes, reported summed. Room open time: a fresh room's
 * upgrade to `open`, single node against a cluster node (which takes the lease first, one Redis round trip).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { cpuSeconds } from "./proc.ts";
import { median, Results, sig } from "./table.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SECRET = "bench-cluster-secret-0123456789abcdef";

interface Proc {
  proc: Subprocess;
  port: number;
}

/** Runs scalesocket from source and learns its port from the listening line. */
async function server(argv: string[]): Promise<Proc> {
  const proc = Bun.spawn([process.execPath, join(ROOT, "src/main.ts"), "--addr", "127.0.0.1:0", ...argv], {
    stdout: "ignore",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1" },
  });
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true });
    const m = /listening on \S+:(\d+),/.exec(text);
    if (m) return { proc, port: Number(m[1]) };
  }
  throw new Error(`server exited: ${text}`);
}

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => reject(new Error(`open ${url} timed out`)), 10_000);
    ws.onopen = () => {
      clearTimeout(timer);
      resolve(ws);
    };
    ws.onerror = () => reject(new Error(`cannot open ${url}`));
  });
}

/** `n` sequential round trips on `ws`; the latency of each in µs. */
async function roundTrips(ws: WebSocket, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const back = new Promise<void>((resolve) => {
      ws.onmessage = () => resolve();
    });
    ws.send(`m${i}`);
    await back;
    out.push((performance.now() - t0) * 1000);
  }
  return out;
}

interface EchoResult {
  p50: number;
  cpuPerMsg: number;
}

/** `rooms` rooms, each opened by an idle client on `owner`, driven by an active client on `entry`. */
async function echo(
  owner: Proc,
  entry: Proc,
  prefix: string,
  rooms: number,
  msgs: number,
  pids: number[],
): Promise<EchoResult> {
  const idle: WebSocket[] = [];
  const active: WebSocket[] = [];
  for (let r = 0; r < rooms; r++) idle.push(await open(`ws://127.0.0.1:${owner.port}/${prefix}${r}`));
  for (let r = 0; r < rooms; r++) active.push(await open(`ws://127.0.0.1:${entry.port}/${prefix}${r}`));
  await Promise.all(active.map((ws) => roundTrips(ws, 50)));
  const cpu0 = pids.reduce((s, pid) => s + cpuSeconds(pid), 0);
  const lat = (await Promise.all(active.map((ws) => roundTrips(ws, msgs)))).flat();
  const cpu = pids.reduce((s, pid) => s + cpuSeconds(pid), 0) - cpu0;
  for (const ws of [...idle, ...active]) ws.close();
  return { p50: median(lat), cpuPerMsg: (cpu * 1e6) / (rooms * msgs) };
}

/** Median time from a fresh room's upgrade request to `open`, in ms. */
async function openTimes(p: Proc, prefix: string, n: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const ws = await open(`ws://127.0.0.1:${p.port}/${prefix}${i}`);
    times.push(performance.now() - t0);
    ws.close();
  }
  return median(times);
}

/** Runs the cluster scenarios into `results`; `progress` hears of each step. */
export async function runCluster(
  results: Results,
  progress: (line: string) => void,
  quick = false,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "scalesocket-bench-redis-"));
  const redisPort = 20_000 + Math.floor(Math.random() * 10_000);
  const redis = Bun.spawn(
    [
      "redis-server",
      "--port",
      String(redisPort),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
    ],
    { stdout: "ignore", stderr: "ignore" },
  );
  const procs: Subprocess[] = [redis];
  try {
    await redisAnswers(redisPort, redis);
    const cluster = ["--cluster", `redis://127.0.0.1:${redisPort}`, "--clustersecret", SECRET];
    const single = await server(["cat"]);
    const a = await server([...cluster, "cat"]);
    const b = await server([...cluster, "cat"]);
    procs.push(single.proc, a.proc, b.proc);
    const rooms = quick ? 10 : 20;
    const msgs = quick ? 300 : 1500;
    const reps = quick ? 1 : 3;
    const title = "Cluster: echo";
    const cols = [
      { id: "single", label: "single node" },
      { id: "direct", label: "cluster, direct" },
      { id: "forwarded", label: "cluster, forwarded" },
    ];
    results.group(title, cols);
    const echoLabel = `echo, ${rooms} rooms x (1 active + 1 idle client)`;
    const p50 = { name: "latency p50 µs", format: sig };
    const cpu = { name: "servers' CPU µs/msg", format: sig };
    const openMs = { name: "fresh room: upgrade → open, ms", format: sig };
    for (let rep = 0; rep < reps; rep++) {
      const s = await echo(single, single, `s${rep}-`, rooms, msgs, [single.proc.pid]);
      const d = await echo(a, a, `d${rep}-`, rooms, msgs, [a.proc.pid, b.proc.pid]);
      const f = await echo(a, b, `f${rep}-`, rooms, msgs, [a.proc.pid, b.proc.pid]);
      for (const [id, r] of [
        ["single", s],
        ["direct", d],
        ["forwarded", f],
      ] as const) {
        results.add(echoLabel, p50, id, r.p50);
        results.add(echoLabel, cpu, id, r.cpuPerMsg);
      }
      progress(`  cluster: echo rep ${rep + 1} of ${reps} done`);
    }
    results.note(
      "The clients run in the benchmark's own process on the same 2 cores as the servers; CPU is the servers' " +
        "own (both nodes in the cluster columns), not the children's.",
    );
    const n = quick ? 20 : 100;
    results.group("Cluster: room open", cols.slice(0, 2));
    results.add(`${n} fresh rooms, one after another`, openMs, "single", await openTimes(single, "o-", n));
    results.add(`${n} fresh rooms, one after another`, openMs, "direct", await openTimes(a, "o-", n));
    results.note(
      "A cluster node takes the room's lease (one Redis round trip on loopback) before the spawn.",
    );
  } finally {
    for (const p of procs) p.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const results = new Results();
  await runCluster(results, (line) => process.stderr.write(`${line}\n`), process.argv.includes("--quick"));
  process.stdout.write(results.markdown());
  process.exit(0);
}

/** Resolves once the redis-server on `port` answers PING; throws when it exits first or after 5 s. */
async function redisAnswers(port: number, proc: Subprocess): Promise<void> {
  const deadline = performance.now() + 5000;
  while (performance.now() < deadline) {
    if (proc.exitCode !== null) throw new Error("bench: redis-server exited at start");
    const client = new Bun.RedisClient(`redis://127.0.0.1:${port}`, {
      autoReconnect: false,
      connectionTimeout: 200,
    });
    try {
      if ((await client.send("PING", [])) === "PONG") return;
    } catch {
      // not listening yet
    } finally {
      client.close();
    }
    await Bun.sleep(20);
  }
  throw new Error("bench: redis-server did not answer PING within 5 s");
}
