import { afterEach, describe, expect, test } from "bun:test";
import type { Socket, Subprocess } from "bun";
import { connectWithRetry, type TcpLink } from "../../../src/child/tcp.ts";
import { LineSplitter } from "../../../src/framing/split.ts";
import { BoundedWriter } from "../../../src/writer.ts";
import { FIXTURES, within } from "../../helpers.ts";

const children: Subprocess[] = [];
const links: TcpLink[] = [];

const servers: { stop(closeActive: boolean): void }[] = [];

afterEach(async () => {
  const exiting = children.splice(0).map((child) => {
    child.kill("SIGKILL");
    return child.exited;
  });
  await within(Promise.all(exiting), "test children to exit");
  for (const link of links.splice(0)) link.destroy();
  for (const server of servers.splice(0)) server.stop(true);
});

/** An in-process listener, for tests about timing that a child's start-up time would blur. */
function listen(handlers: { open?(socket: Socket<undefined>): void } = {}): number {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { ...handlers, data() {} } });
  servers.push(server);
  return server.port;
}

/** A port that was free a moment ago: bound on port 0, then released. */
function freePort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

/** Starts a fixture as a --tcp child would run: PORT in its environment. */
function spawnChild(port: number, argv: string[]): Subprocess<"pipe", "inherit", "inherit"> {
  const child = Bun.spawn(argv, {
    env: { PATH: process.env.PATH ?? "", PORT: String(port) },
    stdin: "pipe",
    stdout: "inherit",
    stderr: "inherit",
  });
  children.push(child);
  return child;
}

/** A connected link with the bounded writer a child puts in front of it; `write` adds the newline when asked. */
interface Connected {
  link: TcpLink;
  writer: BoundedWriter;
  write(data: string | Uint8Array, newline: boolean): boolean;
}

async function connect(port: number, deadlineMs = 3000, maxBuffer = 4 << 20): Promise<Connected> {
  const link = await within(connectWithRetry(port, { delayMs: 0, deadlineMs }), "connect");
  links.push(link);
  const writer = new BoundedWriter(maxBuffer);
  writer.attach(link.input);
  const write = (data: string | Uint8Array, newline: boolean): boolean => {
    if (!newline) return writer.write(data);
    return writer.write(typeof data === "string" ? `${data}\n` : Buffer.concat([data, Buffer.from("\n")]));
  };
  return { link, writer, write };
}

