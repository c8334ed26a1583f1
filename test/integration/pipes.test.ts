import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  FIXTURES,
  metrics,
  sample,
  start,
  stopAll,
  TestClient,
  until,
  untilSample,
  within,
} from "../helpers.ts";

afterEach(stopAll);

/** Open file descriptors of this process (the tests run the server in-process). */
function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}

/** What the child's stdin, stdout and stderr are, as `/proc` names them (`pipe:[…]`, `socket:[…]`). */
const STDIO_KINDS = ["sh", "--", "-c", "readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2 | cut -d: -f1"];

describe("stdio pipes", () => {
  test("a child's stdin, stdout and stderr are plain OS pipes", async () => {
    const s = start(STDIO_KINDS);
    const c = await TestClient.open(s.url("kinds"));
    expect([await c.next(), await c.next(), await c.next()]).toEqual(["pipe", "pipe", "pipe"]);
    expect((await c.waitClosed()).code).toBe(1000);
  });

  // Opening /proc/self/fd/N works for a pipe and fails for a socket (ENXIO), so this needs OS pipes.
  test("a script may write to /dev/stdout and /dev/stderr", async () => {
    const s = start(["sh", "--", "-c", "echo out > /dev/stdout; echo err > /dev/stderr; echo done"]);
    const c = await TestClient.open(s.url("devs"));
    expect([await c.next(), await c.next()]).toEqual(["out", "done"]);
    expect((await c.waitClosed()).code).toBe(1000);
    await stopAll();
    expect(s.logs.some((l) => l.includes("[devs] err"))).toBe(true);
    expect(s.logs.some((l) => l.includes("cannot create"))).toBe(false);
  });

  test("a child is started by the spawner thread, not the main thread (and by the main one without OS pipes)", async () => {
    /** The thread of this process that forked `pid` (a child is listed under the thread that forked it). */
    const forkedBy = (pid: number): number | undefined =>
      readdirSync("/proc/self/task")
        .map(Number)
        .find((tid) =>
          readFileSync(`/proc/self/task/${tid}/children`, "utf8").trim().split(" ").includes(String(pid)),
        );
    for (const osPipes of [true, false]) {
      const s = start(["sh", "--", "-c", "echo $$; exec cat"], { osPipes });
      const c = await TestClient.open(s.url("who"));
      const pid = Number(await c.next());
      const tid = forkedBy(pid);
      expect(tid).toBeDefined();
      if (osPipes) expect(tid).not.toBe(process.pid);
      else expect(tid).toBe(process.pid);
      await stopAll();
    }
  });

  test("with osPipes off (as where libc cannot be loaded), Bun's own socketpairs are used", async () => {
    const s = start(STDIO_KINDS, { osPipes: false });
    const c = await TestClient.open(s.url("kinds"));
    expect([await c.next(), await c.next(), await c.next()]).toEqual(["socket", "socket", "socket"]);
  });
});

