import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveConfig } from "../src/cli/index.ts";
import { FIXTURES, start, stopAll, TestClient, until } from "./helpers.ts";

afterEach(stopAll);

/** A free port range of `n` ports on 127.0.0.1, found by asking the system for ports and keeping them adjacent. */
async function freePorts(n: number): Promise<[number, number]> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const first = probe.port;
    probe.stop(true);
    if (first + n - 1 > 65535) continue;
    const held: { stop(closeActive?: boolean): void }[] = [];
    try {
      for (let p = first; p < first + n; p++)
        held.push(Bun.listen({ hostname: "127.0.0.1", port: p, socket: { data() {} } }));
      return [first, first + n - 1];
    } catch {
      // one of them is taken: try another base
    } finally {
      for (const h of held) h.stop(true);
    }
  }
  throw new Error("no free port range");
}

/** `--tcp` on the ports lo..hi, attaching after `delay` seconds. */
function tcpFlags([lo, hi]: [number, number], delay = "0"): string[] {
  return ["--tcp", "--tcpports", `${lo}:${hi}`, "--delay", delay];
}

/** The gwsocket header: three big-endian u32. */
function header(id: number, type: number, length: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32BE(id, 0);
  b.writeUInt32BE(type, 4);
  b.writeUInt32BE(length, 8);
  return b;
}

/** printf(1) octal escapes for arbitrary bytes, so a shell child can print any frame. */
function printfBytes(bytes: Uint8Array): string {
  return [...bytes].map((b) => `\\${b.toString(8).padStart(3, "0")}`).join("");
}

describe("--binary", () => {
  test("upstream: --binary echo sends one binary frame [10]", async () => {
    const t = start(["--binary", "echo"]);
    const a = await TestClient.open(t.url("r"));
    const msg = await a.nextRaw();
    expect(msg).toBeInstanceOf(Uint8Array);
    expect([...(msg as Uint8Array)]).toEqual([10]);
  });

  test("client messages are written raw: no newline added, text frames as their UTF-8 bytes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ss-bin-"));
    const file = join(dir, "in.bin");
    const t = start(["--binary", "sh", "--", "-c", `exec cat > ${file}`]);
    const a = await TestClient.open(t.url("r"));
    a.send(new Uint8Array([0, 1, 2, 10, 255]));
    a.send("é!");
    a.close();
    const expected = Buffer.concat([Buffer.from([0, 1, 2, 10, 255]), Buffer.from("é!")]);
    await until(() => existsSync(file) && readFileSync(file).equals(expected), "the raw bytes in the file");
  });

  test("with --null, binary output is split on NUL and stays byte-exact", async () => {
    const t = start(["--binary", "--null", "printf", "--", "a\\nb\\000\\377\\001\\000tail"]);
    const a = await TestClient.open(t.url("r"));
    await a.waitClosed();
    expect(a.received.map((m) => [...(m as Uint8Array)])).toEqual([
      [97, 10, 98],
      [255, 1],
      [...Buffer.from("tail")],
    ]);
  });
});

describe("--delimiters and --null", () => {
  test("upstream: --delimiters=bc echo -- foobar sends foo first", async () => {
    const t = start(["--delimiters=bc", "echo", "--", "foobar"]);
    const a = await TestClient.open(t.url("r"));
    expect(await a.next()).toBe("foo");
    expect(await a.next()).toBe("ar\n");
  });

  test("upstream: --null printf foo\\0bar sends foo, then bar when the child exits", async () => {
    const t = start(["--null", "printf", "--", "foo\\000bar"]);
    const a = await TestClient.open(t.url("r"));
    expect(await a.next()).toBe("foo");
    expect(await a.next()).toBe("bar");
    expect((await a.waitClosed()).code).toBe(1000);
  });

  test("a message split across many small writes arrives once, whole", async () => {
    const t = start([
      "sh",
      "--",
      "-c",
      "for c in a b c d e f g h; do printf $c; sleep 0.01; done; echo; echo next",
    ]);
    const a = await TestClient.open(t.url("r"));
    expect(await a.next()).toBe("abcdefgh");
    expect(await a.next()).toBe("next");
  });
});

