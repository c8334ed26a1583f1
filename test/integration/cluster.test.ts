/**
 * The cluster end to end: a real redis-server, nodes as processes, HAProxy and nginx running the deploy/
 * configs. Leases are 2 s (`LEASE_S`), so expiry and fencing happen within a test's time.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { signClient } from "../../src/cluster/identity.ts";
import {
  LEASE_S,
  type Node,
  PID_CHILD,
  Redis,
  SECRET,
  startNode,
  startProxy,
  stopCluster,
  sumSample,
  tempDir,
} from "../cluster.ts";
import {
  alive,
  FIXTURES,
  freePorts,
  spawnServer,
  TestClient,
  untilAsync,
  upgradeAnswer,
  upgradeStatus,
  within,
} from "../helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const HAVE = Bun.which("redis-server") !== null;

afterEach(stopCluster);

/** The pid a room's child announced (the first message, replayed from the cache to later clients). */
async function pidOf(client: TestClient): Promise<number> {
  const first = JSON.parse(await client.next()) as { pid?: number };
  if (typeof first.pid !== "number")
    throw new Error(`expected the child's pid first, got ${JSON.stringify(first)}`);
  return first.pid;
}

/** Opens a client of `url` and returns it with its room's child's pid. */
async function enter(url: string): Promise<[TestClient, number]> {
  const client = await TestClient.open(url);
  return [client, await pidOf(client)];
}

/** The next message that is not a join or leave notice, parsed. */
async function nextData(client: TestClient): Promise<Record<string, unknown>> {
  for (;;) {
    const m = JSON.parse(await client.next()) as Record<string, unknown>;
    if (m.t !== "Join" && m.t !== "Leave") return m;
  }
}

