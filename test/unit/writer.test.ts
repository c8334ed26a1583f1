import { describe, expect, test } from "bun:test";
import { openPipe, PipeSink } from "../../src/child/pipes.ts";
import { BoundedWriter, type ByteSink, byteSize } from "../../src/writer.ts";
import { until, within } from "../helpers.ts";

/** The end of the current event-loop turn, when writers flush. */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * A sink driven by a script: each write takes at most `room` bytes (all when null), and `drain()` gives it more
 * room, as a socket's drain callback would.
 */
function scriptedSink(room: number | null = null) {
  const taken: Uint8Array[] = [];
  let ended = false;
  const sink: ByteSink & { room: number | null; taken: Uint8Array[]; ended: () => boolean; drain(): void } = {
    room,
    taken,
    ended: () => ended,
    pending: 0,
    ondrain: null,
    write(chunk, size) {
      const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      expect(bytes.byteLength).toBe(size);
      const n = sink.room === null ? size : Math.min(size, sink.room);
      if (sink.room !== null) sink.room -= n;
      taken.push(bytes.subarray(0, n));
      return n;
    },
    end() {
      ended = true;
    },
    drain() {
      sink.room = null;
      sink.ondrain?.();
    },
  };
  return sink;
}

const text = (sink: { taken: Uint8Array[] }) => Buffer.concat(sink.taken).toString("utf8");

describe("BoundedWriter: bytes, not characters", () => {
  test("multi-byte text at the cap: 1365 '€' and a newline fill 4096 bytes exactly; one more '€' is refused", () => {
    const writer = new BoundedWriter(4096);
    const euros = "€".repeat(1365);
    expect(byteSize(euros)).toBe(4095);
    expect(writer.write(`${euros}\n`)).toBe(true);
    expect(writer.pending).toBe(4096);
    expect(writer.write("€")).toBe(false);
    expect(writer.write("")).toBe(true);
    expect(writer.pending).toBe(4096);
  });

  test("a cap counts UTF-8: 4 MiB of '€' text is 1.4 M characters, not 4 M", () => {
    const cap = 4 * 1024 * 1024;
    const writer = new BoundedWriter(cap);
    const line = `${"€".repeat(1000)}\n`; // 3001 bytes, 1001 characters
    let accepted = 0;
    while (writer.write(line)) accepted++;
    expect(accepted).toBe(Math.floor(cap / 3001));
    expect(writer.pending).toBeLessThanOrEqual(cap);
  });

  test("a message of exactly the cap is accepted by an empty writer and written whole", async () => {
    const writer = new BoundedWriter(1024);
    const sink = scriptedSink();
    writer.attach(sink);
    expect(writer.write(`${"x".repeat(1023)}\n`)).toBe(true);
    await nextTurn();
    expect(text(sink)).toBe(`${"x".repeat(1023)}\n`);
    expect(writer.pending).toBe(0);
  });
});