describe("gwsocket framing", () => {
  test("upstream: id=2,type=1,len=3,abc (big-endian) reaches client 2 only", async () => {
    const frame = printfBytes(Buffer.concat([header(2, 1, 3), Buffer.from("abc")]));
    const script = `while read -r id; do if [ "$id" = 2 ]; then printf '${frame}'; printf '${printfBytes(Buffer.concat([header(0, 1, 4), Buffer.from("done")]))}'; fi; done`;
    const t = start(["--serverframe=gwsocket", "--joinmsg", "#ID", "sh", "--", "-c", script]);
    const a = await TestClient.open(t.url("r"));
    const b = await TestClient.open(t.url("r"));
    expect(await b.next()).toBe("abc");
    expect(await b.next()).toBe("done");
    expect(await a.next()).toBe("done");
    expect(a.received).toEqual(["done"]);
  });

  test("payloads with newlines and NUL bytes are byte-exact; binary stays binary", async () => {
    const payload = Buffer.from([0x61, 0x0a, 0x00, 0x62, 0x0d, 0x0a, 0xff]);
    const bytes = Buffer.concat([
      header(0, 2, payload.length),
      payload,
      header(0, 1, 5),
      Buffer.from("x\ny\0z"),
    ]);
    const t = start(["--serverframe=gwsocket", "printf", "--", printfBytes(bytes)]);
    const a = await TestClient.open(t.url("r"));
    const first = await a.nextRaw();
    expect(first).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(first as Uint8Array).equals(payload)).toBe(true);
    expect(await a.nextRaw()).toBe("x\ny\0z");
  });

  test("a malformed header is dropped with a warning and the next good frame is delivered", async () => {
    const bytes = Buffer.concat([header(0, 7, 3), Buffer.from("bad"), header(0, 1, 4), Buffer.from("good")]);
    const t = start([
      "--serverframe=gwsocket",
      "sh",
      "--",
      "-c",
      `printf '${printfBytes(bytes)}'; exec cat >/dev/null`,
    ]);
    const a = await TestClient.open(t.url("r"));
    expect(await a.next()).toBe("good");
    expect(t.logs.join("")).toContain("gwsocket: dropped a frame header with unknown type 0x7");
  });

  test("client to child: open notice with the address, each message with the sender's ID, close notice", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ss-gw-"));
    const file = join(dir, "in.bin");
    const t = start(["--clientframe=gwsocket", "sh", "--", "-c", `exec cat > ${file}`]);
    const a = await TestClient.open(t.url("r"));
    const b = await TestClient.open(t.url("r"));
    a.send("hi\n");
    b.send(new Uint8Array([0, 10, 255]));
    b.close();
    await b.waitClosed();
    a.close();
    await until(
      () => existsSync(file) && readFileSync(file).length >= 12 * 5 + 3 + 3,
      "the frames in the file",
    );
    await until(() => t.server.rooms.size === 0, "the room to close");
    const data = readFileSync(file);
    const frames: [number, number, Buffer][] = [];
    for (let at = 0; at + 12 <= data.length; ) {
      const len = data.readUInt32BE(at + 8);
      frames.push([data.readUInt32BE(at), data.readUInt32BE(at + 4), data.subarray(at + 12, at + 12 + len)]);
      at += 12 + len;
    }
    expect(frames.map(([id, type]) => [id, type])).toEqual([
      [1, 0x10],
      [2, 0x10],
      [1, 1],
      [2, 2],
      [2, 0x08],
      [1, 0x08],
    ]);
    expect(frames[0]?.[2].toString()).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(frames[2]?.[2].toString()).toBe("hi\n");
    expect([...(frames[3]?.[2] ?? [])]).toEqual([0, 10, 255]);
    expect(frames[4]?.[2].length).toBe(0);
  });
});