// Every stdio behaviour that depends on who owns the pipe ends, over both kinds of pipe.
describe.each([
  ["OS pipes", true],
  ["Bun's pipes", false],
])("stdio over %s", (_, osPipes) => {
  test("echo, and the last message and --leavemsg reach the child before its EOF", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "ss-pipes-")), "got");
    const s = start(["--leavemsg", "bye", "sh", "--", "-c", `cat > ${out}`], { osPipes });
    const c = await TestClient.open(s.url("r"));
    c.send("one");
    c.send("two");
    c.close();
    await c.waitClosed();
    await stopAll();
    expect(await Bun.file(out).text()).toBe("one\ntwo\nbye\n");
  });

  test("round trips through cat", async () => {
    const s = start(["cat"], { osPipes });
    const c = await TestClient.open(s.url("r"));
    for (let i = 0; i < 50; i++) c.send(`line ${i}`);
    for (let i = 0; i < 50; i++) expect(await c.next()).toBe(`line ${i}`);
  });

  // Whether a burst costs the child few reads (one write per event-loop turn) depends on scheduling, so it is
  // measured by the benchmarks (npm run bench), not asserted here: here, that every byte arrives in order.
  test.each([
    ["text", [], "lines", (i: number): string | Uint8Array => `m${i}`],
    ["binary", ["--binary"], "bytes", (i: number): string | Uint8Array => new TextEncoder().encode(`m${i}`)],
  ] as const)(
    "a burst of 1000 %s messages reaches the child whole and in order",
    async (_, flags, mode, message) => {
      const s = start([...flags, "python3", "--", `${FIXTURES}reads.py`, "1000", mode], { osPipes });
      const c = await TestClient.open(s.url("burst"));
      expect((await c.next()).trim()).toBe("ready");
      for (let i = 0; i < 1000; i++) c.send(message(i));
      const [, , verdict] = (await c.next()).trim().split(" ");
      expect(verdict).toBe("ok");
    },
  );

  test("messages sent while the child's stdin pipe is full all reach it, in order, once it reads", async () => {
    const go = join(mkdtempSync(join(tmpdir(), "ss-pipes-")), "go");
    const child = `echo ready; while [ ! -e ${go} ]; do sleep 0.01; done; exec cat`;
    const s = start(["--metrics", "sh", "--", "-c", child], { osPipes });
    const c = await TestClient.open(s.url("full"));
    expect(await c.next()).toBe("ready");
    // 400 KiB: several times what a pipe holds (64 KiB), far below --maxbuffer (4 MiB).
    const line = (i: number) => `${String(i).padStart(6, "0")} ${"x".repeat(1016)}`;
    for (let i = 0; i < 400; i++) c.send(line(i));
    // Only once the server took them all (most waiting behind the full pipe) may the child start reading.
    await untilSample(s, 'scalesocket_messages_total{direction="client_to_child"}', 400);
    expect(sample(await metrics(s), 'scalesocket_messages_dropped_total{reason="child_stdin_full"}')).toBe(0);
    writeFileSync(go, "");
    await c.waitFor(401);
    for (let i = 0; i < 400; i++) expect(await c.next()).toBe(line(i));
  });

  test("a child's stderr is logged with its room", async () => {
    const s = start(["sh", "--", `${FIXTURES}stderr.sh`], { osPipes });
    const c = await TestClient.open(s.url("errs"));
    expect(await c.next()).toBe("ready");
    await stopAll();
    expect(s.logs.some((l) => l.includes("[errs] to stderr: errs"))).toBe(true);
  });

  test("a room left during --delay gives the child EOF at once", async () => {
    const s = start(["--delay", "5", "sh", "--", "-c", "cat >/dev/null; echo eof >&2"], { osPipes });
    const c = await TestClient.open(s.url("d"));
    c.close();
    await c.waitClosed();
    await within(s.server.stop(), "stop with the child ending on EOF", 3000);
    expect(s.logs.some((l) => l.includes("eof"))).toBe(true);
  });

  test("no file descriptor is left behind by rooms that end in every way", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ss-pipes-"));
    const notExecutable = join(dir, "not-executable");
    writeFileSync(notExecutable, "#!/bin/sh\n");
    chmodSync(notExecutable, 0o644);
    const round = async (): Promise<void> => {
      // Stopped when its last client leaves.
      const cat = start(["cat"], { osPipes });
      for (let i = 0; i < 10; i++) {
        const c = await TestClient.open(cat.url(`cat${i}`));
        c.send("x");
        await c.next();
        c.close();
        await c.waitClosed();
      }
      // Exits by itself, with the client still there.
      const head = start(["head", "--", "-n", "1"], { osPipes });
      for (let i = 0; i < 10; i++) {
        const c = await TestClient.open(head.url(`head${i}`));
        c.send("x");
        await c.next();
        await c.waitClosed();
      }
      // Left during --delay, before its pipes were attached.
      const delayed = start(["--delay", "5", "cat"], { osPipes });
      for (let i = 0; i < 10; i++) {
        const c = await TestClient.open(delayed.url(`delay${i}`));
        c.close();
        await c.waitClosed();
      }
      // Cannot be started at all.
      const broken = start([notExecutable], { osPipes });
      for (let i = 0; i < 10; i++) {
        const c = await TestClient.open(broken.url(`broken${i}`));
        expect((await c.waitClosed()).code).toBe(1011);
      }
      await stopAll();
    };
    await round(); // Bun opens some descriptors of its own on first use
    const before = openFds();
    await round();
    // Three pipes per room, ten rooms of each kind: a leak shows as 10 or more; measured here it is 0. Under load
    // some can still be closing when the servers have stopped (6 were seen once in CI; Bun closes its own dup of
    // a pipe's descriptor, from Bun.file(fd), on its own schedule): the count gets a few seconds, with GC, to
    // come down, and a leak still fails.
    await until(() => {
      Bun.gc(true);
      return openFds() - before < 5;
    }, "the descriptors of ended rooms to be closed");
    expect(openFds() - before).toBeLessThan(5);
  }, 30_000);
});
