/**
 * Test harness for clusters: a real redis-server, scalesocket nodes as processes, and proxies, all on free
 * loopback ports; everything started here is killed by {@link stopCluster}.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePorts, killSpawned, type ServerProcess, spawnServer, untilAsync, within } from "./helpers.ts";

const ROOT = new URL("../", import.meta.url).pathname;
export const SECRET = "cluster-test-secret-0123456789abcdef";
/** Short enough for tests of expiry, long enough for a loaded machine's renewals (fenced after 1.6 s unrenewed). */
export const LEASE_S = 2;
export const GRACE_S = 0.1;

const processes = new Set<Subprocess>();
const dirs: string[] = [];

export class Redis {
  private proc: Subprocess | null = null;
  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<Redis> {
    const [port] = await freePorts(1);
    const redis = new Redis(port);
    await redis.restart();
    return redis;
  }

  /** Starts (again) on the same port, empty; resolves once it answers PING. */
  async restart(): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), "scalesocket-redis-"));
    dirs.push(dir);
    this.proc = Bun.spawn(
      [
        "redis-server",
        "--port",
        String(this.port),
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
    processes.add(this.proc);
    await untilAsync(async () => {
      if (this.proc?.exitCode !== null) throw new Error("redis-server exited");
      const client = new Bun.RedisClient(this.url, { autoReconnect: false, connectionTimeout: 200 });
      try {
        return (await client.send("PING", [])) === "PONG";
      } catch {
        return false;
      } finally {
        client.close();
      }
    }, "redis-server to answer");
  }

  /** Kills it (no goodbye to the clients) and waits until it is gone. */
  async kill(): Promise<void> {
    this.proc?.kill("SIGKILL");
    await within(this.proc?.exited ?? Promise.resolve(0), "redis-server to exit");
  }
}

/** A cluster node: scalesocket with `--cluster`, its port learned from its log. */
export interface Node extends ServerProcess {
  url(room: string): string;
  http(path: string): string;
  advertise: string;
}

/** The child the tests wrap: it announces its pid (cached, so later clients see it too), then echoes. */
export const PID_CHILD = [
  "--json",
  "--cache",
  "tagged:8",
  "sh",
  "--",
  "-c",
  'echo "{\\"pid\\":$$,\\"_cache\\":true}"; exec cat',
];

/** Starts a node on a free port with the cluster flags, then `argv` (more flags and the command). */
export async function startNode(redis: Redis, argv: string[] = PID_CHILD): Promise<Node> {
  const proc = await spawnServer(
    [
      process.execPath,
      join(ROOT, "src/main.ts"),
      ...["--addr", "127.0.0.1:0", "--cluster", redis.url, "--clustersecret", SECRET],
      ...["--lease", String(LEASE_S), "--grace", String(GRACE_S), "--metrics", "--api"],
      ...argv,
    ],
    { env: { ...process.env, NO_COLOR: "1" } },
  );
  const base = `127.0.0.1:${proc.port}`;
  return {
    ...proc,
    advertise: `ws://${base}`,
    url: (room) => `ws://${base}/${room}`,
    http: (path) => `http://${base}${path}`,
  };
}

/** Runs a proxy (haproxy, nginx) until {@link stopCluster}; resolves once `/health` answers through it. */
export async function startProxy(argv: string[], port: number): Promise<Subprocess> {
  const proc = Bun.spawn(argv, { stdout: "ignore", stderr: "pipe" });
  processes.add(proc);
  await untilAsync(async () => {
    if (proc.exitCode !== null) {
      throw new Error(`${argv[0]} exited (${proc.exitCode}): ${await new Response(proc.stderr).text()}`);
    }
    try {
      return (await fetch(`http://127.0.0.1:${port}/health`)).status === 200;
    } catch {
      return false;
    }
  }, `${argv[0]} on port ${port}`);
  return proc;
}

/** A directory for a proxy's files, removed by {@link stopCluster}. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `scalesocket-${prefix}-`));
  dirs.push(dir);
  return dir;
}

/** Kills every node, proxy and redis-server started, and removes their files. */
export async function stopCluster(): Promise<void> {
  await killSpawned();
  for (const p of processes) p.kill("SIGKILL");
  await within(Promise.all([...processes].map((p) => p.exited)), "cluster processes to exit");
  processes.clear();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** The sum of one `/metrics` sample over nodes. */
export async function sumSample(nodes: Node[], series: string): Promise<number> {
  let total = 0;
  for (const n of nodes) {
    const text = await (await within(fetch(n.http("/metrics")), "/metrics")).text();
    const line = text.split("\n").find((l) => l.startsWith(`${series} `));
    total += line === undefined ? 0 : Number(line.slice(series.length + 1));
  }
  return total;
}
