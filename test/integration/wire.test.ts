import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { constants, inflateRawSync } from "node:zlib";
import type { Subprocess } from "bun";
import { FIXTURES, start, stopAll, TestClient, until, WAIT_MS, within } from "../helpers.ts";
import { RawClient } from "../rawws.ts";

/** The wire options of issue 21: compression, subprotocols, keepalive, a unix socket, stderr to clients. */

const ROOT = new URL("../../", import.meta.url).pathname;
const dirs: string[] = [];
const procs = new Set<Subprocess>();

afterEach(async () => {
  await stopAll();
  for (const p of procs) p.kill("SIGKILL");
  await within(Promise.all([...procs].map((p) => p.exited)), "spawned servers to exit");
  procs.clear();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "scalesocket-wire-"));
  dirs.push(dir);
  return dir;
}

const DEFLATE = { "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits" };

describe("--deflate", () => {
  test("a client that offers permessage-deflate gets compressed frames (RSV1 set) that inflate to the line", async () => {
    const t = start(["--deflate", "cat"]);
    const raw = await RawClient.open({ port: t.server.port }, "/room", { headers: DEFLATE });
    expect(raw.status).toBe(101);
    expect(raw.headers.get("sec-websocket-extensions")).toContain("permessage-deflate");
    const line = "hello hello hello hello hello hello";
    raw.sendText(line);
    await raw.until(() => raw.frames.length > 0, "a frame from the room");
    const frame = raw.frames[0] as (typeof raw.frames)[number];
    expect(frame.first).toBe(0xc1); // FIN, RSV1 (compressed), text
    // RFC 7692 7.2.2: the sender drops the empty block's 00 00 ff ff; the receiver puts it back.
    const tail = Buffer.from([0, 0, 0xff, 0xff]);
    const inflated = inflateRawSync(Buffer.concat([frame.payload, tail]), {
      finishFlush: constants.Z_SYNC_FLUSH,
    });
    expect(inflated.toString()).toBe(line);
  });

  test("Bun's own client, which offers it, reads the compressed messages", async () => {
    const t = start(["--deflate", "cat"]);
    const client = await TestClient.open(t.url("room"));
    expect(client.ws.extensions).toContain("permessage-deflate");
    client.send("round trip");
    expect(await client.next()).toBe("round trip");
  });

  test("off by default: no extension is agreed and frames go plain", async () => {
    const t = start(["cat"]);
    const raw = await RawClient.open({ port: t.server.port }, "/room", { headers: DEFLATE });
    expect(raw.headers.get("sec-websocket-extensions")).toBeNull();
    raw.sendText("plain");
    await raw.until(() => raw.frames.length > 0, "a frame from the room");
    expect(raw.frames[0]?.first).toBe(0x81);
    expect(raw.frames[0]?.payload.toString()).toBe("plain");
  });
});

describe("--subprotocol", () => {
  /** Opens a websocket offering `protocols`; resolves with it once open. */
  async function openWith(url: string, protocols: string[]): Promise<WebSocket> {
    const ws = new WebSocket(url, protocols);
    await within(
      new Promise<void>((resolve, reject) => {
        ws.onopen = () => resolve();
        ws.onerror = () => reject(new Error("websocket error"));
      }),
      "open",
    );
    return ws;
  }

  function nextMessage(ws: WebSocket): Promise<string> {
    return within(new Promise((resolve) => (ws.onmessage = (e) => resolve(String(e.data)))), "a message");
  }

  test("the first protocol of the list that the client offers is chosen, and the child learns it", async () => {
    const t = start(["--subprotocol", "v2.chat,v1.chat", "--joinmsg", "joined #PROTOCOL", "cat"]);
    const ws = await openWith(t.url("room"), ["v1.chat", "v2.chat"]);
    expect(ws.protocol).toBe("v2.chat");
    expect(await nextMessage(ws)).toBe("joined v2.chat");
    ws.close();
  });

  test("the opener's protocol is WEBSOCKET_PROTOCOL in the child's environment", async () => {
    const t = start(["--subprotocol", "graphql-ws,mqtt", "printenv", "--", "WEBSOCKET_PROTOCOL"]);
    const ws = await openWith(t.url("room"), ["mqtt"]);
    expect(ws.protocol).toBe("mqtt");
    expect(await nextMessage(ws)).toBe("mqtt");
  });

  test("a client offering only others gets 400 with the list", async () => {
    const t = start(["--subprotocol", "v2.chat,v1.chat", "cat"]);
    const raw = await RawClient.open({ port: t.server.port }, "/room", {
      headers: { "Sec-WebSocket-Protocol": "v3.chat, other" },
    });
    expect(raw.status).toBe(400);
    await raw.until(() => raw.body.includes("v1.chat"), "the refusal's body");
    expect(raw.body).toContain("this server speaks v2.chat, v1.chat");
    expect(t.server.rooms.size).toBe(0);
  });

  test("a client offering none is admitted without one, and the child gets no WEBSOCKET_PROTOCOL", async () => {
    const t = start(["--subprotocol", "v1.chat", "--passenv=", "printenv"]);
    const client = await TestClient.open(t.url("room"));
    expect(client.ws.protocol).toBe("");
    const env: string[] = [];
    await client.waitClosed();
    for (const m of client.received) env.push(String(m));
    expect(env.some((line) => line.startsWith("ROOM="))).toBe(true);
    expect(env.some((line) => line.startsWith("WEBSOCKET_PROTOCOL="))).toBe(false);
  });
});

