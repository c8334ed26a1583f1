import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MessageCache } from "../../src/cache.ts";
import type { Connection } from "../../src/env.ts";
import { Room } from "../../src/room.ts";
import { PersistedCaches } from "../../src/rooms.ts";
import { alive, FIXTURES, start, stopAll, TestClient, until, upgradeStatus } from "../helpers.ts";

/** Files that let the lingering children below end; written before the servers stop, so none waits its grace. */
const releases: string[] = [];

afterEach(async () => {
  for (const file of releases.splice(0)) writeFileSync(file, "");
  await stopAll();
});

/** A cache holding one message of `n` bytes. */
function cacheOf(n: number): MessageCache {
  const cache = new MessageCache(8, 1 << 20);
  cache.push("x".repeat(n));
  return cache;
}

describe("persisted caches", () => {
  test("at most maxCaches are kept: the least recently closed goes first", () => {
    const kept = new PersistedCaches(3, 1 << 20);
    for (const name of ["a", "b", "c", "d"]) kept.keep(name, cacheOf(1));
    expect(kept.size).toBe(3);
    expect(kept.take("a")).toBeUndefined();
    expect(kept.take("b")?.bytes).toBe(1);
  });

  test("at most maxBytes are kept in all, the least recently closed dropped until the rest fit", () => {
    const kept = new PersistedCaches(100, 10);
    kept.keep("a", cacheOf(4));
    kept.keep("b", cacheOf(4));
    expect(kept.bytes).toBe(8);
    kept.keep("c", cacheOf(5));
    // 13 bytes: a alone goes, b and c fit in 10.
    expect(kept.size).toBe(2);
    expect(kept.bytes).toBe(9);
    expect(kept.take("a")).toBeUndefined();
    kept.keep("d", cacheOf(10));
    expect([kept.take("b"), kept.take("c")]).toEqual([undefined, undefined]);
    expect(kept.bytes).toBe(10);
  });

  test("the order is by closing: a cache taken and kept again is the most recent, whatever its first keep", () => {
    const kept = new PersistedCaches(2, 1 << 20);
    kept.keep("a", cacheOf(1));
    kept.keep("b", cacheOf(1));
    const a = kept.take("a") as MessageCache;
    kept.keep("a", a);
    kept.keep("c", cacheOf(1));
    expect(kept.take("b")).toBeUndefined();
    expect(kept.take("a")).toBe(a);
  });

  test("keeping a room's cache again replaces the old one, whose bytes no longer count", () => {
    const kept = new PersistedCaches(10, 1 << 20);
    kept.keep("a", cacheOf(6));
    const newer = cacheOf(2);
    kept.keep("a", newer);
    expect([kept.size, kept.bytes]).toEqual([1, 2]);
    expect(kept.take("a")).toBe(newer);
    expect([kept.size, kept.bytes]).toEqual([0, 0]);
  });
});

/**
 * A command line whose child echoes its input and, once its input ends, stays alive until the test writes the
 * release file: a room closed by its last client stays "stopping" exactly as long as the test wants. The grace
 * period is long, so only the release ends it.
 */
function lingering(script = "cat"): { argv: string[]; release: () => void } {
  const file = join(mkdtempSync(join(tmpdir(), "rooms-test-")), "release");
  releases.push(file);
  return {
    argv: ["sh", "--", "-c", `${script}; while [ ! -e "$0" ]; do sleep 0.02; done`, file],
    release: () => writeFileSync(file, ""),
  };
}

const LONG_GRACE = { graceMs: 60_000 };

/** What the upgrade knows of a connection, for asking the directory directly. */
function connection(id: number, room: string): Connection {
  return {
    id,
    room,
    query: "",
    remoteIp: "127.0.0.1",
    remotePort: 1,
    pathInfo: "",
    scriptName: `/${room}`,
    protocol: "",
    headers: new Headers(),
    user: null,
  };
}

