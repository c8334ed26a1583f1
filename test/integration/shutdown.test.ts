import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import {
  alive,
  FIXTURES,
  freePorts,
  killSpawned,
  type ServerProcess,
  spawnServer,
  start,
  stopAll,
  TestClient,
  until,
  upgradeStatus,
  within,
} from "../helpers.ts";

const MAIN = new URL("../../src/main.ts", import.meta.url).pathname;
const procs: Subprocess[] = [];

afterEach(async () => {
  for (const p of procs.splice(0)) p.kill("SIGKILL");
  await killSpawned();
  await stopAll();
});

/** Runs the real CLI in its own process; resolves once it listens (see spawnServer). */
function runServer(argv: string[]): Promise<ServerProcess> {
  return spawnServer([process.execPath, MAIN, "--addr", "127.0.0.1:0", "--grace", "0.5", ...argv]);
}

describe("shutdown", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    test(`${signal} closes clients, stops every child and its group, and exits 0`, async () => {
      const { proc, port, log } = await runServer([`${FIXTURES}grandchild.sh`]);
      const a = await TestClient.open(`ws://127.0.0.1:${port}/one`);
      const b = await TestClient.open(`ws://127.0.0.1:${port}/two`);
      const pids = [...(await a.next()).split(" ").slice(1), ...(await b.next()).split(" ").slice(1)].map(
        Number,
      );
      expect(pids.every(alive)).toBe(true);
      proc.kill(signal);
      expect(await a.waitClosed()).toEqual({ code: 1001, reason: "server shutting down" });
      expect((await b.waitClosed()).code).toBe(1001);
      expect(await within(proc.exited, "the server to exit")).toBe(0);
      // The server waited for its children; the grandchildren got SIGKILL with their group, which the kernel
      // carries out on its own schedule, so they are polled for (bounded) rather than given a time limit.
      await until(() => !pids.some(alive), "every child and grandchild to be gone");
      expect(log()).toContain(`${signal}: stopping children, then closing clients`);
    });
  }

  test("a child that ends on the end of its input: its clients get its last lines, then 1001", async () => {
    const t = start([`${FIXTURES}goodbye-eof.sh`]);
    const a = await TestClient.open(t.url("r"));
    expect(await a.next()).toBe("ready");
    const b = await TestClient.open(t.url("r"));
    a.send("x");
    for (const c of [a, b]) expect(await c.next()).toBe("got x");
    const stopped = t.server.stop();
    for (const c of [a, b]) {
      expect(await c.next()).toBe("goodbye on EOF");
      expect(await c.next()).toBe("last line");
      expect(await c.waitClosed()).toEqual({ code: 1001, reason: "server shutting down" });
    }
    await within(stopped, "the shutdown");
  });

  test("--passstderr: what the child says on stderr on its way out reaches its clients too, before 1001", async () => {
    const t = start(["--passstderr", `${FIXTURES}goodbye-stderr.sh`]);
    const a = await TestClient.open(t.url("r"));
    expect(await a.next()).toBe("ready");
    const stopped = t.server.stop();
    expect(await a.waitClosed()).toEqual({ code: 1001, reason: "server shutting down" });
    // stdout and stderr are two pipes: their lines may arrive in either order.
    expect(a.received.map(String).sort()).toEqual(["goodbye on stderr", "last line", "ready"]);
    await within(stopped, "the shutdown");
  });

  test("SIGTERM: a child that ignores the end of its input says goodbye from its TERM handler, and its clients hear it", async () => {
    const { proc, port } = await runServer([`${FIXTURES}goodbye-term.sh`]);
    const a = await TestClient.open(`ws://127.0.0.1:${port}/r`);
    expect(await a.next()).toBe("ready");
    proc.kill("SIGTERM");
    expect(await a.next()).toBe("goodbye from TERM");
    expect(await a.waitClosed()).toEqual({ code: 1001, reason: "server shutting down" });
    expect(a.received).toEqual(["ready", "goodbye from TERM"]);
    expect(await within(proc.exited, "the server to exit")).toBe(0);
  });

  test("SIGHUP is logged and ignored: clients and children carry on", async () => {
    const s = await runServer(["cat"]);
    const a = await TestClient.open(`ws://127.0.0.1:${s.port}/r`);
    s.proc.kill("SIGHUP");
    await s.waitLog(/SIGHUP: ignored \(restart the server to reload its certificates\)/);
    a.send("still here");
    expect(await a.next()).toBe("still here");
    expect(await upgradeStatus(`ws://127.0.0.1:${s.port}/other`)).toBe(101);
    s.proc.kill("SIGTERM");
    expect(await a.waitClosed()).toEqual({ code: 1001, reason: "server shutting down" });
    expect(await within(s.proc.exited, "the server to exit")).toBe(0);
  });

  test("new connections are refused with 503 while the server shuts down", async () => {
    // The child ignores EOF and SIGTERM until the test lets it go, so the shutdown is held open on cue.
    const go = join(mkdtempSync(join(tmpdir(), "ss-shutdown-")), "go");
    const child = `trap '' TERM; echo ready; while [ ! -e ${go} ]; do sleep 0.01; done`;
    const t = start(["sh", "--", "-c", child], { graceMs: 60_000 });
    const a = await TestClient.open(t.url("r"));
    expect(await a.next()).toBe("ready");
    const stopped = t.server.stop();
    expect(await upgradeStatus(t.url("r"))).toBe(503);
    expect(await upgradeStatus(t.url("new"))).toBe(503);
    expect(t.logs.join("")).toContain("refused a websocket: server is shutting down");
    // The client stays until its child is gone, so that it hears the child's last words.
    expect(a.ws.readyState).toBe(WebSocket.OPEN);
    writeFileSync(go, "");
    expect(await a.waitClosed()).toEqual({ code: 1001, reason: "server shutting down" });
    await within(stopped, "the shutdown to finish once the child exits");
  });

  test("SIGTERM with rooms over --tcp, attached or still in their --delay, and stdio rooms in their --delay", async () => {
    const [lo, hi] = await freePorts(2);
    const tcp = ["--tcp", "--tcpports", `${lo}:${hi}`];
    const cases = [
      { name: "tcp attached", argv: [...tcp, "--delay", "0", `${FIXTURES}tcp-echo.py`], attached: true },
      { name: "tcp in delay", argv: [...tcp, "--delay", "60", `${FIXTURES}tcp-echo.py`], attached: false },
      { name: "stdio in delay", argv: ["--delay", "60", `${FIXTURES}pid.sh`], attached: false },
    ];
    for (const { name, argv, attached } of cases) {
      const s = await runServer(argv);
      const a = await TestClient.open(`ws://127.0.0.1:${s.port}/r`);
      const pid = Number((await s.waitLog(/\[r\] started \S+ \(pid (\d+)/))[1]);
      if (attached) {
        a.send("hi");
        expect(await a.next()).toBe("echo: hi");
      }
      s.proc.kill("SIGTERM");
      expect({ name, close: await a.waitClosed() }).toEqual({
        name,
        close: { code: 1001, reason: "server shutting down" },
      });
      expect({ name, code: await within(s.proc.exited, `${name}: the server to exit`) }).toEqual({
        name,
        code: 0,
      });
      await until(() => !alive(pid), `${name}: the child to be gone`);
    }
  });

  test("-v and -vv log debug lines (a dropped invalid JSON message); without them there are none", async () => {
    for (const [flags, shown] of [
      [[], false],
      [["-v"], true],
      [["-vv"], true],
      [["-v", "-v"], true],
    ] as const) {
      const s = await runServer([...flags, "--frame=json", "cat"]);
      const a = await TestClient.open(`ws://127.0.0.1:${s.port}/r`);
      a.send("not json");
      a.send('{"n":1}');
      expect(await a.next()).toBe('{"_from":1,"n":1}');
      a.close();
      // An info line logged after the message was dropped: everything before it is in the log by then.
      await s.waitLog(/\[r\] stopped cat/);
      const line = /DEBUG \[r\] dropped a message from client 1 that is not a JSON object/;
      expect({ flags, debug: line.test(s.log()) }).toEqual({ flags, debug: shown });
      s.proc.kill("SIGTERM");
      expect(await within(s.proc.exited, "the server to exit")).toBe(0);
    }
  });

  test("a bad flag exits 2 before binding anything", async () => {
    const proc = Bun.spawn([process.execPath, MAIN, "--addr", "127.0.0.1:0", "--frame=xml", "cat"], {
      stderr: "pipe",
      stdout: "pipe",
    });
    procs.push(proc);
    expect(await within(proc.exited, "exit")).toBe(2);
    const err = await new Response(proc.stderr).text();
    expect(err.trim().split("\n")).toEqual([
      "scalesocket: error: invalid value 'xml' for --frame: expected json or gwsocket",
      "Usage: scalesocket [OPTIONS] <CMD> [-- <ARGS>...]",
    ]);
  });

  test("an address in use is a clear error, exit 1", async () => {
    const blocker = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    try {
      const proc = Bun.spawn([process.execPath, MAIN, "--addr", `127.0.0.1:${blocker.port}`, "cat"], {
        stderr: "pipe",
        stdout: "pipe",
      });
      procs.push(proc);
      expect(await within(proc.exited, "exit")).toBe(1);
      expect(await new Response(proc.stderr).text()).toContain(`cannot listen on 127.0.0.1:${blocker.port}`);
    } finally {
      blocker.stop(true);
    }
  });
});
