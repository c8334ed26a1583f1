import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { alive, FIXTURES, start, stopAll, TestClient, until, within } from "../helpers.ts";

afterEach(stopAll);

/** Reads the `pid N` line that pid.sh prints first. */
async function childPid(client: TestClient): Promise<number> {
  const line = await client.next();
  const m = /^pid (\d+)$/.exec(line);
  if (!m) throw new Error(`expected a pid line, got ${line}`);
  return Number(m[1]);
}

describe("upstream cases", () => {
  test("--oneshot echo -- hello sends hello, then the server finishes", async () => {
    const t = start(["--oneshot", "echo", "--", "hello"]);
    const client = await TestClient.open(t.url("room"));
    expect(await client.next()).toBe("hello");
    expect((await client.waitClosed()).code).toBe(1000);
    await within(t.server.finished, "oneshot server to finish");
  });

  test('--frame head -- -n 1 stamps {} as {"_from":1}', async () => {
    const t = start(["--frame", "head", "--", "-n", "1"]);
    const client = await TestClient.open(t.url("room"));
    client.send("{}");
    expect(await client.next()).toBe('{"_from":1}');
  });

  test('{"_to":1} reaches the child as {"_from":1,"_to":1} and comes back to client 1', async () => {
    const t = start(["--frame", "head", "--", "-n", "1"]);
    const client = await TestClient.open(t.url("room"));
    client.send('{"_to":1}');
    expect(await client.next()).toBe('{"_from":1,"_to":1}');
  });

  test("--passenv= printenv prints exactly the CGI variables", async () => {
    const t = start(["--passenv=", "printenv"]);
    const client = await TestClient.open(`${t.url("envroom")}/extra/path?a=1&b=two`);
    const lines: string[] = [];
    await client.waitClosed();
    for (const m of client.received) lines.push(String(m));
    const env = Object.fromEntries(
      lines.map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    const names = Object.keys(env).filter((k) => !k.startsWith("HTTP_"));
    expect(names.sort()).toEqual(
      [
        "GATEWAY_INTERFACE",
        "PATH_INFO",
        "QUERY_STRING",
        "REMOTE_ADDR",
        "REMOTE_PORT",
        "REQUEST_METHOD",
        "ROOM",
        "SCRIPT_NAME",
        "SERVER_NAME",
        "SERVER_PORT",
        "SERVER_PROTOCOL",
        "SERVER_SOFTWARE",
      ].sort(),
    );
    expect(env.QUERY_STRING).toBe("a=1&b=two");
    expect(env.ROOM).toBe("envroom");
    expect(env.PATH_INFO).toBe("/extra/path");
    expect(env.SCRIPT_NAME).toBe("/envroom");
    expect(env.REMOTE_ADDR).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(env.REMOTE_ADDR).toBe(`127.0.0.1:${env.REMOTE_PORT}`);
    expect(env.SERVER_PORT).toBe(String(t.server.port));
    expect(env.HTTP_UPGRADE).toBe("websocket");
    expect(env.PATH).toBeUndefined();
  });
});

describe("rooms", () => {
  test("clients of one room share one child; other rooms get their own", async () => {
    const t = start([`${FIXTURES}pid.sh`]);
    const a = await TestClient.open(t.url("one"));
    const pidA = await childPid(a);
    const b = await TestClient.open(t.url("one"));
    const c = await TestClient.open(t.url("two"));
    const pidC = await childPid(c);
    expect(pidC).not.toBe(pidA);
    b.send("from b");
    expect(await a.next()).toBe("from b");
    expect(await b.next()).toBe("from b");
    c.send("from c");
    expect(await c.next()).toBe("from c");
    a.send("marker");
    expect(await a.next()).toBe("marker");
    expect(t.server.rooms.size).toBe(2);
  });

  test("room names are percent-decoded and connection IDs are server-wide from 1", async () => {
    const t = start(["--json", "cat"]);
    const a = await TestClient.open(t.url("game%201"));
    expect(await a.next()).toBe('{"t":"Join","_from":1}');
    const b = await TestClient.open(t.url("other"));
    expect(await b.next()).toBe('{"t":"Join","_from":2}');
    const c = await TestClient.open(t.url("game%201"));
    expect(await c.next()).toBe('{"t":"Join","_from":3}');
    expect([...t.server.rooms.keys()].sort()).toEqual(["game 1", "other"]);
  });

  test("lines are split on \\n with a trailing \\r removed", async () => {
    const t = start(["printf", "--", "a\\r\\nb\\n\\nc"]);
    const client = await TestClient.open(t.url("split"));
    await client.waitClosed();
    expect(client.received).toEqual(["a", "b", "", "c"]);
  });

  test("the child stops when the last client leaves", async () => {
    const t = start([`${FIXTURES}pid.sh`]);
    const a = await TestClient.open(t.url("r"));
    const pid = await childPid(a);
    const b = await TestClient.open(t.url("r"));
    b.close();
    await b.waitClosed();
    a.send("still here");
    expect(await a.next()).toBe("still here");
    expect(alive(pid)).toBe(true);
    a.close();
    await until(() => !alive(pid), "the child to exit");
    await until(() => t.server.rooms.size === 0, "the room to close");
  });

  test("a grandchild that ignores SIGTERM is killed with its process group", async () => {
    const t = start([`${FIXTURES}grandchild.sh`]);
    const a = await TestClient.open(t.url("r"));
    const [child, grandchild] = (await a.next()).split(" ").slice(1).map(Number) as [number, number];
    expect(alive(grandchild)).toBe(true);
    a.close();
    // The shell traps TERM too, so only the SIGKILL after --grace (0.5 s in tests) ends them.
    await until(() => !alive(child) && !alive(grandchild), "child and grandchild to die");
  });

  test("a child that exits closes its clients with the exit code; the next client gets a fresh child", async () => {
    const t = start([`${FIXTURES}exit-after-line.sh`, "--", "3"]);
    const a = await TestClient.open(t.url("r"));
    const b = await TestClient.open(t.url("r"));
    a.send("x");
    expect(await a.next()).toBe("bye x");
    expect(await b.next()).toBe("bye x");
    const closeA = await a.waitClosed();
    expect(closeA.code).toBe(1011);
    expect(closeA.reason).toContain("exited with code 3");
    expect((await b.waitClosed()).reason).toContain("exited with code 3");
    await until(() => t.server.rooms.size === 0, "the room to be removed");
    const c = await TestClient.open(t.url("r"));
    c.send("again");
    expect(await c.next()).toBe("bye again");
    expect((await c.waitClosed()).code).toBe(1011);
  });

  test("a child killed by a signal closes its clients with 1011 and says which signal", async () => {
    const t = start(["sh", "--", "-c", "read -r line; kill -KILL $$"]);
    const a = await TestClient.open(t.url("r"));
    a.send("die");
    expect(await a.waitClosed()).toEqual({ code: 1011, reason: "sh was killed by SIGKILL" });
  });

  test("exit code 0 closes with 1000", async () => {
    const t = start([`${FIXTURES}exit-after-line.sh`, "--", "0"]);
    const a = await TestClient.open(t.url("r"));
    a.send("x");
    expect(await a.next()).toBe("bye x");
    expect(await a.waitClosed()).toEqual({
      code: 1000,
      reason: `${FIXTURES}exit-after-line.sh exited with code 0`,
    });
  });

  test("a command that does not exist closes the client with a reason; the server keeps serving", async () => {
    const t = start(["no-such-command-scalesocket"]);
    const a = new TestClient(t.url("r"));
    const closed = await a.waitClosed();
    expect(closed.code).toBe(1011);
    expect(closed.reason).toBe("command not found: no-such-command-scalesocket");
    expect(t.logs.join("")).toContain("command not found: no-such-command-scalesocket");
    const health = await fetch(t.http("/health"));
    expect(await health.json()).toEqual({ status: "ok" });
    const b = new TestClient(t.url("r"));
    expect((await b.waitClosed()).code).toBe(1011);
    expect(t.server.counters.spawnFailures).toBe(2);
  });

  test("a file that is not executable closes the client with a reason", async () => {
    const t = start([`${FIXTURES}../helpers.ts`]);
    const a = new TestClient(t.url("r"));
    const closed = await a.waitClosed();
    expect(closed.code).toBe(1011);
    expect(closed.reason).toMatch(
      /^cannot start .*helpers\.ts: not executable \(if it is a script, run chmod \+x /,
    );
    expect(t.server.counters.spawnFailures).toBe(1);
    expect(t.server.counters.childrenSpawned).toBe(0);
    expect(t.server.rooms.size).toBe(0);
  });

  test("the child's stderr goes to the log, tagged with the room", async () => {
    const t = start([`${FIXTURES}stderr.sh`]);
    const a = await TestClient.open(t.url("loud"));
    expect(await a.next()).toBe("ready");
    await until(() => t.logs.some((l) => l.includes("to stderr: loud")), "the stderr line in the log");
    expect(t.logs.find((l) => l.includes("to stderr: loud"))).toContain("[loud]");
  });

  test("one log line per connection, and room start and stop with pid and exit code", async () => {
    const t = start([`${FIXTURES}exit-after-line.sh`, "--", "5"]);
    const a = await TestClient.open(t.url("logged"));
    a.send("x");
    await a.waitClosed();
    await until(() => t.logs.some((l) => l.includes("exited with code 5")), "the exit line");
    const text = t.logs.join("");
    expect(text).toMatch(/INFO +client 1 joined room logged from 127\.0\.0\.1:\d+/);
    expect(text).toMatch(/\[logged\] started .*exit-after-line\.sh \(pid \d+\)/);
    expect(text).toMatch(/\[logged\] .*\(pid \d+\) exited with code 5/);
  });

  test("--log json writes one JSON object per line", async () => {
    const t = start(["--log", "json", "cat"]);
    const a = await TestClient.open(t.url("j"));
    a.send("x");
    expect(await a.next()).toBe("x");
    expect(t.logs.length).toBeGreaterThan(0);
    for (const line of t.logs) {
      const obj = JSON.parse(line);
      expect(typeof obj.time).toBe("string");
      expect(typeof obj.msg).toBe("string");
    }
    expect(
      t.logs.map((l) => JSON.parse(l)).some((o) => o.tag === "j" && o.msg.startsWith("started cat")),
    ).toBe(true);
  });
});

describe("JSON framing", () => {
  test("a spoofed _from is replaced by the sender's ID", async () => {
    const t = start(["--frame=json", "cat"]);
    const a = await TestClient.open(t.url("r"));
    a.send('{"_from":99,"msg":"hi"}');
    expect(JSON.parse(await a.next())).toEqual({ _from: 1, msg: "hi" });
  });

  test("anything but a JSON object is dropped and the connection stays open", async () => {
    const t = start(["--frame", "cat"]);
    const a = await TestClient.open(t.url("r"));
    for (const bad of ["not json", "[1,2]", '"str"', "42", "null", "{broken"]) a.send(bad);
    a.send('{"ok":true}');
    expect(await a.next()).toBe('{"_from":1,"ok":true}');
    expect(t.server.counters.invalidClientMessages).toBe(6);
    expect(a.ws.readyState).toBe(WebSocket.OPEN);
  });

  test("_to delivers to one client; others see only broadcasts", async () => {
    const t = start(["--frame=json", "cat"]);
    const a = await TestClient.open(t.url("r"));
    const b = await TestClient.open(t.url("r"));
    const c = await TestClient.open(t.url("r"));
    a.send('{"_to":2,"secret":1}');
    a.send('{"public":1}');
    expect(await b.next()).toBe('{"_from":1,"_to":2,"secret":1}');
    expect(await b.next()).toBe('{"_from":1,"public":1}');
    expect(await a.next()).toBe('{"_from":1,"public":1}');
    expect(await c.next()).toBe('{"_from":1,"public":1}');
  });

  test("a child's _to aimed at a client of another room is dropped", async () => {
    // IDs are server-wide, so a child can name a client of another room; it must reach only its own members.
    const t = start(["--serverframe=json", "cat"]);
    const a = await TestClient.open(t.url("A"));
    const b = await TestClient.open(t.url("B"));
    // Room A's child prints a line for client 2 (in room B), then one for client 1 (its own).
    a.send('{"_to":2,"leak":1}');
    a.send('{"_to":1,"done":1}');
    expect(await a.next()).toBe('{"_to":1,"done":1}');
    // The line for client 2 was handled before a's, so anything it sent to b is ahead of b's own next line.
    b.send('{"_to":2,"mine":1}');
    expect(await b.next()).toBe('{"_to":2,"mine":1}');
    expect(b.received).toEqual(['{"_to":2,"mine":1}']);
  });

  test("a room named like a client's own topic shares nothing with that client", async () => {
    // Each client of a routing room has a topic of its own (client:<ID>); rooms' topics are prefixed apart.
    const t = start(["--frame=json", "cat"]);
    const a = await TestClient.open(t.url("r"));
    const b = await TestClient.open(t.url("client:1"));
    a.send('{"_to":1,"secret":1}');
    expect(await a.next()).toBe('{"_from":1,"_to":1,"secret":1}');
    b.send('{"n":1}');
    expect(await b.next()).toBe('{"_from":2,"n":1}');
    a.send('{"after":1}');
    expect(await a.next()).toBe('{"_from":1,"after":1}');
  });

  test("broadcast and routed lines of one chunk reach each client in the order the child printed them", async () => {
    const t = start(["--serverframe=json", "cat"]);
    const a = await TestClient.open(t.url("r"));
    const b = await TestClient.open(t.url("r"));
    // One message of many lines: cat echoes it in one write, so the room routes it as one chunk of output.
    const lines: string[] = [];
    const want: Record<number, string[]> = { 1: [], 2: [] };
    for (let i = 0; i < 300; i++) {
      const to = i % 3 === 0 ? null : ((i % 3) as 1 | 2);
      const line = to === null ? `{"n":${i}}` : `{"_to":${to},"n":${i}}`;
      lines.push(line);
      if (to === null || to === 1) want[1]?.push(line);
      if (to === null || to === 2) want[2]?.push(line);
    }
    a.send(lines.join("\n"));
    await a.waitFor(200);
    await b.waitFor(200);
    expect(a.received).toEqual(want[1] as string[]);
    expect(b.received).toEqual(want[2] as string[]);
  });

  test("_meta is stored as room metadata and not delivered", async () => {
    const t = start(["--frame=json", "cat"]);
    const a = await TestClient.open(t.url("r"));
    a.send('{"_meta":true,"players":2}');
    a.send('{"after":1}');
    expect(await a.next()).toBe('{"_from":1,"after":1}');
    expect(t.server.rooms.get("r")?.metadata).toEqual({ _from: 1, players: 2 });
  });

  test("--serverframe=json routes child output but leaves client messages alone", async () => {
    const t = start(["--serverframe=json", "cat"]);
    const a = await TestClient.open(t.url("r"));
    const b = await TestClient.open(t.url("r"));
    a.send('{"_to":2,"x":1}');
    a.send("plain text");
    expect(await b.next()).toBe('{"_to":2,"x":1}');
    expect(await b.next()).toBe("plain text");
    expect(await a.next()).toBe("plain text");
  });

  test("--clientframe=json stamps client messages but broadcasts every child line", async () => {
    const t = start(["--clientframe=json", "cat"]);
    const a = await TestClient.open(t.url("r"));
    const b = await TestClient.open(t.url("r"));
    a.send('{"_to":2}');
    expect(await a.next()).toBe('{"_from":1,"_to":2}');
    expect(await b.next()).toBe('{"_from":1,"_to":2}');
  });
});

describe("join and leave messages", () => {
  test("--json announces joins and leaves to the child", async () => {
    const t = start(["--json", "cat"]);
    const a = await TestClient.open(t.url("r"));
    expect(await a.next()).toBe('{"t":"Join","_from":1}');
    const b = await TestClient.open(t.url("r"));
    expect(await a.next()).toBe('{"t":"Join","_from":2}');
    b.close();
    expect(await a.next()).toBe('{"t":"Leave","_from":2}');
  });

  test("templates expand per connection, with query values URL-encoded", async () => {
    const t = start([
      "--joinmsg",
      '{"id":#ID,"room":"#ROOM","name":"#QUERY_NAME","q":"#QUERY_STRING","addr":"#REMOTE_ADDR"}',
      "--leavemsg",
      "left #ID",
      "cat",
    ]);
    const a = await TestClient.open(`${t.url("lobby")}?Name=a%22b%23ID&x=1`);
    const join = JSON.parse(await a.next());
    expect(join).toMatchObject({ id: 1, room: "lobby", name: "a%22b%23ID", q: "Name=a%22b%23ID&x=1" });
    expect(join.addr).toMatch(/^127\.0\.0\.1:\d+$/);
    const b = await TestClient.open(t.url("lobby"));
    expect(JSON.parse(await a.next())).toMatchObject({ id: 2, name: "" });
    b.close();
    expect(await a.next()).toBe("left 2");
  });
});

describe("stdin", () => {
  test("the last client's final message and --leavemsg reach the child before it is stopped", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ss-stdin-"));
    const file = join(dir, "got.txt");
    const t = start(["--leavemsg", "bye #ID", "sh", "--", "-c", `exec cat > ${file}`]);
    const a = await TestClient.open(t.url("r"));
    a.send("hello");
    a.send("world");
    a.close();
    await until(
      () => existsSync(file) && readFileSync(file, "utf8") === "hello\nworld\nbye 1\n",
      `the lines in the file (have ${JSON.stringify(existsSync(file) && readFileSync(file, "utf8"))})`,
    );
  });
});
