import { afterEach, describe, expect, test } from "bun:test";
import { createServer, type Server } from "node:net";
import { PortPool, portIsFree } from "../../../src/child/ports.ts";
import { within } from "../../helpers.ts";

const listeners: { stop(): void }[] = [];

function releaseAll(): void {
  for (const l of listeners.splice(0)) l.stop();
}

afterEach(releaseAll);

/** Holds a port on 127.0.0.1 (port 0: the system picks a free one) until the test ends. */
function hold(port = 0): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } });
  listeners.push({ stop: () => listener.stop(true) });
  return listener.port;
}

/** Holds a port on the wildcard address from another API, to show any listener on the port counts. */
async function holdWildcard(port: number): Promise<void> {
  const server: Server = createServer();
  await within(new Promise<void>((resolve) => server.listen(port, "0.0.0.0", resolve)), "wildcard listen");
  listeners.push({ stop: () => server.close() });
}

/** A port that was free a moment ago: bound on port 0, then released. */
function freePort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

describe("PortPool", () => {
  test("hands out START..END, both included, then null when used up", () => {
    const pool = new PortPool(9001, 9003);
    expect(pool.available).toBe(3);
    expect([pool.take(), pool.take(), pool.take()]).toEqual([9001, 9002, 9003]);
    expect(pool.take()).toBeNull();
    expect(pool.available).toBe(0);
  });

  test("START:START is one port", () => {
    const pool = new PortPool(9000, 9000);
    expect(pool.take()).toBe(9000);
    expect(pool.take()).toBeNull();
  });

  test("a port given back is reused, after the ports that were waiting longer", () => {
    const pool = new PortPool(9001, 9003);
    expect(pool.take()).toBe(9001);
    expect(pool.give(9001)).toBe(true);
    expect([pool.take(), pool.take(), pool.take(), pool.take()]).toEqual([9002, 9003, 9001, null]);
    pool.give(9003);
    expect(pool.take()).toBe(9003);
  });

  test("a port is never handed out twice: a double give, a port never taken, or outside the range is ignored", () => {
    const pool = new PortPool(9001, 9002);
    const a = pool.take() as number;
    const b = pool.take() as number;
    expect(pool.give(a)).toBe(true);
    expect(pool.give(a)).toBe(false);
    expect(pool.give(9000)).toBe(false);
    expect(pool.give(9003)).toBe(false);
    expect(pool.give(9001.5)).toBe(false);
    expect([pool.take(), pool.take()]).toEqual([a, null]);
    expect(pool.give(b)).toBe(true);
    expect(pool.available).toBe(1);
  });

  test("the ring wraps around many times", () => {
    const pool = new PortPool(100, 104);
    const seen: number[] = [];
    for (let i = 0; i < 23; i++) {
      const port = pool.take() as number;
      seen.push(port);
      pool.give(port);
    }
    expect(seen.slice(0, 7)).toEqual([100, 101, 102, 103, 104, 100, 101]);
    expect(pool.available).toBe(5);
  });

  test("a bad range is refused", () => {
    expect(() => new PortPool(0, 10)).toThrow(RangeError);
    expect(() => new PortPool(10, 65536)).toThrow(RangeError);
    expect(() => new PortPool(10, 9)).toThrow("invalid port range 10:9");
  });
});

describe("portIsFree and takeFree", () => {
  test("a held port is busy, and free again once let go", () => {
    const port = hold();
    expect(portIsFree(port)).toBe(false);
    releaseAll();
    expect(portIsFree(port)).toBe(true);
  });

  test("the probe lets go at once: a child can bind the port right after", () => {
    const port = freePort();
    expect(portIsFree(port)).toBe(true);
    const bind = Bun.spawnSync([
      "python3",
      "-c",
      `import socket; socket.socket().bind(("127.0.0.1", ${port})); print("bound")`,
    ]);
    expect(bind.stdout.toString().trim()).toBe("bound");
  });

  test("takeFree skips a port another listener holds, and keeps it for later", async () => {
    const busy = hold();
    const pool = new PortPool(busy, busy);
    expect(pool.takeFree()).toBeNull();
    expect(pool.available).toBe(1);
    releaseAll();
    expect(pool.takeFree()).toBe(busy);
    expect(pool.available).toBe(0);
  });

  test("takeFree skips a wildcard listener and hands out the next free port", async () => {
    const busy = freePort();
    await holdWildcard(busy);
    // The neighbour of a just-free port is usually free too; skip the test's claim about it if it is not.
    const next = busy + 1 <= 65535 && portIsFree(busy + 1) ? busy + 1 : null;
    const pool = new PortPool(busy, Math.min(busy + 1, 65535));
    const got = pool.takeFree();
    expect(got).not.toBe(busy);
    expect(got).toBe(next);
  });

  test("takeFree never hands one port to two callers at once", async () => {
    const start = freePort();
    const pool = new PortPool(start, Math.min(start + 3, 65535));
    const got = [pool.takeFree(), pool.takeFree(), pool.takeFree()];
    const ports = got.filter((p): p is number => p !== null);
    expect(new Set(ports).size).toBe(ports.length);
  });
});