describe("BoundedWriter: flow", () => {
  test("held until a sink is attached, then written in order, in one write per turn", async () => {
    const written: number[] = [];
    const writer = new BoundedWriter(1 << 20, (n) => void written.push(n));
    writer.write("one\n");
    writer.write(new TextEncoder().encode("two\n"));
    writer.write("three\n");
    const sink = scriptedSink();
    writer.attach(sink);
    expect(text(sink)).toBe("one\ntwo\nthree\n");
    writer.write("four\n");
    writer.write("five\n");
    expect(sink.taken).toHaveLength(1);
    await nextTurn();
    expect(sink.taken).toHaveLength(2);
    expect(text(sink)).toBe("one\ntwo\nthree\nfour\nfive\n");
    expect(written).toEqual([14, 10]);
  });

  test("a short write keeps the rest, counts it against the cap, and resumes on drain", async () => {
    const writer = new BoundedWriter(16);
    const sink = scriptedSink(5);
    writer.attach(sink);
    expect(writer.write("abcdefghij")).toBe(true);
    await nextTurn();
    expect(text(sink)).toBe("abcde");
    expect(writer.pending).toBe(5);
    expect(writer.write("klmnopqrstu")).toBe(true); // 5 + 11 = 16
    expect(writer.write("v")).toBe(false);
    await nextTurn();
    expect(text(sink)).toBe("abcde"); // nothing more until the sink drains
    sink.drain();
    expect(text(sink)).toBe("abcdefghijklmnopqrstu");
    expect(writer.pending).toBe(0);
  });

  test("what a sink still holds counts against the cap", () => {
    const writer = new BoundedWriter(10);
    const sink = scriptedSink();
    writer.attach(sink);
    (sink as { pending: number }).pending = 8;
    expect(writer.write("abc")).toBe(false);
    expect(writer.write("ab")).toBe(true);
  });

  test("end() writes what is queued, then ends the sink; later writes are refused", async () => {
    const writer = new BoundedWriter(100);
    const sink = scriptedSink(2);
    writer.attach(sink);
    writer.write("last");
    writer.end();
    expect(writer.write("late")).toBe(false);
    expect(sink.ended()).toBe(false);
    sink.drain();
    expect(text(sink)).toBe("last");
    expect(sink.ended()).toBe(true);
  });

  test("a sink that reports closed closes the writer", async () => {
    const writer = new BoundedWriter(100);
    writer.attach({ pending: 0, ondrain: null, write: () => -1, end() {} });
    writer.write("x");
    await nextTurn();
    expect(writer.open).toBe(false);
    expect(writer.write("y")).toBe(false);
  });

  test("onIdle is called when a sink that had to be waited for drained", async () => {
    let idle = 0;
    const writer = new BoundedWriter(100, undefined, () => idle++);
    const sink = scriptedSink(1);
    writer.attach(sink);
    writer.write("ab");
    await nextTurn();
    expect(idle).toBe(0);
    sink.drain();
    expect(idle).toBe(1);
  });

  test("with flushAfterMs, writes of several turns go out in one write, after the delay", async () => {
    const writer = new BoundedWriter(100, undefined, undefined, 20);
    const sink = scriptedSink();
    writer.attach(sink);
    writer.write("a");
    await nextTurn();
    writer.write("b");
    await nextTurn();
    expect(sink.taken.length).toBe(0);
    await until(() => sink.taken.length > 0, "the delayed flush");
    expect(sink.taken.length).toBe(1);
    expect(text(sink)).toBe("ab");
  });

  test("with flushAfterMs, flush() and end() write at once, and close() leaves no timer behind", async () => {
    const writer = new BoundedWriter(100, undefined, undefined, 60_000);
    const sink = scriptedSink();
    writer.attach(sink);
    writer.write("a");
    writer.flush();
    expect(text(sink)).toBe("a");
    writer.write("b");
    writer.end();
    expect(text(sink)).toBe("ab");
    expect(sink.ended()).toBe(true);
  });
});

describe("PipeSink on a real pipe", () => {
  test("a full pipe parks the rest, counts it pending, and delivers every byte once the reader reads", async () => {
    const pipe = openPipe();
    if (pipe === null) return; // no libc here: the fallback path is covered by Bun's own pipes
    const { libc } = await import("../../src/child/libc.ts");
    libc()?.nonBlocking(pipe.write.fd);
    const writer = new BoundedWriter(1 << 20);
    const sink = new PipeSink(pipe.write);
    writer.attach(sink);
    const chunk = "z".repeat(100_000);
    expect(writer.write(chunk)).toBe(true);
    await nextTurn();
    // A pipe holds 64 KiB by default: the rest waits in the sink.
    expect(sink.pending).toBeGreaterThan(0);
    expect(writer.pending).toBe(sink.pending);
    writer.end();
    const got = await within(new Response(Bun.file(pipe.read.fd).stream()).text(), "the reader");
    pipe.read.close();
    expect(got).toBe(chunk);
  });
});