describe("--maxrooms", () => {
  test("admit refuses a new room while full with 503; enter re-checks with 1013; open rooms stay enterable", async () => {
    const t = start(["--maxrooms", "1", "cat"]);
    const one = await TestClient.open(t.url("one"));
    const { directory, counters } = t.server;
    const reason = "too many rooms: at most 1 (--maxrooms)";
    expect(directory.admit("one")).toEqual({ kind: "here" });
    expect(directory.admit("two")).toEqual({ kind: "refuse", status: 503, reason, label: "max_rooms" });
    // Two upgrades for new rooms can both be admitted before either opens: the second one's enter refuses.
    expect(directory.enter(connection(1000, "two"))).toEqual({ code: 1013, reason });
    expect(counters.refused).toBe(1);
    const entered = directory.enter(connection(1001, "one"));
    expect(entered).toBeInstanceOf(Room);
    expect(directory.rooms.get("one")).toBe(entered as Room);
    expect(directory.rooms.size).toBe(1);
    one.close();
  });

  test("a room whose child is still stopping counts against --maxrooms until its child is gone", async () => {
    const child = lingering();
    const t = start(["--maxrooms", "1", ...child.argv], LONG_GRACE);
    const { directory } = t.server;
    const one = await TestClient.open(t.url("one"));
    one.send("a");
    expect(await one.next()).toBe("a");
    one.close();
    await until(() => directory.stopping === 1, "room one to be stopping");
    expect(directory.rooms.size).toBe(0);
    expect(await upgradeStatus(t.url("two"))).toBe(503);
    expect(directory.admit("one")).toEqual({
      kind: "refuse",
      status: 503,
      reason: "too many rooms: at most 1 (--maxrooms)",
      label: "max_rooms",
    });
    child.release();
    await until(() => directory.stopping === 0, "room one's child to be gone");
    const two = await TestClient.open(t.url("two"));
    two.send("b");
    expect(await two.next()).toBe("b");
    expect([...directory.rooms.keys()]).toEqual(["two"]);
  });
});

describe("--tcp ports", () => {
  test("a closed room's port returns to the pool only once its child is gone", async () => {
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = probe.port;
    probe.stop(true);
    // The TCP child ends when its connection does; its parent shell lingers, and holds the port, until released.
    const child = lingering(`${FIXTURES}tcp-echo.py`);
    const t = start(["--tcp", "--tcpports", `${port}:${port}`, "--delay", "0", ...child.argv], LONG_GRACE);
    const one = await TestClient.open(t.url("one"));
    one.send("x");
    expect(await one.next()).toBe("echo: x");
    one.close();
    await until(() => t.server.directory.stopping === 1, "room one to be stopping");
    const refused = new TestClient(t.url("two"));
    expect(await refused.waitClosed()).toEqual({
      code: 1013,
      reason: `no free TCP port for a new room (--tcpports ${port}:${port})`,
    });
    child.release();
    await until(() => t.server.directory.stopping === 0, "room one's child to be gone");
    const two = await TestClient.open(t.url("two"));
    two.send("y");
    expect(await two.next()).toBe("echo: y");
    expect(t.server.rooms.get("two")?.tcpPort).toBe(port);
  });
});

describe("shutdown", () => {
  test("waits for the children of rooms closed earlier and still stopping", async () => {
    // The child ignores SIGTERM and outlives its input: only SIGKILL, after twice the grace period, ends it.
    const t = start(["sh", "--", "-c", "trap '' TERM; echo $$; cat; while :; do sleep 0.02; done"]);
    const a = await TestClient.open(t.url("r"));
    const pid = Number(await a.next());
    a.close();
    await until(() => t.server.directory.stopping === 1, "the room to be stopping");
    expect(alive(pid)).toBe(true);
    await t.server.stop();
    expect(alive(pid)).toBe(false);
    expect(t.server.directory.stopping).toBe(0);
  });

  test("ends open rooms: their clients get 1001 and their children are gone when it settles", async () => {
    const t = start([`${FIXTURES}pid.sh`]);
    const a = await TestClient.open(t.url("r"));
    const pid = Number((await a.next()).split(" ")[1]);
    await t.server.directory.shutdown();
    expect(alive(pid)).toBe(false);
    expect(t.server.rooms.size).toBe(0);
    expect(await a.waitClosed()).toEqual({ code: 1001, reason: "server shutting down" });
  });
});
