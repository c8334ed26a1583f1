import { afterEach, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import type net from "node:net";
import {
  FIXTURES,
  killSpawned,
  metrics,
  sample,
  spawnServer,
  stalledClient,
  start,
  stopAll,
  TestClient,
  type TestServer,
  untilAsync,
  upgradeAnswer,
  upgradeStatus,
  WAIT_MS,
  within,
} from "../helpers.ts";

afterEach(async () => {
  await killSpawned();
  await stopAll();
});

async function refusals(t: TestServer, reason: string): Promise<number | undefined> {
  return sample(await metrics(t), `scalesocket_refusals_total{reason="${reason}"}`);
}

async function limitCloses(t: TestServer, reason: string): Promise<number | undefined> {
  return sample(await metrics(t), `scalesocket_clients_closed_total{reason="${reason}"}`);
}

/** The live processes this test process started whose command line holds `marker`, read from /proc. */
function liveChildren(marker: string): number {
  let n = 0;
  for (const task of readdirSync(`/proc/${process.pid}/task`)) {
    let pids: string[];
    try {
      pids = readFileSync(`/proc/${process.pid}/task/${task}/children`, "utf8").split(" ").filter(Boolean);
    } catch {
      continue;
    }
    for (const pid of pids) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        if (stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z") continue;
        if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker)) n++;
      } catch {
        // gone meanwhile
      }
    }
  }
  return n;
}

describe("--maxrooms", () => {
  test("with a child that ignores the end of its input and clients that come and go, never more live children than the limit", async () => {
    const marker = `churn-${process.pid}-${Date.now()}`;
    const t = start(["--metrics", "--maxrooms", "5", `${FIXTURES}ignore-eof.sh`, "--", marker], {
      graceMs: 150,
    });
    let most = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        most = Math.max(most, liveChildren(marker));
        await Bun.sleep(2);
      }
    })();
    let next = 0;
    let opened = 0;
    const deadline = Date.now() + 1500;
    const worker = async () => {
      while (Date.now() < deadline) {
        const c = new TestClient(t.url(`r${next++}`));
        const ok = await within(
          c.opened.then(
            () => true,
            () => false,
          ),
          "open or refusal",
        );
        if (ok) {
          opened++;
          await Bun.sleep(20);
          c.close();
        }
        await c.waitClosed();
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    sampling = false;
    await sampler;
    expect(most).toBeLessThanOrEqual(5);
    // The limit was reached, and rooms were refused for it: the test did put the rule to work.
    expect(most).toBeGreaterThanOrEqual(4);
    expect(opened).toBeGreaterThan(5);
    expect(await refusals(t, "max_rooms")).toBeGreaterThan(0);
  }, 20_000);
});

describe("--maxclients and --maxperip", () => {
  test("--maxclients: past it 503 with the reason, counted; a place that frees up is taken again", async () => {
    const t = start(["--metrics", "--maxclients", "2", "cat"]);
    const a = await TestClient.open(t.url("a"));
    await TestClient.open(t.url("b"));
    expect(await upgradeAnswer(t.url("a"))).toEqual({
      status: 503,
      body: "too many clients: at most 2 (--maxclients)",
    });
    expect(await refusals(t, "max_clients")).toBe(1);
    expect(sample(await metrics(t), "scalesocket_connections_refused_total")).toBe(1);
    a.close();
    await a.waitClosed();
    await untilAsync(async () => (await upgradeStatus(t.url("c"))) === 101, "a place to free up");
  });

  test("--maxperip: past it 429 for that address", async () => {
    const t = start(["--metrics", "--maxperip", "1", "cat"]);
    const a = await TestClient.open(t.url("a"));
    expect(await upgradeAnswer(t.url("b"))).toEqual({
      status: 429,
      body: "too many connections from one address: at most 1 (--maxperip)",
    });
    expect(await refusals(t, "max_per_ip")).toBe(1);
    a.send("still here");
    expect(await a.next()).toBe("still here");
  });
});

describe("--maxmessage and --ratelimit", () => {
  test("--maxmessage: a message past it closes its client (1009), counted; the room goes on", async () => {
    const t = start(["--metrics", "--maxmessage", "1K", "cat"]);
    const big = await TestClient.open(t.url("r"));
    const other = await TestClient.open(t.url("r"));
    big.send("x".repeat(1000));
    expect(await big.next()).toBe("x".repeat(1000));
    big.send("x".repeat(1025));
    expect((await big.waitClosed()).code).toBe(1009);
    await untilAsync(async () => (await limitCloses(t, "max_message")) === 1, "the close to be counted");
    other.send("hi");
    expect(await other.next()).toBe("x".repeat(1000));
    expect(await other.next()).toBe("hi");
  });

  test("--ratelimit: a burst of twice the rate passes, the next message closes the client with 1008 and why", async () => {
    const t = start(["--metrics", "--ratelimit", "5", `${FIXTURES}noread.sh`]);
    const c = await TestClient.open(t.url("r"));
    expect(await c.next()).toBe("ready");
    for (let i = 0; i < 30; i++) c.send(`m${i}`);
    expect(await c.waitClosed()).toEqual({
      code: 1008,
      reason: "rate limit: more than 5 messages per second (--ratelimit)",
    });
    const text = await metrics(t);
    // The child got the burst (10 messages) and nothing after it.
    expect(sample(text, 'scalesocket_messages_total{direction="client_to_child"}')).toBe(10);
    expect(sample(text, 'scalesocket_clients_closed_total{reason="rate_limit"}')).toBe(1);
  });
});