describe.skipIf(!HAVE)("cluster", () => {
  test("clients of one room on two nodes share one child; _to, join/leave, cache and metadata cross the hop", async () => {
    const redis = await Redis.start();
    const [a, b] = await Promise.all([startNode(redis), startNode(redis)]);
    const [c1, pid] = await enter(a.url("room1"));
    // c2 reaches b, which forwards it to a (the room's node): the cached pid says it is the same child.
    const [c2, pid2] = await enter(b.url("room1?via=b"));
    expect(pid2).toBe(pid);
    // c1 hears c2 join (after its own join notice, which cat echoes too).
    expect(JSON.parse(await c1.next())).toEqual({ t: "Join", _from: 1 });
    expect(JSON.parse(await c1.next())).toEqual({ t: "Join", _from: 2 });
    // Addressed to c1 only (IDs are the owner's): c2 does not get it.
    c2.send(JSON.stringify({ _to: 1, m: "for one" }));
    expect(await nextData(c1)).toEqual({ _to: 1, m: "for one", _from: 2 });
    c1.send(JSON.stringify({ m: "to all" }));
    expect(await nextData(c2)).toEqual({ m: "to all", _from: 1 });
    c1.send(JSON.stringify({ _meta: true, topic: "chess" }));
    // The lobby on b lists the room as a's, with its metadata (written beside the lease at each renewal).
    await untilAsync(
      async () => {
        const rooms = (await (await fetch(b.http("/api/rooms"))).json()) as Record<string, unknown>[];
        const room = rooms.find((r) => r.name === "room1");
        return (
          room?.node === a.advertise &&
          room.connections === 2 &&
          JSON.stringify(room.metadata) === '{"_from":1,"topic":"chess"}'
        );
      },
      "b's lobby to list room1 on a",
      LEASE_S * 1000 + 2000,
    );
    expect(await sumSample([a], 'scalesocket_cluster_forwarded_open{direction="in"}')).toBe(1);
    expect(await sumSample([b], 'scalesocket_cluster_forwarded_open{direction="out"}')).toBe(1);
    expect(await sumSample([a, b], "scalesocket_children_spawned_total")).toBe(1);
    expect(JSON.parse(await c1.next())).toEqual({ m: "to all", _from: 1 });
    c2.close();
    expect(JSON.parse(await c1.next())).toEqual({ t: "Leave", _from: 2 });
    await within(c2.closed, "c2 closed");
  });

  test("30 rooms x 10 clients through HAProxy: 30 children; a node added: still one child per room", async () => {
    const redis = await Redis.start();
    const nodes = await Promise.all([1, 2, 3, 4].map(() => startNode(redis)));
    const [p1, p2] = await freePorts(2);
    const dir = tempDir("haproxy");
    const base = readFileSync(join(ROOT, "deploy/haproxy/haproxy.cfg"), "utf8");
    const config = (port: number, servers: Node[]) => {
      let text = base.replace("bind :8080", `bind 127.0.0.1:${port}`);
      servers.slice(0, 3).forEach((n, i) => {
        text = text.replace(`10.0.0.${i + 1}:9000`, `127.0.0.1:${n.port}`);
      });
      // The node added: one more server line, as a user adds it.
      for (const [i, n] of servers.slice(3).entries())
        text += `    server node${i + 4} 127.0.0.1:${n.port}\n`;
      const file = join(dir, `haproxy-${port}.cfg`);
      writeFileSync(file, text);
      return file;
    };
    await startProxy(["haproxy", "-f", config(p1, nodes.slice(0, 3)), "-db"], p1);
    const rooms = Array.from({ length: 30 }, (_, i) => `game-${i}`);
    const clients = await Promise.all(
      rooms.flatMap((room) => Array.from({ length: 10 }, () => enter(`ws://127.0.0.1:${p1}/${room}`))),
    );
    const pidByRoom = new Map<string, number>();
    clients.forEach(([, pid], i) => {
      const room = rooms[Math.floor(i / 10)] as string;
      expect(pidByRoom.get(room) ?? pid).toBe(pid);
      pidByRoom.set(room, pid);
    });
    expect(new Set(pidByRoom.values()).size).toBe(30);
    expect(await sumSample(nodes, "scalesocket_rooms_open")).toBe(30);

    // A fourth node joins the balancer: about a quarter of the rooms now hash to it, and it forwards them.
    await startProxy(["haproxy", "-f", config(p2, nodes), "-db"], p2);
    const more = await Promise.all(rooms.map((room) => enter(`ws://127.0.0.1:${p2}/${room}`)));
    expect(more.map(([, pid]) => pid)).toEqual(rooms.map((room) => pidByRoom.get(room) as number));
    expect(await sumSample(nodes, "scalesocket_rooms_open")).toBe(30);
    expect(await sumSample(nodes, "scalesocket_children_spawned_total")).toBe(30);
    expect(await sumSample(nodes, 'scalesocket_cluster_forwarded_total{direction="out"}')).toBeGreaterThan(0);
    for (const [c] of [...clients, ...more]) c.close();
  }, 30_000);

  test("--maxbuffer holds across the hop: a forwarded client that stops reading is closed 1013, the room goes on", async () => {
    const redis = await Redis.start();
    const flood = ["--maxbuffer", "512K", `${FIXTURES}flood.sh`, "--", "40000", "100"];
    const [a, b] = await Promise.all([startNode(redis, flood), startNode(redis, flood)]);
    const good = await TestClient.open(a.url("flood"));
    // A client of b that completes the handshake and then reads nothing.
    const sock = net.connect(b.port, "127.0.0.1");
    await within(new Promise((resolve) => sock.once("connect", resolve)), "raw connect");
    sock.write(
      "GET /flood HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    const head = await within(new Promise<Buffer>((resolve) => sock.once("data", resolve)), "the handshake");
    expect(head.toString("latin1")).toStartWith("HTTP/1.1 101");
    sock.pause();
    await untilAsync(
      async () => (await sumSample([a], 'scalesocket_cluster_forwarded_open{direction="in"}')) === 1,
      "the forwarded client to reach a",
    );
    good.send("go");
    await untilAsync(
      async () => (await sumSample([b], "scalesocket_slow_clients_closed_total")) === 1,
      "b to close its stalled client",
      20_000,
    );
    // The room's node never held the backlog: the client that keeps up gets every line.
    await good.waitFor(40_000, 20_000);
    expect(String(good.received.at(-1)).split(" ")[0]).toBe("40000");
    expect(await sumSample([a], "scalesocket_slow_clients_closed_total")).toBe(0);
    sock.destroy();
  }, 45_000);

  test("nginx's config: one child per room", async () => {
    if (!Bun.which("nginx")) throw new Error("nginx is not installed");
    const redis = await Redis.start();
    const nodes = await Promise.all([1, 2, 3].map(() => startNode(redis)));
    const [port] = await freePorts(1);
    const dir = tempDir("nginx");
    let site = readFileSync(join(ROOT, "deploy/nginx-cluster/scalesocket.conf"), "utf8").replace(
      "listen 8080;",
      `listen 127.0.0.1:${port};`,
    );
    nodes.forEach((n, i) => {
      site = site.replace(`10.0.0.${i + 1}:9000`, `127.0.0.1:${n.port}`);
    });
    writeFileSync(join(dir, "site.conf"), site);
    writeFileSync(
      join(dir, "nginx.conf"),
      `error_log ${dir}/error.log;\nevents {}\nhttp {\n  access_log off;\n  include ${dir}/site.conf;\n}\n`,
    );
    await startProxy(
      ["nginx", "-p", dir, "-c", join(dir, "nginx.conf"), "-g", `daemon off; pid ${dir}/nginx.pid;`],
      port,
    );
    const rooms = ["a", "b", "c", "d", "e", "f"];
    const clients = await Promise.all(
      rooms.flatMap((room) => [0, 1, 2].map(() => enter(`ws://127.0.0.1:${port}/${room}/x?q=1`))),
    );
    expect(new Set(clients.map(([, pid]) => pid)).size).toBe(rooms.length);
    expect(await sumSample(nodes, "scalesocket_children_spawned_total")).toBe(rooms.length);
  });

  test("the owner SIGKILLed: its room gets a fresh child on another node within the lease and a second", async () => {
    const redis = await Redis.start();
    const [a, b] = await Promise.all([startNode(redis), startNode(redis)]);
    const [, pid] = await enter(a.url("lost"));
    const [forwarded] = await enter(b.url("lost"));
    a.proc.kill("SIGKILL");
    const killedAt = Date.now();
    // A client forwarded to the dead node hears that its room's node went away.
    expect(await forwarded.waitClosed()).toEqual({ code: 1012, reason: "room's node went away" });
    let fresh = 0;
    // Until the lease runs out, b forwards to a, which is gone (1013, retry) : retry as a client would.
    await untilAsync(
      async () => {
        const client = new TestClient(b.url("lost"));
        try {
          await within(client.opened, "open");
          fresh = await pidOf(client);
          return true;
        } catch {
          return false;
        }
      },
      "a fresh child on b",
      LEASE_S * 1000 + 1000,
    );
    expect(fresh).not.toBe(pid);
    expect(Date.now() - killedAt).toBeLessThan(LEASE_S * 1000 + 1000);
  });

  test("Redis stopped: the owner fences at lease end, never two live children; Redis back: rooms open again", async () => {
    const redis = await Redis.start();
    const [a, b] = await Promise.all([startNode(redis), startNode(redis)]);
    const [direct, pid] = await enter(a.url("fenced"));
    const [forwarded] = await enter(b.url("fenced"));
    const pids = new Set([pid]);
    let overlap = false;
    const sampler = setInterval(() => {
      if ([...pids].filter(alive).length > 1) overlap = true;
    }, 5);
    try {
      await redis.kill();
      // Both clients, the forwarded one through b, hear why.
      expect(await direct.waitClosed(LEASE_S * 1000 + 1000)).toEqual({ code: 1012, reason: "room moved" });
      expect(await forwarded.waitClosed()).toEqual({ code: 1012, reason: "room moved" });
      await untilAsync(async () => !alive(pid), "the fenced child to be gone", LEASE_S * 1000);
      // No directory: a new room is refused at the upgrade.
      expect(await upgradeStatus(b.url("other"))).toBe(503);
      await redis.restart();
      // Service resumes by itself: the room reopens (here on b) with a fresh child.
      let fresh = 0;
      await untilAsync(
        async () => {
          const client = new TestClient(b.url("fenced"));
          try {
            await within(client.opened, "open");
            fresh = await pidOf(client);
            pids.add(fresh);
            return true;
          } catch {
            return false;
          }
        },
        "the room to open again",
        10_000,
      );
      expect(fresh).not.toBe(pid);
      await enter(a.url("another"));
    } finally {
      clearInterval(sampler);
    }
    expect(overlap).toBe(false);
    expect(await sumSample([a], 'scalesocket_cluster_lease_events_total{event="fenced"}')).toBe(1);
  }, 20_000);

  test("a forged, expired or misdirected forwarding header is refused (403)", async () => {
    const redis = await Redis.start();
    const a = await startNode(redis);
    const client = { ip: "6.6.6.6", port: 1, query: "", headers: [], user: "admin", protocol: "" };
    const status = (value: string) =>
      upgradeAnswer(a.http("/room"), { "X-Scalesocket-Forward": value }).then((r) => r.status);
    expect(await status(signClient("another-secret-0123456789abcdefghij", { ...client, room: "room" }))).toBe(
      403,
    );
    expect(await status(signClient(SECRET, { ...client, room: "room" }, Date.now() - 60_000))).toBe(403);
    expect(await status(signClient(SECRET, { ...client, room: "elsewhere" }))).toBe(403);
    expect(await status("e30.AAAA")).toBe(403);
    expect(await sumSample([a], 'scalesocket_cluster_forward_failures_total{reason="bad_signature"}')).toBe(
      4,
    );
    expect(await sumSample([a], "scalesocket_rooms_open")).toBe(0);
  });

  test("Redis unreachable at start: exit 1, the URL named without its password", async () => {
    const [port] = await freePorts(1);
    const proc = Bun.spawn(
      [
        process.execPath,
        join(ROOT, "src/main.ts"),
        ...["--addr", "127.0.0.1:0", "--cluster", `redis://:hunter2secret@127.0.0.1:${port}/2`],
        ...["--clustersecret", SECRET, "cat"],
      ],
      { stdout: "ignore", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } },
    );
    expect(await within(proc.exited, "the server to exit")).toBe(1);
    const err = await new Response(proc.stderr).text();
    expect(err).toContain(`redis://:***@127.0.0.1:${port}/2`);
    expect(err).not.toContain("hunter2secret");
  });

  test("drain, clustered: /health 503, its open room served to its end, a new room opened on another node", async () => {
    const redis = await Redis.start();
    const [a, b] = await Promise.all([startNode(redis, ["--drain", "10", ...PID_CHILD]), startNode(redis)]);
    const [c1, pid] = await enter(a.url("old"));
    a.proc.kill("SIGTERM");
    await untilAsync(async () => (await fetch(a.http("/health"))).status === 503, "a's /health to say 503");
    // Its own room still takes clients and works.
    const [c2, pid2] = await enter(a.url("old"));
    expect(pid2).toBe(pid);
    c2.send(JSON.stringify({ m: 1 }));
    expect(await nextData(c1)).toEqual({ m: 1, _from: 2 });
    // A new room is handed to b: forwarded there, its child is b's.
    const [c3] = await enter(a.url("new"));
    expect(await sumSample([b], "scalesocket_rooms_open")).toBe(1);
    c3.close();
    c1.close();
    c2.close();
    // The room empty, the node stops (well before --drain's 10 s).
    expect(await within(a.proc.exited, "a to exit once its room is empty")).toBe(0);
  });
});

describe("drain, single node", () => {
  test("/health 503, the open room served to its end, no new room, then exit 0", async () => {
    const server = await spawnServer([
      process.execPath,
      join(ROOT, "src/main.ts"),
      "--addr",
      "127.0.0.1:0",
      "--drain",
      "10",
      "--grace",
      "0.1",
      "cat",
    ]);
    const url = (room: string) => `ws://127.0.0.1:${server.port}/${room}`;
    const c1 = await TestClient.open(url("old"));
    server.proc.kill("SIGTERM");
    await untilAsync(
      async () => (await fetch(`http://127.0.0.1:${server.port}/health`)).status === 503,
      "/health to say 503",
    );
    expect(await upgradeStatus(url("new"))).toBe(503);
    const c2 = await TestClient.open(url("old"));
    c2.send("still here");
    expect(await c1.next()).toBe("still here");
    c1.close();
    c2.close();
    expect(await within(server.proc.exited, "the server to exit once its room is empty")).toBe(0);
  });
});