describe("--tcp", () => {
  test("a round trip through a child that listens on $PORT", async () => {
    const [lo, hi] = await freePorts(2);
    const t = start([...tcpFlags([lo, hi]), `${FIXTURES}tcp-echo.py`]);
    const a = await TestClient.open(t.url("r"));
    a.send("hi");
    a.send("there");
    expect(await a.next()).toBe("echo: hi");
    expect(await a.next()).toBe("echo: there");
    expect(t.logs.join("")).toMatch(new RegExp(`started .*tcp-echo\\.py \\(pid \\d+, port (${lo}|${hi})\\)`));
  });

  test("the default delay of 1 s and retries: a child that listens late is still reached", async () => {
    const [lo, hi] = await freePorts(1);
    const t = start([...tcpFlags([lo, hi], "0.05"), `${FIXTURES}tcp-echo.py`, "--", "0.4"]);
    const a = await TestClient.open(t.url("r"));
    a.send("early");
    expect(await a.next()).toBe("echo: early");
    expect(resolveConfig(["--tcp", "cat"]).delay).toBe(1);
  });

  test("JSON framing, join and leave messages, cache and metrics work the same over TCP", async () => {
    const [lo, hi] = await freePorts(1);
    const t = start([...tcpFlags([lo, hi]), "--json", "--cache", "8", "--metrics", `${FIXTURES}tcp-cat.py`]);
    const a = await TestClient.open(t.url("r"));
    expect(await a.next()).toBe('{"t":"Join","_from":1}');
    const b = await TestClient.open(t.url("r"));
    expect(await a.next()).toBe('{"t":"Join","_from":2}');
    b.send('{"_to":1,"secret":true}');
    expect(await a.next()).toBe('{"_from":2,"_to":1,"secret":true}');
    b.close();
    expect(await a.next()).toBe('{"t":"Leave","_from":2}');
    // b got the cached join of a, then its own; never the message routed to a.
    expect(b.received).toEqual(['{"t":"Join","_from":1}', '{"t":"Join","_from":2}']);
    expect(t.logs.join("")).toContain(`[r] listening on ${lo}`);

    // A late client gets the broadcasts from the cache (not the routed message), then its own join.
    const c = await TestClient.open(t.url("r"));
    await c.waitFor(4);
    expect(c.received).toEqual([
      '{"t":"Join","_from":1}',
      '{"t":"Join","_from":2}',
      '{"t":"Leave","_from":2}',
      '{"t":"Join","_from":3}',
    ]);
    const metrics = await (await fetch(t.http("/metrics"))).text();
    expect(metrics).toContain('scalesocket_websocket_connections_total{room="r"} 3');
    expect(metrics).toContain('scalesocket_messages_total{direction="client_to_child"} 5');
    expect(metrics).toContain('scalesocket_messages_total{direction="child_to_room"} 5');
    const bytesIn = /scalesocket_bytes_total\{direction="child_to_room"\} (\d+)/.exec(metrics);
    expect(Number(bytesIn?.[1])).toBeGreaterThan(100);
  });

  test("the port returns to the pool when the child exits, and an exhausted range refuses new rooms", async () => {
    const [port] = await freePorts(1);
    const t = start([...tcpFlags([port, port]), `${FIXTURES}tcp-echo.py`]);
    const a = await TestClient.open(t.url("one"));
    a.send("x");
    expect(await a.next()).toBe("echo: x");
    const refused = new TestClient(t.url("two"));
    const closed = await refused.waitClosed();
    expect(closed.code).toBe(1013);
    expect(closed.reason).toBe(`no free TCP port for a new room (--tcpports ${port}:${port})`);
    a.close();
    // Its child sees EOF on the socket and exits; the port goes back to the pool as the exit is handled.
    await until(() => t.logs.some((l) => l.includes("[one] stopped")), "room one's child to exit");
    const two = await TestClient.open(t.url("two"));
    two.send("y");
    expect(await two.next()).toBe("echo: y");
  });

  test("a child that never listens is stopped and its clients closed with a reason", async () => {
    const [port] = await freePorts(1);
    const t = start(
      ["--tcp", "--tcpports", `${port}:${port}`, "--delay", "0", `${FIXTURES}tcp-never-listens.sh`],
      {
        tcpTimeoutMs: 300,
      },
    );
    const a = await TestClient.open(t.url("r"));
    const closed = await a.waitClosed();
    expect(closed.code).toBe(1011);
    expect(closed.reason).toContain(`127.0.0.1:${port}`);
    await until(() => t.server.rooms.size === 0, "the room to close");
    expect(await fetch(t.http("/health")).then((r) => r.status)).toBe(200);
  });

  test("a port in use by another program is skipped", async () => {
    const [lo, hi] = await freePorts(2);
    const blocker = net.createServer().listen(lo, "127.0.0.1");
    await new Promise((resolve) => blocker.once("listening", resolve));
    try {
      const t = start([...tcpFlags([lo, hi]), `${FIXTURES}tcp-echo.py`]);
      const a = await TestClient.open(t.url("r"));
      a.send("x");
      expect(await a.next()).toBe("echo: x");
      expect(t.server.rooms.get("r")?.tcpPort).toBe(hi);
    } finally {
      blocker.close();
    }
  });
});

describe("--delay over stdio", () => {
  test("messages sent before the child is attached are held and delivered in order", async () => {
    const t = start(["--delay", "0.3", "cat"]);
    const a = await TestClient.open(t.url("r"));
    a.send("one");
    a.send("two");
    expect(await a.next()).toBe("one");
    expect(await a.next()).toBe("two");
  });

  test("a child that exits during the delay still delivers its output", async () => {
    const t = start(["--delay", "0.3", "echo", "--", "early bird"]);
    const a = await TestClient.open(t.url("r"));
    expect(await a.next()).toBe("early bird");
    expect((await a.waitClosed()).code).toBe(1000);
  });

  test("a room left during the delay stops its child with EOF, without waiting for the delay or the grace", async () => {
    const t = start(["--delay", "5", "--grace", "5", `${FIXTURES}pid.sh`]);
    const a = await TestClient.open(t.url("r"));
    a.close();
    await until(() => t.logs.some((l) => l.includes("[r] stopped")), "the child to stop", 3000);
    expect(t.logs.join("")).toMatch(/\[r\] stopped .*pid\.sh \(pid \d+\): exited with code 0/);
  });
});
