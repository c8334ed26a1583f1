import { afterEach, describe, expect, test } from "bun:test";
import { alive, FIXTURES, start, stopAll, TestClient, until, within } from "../helpers.ts";

afterEach(stopAll);

const UNFLUSHED = `${FIXTURES}unflushed.py`;

/** The next message that is one of the script's `line N`, skipping what else its terminal carried. */
async function nextLine(c: TestClient): Promise<string> {
  for (;;) {
    const message = await c.next();
    if (message.startsWith("line ")) return message;
  }
}

describe("--pty: why it exists", () => {
  test("a script that prints without flushing: under --pty each line reaches the client as it is printed", async () => {
    const t = start(["--pty", UNFLUSHED]);
    const c = await TestClient.open(t.url("r"));
    // The script prints its next line only after the client acknowledged the last one: were a line held back,
    // the acknowledgement would never come and this would time out.
    for (let i = 0; i < 3; i++) {
      expect(await nextLine(c)).toBe(`line ${i}`);
      c.send("ack");
    }
    expect((await c.waitClosed()).code).toBe(1000);
  });

  test("without --pty the same script's lines wait in its buffer and arrive only when it exits", async () => {
    const t = start([UNFLUSHED]);
    const c = await TestClient.open(t.url("r"));
    for (let i = 0; i < 3; i++) {
      // Its stderr goes to the log at once; by then the line printed before it has not reached the client.
      await until(() => t.logs.some((l) => l.includes(`printed ${i}`)), `"printed ${i}" in the log`);
      expect(c.received).toEqual([]);
      c.send("ack");
    }
    await c.waitFor(3);
    expect(c.received).toEqual(["line 0", "line 1", "line 2"]);
    expect((await c.waitClosed()).code).toBe(1000);
  });
});

describe("--pty", () => {
  test("raw: input is not echoed, and output lines carry no \\r (with --json's join message and routing)", async () => {
    const t = start(["--pty", "--json", "cat"]);
    const c = await TestClient.open(t.url("r"));
    expect(await c.next()).toBe('{"t":"Join","_from":1}');
    c.send('{"a":"b\\r"}');
    expect(await c.next()).toBe('{"_from":1,"a":"b\\r"}');
    const d = await TestClient.open(t.url("r"));
    expect(await c.next()).toBe('{"t":"Join","_from":2}');
    expect(await d.next()).toBe('{"t":"Join","_from":2}');
    // Nothing was doubled by an echo: the next thing each sees is the next message.
    d.send('{"_to":1,"x":1}');
    expect(await c.next()).toBe('{"_from":2,"_to":1,"x":1}');
    expect(c.received).toHaveLength(4);
  });

  test("--binary carries every byte value both ways unchanged, and more than a terminal buffer at once", async () => {
    const t = start(["--pty", "--binary", "cat"]);
    const c = await TestClient.open(t.url("r"));
    const all = new Uint8Array(256).map((_, i) => i);
    // Several times the writer's slice and the kernel's terminal buffer, so the input waits and drains.
    const big = new Uint8Array(256 * 1024).map((_, i) => (i * 7) % 256);
    const sent = new Uint8Array(all.length + big.length);
    sent.set(all);
    sent.set(big, all.length);
    c.send(all);
    c.send(big);
    let got = 0;
    const chunks: Uint8Array[] = [];
    while (got < sent.length) {
      const chunk = (await c.nextRaw()) as Uint8Array;
      chunks.push(chunk);
      got += chunk.byteLength;
    }
    expect(Buffer.concat(chunks).equals(Buffer.from(sent))).toBe(true);
  });

  test("with --cache a late joiner gets the recent lines, then live ones", async () => {
    const t = start(["--pty", "--cache", "8", "cat"]);
    const a = await TestClient.open(t.url("r"));
    a.send("one");
    expect(await a.next()).toBe("one");
    const b = await TestClient.open(t.url("r"));
    expect(await b.next()).toBe("one");
    a.send("two");
    expect(await b.next()).toBe("two");
  });

  test("--ptysize is the size the child sees (stty size)", async () => {
    const t = start(["--pty", "--ptysize", "100x30", "stty", "--", "size"]);
    const c = await TestClient.open(t.url("r"));
    expect(await c.next()).toBe("30 100");
    expect((await c.waitClosed()).code).toBe(1000);
  });

  test("the child's stdin, stdout and stderr are the terminal; it is a session leader", async () => {
    const script =
      "test -t 0 && test -t 1 && test -t 2 && echo tty; ps -o pid=,pgid=,sid= -p $$; echo err >&2; cat";
    const t = start(["--pty", "sh", "--", "-c", script]);
    const c = await TestClient.open(t.url("r"));
    expect(await c.next()).toBe("tty");
    const [pid, pgid, sid] = (await c.next()).trim().split(/\s+/).map(Number);
    expect(pgid).toBe(pid as number);
    expect(sid).toBe(pid as number);
    expect(await c.next()).toBe("err");
  });

  test("the last client leaving: no end of input on a terminal, so the child gets SIGTERM without waiting a grace period for one", async () => {
    // A grace period far past the wait below: the stop must not spend it waiting for an EOF cat cannot see.
    const t = start(["--pty", "--grace", "60", "cat"]);
    const c = await TestClient.open(t.url("r"));
    c.send("x");
    expect(await c.next()).toBe("x");
    c.close();
    await until(
      () => t.logs.some((l) => /stopped cat \(pid \d+\): was killed by SIGTERM/.test(l)),
      "cat stopped",
    );
  });

  test("shutdown stops a pty child and its process group", async () => {
    const t = start(["--pty", `${FIXTURES}grandchild.sh`]);
    const c = await TestClient.open(t.url("r"));
    const pids = (await c.next()).split(" ").slice(1).map(Number);
    expect(pids).toHaveLength(2);
    expect(pids.every(alive)).toBe(true);
    await within(t.server.stop(), "the shutdown", 10_000);
    expect((await c.waitClosed()).code).toBe(1001);
    await until(() => !pids.some(alive), "the child and its grandchild to be gone");
  });

  test("a command that cannot run: the client's close reason says what to do", async () => {
    const t = start(["--pty", `${FIXTURES}no-shebang.sh`]);
    const c = new TestClient(t.url("r"));
    const closed = await c.waitClosed();
    expect(closed.code).toBe(1011);
    expect(closed.reason).toContain("needs a #! line");
  });
});