describe("--idletimeout and --pingms", () => {
  // Bun counts idle time in 4-second ticks and takes no timeout below 8 s: the shortest that can be tested.
  test("a client that never answers pings is dropped after the timeout, kept with 0; with --pingms, one that answers is kept", async () => {
    const bun = start(["--idletimeout", "8", "cat"]);
    const never = start(["--idletimeout", "0", "cat"]);
    const own = start(["--idletimeout", "8", "--pingms", "500", "cat"]);
    const silentBun = await RawClient.open({ port: bun.server.port }, "/room");
    const silentNever = await RawClient.open({ port: never.server.port }, "/room");
    const silentOwn = await RawClient.open({ port: own.server.port }, "/room");
    const answering = await RawClient.open({ port: own.server.port }, "/room", { answerPings: true });
    expect([silentBun.status, silentNever.status, silentOwn.status, answering.status]).toEqual([
      101, 101, 101, 101,
    ]);

    await Promise.all([silentBun.waitClosed(14_000), silentOwn.waitClosed(14_000)]);
    // Bun pings once shortly before its timeout; the client did not answer.
    expect(silentBun.frames.some((f) => f.opcode === 0x9)).toBe(true);
    // The pinger closes with a reason; it pinged every half second until then.
    const close = silentOwn.frames.find((f) => f.opcode === 0x8);
    expect(close?.payload.readUInt16BE(0)).toBe(1001);
    expect(close?.payload.subarray(2).toString()).toContain("no answer to pings for 8 s");
    expect(silentOwn.frames.filter((f) => f.opcode === 0x9).length).toBeGreaterThan(5);
    // Both have been idle longer than the 8 s, and are still open.
    expect(silentNever.closed).toBe(false);
    expect(answering.closed).toBe(false);
    expect(own.server.rooms.get("room")?.members.size).toBe(1);
    silentNever.end();
    answering.end();
  }, 20_000);
});