/** Lets a stalled client read again; the close frame's code and reason at the end of what it gets. */
async function closeFrameOf(sock: net.Socket): Promise<{ code: number; reason: string }> {
  const chunks: Buffer[] = [];
  sock.on("data", (d: Buffer) => chunks.push(d));
  const ended = new Promise((resolve) => sock.once("close", resolve));
  sock.resume();
  await within(ended, "the stalled socket to end", WAIT_MS * 2);
  const data = Buffer.concat(chunks);
  let at = 0;
  let last = { code: 0, reason: "" };
  while (at + 2 <= data.length) {
    const opcode = (data[at] as number) & 0x0f;
    let len = (data[at + 1] as number) & 0x7f;
    let head = 2;
    if (len === 126) [len, head] = [data.readUInt16BE(at + 2), 4];
    else if (len === 127) [len, head] = [Number(data.readBigUInt64BE(at + 2)), 10];
    if (at + head + len > data.length) break;
    const payload = data.subarray(at + head, at + head + len);
    if (opcode === 8) last = { code: payload.readUInt16BE(0), reason: payload.subarray(2).toString() };
    at += head + len;
  }
  return last;
}

describe("--maxqueued", () => {
  test("past the server-wide budget the client with the most queued is closed 1013 with why; the others go on", async () => {
    const t = start([
      "--metrics",
      "--maxqueued",
      "1M",
      "--maxbuffer",
      "16M",
      `${FIXTURES}flood.sh`,
      "--",
      "60000",
      "100",
    ]);
    const starter = await TestClient.open(t.url("flood"));
    const stalled = [
      await stalledClient(t.server.port, "flood"),
      await stalledClient(t.server.port, "flood"),
    ];
    const elsewhere = await TestClient.open(t.url("quiet"));
    starter.send("go");
    await untilAsync(async () => ((await limitCloses(t, "max_queued")) ?? 0) >= 1, "a client shed", 20_000);
    const line =
      /closing client (\d+) \((\d+) bytes queued\): more than 1048576 bytes queued for all clients/.exec(
        t.logs.join(""),
      );
    expect(line).not.toBeNull();
    const id = Number(line?.[1]);
    expect([2, 3]).toContain(id);
    expect(await closeFrameOf(stalled[id - 2] as net.Socket)).toEqual({
      code: 1013,
      reason: "server too busy: more than 1048576 bytes queued (--maxqueued)",
    });
    expect(await limitCloses(t, "max_buffer")).toBe(0);
    // A client in another room is served as before.
    elsewhere.send("go");
    expect(await elsewhere.next()).toStartWith("1 ");
    for (const s of stalled) s.destroy();
  }, 40_000);
});

describe("crash back-off", () => {
  test("a room whose child exits at once three times in a row is refused with 1013 and when to retry; the wait doubles", async () => {
    const t = start(["--metrics", "sh", "--", "-c", "exit 3"], {
      crashBackoff: { windowMs: 1000, streak: 3, firstMs: 300, maxMs: 1000 },
    });
    const crash = async (room: string) => (await new TestClient(t.url(room)).waitClosed()).code;
    for (let i = 0; i < 3; i++) expect(await crash("r")).toBe(1011);
    expect(t.logs.join("")).toContain("[r] sh ended within 1000 ms of its start 3 or more times in a row");
    expect(await new TestClient(t.url("r")).waitClosed()).toEqual({
      code: 1013,
      reason: "sh keeps exiting at start in this room: retry in 1 s",
    });
    expect(await refusals(t, "crash_backoff")).toBe(1);
    // Another room is not held back.
    expect(await crash("other")).toBe(1011);
    // Once the wait is over the room is tried again; one more quick exit doubles the wait.
    await untilAsync(async () => (await crash("r")) === 1011, "the back-off to end", 2000);
    expect(t.logs.join("")).toContain("the room is refused for 0.6 s");
    expect(await crash("r")).toBe(1013);
  });
});

describe("open files", () => {
  test("45 rooms opened at once under a 256-descriptor limit all start: a room waiting for its child holds none", async () => {
    // 11 descriptors of the server's own, then 4 per room that runs (the client's socket, three pipe ends): 191 at
    // the end. Pipes made when a room opens, six a room while it waits for the spawner thread, passed 256 here.
    const main = new URL("../../src/main.ts", import.meta.url).pathname;
    const { port } = await spawnServer([
      "/bin/sh",
      "-c",
      'ulimit -n 256 && exec "$@"',
      "sh",
      process.execPath,
      main,
      "--addr",
      "127.0.0.1:0",
      "cat",
    ]);
    const answers = await within(
      Promise.all(
        Array.from(
          { length: 45 },
          (_, i) =>
            new Promise<string>((resolve) => {
              const ws = new WebSocket(`ws://127.0.0.1:${port}/burst-${i}`);
              ws.onopen = () => ws.send(`hello ${i}`);
              ws.onmessage = (e) => {
                resolve(String(e.data));
                ws.close();
              };
              ws.onclose = (e) => resolve(`closed ${e.code} ${e.reason}`);
            }),
        ),
      ),
      "45 first round trips",
    );
    expect(answers).toEqual(Array.from({ length: 45 }, (_, i) => `hello ${i}`));
  });
});