/** Collects the link's output as lines; `next(n)` waits for the first n. */
function collectLines({ link }: { link: TcpLink }): { lines: string[]; upTo(n: number): Promise<string[]> } {
  const lines: string[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const decoder = new TextDecoder();
  const splitter = new LineSplitter(
    1 << 20,
    (line) => {
      lines.push(line);
      for (const w of waiters.splice(0)) {
        if (lines.length >= w.n) w.resolve();
        else waiters.push(w);
      }
    },
    () => {},
  );
  void link.output.read((chunk) => splitter.push(decoder.decode(chunk, { stream: true })));
  return {
    lines,
    upTo: (n) =>
      within(
        new Promise<void>((resolve) => {
          if (lines.length >= n) resolve();
          else waiters.push({ n, resolve });
        }),
        `${n} lines (have ${lines.length})`,
        10_000,
      ).then(() => lines.slice(0, n)),
  };
}

describe("connectWithRetry", () => {
  test("retries until a child that listens late is reached", async () => {
    const port = freePort();
    spawnChild(port, [`${FIXTURES}tcp-echo.py`, "0.1"]);
    const started = performance.now();
    const link = await connect(port);
    // The child slept 0.1 s (after starting up) before binding, so the first attempts were refused.
    expect(performance.now() - started).toBeGreaterThan(100);
    const out = collectLines(link);
    expect(link.write("hello", true)).toBe(true);
    expect(await out.upTo(1)).toEqual(["echo: hello"]);
  });

  test("gives up at the deadline when the child never listens", async () => {
    const port = freePort();
    spawnChild(port, [`${FIXTURES}tcp-never-listens.sh`]);
    const started = performance.now();
    const error = await within(
      connectWithRetry(port, { delayMs: 0, deadlineMs: 300 }).then(
        () => null,
        (e: Error) => e,
      ),
      "the deadline",
    );
    const elapsed = performance.now() - started;
    expect(error?.name).toBe("TcpConnectError");
    expect(error?.message).toBe(`child did not listen on 127.0.0.1:${port} within 0.3 s`);
    // It tried until the deadline (a lower bound, which a busy machine only lengthens); `within` bounds the rest.
    expect(elapsed).toBeGreaterThanOrEqual(290);
  });

  test("waits the delay before the first attempt", async () => {
    const port = listen();
    const started = performance.now();
    links.push(await within(connectWithRetry(port, { delayMs: 100, deadlineMs: 3000 }), "connect"));
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
  });

  test("makes one attempt even when the delay outlasts the deadline", async () => {
    const port = listen();
    links.push(await within(connectWithRetry(port, { delayMs: 50, deadlineMs: 10 }), "connect"));
  });

  test("stops when aborted, during the delay or between attempts", async () => {
    const port = freePort();
    for (const delayMs of [5000, 0]) {
      const controller = new AbortController();
      const connecting = connectWithRetry(port, { delayMs, deadlineMs: 10_000, signal: controller.signal });
      setTimeout(() => controller.abort(new Error("the child exited")), 50);
      const error = await within(
        connecting.then(
          () => null,
          (e: Error) => e,
        ),
        "abort",
      );
      expect(error?.message).toBe(`stopped connecting to the child on 127.0.0.1:${port}: the child exited`);
    }
  });

  test("an already aborted signal rejects at once", async () => {
    const error = await connectWithRetry(freePort(), {
      delayMs: 0,
      deadlineMs: 1000,
      signal: AbortSignal.abort(),
    }).then(
      () => null,
      (e: Error) => e,
    );
    expect(error?.message).toContain("aborted");
  });
});

describe("TcpLink", () => {
  test("many lines round trip in order", async () => {
    const port = freePort();
    spawnChild(port, [`${FIXTURES}tcp-echo.py`]);
    const link = await connect(port);
    const out = collectLines(link);
    const sent = Array.from({ length: 5000 }, (_, i) => `line ${i} ${"x".repeat(i % 300)}`);
    for (const line of sent) expect(link.write(line, true)).toBe(true);
    expect(await out.upTo(sent.length)).toEqual(sent.map((line) => `echo: ${line}`));
  });

  test("bytes and strings, with and without the newline, go out as given", async () => {
    const port = freePort();
    spawnChild(port, [`${FIXTURES}tcp-echo.py`]);
    const link = await connect(port);
    const out = collectLines(link);
    const bytes = new TextEncoder().encode("bytes");
    expect(link.write(bytes, true)).toBe(true);
    expect(link.write("pa", false)).toBe(true);
    expect(link.write(new TextEncoder().encode("rt"), false)).toBe(true);
    expect(link.write("ial\nnext", false)).toBe(true);
    expect(link.write("", true)).toBe(true);
    expect(link.write("ünïcödé", true)).toBe(true);
    expect(await out.upTo(4)).toEqual(["echo: bytes", "echo: partial", "echo: next", "echo: ünïcödé"]);
  });

  test("a burst past the socket buffer to a child that does not read: bounded queue, nothing lost", async () => {
    const port = freePort();
    const child = spawnChild(port, [`${FIXTURES}tcp-echo.py`, "0", "hold"]);
    const maxBuffer = 256 * 1024;
    const link = await connect(port, 3000, maxBuffer);
    const out = collectLines(link);
    const line = (i: number) => `${String(i).padStart(8, "0")} ${"y".repeat(1000)}`;
    let accepted = 0;
    // Fill the queue, let the socket take what it can, and repeat until it takes no more: the kernel's
    // buffers are full and the last write was partial.
    let full = false;
    for (let round = 0; round < 1000 && !full; round++) {
      while (link.write(line(accepted), true)) accepted++;
      expect(link.writer.pending).toBeLessThanOrEqual(maxBuffer);
      await new Promise((resolve) => setImmediate(resolve));
      full = link.writer.pending > 0;
    }
    expect(full).toBe(true);
    // The queue never holds more than the cap; past it, writes are refused and nothing is queued.
    while (link.write(line(accepted), true)) accepted++;
    const pending = link.writer.pending;
    expect(pending).toBeLessThanOrEqual(maxBuffer);
    expect(pending).toBeGreaterThan(maxBuffer - 1010);
    expect(link.write(line(accepted), true)).toBe(false);
    expect(link.writer.pending).toBe(pending);

    // Let the child read: the queue drains and every accepted line comes back, in order.
    child.stdin.write("go\n");
    child.stdin.flush();
    const got = await out.upTo(accepted);
    for (let i = 0; i < accepted; i++) {
      if (got[i] !== `echo: ${line(i)}`)
        throw new Error(`line ${i} out of order or damaged: ${got[i]?.slice(0, 20)}`);
    }
    expect(link.writer.pending).toBe(0);
    expect(out.lines).toHaveLength(accepted);
  });

  test("end() sends what is queued, then the child reads EOF and exits", async () => {
    const port = freePort();
    const child = spawnChild(port, [`${FIXTURES}tcp-echo.py`]);
    const link = await connect(port);
    const out = collectLines(link);
    link.write("last words", true);
    link.writer.end();
    expect(link.write("too late", true)).toBe(false);
    expect(await within(child.exited, "the child to exit")).toBe(0);
    await within(link.link.closed, "the link to close");
    expect(out.lines).toEqual(["echo: last words"]);
    expect(link.link.error).toBeNull();
  });

  test("closed settles when the child dies, and writes are refused after", async () => {
    const port = freePort();
    const child = spawnChild(port, [`${FIXTURES}tcp-echo.py`]);
    const link = await connect(port);
    child.kill("SIGKILL");
    await within(link.link.closed, "the link to close");
    // The writer learns it at its next flush: what it took then is the last.
    link.write("anyone?", true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(link.write("anyone?", true)).toBe(false);
  });

  test("output that arrives before it is read is kept for the reader", async () => {
    const port = listen({
      open(socket) {
        socket.write("early\n");
        socket.end();
      },
    });
    const link = await connect(port);
    await within(link.link.closed, "the server to close the link");
    expect(collectLines(link).lines).toEqual(["early"]);
  });
});