describe("--addr unix:PATH", () => {
  test("a round trip over the socket, which is 0660 and removed when the server stops", async () => {
    const path = join(tempDir(), "s.sock");
    const t = start(["--addr", `unix:${path}`, "cat"]);
    expect(statSync(path).mode & 0o777).toBe(0o660);
    const client = await TestClient.open(`ws+unix://${path}:/room`);
    client.send("over unix");
    expect(await client.next()).toBe("over unix");
    const health = await fetch("http://localhost/health", { unix: path });
    expect(await health.json()).toEqual({ status: "ok" });
    await t.server.stop();
    expect(statSync(path, { throwIfNoEntry: false })).toBeUndefined();
  });

  /** Runs the real command on a unix socket; resolves once it listens, or with its exit code if it exits. */
  async function serveUnix(path: string): Promise<{ proc: Subprocess; stderr: () => string }> {
    const proc = Bun.spawn([process.execPath, join(ROOT, "src/main.ts"), "--addr", `unix:${path}`, "cat"], {
      env: { ...process.env, NO_COLOR: "1" },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    });
    procs.add(proc);
    let text = "";
    const reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of proc.stderr) text += decoder.decode(chunk, { stream: true });
    })();
    await within(
      Promise.race([until(() => text.includes(`listening on unix:${path}`), "listening", WAIT_MS), reading]),
      "the server to listen or exit",
    );
    return { proc, stderr: () => text };
  }

  test("refused while a live server holds the path, replaced once only a stale file is left", async () => {
    const path = join(tempDir(), "s.sock");
    const first = await serveUnix(path);
    expect(first.proc.exitCode).toBeNull();

    const second = await serveUnix(path);
    expect(await within(second.proc.exited, "the second server to exit")).toBe(1);
    expect(second.stderr()).toContain(
      `cannot listen on unix:${path}: another server is listening on ${path}`,
    );

    first.proc.kill("SIGKILL");
    await within(first.proc.exited, "the first server to die");
    expect(statSync(path).isSocket()).toBe(true); // stale: nothing removed it

    const third = await serveUnix(path);
    expect(third.proc.exitCode).toBeNull();
    const raw = await RawClient.open({ path }, "/room");
    raw.sendText("replaced");
    await raw.until(() => raw.frames.some((f) => f.payload.toString() === "replaced"), "the echo");
    raw.end();
    third.proc.kill("SIGTERM");
    expect(await within(third.proc.exited, "the third server to exit")).toBe(0);
    expect(statSync(path, { throwIfNoEntry: false })).toBeUndefined();
  }, 20_000);

  test("a file that is not a socket is never replaced", async () => {
    const path = join(tempDir(), "not-a-socket");
    writeFileSync(path, "keep me");
    const server = await serveUnix(path);
    expect(await within(server.proc.exited, "the server to exit")).toBe(1);
    expect(server.stderr()).toContain("exists and is not a socket");
    expect(statSync(path).isFile()).toBe(true);
  });
});

describe("--passstderr", () => {
  const numbered = (prefix: string) => Array.from({ length: 50 }, (_, i) => `${prefix} ${i + 1}`);

  test("every stderr line reaches the clients, in order, and is still logged", async () => {
    const t = start(["--passstderr", join(FIXTURES, "stderr-lines.sh")]);
    const client = await TestClient.open(t.url("room"));
    await client.waitFor(100);
    const got = client.received.map(String);
    expect(got.filter((m) => m.startsWith("err "))).toEqual(numbered("err"));
    expect(got.filter((m) => m.startsWith("out "))).toEqual(numbered("out"));
    expect(t.logs.some((l) => l.includes("err 50"))).toBe(true);
  });

  test('under JSON framing each is {"_stderr": line}', async () => {
    const t = start(["--json", "--passstderr", join(FIXTURES, "stderr-lines.sh")]);
    const client = await TestClient.open(t.url("room"));
    // The child echoes its input, so the join message comes back too, anywhere among the others.
    const stderrLines = () => client.received.map(String).filter((m) => m.startsWith('{"_stderr"'));
    await until(() => stderrLines().length >= 50, "50 stderr lines");
    expect(stderrLines().map((m) => JSON.parse(m))).toEqual(
      numbered("err").map((line) => ({ _stderr: line })),
    );
  });

  test("off by default: stderr only goes to the log", async () => {
    const t = start([join(FIXTURES, "stderr-lines.sh")]);
    const client = await TestClient.open(t.url("room"));
    await client.waitFor(50);
    await until(() => t.logs.some((l) => l.includes("err 50")), "the last stderr line in the log");
    client.send("after");
    await until(() => client.received.includes("after"), "the echo");
    expect(client.received.map(String).filter((m) => m.startsWith("err "))).toEqual([]);
  });

  test("with --tcp the child's stdout stays in the log; only stderr reaches the clients", async () => {
    const t = start([
      "--tcp",
      "--delay",
      "0",
      "--passstderr",
      "python3",
      "--",
      join(FIXTURES, "tcp-stderr.py"),
    ]);
    const client = await TestClient.open(t.url("room"));
    await client.waitFor(50);
    await until(() => t.logs.some((l) => l.includes("out 50")), "the last stdout line in the log");
    client.send("echo");
    await until(() => client.received.includes("echo"), "the echo over TCP");
    const got = client.received.map(String);
    expect(got.filter((m) => m.startsWith("err "))).toEqual(numbered("err"));
    expect(got.filter((m) => m.startsWith("out "))).toEqual([]);
  });
});
